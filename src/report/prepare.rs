//! Turns stored trials, metrics and decisions into the series the charts draw.

use std::collections::HashMap;

use crate::spec::{Choice, TrialConfig};
use crate::store::{DecisionRow, MetricPoint, TrialRow, TrialState};

/// Where and why a trial was stopped early or diverged.
#[derive(Debug, Clone, PartialEq)]
pub struct StopMark {
    pub epoch: usize,
    pub diverged: bool,
    pub reason: String,
}

/// One trial's curves. Points are `(epoch, value)`; non-finite values are kept (the chart
/// decides how to show them).
#[derive(Debug, Clone, PartialEq)]
pub struct TrialSeries {
    pub ordinal: usize,
    pub label: String,
    /// The value of the colouring hyperparameter, as text.
    pub group: String,
    pub state: TrialState,
    pub train_loss: Vec<(usize, f64)>,
    pub val_loss: Vec<(usize, f64)>,
    pub val_accuracy: Vec<(usize, f64)>,
    pub best: Option<(usize, f64)>,
    pub stop: Option<StopMark>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    pub sweep: String,
    /// The hyperparameter that colours `curves.png`.
    pub color_by: &'static str,
    /// Its values, in grid order.
    pub groups: Vec<String>,
    pub trials: Vec<TrialSeries>,
}

type Hyper = (&'static str, fn(&TrialConfig) -> String);

/// Colour by the first of these that varies in the sweep.
const COLOR_CANDIDATES: [Hyper; 4] = [
    ("activation", |c| c.activation.name().to_string()),
    ("learning_rate", |c| format!("{}", c.learning_rate)),
    ("batch_size", |c| c.batch_size.to_string()),
    ("epochs", |c| c.epochs.to_string()),
];

pub fn prepare(
    sweep: &str,
    trials: &[TrialRow],
    metrics: &[MetricPoint],
    decisions: &[DecisionRow],
) -> ChartData {
    let (color_by, key) = COLOR_CANDIDATES
        .iter()
        .find(|(_, f)| {
            let first = trials.first().map(|t| f(&t.config));
            trials.iter().any(|t| Some(f(&t.config)) != first)
        })
        .copied()
        .unwrap_or(COLOR_CANDIDATES[0]);
    let mut groups: Vec<String> = Vec::new();
    for t in trials {
        let g = key(&t.config);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut by_trial: HashMap<(i64, String), Vec<(usize, f64)>> = HashMap::new();
    for m in metrics {
        by_trial
            .entry((m.trial_id, m.name.clone()))
            .or_default()
            .push((m.epoch, m.value));
    }
    let mut series = |id: i64, name: &str| {
        let mut v = by_trial.remove(&(id, name.to_string())).unwrap_or_default();
        v.sort_by_key(|p| p.0);
        v
    };
    // The last stop decision of each trial (decisions come in epoch order).
    let last_stop: HashMap<i64, &DecisionRow> = decisions.iter().map(|d| (d.trial_id, d)).collect();
    let trials = trials
        .iter()
        .map(|t| {
            let stop = last_stop.get(&t.id).map(|d| StopMark {
                epoch: d.epoch,
                diverged: d.action == "diverge",
                reason: d.reason.clone(),
            });
            TrialSeries {
                ordinal: t.ordinal,
                label: t.config.label(),
                group: key(&t.config),
                state: t.state,
                train_loss: series(t.id, "train_loss"),
                val_loss: series(t.id, "val_loss"),
                val_accuracy: series(t.id, "val_accuracy"),
                best: t.best_epoch.zip(t.best_value),
                stop,
            }
        })
        .collect();
    ChartData {
        sweep: sweep.to_string(),
        color_by,
        groups,
        trials,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Activation, DatasetName, Optimizer};

    fn trial(id: i64, ordinal: usize, lr: f64, state: TrialState) -> TrialRow {
        TrialRow {
            id,
            ordinal,
            state,
            config: TrialConfig {
                learning_rate: lr,
                batch_size: 32,
                epochs: 3,
                activation: Activation::Relu,
                optimizer: Optimizer::Adam,
                hidden: vec![8],
                seed: 1,
                dataset: DatasetName::Digits,
                validation_fraction: 0.2,
            },
            attempt: 1,
            epochs_run: Some(2),
            best_epoch: Some(1),
            best_value: Some(0.5),
            stop_reason: None,
        }
    }

    fn point(trial_id: i64, name: &str, epoch: usize, value: f64) -> MetricPoint {
        MetricPoint {
            trial_id,
            name: name.into(),
            epoch,
            value,
        }
    }

    #[test]
    fn series_are_grouped_sorted_and_marked() {
        let trials = [
            trial(10, 0, 0.1, TrialState::Stopped),
            trial(11, 1, 0.01, TrialState::Diverged),
        ];
        let metrics = [
            point(10, "val_loss", 2, 0.6),
            point(10, "val_loss", 1, 0.5),
            point(11, "val_loss", 1, f64::INFINITY),
            point(10, "train_loss", 1, 0.7),
        ];
        let decisions = [DecisionRow {
            trial_id: 10,
            epoch: 2,
            rule: "patience".into(),
            action: "stop".into(),
            reason: "flat".into(),
        }];
        let data = prepare("s", &trials, &metrics, &decisions);
        // Only the learning rate varies, so it colours the chart.
        assert_eq!(data.color_by, "learning_rate");
        assert_eq!(data.groups, vec!["0.1".to_string(), "0.01".to_string()]);
        assert_eq!(
            data.trials[0].val_loss,
            vec![(1, 0.5), (2, 0.6)],
            "sorted by epoch"
        );
        assert_eq!(data.trials[0].train_loss, vec![(1, 0.7)]);
        assert_eq!(
            data.trials[0].stop,
            Some(StopMark {
                epoch: 2,
                diverged: false,
                reason: "flat".into()
            })
        );
        assert_eq!(data.trials[0].best, Some((1, 0.5)));
        assert_eq!(
            data.trials[1].val_loss,
            vec![(1, f64::INFINITY)],
            "non-finite values are kept"
        );
        assert_eq!(data.trials[1].stop, None);
    }
}
