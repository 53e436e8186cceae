//! `lcurve run` as a library call: validate, store the sweep and its trials, train what is
//! pending, then draw the report. Rerunning the same file resumes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::report::{ReportOutcome, write_report};
use crate::scheduler::{self, Progress, RunSummary, SchedulerOptions};
use crate::spec::{self, Metric, SweepSpec};
use crate::stopping::{DivergenceRule, PatienceRule, StoppingRule};
use crate::store::{Store, TrialState};
use crate::trainer::Trainer;

pub struct RunOptions {
    pub reports: PathBuf,
    /// Delete a stored sweep of the same name whose spec differs, instead of refusing.
    pub replace: bool,
    pub max_trials: usize,
}

/// What a run did, for the closing message.
pub struct RunResult {
    pub sweep_id: i64,
    pub total: usize,
    pub already_done: usize,
    pub summary: RunSummary,
    pub report: ReportOutcome,
}

/// Refuses grids larger than `max` before anything is written.
pub fn check_size(spec: &SweepSpec, path: &Path, max: usize) -> anyhow::Result<()> {
    let n = spec::grid_size(spec);
    if n > max {
        bail!(
            "{}: `grid` expands to {n} trials, more than the cap of {max}; shorten the lists or pass --max-trials {n}",
            path.display()
        );
    }
    Ok(())
}

/// The rules a sweep's spec asks for; divergence is always checked first.
pub fn rules_for(spec: &SweepSpec) -> Vec<Box<dyn StoppingRule>> {
    let mut rules: Vec<Box<dyn StoppingRule>> = vec![Box::new(DivergenceRule)];
    if let Some(s) = &spec.stopping {
        rules.push(Box::new(PatienceRule::from(s)));
    }
    rules
}

/// Stores the sweep (or finds it), adds missing trials, re-queues trials a crash left
/// `running`, trains every pending trial and writes the report.
pub async fn run_sweep<S: Store, T: Trainer>(
    store: &S,
    spec: &SweepSpec,
    make_trainer: impl FnOnce() -> anyhow::Result<T>,
    opts: &RunOptions,
    progress: &mut dyn Progress,
    cancel: impl std::future::Future<Output = ()>,
) -> anyhow::Result<RunResult> {
    let planned = spec::expand(spec);
    let sweep_id = store.create_sweep(spec, opts.replace).await?;
    store.add_trials(sweep_id, &planned).await?;
    store.requeue_running(sweep_id).await?;
    let trials = store.trials(sweep_id).await?;
    let already_done = trials.iter().filter(|t| t.state.is_finished()).count();
    let pending = trials
        .iter()
        .filter(|t| t.state == TrialState::Pending)
        .count();

    progress.begin(planned.len(), already_done);
    let summary = if pending > 0 {
        let trainer = Arc::new(make_trainer().context("cannot prepare the trainer")?);
        let sched = SchedulerOptions {
            max_parallel: spec.train.max_parallel,
            rules: rules_for(spec),
            best_metric: spec.stopping.as_ref().map_or(Metric::ValLoss, |s| s.metric),
        };
        scheduler::run(store, sweep_id, trainer, &sched, progress, cancel).await?
    } else {
        store.finish_sweep(sweep_id).await?;
        RunSummary::default()
    };
    let report = write_report(store, spec.name.as_str(), &opts.reports).await?;
    Ok(RunResult {
        sweep_id,
        total: planned.len(),
        already_done,
        summary,
        report,
    })
}
