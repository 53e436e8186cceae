//! Stops a trial whose metric is still worse than a fixed value after a given epoch.

use serde_json::json;

use super::{Action, Context, Decision, StoppingRule, fmt4};
use crate::spec::{Choice, Metric};
use crate::util::json_number;

#[derive(Debug, Clone)]
pub struct ThresholdRule {
    pub metric: Metric,
    /// Checked from this epoch on.
    pub after_epoch: usize,
    /// Stop when the metric is worse than this (above it for losses, below for accuracy).
    pub worse_than: f64,
}

impl StoppingRule for ThresholdRule {
    fn name(&self) -> &'static str {
        "threshold"
    }

    fn decide(&self, ctx: &Context) -> Decision {
        let last = ctx.last();
        let now = last.get(self.metric);
        let metric = self.metric.name();
        // NaN is never within the threshold.
        let within = if self.metric.minimize() {
            now <= self.worse_than
        } else {
            now >= self.worse_than
        };
        let worse = !within;
        let side = if self.metric.minimize() {
            "above"
        } else {
            "below"
        };
        let (action, reason) = if last.epoch < self.after_epoch {
            (
                Action::Continue,
                format!("checked from epoch {}", self.after_epoch),
            )
        } else if worse {
            (
                Action::Stop,
                format!(
                    "{metric} is {} at epoch {}, {side} the threshold {} (checked from epoch {})",
                    fmt4(now),
                    last.epoch,
                    self.worse_than,
                    self.after_epoch
                ),
            )
        } else {
            (
                Action::Continue,
                format!(
                    "{metric} {} is within the threshold {}",
                    fmt4(now),
                    self.worse_than
                ),
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
                "threshold": self.worse_than,
                "after_epoch": self.after_epoch,
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
    use crate::stopping::testing::{ask, peers};

    #[test]
    fn table_of_curves_and_decisions() {
        let nan = f64::NAN;
        // (metric, after, threshold, curve, expected, why)
        type Row<'a> = (Metric, usize, f64, &'a [f64], Action, &'a str);
        let rows: &[Row] = &[
            (
                Metric::ValLoss,
                3,
                1.0,
                &[2.0, 2.0],
                Action::Continue,
                "before epoch 3",
            ),
            (
                Metric::ValLoss,
                3,
                1.0,
                &[2.0, 2.0, 1.5],
                Action::Stop,
                "1.5 > 1.0 at epoch 3",
            ),
            (
                Metric::ValLoss,
                3,
                1.0,
                &[2.0, 2.0, 0.9],
                Action::Continue,
                "0.9 <= 1.0",
            ),
            (
                Metric::ValLoss,
                1,
                1.0,
                &[nan],
                Action::Stop,
                "NaN is never within",
            ),
            (
                Metric::ValAccuracy,
                2,
                0.5,
                &[0.1, 0.4],
                Action::Stop,
                "accuracy below 0.5",
            ),
            (
                Metric::ValAccuracy,
                2,
                0.5,
                &[0.1, 0.6],
                Action::Continue,
                "accuracy above",
            ),
        ];
        for (metric, after, threshold, values, expected, why) in rows {
            let rule = ThresholdRule {
                metric: *metric,
                after_epoch: *after,
                worse_than: *threshold,
            };
            let d = ask(&rule, values, 10, &peers(&[]));
            assert_eq!(d.action, *expected, "{values:?}: {why} ({})", d.reason);
        }
    }
}
