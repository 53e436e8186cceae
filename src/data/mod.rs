//! Data for training: built-in datasets and CSV files read into one table, the seeded
//! train/validation split, standardization, and the record of both kept with the sweep.

mod builtin;
mod csv;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use builtin::{builtin_allows, builtin_task, describe_builtins};

use crate::spec::{Choice, DataSpec, DatasetName, Task};

/// What the model learns to predict, one entry per row.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Class indices into [`Table::class_names`].
    Classes(Vec<usize>),
    /// Numbers (regression).
    Values(Vec<f32>),
}

/// A dataset as row-major features and a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub features: Vec<f32>,
    pub n_features: usize,
    pub feature_names: Vec<String>,
    pub target: Target,
    /// Class labels as text (empty for regression).
    pub class_names: Vec<String>,
}

impl Table {
    pub fn rows(&self) -> usize {
        match &self.target {
            Target::Classes(l) => l.len(),
            Target::Values(v) => v.len(),
        }
    }

    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    pub fn task(&self) -> Task {
        match self.target {
            Target::Classes(_) => Task::Classification,
            Target::Values(_) => Task::Regression,
        }
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.n_features..(i + 1) * self.n_features]
    }

    fn take(&self, idx: &[usize]) -> Table {
        Table {
            features: idx
                .iter()
                .flat_map(|&i| self.row(i).iter().copied())
                .collect(),
            n_features: self.n_features,
            feature_names: self.feature_names.clone(),
            target: match &self.target {
                Target::Classes(l) => Target::Classes(idx.iter().map(|&i| l[i]).collect()),
                Target::Values(v) => Target::Values(idx.iter().map(|&i| v[i]).collect()),
            },
            class_names: self.class_names.clone(),
        }
    }
}

/// Why the data could not be read; each message names the file or column and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

/// A dataset read and checked, with what was done to it on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub table: Table,
    /// Where the data came from, for people.
    pub source: String,
    /// SHA-256 of the data as read (the CSV file's bytes, or the built-in table's numbers).
    pub sha256: String,
    pub rows_read: usize,
    pub rows_dropped: usize,
    /// One line per decision a person should know about (rows dropped, columns one-hot
    /// encoded, the task inferred).
    pub notes: Vec<String>,
}

/// Reads the data a sweep names. For a CSV file with no `task`, the task is inferred from the
/// target column (see [`csv`]).
pub fn load(spec: &DataSpec) -> Result<Loaded, DataError> {
    match (spec.dataset, &spec.csv) {
        (DatasetName::Csv, Some(csv)) => csv::load(csv, spec.task),
        (DatasetName::Csv, None) => Err(DataError(
            "dataset = \"csv\" needs `data.path` and `data.target`".into(),
        )),
        (name, _) => Ok(builtin::load(name, spec.task.unwrap_or(builtin_task(name)))),
    }
}

/// Training and validation parts, standardized with the training part's statistics.
#[derive(Debug, Clone)]
pub struct Split {
    pub train: Table,
    pub valid: Table,
    pub subsets: Subsets,
    pub record: DataRecord,
}

/// The training rows grouped for `train_fraction`: one shuffled list per class (one list for
/// regression); a fraction takes the same leading share of each list, so smaller fractions
/// are subsets of larger ones. Small and cheap to clone, for trainers to keep.
#[derive(Debug, Clone)]
pub struct Subsets {
    pools: Vec<Vec<usize>>,
    rows: usize,
}

/// What is stored with a sweep (`sweeps.data`) so reports and reruns use the same data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    pub dataset: String,
    pub source: String,
    pub sha256: String,
    pub task: Task,
    pub rows_read: usize,
    pub rows_dropped: usize,
    pub features: Vec<String>,
    pub classes: Vec<String>,
    pub notes: Vec<String>,
    pub split_seed: u64,
    pub validation_fraction: f64,
    pub train_rows: usize,
    pub valid_rows: usize,
    /// Row numbers (0-based, after dropping) held out for validation.
    pub valid_index: Vec<usize>,
    /// Per-feature mean and standard deviation of the training part.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Regression only: the target's training mean and standard deviation; the model learns
    /// the standardized target, and `val_rmse` is reported in the target's own units.
    pub target_mean: Option<f64>,
    pub target_std: Option<f64>,
}

impl DataRecord {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a data record always serializes")
    }
}

/// Splits the data into training and validation parts: rows are shuffled with `seed` (within
/// each class for classification, so every class keeps its share) and the first
/// `round(n * validation_fraction)` go to validation. Features, and a regression target, are
/// then standardized with the training part's mean and standard deviation (constant columns
/// are centred, not divided by zero).
pub fn split(
    loaded: &Loaded,
    dataset: DatasetName,
    validation_fraction: f64,
    seed: u64,
) -> Result<Split, DataError> {
    let table = &loaded.table;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let groups: Vec<Vec<usize>> = match &table.target {
        Target::Classes(labels) => (0..table.n_classes())
            .map(|c| (0..labels.len()).filter(|&i| labels[i] == c).collect())
            .collect(),
        Target::Values(v) => vec![(0..v.len()).collect()],
    };
    let (mut train_idx, mut valid_idx) = (Vec::new(), Vec::new());
    for mut rows in groups {
        rows.shuffle(&mut rng);
        let n_valid = ((rows.len() as f64) * validation_fraction).round() as usize;
        valid_idx.extend_from_slice(&rows[..n_valid]);
        train_idx.extend_from_slice(&rows[n_valid..]);
    }
    train_idx.sort_unstable();
    valid_idx.sort_unstable();
    if train_idx.is_empty() || valid_idx.is_empty() {
        return Err(DataError(format!(
            "{} rows are too few to split with validation_fraction = {validation_fraction}: {} would train and {} validate; use more rows or another data.validation_fraction",
            table.rows(),
            train_idx.len(),
            valid_idx.len()
        )));
    }
    let (mut train, mut valid) = (table.take(&train_idx), table.take(&valid_idx));
    let (mean, std) = column_stats(&train);
    standardize(&mut train, &mean, &std);
    standardize(&mut valid, &mean, &std);
    let target_scale = match (&mut train.target, &mut valid.target) {
        (Target::Values(t), Target::Values(v)) => {
            let (m, s) = mean_std(t.iter().map(|&x| f64::from(x)));
            for x in t.iter_mut().chain(v.iter_mut()) {
                *x = ((f64::from(*x) - m) / s) as f32;
            }
            Some((m, s))
        }
        _ => None,
    };
    // Pools for train_fraction, over the training part's own row numbers.
    let mut pools: Vec<Vec<usize>> = match &train.target {
        Target::Classes(labels) => (0..train.n_classes())
            .map(|c| (0..labels.len()).filter(|&i| labels[i] == c).collect())
            .collect(),
        Target::Values(v) => vec![(0..v.len()).collect()],
    };
    for pool in &mut pools {
        pool.shuffle(&mut rng);
    }
    pools.retain(|p| !p.is_empty());
    let record = DataRecord {
        dataset: dataset.name().to_string(),
        source: loaded.source.clone(),
        sha256: loaded.sha256.clone(),
        task: table.task(),
        rows_read: loaded.rows_read,
        rows_dropped: loaded.rows_dropped,
        features: table.feature_names.clone(),
        classes: table.class_names.clone(),
        notes: loaded.notes.clone(),
        split_seed: seed,
        validation_fraction,
        train_rows: train.rows(),
        valid_rows: valid.rows(),
        valid_index: valid_idx,
        mean,
        std,
        target_mean: target_scale.map(|s| s.0),
        target_std: target_scale.map(|s| s.1),
    };
    let subsets = Subsets {
        pools,
        rows: train.rows(),
    };
    Ok(Split {
        train,
        valid,
        subsets,
        record,
    })
}

impl Split {
    /// See [`Subsets::pick`].
    pub fn train_subset(&self, fraction: f64) -> Vec<usize> {
        self.subsets.pick(fraction)
    }
}

impl Subsets {
    /// The training rows a trial with `train_fraction` uses: the same leading share of each
    /// class (at least one row each), so the class balance holds and a smaller fraction's
    /// rows are a subset of a larger one's. Sorted.
    pub fn pick(&self, fraction: f64) -> Vec<usize> {
        if fraction >= 1.0 {
            return (0..self.rows).collect();
        }
        let mut rows: Vec<usize> = self
            .pools
            .iter()
            .flat_map(|pool| {
                let n = ((pool.len() as f64 * fraction).round() as usize).clamp(1, pool.len());
                pool[..n].iter().copied()
            })
            .collect();
        rows.sort_unstable();
        rows
    }
}

fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let std = var.sqrt();
    (mean, if std < 1e-8 { 1.0 } else { std })
}

fn column_stats(t: &Table) -> (Vec<f32>, Vec<f32>) {
    (0..t.n_features)
        .map(|c| {
            let (m, s) = mean_std((0..t.rows()).map(move |r| f64::from(t.row(r)[c])));
            (m as f32, s as f32)
        })
        .unzip()
}

fn standardize(t: &mut Table, mean: &[f32], std: &[f32]) {
    if t.n_features == 0 {
        return;
    }
    for row in t.features.chunks_mut(t.n_features) {
        for ((x, m), s) in row.iter_mut().zip(mean).zip(std) {
            *x = (*x - m) / s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits() -> Loaded {
        builtin::load(DatasetName::Digits, Task::Classification)
    }

    fn labels(t: &Table) -> &[usize] {
        match &t.target {
            Target::Classes(l) => l,
            Target::Values(_) => panic!("digits is classification"),
        }
    }

    #[test]
    fn split_is_seeded_stratified_and_standardized_on_train_only() {
        let d = digits();
        let a = split(&d, DatasetName::Digits, 0.2, 7).unwrap();
        let b = split(&d, DatasetName::Digits, 0.2, 7).unwrap();
        let c = split(&d, DatasetName::Digits, 0.2, 8).unwrap();
        assert_eq!(a.valid, b.valid);
        assert_eq!(a.record, b.record);
        assert_ne!(
            a.valid.features, c.valid.features,
            "another seed picks other rows"
        );
        assert_eq!(a.train.rows() + a.valid.rows(), 1797);
        assert_eq!(a.record.valid_index.len(), a.valid.rows());
        for class in 0..10 {
            let total = labels(&d.table).iter().filter(|&&y| y == class).count() as f64;
            let valid = labels(&a.valid).iter().filter(|&&y| y == class).count() as f64;
            assert!(
                (valid / total - 0.2).abs() < 0.01,
                "class {class}: {valid}/{total}"
            );
        }
        let (mean, _) = column_stats(&a.train);
        assert!(mean.iter().all(|m| m.abs() < 1e-4), "{mean:?}");
    }

    #[test]
    fn train_subsets_are_nested_stratified_and_seeded() {
        let s = split(&digits(), DatasetName::Digits, 0.2, 7).unwrap();
        let n = s.train.rows();
        let tenth = s.train_subset(0.1);
        let half = s.train_subset(0.5);
        assert_eq!(s.train_subset(1.0).len(), n);
        assert!(
            (tenth.len() as f64 - n as f64 * 0.1).abs() <= 10.0,
            "{}",
            tenth.len()
        );
        assert!(
            (half.len() as f64 - n as f64 * 0.5).abs() <= 10.0,
            "{}",
            half.len()
        );
        assert!(tenth.iter().all(|r| half.contains(r)), "0.1 is inside 0.5");
        let train_labels = labels(&s.train);
        for class in 0..10 {
            let count = tenth.iter().filter(|&&r| train_labels[r] == class).count();
            assert!((13..=16).contains(&count), "class {class}: {count} rows");
        }
        let again = split(&digits(), DatasetName::Digits, 0.2, 7).unwrap();
        assert_eq!(again.train_subset(0.1), tenth);
    }

    #[test]
    fn regression_targets_are_standardized_and_the_scale_recorded() {
        let d = builtin::load(DatasetName::Diabetes, Task::Regression);
        let s = split(&d, DatasetName::Diabetes, 0.2, 7).unwrap();
        let Target::Values(t) = &s.train.target else {
            panic!("diabetes is regression")
        };
        let (m, sd) = mean_std(t.iter().map(|&x| f64::from(x)));
        assert!(m.abs() < 1e-4 && (sd - 1.0).abs() < 1e-4, "{m} {sd}");
        let (tm, ts) = (s.record.target_mean.unwrap(), s.record.target_std.unwrap());
        assert!(
            (100.0..200.0).contains(&tm) && (50.0..100.0).contains(&ts),
            "{tm} {ts}"
        );
    }
}
