//! Text tables for `lcurve ls`, `show`, `plan` and `query`: plain functions from stored rows
//! to the text a person reads.

use std::collections::HashMap;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use sqlx::{Column, Row, TypeInfo, ValueRef};

use crate::spec::{PlannedTrial, Task, TrialConfig, varying};
use crate::store::{MetricPoint, SweepOverview, TrialRow, TrialState};
use crate::util::format_float;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

/// `lcurve ls`: one row per sweep with trial counts by state.
pub fn sweeps_table(sweeps: &[SweepOverview]) -> String {
    let mut header = vec!["sweep", "trials"];
    header.extend(TrialState::ALL.iter().map(|s| s.as_str()));
    header.extend(["created", "finished"]);
    let mut t = table(&header);
    for s in sweeps {
        let count = |state| s.counts.iter().find(|c| c.0 == state).map_or(0, |c| c.1);
        let mut row = vec![
            s.sweep.name.clone(),
            s.counts.iter().map(|c| c.1).sum::<usize>().to_string(),
        ];
        row.extend(TrialState::ALL.iter().map(|&st| count(st).to_string()));
        row.push(s.sweep.created_at.clone());
        row.push(s.sweep.finished_at.clone().unwrap_or_else(|| "-".into()));
        t.add_row(row);
    }
    t.to_string()
}

/// A trial's place on the leaderboard.
#[derive(Debug, Clone)]
pub struct Standing<'a> {
    pub trial: &'a TrialRow,
    pub best_val_loss: Option<f64>,
    pub best_val_accuracy: Option<f64>,
    pub best_val_rmse: Option<f64>,
    pub epochs_run: usize,
}

/// Best validation loss and accuracy per trial, best loss first (trials without one last).
/// One pass over the metrics, so large sweeps stay fast.
pub fn leaderboard<'a>(trials: &'a [TrialRow], metrics: &[MetricPoint]) -> Vec<Standing<'a>> {
    let mut by_id: HashMap<i64, Standing<'a>> = trials
        .iter()
        .map(|t| {
            (
                t.id,
                Standing {
                    trial: t,
                    best_val_loss: None,
                    best_val_accuracy: None,
                    best_val_rmse: None,
                    epochs_run: 0,
                },
            )
        })
        .collect();
    for m in metrics {
        let Some(s) = by_id.get_mut(&m.trial_id) else {
            continue;
        };
        let finite = m.value.is_finite().then_some(m.value);
        match m.name.as_str() {
            "val_loss" => {
                s.epochs_run += 1;
                s.best_val_loss = better(s.best_val_loss, finite, f64::min);
            }
            "val_accuracy" => s.best_val_accuracy = better(s.best_val_accuracy, finite, f64::max),
            "val_rmse" => s.best_val_rmse = better(s.best_val_rmse, finite, f64::min),
            _ => {}
        }
    }
    let mut rows: Vec<Standing> = by_id.into_values().collect();
    let ordinal = |s: &Standing| s.trial.ordinal;
    rows.sort_by(|a, b| match (a.best_val_loss, b.best_val_loss) {
        (Some(x), Some(y)) => x.total_cmp(&y).then(ordinal(a).cmp(&ordinal(b))),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => ordinal(a).cmp(&ordinal(b)),
    });
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

/// `lcurve show`: the leaderboard with the hyperparameters that vary in the sweep.
pub fn leaderboard_table(
    trials: &[TrialRow],
    metrics: &[MetricPoint],
    limit: Option<usize>,
) -> String {
    let keys = param_columns(trials.iter().map(|t| &t.config));
    let regression = trials.iter().any(|t| t.config.task == Task::Regression);
    let score = if regression {
        "best val_rmse"
    } else {
        "best val_accuracy"
    };
    let mut header = vec!["#"];
    header.extend(&keys);
    header.extend(["best val_loss", score, "epochs run", "state", "stop reason"]);
    let mut t = table(&header);
    let opt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.4}"));
    for s in leaderboard(trials, metrics)
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
    {
        let tr = s.trial;
        let c = &tr.config;
        let mut row = vec![tr.ordinal.to_string()];
        row.extend(param_cells(c, &keys));
        row.extend([
            opt(s.best_val_loss),
            opt(if regression {
                s.best_val_rmse
            } else {
                s.best_val_accuracy
            }),
            format!("{}/{}", s.epochs_run, c.epochs),
            tr.state.as_str().to_string(),
            tr.stop_reason.clone().unwrap_or_default(),
        ]);
        t.add_row(row);
    }
    t.to_string()
}

/// `lcurve plan`: the first `limit` trials the sweep expands to, with the hyperparameters
/// that vary and whether each trial is already stored.
pub fn plan_table(planned: &[PlannedTrial], stored: &[TrialRow], limit: usize) -> String {
    let keys = param_columns(planned.iter().map(|p| &p.config));
    let mut header = vec!["#"];
    header.extend(&keys);
    header.push("stored state");
    let mut t = table(&header);
    // Trials are matched by their config, as the store does (by its hash).
    let states: HashMap<String, &str> = stored
        .iter()
        .map(|s| (s.config.hash(), s.state.as_str()))
        .collect();
    for p in planned.iter().take(limit) {
        let mut row = vec![p.ordinal.to_string()];
        row.extend(param_cells(&p.config, &keys));
        row.push(
            states
                .get(&p.config.hash())
                .copied()
                .unwrap_or("new")
                .to_string(),
        );
        t.add_row(row);
    }
    let mut out = t.to_string();
    if planned.len() > limit {
        out.push_str(&format!(
            "\n... and {} more trials (--limit {} lists them all)",
            planned.len() - limit,
            planned.len()
        ));
    }
    out
}

/// Runs `sql` on `pool` (open it read-only) and formats whatever comes back.
pub async fn query_table(pool: &sqlx::SqlitePool, sql: &str) -> Result<String, sqlx::Error> {
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    let Some(first) = rows.first() else {
        return Ok("(no rows)".to_string());
    };
    let names: Vec<&str> = first.columns().iter().map(|c| c.name()).collect();
    let mut t = table(&names);
    for row in &rows {
        let cells = (0..names.len())
            .map(|i| cell(row, i))
            .collect::<Result<Vec<_>, _>>()?;
        t.add_row(cells);
    }
    Ok(format!("{t}\n({} rows)", rows.len()))
}

fn cell(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<String, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok("NULL".into());
    }
    let kind = raw.type_info().name().to_string();
    Ok(match kind.as_str() {
        "INTEGER" => row.try_get::<i64, _>(i)?.to_string(),
        "REAL" => format_float(row.try_get::<f64, _>(i)?),
        "BLOB" => format!("<{} bytes>", row.try_get::<Vec<u8>, _>(i)?.len()),
        _ => row.try_get::<String, _>(i)?,
    })
}
