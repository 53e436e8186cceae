//! What `lcurve ls`, `show`, `plan`, `query`, `trial` and `export` print: plain functions
//! from stored rows to [`Rows`] (or, for `plan`, a table for people).

use std::collections::HashMap;

use sqlx::{Column, Row, TypeInfo, ValueRef};

use crate::output::{Cell, Format, Rows};
use crate::spec::{PlannedTrial, Task, TrialConfig, varying};
use crate::store::{MetricPoint, SweepOverview, TrialRow, TrialScores, TrialState};
use crate::trainer::EpochReport;

/// `lcurve ls`: one row per sweep with trial counts by state.
pub fn sweeps_rows(sweeps: &[SweepOverview]) -> Rows {
    let mut header = vec!["sweep", "trials"];
    header.extend(TrialState::ALL.iter().map(|s| s.as_str()));
    header.extend(["created", "finished"]);
    let mut out = Rows::new(&header);
    for s in sweeps {
        let count = |state| s.counts.iter().find(|c| c.0 == state).map_or(0, |c| c.1);
        let mut row = vec![
            Cell::text(s.sweep.name.clone()),
            Cell::Int(s.counts.iter().map(|c| c.1).sum::<usize>() as i64),
        ];
        row.extend(
            TrialState::ALL
                .iter()
                .map(|&st| Cell::Int(count(st) as i64)),
        );
        row.push(Cell::text(s.sweep.created_at.clone()));
        row.push(s.sweep.finished_at.clone().map_or(Cell::Null, Cell::Text));
        out.rows.push(row);
    }
    out
}

/// A trial's place on the leaderboard.
#[derive(Debug, Clone)]
pub struct Standing<'a> {
    pub trial: &'a TrialRow,
    pub scores: TrialScores,
}

/// Every trial's [`TrialScores`] computed from its metrics, in one pass (the report has the
/// metrics anyway; `show` reads the stored scores instead, see [`Store::scores`]).
pub fn scores_from_metrics(
    trials: &[TrialRow],
    metrics: &[MetricPoint],
) -> HashMap<i64, TrialScores> {
    let mut by_id: HashMap<i64, TrialScores> = trials
        .iter()
        .map(|t| (t.id, TrialScores::default()))
        .collect();
    let mut last_epoch: HashMap<i64, usize> = HashMap::new();
    for m in metrics {
        let Some(s) = by_id.get_mut(&m.trial_id) else {
            continue;
        };
        let finite = m.value.is_finite().then_some(m.value);
        match &*m.name {
            "val_loss" => {
                s.epochs_run += 1;
                s.best_val_loss = better(s.best_val_loss, finite, f64::min);
                let last = last_epoch.entry(m.trial_id).or_default();
                if m.epoch >= *last {
                    *last = m.epoch;
                    s.final_val_loss = Some(m.value);
                }
            }
            "val_accuracy" => s.best_val_accuracy = better(s.best_val_accuracy, finite, f64::max),
            "val_rmse" => s.best_val_rmse = better(s.best_val_rmse, finite, f64::min),
            _ => {}
        }
    }
    by_id
}

/// Trials with their scores, best validation loss first (trials without one last).
pub fn leaderboard<'a>(
    trials: &'a [TrialRow],
    scores: &HashMap<i64, TrialScores>,
) -> Vec<Standing<'a>> {
    let mut rows: Vec<Standing> = trials
        .iter()
        .map(|t| Standing {
            trial: t,
            scores: scores.get(&t.id).cloned().unwrap_or_default(),
        })
        .collect();
    let ordinal = |s: &Standing| s.trial.ordinal;
    rows.sort_by(
        |a, b| match (a.scores.best_val_loss, b.scores.best_val_loss) {
            (Some(x), Some(y)) => x.total_cmp(&y).then(ordinal(a).cmp(&ordinal(b))),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => ordinal(a).cmp(&ordinal(b)),
        },
    );
    rows
}

fn better(best: Option<f64>, new: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (best, new) {
        (Some(b), Some(n)) => Some(pick(b, n)),
        (b, n) => b.or(n),
    }
}

/// The hyperparameter columns worth showing: those that vary, or the main ones when none do.
fn param_columns<'a>(
    configs: impl IntoIterator<Item = &'a TrialConfig> + Clone,
) -> Vec<&'static str> {
    let keys = varying(configs);
    if keys.is_empty() {
        vec!["learning_rate", "batch_size", "epochs", "activation"]
    } else {
        keys
    }
}

fn param_cells(config: &TrialConfig, keys: &[&str]) -> Vec<String> {
    let params = config.params();
    keys.iter()
        .map(|k| {
            params
                .iter()
                .find(|(p, _)| p == k)
                .map_or_else(|| "-".to_string(), |(_, v)| v.clone())
        })
        .collect()
}

/// `lcurve show`: the leaderboard with the hyperparameters that vary in the sweep, best
/// validation loss first, or sorted by `sort` (any column; best first for metrics,
/// ascending otherwise; `reverse` flips it).
pub fn leaderboard_rows(
    trials: &[TrialRow],
    scores: &HashMap<i64, TrialScores>,
    sort: Option<&str>,
    reverse: bool,
    limit: Option<usize>,
) -> Result<Rows, String> {
    let keys = param_columns(trials.iter().map(|t| &t.config));
    let regression = trials.iter().any(|t| t.config.task == Task::Regression);
    let score = if regression {
        "best_val_rmse"
    } else {
        "best_val_accuracy"
    };
    let mut header = vec!["ordinal"];
    header.extend(&keys);
    header.extend([
        "best_val_loss",
        score,
        "final_val_loss",
        "epochs_run",
        "epochs",
        "state",
        "stop_reason",
    ]);
    let mut out = Rows::new(&header);
    let mut standings = leaderboard(trials, scores);
    if sort.is_none() {
        // Already in order: only the rows shown need their cells (10,000 trials, --limit 20).
        if reverse {
            standings.reverse();
        }
        standings.truncate(limit.unwrap_or(usize::MAX));
    }
    for st in standings {
        let (tr, s) = (st.trial, &st.scores);
        let c = &tr.config;
        let mut row = vec![Cell::Int(tr.ordinal as i64)];
        row.extend(param_cells(c, &keys).into_iter().map(Cell::Text));
        row.extend([
            Cell::opt_score(s.best_val_loss),
            Cell::opt_score(if regression {
                s.best_val_rmse
            } else {
                s.best_val_accuracy
            }),
            Cell::opt_score(s.final_val_loss),
            Cell::Int(s.epochs_run as i64),
            Cell::Int(c.epochs as i64),
            Cell::text(tr.state.as_str()),
            tr.stop_reason.clone().map_or(Cell::Null, Cell::Text),
        ]);
        out.rows.push(row);
    }
    if let Some(col) = sort {
        let i = out.column(col).ok_or_else(|| {
            format!(
                "--sort {col:?} is not a column (accepted: {})",
                out.header.join(", ")
            )
        })?;
        // Best first for metrics (accuracy is maximised); ascending otherwise.
        let descending = col == "best_val_accuracy";
        out.rows.sort_by(|a, b| {
            let o = compare(&a[i], &b[i]);
            if descending { o.reverse() } else { o }
        });
        if reverse {
            out.rows.reverse();
        }
        out.rows.truncate(limit.unwrap_or(usize::MAX));
    }
    Ok(out)
}

/// Orders cells: numbers by value, text alphabetically, empty last.
fn compare(a: &Cell, b: &Cell) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let num = |c: &Cell| match c {
        Cell::Int(i) => Some(*i as f64),
        Cell::Num(x) | Cell::Score(x) if !x.is_nan() => Some(*x),
        Cell::Text(t) => t.parse::<f64>().ok(),
        _ => None,
    };
    match (a, b) {
        (Cell::Null, Cell::Null) => Equal,
        (Cell::Null, _) => Greater,
        (_, Cell::Null) => Less,
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => Less,
            (None, Some(_)) => Greater,
            (None, None) => match (a, b) {
                (Cell::Text(x), Cell::Text(y)) => x.cmp(y),
                _ => Equal,
            },
        },
    }
}

/// `lcurve plan`: the first `limit` trials the sweep expands to, with the hyperparameters
/// that vary and whether each trial is already stored.
pub fn plan_table(planned: &[PlannedTrial], stored: &[TrialRow], limit: usize) -> String {
    let keys = param_columns(planned.iter().map(|p| &p.config));
    let mut header = vec!["#"];
    header.extend(&keys);
    header.push("stored state");
    let mut t = Rows::new(&header);
    // Trials are matched by their config, as the store does (by its hash).
    let states: HashMap<String, &str> = stored
        .iter()
        .map(|s| (s.config.hash(), s.state.as_str()))
        .collect();
    for p in planned.iter().take(limit) {
        let mut row = vec![Cell::Int(p.ordinal as i64)];
        row.extend(param_cells(&p.config, &keys).into_iter().map(Cell::Text));
        row.push(Cell::text(
            states.get(&p.config.hash()).copied().unwrap_or("new"),
        ));
        t.rows.push(row);
    }
    let mut out = t.render(Format::Table);
    if planned.len() > limit {
        out.push_str(&format!(
            "\n... and {} more trials (--limit {} lists them all)",
            planned.len() - limit,
            planned.len()
        ));
    }
    out
}

/// Runs `sql` on `pool` (open it read-only) and returns whatever comes back.
pub async fn query_rows(pool: &sqlx::SqlitePool, sql: &str) -> Result<Rows, sqlx::Error> {
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    let Some(first) = rows.first() else {
        return Ok(Rows::default());
    };
    let names: Vec<&str> = first.columns().iter().map(|c| c.name()).collect();
    let mut out = Rows::new(&names);
    for row in &rows {
        out.rows.push(
            (0..names.len())
                .map(|i| cell(row, i))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    Ok(out)
}

fn cell(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<Cell, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let kind = raw.type_info().name().to_string();
    Ok(match kind.as_str() {
        "INTEGER" => Cell::Int(row.try_get::<i64, _>(i)?),
        "REAL" => Cell::Num(row.try_get::<f64, _>(i)?),
        "BLOB" => Cell::Text(format!("<{} bytes>", row.try_get::<Vec<u8>, _>(i)?.len())),
        _ => Cell::Text(row.try_get::<String, _>(i)?),
    })
}

/// `lcurve trial`: one trial's every setting as `(key, value)` rows.
pub fn trial_config_rows(trial: &TrialRow) -> Rows {
    let mut out = Rows::new(&["key", "value"]);
    let json = serde_json::to_value(&trial.config).unwrap_or_default();
    if let serde_json::Value::Object(map) = json {
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            out.rows.push(vec![Cell::Text(k), Cell::Text(text)]);
        }
    }
    out
}

/// The columns of a curve, a row per epoch.
const CURVE_COLUMNS: [&str; 6] = [
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_rmse",
    "epoch_seconds",
];

fn curve_cells(r: &EpochReport) -> [Cell; 6] {
    [
        Cell::Int(r.epoch as i64),
        Cell::Num(r.train_loss),
        Cell::Num(r.val_loss),
        Cell::opt_num(r.val_accuracy),
        Cell::opt_num(r.val_rmse),
        Cell::Num(r.seconds),
    ]
}

/// `lcurve trial`: one trial's curve, a row per epoch.
pub fn curve_rows(points: &[MetricPoint]) -> Rows {
    let mut out = Rows::new(&CURVE_COLUMNS);
    for r in crate::replay::curve_of(points) {
        out.rows.push(curve_cells(&r).into());
    }
    out
}

/// `lcurve export`: every stored metric of a sweep, with the hyperparameters that vary.
/// Long: a row per trial, epoch and metric; wide: a row per trial and epoch.
pub fn export_rows(trials: &[TrialRow], metrics: &[MetricPoint], wide: bool) -> Rows {
    let keys = varying(trials.iter().map(|t| &t.config));
    let by_id: HashMap<i64, &TrialRow> = trials.iter().map(|t| (t.id, t)).collect();
    let mut header = vec!["ordinal"];
    header.extend(&keys);
    if wide {
        header.extend(CURVE_COLUMNS);
    } else {
        header.extend(["epoch", "metric", "value"]);
    }
    let mut out = Rows::new(&header);
    let lead = |t: &TrialRow| {
        let mut row = vec![Cell::Int(t.ordinal as i64)];
        row.extend(param_cells(&t.config, &keys).into_iter().map(Cell::Text));
        row
    };
    if wide {
        let mut per: HashMap<i64, Vec<MetricPoint>> = HashMap::new();
        for m in metrics {
            per.entry(m.trial_id).or_default().push(m.clone());
        }
        for t in trials {
            for r in crate::replay::curve_of(per.get(&t.id).map_or(&[][..], |v| v.as_slice())) {
                let mut row = lead(t);
                row.extend(curve_cells(&r));
                out.rows.push(row);
            }
        }
    } else {
        let mut sorted: Vec<&MetricPoint> = metrics.iter().collect();
        sorted.sort_by_key(|m| {
            (
                by_id.get(&m.trial_id).map_or(usize::MAX, |t| t.ordinal),
                m.epoch,
                m.name.clone(),
            )
        });
        for m in sorted {
            let Some(t) = by_id.get(&m.trial_id) else {
                continue;
            };
            let mut row = lead(t);
            row.extend([
                Cell::Int(m.epoch as i64),
                Cell::text(m.name.clone()),
                Cell::Num(m.value),
            ]);
            out.rows.push(row);
        }
    }
    out
}

/// `lcurve compare`: two sweeps' leaderboards side by side, best validation loss first; each
/// trial named by its ordinal and the hyperparameters that vary in its sweep.
pub fn compare_rows(
    a: (&str, &[TrialRow], &HashMap<i64, TrialScores>),
    b: (&str, &[TrialRow], &HashMap<i64, TrialScores>),
    limit: usize,
) -> Rows {
    let side = |(_, trials, scores): (&str, &[TrialRow], &HashMap<i64, TrialScores>)| {
        let keys = param_columns(trials.iter().map(|t| &t.config));
        leaderboard(trials, scores)
            .into_iter()
            .take(limit)
            .map(|s| {
                let params: Vec<String> = keys
                    .iter()
                    .zip(param_cells(&s.trial.config, &keys))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                (
                    format!("#{} {}", s.trial.ordinal, params.join(" ")),
                    s.scores.best_val_loss,
                )
            })
            .collect::<Vec<_>>()
    };
    let (left, right) = (side(a), side(b));
    let (a_trial, a_loss) = (format!("{} trial", a.0), format!("{} best_val_loss", a.0));
    let (b_trial, b_loss) = (format!("{} trial", b.0), format!("{} best_val_loss", b.0));
    let mut out = Rows::new(&["rank", &a_trial, &a_loss, &b_trial, &b_loss]);
    for i in 0..left.len().max(right.len()) {
        let cells = |v: &[(String, Option<f64>)]| match v.get(i) {
            Some((label, loss)) => [Cell::text(label.clone()), Cell::opt_score(*loss)],
            None => [Cell::Null, Cell::Null],
        };
        let mut row = vec![Cell::Int(i as i64 + 1)];
        row.extend(cells(&left));
        row.extend(cells(&right));
        out.rows.push(row);
    }
    out
}
