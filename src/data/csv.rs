//! Reads a CSV file into a [`Table`]: picks the target and feature columns, applies the
//! missing-value and text-column policies, and infers the task when the sweep leaves it out.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::{DataError, Loaded, Table, Target};
use crate::spec::{CategoricalPolicy, CsvSpec, MissingPolicy, Task};

/// Cells that mean "no value" (compared after trimming spaces).
pub const MISSING: [&str; 9] = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?"];

/// A text column with more distinct values than this is refused rather than one-hot encoded
/// (it is probably an identifier or free text).
const MAX_CATEGORIES: usize = 50;

/// An integer target with at most this many distinct values is taken as class labels.
const MAX_INFERRED_CLASSES: usize = 20;

fn is_missing(cell: &str) -> bool {
    MISSING.contains(&cell.trim())
}

fn parse_number(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

pub fn load(spec: &CsvSpec, task: Option<Task>) -> Result<Loaded, DataError> {
    let shown = spec.resolved.display().to_string();
    let bytes = std::fs::read(&spec.resolved).map_err(|e| {
        DataError(format!(
            "{shown}: cannot read the CSV file named by `data.path` ({e}); the path is relative to the sweep file"
        ))
    })?;
    let sha256 = format!("{:x}", Sha256::digest(&bytes));
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(spec.header)
        .delimiter(spec.delimiter as u8)
        .trim(::csv::Trim::All)
        .from_reader(bytes.as_slice());
    let err = |e: ::csv::Error| {
        let line = e
            .position()
            .map_or(String::new(), |p| format!(":{}", p.line()));
        DataError(format!("{shown}{line}: not a readable CSV file: {e}"))
    };
    let mut records: Vec<::csv::StringRecord> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    for r in reader.records() {
        let r = r.map_err(err)?;
        lines.push(r.position().map_or(0, |p| p.line()));
        records.push(r);
    }
    let width = match (spec.header, records.first()) {
        (true, _) => reader.headers().map_err(err)?.len(),
        (false, Some(r)) => r.len(),
        (false, None) => 0,
    };
    let names: Vec<String> = if spec.header {
        reader
            .headers()
            .map_err(err)?
            .iter()
            .map(String::from)
            .collect()
    } else {
        (1..=width).map(|i| format!("column_{i}")).collect()
    };
    if records.is_empty() {
        return Err(DataError(format!("{shown}: has no data rows")));
    }
    let column = |name: &str, key: &str| {
        names.iter().position(|n| n == name).ok_or_else(|| {
            DataError(format!(
                "{shown}: `{key}` names column {name:?}, which is not in the file (columns: {}){}",
                names.join(", "),
                if spec.header {
                    ""
                } else {
                    "; without a header, columns are called column_1, column_2, ..."
                }
            ))
        })
    };
    let target_col = column(&spec.target, "data.target")?;
    let feature_cols: Vec<usize> = match &spec.features {
        Some(list) => list
            .iter()
            .map(|f| column(f, "data.features"))
            .collect::<Result<_, _>>()?,
        None => (0..width).filter(|&c| c != target_col).collect(),
    };
    if feature_cols.is_empty() {
        return Err(DataError(format!(
            "{shown}: no feature columns besides the target {:?}",
            spec.target
        )));
    }

    // Missing values: drop the row, or fail, as the sweep says.
    let used: Vec<usize> = std::iter::once(target_col)
        .chain(feature_cols.iter().copied())
        .collect();
    let mut keep = Vec::with_capacity(records.len());
    let mut dropped = 0;
    let mut notes = Vec::new();
    for (r, line) in records.iter().zip(&lines) {
        match used.iter().find(|&&c| is_missing(&r[c])) {
            None => keep.push(r),
            Some(&c) if spec.missing == MissingPolicy::Fail => {
                return Err(DataError(format!(
                    "{shown}:{line}: column {:?} has no value ({:?}), and data.missing = \"fail\"; fill it in, or set data.missing = \"drop\" to skip such rows",
                    names[c], &r[c]
                )));
            }
            Some(_) => dropped += 1,
        }
    }
    if dropped > 0 {
        notes.push(format!(
            "dropped {dropped} of {} rows with a missing value (empty, NA, NaN, null, ?) in a used column",
            records.len()
        ));
    }
    if keep.is_empty() {
        return Err(DataError(format!(
            "{shown}: no rows left after dropping {dropped} rows with missing values; check the file, or choose other data.features"
        )));
    }
    let row_line = |i: usize| {
        // The line of the i-th kept row, for messages.
        let r = keep[i];
        r.position().map_or(0, |p| p.line())
    };

    // Features: numbers as they are; text columns one-hot encoded or refused.
    let mut columns: Vec<(String, Vec<f32>)> = Vec::new();
    for &c in &feature_cols {
        let numeric: Vec<Option<f64>> = keep.iter().map(|r| parse_number(&r[c])).collect();
        let n_numeric = numeric.iter().filter(|x| x.is_some()).count();
        if n_numeric == keep.len() {
            columns.push((
                names[c].clone(),
                numeric.iter().map(|x| x.unwrap_or(0.0) as f32).collect(),
            ));
            continue;
        }
        let first_text = numeric.iter().position(Option::is_none).unwrap_or(0);
        let example = &keep[first_text][c];
        if n_numeric * 2 > keep.len() {
            return Err(DataError(format!(
                "{shown}:{}: column {:?} has text ({example:?}) where numbers are expected ({n_numeric} of {} values are numbers); fix the value, or leave the column out of data.features",
                row_line(first_text),
                names[c],
                keep.len()
            )));
        }
        if spec.categorical == CategoricalPolicy::Refuse {
            return Err(DataError(format!(
                "{shown}:{}: column {:?} holds text such as {example:?}, and data.categorical = \"refuse\"; set data.categorical = \"one_hot\", or leave the column out of data.features",
                row_line(first_text),
                names[c]
            )));
        }
        let categories: BTreeSet<&str> = keep.iter().map(|r| &r[c]).collect();
        if categories.len() > MAX_CATEGORIES {
            return Err(DataError(format!(
                "{shown}: column {:?} has {} distinct text values, too many to one-hot encode (at most {MAX_CATEGORIES}); it looks like an identifier: leave it out of data.features",
                names[c],
                categories.len()
            )));
        }
        notes.push(format!(
            "one-hot encoded text column {:?} into {} columns",
            names[c],
            categories.len()
        ));
        for cat in &categories {
            let values = keep
                .iter()
                .map(|r| f32::from(u8::from(&r[c] == *cat)))
                .collect();
            columns.push((format!("{}={cat}", names[c]), values));
        }
    }
    let n_features = columns.len();
    let mut features = vec![0f32; keep.len() * n_features];
    for (j, (_, values)) in columns.iter().enumerate() {
        for (i, v) in values.iter().enumerate() {
            features[i * n_features + j] = *v;
        }
    }
    let feature_names = columns.into_iter().map(|(n, _)| n).collect();

    // Target: its task, inferred when not given.
    let cells: Vec<&str> = keep.iter().map(|r| &r[target_col]).collect();
    let numbers: Option<Vec<f64>> = cells.iter().map(|c| parse_number(c)).collect();
    let distinct: BTreeSet<&str> = cells.iter().copied().collect();
    let task = match (task, &numbers) {
        (Some(t), _) => t,
        (None, None) => {
            notes.push(format!(
                "task: classification (inferred: target {:?} holds text labels)",
                spec.target
            ));
            Task::Classification
        }
        (None, Some(nums)) if nums.iter().any(|x| x.fract() != 0.0) => {
            notes.push(format!(
                "task: regression (inferred: target {:?} holds fractional numbers)",
                spec.target
            ));
            Task::Regression
        }
        (None, Some(_)) if distinct.len() <= MAX_INFERRED_CLASSES => {
            notes.push(format!(
                "task: classification (inferred: target {:?} holds {} distinct integers; set data.task = \"regression\" to predict them as numbers)",
                spec.target,
                distinct.len()
            ));
            Task::Classification
        }
        (None, Some(_)) => {
            return Err(DataError(format!(
                "{shown}: cannot tell whether target {:?} is class labels or numbers to predict: it holds {} distinct integers; set data.task = \"classification\" or \"regression\"",
                spec.target,
                distinct.len()
            )));
        }
    };
    let (target, class_names) = match task {
        Task::Regression => {
            let Some(nums) = numbers else {
                let bad = cells
                    .iter()
                    .position(|c| parse_number(c).is_none())
                    .unwrap_or(0);
                return Err(DataError(format!(
                    "{shown}:{}: target {:?} has text ({:?}) but data.task = \"regression\" needs numbers; fix the value, or set data.task = \"classification\"",
                    row_line(bad),
                    spec.target,
                    cells[bad]
                )));
            };
            (
                Target::Values(nums.iter().map(|&x| x as f32).collect()),
                Vec::new(),
            )
        }
        Task::Classification => {
            // Classes in numeric order when every label is a number, otherwise alphabetical.
            let mut classes: Vec<&str> = distinct.iter().copied().collect();
            if numbers.is_some() {
                classes.sort_by(|a, b| {
                    parse_number(a)
                        .unwrap_or(0.0)
                        .total_cmp(&parse_number(b).unwrap_or(0.0))
                });
            }
            if classes.len() < 2 {
                return Err(DataError(format!(
                    "{shown}: target {:?} has only one class ({:?}); classification needs at least two",
                    spec.target,
                    classes.first().copied().unwrap_or_default()
                )));
            }
            let labels = cells
                .iter()
                .map(|c| classes.iter().position(|k| k == c).unwrap_or(0))
                .collect();
            (
                Target::Classes(labels),
                classes.iter().map(|c| c.to_string()).collect(),
            )
        }
    };
    Ok(Loaded {
        table: Table {
            features,
            n_features,
            feature_names,
            target,
            class_names,
        },
        source: spec.path.clone(),
        sha256,
        rows_read: records.len(),
        rows_dropped: dropped,
        notes,
    })
}
