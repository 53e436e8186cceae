//! The `Store` extension point: the verbs a trial queue needs (create a sweep, add trials
//! idempotently, claim the next pending trial, record epochs, finish a trial) and the reads
//! that reports and inspection use. SQLite is the one implementation today.

mod raw;
mod sqlite;

pub use sqlite::SqliteStore;

use std::borrow::Cow;

use crate::spec::{PlannedTrial, SweepSpec, TrialConfig};
use crate::stopping::Decision;
use crate::trainer::{Checkpoint, EpochReport};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "sweep `{name}` already exists in the database with a different spec (stored hash {stored:.12}, this file {new:.12}); \
         give the sweep a new `name`, or rerun with --replace to delete the stored sweep and its results"
    )]
    SpecChanged {
        name: String,
        stored: String,
        new: String,
    },
    #[error(
        "sweep `{name}` was trained on other data than this run reads ({what}); \
         the data file changed since the sweep started. Restore it, give the sweep a new `name`, or rerun with --replace to start again"
    )]
    DataChanged { name: String, what: String },
    #[error("cannot open the database {path}: {why}")]
    Open { path: String, why: String },
    #[error(
        "the database {path} was written by a newer lcurve (it has schema migration {version}, which this lcurve does not know); use a newer lcurve, or another --db"
    )]
    NewerSchema { path: String, version: i64 },
    #[error("no sweep named `{0}` in the database (see `lcurve ls`)")]
    NoSuchSweep(String),
    #[error("a stored value is invalid: {0}")]
    Corrupt(String),
    #[error("{}", describe_sql(.0))]
    Sql(#[from] sqlx::Error),
    #[error("cannot apply the database migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// An SQLite error in words a person can act on, with SQLite's own text after it.
pub fn describe_sql(e: &sqlx::Error) -> String {
    let code = e
        .as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i64>().ok());
    // Extended result codes keep the primary code in their low byte.
    let hint = match code.map(|c| c & 0xff) {
        Some(13) => "the disk is full; free some space and rerun (finished work is kept)",
        Some(10) => {
            "the database file could not be written (disk full, a file-size limit, or a failing disk); fix that and rerun (finished work is kept)"
        }
        Some(5) | Some(6) => {
            "the database is busy: another program holds a write lock on it for too long"
        }
        Some(8) => "the database is read-only here; lcurve run needs to write to it",
        Some(11) => "the database file is damaged",
        Some(26) => "the file is not an SQLite database",
        _ => return e.to_string(),
    };
    format!("{hint} ({e})")
}

/// A trial's lifecycle state, as stored in `trials.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrialState {
    Pending,
    Running,
    Completed,
    Stopped,
    Diverged,
    Failed,
}

impl TrialState {
    pub const ALL: [TrialState; 6] = [
        Self::Pending,
        Self::Running,
        Self::Completed,
        Self::Stopped,
        Self::Diverged,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Stopped => "stopped",
            Self::Diverged => "diverged",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown trial state {s:?}")))
    }

    /// Whether a rerun skips the trial.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Stopped | Self::Diverged | Self::Failed
        )
    }
}

/// A trial handed to a worker by [`Store::claim_next`].
#[derive(Debug, Clone)]
pub struct ClaimedTrial {
    pub id: i64,
    pub ordinal: usize,
    pub attempt: i64,
    pub config: TrialConfig,
}

/// How a trial ended (or, for `Pending`, that it was interrupted and goes back in the queue).
#[derive(Debug, Clone, PartialEq)]
pub struct TrialOutcome {
    pub state: TrialState,
    pub epochs_run: usize,
    pub best: Option<(usize, f64)>,
    pub stop_reason: Option<String>,
    pub error: Option<String>,
}

/// A trial's summary numbers for the leaderboard: stored when it finishes, computed from its
/// metrics while it runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrialScores {
    pub best_val_loss: Option<f64>,
    pub best_val_accuracy: Option<f64>,
    pub best_val_rmse: Option<f64>,
    /// The validation loss of the last epoch run (NaN kept: a diverged trial shows it).
    pub final_val_loss: Option<f64>,
    /// Epochs with a stored validation loss.
    pub epochs_run: usize,
}

/// One thing to write; a batch of these is committed in one transaction.
#[derive(Debug, Clone)]
pub enum Write {
    /// The trial starts a new attempt: `running`, its attempt counted, what earlier attempts
    /// recorded cleared (as [`Store::claim_next`] does). A batch applies its starts first, so
    /// a start and the trial's first epochs may share one.
    Start {
        trial_id: i64,
    },
    Epoch {
        trial_id: i64,
        report: EpochReport,
    },
    Decision {
        trial_id: i64,
        decision: Decision,
    },
    Finish {
        trial_id: i64,
        outcome: TrialOutcome,
    },
    /// The trial pauses (ASHA): back to `pending` with its checkpoint, not claimable until
    /// the scheduler promotes it.
    Pause {
        trial_id: i64,
        epochs_run: usize,
        checkpoint: Checkpoint,
    },
    /// As [`Store::finish_sweep`], after the batch's other writes: a run's last batch
    /// carries it, so the end of a run takes one transaction, not two.
    FinishSweep {
        sweep_id: i64,
    },
}

#[derive(Debug, Clone)]
pub struct SweepRow {
    pub id: i64,
    pub name: String,
    pub spec: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// The data record (JSON) of the data the sweep trained on; absent for 0.1 sweeps.
    pub data: Option<String>,
    pub description: Option<String>,
    /// The sweep file's text as last run; absent for sweeps stored before lcurve 0.2.
    pub source: Option<String>,
}

/// A sweep with its trial counts by state, for `lcurve ls`.
#[derive(Debug, Clone)]
pub struct SweepOverview {
    pub sweep: SweepRow,
    pub counts: Vec<(TrialState, usize)>,
}

#[derive(Debug, Clone)]
pub struct TrialRow {
    pub id: i64,
    pub ordinal: usize,
    pub state: TrialState,
    pub config: TrialConfig,
    pub attempt: i64,
    pub epochs_run: Option<usize>,
    pub best_epoch: Option<usize>,
    pub best_value: Option<f64>,
    pub stop_reason: Option<String>,
}

/// One stored metric value, non-finite values restored from their `kind`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub trial_id: i64,
    /// Borrowed for the names trainers report (see [`metric_name`]), so reading and copying
    /// points allocates nothing per point.
    pub name: Cow<'static, str>,
    pub epoch: usize,
    pub value: f64,
}

/// The names trainers report their metrics under.
const METRIC_NAMES: [&str; 5] = [
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_rmse",
    "epoch_seconds",
];

/// `name` as a metric point's name: one of [`METRIC_NAMES`] borrowed, anything else copied.
/// The final report of the digits sweep copied its 3,840 points' names twice, 0.6-0.9 ms
/// between the end of training and the first chart.
pub fn metric_name(name: &str) -> Cow<'static, str> {
    METRIC_NAMES
        .into_iter()
        .find(|known| *known == name)
        .map_or_else(|| Cow::Owned(name.to_string()), Cow::Borrowed)
}

#[derive(Debug, Clone)]
pub struct DecisionRow {
    pub trial_id: i64,
    pub epoch: usize,
    pub rule: String,
    pub action: String,
    pub reason: String,
}

/// Storage for sweeps, trials, metrics and decisions. Written by one task at a time.
#[allow(async_fn_in_trait)] // used with concrete types only; no Send bound is needed yet
pub trait Store {
    /// Creates the sweep, or returns the stored one when its spec hash is the same.
    /// A different spec under the same name is refused unless `replace` is set, which
    /// deletes the stored sweep and everything recorded for it. `data` is the JSON record of
    /// the data trained on ([`crate::data::DataRecord`]); a stored sweep whose record differs
    /// is refused the same way.
    async fn create_sweep(
        &self,
        spec: &SweepSpec,
        data: Option<&str>,
        replace: bool,
    ) -> Result<i64, StoreError>;
    /// Adds trials that are not there yet (by config hash); returns how many were added.
    async fn add_trials(&self, sweep_id: i64, trials: &[PlannedTrial])
    -> Result<usize, StoreError>;
    /// Paused trials (pending with a checkpoint) as `(trial id, checkpoint epoch)`.
    async fn paused(&self, sweep_id: i64) -> Result<Vec<(i64, usize)>, StoreError>;
    /// Takes a paused trial to continue it: marks it running, deletes anything recorded after
    /// its checkpoint (left by a crash), and returns the claim, the checkpoint and the curve
    /// up to it.
    async fn resume(
        &self,
        trial_id: i64,
    ) -> Result<(ClaimedTrial, Checkpoint, Vec<EpochReport>), StoreError>;
    /// Puts trials left `running` by a crashed process back to `pending`; returns how many.
    async fn requeue_running(&self, sweep_id: i64) -> Result<usize, StoreError>;
    /// Marks the lowest-ordinal pending trial `running`, increments its attempt and clears
    /// what earlier attempts recorded, so a rerun never mixes two attempts' curves.
    async fn claim_next(&self, sweep_id: i64) -> Result<Option<ClaimedTrial>, StoreError>;
    /// Commits a batch of epochs, decisions and trial ends in one transaction.
    async fn apply(&self, writes: &[Write]) -> Result<(), StoreError>;
    /// As [`Store::apply`], taking the writes; a store may commit them on another thread,
    /// so the caller's task goes on with its work meanwhile.
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.apply(&writes).await
    }
    /// Sets `finished_at` when no trial is pending or running.
    async fn finish_sweep(&self, sweep_id: i64) -> Result<(), StoreError>;
    /// Moves what is committed into the database file proper, so that closing the store
    /// afterwards is quick (SQLite: copies the write-ahead log back into the file). A store
    /// without such a log has nothing to do.
    async fn settle(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Starts what [`Store::settle`] does in the background, for what is committed so far,
    /// and returns at once. A run calls it as its tail begins (a core idle), so the settle
    /// after training has only the last commits to move. A failure leaves that to it.
    fn settle_soon(&self) {}
    /// Closes the store: every later call fails. What is committed stays.
    async fn close_now(&self) {}

    async fn sweep(&self, name: &str) -> Result<SweepRow, StoreError>;
    /// Every sweep with its trial counts; for listing, so `data` and `source` are not read.
    async fn sweeps(&self) -> Result<Vec<SweepOverview>, StoreError>;
    async fn trials(&self, sweep_id: i64) -> Result<Vec<TrialRow>, StoreError>;
    async fn metrics(&self, sweep_id: i64) -> Result<Vec<MetricPoint>, StoreError>;
    /// These trials' metrics, trial after trial in the order given, each by name and epoch.
    async fn trial_metrics(&self, trial_ids: &[i64]) -> Result<Vec<MetricPoint>, StoreError>;
    /// One trial's per-step training losses as `(step, epoch, loss)`, in step order; NaN
    /// where the loss was not finite.
    async fn steps(&self, trial_id: i64) -> Result<Vec<(usize, usize, f64)>, StoreError>;
    /// Every trial's [`TrialScores`], by trial id, without reading every metric row.
    async fn scores(
        &self,
        sweep_id: i64,
    ) -> Result<std::collections::HashMap<i64, TrialScores>, StoreError>;
    /// [`Store::trials`] and [`Store::scores`] together, read in one pass.
    async fn trials_with_scores(
        &self,
        sweep_id: i64,
    ) -> Result<(Vec<TrialRow>, std::collections::HashMap<i64, TrialScores>), StoreError>;
    /// Decisions that ended a trial (`stop`, `diverge`), in trial and epoch order.
    async fn stop_decisions(&self, sweep_id: i64) -> Result<Vec<DecisionRow>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::EpochReport;

    #[test]
    fn every_metric_a_trainer_reports_is_named_without_a_copy() {
        let report = EpochReport {
            epoch: 1,
            train_loss: 0.5,
            val_loss: 0.6,
            val_accuracy: Some(0.9),
            val_rmse: Some(1.5),
            seconds: 0.01,
            steps: Vec::new(),
        };
        let names: Vec<&str> = report.series().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), METRIC_NAMES.len(), "{names:?}");
        for name in names {
            assert!(matches!(metric_name(name), Cow::Borrowed(n) if n == name));
        }
        let other = metric_name("val_f1");
        assert!(matches!(&other, Cow::Owned(n) if n == "val_f1"));
    }
}
