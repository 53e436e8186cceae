//! The datasets compiled into lcurve (from the `smartcore` and `linfa-datasets` crates), so
//! nothing is downloaded at run time.

use sha2::{Digest, Sha256};

use super::{Loaded, Table, Target};
use crate::spec::{DatasetName, Task};

/// The task a built-in dataset is for.
pub fn builtin_task(name: DatasetName) -> Task {
    match name {
        DatasetName::Diabetes => Task::Regression,
        _ => Task::Classification,
    }
}

/// Whether a built-in dataset can also be used for `task`: wine quality is an ordered score,
/// so it can be predicted as a class or as a number.
pub fn builtin_allows(name: DatasetName, task: Task) -> bool {
    task == builtin_task(name) || (name == DatasetName::Wine && task == Task::Regression)
}

/// `(name, rows, features, target, source and licence)` for the README and `--help`.
pub fn describe_builtins() -> [(&'static str, &'static str); 5] {
    [
        (
            "digits",
            "1797 rows, 64 features (8x8 pixel intensities 0-16), 10 classes; UCI optical digits test set, via smartcore (Apache-2.0)",
        ),
        (
            "iris",
            "150 rows, 4 features (cm), 3 classes; Fisher 1936, UCI, via smartcore (Apache-2.0)",
        ),
        (
            "wine",
            "1599 rows, 11 features, quality score 3-8 as 6 classes (or regression); Cortez et al. 2009 red wine quality, UCI (CC BY 4.0), via linfa-datasets (MIT/Apache-2.0)",
        ),
        (
            "breast_cancer",
            "569 rows, 30 features, 2 classes (malignant, benign); Wisconsin diagnostic, UCI, via smartcore (Apache-2.0)",
        ),
        (
            "diabetes",
            "442 rows, 10 features, regression target (disease progression after one year, 25-346); Efron et al. 2004, via smartcore (Apache-2.0)",
        ),
    ]
}

/// Loads a built-in dataset for `task` (checked by the spec parser to be one it allows).
pub fn load(name: DatasetName, task: Task) -> Loaded {
    let (features, n_features, feature_names, raw_target, class_names, source) = match name {
        DatasetName::Digits => {
            let d = smartcore::dataset::digits::load_dataset();
            // smartcore's digits metadata carries iris's feature names; name the pixels here.
            let names = (0..64)
                .map(|i| format!("pixel_{}_{}", i / 8, i % 8))
                .collect();
            let target = d.target.iter().map(|&y| f64::from(y)).collect();
            let classes = (0..10).map(|c| c.to_string()).collect();
            (
                d.data,
                d.num_features,
                names,
                target,
                classes,
                "UCI optical digits (smartcore)",
            )
        }
        DatasetName::Iris => {
            let d = smartcore::dataset::iris::load_dataset();
            let target = d.target.iter().map(|&y| f64::from(y)).collect();
            (
                d.data,
                d.num_features,
                d.feature_names,
                target,
                d.target_names,
                "iris (smartcore)",
            )
        }
        DatasetName::BreastCancer => {
            let d = smartcore::dataset::breast_cancer::load_dataset();
            let target = d.target.iter().map(|&y| f64::from(y)).collect();
            // smartcore names the target "malignant or benign [0, 1]": 0 is malignant.
            let classes = vec!["malignant".to_string(), "benign".to_string()];
            (
                d.data,
                d.num_features,
                d.feature_names,
                target,
                classes,
                "breast cancer Wisconsin (smartcore)",
            )
        }
        DatasetName::Diabetes => {
            let d = smartcore::dataset::diabetes::load_dataset();
            // smartcore stores this regression target as integers (u32).
            let target = d.target.iter().map(|&y| f64::from(y)).collect();
            (
                d.data,
                d.num_features,
                d.feature_names,
                target,
                Vec::new(),
                "diabetes (smartcore)",
            )
        }
        DatasetName::Wine => {
            let d = linfa_datasets::winequality();
            let features: Vec<f32> = d.records.iter().map(|&x| x as f32).collect();
            let n_features = d.records.ncols();
            let target: Vec<f64> = d.targets.iter().map(|&y| y as f64).collect();
            let names = d.feature_names().iter().map(String::from).collect();
            (
                features,
                n_features,
                names,
                target,
                Vec::new(),
                "red wine quality (linfa-datasets)",
            )
        }
        DatasetName::Csv => unreachable!("CSV files are read by data::csv"),
    };
    let mut hasher = Sha256::new();
    for x in &features {
        hasher.update(x.to_le_bytes());
    }
    for y in &raw_target {
        hasher.update(y.to_le_bytes());
    }
    let rows = raw_target.len();
    let (target, class_names) = match task {
        Task::Regression => (
            Target::Values(raw_target.iter().map(|&y| y as f32).collect()),
            Vec::new(),
        ),
        Task::Classification if class_names.is_empty() => {
            // Wine quality scores: classes are the scores that occur, in order.
            let mut scores: Vec<i64> = raw_target.iter().map(|&y| y.round() as i64).collect();
            scores.sort_unstable();
            scores.dedup();
            let labels = raw_target
                .iter()
                .map(|&y| scores.binary_search(&(y.round() as i64)).unwrap_or(0))
                .collect();
            (
                Target::Classes(labels),
                scores.iter().map(|s| s.to_string()).collect(),
            )
        }
        Task::Classification => (
            Target::Classes(raw_target.iter().map(|&y| y.round() as usize).collect()),
            class_names,
        ),
    };
    Loaded {
        table: Table {
            features,
            n_features,
            feature_names,
            target,
            class_names,
        },
        source: source.to_string(),
        sha256: format!("{:x}", hasher.finalize()),
        rows_read: rows,
        rows_dropped: 0,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shapes as documented in the README and `describe_builtins`.
    #[test]
    fn every_builtin_has_its_documented_shape() {
        let cases = [
            (DatasetName::Digits, 1797, 64, 10),
            (DatasetName::Iris, 150, 4, 3),
            (DatasetName::Wine, 1599, 11, 6),
            (DatasetName::BreastCancer, 569, 30, 2),
            (DatasetName::Diabetes, 442, 10, 0),
        ];
        for (name, rows, features, classes) in cases {
            let d = load(name, builtin_task(name));
            let t = &d.table;
            assert_eq!(
                (t.rows(), t.n_features, t.n_classes(), t.feature_names.len()),
                (rows, features, classes, features),
                "{name:?}"
            );
            assert_eq!(t.features.len(), rows * features, "{name:?}");
            assert!(t.features.iter().all(|x| x.is_finite()), "{name:?}");
            if let Target::Classes(l) = &t.target {
                for c in 0..classes {
                    assert!(l.contains(&c), "{name:?} has no row of class {c}");
                }
                assert!(l.iter().all(|&c| c < classes));
            }
        }
    }

    #[test]
    fn breast_cancer_counts_match_the_uci_description() {
        // UCI: 212 malignant, 357 benign.
        let d = load(DatasetName::BreastCancer, Task::Classification);
        let Target::Classes(l) = &d.table.target else {
            panic!()
        };
        assert_eq!(l.iter().filter(|&&c| c == 0).count(), 212);
    }

    #[test]
    fn wine_can_be_regression_and_keeps_its_scores() {
        let d = load(DatasetName::Wine, Task::Regression);
        let Target::Values(v) = &d.table.target else {
            panic!()
        };
        assert_eq!(v.iter().cloned().fold(f32::MAX, f32::min), 3.0);
        assert_eq!(v.iter().cloned().fold(f32::MIN, f32::max), 8.0);
        let c = load(DatasetName::Wine, Task::Classification);
        assert_eq!(c.table.class_names, ["3", "4", "5", "6", "7", "8"]);
        assert_eq!(c.sha256, d.sha256, "same data either way");
    }
}
