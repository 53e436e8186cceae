//! Stops a trial whose loss is no longer a finite number, or has blown up to `factor` times
//! its first value.

use serde_json::json;

use super::{Action, Context, Decision, StoppingRule, fmt4};
use crate::util::json_number;

/// Always on: a NaN or infinite loss ends the trial as `diverged`; with `factor`, so does a
/// loss above `factor` times its epoch-1 value.
#[derive(Debug, Clone, Copy, Default)]
pub struct DivergenceRule {
    pub factor: Option<f64>,
}

impl StoppingRule for DivergenceRule {
    fn name(&self) -> &'static str {
        "divergence"
    }

    fn decide(&self, ctx: &Context) -> Decision {
        let last = ctx.last();
        let first = &ctx.curve[0];
        let series = [
            ("train_loss", last.train_loss, first.train_loss),
            ("val_loss", last.val_loss, first.val_loss),
        ];
        let not_finite = series.iter().find(|(_, v, _)| !v.is_finite());
        let blown_up = self.factor.and_then(|k| {
            series
                .iter()
                .find(|(_, v, f)| f.is_finite() && *f > 0.0 && *v > k * f)
                .map(|s| (k, s))
        });
        let (action, reason) = match (not_finite, blown_up) {
            (Some((name, v, _)), _) => (
                Action::Diverge,
                format!("{name} is {v} at epoch {}: the trial diverged", last.epoch),
            ),
            (None, Some((k, (name, v, f)))) => (
                Action::Diverge,
                format!(
                    "{name} is {} at epoch {}, more than {k} times its first value {}: the trial diverged",
                    fmt4(*v),
                    last.epoch,
                    fmt4(*f)
                ),
            ),
            (None, None) => (Action::Continue, "losses are finite".to_string()),
        };
        Decision {
            rule: self.name(),
            epoch: last.epoch,
            action,
            reason,
            details: json!({
                "train_loss": json_number(last.train_loss),
                "val_loss": json_number(last.val_loss),
                "first_train_loss": json_number(first.train_loss),
                "first_val_loss": json_number(first.val_loss),
                "factor": self.factor,
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
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        // (factor, curve, expected, why)
        let rows: &[(Option<f64>, &[f64], Action, &str)] = &[
            (None, &[1.0, 0.5], Action::Continue, "finite and falling"),
            (None, &[1.0, nan], Action::Diverge, "NaN"),
            (None, &[1.0, inf], Action::Diverge, "infinite"),
            (
                None,
                &[1.0, 50.0],
                Action::Continue,
                "no factor: large is allowed",
            ),
            (Some(10.0), &[1.0, 50.0], Action::Diverge, "50 > 10 x 1"),
            (
                Some(10.0),
                &[1.0, 9.0],
                Action::Continue,
                "9 is within 10 x 1",
            ),
            (
                Some(10.0),
                &[nan, 5.0],
                Action::Continue,
                "no finite first value to compare with",
            ),
        ];
        let p = peers(&[]);
        for (factor, values, expected, why) in rows {
            let rule = DivergenceRule { factor: *factor };
            let d = ask(&rule, values, 10, &p);
            assert_eq!(d.action, *expected, "{values:?}: {why} ({})", d.reason);
            // The training thread's check says the same.
            let acts = rule
                .own_check()
                .expect("divergence reads the trial's own curve");
            assert_eq!(
                acts(&curve(values), 10),
                *expected != Action::Continue,
                "{why}"
            );
        }
        let d = ask(&DivergenceRule { factor: Some(10.0) }, &[2.0, 30.0], 10, &p);
        assert_eq!(
            d.reason,
            "train_loss is 30.0000 at epoch 2, more than 10 times its first value 2.0000: the trial diverged"
        );
    }
}
