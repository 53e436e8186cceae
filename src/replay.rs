//! `lcurve replay`: re-simulates stopping policies on a sweep's stored curves, in the same
//! trial order and concurrency, and reports what each would have cost and found.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::spec::{
    AshaSpec, ExtrapolationSpec, MedianSpec, Metric, PatienceSpec, StoppingSpec, ThresholdSpec,
};
use crate::stopping::{Action, Asha, Context, Peers, StoppingRule, decide_all, rules_for};
use crate::store::{MetricPoint, TrialRow};
use crate::trainer::EpochReport;

/// A stopping policy to replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// Every trial runs all its stored epochs.
    Full,
    /// A combination of rules, as a sweep's `[stopping]` table would give.
    Rules { name: String, spec: StoppingSpec },
    /// Every trial stops at `epoch`; then the `top` best by then continue to the end.
    IEpoch { epoch: usize, top: usize },
}

impl Policy {
    pub fn name(&self) -> String {
        match self {
            Policy::Full => "full (no stopping)".into(),
            Policy::Rules { name, .. } => name.clone(),
            Policy::IEpoch { epoch, top } => format!("i-epoch:epoch={epoch},top={top}"),
        }
    }
}

/// Parses `name[:key=value,...]`, rules joined by `+`, e.g. `median:warmup=3+patience`,
/// `iepoch:epoch=5,top=4`, `full`.
pub fn parse_policy(text: &str, metric: Metric) -> Result<Policy, String> {
    let mut spec = StoppingSpec {
        metric,
        patience: None,
        threshold: None,
        median: None,
        extrapolation: None,
        asha: None,
        divergence_factor: None,
    };
    let text = text.trim();
    if text == "full" || text == "none" {
        return Ok(Policy::Full);
    }
    for part in text.split('+') {
        let (name, args) = part.split_once(':').unwrap_or((part, ""));
        let mut kv = BTreeMap::new();
        for pair in args.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} in policy {text:?} is not key=value"))?;
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{v:?} in policy {text:?} is not a number"))?;
            kv.insert(k.trim().to_string(), v);
        }
        let mut take = |key: &str, default: f64| kv.remove(key).unwrap_or(default);
        let (dp, dm, dx, da) = (
            PatienceSpec::default(),
            MedianSpec::default(),
            ExtrapolationSpec::default(),
            AshaSpec::default(),
        );
        match name.trim() {
            "patience" => {
                spec.patience = Some(PatienceSpec {
                    patience: take("patience", dp.patience as f64).max(1.0) as usize,
                    min_delta: take("min_delta", dp.min_delta),
                    warmup: take("warmup", dp.warmup as f64) as usize,
                });
            }
            "median" => {
                spec.median = Some(MedianSpec {
                    warmup: take("warmup", dm.warmup as f64) as usize,
                    min_peers: take("min_peers", dm.min_peers as f64).max(1.0) as usize,
                    percentile: take("percentile", dm.percentile).clamp(0.0, 100.0),
                });
            }
            "threshold" => {
                spec.threshold = Some(ThresholdSpec {
                    after_epoch: take("after_epoch", 1.0).max(1.0) as usize,
                    worse_than: kv
                        .remove("worse_than")
                        .ok_or("threshold needs worse_than=<value>")?,
                });
            }
            "asha" => {
                spec.asha = Some(AshaSpec {
                    min_epochs: take("min_epochs", da.min_epochs as f64).max(1.0) as usize,
                    eta: take("eta", da.eta as f64).max(2.0) as usize,
                });
            }
            "extrapolation" => {
                spec.extrapolation = Some(ExtrapolationSpec {
                    warmup: take("warmup", dx.warmup as f64).max(4.0) as usize,
                    min_probability: take("min_probability", dx.min_probability),
                });
            }
            "iepoch" | "i-epoch" => {
                if text.contains('+') {
                    return Err("iepoch cannot be combined with other rules".into());
                }
                let epoch = take("epoch", 3.0).max(1.0) as usize;
                let top = take("top", 4.0).max(1.0) as usize;
                if let Some(k) = kv.keys().next() {
                    return Err(format!(
                        "iepoch has no setting {k:?} (it takes epoch and top)"
                    ));
                }
                return Ok(Policy::IEpoch { epoch, top });
            }
            other => {
                return Err(format!(
                    "{other:?} is not a policy (accepted: full, patience, median, threshold, extrapolation, asha, iepoch; rules join with +)"
                ));
            }
        }
        if let Some(k) = kv.keys().next() {
            return Err(format!("{} has no setting {k:?}", name.trim()));
        }
    }
    Ok(Policy::Rules {
        name: text.to_string(),
        spec,
    })
}

/// The policies replayed when none are named.
pub fn default_policies(metric: Metric, max_epochs: usize) -> Vec<Policy> {
    let i = (max_epochs / 10).max(2);
    [
        "full",
        "patience:patience=5,min_delta=0.0001",
        "median:warmup=3,min_peers=4",
        "median:warmup=3,min_peers=4,percentile=25",
        "extrapolation:warmup=5,min_probability=0.05",
        "median:warmup=3,min_peers=4+extrapolation:warmup=5",
        "asha:min_epochs=1,eta=3",
        "asha:min_epochs=2,eta=3",
        "asha:min_epochs=1,eta=4",
    ]
    .iter()
    .filter_map(|p| parse_policy(p, metric).ok())
    .chain([
        Policy::IEpoch { epoch: i, top: 4 },
        Policy::IEpoch { epoch: i, top: 2 },
    ])
    .collect()
}

/// One trial's stored curve.
#[derive(Debug, Clone)]
pub struct StoredCurve {
    pub trial_id: i64,
    pub ordinal: usize,
    pub planned_epochs: usize,
    pub curve: Vec<EpochReport>,
}

/// One trial's curve from its stored metric rows (any order; one trial's rows only).
pub fn curve_of(points: &[MetricPoint]) -> Vec<EpochReport> {
    let mut by_epoch: BTreeMap<usize, EpochReport> = BTreeMap::new();
    for m in points {
        let r = by_epoch.entry(m.epoch).or_insert(EpochReport {
            epoch: m.epoch,
            train_loss: f64::NAN,
            val_loss: f64::NAN,
            val_accuracy: None,
            val_rmse: None,
            seconds: 0.0,
            steps: Vec::new(),
        });
        match &*m.name {
            "train_loss" => r.train_loss = m.value,
            "val_loss" => r.val_loss = m.value,
            "val_accuracy" => r.val_accuracy = Some(m.value),
            "val_rmse" => r.val_rmse = Some(m.value),
            "epoch_seconds" => r.seconds = m.value,
            _ => {}
        }
    }
    by_epoch.into_values().collect()
}

/// Rebuilds each trial's curve from stored metric rows, in ordinal order.
pub fn stored_curves(trials: &[TrialRow], metrics: &[MetricPoint]) -> Vec<StoredCurve> {
    let mut by_trial: BTreeMap<i64, Vec<MetricPoint>> = BTreeMap::new();
    for m in metrics {
        by_trial.entry(m.trial_id).or_default().push(m.clone());
    }
    let mut out: Vec<StoredCurve> = trials
        .iter()
        .map(|t| StoredCurve {
            trial_id: t.id,
            ordinal: t.ordinal,
            planned_epochs: t.config.epochs,
            curve: by_trial.get(&t.id).map(|p| curve_of(p)).unwrap_or_default(),
        })
        .filter(|c| !c.curve.is_empty())
        .collect();
    out.sort_by_key(|c| c.ordinal);
    out
}

/// What one policy would have done.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub policy: String,
    /// Epochs trained, summed over trials.
    pub trial_epochs: usize,
    /// `trial_epochs` over the epochs of every stored curve.
    pub fraction: f64,
    /// Whether the trial with the best value overall was trained past its best epoch.
    pub top1_kept: bool,
    pub best_found: f64,
    /// How much worse the best found is than the best overall (0 is none).
    pub regret: f64,
}

/// Epochs each trial would train under `policy` (index = position in `curves`).
fn epochs_used(
    policy: &Policy,
    curves: &[StoredCurve],
    max_parallel: usize,
    metric: Metric,
) -> Vec<usize> {
    match policy {
        Policy::Full => curves.iter().map(|c| c.curve.len()).collect(),
        Policy::IEpoch { epoch, top } => {
            let mut ranked: Vec<(usize, f64)> = curves
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let n = (*epoch).min(c.curve.len());
                    (i, metric.best(c.curve[..n].iter().map(|r| r.get(metric))))
                })
                .collect();
            ranked.sort_by(|a, b| {
                if metric.better(a.1, b.1) {
                    std::cmp::Ordering::Less
                } else if metric.better(b.1, a.1) {
                    std::cmp::Ordering::Greater
                } else {
                    a.0.cmp(&b.0)
                }
            });
            let mut used: Vec<usize> = curves.iter().map(|c| (*epoch).min(c.curve.len())).collect();
            for (i, _) in ranked.iter().take(*top) {
                used[*i] = curves[*i].curve.len();
            }
            used
        }
        Policy::Rules { spec, .. } => simulate(
            &rules_for(Some(spec)),
            spec.asha
                .as_ref()
                .map(|a| Asha::new(metric, a.min_epochs, a.eta)),
            curves,
            max_parallel,
            metric,
        ),
    }
}

/// Runs the stored curves through `rules` (and ASHA) as the scheduler would: trials start in
/// ordinal order, at most `max_parallel` at once, a free slot takes an ASHA promotion before
/// a new trial, each epoch takes its stored wall time (at least a microsecond), and every rule
/// sees the other trials as far as they had got at that moment.
fn simulate(
    rules: &[Box<dyn StoppingRule>],
    mut asha: Option<Asha>,
    curves: &[StoredCurve],
    max_parallel: usize,
    metric: Metric,
) -> Vec<usize> {
    let mut used = vec![0usize; curves.len()];
    let mut peers = Peers::new(metric);
    // (time in microseconds, position) of each running trial's next epoch end.
    let mut events: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let duration = |c: &StoredCurve, e: usize| (c.curve[e - 1].seconds * 1e6).max(1.0) as u64;
    let last = |c: &StoredCurve| c.curve.len().min(c.planned_epochs.max(1));
    let mut next = 0;
    let mut now = 0u64;
    loop {
        // Fill free slots: promotions first, then new trials.
        while events.len() < max_parallel.max(1) {
            let promoted = asha
                .as_mut()
                .and_then(|a| a.promotable(|t| last(&curves[t as usize])))
                .map(|(t, _)| t as usize);
            let i = match promoted {
                Some(i) => i,
                None if next < curves.len() => {
                    next += 1;
                    next - 1
                }
                // Nothing new and nothing running: the highest rung's leader goes on.
                None if events.is_empty() => match asha
                    .as_mut()
                    .and_then(|a| a.promote_leader(|t| last(&curves[t as usize])))
                    .map(|(t, _)| t as usize)
                {
                    Some(i) => i,
                    None => break,
                },
                None => break,
            };
            events.push(Reverse((now + duration(&curves[i], used[i] + 1), i)));
        }
        let Some(Reverse((t, i))) = events.pop() else {
            break;
        };
        now = t;
        let c = &curves[i];
        used[i] += 1;
        let e = used[i];
        peers.record(c.trial_id, e, c.curve[e - 1].get(metric));
        let ctx = Context {
            curve: &c.curve[..e],
            max_epochs: c.planned_epochs,
            trial_id: c.trial_id,
            peers: &peers,
        };
        let stop = decide_all(rules, &ctx)
            .iter()
            .any(|d| d.action != Action::Continue);
        let paused = !stop
            && e < last(c)
            && asha.as_mut().is_some_and(|a| {
                a.rung_at(e, last(c)).is_some_and(|k| {
                    a.arrive(i as i64, k, &c.curve[..e], last(c)).action == Action::Pause
                })
            });
        if stop || e >= last(c) {
            peers.finish(c.trial_id);
        } else if !paused {
            events.push(Reverse((now + duration(c, e + 1), i)));
        }
    }
    // Trials still paused when nothing else is left end where they are.
    used
}

/// Replays every policy on `curves` and scores it against the full curves.
pub fn replay(
    policies: &[Policy],
    curves: &[StoredCurve],
    max_parallel: usize,
    metric: Metric,
) -> Vec<Outcome> {
    let total: usize = curves.iter().map(|c| c.curve.len()).sum();
    // The best value overall, its trial and epoch.
    let mut best = (f64::NAN, usize::MAX, 0usize);
    for (i, c) in curves.iter().enumerate() {
        for r in &c.curve {
            if metric.better(r.get(metric), best.0) {
                best = (r.get(metric), i, r.epoch);
            }
        }
    }
    policies
        .iter()
        .map(|p| {
            let used = epochs_used(p, curves, max_parallel, metric);
            let found = metric.best(
                curves
                    .iter()
                    .zip(&used)
                    .flat_map(|(c, &n)| c.curve[..n].iter().map(|r| r.get(metric))),
            );
            let regret = if found.is_finite() && best.0.is_finite() {
                (found - best.0).abs()
            } else {
                f64::INFINITY
            };
            let trial_epochs = used.iter().sum();
            Outcome {
                policy: p.name(),
                trial_epochs,
                fraction: trial_epochs as f64 / total.max(1) as f64,
                top1_kept: best.1 < used.len() && used[best.1] >= best.2,
                best_found: found,
                regret,
            }
        })
        .collect()
}

/// The curves that look cut short: stored with fewer epochs than planned.
pub fn truncated(curves: &[StoredCurve]) -> usize {
    curves
        .iter()
        .filter(|c| c.curve.len() < c.planned_epochs)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stopping::testing::curve;

    fn stored(curves: &[&[f64]]) -> Vec<StoredCurve> {
        curves
            .iter()
            .enumerate()
            .map(|(i, v)| StoredCurve {
                trial_id: i as i64 + 1,
                ordinal: i,
                planned_epochs: v.len(),
                curve: curve(v),
            })
            .collect()
    }

    #[test]
    fn policies_parse_with_defaults_and_errors() {
        let m = Metric::ValLoss;
        assert_eq!(parse_policy("full", m).unwrap(), Policy::Full);
        assert_eq!(
            parse_policy("iepoch:epoch=5,top=3", m).unwrap(),
            Policy::IEpoch { epoch: 5, top: 3 }
        );
        let Policy::Rules { spec, .. } = parse_policy("median:warmup=2+patience", m).unwrap()
        else {
            panic!()
        };
        assert_eq!(spec.median.as_ref().unwrap().warmup, 2);
        assert_eq!(spec.patience.as_ref().unwrap().patience, 5);
        for bad in [
            "hyperband",
            "median:warmup",
            "median:warmup=x",
            "threshold",
            "median:nope=1",
        ] {
            assert!(parse_policy(bad, m).is_err(), "{bad}");
        }
    }

    #[test]
    fn asha_replay_pauses_promotes_and_continues_curves() {
        // 9 trials of 9 epochs, one at a time, ranked as the scheduler test's learning rates
        // (0.001 ... 0.064, then 0.0005, 0.0002): rungs at 1 and 3.
        let quality = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 0.5, 0.2];
        let shapes: Vec<Vec<f64>> = quality
            .iter()
            .map(|q| (1..=9).map(|e| 1.0 / (1.0 + 0.01 * q * e as f64)).collect())
            .collect();
        let refs: Vec<&[f64]> = shapes.iter().map(|v| v.as_slice()).collect();
        let curves = stored(&refs);
        let asha = parse_policy("asha:min_epochs=1,eta=3", Metric::ValLoss).unwrap();
        let out = replay(&[Policy::Full, asha], &curves, 1, Metric::ValLoss);
        assert_eq!(out[0].trial_epochs, 81);
        assert!(out[1].top1_kept && out[1].regret == 0.0, "{:?}", out[1]);
        // Same as the scheduler's worst case (each new trial the best so far): 37 epochs.
        assert_eq!(out[1].trial_epochs, 37, "{:?}", out[1]);
    }

    #[test]
    fn replay_scores_compute_and_regret_against_the_full_grid() {
        // Trial 2 is the best (0.1 at epoch 6) after a bad first epoch; trial 3 is hopeless.
        let curves = stored(&[
            &[1.0, 0.8, 0.6, 0.5, 0.45, 0.44],
            &[1.2, 0.6, 0.4, 0.3, 0.2, 0.1],
            &[2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
            &[1.1, 0.9, 0.7, 0.6, 0.55, 0.5],
        ]);
        let policies = [
            Policy::Full,
            Policy::IEpoch { epoch: 2, top: 1 },
            parse_policy("threshold:after_epoch=2,worse_than=1.5", Metric::ValLoss).unwrap(),
        ];
        let out = replay(&policies, &curves, 2, Metric::ValLoss);
        assert_eq!(
            (out[0].trial_epochs, out[0].regret, out[0].top1_kept),
            (24, 0.0, true)
        );
        assert_eq!(out[0].fraction, 1.0);
        // i-epoch: 4 x 2 epochs, then the best at epoch 2 (trial 2, 0.6) runs its last 4.
        assert_eq!((out[1].trial_epochs, out[1].top1_kept), (12, true));
        assert_eq!(out[1].best_found, 0.1);
        // The threshold stops the hopeless trial at epoch 2: 24 - 4 epochs.
        assert_eq!((out[2].trial_epochs, out[2].regret), (20, 0.0));
        // i-epoch keeping the wrong trial: regret is the gap to 0.1.
        let wrong = replay(
            &[Policy::IEpoch { epoch: 1, top: 1 }],
            &curves,
            2,
            Metric::ValLoss,
        );
        assert!(!wrong[0].top1_kept);
        assert!((wrong[0].regret - (0.44 - 0.1)).abs() < 1e-12, "{wrong:?}");
    }
}
