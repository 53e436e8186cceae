//! How a finished trainer's result and the last decision become the trial's stored outcome.

use super::Running;
use crate::spec::Metric;
use crate::stopping::Action;
use crate::store::{TrialOutcome, TrialState};
use crate::trainer::{EpochReport, TrainError};

/// The best finite value of `metric` on `curve` and its epoch (the earliest, on ties).
pub fn best_of(curve: &[EpochReport], metric: Metric) -> Option<(usize, f64)> {
    curve
        .iter()
        .map(|r| (r.epoch, r.get(metric)))
        .filter(|(_, v)| v.is_finite())
        .fold(None, |best, (e, v)| match best {
            Some((_, b)) if (metric.minimize() && v >= b) || (!metric.minimize() && v <= b) => best,
            _ => Some((e, v)),
        })
}

pub(super) fn decide(
    r: &Running,
    result: Result<usize, TrainError>,
    metric: Metric,
) -> TrialOutcome {
    let base = TrialOutcome {
        state: TrialState::Completed,
        epochs_run: r.curve.len(),
        best: best_of(&r.curve, metric),
        stop_reason: None,
        error: None,
    };
    match (result, &r.stop) {
        (Err(e), _) => TrialOutcome {
            state: TrialState::Failed,
            error: Some(e.0),
            ..base
        },
        // Interrupted on its last epoch: nothing is left to run, so it completed.
        (Ok(_), _) if r.interrupted && r.curve.len() < r.claim.config.epochs => TrialOutcome {
            state: TrialState::Pending,
            stop_reason: Some(
                "interrupted; runs again from epoch 1 on the next `lcurve run`".into(),
            ),
            ..base
        },
        (Ok(_), Some(d)) => TrialOutcome {
            state: if d.action == Action::Diverge {
                TrialState::Diverged
            } else {
                TrialState::Stopped
            },
            stop_reason: Some(d.reason.clone()),
            ..base
        },
        (Ok(_), None) => base,
    }
}
