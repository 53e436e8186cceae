//! Data for the summary charts: best metric against one hyperparameter (a line per value of
//! others), a heatmap over two hyperparameters, and the learning curve over `train_fraction`.
//! Plain functions over [`ChartData`], tested exactly; `draw.rs` only draws what they return.

use super::prepare::{ChartData, TrialSeries, first_seen};
use crate::spec::Metric;

/// Numeric hyperparameters, in the order in which one is picked for the summary's x axis.
const X_KEYS: [&str; 9] = [
    "learning_rate",
    "batch_size",
    "weight_decay",
    "dropout",
    "momentum",
    "beta1",
    "negative_slope",
    "epochs",
    "lr_step_gamma",
];

/// Hyperparameters that give the summary's lines, preferred first (at most two are used).
const LINE_KEYS: [&str; 6] = [
    "activation",
    "batch_size",
    "optimizer",
    "hidden",
    "lr_schedule",
    "dropout",
];

/// One line of the summary chart: `(x, best)` points sorted by x. A best of NaN means every
/// trial at that point diverged or has no value.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    /// The line's value of each of [`Summary::line_keys`].
    pub parts: Vec<String>,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub metric: Metric,
    pub x_key: &'static str,
    /// Whether x spans enough (positive, 10x or more) for a log axis.
    pub log_x: bool,
    /// The hyperparameters that tell the lines apart (none: one line of all trials).
    pub line_keys: Vec<&'static str>,
    pub lines: Vec<Line>,
}

fn param<'a>(t: &'a TrialSeries, key: &str) -> Option<&'a str> {
    t.params
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
}

/// A trial's best value of the sweep's metric, NaN when it has none (diverged, failed).
fn best_of(t: &TrialSeries) -> f64 {
    t.best.map_or(f64::NAN, |b| b.1)
}

/// Best metric against the first numeric hyperparameter that varies (learning rate when it
/// does), one line per combination of up to two others; the value at a point is the best over
/// the trials there. `None` when no numeric hyperparameter varies.
pub fn summary(data: &ChartData) -> Option<Summary> {
    let x_key = X_KEYS.into_iter().find(|k| data.varying.contains(k))?;
    // The first varying key gives colours; a second one gives dashes, so it needs few values.
    let candidates: Vec<&'static str> = LINE_KEYS
        .into_iter()
        .filter(|k| *k != x_key && data.varying.contains(k))
        .collect();
    let values = |key: &str| first_seen(data.trials.iter().filter_map(|t| param(t, key))).len();
    let mut line_keys: Vec<&'static str> = candidates.first().copied().into_iter().collect();
    if let Some(k) = candidates
        .iter()
        .skip(1)
        .find(|k| values(k) <= super::prepare::MAX_STYLES)
    {
        line_keys.push(k);
    }
    // (label, x, values) in first-seen order.
    let mut cells: Vec<(String, f64, Vec<f64>)> = Vec::new();
    for t in &data.trials {
        let Some(x) = param(t, x_key).and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let label = if line_keys.is_empty() {
            "all trials".to_string()
        } else {
            line_keys
                .iter()
                .map(|k| format!("{k}={}", param(t, k).unwrap_or("-")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match cells.iter_mut().find(|c| c.0 == label && c.1 == x) {
            Some(c) => c.2.push(best_of(t)),
            None => cells.push((label, x, vec![best_of(t)])),
        }
    }
    let labels = first_seen(cells.iter().map(|c| c.0.clone()));
    let xs: Vec<f64> = cells.iter().map(|c| c.1).collect();
    let (lo, hi) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    let lines = labels
        .into_iter()
        .map(|label| {
            let mut points: Vec<(f64, f64)> = cells
                .iter()
                .filter(|c| c.0 == label)
                .map(|c| (c.1, data.metric.best(c.2.iter().copied())))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let parts = label
                .split(", ")
                .filter_map(|p| p.split_once('=').map(|kv| kv.1.to_string()))
                .collect();
            Line {
                label,
                parts,
                points,
            }
        })
        .collect();
    Some(Summary {
        metric: data.metric,
        x_key,
        log_x: lo > 0.0 && hi / lo >= 10.0,
        line_keys,
        lines,
    })
}

/// The best metric for each pair of values of two hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub metric: Metric,
    pub x_key: &'static str,
    pub y_key: &'static str,
    pub xs: Vec<String>,
    pub ys: Vec<String>,
    /// `cells[y][x]`: `None` where no trial has that pair; NaN where all of them diverged.
    pub cells: Vec<Vec<Option<f64>>>,
}

/// Values in numeric order when they are all numbers, else in first-seen order.
fn axis(data: &ChartData, key: &str) -> Vec<String> {
    let mut values = first_seen(
        data.trials
            .iter()
            .map(|t| param(t, key).unwrap_or("-").to_string()),
    );
    let numbers: Option<Vec<f64>> = values.iter().map(|v| v.parse::<f64>().ok()).collect();
    if let Some(numbers) = numbers {
        let mut paired: Vec<(f64, String)> = numbers.into_iter().zip(values).collect();
        paired.sort_by(|a, b| a.0.total_cmp(&b.0));
        values = paired.into_iter().map(|p| p.1).collect();
    }
    values
}

/// A heatmap over the first two varying hyperparameters (learning rate first when it varies;
/// the seed last, as it is noise rather than a choice). `None` with fewer than two.
pub fn heatmap(data: &ChartData) -> Option<Heatmap> {
    let mut keys: Vec<&'static str> = data.varying.clone();
    keys.sort_by_key(|k| match *k {
        "learning_rate" => 0,
        "seed" => 2,
        _ => 1,
    });
    let (&x_key, &y_key) = (keys.first()?, keys.get(1)?);
    let (xs, ys) = (axis(data, x_key), axis(data, y_key));
    let mut values: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); xs.len()]; ys.len()];
    for t in &data.trials {
        let at = |key, values: &[String]| {
            let v = param(t, key).unwrap_or("-");
            values.iter().position(|x| x == v)
        };
        if let (Some(xi), Some(yi)) = (at(x_key, &xs), at(y_key, &ys)) {
            values[yi][xi].push(best_of(t));
        }
    }
    let cells = values
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|v| (!v.is_empty()).then(|| data.metric.best(v)))
                .collect()
        })
        .collect();
    Some(Heatmap {
        metric: data.metric,
        x_key,
        y_key,
        xs,
        ys,
        cells,
    })
}

/// Mean, lowest and highest of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Self> {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return None;
        }
        Some(Self {
            mean: finite.iter().sum::<f64>() / finite.len() as f64,
            min: finite.iter().copied().fold(f64::INFINITY, f64::min),
            max: finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// One training-set size of the learning curve.
#[derive(Debug, Clone, PartialEq)]
pub struct LearningPoint {
    pub fraction: f64,
    pub trials: usize,
    /// Each trial's lowest validation loss.
    pub val: Option<Spread>,
    /// Each trial's training loss at the epoch of that lowest validation loss.
    pub train: Option<Spread>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LearningCurve {
    /// The settings shared by the trials drawn ("" when only train_fraction and seed vary).
    pub config: String,
    pub points: Vec<LearningPoint>,
}

/// The classical learning curve, when `train_fraction` varies: loss against training-set
/// share, over seeds. When other hyperparameters vary too, the curve is the one setting that
/// is best at the largest share (mean lowest validation loss).
pub fn learning_curve(data: &ChartData) -> Option<LearningCurve> {
    if !data.varying.contains(&"train_fraction") {
        return None;
    }
    let others: Vec<&str> = data
        .varying
        .iter()
        .copied()
        .filter(|k| !matches!(*k, "train_fraction" | "seed"))
        .collect();
    let config_of = |t: &TrialSeries| {
        others
            .iter()
            .map(|k| format!("{k}={}", param(t, k).unwrap_or("-")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fraction = |t: &TrialSeries| {
        param(t, "train_fraction")
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // Each trial's lowest validation loss and the training loss at that epoch.
    let scored: Vec<(String, f64, f64, f64)> = data
        .trials
        .iter()
        .map(|t| {
            let best = t
                .val_loss
                .iter()
                .filter(|p| p.1.is_finite())
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let (val, train) = best.map_or((f64::NAN, f64::NAN), |&(e, v)| {
                let train = t
                    .train_loss
                    .iter()
                    .find(|p| p.0 == e)
                    .map_or(f64::NAN, |p| p.1);
                (v, train)
            });
            (config_of(t), fraction(t), val, train)
        })
        .collect();
    let largest = scored.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
    let configs = first_seen(scored.iter().map(|s| s.0.clone()));
    let mean_at_largest = |c: &str| {
        Spread::of(
            &scored
                .iter()
                .filter(|s| s.0 == c && s.1 == largest)
                .map(|s| s.2)
                .collect::<Vec<_>>(),
        )
        .map_or(f64::INFINITY, |s| s.mean)
    };
    let config = configs
        .iter()
        .min_by(|a, b| mean_at_largest(a).total_cmp(&mean_at_largest(b)))?
        .clone();
    let mut fractions: Vec<f64> = scored
        .iter()
        .filter(|s| s.0 == config && s.1.is_finite())
        .map(|s| s.1)
        .collect();
    fractions.sort_by(f64::total_cmp);
    fractions.dedup();
    let points = fractions
        .into_iter()
        .map(|f| {
            let here: Vec<&(String, f64, f64, f64)> = scored
                .iter()
                .filter(|s| s.0 == config && s.1 == f)
                .collect();
            LearningPoint {
                fraction: f,
                trials: here.len(),
                val: Spread::of(&here.iter().map(|s| s.2).collect::<Vec<_>>()),
                train: Spread::of(&here.iter().map(|s| s.3).collect::<Vec<_>>()),
            }
        })
        .collect();
    Some(LearningCurve { config, points })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TrialState;

    fn series(ordinal: usize, params: &[(&'static str, &str)], best: f64) -> TrialSeries {
        TrialSeries {
            ordinal,
            label: String::new(),
            group: String::new(),
            style: String::new(),
            params: params.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            state: if best.is_nan() {
                TrialState::Diverged
            } else {
                TrialState::Completed
            },
            train_loss: vec![(1, best + 0.5), (2, best + 0.1)],
            val_loss: vec![(1, best + 1.0), (2, best)],
            val_accuracy: Vec::new(),
            val_rmse: Vec::new(),
            best: (!best.is_nan()).then_some((2, best)),
            stop: None,
        }
    }

    fn data(varying: &[&'static str], trials: Vec<TrialSeries>) -> ChartData {
        ChartData {
            sweep: "s".into(),
            metric: Metric::ValLoss,
            varying: varying.to_vec(),
            color_by: varying[0],
            groups: Vec::new(),
            style_by: None,
            styles: Vec::new(),
            trials,
        }
    }

    #[test]
    fn summary_takes_the_best_per_point_and_keeps_diverged_points() {
        let lr_act = |lr, act, seed, best| {
            series(
                0,
                &[("learning_rate", lr), ("activation", act), ("seed", seed)],
                best,
            )
        };
        let d = data(
            &["learning_rate", "activation", "seed"],
            vec![
                lr_act("0.1", "relu", "1", 0.5),
                lr_act("0.001", "relu", "1", 0.3),
                lr_act("0.001", "relu", "2", 0.2),
                lr_act("0.1", "tanh", "1", f64::NAN),
                lr_act("0.001", "tanh", "1", 0.4),
            ],
        );
        let s = summary(&d).unwrap();
        assert_eq!(s.x_key, "learning_rate");
        assert!(s.log_x, "0.001 to 0.1 spans 100x");
        assert_eq!(s.lines.len(), 2);
        assert_eq!(s.line_keys, vec!["activation"]);
        assert_eq!(s.lines[0].label, "activation=relu");
        assert_eq!(s.lines[0].parts, vec!["relu"]);
        assert_eq!(
            s.lines[0].points,
            vec![(0.001, 0.2), (0.1, 0.5)],
            "sorted by x; best of the two seeds"
        );
        assert_eq!(s.lines[1].label, "activation=tanh");
        assert_eq!(s.lines[1].points[0], (0.001, 0.4));
        assert!(s.lines[1].points[1].1.is_nan(), "diverged stays NaN");
    }

    #[test]
    fn summary_needs_a_numeric_hyperparameter() {
        let d = data(
            &["activation"],
            vec![
                series(0, &[("activation", "relu")], 0.1),
                series(1, &[("activation", "tanh")], 0.2),
            ],
        );
        assert_eq!(summary(&d), None);
    }

    #[test]
    fn heatmap_orders_numbers_and_marks_empty_and_diverged_cells() {
        let t = |lr, bs, best| series(0, &[("learning_rate", lr), ("batch_size", bs)], best);
        let d = data(
            &["batch_size", "learning_rate"],
            vec![
                t("0.01", "128", 0.3),
                t("0.001", "32", 0.2),
                t("0.01", "32", f64::NAN),
            ],
        );
        let h = heatmap(&d).unwrap();
        assert_eq!((h.x_key, h.y_key), ("learning_rate", "batch_size"));
        assert_eq!(h.xs, vec!["0.001", "0.01"]);
        assert_eq!(h.ys, vec!["32", "128"]);
        assert_eq!(h.cells[0][0], Some(0.2));
        assert!(h.cells[0][1].unwrap().is_nan(), "diverged");
        assert_eq!(h.cells[1][0], None, "no trial at lr 0.001, batch 128");
        assert_eq!(h.cells[1][1], Some(0.3));
        assert_eq!(heatmap(&data(&["activation"], Vec::new())), None);
    }

    #[test]
    fn learning_curve_averages_seeds_of_the_best_setting() {
        let t = |f, seed, lr, best| {
            series(
                0,
                &[("train_fraction", f), ("seed", seed), ("learning_rate", lr)],
                best,
            )
        };
        let d = data(
            &["train_fraction", "learning_rate", "seed"],
            vec![
                t("0.5", "1", "0.1", 0.8),
                t("1", "1", "0.1", 0.6),
                t("0.5", "1", "0.01", 0.5),
                t("0.5", "2", "0.01", 0.7),
                t("1", "1", "0.01", 0.3),
                t("1", "2", "0.01", 0.5),
            ],
        );
        let lc = learning_curve(&d).unwrap();
        assert_eq!(lc.config, "learning_rate=0.01", "best at the largest share");
        assert_eq!(lc.points.len(), 2);
        assert_eq!(lc.points[0].fraction, 0.5);
        assert_eq!(lc.points[0].trials, 2);
        let v = lc.points[0].val.unwrap();
        assert!((v.mean - 0.6).abs() < 1e-12 && v.min == 0.5 && v.max == 0.7);
        let tr = lc.points[1].train.unwrap();
        assert!(
            (tr.mean - 0.5).abs() < 1e-12,
            "train loss at the best epoch: 0.4 and 0.6"
        );
        assert_eq!(learning_curve(&data(&["learning_rate"], Vec::new())), None);
    }
}
