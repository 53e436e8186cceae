//! Reports: `reports/<sweep>/index.html` and PNG charts (learning curves, small multiples,
//! summary, heatmap, learning curve over data size, one chart per trial), rebuilt from the
//! store alone. Data is prepared by plain functions (tested exactly), then drawn.

mod buffers;
mod canvas;
mod draw;
mod html;
mod paths;
mod polygon;
mod prepare;
mod raster;
mod summary;

pub use draw::{ReplayPoint, replay as draw_replay};
pub use html::escape as escape_html;
pub use paths::{ReportPaths, make_filename_safe};
pub use prepare::{ChartData, MAX_STYLES, StopMark, TrialSeries, prepare};
pub use summary::{
    Heatmap, LearningCurve, LearningPoint, Line, Spread, Summary, heatmap, learning_curve, summary,
};

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::data::DataRecord;
use crate::output::Rows;
use crate::spec::{Choice, Metric};
use crate::store::{MetricPoint, Store, StoreError, SweepRow, TrialRow, TrialState};

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
    /// Trial charts drawn earlier in this process (while the sweep ran) and unchanged since,
    /// so not drawn again: their files are in the folder too.
    pub kept: usize,
}

/// The trial charts already drawn in this process, by ordinal, with the state and number of
/// points they showed; a redraw skips a trial whose chart would not change. Also the metrics
/// of trials read after they ended (see [`Ended`]).
#[derive(Debug, Default)]
pub struct Drawn {
    trials: HashMap<usize, Fingerprint>,
    ended: Ended,
    /// Trial charts written and not yet in `trials`, added as each file is written: a live
    /// redraw still drawing when the run ends is dropped, not waited for, and the charts it
    /// wrote must not be drawn again. (They were, when a redraw counted its charts only once
    /// it had finished: in 5 traced runs of the digits sweep, 0-24 of the 32 trial charts were
    /// drawn twice, the second time by the final report, after the training.)
    written: Arc<Mutex<Vec<(usize, Fingerprint)>>>,
}

impl Drawn {
    /// Moves the charts written since into `trials`.
    fn take_written(&mut self) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        self.trials.extend(written.drain(..));
    }
}

/// The metrics of trials read after they ended, by trial id: the run holds the sweep's lock,
/// so they cannot change, and a later redraw (each live page, the final one) reads only the
/// others. Up to [`Ended::MAX_POINTS`] in all (about 80 MB), so a huge sweep's run does not
/// hold all of them; beyond that, trials are read again.
#[derive(Debug, Default)]
struct Ended {
    by_trial: HashMap<i64, Vec<MetricPoint>>,
    points: usize,
}

impl Ended {
    const MAX_POINTS: usize = 1_000_000;
}

/// What a trial chart shows that can change while a sweep runs: state and epochs.
type Fingerprint = (TrialState, usize);

/// The metric whose best value a sweep stores per trial: its stopping metric, else val_loss.
pub fn sweep_metric(spec_json: &str) -> Metric {
    serde_json::from_str::<serde_json::Value>(spec_json)
        .ok()
        .and_then(|s| s["stopping"]["metric"].as_str().and_then(Metric::parse))
        .unwrap_or(Metric::ValLoss)
}

/// The stored spec as TOML (as the user wrote it, less comments), else as JSON.
fn spec_text(spec_json: &str) -> String {
    fn drop_nulls(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => m
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, drop_nulls(v)))
                .collect(),
            serde_json::Value::Array(a) => a.into_iter().map(drop_nulls).collect(),
            v => v,
        }
    }
    serde_json::from_str::<serde_json::Value>(spec_json)
        .ok()
        .and_then(|v| toml::to_string_pretty(&drop_nulls(v)).ok())
        .unwrap_or_else(|| spec_json.to_string())
}

/// Draws every chart of the sweep named `sweep` into `root/<sweep>/`, then `index.html`. A
/// failed chart is collected in the outcome and the others are still drawn.
pub async fn write_report<S: Store>(
    store: &S,
    sweep: &str,
    root: &Path,
) -> Result<ReportOutcome, StoreError> {
    redraw(store, sweep, root, &mut Drawn::default(), None).await
}

/// A redraw while the sweep runs. It draws on one thread, ended trials' charts first, and
/// gives up (no further chart, not the page) once `over` is set, so the final redraw, on
/// every core, draws what is left instead of waiting for it; nor does it write the chart it
/// was drawing then (see `canvas::write_beside`), so the run need not wait for that chart
/// either. Trial charts alone are drawn at the lowest priority (nice 19), so training gives
/// them mostly the time a core would otherwise idle; the page keeps the normal priority, so a
/// person watching a busy machine still sees it change (the run keeps its redraws under ~5%
/// of the time).
#[derive(Debug, Clone)]
pub struct Live {
    /// Set when the run is over.
    pub over: Arc<AtomicBool>,
    /// Also the page (marked as running, reloading itself) and the summary charts; else only
    /// the charts of trials that ended since they were last drawn.
    pub page: bool,
}

/// Has the threads that a report not drawn live draws on (rayon's global pool) made on a
/// blocking thread, without waiting for them: a run asks as it starts, so they are made while
/// it sets up rather than between the end of training and its own (where making them held
/// the final report up by 0.3-0.4 ms). Must be called within a Tokio runtime.
pub fn make_threads() {
    tokio::task::spawn_blocking(|| rayon::spawn(|| {}));
}

/// Readies two pixel buffers of the largest summary chart's size, for the final report's two
/// threads, on one thread of its own: a run calls it as its tail begins (every trial started
/// and a core idle), so their memory comes in beside the last trials' training rather than
/// between its end and the report. In a fresh process their pages are new, which costs on
/// virtual machines (see `buffers.rs`): 2.4-4.8 ms of CPU for 8 MiB on this project's.
pub fn warm_up() {
    rayon::spawn(|| canvas::warm_pixels(draw::CURVES_SIZE, 2));
}

/// As [`write_report`], but trial charts already drawn (per `drawn`) and unchanged since are
/// kept. The drawing runs on a blocking thread, so a running sweep's scheduler is not held up.
/// `live`: drawn while the sweep runs (the run knows; the database cannot tell a running
/// sweep from one stopped by Ctrl-C).
pub async fn redraw<S: Store>(
    store: &S,
    sweep: &str,
    root: &Path,
    drawn: &mut Drawn,
    live: Option<Live>,
) -> Result<ReportOutcome, StoreError> {
    redraw_and(store, sweep, root, drawn, live, async {}).await
}

/// As [`redraw`], and runs `meanwhile` while the charts are drawn, after the reads, which it
/// would otherwise slow down: the run's settling of the database log made the final redraw's
/// reads take 2-7 ms instead of 1-3.
pub async fn redraw_and<S: Store>(
    store: &S,
    sweep: &str,
    root: &Path,
    drawn: &mut Drawn,
    live: Option<Live>,
    meanwhile: impl Future<Output = ()>,
) -> Result<ReportOutcome, StoreError> {
    let row = store.sweep(sweep).await?;
    let mut trials = store.trials(row.id).await?;
    drawn.take_written();
    let page = live.as_ref().is_none_or(|l| l.page);
    if !page {
        // Only ended trials not drawn as ended yet: their charts are final.
        trials.retain(|t| {
            t.state.is_finished()
                && !drawn
                    .trials
                    .get(&t.ordinal)
                    .is_some_and(|(state, _)| state.is_finished())
        });
    }
    let whole = page.then_some(row.id);
    let metrics = read_metrics(store, whole, &trials, &mut drawn.ended).await?;
    let decisions = store.stop_decisions(row.id).await?;
    let metric = sweep_metric(&row.spec);
    let data = prepare(&row.name, metric, &trials, &metrics, &decisions);
    // The page (and its leaderboard and counts) only when it is drawn.
    let page = page.then(|| {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for state in TrialState::ALL {
            let n = trials.iter().filter(|t| t.state == state).count();
            if n > 0 {
                counts.push((state.as_str().to_string(), n));
            }
        }
        PageText {
            description: row.description.clone(),
            data: row
                .data
                .as_deref()
                .and_then(|d| serde_json::from_str::<DataRecord>(d).ok())
                .map(|r| crate::run::describe_data(&r)),
            spec: row.source.clone().unwrap_or_else(|| spec_text(&row.spec)),
            running: live.is_some(),
            counts,
            leaderboard: crate::inspect::leaderboard_rows(
                &trials,
                &crate::inspect::scores_from_metrics(&trials, &metrics),
                None,
                false,
                None,
            )
            .unwrap_or_default(),
        }
    });
    let skip: Vec<usize> = data
        .trials
        .iter()
        .filter(|t| drawn.trials.get(&t.ordinal) == Some(&fingerprint(t)))
        .map(|t| t.ordinal)
        .collect();
    let paths = ReportPaths::new(root, &row.name);
    let dir = paths.dir().to_path_buf();
    let written = drawn.written.clone();
    let drawing = tokio::task::spawn_blocking(move || {
        let draw = || draw_all(&data, &paths, &skip, page.as_ref(), live.as_ref(), &written);
        // A live redraw shares the machine with training: one thread, and for trial charts
        // alone, the lowest priority. Without such a thread it draws nothing: the final
        // report draws everything.
        match &live {
            Some(l) => match live_pool(page.is_none()) {
                Some(pool) => pool.install(|| canvas::live(l.over.clone(), draw)),
                None => ReportOutcome::default(),
            },
            None => draw(),
        }
    });
    let (drawing, ()) = tokio::join!(drawing, meanwhile);
    drawn.take_written();
    match drawing {
        Ok(outcome) => Ok(outcome),
        // A panic while drawing: the data is safe, and the report says what went wrong.
        Err(e) => Ok(ReportOutcome {
            failed: vec![ChartError {
                path: dir.clone(),
                message: e.to_string(),
            }],
            dir,
            ..Default::default()
        }),
    }
}

/// The metrics of `trials`, those of ended trials from `ended` where it has them; the ones
/// read of ended trials are added to it. When `trials` are all of sweep `whole`'s and most
/// are not in `ended`, one query reads the sweep's; else one read of the trials not in it. The
/// final redraw of the digits sweep used to read all 3,840 metric rows again (2-6 ms, while
/// the database settles its log), though the live redraws had read all but a few.
async fn read_metrics<S: Store>(
    store: &S,
    whole: Option<i64>,
    trials: &[TrialRow],
    ended: &mut Ended,
) -> Result<Vec<MetricPoint>, StoreError> {
    let missing: Vec<&TrialRow> = trials
        .iter()
        .filter(|t| !ended.by_trial.contains_key(&t.id))
        .collect();
    let mut fresh: HashMap<i64, Vec<MetricPoint>> = HashMap::new();
    if let Some(sweep_id) = whole.filter(|_| missing.len() * 2 > trials.len()) {
        for m in store.metrics(sweep_id).await? {
            fresh.entry(m.trial_id).or_default().push(m);
        }
    } else if !missing.is_empty() {
        let ids: Vec<i64> = missing.iter().map(|t| t.id).collect();
        // A trial with no metrics yet is read too, and kept if it ended.
        fresh.extend(ids.iter().map(|id| (*id, Vec::new())));
        for m in store.trial_metrics(&ids).await? {
            fresh.entry(m.trial_id).or_default().push(m);
        }
    }
    let mut all = Vec::new();
    for t in trials {
        match (ended.by_trial.get(&t.id), fresh.remove(&t.id)) {
            (Some(kept), _) => all.extend(kept.iter().cloned()),
            (None, Some(read)) => {
                if t.state.is_finished() && ended.points + read.len() <= Ended::MAX_POINTS {
                    all.extend(read.iter().cloned());
                    ended.points += read.len();
                    ended.by_trial.insert(t.id, read);
                } else {
                    all.extend(read);
                }
            }
            (None, None) => {}
        }
    }
    Ok(all)
}

fn fingerprint(t: &TrialSeries) -> Fingerprint {
    (t.state, t.val_loss.len())
}

/// The page's text parts, made before drawing.
struct PageText {
    description: Option<String>,
    data: Option<String>,
    spec: String,
    running: bool,
    counts: Vec<(String, usize)>,
    leaderboard: Rows,
}

fn record(outcome: &mut ReportOutcome, path: PathBuf, result: Result<(), String>) {
    match result {
        Ok(()) => outcome.written.push(path),
        Err(message) => outcome.failed.push(ChartError { path, message }),
    }
}

/// The one-thread pool that live redraws draw on: with `lowest`, the one for trial charts
/// alone, whose thread runs at the lowest priority. Each is made on first use and kept, so
/// its thread keeps its canvas buffers (see `canvas`): a pool made for each redraw cost a
/// thread and fresh buffers per ended trial, 8,000-9,000 page faults in the digits sweep.
/// `None` if the pool cannot be made; the caller then draws on the calling thread.
fn live_pool(lowest: bool) -> Option<&'static rayon::ThreadPool> {
    static TRIALS: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    static PAGE: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let pool = if lowest { &TRIALS } else { &PAGE };
    pool.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(move |_| {
                if lowest {
                    "lcurve-charts"
                } else {
                    "lcurve-page"
                }
                .into()
            })
            .start_handler(move |_| {
                if lowest {
                    lowest_priority();
                }
            })
            .build()
            .ok()
    })
    .as_ref()
}

/// Lowers the calling thread to the lowest scheduling priority (nice 19) on Linux: the
/// kernel then runs it when a core would idle and preempts it when training needs the core,
/// while it still gets a small share on a machine with no idle core. The thread is the one of
/// a pool kept for such drawing alone (see [`live_pool`]), as a thread cannot raise its
/// priority again. Elsewhere it does nothing.
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; a failure leaves the
    // priority as it was, which is harmless.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
    }
}

/// Whether the run that `live` draws for is over: a live redraw then begins no chart.
fn run_over(live: Option<&Live>) -> bool {
    live.is_some_and(|l| l.over.load(Ordering::Relaxed))
}

/// A summary chart to draw: its file name, its caption on the page, and how to draw it.
type Job<'a> = (
    &'static str,
    String,
    Box<dyn Fn(&Path) -> Result<(), String> + Sync + 'a>,
);

/// The summary charts that `data` has, `curves.png` (the longest to draw) first.
fn summary_jobs(data: &ChartData) -> Vec<Job<'_>> {
    let mut jobs: Vec<Job> = Vec::new();
    let n = data.trials.len();
    jobs.push((
        "curves.png",
        format!(
            "Curves: validation loss of all {n} trials by epoch, colour = {}{}",
            data.color_by,
            data.style_by
                .map_or(String::new(), |s| format!(", line style = {s}"))
        ),
        Box::new(|p| draw::curves(data, p)),
    ));
    if data.groups.len() > 1 {
        jobs.push((
            "panels.png",
            format!("Panels: one panel per {} on a shared scale", data.color_by),
            Box::new(|p| draw::panels(data, p)),
        ));
    }
    if let Some(s) = summary(data) {
        let caption = format!(
            "Summary: best {} against {}, a line per {}",
            s.metric.name(),
            s.x_key,
            s.lines.first().map_or("-".into(), |l| l
                .label
                .split(", ")
                .map(|p| p.split('=').next().unwrap_or(p))
                .collect::<Vec<_>>()
                .join(" and "))
        );
        jobs.push((
            "summary.png",
            caption,
            Box::new(move |p| draw::summary(&data.sweep, &s, p)),
        ));
    }
    if let Some(h) = heatmap(data) {
        let caption = format!(
            "Heatmap: best {} by {} and {}",
            h.metric.name(),
            h.x_key,
            h.y_key
        );
        jobs.push((
            "heatmap.png",
            caption,
            Box::new(move |p| draw::heatmap(&data.sweep, &h, p)),
        ));
    }
    if let Some(lc) = learning_curve(data) {
        jobs.push((
            "learning_curve.png",
            "Learning curve: loss against the share of training data".into(),
            Box::new(move |p| draw::learning_curve(&data.sweep, &lc, p)),
        ));
    }
    jobs
}

/// Draws the summary charts `jobs` and the trial charts not in `skip`, each one written
/// recorded in `outcome` (trial charts in `written` too, at once); returns the file and
/// caption of each summary chart written. No chart is begun once the live run is over.
///
/// Every thread of the pool takes the next chart of one list whenever it is free. In the
/// final report the summary charts come first, the longest first, and the trial charts
/// (about as long as each other) fill in after them, so both cores end within about a trial
/// chart of each other: split into two lists, one thread drew the trial charts while the
/// other drew `curves.png` and then `panels.png`, whichever was shorter. In a live redraw
/// (with `live`, on one thread) the trial charts come first: an ended trial's chart is
/// final, while the summary charts change until the sweep ends.
fn draw_charts(
    data: &ChartData,
    paths: &ReportPaths,
    jobs: &[Job],
    skip: &[usize],
    live: Option<&Live>,
    written: &Mutex<Vec<(usize, Fingerprint)>>,
    outcome: &mut ReportOutcome,
) -> Vec<(String, String)> {
    enum Chart<'a> {
        /// Index into `jobs`.
        Summary(usize),
        Trial(&'a TrialSeries),
    }
    let summary = (0..jobs.len()).map(Chart::Summary);
    let trials = data
        .trials
        .iter()
        .filter(|t| !skip.contains(&t.ordinal))
        .map(Chart::Trial);
    let list: Vec<Chart> = if live.is_some() {
        trials.chain(summary).collect()
    } else {
        summary.chain(trials).collect()
    };
    // Each chart drawn: its place in `list`, its file, and how drawing it went.
    type Done = (usize, PathBuf, Result<(), String>);
    let drawn: Mutex<Vec<Done>> = Mutex::new(Vec::with_capacity(list.len()));
    let next = AtomicUsize::new(0);
    rayon::scope(|s| {
        for _ in 0..rayon::current_num_threads().min(list.len()) {
            s.spawn(|_| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(chart) = list.get(i).filter(|_| !run_over(live)) else {
                        break;
                    };
                    let (path, result) = match *chart {
                        Chart::Summary(j) => {
                            let path = paths.dir().join(jobs[j].0);
                            let result = (jobs[j].2)(&path);
                            (path, result)
                        }
                        Chart::Trial(t) => {
                            let path = paths.trial(t.ordinal);
                            let result = draw::trial(&data.sweep, t, &path);
                            if result.is_ok() {
                                let mut written = written.lock().unwrap_or_else(|e| e.into_inner());
                                written.push((t.ordinal, fingerprint(t)));
                            }
                            (path, result)
                        }
                    };
                    drawn
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, path, result));
                }
            });
        }
    });
    let mut drawn = drawn.into_inner().unwrap_or_else(|e| e.into_inner());
    // Recorded as before the one list: the summary charts in `jobs`' order, then the trials.
    drawn.sort_by_key(|&(i, _, _)| (matches!(list[i], Chart::Trial(_)), i));
    let mut charts = Vec::new();
    for (i, path, result) in drawn {
        if let Chart::Summary(j) = list[i]
            && result.is_ok()
        {
            let (file, caption, _) = &jobs[j];
            charts.push((file.to_string(), caption.clone()));
        }
        record(outcome, path, result);
    }
    charts
}

/// Draws the trial charts (except those in `skip`; each one written is added to `written`)
/// and, with `page`, the summary charts and the page (see [`draw_charts`]); once the live
/// run is over, no further chart and not the page.
fn draw_all(
    data: &ChartData,
    paths: &ReportPaths,
    skip: &[usize],
    page: Option<&PageText>,
    live: Option<&Live>,
    written: &Mutex<Vec<(usize, Fingerprint)>>,
) -> ReportOutcome {
    let mut outcome = ReportOutcome {
        dir: paths.dir().to_path_buf(),
        kept: skip.len(),
        ..Default::default()
    };
    let dir = paths.trials_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        record(&mut outcome, dir, Err(e.to_string()));
        return outcome;
    }
    let jobs = if page.is_some() {
        summary_jobs(data)
    } else {
        Vec::new()
    };
    let charts = draw_charts(data, paths, &jobs, skip, live, written, &mut outcome);
    let Some(page) = page else {
        return outcome;
    };
    if run_over(live) {
        return outcome;
    }
    let trial_charts: Vec<(usize, String)> = data
        .trials
        .iter()
        .filter(|t| paths.trial(t.ordinal).exists())
        .map(|t| (t.ordinal, format!("trials/{:03}.png", t.ordinal)))
        .collect();
    let generated = format!(
        "Made by lcurve {} from the database alone; rebuild with `lcurve report {}`.",
        env!("CARGO_PKG_VERSION"),
        data.sweep
    );
    let html = html::render(&html::Page {
        sweep: &data.sweep,
        description: page.description.as_deref(),
        counts: &page.counts,
        running: page.running,
        data: page.data.as_deref(),
        spec: &page.spec,
        leaderboard: &page.leaderboard,
        charts: &charts,
        trial_charts: &trial_charts,
        generated: &generated,
    });
    let index = paths.index();
    // Written beside and renamed over the old page, so a browser reloading mid-write never
    // sees half a page, nor none.
    let result = canvas::write_beside(&index, html.as_bytes(), false).map_err(|e| e.to_string());
    record(&mut outcome, index, result);
    outcome
}

/// Draws the best `k` validation curves of each of two sweeps on one chart,
/// `root/compare-<a>-vs-<b>.png`; returns its path.
/// Each sweep comes with the trials the caller has already read.
pub async fn write_compare<S: Store>(
    store: &S,
    sweeps: [(&SweepRow, &[TrialRow]); 2],
    k: usize,
    root: &Path,
) -> Result<Result<PathBuf, ChartError>, StoreError> {
    let mut prepared = Vec::new();
    for (row, trials) in sweeps {
        let metrics = store.metrics(row.id).await?;
        let decisions = store.stop_decisions(row.id).await?;
        prepared.push(prepare(
            &row.name,
            sweep_metric(&row.spec),
            trials,
            &metrics,
            &decisions,
        ));
    }
    let path = root.join(format!(
        "compare-{}-vs-{}.png",
        make_filename_safe(&sweeps[0].0.name),
        make_filename_safe(&sweeps[1].0.name)
    ));
    let target = path.clone();
    let drawing = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(target.parent().unwrap_or(Path::new(".")))
            .map_err(|e| e.to_string())?;
        let sides: Vec<(&str, Vec<&TrialSeries>)> = prepared
            .iter()
            .map(|d| (d.sweep.as_str(), d.top(k)))
            .collect();
        draw::compare(&sides, &target)
    });
    let result = drawing.await.map_err(|e| e.to_string()).and_then(|r| r);
    Ok(result
        .map(|()| path.clone())
        .map_err(|message| ChartError { path, message }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, TrialOutcome, Write};
    use crate::trainer::EpochReport;

    /// The trial charts' thread runs at nice 19; the page's keeps the calling thread's
    /// priority.
    #[cfg(target_os = "linux")]
    #[test]
    fn trial_charts_thread_is_the_lowest_priority() {
        // SAFETY: a plain query of the calling thread's own priority.
        let nice =
            || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let trials = live_pool(true).expect("the pool is made");
        assert_eq!(trials.install(nice), 19);
        let page = live_pool(false).expect("the pool is made");
        assert_eq!(page.install(nice), nice());
    }

    fn epoch(trial_id: i64, epoch: usize, val_loss: f64) -> Write {
        Write::Epoch {
            trial_id,
            report: EpochReport {
                epoch,
                train_loss: val_loss,
                val_loss,
                val_accuracy: None,
                val_rmse: None,
                seconds: 0.01,
                steps: Vec::new(),
            },
        }
    }

    fn completed(trial_id: i64) -> Write {
        Write::Finish {
            trial_id,
            outcome: TrialOutcome {
                state: TrialState::Completed,
                epochs_run: 2,
                best: None,
                stop_reason: None,
                error: None,
            },
        }
    }

    /// Sweep `s` in `store`, a trial per learning rate in `rates` (TOML), each of `epochs`;
    /// returns its id.
    async fn sweep_s(store: &SqliteStore, rates: &str, epochs: usize) -> i64 {
        let spec = crate::spec::parse(
            Path::new("t.toml"),
            &format!(
                "name = \"s\"\n[params]\nlearning_rate = [{rates}]\nbatch_size = 8\nepochs = {epochs}\n"
            ),
        )
        .unwrap();
        let id = store.create_sweep(&spec, None, false).await.unwrap();
        store
            .add_trials(id, &crate::spec::expand(&spec).unwrap())
            .await
            .unwrap();
        id
    }

    /// An ended trial's metrics are read once; later redraws read only the other trials', and
    /// every trial's metrics still come back, in full.
    #[tokio::test]
    async fn ended_trials_metrics_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("x.db")).await.unwrap();
        let id = sweep_s(&store, "0.1, 0.2, 0.3", 3).await;
        let (a, b) = (
            store.claim_next(id).await.unwrap().unwrap().id,
            store.claim_next(id).await.unwrap().unwrap().id,
        );
        let writes = [
            epoch(a, 1, 0.5),
            epoch(a, 2, 0.4),
            epoch(b, 1, 0.9),
            completed(a),
        ];
        store.apply(&writes).await.unwrap();
        let names = |m: &[MetricPoint], t: i64| -> Vec<(String, usize, f64)> {
            let mut v: Vec<_> = m
                .iter()
                .filter(|p| p.trial_id == t)
                .map(|p| (p.name.to_string(), p.epoch, p.value))
                .collect();
            v.sort_by(|x, y| x.partial_cmp(y).unwrap());
            v
        };
        let mut ended = Ended::default();
        let trials = store.trials(id).await.unwrap();
        let first = read_metrics(&store, Some(id), &trials, &mut ended)
            .await
            .unwrap();
        assert_eq!(
            ended.by_trial.keys().copied().collect::<Vec<_>>(),
            [a],
            "only the ended trial"
        );
        assert_eq!(ended.points, names(&first, a).len());
        let a_losses = names(&first, a);
        assert!(
            a_losses.contains(&("val_loss".into(), 2, 0.4)),
            "{a_losses:?}"
        );
        assert_eq!(names(&first, b).len(), names(&first, a).len() / 2);

        // Trial a's rows are gone from the database (as if replaced) and b has a new epoch:
        // a comes from what was read, b is read again.
        sqlx::query("DELETE FROM metrics WHERE trial_id = ?")
            .bind(a)
            .execute(store.pool())
            .await
            .unwrap();
        store.apply(&[epoch(b, 2, 0.8)]).await.unwrap();
        let trials = store.trials(id).await.unwrap();
        let second = read_metrics(&store, Some(id), &trials, &mut ended)
            .await
            .unwrap();
        assert_eq!(names(&second, a), a_losses);
        assert!(names(&second, b).contains(&("val_loss".into(), 2, 0.8)));
        // Without the sweep (a live redraw of some trials), the same.
        let third = read_metrics(&store, None, &trials[..1], &mut ended)
            .await
            .unwrap();
        assert_eq!(names(&third, a), a_losses);
        assert!(names(&third, b).is_empty());

        // Beyond the cap, an ended trial's metrics come back but are not kept.
        store.apply(&[completed(b)]).await.unwrap();
        ended.points = Ended::MAX_POINTS - 1;
        let trials = store.trials(id).await.unwrap();
        let fourth = read_metrics(&store, Some(id), &trials, &mut ended)
            .await
            .unwrap();
        assert!(names(&fourth, b).contains(&("val_loss".into(), 2, 0.8)));
        assert!(!ended.by_trial.contains_key(&b), "over the cap");
        assert_eq!(ended.points, Ended::MAX_POINTS - 1);
    }

    /// A live redraw still drawing when the run ends is dropped, not waited for: the charts
    /// it wrote until then are not drawn again by the final report (they were, when only a
    /// finished redraw counted them), and the others are.
    #[tokio::test(flavor = "multi_thread")]
    async fn charts_a_dropped_live_redraw_wrote_are_not_drawn_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("x.db")).await.unwrap();
        let rates: Vec<String> = (1..=12)
            .map(|i| format!("{}", f64::from(i) / 100.0))
            .collect();
        let id = sweep_s(&store, &rates.join(", "), 2).await;
        let mut writes = Vec::new();
        for _ in 0..rates.len() {
            let t = store.claim_next(id).await.unwrap().unwrap().id;
            writes.extend([epoch(t, 1, 0.5), epoch(t, 2, 0.4), completed(t)]);
        }
        store.apply(&writes).await.unwrap();
        let root = dir.path().join("reports");
        let trials_dir = root.join("s/trials");
        let on_disk = || -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(&trials_dir)
                .map(|d| {
                    d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        let mut drawn = Drawn::default();
        let over = Arc::new(AtomicBool::new(false));
        {
            let live = Live {
                over: over.clone(),
                page: false,
            };
            let redrawing = redraw(&store, "s", &root, &mut drawn, Some(live));
            tokio::pin!(redrawing);
            // Until the first chart is written; then the run ends and the redraw is dropped.
            while on_disk().is_empty() {
                tokio::select! {
                    done = &mut redrawing => {
                        done.unwrap();
                        break;
                    }
                    () = tokio::time::sleep(std::time::Duration::from_millis(1)) => {}
                }
            }
            over.store(true, Ordering::Relaxed);
        }
        // The chart thread stops at its next chart; once it has, nothing more is written live.
        live_pool(true).expect("a chart thread").install(|| ());
        let live_wrote = on_disk();
        assert!(!live_wrote.is_empty());

        let last = redraw(&store, "s", &root, &mut drawn, None).await.unwrap();
        assert!(last.failed.is_empty(), "{:?}", last.failed);
        let mut final_wrote: Vec<String> = last
            .written
            .iter()
            .filter(|p| p.parent() == Some(trials_dir.as_path()))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        final_wrote.sort();
        let again: Vec<&String> = final_wrote
            .iter()
            .filter(|f| live_wrote.contains(f))
            .collect();
        assert!(again.is_empty(), "drawn again: {again:?}");
        assert_eq!(live_wrote.len() + final_wrote.len(), rates.len());
        assert_eq!(last.kept, live_wrote.len(), "the report says what it kept");
        assert_eq!(on_disk().len(), rates.len());
    }

    #[test]
    fn the_metric_and_spec_text_come_from_the_stored_spec() {
        assert_eq!(
            sweep_metric(r#"{"stopping":{"metric":"val_accuracy"}}"#),
            Metric::ValAccuracy
        );
        assert_eq!(sweep_metric(r#"{"stopping":null}"#), Metric::ValLoss);
        assert_eq!(sweep_metric("not json"), Metric::ValLoss);
        let text = spec_text(r#"{"name":"s","stopping":null,"params":{"lr":[0.1,0.01]}}"#);
        assert!(text.contains("name = \"s\""), "{text}");
        assert!(text.contains("[params]"), "{text}");
        assert!(!text.contains("stopping"), "nulls are left out: {text}");
    }
}
