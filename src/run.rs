//! `lcurve run` as a library call: validate, store the sweep and its trials, train what is
//! pending, then draw the report. Rerunning the same file resumes.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::sync::watch;

use crate::data::{self, DataRecord, Split};
use crate::report::{self, Drawn, ReportOutcome, redraw, redraw_and};
use crate::scheduler::{self, EpochProgress, HeadStart, Progress, RunSummary, SchedulerOptions};
use crate::spec::{self, Choice, Engine, Metric, SweepSpec};
use crate::stopping::{self, StoppingRule};
use crate::store::{ClaimedTrial, Store, StoreError, TrialOutcome, TrialState};
use crate::trainer::Trainer;

pub struct RunOptions {
    pub reports: PathBuf,
    /// Delete a stored sweep of the same name whose spec differs, instead of refusing.
    pub replace: bool,
    pub max_trials: usize,
    /// Redraw the report while the sweep runs, when trials end, at most this often
    /// (`None`: only at the end).
    pub live_report: Option<Duration>,
    /// Close the store once the final report has read what it draws, while the charts are
    /// drawn (`lcurve run`: closing took 1.0-1.4 ms after the digits sweep's last chart);
    /// leave it open to read the store afterwards.
    pub close: bool,
}

/// What the live redraw watches: trial ends committed so far (a redraw reads the database,
/// which shows an end only once it is committed), whether the run has reached its tail
/// (every trial started, and fewer running than may run at once, so a core is idle), and
/// whether the run is over.
#[derive(Debug, Clone, Copy, Default)]
struct Live {
    ended: usize,
    tail: bool,
    over: bool,
}

/// Passes progress on, and tells the live redraw of committed trial ends and the tail.
struct Counting<'a> {
    inner: &'a mut dyn Progress,
    live: &'a watch::Sender<Live>,
    /// Trials not yet started, and how many may run at once.
    unstarted: usize,
    max_parallel: usize,
    /// Whether the tail was seen: the final report's buffers readied (see
    /// [`report::warm_up`]) and the database's log settling (see [`Store::settle_soon`]).
    tail_seen: bool,
    /// Starts settling the database's log.
    settle_soon: &'a dyn Fn(),
}

impl Progress for Counting<'_> {
    fn begin(&mut self, total: usize, already_finished: usize) {
        self.inner.begin(total, already_finished);
    }
    fn started(&mut self, trial: &ClaimedTrial, running: &[usize]) {
        self.unstarted = self.unstarted.saturating_sub(1);
        self.inner.started(trial, running);
    }
    fn finished(&mut self, ordinal: usize, label: &str, o: &TrialOutcome, running: &[usize]) {
        // The run's tail: the final report follows the trials still running. The database
        // starts settling its log now, beside them: settled only after training, the digits
        // sweep's log (about 1.9 MB) took 8-16 ms to move and close, beside the final report
        // and at times after it; begun here, it takes 4-15 ms of the tail, and the settle
        // after training about 3 ms (closing 1.4-3.7 ms more).
        let tail = self.unstarted == 0 && running.len() < self.max_parallel;
        if tail && !self.tail_seen {
            self.tail_seen = true;
            report::warm_up();
            (self.settle_soon)();
        }
        self.inner.finished(ordinal, label, o, running);
        if tail {
            self.live
                .send_if_modified(|l| !std::mem::replace(&mut l.tail, true));
        }
    }
    fn paused(&mut self, ordinal: usize, label: &str, epoch: usize, running: &[usize]) {
        self.inner.paused(ordinal, label, epoch, running);
    }
    fn epoch(&mut self, e: &EpochProgress) {
        self.inner.epoch(e);
    }
    fn saved(&mut self, ends: usize) {
        self.inner.saved(ends);
        self.live.send_if_modified(|l| {
            let more = ends > l.ended;
            l.ended = l.ended.max(ends);
            more
        });
    }
}

/// How long the run's tail must have lasted before the live redraw draws the page in it. A
/// short tail is over before a person looks, and the final redraw draws the page again: in
/// the digits sweep (a tail of 10-50 ms) a page drawn there was drawn again at the end, or,
/// still being drawn when the run ended, held the final redraw up by up to a chart (5-10 ms).
const TAIL_PAGE_AFTER: Duration = Duration::from_secs(1);

/// Redraws while the run goes on (see [`report::Live`]): each trial's chart once its end is
/// committed, at the lowest priority, and, after a trial ended, the page with the summary
/// charts when `every` has passed (and at most ~5% of the time); the first page `every` after
/// the start even if no trial has ended; in the run's tail (a core is idle then), the page
/// once the tail has lasted [`TAIL_PAGE_AFTER`]. Failures are left to the final redraw,
/// which reports them.
async fn redraw_while_running<S: Store>(
    store: &S,
    sweep: &str,
    root: &Path,
    every: Duration,
    mut live: watch::Receiver<Live>,
    over: &Arc<AtomicBool>,
    drawn: &mut Drawn,
) {
    // Ended trials' charts are final: drawn in the time training leaves, they need not be
    // drawn at the end (the digits sweep's 37 charts took 58-143 ms there).
    let mut next_page = Instant::now() + every;
    let (mut seen, mut tail_since, mut tail_drawn) = (0, None::<Instant>, false);
    // Until a page is drawn, one is due `every` after the start whether or not a trial has
    // ended: a sweep whose first trials run for hours would otherwise have no page until one
    // ends. (A sweep shorter than `every`, like the digits sweep, draws it only at the end.)
    let mut page_drawn = false;
    loop {
        let waiting_for_tail = tail_since.is_none();
        let wait = live.wait_for(|l| l.over || l.ended > seen || (l.tail && waiting_for_tail));
        let tail_due = tail_since
            .filter(|_| !tail_drawn)
            .map(|since| since + TAIL_PAGE_AFTER);
        let first_due = (!page_drawn).then_some(next_page);
        let now = match tail_due.into_iter().chain(first_due).min() {
            Some(due) => {
                let changed = tokio::time::timeout_at(tokio::time::Instant::from_std(due), wait)
                    .await
                    .map(|c| c.map(|l| *l));
                // Timed out: a page is due.
                changed.unwrap_or_else(|_| Ok(*live.borrow()))
            }
            None => wait.await.map(|l| *l),
        };
        let Ok(now) = now else {
            return;
        };
        if now.over {
            return;
        }
        if now.tail {
            tail_since.get_or_insert_with(Instant::now);
        }
        let tail_page = !tail_drawn && tail_since.is_some_and(|t| t.elapsed() >= TAIL_PAGE_AFTER);
        let first_page = !page_drawn && Instant::now() >= next_page;
        let page = (now.ended > seen && Instant::now() >= next_page) || tail_page || first_page;
        if now.ended == seen && !page {
            // Woken by the tail's start: nothing new to draw yet.
            continue;
        }
        seen = now.ended;
        tail_drawn |= page && now.tail;
        page_drawn |= page;
        let started = Instant::now();
        let how = report::Live {
            over: over.clone(),
            page,
        };
        let _ = redraw(store, sweep, root, drawn, Some(how)).await;
        if page {
            next_page = Instant::now() + every.max(started.elapsed() * 20);
        }
    }
}

/// What a run did, for the closing message.
pub struct RunResult {
    pub sweep_id: i64,
    /// The engine the sweep trains on: burn for a sweep an older lcurve began.
    pub engine: Engine,
    pub total: usize,
    pub already_done: usize,
    pub summary: RunSummary,
    pub report: ReportOutcome,
}

/// Reads the data a sweep names and splits it, then fills in the task where the sweep left
/// it to be inferred and checks that the stopping metric is one this task reports. Nothing is
/// written.
pub fn prepare_data(spec: &mut SweepSpec, path: &Path) -> anyhow::Result<Split> {
    let at = path.display();
    let loaded = data::load(&spec.data).map_err(|e| anyhow!("{at}: [data]: {e}"))?;
    let task = loaded.table.task();
    spec.data.task = Some(task);
    if let Some(stop) = &spec.stopping
        && !stop.metric.applies_to(task)
    {
        bail!(
            "{at}: `stopping.metric`: \"{}\" is not reported for {} data (accepted: {})",
            stop.metric.name(),
            task.name(),
            Metric::reported_for(task)
        );
    }
    data::split(
        &loaded,
        spec.data.dataset,
        spec.data.validation_fraction,
        spec.seed,
    )
    .map_err(|e| anyhow!("{at}: [data]: {e}"))
}

/// One paragraph on the data, for `run` and `plan`.
pub fn describe_data(record: &DataRecord) -> String {
    let mut out = format!(
        "data: {} ({}), {} rows",
        record.dataset, record.source, record.rows_read
    );
    if record.rows_dropped > 0 {
        out.push_str(&format!(" ({} dropped)", record.rows_dropped));
    }
    out.push_str(&format!(
        ", {} features, {}",
        record.features.len(),
        record.task.name()
    ));
    if !record.classes.is_empty() {
        out.push_str(&format!(" with {} classes", record.classes.len()));
    }
    out.push_str(&format!(
        "; {} train / {} validation rows",
        record.train_rows, record.valid_rows
    ));
    for note in &record.notes {
        out.push_str(&format!("\n  {note}"));
    }
    out
}

/// Refuses sweeps larger than `max` trials before anything is written or expanded.
pub fn check_size(spec: &SweepSpec, path: &Path, max: usize) -> anyhow::Result<()> {
    let n = spec::trial_count(spec);
    if n > max as u128 {
        let how = match spec.search.strategy {
            spec::Strategy::Grid => "shorten the lists in [params]",
            spec::Strategy::Random => "lower search.trials or shorten the lists in [params]",
        };
        bail!(
            "{}: the sweep expands to {n} trials, more than the cap of {max}; {how}, or pass --max-trials {n} to raise the cap",
            path.display()
        );
    }
    Ok(())
}

/// The rules a sweep's spec asks for; divergence is always checked first.
pub fn rules_for(spec: &SweepSpec) -> Vec<Box<dyn StoppingRule>> {
    stopping::rules_for(spec.stopping.as_ref())
}

/// How the scheduler runs `spec`'s trials: how many at once, the stopping rules (divergence
/// is always checked first), the metric stored as each trial's best, and ASHA.
pub fn scheduler_options(spec: &SweepSpec) -> SchedulerOptions {
    SchedulerOptions {
        max_parallel: spec.train.max_parallel,
        rules: rules_for(spec),
        best_metric: spec.stopping.as_ref().map_or(Metric::ValLoss, |s| s.metric),
        asha: spec
            .stopping
            .as_ref()
            .and_then(|s| s.asha.as_ref())
            .map(|a| (a.min_epochs, a.eta)),
    }
}

/// Begins training `spec`'s first trials with `trainer` before the store is open (see
/// [`HeadStart`]); pass the result to [`run_sweep_begun`]. For a database about to be
/// made: where the store already holds the sweep, the trials begun are likely finished, and
/// training them until the store says so costs a core an epoch each. `None` where the
/// sweep's rules or ASHA wait for answers, or it cannot be expanded.
pub fn head_start<T: Trainer>(spec: &SweepSpec, trainer: &Arc<T>) -> Option<HeadStart> {
    let planned = spec::expand(spec).ok()?;
    HeadStart::begin(trainer, &planned, &scheduler_options(spec))
}

/// Stores the sweep (or finds it), adds missing trials, re-queues trials a crash left
/// `running`, trains every pending trial and writes the report.
pub async fn run_sweep<S: Store, T: Trainer>(
    store: &S,
    spec: &SweepSpec,
    data: Option<&DataRecord>,
    make_trainer: impl FnOnce() -> anyhow::Result<T>,
    opts: &RunOptions,
    progress: &mut dyn Progress,
    cancel: impl std::future::Future<Output = ()>,
) -> anyhow::Result<RunResult> {
    let trainer = Trainers::Later(make_trainer);
    run_with(store, spec, data, trainer, opts, progress, cancel).await
}

/// [`run_sweep`] with trials `head` began on `trainer` before the store was open (see
/// [`head_start`]).
pub async fn run_sweep_begun<S: Store, T: Trainer>(
    store: &S,
    spec: &SweepSpec,
    data: Option<&DataRecord>,
    (trainer, head): (Arc<T>, Option<HeadStart>),
    opts: &RunOptions,
    progress: &mut dyn Progress,
    cancel: impl std::future::Future<Output = ()>,
) -> anyhow::Result<RunResult> {
    let trainer = Trainers::<T, fn() -> anyhow::Result<T>>::Begun(trainer, head);
    run_with(store, spec, data, trainer, opts, progress, cancel).await
}

/// The trainer of a run: made when the store says there are trials to train, or made before
/// it was open, with the trials begun on it then.
enum Trainers<T, F> {
    Later(F),
    Begun(Arc<T>, Option<HeadStart>),
}

async fn run_with<S: Store, T: Trainer, F: FnOnce() -> anyhow::Result<T>>(
    store: &S,
    spec: &SweepSpec,
    data: Option<&DataRecord>,
    trainers: Trainers<T, F>,
    opts: &RunOptions,
    progress: &mut dyn Progress,
    cancel: impl std::future::Future<Output = ()>,
) -> anyhow::Result<RunResult> {
    report::make_threads();
    // Expanded before anything is written: a space that cannot be expanded changes nothing.
    let mut planned = spec::expand(spec)?;
    let data = data.map(DataRecord::to_json);
    let (spec, sweep_id) = match store
        .create_sweep(spec, data.as_deref(), opts.replace)
        .await
    {
        Err(first @ StoreError::SpecChanged { .. })
            if !spec.train.engine_named && !spec.train.engine.is_burn() =>
        {
            // A sweep that an older lcurve began (all on burn) continues on burn, unless the
            // file asks for an engine.
            let mut older = spec.clone();
            older.train.engine = Engine::Burn;
            match store.create_sweep(&older, data.as_deref(), false).await {
                Ok(id) => {
                    planned = spec::expand(&older)?;
                    (Cow::Owned(older), id)
                }
                Err(StoreError::SpecChanged { .. }) => return Err(first.into()),
                Err(e) => return Err(e.into()),
            }
        }
        r => (Cow::Borrowed(spec), r?),
    };
    let spec = spec.as_ref();
    store.add_trials(sweep_id, &planned).await?;
    store.requeue_running(sweep_id).await?;
    let trials = store.trials(sweep_id).await?;
    let already_done = trials.iter().filter(|t| t.state.is_finished()).count();
    let pending = trials
        .iter()
        .filter(|t| t.state == TrialState::Pending)
        .count();

    progress.begin(planned.len(), already_done);
    // Trial charts drawn live are not drawn again at the end unless they changed.
    let mut drawn = Drawn::default();
    let summary = if pending > 0 {
        let (trainer, head) = match trainers {
            Trainers::Later(make) => (
                Arc::new(make().context("cannot prepare the trainer")?),
                None,
            ),
            Trainers::Begun(trainer, head) => (trainer, head),
        };
        let sched = scheduler_options(spec);
        let (tx, rx) = watch::channel(Live::default());
        // Set with `Live::over`: a live redraw under way stops at its next chart.
        let over = Arc::new(AtomicBool::new(false));
        let mut counting = Counting {
            inner: progress,
            live: &tx,
            unstarted: pending,
            max_parallel: sched.max_parallel,
            tail_seen: false,
            settle_soon: &|| store.settle_soon(),
        };
        let training = async {
            let r = scheduler::run(
                store,
                sweep_id,
                trainer,
                &sched,
                &mut counting,
                cancel,
                head,
            )
            .await;
            over.store(true, Ordering::Relaxed);
            tx.send_modify(|l| l.over = true);
            r
        };
        let name = spec.name.as_str();
        let live = async {
            if let Some(every) = opts.live_report {
                redraw_while_running(store, name, &opts.reports, every, rx, &over, &mut drawn)
                    .await;
            }
        };
        // The live redraws end with the training: one under way is dropped, not waited for.
        // Its thread may still be drawing a chart (at nice 19, on a busy machine for up to
        // 210 ms), which it then does not write (see `report::Live`); the final report draws
        // that chart again, as it does every chart not drawn yet.
        let (mut training, mut live) = (std::pin::pin!(training), std::pin::pin!(live));
        tokio::select! {
            summary = &mut training => summary?,
            () = &mut live => training.await?,
        }
    } else {
        // Nothing to train: trials begun ahead stop now, not when the report is drawn.
        drop(trainers);
        store.finish_sweep(sweep_id).await?;
        RunSummary::default()
    };
    // While the final report draws (on every core), after its reads, the database settles
    // its log into the file, so closing it afterwards is quick (the digits sweep's close took
    // 6-7 ms, most of it waiting for the disk). If it fails, the log stays beside the file,
    // which is safe. Most of the log was settled as the tail began (see `Counting`), so
    // this moves only the last commits.
    let settle = async {
        let _ = store.settle().await;
        if opts.close {
            store.close_now().await;
        }
    };
    let report = redraw_and(
        store,
        spec.name.as_str(),
        &opts.reports,
        &mut drawn,
        None,
        settle,
    )
    .await?;
    Ok(RunResult {
        sweep_id,
        engine: spec.train.engine,
        total: planned.len(),
        already_done,
        summary,
        report,
    })
}
