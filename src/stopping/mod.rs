//! The `StoppingRule` extension point: pure functions from a trial's curve to a decision with
//! its reason. Rules know nothing of the store, the scheduler or burn; the scheduler acts.

mod divergence;
mod patience;

pub use divergence::DivergenceRule;
pub use patience::PatienceRule;

use crate::trainer::EpochReport;

/// What a rule wants done after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Stop early; the trial ends `stopped`.
    Stop,
    /// Stop because the numbers are no longer finite; the trial ends `diverged`.
    Diverge,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Continue => "continue",
            Action::Stop => "stop",
            Action::Diverge => "diverge",
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

/// Decides, after each epoch, from the trial's curve so far (`curve[i]` is epoch `i + 1`).
pub trait StoppingRule: Send + Sync {
    fn name(&self) -> &'static str;
    fn decide(&self, curve: &[EpochReport]) -> Decision;
}

/// Asks every rule; the first that does not say continue wins, otherwise the last continue
/// is returned (so each epoch has one stored decision per sweep).
pub fn decide_all(rules: &[Box<dyn StoppingRule>], curve: &[EpochReport]) -> Vec<Decision> {
    let mut decisions = Vec::with_capacity(rules.len());
    for rule in rules {
        let d = rule.decide(curve);
        let stop = d.action != Action::Continue;
        decisions.push(d);
        if stop {
            break;
        }
    }
    decisions
}
