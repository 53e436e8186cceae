//! The median rule (and its percentile form): stops a trial whose best value so far is worse
//! than what the other trials had reached by the same epoch.

use serde_json::json;

use super::{Action, Context, Decision, StoppingRule, best_so_far, fmt4};
use crate::spec::{Choice, Metric};
use crate::util::json_number;

#[derive(Debug, Clone)]
pub struct MedianRule {
    pub metric: Metric,
    /// No stop at or before this epoch.
    pub warmup: usize,
    /// Decide only when at least this many other trials have reached the epoch.
    pub min_peers: usize,
    /// Keep trials whose best so far is within the best `percentile` % of the peers' at the
    /// same epoch: 50 is the median rule; 25 keeps only the top quarter.
    pub percentile: f64,
}

impl MedianRule {
    /// The value the best `percentile` % of `values` reach (linear interpolation between
    /// ranks, best first); NaN for none.
    pub fn cutoff(&self, values: &[f64]) -> f64 {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        if !self.metric.minimize() {
            v.reverse();
        }
        let pos = (self.percentile / 100.0).clamp(0.0, 1.0) * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    }
}

impl StoppingRule for MedianRule {
    fn name(&self) -> &'static str {
        "median"
    }

    fn decide(&self, ctx: &Context) -> Decision {
        let last = ctx.last();
        let epoch = last.epoch;
        let metric = self.metric.name();
        let mine = best_so_far(self.metric, ctx.curve);
        let others = ctx.peers.best_so_far_at(epoch, ctx.trial_id);
        let cutoff = self.cutoff(&others);
        let which = if self.percentile == 50.0 {
            "the median".to_string()
        } else {
            format!("the {}th percentile (best first)", self.percentile)
        };
        let (action, reason) = if epoch <= self.warmup {
            (
                Action::Continue,
                format!("warm-up: epoch {epoch} of {}", self.warmup),
            )
        } else if others.len() < self.min_peers {
            (
                Action::Continue,
                format!(
                    "{} other trials have reached epoch {epoch}; the rule needs {}",
                    others.len(),
                    self.min_peers
                ),
            )
        } else if !ctx.peers.better(mine, cutoff) && mine != cutoff {
            (
                Action::Stop,
                format!(
                    "best {metric} so far {} is worse than {which} {} of {} other trials at epoch {epoch}",
                    fmt4(mine),
                    fmt4(cutoff),
                    others.len()
                ),
            )
        } else {
            (
                Action::Continue,
                format!(
                    "best {metric} so far {} is within {which} {} of {} other trials at epoch {epoch}",
                    fmt4(mine),
                    fmt4(cutoff),
                    others.len()
                ),
            )
        };
        Decision {
            rule: self.name(),
            epoch,
            action,
            reason,
            details: json!({
                "metric": metric,
                "best_so_far": json_number(mine),
                "cutoff": json_number(cutoff),
                "percentile": self.percentile,
                "peers": others.len(),
                "min_peers": self.min_peers,
                "warmup": self.warmup,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stopping::testing::{ask, peers};

    fn rule(percentile: f64) -> MedianRule {
        MedianRule {
            metric: Metric::ValLoss,
            warmup: 1,
            min_peers: 3,
            percentile,
        }
    }

    #[test]
    fn table_of_curves_peers_and_decisions() {
        let nan = f64::NAN;
        let three: &[(&[f64], bool)] = &[
            (&[1.0, 0.5, 0.4], true),
            (&[1.0, 0.6, 0.5], true),
            (&[1.0, 0.7], false),
        ];
        // (percentile, curve, peers, expected, why)
        type Row<'a> = (f64, &'a [f64], &'a [(&'a [f64], bool)], Action, &'a str);
        let rows: &[Row] = &[
            (50.0, &[1.0], three, Action::Continue, "warm-up"),
            (
                50.0,
                &[1.0, 0.9],
                three,
                Action::Stop,
                "0.9 is worse than the median 0.6",
            ),
            (
                50.0,
                &[1.0, 0.55],
                three,
                Action::Continue,
                "0.55 beats the median 0.6",
            ),
            (
                50.0,
                &[1.0, 0.6],
                three,
                Action::Continue,
                "equal to the median is kept",
            ),
            (
                50.0,
                &[1.0, 0.9, 0.45],
                three,
                Action::Continue,
                "too few peers at epoch 3",
            ),
            (
                50.0,
                &[0.3, 0.9],
                three,
                Action::Continue,
                "the best so far counts, not the last value (noisy curve)",
            ),
            (
                25.0,
                &[1.0, 0.58],
                three,
                Action::Stop,
                "0.58 is outside the best quarter (0.55)",
            ),
            (
                75.0,
                &[1.0, 0.62],
                three,
                Action::Continue,
                "0.62 is within 75% (0.65)",
            ),
            (
                50.0,
                &[1.0, nan],
                three,
                Action::Stop,
                "NaN is never within: best so far 1.0",
            ),
            (
                50.0,
                &[1.0, 0.9],
                &[(&[1.0, 0.5], true), (&[1.0], false), (&[1.0], false)],
                Action::Continue,
                "peers with shorter curves do not count at epoch 2",
            ),
        ];
        for (percentile, values, peer_curves, expected, why) in rows {
            let d = ask(&rule(*percentile), values, 10, &peers(peer_curves));
            assert!(
                rule(*percentile).own_check().is_none(),
                "the median rule reads other trials: the scheduler must answer"
            );
            assert_eq!(d.action, *expected, "{values:?}: {why} ({})", d.reason);
        }
        let d = ask(&rule(50.0), &[1.0, 0.9], 10, &peers(three));
        assert_eq!(
            d.reason,
            "best val_loss so far 0.9000 is worse than the median 0.6000 of 3 other trials at epoch 2"
        );
        assert_eq!(d.details["cutoff"], 0.6);
    }

    #[test]
    fn accuracy_is_maximised() {
        let r = MedianRule {
            metric: Metric::ValAccuracy,
            warmup: 0,
            min_peers: 1,
            percentile: 50.0,
        };
        assert_eq!(r.cutoff(&[0.9, 0.5, 0.7]), 0.7);
        assert_eq!(
            MedianRule {
                percentile: 0.0,
                ..r
            }
            .cutoff(&[0.9, 0.5, 0.7]),
            0.9,
            "0 % keeps only the best"
        );
    }
}
