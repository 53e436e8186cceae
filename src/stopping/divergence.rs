//! Stops a trial whose training or validation loss is no longer a finite number.

use serde_json::json;

use super::{Action, Decision, StoppingRule};
use crate::trainer::EpochReport;

/// Always on: a NaN or infinite loss ends the trial as `diverged`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DivergenceRule;

impl StoppingRule for DivergenceRule {
    fn name(&self) -> &'static str {
        "divergence"
    }

    fn decide(&self, curve: &[EpochReport]) -> Decision {
        let last = curve.last().expect("rules are asked after an epoch");
        let bad = [("train_loss", last.train_loss), ("val_loss", last.val_loss)]
            .into_iter()
            .find(|(_, v)| !v.is_finite());
        let (action, reason) = match bad {
            Some((name, v)) => (
                Action::Diverge,
                format!("{name} is {v} at epoch {}: the trial diverged", last.epoch),
            ),
            None => (Action::Continue, "losses are finite".to_string()),
        };
        Decision {
            rule: self.name(),
            epoch: last.epoch,
            action,
            reason,
            details: json!({
                "train_loss": crate::util::json_number(last.train_loss),
                "val_loss": crate::util::json_number(last.val_loss),
            }),
        }
    }
}
