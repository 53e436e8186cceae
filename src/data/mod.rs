//! Built-in datasets, the seeded stratified train/validation split, and standardization.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::spec::DatasetName;

/// A classification dataset as row-major features and integer class labels.
#[derive(Debug, Clone)]
pub struct Table {
    pub features: Vec<f32>,
    pub labels: Vec<usize>,
    pub n_features: usize,
    pub n_classes: usize,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.labels.len()
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
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            n_features: self.n_features,
            n_classes: self.n_classes,
        }
    }
}

/// Training and validation parts, standardized with the training part's statistics.
#[derive(Debug, Clone)]
pub struct Split {
    pub train: Table,
    pub valid: Table,
}

/// Loads a built-in dataset. Digits: 1797 8x8 images (64 features, 0..16), 10 classes,
/// the UCI optical digits test set as shipped inside the `smartcore` crate (Apache-2.0).
pub fn load(name: DatasetName) -> Table {
    match name {
        DatasetName::Digits => {
            let d = smartcore::dataset::digits::load_dataset();
            // smartcore stores digit labels as f32 (0.0..=9.0); they are exact small integers.
            let labels: Vec<usize> = d.target.iter().map(|&y| y.round() as usize).collect();
            Table {
                n_classes: labels.iter().max().map_or(0, |m| m + 1),
                features: d.data,
                labels,
                n_features: d.num_features,
            }
        }
    }
}

/// Splits `table` into training and validation parts: within each class, rows are shuffled
/// with `seed` and the first `round(n * validation_fraction)` go to validation, so every class
/// keeps its share. Features are then standardized with the training part's mean and
/// standard deviation (constant columns are left centred, not divided by zero).
pub fn split(table: &Table, validation_fraction: f64, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train_idx, mut valid_idx) = (Vec::new(), Vec::new());
    for class in 0..table.n_classes {
        let mut rows: Vec<usize> = (0..table.rows())
            .filter(|&i| table.labels[i] == class)
            .collect();
        rows.shuffle(&mut rng);
        let n_valid = ((rows.len() as f64) * validation_fraction).round() as usize;
        valid_idx.extend_from_slice(&rows[..n_valid]);
        train_idx.extend_from_slice(&rows[n_valid..]);
    }
    train_idx.sort_unstable();
    valid_idx.sort_unstable();
    let (mut train, mut valid) = (table.take(&train_idx), table.take(&valid_idx));
    let (mean, std) = column_stats(&train);
    standardize(&mut train, &mean, &std);
    standardize(&mut valid, &mean, &std);
    Split { train, valid }
}

fn column_stats(t: &Table) -> (Vec<f32>, Vec<f32>) {
    let n = t.rows().max(1) as f64;
    let mut mean = vec![0f64; t.n_features];
    let mut sq = vec![0f64; t.n_features];
    for r in 0..t.rows() {
        for (c, &x) in t.row(r).iter().enumerate() {
            mean[c] += f64::from(x);
            sq[c] += f64::from(x) * f64::from(x);
        }
    }
    let mean: Vec<f64> = mean.iter().map(|s| s / n).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| ((s / n - m * m).max(0.0)).sqrt());
    let std = std.map(|s| if s < 1e-8 { 1.0 } else { s as f32 }).collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

fn standardize(t: &mut Table, mean: &[f32], std: &[f32]) {
    for row in t.features.chunks_mut(t.n_features) {
        for ((x, m), s) in row.iter_mut().zip(mean).zip(std) {
            *x = (*x - m) / s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_has_the_documented_shape() {
        let t = load(DatasetName::Digits);
        assert_eq!((t.rows(), t.n_features, t.n_classes), (1797, 64, 10));
        assert!(t.features.iter().all(|&x| (0.0..=16.0).contains(&x)));
    }

    #[test]
    fn split_is_seeded_stratified_and_standardized_on_train_only() {
        let t = load(DatasetName::Digits);
        let a = split(&t, 0.2, 7);
        let b = split(&t, 0.2, 7);
        let c = split(&t, 0.2, 8);
        assert_eq!(a.valid.labels, b.valid.labels);
        assert_eq!(a.valid.features, b.valid.features);
        assert_ne!(
            a.valid.features, c.valid.features,
            "another seed picks other rows"
        );
        assert_eq!(a.train.rows() + a.valid.rows(), 1797);
        // Each class keeps ~20% in validation.
        for class in 0..10 {
            let total = t.labels.iter().filter(|&&y| y == class).count() as f64;
            let valid = a.valid.labels.iter().filter(|&&y| y == class).count() as f64;
            assert!(
                (valid / total - 0.2).abs() < 0.01,
                "class {class}: {valid}/{total}"
            );
        }
        // Training columns have mean ~0; validation ones only roughly so.
        let (mean, _) = column_stats(&a.train);
        assert!(mean.iter().all(|m| m.abs() < 1e-4), "{mean:?}");
    }
}
