//! Turns stored trials, metrics and decisions into the series the charts draw.

use std::collections::HashMap;

use crate::spec::{Metric, TrialConfig, varying};
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
    /// The value of the line-style hyperparameter, as text ("" when there is none).
    pub style: String,
    /// Every hyperparameter of the trial, as text, in expansion order.
    pub params: Vec<(&'static str, String)>,
    pub train_loss: Vec<(usize, f64)>,
    pub val_loss: Vec<(usize, f64)>,
    pub val_accuracy: Vec<(usize, f64)>,
    pub val_rmse: Vec<(usize, f64)>,
    /// Best epoch and value of the sweep's metric ([`ChartData::metric`]).
    pub best: Option<(usize, f64)>,
    pub stop: Option<StopMark>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    pub sweep: String,
    /// The metric whose best value each trial carries (the stopping metric, else val_loss).
    pub metric: Metric,
    /// The hyperparameters that differ between trials, in expansion order.
    pub varying: Vec<&'static str>,
    /// The hyperparameter that colours `curves.png` and splits `panels.png`.
    pub color_by: &'static str,
    /// Its values, in grid order.
    pub groups: Vec<String>,
    /// A second varying hyperparameter with at most [`MAX_STYLES`] values: line style in
    /// `curves.png`, colour within each panel of `panels.png`.
    pub style_by: Option<&'static str>,
    /// Its values, in grid order.
    pub styles: Vec<String>,
    pub trials: Vec<TrialSeries>,
}

/// Line styles that stay apart: solid, dashed, dotted, long dashes.
pub const MAX_STYLES: usize = 4;

impl ChartData {
    /// The ordinal of the trial with the best value of [`ChartData::metric`].
    pub fn best_trial(&self) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for t in &self.trials {
            if let Some((_, v)) = t.best
                && best.is_none_or(|b| self.metric.better(v, b.1))
            {
                best = Some((t.ordinal, v));
            }
        }
        best.map(|b| b.0)
    }
}

impl ChartData {
    /// The `k` trials with the best values of [`ChartData::metric`], best first.
    pub fn top(&self, k: usize) -> Vec<&TrialSeries> {
        let mut ranked: Vec<&TrialSeries> =
            self.trials.iter().filter(|t| t.best.is_some()).collect();
        ranked.sort_by(|a, b| {
            let (x, y) = (
                a.best.map_or(f64::NAN, |b| b.1),
                b.best.map_or(f64::NAN, |b| b.1),
            );
            if self.metric.better(x, y) {
                std::cmp::Ordering::Less
            } else if self.metric.better(y, x) {
                std::cmp::Ordering::Greater
            } else {
                a.ordinal.cmp(&b.ordinal)
            }
        });
        ranked.truncate(k);
        ranked
    }
}

/// The distinct items, in first-seen order (legends and axes follow grid order).
pub(crate) fn first_seen<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The distinct values of `key` over `trials`, in first-seen order.
fn distinct(trials: &[TrialRow], key: &str) -> Vec<String> {
    first_seen(trials.iter().map(|t| param_text(&t.config, key)))
}

/// Colour by the first of these that varies in the sweep, else by the first that varies.
const COLOR_PREFERENCE: [&str; 8] = [
    "activation",
    "optimizer",
    "hidden",
    "lr_schedule",
    "learning_rate",
    "batch_size",
    "train_fraction",
    "epochs",
];

/// The value of `key` in `config` as text ("-" if it has none). Only that value is
/// formatted: formatting them all for each key asked (a dozen times per trial) took most of
/// the 0.4-0.8 ms that preparing the digits sweep's final report took.
fn param_text(config: &TrialConfig, key: &str) -> String {
    config
        .param_values()
        .find(|(k, _)| *k == key)
        .map_or_else(|| "-".to_string(), |(_, v)| v.to_string())
}

pub fn prepare(
    sweep: &str,
    metric: Metric,
    trials: &[TrialRow],
    metrics: &[MetricPoint],
    decisions: &[DecisionRow],
) -> ChartData {
    let varies = varying(trials.iter().map(|t| &t.config));
    let color_by: &'static str = COLOR_PREFERENCE
        .iter()
        .find(|k| varies.contains(k))
        .or(varies.first())
        .copied()
        .unwrap_or("activation");
    let key = |c: &TrialConfig| param_text(c, color_by);
    let groups = distinct(trials, color_by);
    let style_by = COLOR_PREFERENCE
        .iter()
        .chain(&varies)
        .copied()
        .filter(|k| *k != color_by && varies.contains(k))
        .find(|k| distinct(trials, k).len() <= MAX_STYLES);
    let styles = style_by.map_or_else(Vec::new, |k| distinct(trials, k));
    let mut by_trial: HashMap<(i64, &str), Vec<(usize, f64)>> = HashMap::new();
    for m in metrics {
        by_trial
            .entry((m.trial_id, &m.name))
            .or_default()
            .push((m.epoch, m.value));
    }
    let mut series = |id: i64, name: &'static str| {
        let mut v = by_trial.remove(&(id, name)).unwrap_or_default();
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
                style: style_by.map_or_else(String::new, |k| param_text(&t.config, k)),
                params: t.config.params(),
                state: t.state,
                train_loss: series(t.id, "train_loss"),
                val_loss: series(t.id, "val_loss"),
                val_accuracy: series(t.id, "val_accuracy"),
                val_rmse: series(t.id, "val_rmse"),
                best: t.best_epoch.zip(t.best_value),
                stop,
            }
        })
        .collect();
    ChartData {
        sweep: sweep.to_string(),
        metric,
        varying: varies,
        color_by,
        groups,
        style_by,
        styles,
        trials,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Activation, DatasetName, Engine, LrSchedule, Optimizer, Task};

    fn trial(id: i64, ordinal: usize, lr: f64, state: TrialState) -> TrialRow {
        TrialRow {
            id,
            ordinal,
            state,
            config: TrialConfig {
                learning_rate: lr,
                lr_schedule: LrSchedule::Constant,
                lr_step_every: None,
                lr_step_gamma: None,
                batch_size: 32,
                epochs: 3,
                optimizer: Optimizer::Adam,
                momentum: None,
                beta1: Some(0.9),
                beta2: Some(0.999),
                weight_decay: 0.0,
                hidden: vec![8],
                dropout: 0.0,
                activation: Activation::Relu,
                negative_slope: None,
                train_fraction: 1.0,
                seed: 1,
                dataset: DatasetName::Digits,
                csv: None,
                task: Task::Classification,
                validation_fraction: 0.2,
                split_seed: 1,
                engine: Engine::Fused,
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
            name: crate::store::metric_name(name),
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
        let data = prepare("s", Metric::ValLoss, &trials, &metrics, &decisions);
        // Only the learning rate varies, so it colours the chart.
        assert_eq!(data.color_by, "learning_rate");
        assert_eq!(data.groups, vec!["0.1".to_string(), "0.01".to_string()]);
        assert_eq!(data.style_by, None, "nothing else varies");
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

    #[test]
    fn top_trials_follow_the_metric_direction() {
        let mut trials = vec![
            trial(1, 0, 0.1, TrialState::Completed),
            trial(2, 1, 0.2, TrialState::Completed),
            trial(3, 2, 0.3, TrialState::Diverged),
        ];
        trials[0].best_value = Some(0.9);
        trials[1].best_value = Some(0.95);
        trials[2].best_value = None;
        let acc = prepare("s", Metric::ValAccuracy, &trials, &[], &[]);
        let order: Vec<usize> = acc.top(5).iter().map(|t| t.ordinal).collect();
        assert_eq!(
            order,
            vec![1, 0],
            "higher accuracy first; no value, no rank"
        );
        assert_eq!(acc.best_trial(), Some(1));
        let loss = prepare("s", Metric::ValLoss, &trials, &[], &[]);
        let order: Vec<usize> = loss.top(1).iter().map(|t| t.ordinal).collect();
        assert_eq!(order, vec![0], "lower loss first");
    }
}
