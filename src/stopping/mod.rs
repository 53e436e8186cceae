//! The `StoppingRule` extension point: pure functions from a trial's curve (and, for
//! cross-trial rules, the other trials' curves) to a decision with its reason. Rules know
//! nothing of the store, the scheduler or burn; the scheduler, or `replay`, acts.

mod asha;
mod divergence;
mod extrapolation;
mod median;
mod patience;
mod peers;
mod threshold;

pub use asha::Asha;
pub use divergence::DivergenceRule;
pub use extrapolation::{ExtrapolationRule, Forecast, forecast};
pub use median::MedianRule;
pub use patience::PatienceRule;
pub use peers::Peers;
pub use threshold::ThresholdRule;

use std::sync::Arc;

use crate::spec::{Metric, StoppingSpec};
use crate::trainer::EpochReport;

/// What a rule wants done after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Stop early; the trial ends `stopped`.
    Stop,
    /// Stop because the numbers are no longer finite; the trial ends `diverged`.
    Diverge,
    /// ASHA: stop for now, keep the state, maybe continue later.
    Pause,
    /// ASHA: go on past a rung.
    Promote,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Continue => "continue",
            Action::Stop => "stop",
            Action::Diverge => "diverge",
            Action::Pause => "pause",
            Action::Promote => "promote",
        }
    }
}

/// A rule's decision at one epoch, with a sentence for people and the numbers it compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub rule: &'static str,
    pub epoch: usize,
    pub action: Action,
    pub reason: String,
    pub details: serde_json::Value,
}

/// What a rule sees after an epoch.
pub struct Context<'a> {
    /// This trial's curve so far: `curve[i]` is epoch `i + 1`; never empty.
    pub curve: &'a [EpochReport],
    /// The epochs this trial is planned to run (its config's `epochs`).
    pub max_epochs: usize,
    /// This trial's id, so cross-trial rules leave it out of its peers.
    pub trial_id: i64,
    /// Every trial's curve of the sweep's stopping metric so far.
    pub peers: &'a Peers,
}

impl Context<'_> {
    pub fn last(&self) -> &EpochReport {
        self.curve.last().expect("rules are asked after an epoch")
    }
}

/// Decides, after each epoch, whether the trial goes on.
pub trait StoppingRule: Send + Sync {
    fn name(&self) -> &'static str;
    fn decide(&self, ctx: &Context) -> Decision;
    /// For a rule that decides from the trial's own curve alone (not its peers): the same
    /// decision, for the training thread to make, true when the rule does not say continue
    /// (see [`own_curve_check`]). With such a check for every rule, a trainer goes on
    /// without waiting for the scheduler's answer while the checks say continue, and waits
    /// for it after an epoch a rule acts on. `None` (the default): the trainer waits for the
    /// answer after every epoch.
    fn own_check(&self) -> Option<OwnCheck> {
        None
    }
}

/// See [`StoppingRule::own_check`]: `(the curve so far, the planned epochs) -> acts`.
pub type OwnCheck = Arc<dyn Fn(&[EpochReport], usize) -> bool + Send + Sync>;

/// An [`OwnCheck`] that asks a copy of `rule` with no peers: for rules that read nothing but
/// the trial's own curve, so the answer is the scheduler's.
pub fn own_curve_check<R: StoppingRule + Clone + 'static>(rule: &R) -> OwnCheck {
    let rule = rule.clone();
    let peers = Peers::new(Metric::ValLoss);
    Arc::new(move |curve: &[EpochReport], max_epochs: usize| {
        let ctx = Context {
            curve,
            max_epochs,
            trial_id: 0,
            peers: &peers,
        };
        rule.decide(&ctx).action != Action::Continue
    })
}

/// Asks every rule; the first that does not say continue wins, otherwise every rule's
/// continue is returned (so each epoch stores why the trial went on).
pub fn decide_all(rules: &[Box<dyn StoppingRule>], ctx: &Context) -> Vec<Decision> {
    let mut decisions = Vec::with_capacity(rules.len());
    for rule in rules {
        let d = rule.decide(ctx);
        let stop = d.action != Action::Continue;
        decisions.push(d);
        if stop {
            break;
        }
    }
    decisions
}

/// The rules a sweep's `[stopping]` table asks for; divergence is always checked first.
pub fn rules_for(stopping: Option<&StoppingSpec>) -> Vec<Box<dyn StoppingRule>> {
    let mut rules: Vec<Box<dyn StoppingRule>> = vec![Box::new(DivergenceRule {
        factor: stopping.and_then(|s| s.divergence_factor),
    })];
    let Some(s) = stopping else {
        return rules;
    };
    if let Some(p) = &s.patience {
        rules.push(Box::new(PatienceRule {
            metric: s.metric,
            patience: p.patience,
            min_delta: p.min_delta,
            warmup: p.warmup,
        }));
    }
    if let Some(t) = &s.threshold {
        rules.push(Box::new(ThresholdRule {
            metric: s.metric,
            after_epoch: t.after_epoch,
            worse_than: t.worse_than,
        }));
    }
    if let Some(m) = &s.median {
        rules.push(Box::new(MedianRule {
            metric: s.metric,
            warmup: m.warmup,
            min_peers: m.min_peers,
            percentile: m.percentile,
        }));
    }
    if let Some(x) = &s.extrapolation {
        rules.push(Box::new(ExtrapolationRule {
            metric: s.metric,
            warmup: x.warmup,
            min_probability: x.min_probability,
        }));
    }
    rules
}

/// Formats a metric value for a reason sentence.
pub(crate) fn fmt4(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        crate::util::format_float(x)
    }
}

/// The metric's best value on `curve` (NaN if none is finite).
pub(crate) fn best_so_far(metric: Metric, curve: &[EpochReport]) -> f64 {
    metric.best(curve.iter().map(|r| r.get(metric)))
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A curve whose losses and accuracy are all `values` (epochs 1, 2, ...).
    pub fn curve(values: &[f64]) -> Vec<EpochReport> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| EpochReport {
                epoch: i + 1,
                train_loss: v,
                val_loss: v,
                val_accuracy: Some(v),
                val_rmse: None,
                seconds: 0.0,
                steps: Vec::new(),
            })
            .collect()
    }

    /// Peers with the given val_loss curves (ids 100, 101, ...), finished or not.
    pub fn peers(curves: &[(&[f64], bool)]) -> Peers {
        let mut p = Peers::new(Metric::ValLoss);
        for (i, (values, finished)) in curves.iter().enumerate() {
            for (e, v) in values.iter().enumerate() {
                p.record(100 + i as i64, e + 1, *v);
            }
            if *finished {
                p.finish(100 + i as i64);
            }
        }
        p
    }

    /// Asks `rule` about `values` with `peers`, for a trial planned to run `max_epochs`.
    pub fn ask(
        rule: &dyn StoppingRule,
        values: &[f64],
        max_epochs: usize,
        peers: &Peers,
    ) -> Decision {
        let c = curve(values);
        rule.decide(&Context {
            curve: &c,
            max_epochs,
            trial_id: 1,
            peers,
        })
    }
}
