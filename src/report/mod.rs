//! Reports: PNG learning-curve charts under `reports/<sweep>/`, rebuilt from the store alone.
//! Data is prepared by plain functions (tested exactly), then drawn.

mod draw;
mod paths;
mod prepare;

pub use draw::{ReplayPoint, replay as draw_replay};
pub use paths::{ReportPaths, make_filename_safe};
pub use prepare::{ChartData, StopMark, TrialSeries, prepare};

use std::path::{Path, PathBuf};

use crate::store::{Store, StoreError};

/// A chart that could not be drawn. The data it would show stays in the database.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {message}")]
pub struct ChartError {
    pub path: PathBuf,
    pub message: String,
}

/// What [`write_report`] produced: the files written and the charts that failed.
#[derive(Debug, Default)]
pub struct ReportOutcome {
    /// The sweep's report folder.
    pub dir: PathBuf,
    pub written: Vec<PathBuf>,
    pub failed: Vec<ChartError>,
}

/// Draws every chart of the sweep named `sweep` into `root/<sweep>/`. A failed chart is
/// collected in the outcome and the others are still drawn.
pub async fn write_report<S: Store>(
    store: &S,
    sweep: &str,
    root: &Path,
) -> Result<ReportOutcome, StoreError> {
    let row = store.sweep(sweep).await?;
    let trials = store.trials(row.id).await?;
    let metrics = store.metrics(row.id).await?;
    let decisions = store.stop_decisions(row.id).await?;
    let data = prepare(&row.name, &trials, &metrics, &decisions);
    let paths = ReportPaths::new(root, &row.name);
    let mut outcome = ReportOutcome {
        dir: paths.dir().to_path_buf(),
        ..Default::default()
    };
    let mut record = |path: PathBuf, result: Result<(), String>| match result {
        Ok(()) => outcome.written.push(path),
        Err(message) => outcome.failed.push(ChartError { path, message }),
    };
    let dir = paths.trials_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        record(dir, Err(e.to_string()));
        return Ok(outcome);
    }
    record(paths.curves(), draw::curves(&data, &paths.curves()));
    for t in &data.trials {
        let path = paths.trial(t.ordinal);
        let result = draw::trial(&data.sweep, t, &path);
        record(path, result);
    }
    Ok(outcome)
}
