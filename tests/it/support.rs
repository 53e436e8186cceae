//! Shared helpers: temporary databases, a spec from inline TOML, a synthetic run.

use std::path::{Path, PathBuf};

use lcurve::spec::{SweepSpec, parse};
use lcurve::store::SqliteStore;

pub fn spec(toml: &str) -> SweepSpec {
    parse(Path::new("test.toml"), toml).unwrap_or_else(|e| panic!("{e}"))
}

/// A small grid: 2 learning rates x 1 batch size x 1 epochs x 2 activations.
pub const SMALL: &str = r#"
name = "small"
[train]
max_parallel = 2
[params]
learning_rate = [0.001, 0.01]
batch_size = 32
epochs = 6
activation = ["relu", "tanh"]
"#;

pub struct TempDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lcurve.db");
        Self { dir, path }
    }

    pub async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path).await.expect("open store")
    }
}
