//! Stops a trial when its metric has not improved by `min_delta` for `patience` epochs,
//! never during the first `warmup` epochs.

use serde_json::json;

use super::{Action, Context, Decision, StoppingRule, fmt4};
use crate::spec::{Choice, Metric};
use crate::trainer::EpochReport;
use crate::util::json_number;

#[derive(Debug, Clone)]
pub struct PatienceRule {
    pub metric: Metric,
    pub patience: usize,
    pub min_delta: f64,
    /// No stop at or before this epoch.
    pub warmup: usize,
}

impl PatienceRule {
    /// The best value so far and its epoch, counting only improvements larger than
    /// `min_delta` (so a slow drift does not keep resetting the count). NaN never improves.
    pub fn best(&self, curve: &[EpochReport]) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        for r in curve {
            let v = r.get(self.metric);
            if v.is_nan() {
                continue;
            }
            let improves = match best {
                None => true,
                Some((_, b)) if self.metric.minimize() => v < b - self.min_delta,
                Some((_, b)) => v > b + self.min_delta,
            };
            if improves {
                best = Some((r.epoch, v));
            }
        }
        best
    }
}

impl StoppingRule for PatienceRule {
    fn name(&self) -> &'static str {
        "patience"
    }

    fn decide(&self, ctx: &Context) -> Decision {
        let (curve, last) = (ctx.curve, ctx.last());
        let now = last.get(self.metric);
        let metric = self.metric.name();
        let (best_epoch, best) = self.best(curve).unwrap_or((0, f64::NAN));
        let since = last.epoch - best_epoch;
        let (action, reason) = if last.epoch <= self.warmup {
            (
                Action::Continue,
                format!("warm-up: epoch {} of {}", last.epoch, self.warmup),
            )
        } else if since >= self.patience {
            let reason = format!(
                "{metric} has not improved by more than {} for {since} epochs (best {} at epoch {best_epoch}, now {} at epoch {})",
                self.min_delta,
                fmt4(best),
                fmt4(now),
                last.epoch
            );
            (Action::Stop, reason)
        } else {
            (
                Action::Continue,
                format!("{since} of {} epochs without improvement", self.patience),
            )
        };
        Decision {
            rule: self.name(),
            epoch: last.epoch,
            action,
            reason,
            details: json!({
                "metric": metric,
                "value": json_number(now),
                "best": json_number(best),
                "best_epoch": best_epoch,
                "epochs_without_improvement": since,
                "patience": self.patience,
                "min_delta": self.min_delta,
                "warmup": self.warmup,
            }),
        }
    }

    /// It reads the trial's own curve only: the training thread can ask it too.
    fn own_check(&self) -> Option<super::OwnCheck> {
        Some(super::own_curve_check(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stopping::testing::{ask, curve, peers};

    #[test]
    fn table_of_curves_and_decisions() {
        let nan = f64::NAN;
        // (metric, patience, min_delta, curve, expected action, why)
        type Row<'a> = (Metric, usize, f64, &'a [f64], Action, &'a str);
        let rows: &[Row] = &[
            (
                Metric::ValLoss,
                2,
                0.0,
                &[1.0, 0.9, 0.8],
                Action::Continue,
                "still improving",
            ),
            (
                Metric::ValLoss,
                2,
                0.0,
                &[1.0, 0.9, 0.95],
                Action::Continue,
                "one bad epoch is within patience",
            ),
            (
                Metric::ValLoss,
                2,
                0.0,
                &[1.0, 0.9, 0.95, 0.92],
                Action::Stop,
                "two epochs without beating 0.9",
            ),
            (
                Metric::ValLoss,
                2,
                0.0,
                &[1.0, 0.9, 0.9, 0.9],
                Action::Stop,
                "equal is not better",
            ),
            (
                Metric::ValLoss,
                2,
                0.05,
                &[1.0, 0.98, 0.97],
                Action::Stop,
                "gains below min_delta do not count",
            ),
            (
                Metric::ValLoss,
                2,
                0.05,
                &[1.0, 0.98, 0.94],
                Action::Continue,
                "0.94 beats 1.0 by more than 0.05",
            ),
            (
                Metric::ValAccuracy,
                2,
                0.0,
                &[0.5, 0.6, 0.55, 0.58],
                Action::Stop,
                "accuracy is maximised",
            ),
            (
                Metric::ValAccuracy,
                2,
                0.0,
                &[0.5, 0.6, 0.55, 0.61],
                Action::Continue,
                "accuracy improved at the last epoch",
            ),
            (
                Metric::ValLoss,
                1,
                0.0,
                &[1.0],
                Action::Continue,
                "the first epoch is always the best so far",
            ),
            (
                Metric::ValLoss,
                2,
                0.0,
                &[1.0, nan, nan],
                Action::Stop,
                "NaN never improves",
            ),
            (
                Metric::ValLoss,
                3,
                0.0,
                &[1.2, 1.0, 1.01, 1.0, 0.99],
                Action::Continue,
                "noisy but a new best at the end",
            ),
        ];
        for (metric, patience, min_delta, values, expected, why) in rows {
            let rule = PatienceRule {
                metric: *metric,
                patience: *patience,
                min_delta: *min_delta,
                warmup: 0,
            };
            let d = ask(&rule, values, 100, &peers(&[]));
            assert_eq!(d.action, *expected, "{values:?}: {why} ({})", d.reason);
            assert_eq!(d.epoch, values.len());
            // The training thread's check says the same.
            let acts = rule
                .own_check()
                .expect("patience reads the trial's own curve");
            assert_eq!(
                acts(&curve(values), 100),
                *expected != Action::Continue,
                "{why}"
            );
        }
    }

    #[test]
    fn stop_reason_names_the_numbers_compared() {
        let rule = PatienceRule {
            metric: Metric::ValLoss,
            patience: 2,
            min_delta: 0.0,
            warmup: 0,
        };
        let d = ask(&rule, &[1.0, 0.5, 0.7, 0.8], 100, &peers(&[]));
        assert_eq!(d.action, Action::Stop);
        assert_eq!(
            d.reason,
            "val_loss has not improved by more than 0 for 2 epochs (best 0.5000 at epoch 2, now 0.8000 at epoch 4)"
        );
        assert_eq!(d.details["best_epoch"], 2);
        assert_eq!(d.details["best"], 0.5);
    }
}

#[cfg(test)]
mod warmup_tests {
    use super::*;
    use crate::stopping::testing::{ask, peers};

    #[test]
    fn no_stop_during_warmup() {
        let rule = PatienceRule {
            metric: Metric::ValLoss,
            patience: 1,
            min_delta: 0.0,
            warmup: 3,
        };
        let flat = [1.0, 1.0, 1.0, 1.0];
        assert_eq!(
            ask(&rule, &flat[..3], 10, &peers(&[])).action,
            Action::Continue
        );
        assert_eq!(ask(&rule, &flat, 10, &peers(&[])).action, Action::Stop);
    }
}
