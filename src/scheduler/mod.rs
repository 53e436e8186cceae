//! The scheduler: claims trials, runs up to `max_parallel` trainers on blocking threads, asks
//! the stopping rules after every epoch, and is the one writer that records it all.

mod outcome;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::spec::{Metric, PlannedTrial, TrialConfig};
use crate::stopping::{Action, Asha, Context, Decision, OwnCheck, Peers, StoppingRule, decide_all};
use crate::store::{ClaimedTrial, Store, StoreError, TrialOutcome, TrialState, Write};
use crate::trainer::{Checkpoint, Control, EpochReport, TrainEnd, TrainError, Trainer};

pub use outcome::best_of;

/// Hears about trials starting and ending (the command line prints progress).
pub trait Progress {
    /// Called once before training, with the sweep's size and how many trials are finished.
    fn begin(&mut self, _total: usize, _already_finished: usize) {}
    fn started(&mut self, _trial: &ClaimedTrial, _running: &[usize]) {}
    fn finished(
        &mut self,
        _ordinal: usize,
        _label: &str,
        _outcome: &TrialOutcome,
        _running: &[usize],
    ) {
    }
    /// A trial paused at an ASHA rung (it may be promoted later).
    fn paused(&mut self, _ordinal: usize, _label: &str, _epoch: usize, _running: &[usize]) {}
    /// An epoch of a running trial was stored.
    fn epoch(&mut self, _e: &EpochProgress) {}
    /// The first `ends` trial ends of this run (each `finished` and `paused`, counted in
    /// the order they were reported) are committed, so the database shows them; called
    /// after those calls, each time the count grows while the run goes on (not for the
    /// commit that ends it).
    fn saved(&mut self, _ends: usize) {}
}

/// One stored epoch of a running trial, for progress lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochProgress {
    pub ordinal: usize,
    pub epoch: usize,
    /// The trial's planned epochs.
    pub epochs: usize,
    pub val_loss: f64,
}

/// Progress that says nothing (tests, library users).
pub struct Quiet;
impl Progress for Quiet {}

pub struct SchedulerOptions {
    pub max_parallel: usize,
    pub rules: Vec<Box<dyn StoppingRule>>,
    /// The metric whose best value and epoch are stored on each trial.
    pub best_metric: Metric,
    /// Successive halving: `(min_epochs, eta)`.
    pub asha: Option<(usize, usize)>,
}

/// What one call to [`run`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub finished: HashMap<TrialState, usize>,
    /// Trials stopped by cancellation and put back to `pending`.
    pub interrupted: usize,
}

enum Msg {
    /// One epoch, or from a trainer that goes on without waiting (see [`FreeRun`]) the
    /// epochs it held back since its last send, oldest first.
    Epoch {
        trial_id: i64,
        reports: Vec<EpochReport>,
        /// The answer to the last of `reports`; `None` from a free-running trainer.
        reply: Option<oneshot::Sender<Control>>,
    },
    Done {
        trial_id: i64,
        result: Result<TrainEnd, TrainError>,
        /// The queued trial the same thread took next and is training (see [`FreeRun`]).
        next: Option<Box<ClaimedTrial>>,
    },
}

struct Running {
    claim: ClaimedTrial,
    curve: Vec<EpochReport>,
    stop: Option<Decision>,
    interrupted: bool,
}

impl Running {
    fn new(claim: ClaimedTrial) -> Self {
        Self {
            claim,
            curve: Vec::new(),
            stop: None,
            interrupted: false,
        }
    }
}

/// A trial paused at an ASHA rung, as the scheduler remembers it.
struct Paused {
    ordinal: usize,
    label: String,
    /// Its planned epochs.
    epochs: usize,
    curve: Vec<EpochReport>,
}

/// Runs every pending trial of `sweep_id` until none is left or `cancel` resolves; on
/// cancellation, running trials stop after their current epoch (which is kept) and go back to
/// `pending`, so the next run starts them again.
///
/// Trials that `head` began before the store was open are adopted as they come up in the
/// queue; those that do not (the store holds the sweep from an earlier run) are abandoned
/// once the first trials have started.
pub async fn run<S: Store, T: Trainer>(
    store: &S,
    sweep_id: i64,
    trainer: Arc<T>,
    opts: &SchedulerOptions,
    progress: &mut dyn Progress,
    cancel: impl Future<Output = ()>,
    mut head: Option<HeadStart>,
) -> Result<RunSummary, StoreError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut running: HashMap<i64, Running> = HashMap::new();
    let mut summary = RunSummary::default();
    let (mut exhausted, mut cancelled) = (false, false);
    // A head start's trainers hold its queue and cancel flag: the run shares them. One begun
    // for options whose trainers must wait for answers is abandoned.
    let free = FreeRun::for_rules(opts).map(|own| head.as_ref().map_or(own, |h| h.free.clone()));
    if free.is_none() {
        head = None;
    }
    let queue = free
        .as_ref()
        .map_or_else(Queue::default, |f| f.queue.clone());
    let mut book = Book::load(store, sweep_id, opts, queue).await?;
    let mut unsaved = Unsaved::default();
    tokio::pin!(cancel);

    loop {
        // Threads begun ahead learn that they are adopted once the loop below has claimed
        // every trial it starts now: told at once, a thread that had already finished its
        // trial took the next from the queue, and that could be the trial another thread had
        // begun ahead (trained twice then, 1 test run in 20).
        let mut adopted = Vec::new();
        while !cancelled && running.len() < opts.max_parallel.max(1) {
            // Promotions first, as ASHA prefers them to new trials; with nothing else left,
            // the leader of the highest rung goes on.
            let promotion = book.promotable().or_else(|| {
                (exhausted && running.is_empty())
                    .then(|| book.promote_leader())
                    .flatten()
            });
            if let Some((trial, decision)) = promotion {
                unsaved.flush(store).await?;
                unsaved.tell(progress);
                resume(
                    store,
                    &mut book,
                    trial,
                    decision,
                    &trainer,
                    &tx,
                    &mut running,
                )
                .await?;
                progress.started(&running[&trial].claim, &ordinals(&running));
                continue;
            }
            if exhausted {
                break;
            }
            // The start is written with the epochs that follow it: a trial starts at once,
            // not after the commit under way (which waited 5-8 ms, 4-5 times in the digits
            // sweep). Until it commits the trial reads as pending, as after a crash.
            let next = book.queue.lock().expect("the queue's lock").pop_front();
            match next {
                None => exhausted = true,
                Some(claim) => {
                    let id = claim.id;
                    // A thread that began this very trial goes on with it (see `HeadStart`).
                    match head.as_mut().and_then(|h| h.take(&claim)) {
                        Some(to) => adopted.push((to, claim.clone())),
                        None => {
                            let start = (claim.clone(), None);
                            spawn_trainer(start, trainer.clone(), tx.clone(), free.clone());
                        }
                    }
                    unsaved.add(vec![started(claim, &mut running, &mut book)]);
                    progress.started(&running[&id].claim, &ordinals(&running));
                }
            }
        }
        for (to, claim) in adopted {
            // A thread that has gone away (panicked) leaves its trial to a new one.
            if to.send((claim.id, tx.clone())).is_err() {
                spawn_trainer((claim, None), trainer.clone(), tx.clone(), free.clone());
            }
        }
        // Trials begun ahead and not adopted by now never will be: their threads stop.
        head = None;
        if running.is_empty() {
            // Nothing left to run or promote: trials still paused end here, and the sweep's
            // end shares their commit and that of the last trial's end (see below).
            let (mut writes, ended) = if cancelled {
                Default::default()
            } else {
                book.stop_paused(opts.best_metric)
            };
            writes.push(Write::FinishSweep { sweep_id });
            unsaved.add(writes);
            unsaved.flush(store).await?;
            // Not told the commit: the run is over, and the final redraw follows (a live
            // redraw started now would only hold it up).
            for (ordinal, label, outcome) in ended {
                *summary.finished.entry(outcome.state).or_default() += 1;
                progress.finished(ordinal, &label, &outcome, &[]);
            }
            break;
        }
        let deadline = unsaved.deadline();
        let committing = unsaved.committing.is_some();
        let first = tokio::select! {
            msg = rx.recv() => msg.expect("the scheduler holds a sender"),
            () = &mut cancel, if !cancelled => {
                cancelled = true;
                if let Some(free) = &free {
                    free.cancelled.store(true, Ordering::Relaxed);
                }
                continue;
            }
            result = unsaved.committed(), if committing => {
                result?;
                unsaved.tell(progress);
                unsaved.start(store);
                continue;
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                if deadline.is_some() => {
                unsaved.start(store);
                continue;
            }
        };
        // Take everything that has arrived, and commit it in one transaction.
        let mut batch = vec![first];
        while let Ok(msg) = rx.try_recv() {
            batch.push(msg);
        }
        let step = process(batch, &mut running, &mut book, opts, cancelled);
        // Trainers get their answers before the commit, so no training thread waits for the
        // database. This is safe: a trial's end is only final once its Finish row commits,
        // which happens after every epoch before it; a crash in between re-runs the trial.
        for (reply, control) in step.replies {
            // A trainer that has gone away (panicked) no longer needs an answer.
            let _ = reply.send(control);
        }
        // Writes wait up to COMMIT_EVERY to share a transaction, trials' ends and pauses
        // too: committing at each trial's end made 32 commits of the digits sweep instead of
        // 7. The commit runs while this loop goes on answering trainers. At the run's tail
        // (nothing left to start, a core idle, a trial still training) an end is committed
        // at once: the idle core pays for it, and the live report can draw the trial's final
        // chart there (see `Progress::saved`) instead of after the run.
        let tail_end = book.queue.lock().expect("the queue's lock").is_empty()
            && (1..opts.max_parallel).contains(&running.len())
            && !(step.paused.is_empty() && step.changes.iter().all(|c| c.started().is_some()));
        unsaved.add(step.writes);
        unsaved.urgent |= tail_end;
        // With nothing running, the loop's top starts more trials, whose writes join these,
        // or ends the run in one commit with them: the last trial's end and the sweep's
        // used to be two commits, one after the other, between training and the report.
        if !running.is_empty() {
            unsaved.start(store);
        }
        for e in &step.epochs {
            progress.epoch(e);
        }
        // Told in order, each with the trials running then: those running now but started
        // in this step join as they start, and trials ended in it have left.
        let mut shown: Vec<usize> = running
            .values()
            .filter(|r| !step.changes.iter().any(|c| c.started() == Some(r.claim.id)))
            .map(|r| r.claim.ordinal)
            .collect();
        shown.sort_unstable();
        for (ordinal, label, epoch) in step.paused {
            progress.paused(ordinal, &label, epoch, &shown);
        }
        for change in step.changes {
            match change {
                Change::Ended(claim, outcome) => {
                    shown.retain(|&o| o != claim.ordinal);
                    if outcome.state == TrialState::Pending {
                        summary.interrupted += 1;
                    } else {
                        *summary.finished.entry(outcome.state).or_default() += 1;
                    }
                    progress.finished(claim.ordinal, &claim.config.label(), &outcome, &shown);
                }
                Change::Started(claim) => {
                    shown.push(claim.ordinal);
                    shown.sort_unstable();
                    progress.started(&claim, &shown);
                }
            }
        }
    }
    Ok(summary)
}

/// How long writes may wait to share one transaction. One commit per epoch cost ~0.2 ms of a
/// core each, 6.8% of the CPU time of a fused digits sweep; a crash loses at most this much
/// training (a trial that ended within it is trained again by the rerun).
const COMMIT_EVERY: Duration = Duration::from_millis(100);
/// Commit sooner when this many writes are waiting.
const COMMIT_AT: usize = 4096;

/// A commit under way.
type Commit<'s> = std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + 's>>;

/// Writes not yet committed, since when the oldest has waited, and the commit under way.
/// A commit runs while the scheduler answers trainers (the store commits on a task of its
/// own, see [`Store::commit`]): one of 100 ms of the digits sweep's epochs, about 4,500 step
/// and metric rows, takes 5-10 ms, and trainers that finished an epoch meanwhile used to wait
/// for it.
#[derive(Default)]
struct Unsaved<'s> {
    writes: Vec<Write>,
    since: Option<tokio::time::Instant>,
    /// The commit under way, and how many trial ends it and those before it hold.
    committing: Option<(Commit<'s>, usize)>,
    /// Commit what waits as soon as no commit is under way, without waiting for
    /// COMMIT_EVERY (set when a trial ends at the run's tail).
    urgent: bool,
    ends: Ends,
}

/// Trial ends (`Finish` and `Pause` writes) of this run: how many were added, how many are
/// committed, and how many of those [`Progress::saved`] has been told.
#[derive(Default)]
struct Ends {
    added: usize,
    saved: usize,
    told: usize,
}

impl<'s> Unsaved<'s> {
    fn add(&mut self, writes: Vec<Write>) {
        if !writes.is_empty() {
            self.since.get_or_insert_with(tokio::time::Instant::now);
            self.ends.added += writes
                .iter()
                .filter(|w| matches!(w, Write::Finish { .. } | Write::Pause { .. }))
                .count();
            self.writes.extend(writes);
        }
    }

    /// Tells `progress` how many trial ends are committed, if that grew.
    fn tell(&mut self, progress: &mut dyn Progress) {
        if self.ends.saved > self.ends.told {
            self.ends.told = self.ends.saved;
            progress.saved(self.ends.saved);
        }
    }

    /// When the oldest waiting write must be committed; `None` when nothing waits or a
    /// commit is under way (the next one starts when it is done).
    fn deadline(&self) -> Option<tokio::time::Instant> {
        if self.committing.is_some() {
            return None;
        }
        self.since.map(|s| s + COMMIT_EVERY)
    }

    /// Starts committing what waits, if it is due and no commit is under way.
    fn start<S: Store>(&mut self, store: &'s S) {
        let due = self.urgent
            || self.writes.len() >= COMMIT_AT
            || self
                .since
                .is_some_and(|s| s + COMMIT_EVERY <= tokio::time::Instant::now());
        if self.committing.is_some() || self.writes.is_empty() || !due {
            return;
        }
        let writes = std::mem::take(&mut self.writes);
        self.since = None;
        self.urgent = false;
        self.committing = Some((Box::pin(store.commit(writes)), self.ends.added));
    }

    /// Waits for the commit under way; `Ok` at once when there is none.
    async fn committed(&mut self) -> Result<(), StoreError> {
        let Some((commit, ends)) = self.committing.as_mut() else {
            return Ok(());
        };
        let result = commit.await;
        if result.is_ok() {
            self.ends.saved = *ends;
        }
        self.committing = None;
        result
    }

    /// Commits everything: the commit under way, then what waits.
    async fn flush<S: Store>(&mut self, store: &S) -> Result<(), StoreError> {
        self.committed().await?;
        if !self.writes.is_empty() {
            store.apply(&self.writes).await?;
            self.writes.clear();
        }
        self.since = None;
        self.urgent = false;
        self.ends.saved = self.ends.added;
        Ok(())
    }
}

/// Continues a paused trial from its checkpoint: records the promotion, claims it back from
/// the store (with its curve so far) and starts its trainer.
async fn resume<S: Store, T: Trainer>(
    store: &S,
    book: &mut Book,
    trial: i64,
    decision: Decision,
    trainer: &Arc<T>,
    tx: &mpsc::UnboundedSender<Msg>,
    running: &mut HashMap<i64, Running>,
) -> Result<(), StoreError> {
    store
        .apply(&[Write::Decision {
            trial_id: trial,
            decision,
        }])
        .await?;
    let (claim, checkpoint, curve) = store.resume(trial).await?;
    book.paused.remove(&trial);
    // Resumed trials run under ASHA, whose pauses need an answer every epoch.
    spawn_trainer(
        (claim.clone(), Some(checkpoint)),
        trainer.clone(),
        tx.clone(),
        None,
    );
    running.insert(
        trial,
        Running {
            claim,
            curve,
            stop: None,
            interrupted: false,
        },
    );
    Ok(())
}

/// What the scheduler knows across trials: their curves (for cross-trial rules), the ASHA
/// promotion book, the trials paused at a rung, and those still to start.
struct Book {
    peers: Peers,
    asha: Option<Asha>,
    paused: HashMap<i64, Paused>,
    /// Pending trials not paused, by ordinal, each with the attempt it starts. The run lock
    /// keeps other processes from starting them; free-running trainers take from it too.
    queue: Queue,
}

type Queue = Arc<Mutex<VecDeque<ClaimedTrial>>>;

impl Book {
    /// Rebuilt from the store, so a rerun sees the trials finished and paused before.
    async fn load<S: Store>(
        store: &S,
        sweep_id: i64,
        opts: &SchedulerOptions,
        queue: Queue,
    ) -> Result<Self, StoreError> {
        let metric = opts.best_metric;
        let mut book = Book {
            peers: Peers::new(metric),
            asha: opts.asha.map(|(r, eta)| Asha::new(metric, r, eta)),
            paused: HashMap::new(),
            queue,
        };
        let trials = store.trials(sweep_id).await?;
        let paused: HashMap<i64, usize> = store.paused(sweep_id).await?.into_iter().collect();
        *book.queue.lock().expect("the queue's lock") = trials
            .iter()
            .filter(|t| t.state == TrialState::Pending && !paused.contains_key(&t.id))
            .map(|t| ClaimedTrial {
                id: t.id,
                ordinal: t.ordinal,
                attempt: t.attempt + 1,
                config: t.config.clone(),
            })
            .collect();
        let kept: Vec<&crate::store::TrialRow> = trials
            .iter()
            .filter(|t| t.state.is_finished() || paused.contains_key(&t.id))
            .collect();
        if kept.is_empty() {
            return Ok(book);
        }
        let mut by_trial: HashMap<i64, Vec<crate::store::MetricPoint>> = HashMap::new();
        for m in store.metrics(sweep_id).await? {
            by_trial.entry(m.trial_id).or_default().push(m);
        }
        for t in kept {
            let mut curve = by_trial
                .get(&t.id)
                .map(|p| crate::replay::curve_of(p))
                .unwrap_or_default();
            let paused_at = paused.get(&t.id).copied();
            if let Some(e) = paused_at {
                curve.truncate(e);
            }
            for r in &curve {
                book.peers.record(t.id, r.epoch, r.get(metric));
            }
            if t.state.is_finished() {
                book.peers.finish(t.id);
            }
            if let Some(a) = book.asha.as_mut() {
                a.restore(t.id, &curve, t.config.epochs, paused_at);
            }
            if paused_at.is_some() {
                book.paused.insert(
                    t.id,
                    Paused {
                        ordinal: t.ordinal,
                        label: t.config.label(),
                        epochs: t.config.epochs,
                        curve,
                    },
                );
            }
        }
        Ok(book)
    }

    /// With nothing running and nothing new to start: the highest rung's leader goes on
    /// (see [`Asha::promote_leader`]).
    fn promote_leader(&mut self) -> Option<(i64, Decision)> {
        let paused = &self.paused;
        let a = self.asha.as_mut()?;
        a.promote_leader(|t| paused.get(&t).map_or(usize::MAX, |p| p.epochs))
    }

    fn promotable(&mut self) -> Option<(i64, Decision)> {
        let paused = &self.paused;
        let a = self.asha.as_mut()?;
        a.promotable(|t| paused.get(&t).map_or(usize::MAX, |p| p.epochs))
    }

    /// Ends every paused trial as stopped at its rung.
    fn stop_paused(&mut self, metric: Metric) -> (Vec<Write>, Vec<(usize, String, TrialOutcome)>) {
        let (mut writes, mut ended) = (Vec::new(), Vec::new());
        let Some(a) = self.asha.as_mut() else {
            return (writes, ended);
        };
        for (trial_id, decision) in a.stop_paused() {
            let Some(p) = self.paused.remove(&trial_id) else {
                continue;
            };
            let outcome = TrialOutcome {
                state: TrialState::Stopped,
                epochs_run: p.curve.len(),
                best: best_of(&p.curve, metric),
                stop_reason: Some(decision.reason.clone()),
                error: None,
            };
            writes.push(Write::Decision { trial_id, decision });
            writes.push(Write::Finish {
                trial_id,
                outcome: outcome.clone(),
            });
            ended.push((p.ordinal, p.label, outcome));
        }
        (writes, ended)
    }
}

/// What one batch of messages asks for: rows to commit, then answers to send and trial ends
/// to announce, both only after the commit.
struct Step {
    writes: Vec<Write>,
    replies: Vec<(oneshot::Sender<Control>, Control)>,
    /// Trials that ended, and queued trials that trainers' threads took and started, in
    /// the order they did.
    changes: Vec<Change>,
    /// (ordinal, label, epoch) of trials that paused.
    paused: Vec<(usize, String, usize)>,
    /// The epochs stored, for progress lines.
    epochs: Vec<EpochProgress>,
}

enum Change {
    Ended(ClaimedTrial, TrialOutcome),
    Started(ClaimedTrial),
}

impl Change {
    /// The id of a trial started.
    fn started(&self) -> Option<i64> {
        match self {
            Change::Started(claim) => Some(claim.id),
            Change::Ended(..) => None,
        }
    }
}

/// Applies the rules to each reported epoch and turns finished trainers into outcomes.
fn process(
    batch: Vec<Msg>,
    running: &mut HashMap<i64, Running>,
    book: &mut Book,
    opts: &SchedulerOptions,
    cancelled: bool,
) -> Step {
    let mut step = Step {
        writes: Vec::with_capacity(batch.len() * 3),
        replies: Vec::new(),
        changes: Vec::new(),
        paused: Vec::new(),
        epochs: Vec::new(),
    };
    for msg in batch {
        match msg {
            Msg::Epoch {
                trial_id,
                reports,
                reply,
            } => {
                let r = running
                    .get_mut(&trial_id)
                    .expect("epochs come from running trials");
                let mut control = Control::Continue;
                for report in reports {
                    // A free-running trainer's own checks said continue, as the rules did, or
                    // the run was cancelled, which the trainer learns from the flag.
                    debug_assert!(
                        cancelled || control == Control::Continue,
                        "a free-running trainer's checks disagree with the rules"
                    );
                    control = epoch(trial_id, r, report, book, opts, cancelled, &mut step);
                }
                match reply {
                    Some(reply) => step.replies.push((reply, control)),
                    None => debug_assert!(
                        cancelled || control == Control::Continue,
                        "a free-running trainer's checks disagree with the rules"
                    ),
                }
            }
            Msg::Done {
                trial_id,
                result,
                next,
            } => {
                let r = running
                    .remove(&trial_id)
                    .expect("done comes from running trials");
                let result = match result {
                    Ok(TrainEnd::Paused(checkpoint)) => {
                        step.writes.push(Write::Pause {
                            trial_id,
                            epochs_run: r.curve.len(),
                            checkpoint,
                        });
                        step.paused
                            .push((r.claim.ordinal, r.claim.config.label(), r.curve.len()));
                        book.paused.insert(
                            trial_id,
                            Paused {
                                ordinal: r.claim.ordinal,
                                label: r.claim.config.label(),
                                epochs: r.claim.config.epochs,
                                curve: r.curve,
                            },
                        );
                        taken(next, running, book, &mut step);
                        continue;
                    }
                    Ok(TrainEnd::Finished(n)) => Ok(n),
                    Err(e) => Err(e),
                };
                let outcome = outcome::decide(&r, result, opts.best_metric);
                if outcome.state == TrialState::Pending {
                    book.peers.forget(trial_id);
                } else {
                    book.peers.finish(trial_id);
                }
                step.writes.push(Write::Finish {
                    trial_id,
                    outcome: outcome.clone(),
                });
                step.changes.push(Change::Ended(r.claim, outcome));
                taken(next, running, book, &mut step);
            }
        }
    }
    step
}

/// Records the queued trial that a trainer's thread took and is training, if it took one.
fn taken(
    next: Option<Box<ClaimedTrial>>,
    running: &mut HashMap<i64, Running>,
    book: &mut Book,
    step: &mut Step,
) {
    let Some(claim) = next else { return };
    step.writes.push(started((*claim).clone(), running, book));
    step.changes.push(Change::Started(*claim));
}

/// Records that the queued trial `claim` started training (by the scheduler or a trainer's
/// thread); returns the write that stores its start.
fn started(claim: ClaimedTrial, running: &mut HashMap<i64, Running>, book: &mut Book) -> Write {
    let trial_id = claim.id;
    book.peers.forget(trial_id);
    running.insert(trial_id, Running::new(claim));
    Write::Start { trial_id }
}

/// Records one epoch of a running trial in `step` (its writes and progress) and applies the
/// rules and ASHA to it; returns what the trainer is to do next.
fn epoch(
    trial_id: i64,
    r: &mut Running,
    mut report: EpochReport,
    book: &mut Book,
    opts: &SchedulerOptions,
    cancelled: bool,
    step: &mut Step,
) -> Control {
    // The per-step losses go to the store only; the curve keeps the epoch's numbers.
    let steps = std::mem::take(&mut report.steps);
    r.curve.push(report.clone());
    let metric = book.peers.metric();
    book.peers
        .record(trial_id, report.epoch, report.get(metric));
    let (epoch, val_loss) = (report.epoch, report.val_loss);
    report.steps = steps;
    step.writes.push(Write::Epoch { trial_id, report });
    step.epochs.push(EpochProgress {
        ordinal: r.claim.ordinal,
        epoch,
        epochs: r.claim.config.epochs,
        val_loss,
    });
    if cancelled {
        r.interrupted = true;
        return Control::Stop;
    }
    let ctx = Context {
        curve: &r.curve,
        max_epochs: r.claim.config.epochs,
        trial_id,
        peers: &book.peers,
    };
    let decisions = decide_all(&opts.rules, &ctx);
    r.stop = decisions
        .iter()
        .find(|d| d.action != Action::Continue)
        .cloned();
    step.writes.extend(
        decisions
            .into_iter()
            .map(|decision| Write::Decision { trial_id, decision }),
    );
    if r.stop.is_some() {
        Control::Stop
    } else if let Some(a) = book.asha.as_mut()
        && let Some(k) = a.rung_at(epoch, r.claim.config.epochs)
    {
        let decision = a.arrive(trial_id, k, &r.curve, r.claim.config.epochs);
        let pause = decision.action == Action::Pause;
        step.writes.push(Write::Decision { trial_id, decision });
        if pause {
            Control::Pause
        } else {
            Control::Continue
        }
    } else {
        Control::Continue
    }
}

fn ordinals(running: &HashMap<i64, Running>) -> Vec<usize> {
    let mut v: Vec<usize> = running.values().map(|r| r.claim.ordinal).collect();
    v.sort_unstable();
    v
}

/// How a trainer goes on without the scheduler's answer: when every stopping rule reads only
/// the trial's own curve (see [`StoppingRule::own_check`]: divergence, which is always on,
/// patience and threshold; not the median and extrapolation rules, which read other trials)
/// and there is no ASHA, a trainer waits for the answer only after an epoch that a rule acts
/// on. The answer took 1 to 2,500 µs (median 10 µs) in the digits sweep: waits of 25-68 ms in
/// all per sweep, while a core idled.
///
/// Such a trainer's thread also takes the next queued trial itself when one ends, and says
/// so with the end ([`Msg::Done`]): handing the core back to the scheduler and waiting to be
/// given the next trial left it idle for 0.1-5 ms at each trial's end (8-16 ms per digits
/// sweep, while training alone goes straight on).
#[derive(Clone)]
struct FreeRun {
    checks: Arc<[OwnCheck]>,
    /// Set when the run is cancelled: the trainer stops after the epoch it is on (kept).
    cancelled: Arc<AtomicBool>,
    queue: Queue,
}

impl FreeRun {
    /// With an empty queue, which the scheduler fills.
    fn for_rules(opts: &SchedulerOptions) -> Option<Self> {
        if opts.asha.is_some() {
            return None;
        }
        let checks: Option<Vec<OwnCheck>> = opts.rules.iter().map(|r| r.own_check()).collect();
        Some(Self {
            checks: checks?.into(),
            cancelled: Arc::new(AtomicBool::new(false)),
            queue: Queue::default(),
        })
    }

    /// The next queued trial, unless the run is cancelled.
    fn take_next(&self) -> Option<ClaimedTrial> {
        if self.cancelled.load(Ordering::Relaxed) {
            return None;
        }
        self.queue.lock().expect("the queue's lock").pop_front()
    }
}

/// The first trials of a sweep, begun before the store is open: opening a new database and
/// storing the sweep took 4-5 ms of the digits sweep's start, while both cores could train.
/// Each trial's thread trains and holds its epochs until the scheduler adopts it, that is,
/// claims the same trial (same ordinal and configuration) from the store; from then on it is
/// a free-running trainer like any other. A trial the scheduler does not adopt (the store
/// held the sweep from an earlier run, and that trial was not next) is abandoned: its thread
/// stops after the epoch it is on and sends nothing, and the trial runs as usual if it is
/// still to run. Only where trainers need no answer after each epoch (see [`FreeRun`]).
pub struct HeadStart {
    free: FreeRun,
    /// Each begun trial, and how to tell its thread the stored trial's id.
    begun: Vec<(PlannedTrial, oneshot::Sender<Adoption>)>,
}

impl HeadStart {
    /// Begins the first of `planned` (as many as may run at once), each on a thread of its
    /// own; `None` where `opts` has trainers wait for answers (ASHA, or a rule that reads
    /// other trials). Dropped without [`run`], it abandons them.
    pub fn begin<T: Trainer>(
        trainer: &Arc<T>,
        planned: &[PlannedTrial],
        opts: &SchedulerOptions,
    ) -> Option<Self> {
        let free = FreeRun::for_rules(opts)?;
        let mut begun = Vec::new();
        for trial in planned.iter().take(opts.max_parallel.max(1)) {
            let (adopt, adoption) = oneshot::channel();
            let (trainer, free, config) = (trainer.clone(), free.clone(), trial.config.clone());
            // A thread of its own, not the runtime's: an abandoned trial's last epoch must
            // not hold up the process's exit.
            let spawned = std::thread::Builder::new()
                .name("lcurve-head-start".into())
                .spawn(move || {
                    let link = Link::Awaiting(adoption);
                    train_in_turn(config, None, link, &*trainer, Some(&free));
                });
            if spawned.is_err() {
                break;
            }
            begun.push((trial.clone(), adopt));
        }
        Some(Self { free, begun })
    }

    /// Where to tell the thread that began `claim`'s trial, if one did.
    fn take(&mut self, claim: &ClaimedTrial) -> Option<oneshot::Sender<Adoption>> {
        let at = self
            .begun
            .iter()
            .position(|(t, _)| t.ordinal == claim.ordinal && t.config == claim.config)?;
        Some(self.begun.swap_remove(at).1)
    }
}

/// How long a free-running trainer holds its epochs back before sending them, at most: the
/// scheduler then wakes for several epochs at once. Sent one at a time, the digits sweep's
/// 960 epochs woke the scheduler's thread about 1,100 times and preempted the sending
/// trainer about 400 times. Well under [`COMMIT_EVERY`], so nothing waits longer to be
/// stored; an epoch that a rule acts on, or one after the run is cancelled, goes at once.
const SEND_EVERY: Duration = Duration::from_millis(20);

/// Trains on a blocking thread; every epoch waits for the scheduler's answer, unless `free`
/// says it need not, and then the thread goes on with queued trials while there are any.
fn spawn_trainer<T: Trainer>(
    (claim, resume): (ClaimedTrial, Option<Checkpoint>),
    trainer: Arc<T>,
    tx: mpsc::UnboundedSender<Msg>,
    free: Option<FreeRun>,
) {
    tokio::task::spawn_blocking(move || {
        let link = Link::Known(claim.id, tx);
        train_in_turn(claim.config, resume, link, &*trainer, free.as_ref());
    });
}

/// Trains `config` on the calling thread, then, if `free`, each queued trial it takes in
/// turn, sending each trial's epochs and end over `link`.
fn train_in_turn<T: Trainer>(
    mut config: TrialConfig,
    mut resume: Option<Checkpoint>,
    mut link: Link,
    trainer: &T,
    free: Option<&FreeRun>,
) {
    loop {
        let result = train_trial(&config, resume.take(), trainer, &mut link, free);
        // Abandoned before it was adopted: nothing to say, and no queued trial to take.
        let Some((trial_id, tx)) = link.get() else {
            return;
        };
        let tx = tx.clone();
        let next = free.and_then(FreeRun::take_next);
        let done = Msg::Done {
            trial_id,
            result,
            next: next.clone().map(Box::new),
        };
        let sent = tx.send(done).is_ok();
        match next {
            Some(next) if sent => {
                link = Link::Known(next.id, tx);
                config = next.config;
            }
            _ => return,
        }
    }
}

/// What a thread that began a trial ahead learns when the scheduler adopts it: the stored
/// trial's id, and where to send its messages.
type Adoption = (i64, mpsc::UnboundedSender<Msg>);

/// Which stored trial a trainer's thread trains, and where its messages go.
enum Link {
    Known(i64, mpsc::UnboundedSender<Msg>),
    /// Begun before the store was open (see [`HeadStart`]): told when the scheduler adopts
    /// it.
    Awaiting(oneshot::Receiver<Adoption>),
    /// Begun ahead, and not adopted: the stored trial was not the one begun.
    Abandoned,
}

impl Link {
    /// The trial's id and the scheduler's channel, waiting for the adoption if need be;
    /// `None` once abandoned.
    fn get(&mut self) -> Option<(i64, &mpsc::UnboundedSender<Msg>)> {
        if let Link::Awaiting(_) = self
            && let Link::Awaiting(adoption) = std::mem::replace(self, Link::Abandoned)
            && let Ok((id, tx)) = adoption.blocking_recv()
        {
            *self = Link::Known(id, tx);
        }
        match self {
            Link::Known(id, tx) => Some((*id, tx)),
            _ => None,
        }
    }

    /// Whether the thread is to go on: false once abandoned. Never waits.
    fn alive(&mut self) -> bool {
        if let Link::Awaiting(adoption) = self {
            match adoption.try_recv() {
                Ok((id, tx)) => *self = Link::Known(id, tx),
                Err(oneshot::error::TryRecvError::Empty) => {}
                Err(oneshot::error::TryRecvError::Closed) => *self = Link::Abandoned,
            }
        }
        !matches!(self, Link::Abandoned)
    }
}

/// Trains `config` on the calling thread, sending its epochs, and returns how it ended.
fn train_trial<T: Trainer>(
    config: &TrialConfig,
    resume: Option<Checkpoint>,
    trainer: &T,
    link: &mut Link,
    free: Option<&FreeRun>,
) -> Result<TrainEnd, TrainError> {
    let max_epochs = config.epochs;
    // The curve so far, as the scheduler keeps it (without the per-step losses).
    let mut curve: Vec<EpochReport> = Vec::new();
    // Epochs not sent yet, and when the last were.
    let mut held: Vec<EpochReport> = Vec::new();
    let mut sent = Instant::now();
    let mut on_epoch = |mut report: EpochReport| {
        if !link.alive() {
            return Control::Stop;
        }
        if let Some(free) = free {
            let steps = std::mem::take(&mut report.steps);
            curve.push(report.clone());
            report.steps = steps;
            if !free.checks.iter().any(|acts| acts(&curve, max_epochs)) {
                // Read before sending: once the flag is seen, the scheduler handles this
                // epoch as cancelled too.
                let cancelled = free.cancelled.load(Ordering::Relaxed);
                held.push(report);
                // A trial begun ahead holds its epochs until it is adopted, training on.
                if let Link::Known(trial_id, tx) = link
                    && (cancelled || sent.elapsed() >= SEND_EVERY)
                {
                    let trial_id = *trial_id;
                    let msg = Msg::Epoch {
                        trial_id,
                        reports: std::mem::take(&mut held),
                        reply: None,
                    };
                    sent = Instant::now();
                    if tx.send(msg).is_err() || cancelled {
                        return Control::Stop;
                    }
                }
                return Control::Continue;
            }
        }
        let Some((trial_id, tx)) = link.get() else {
            return Control::Stop;
        };
        let (reply, answer) = oneshot::channel();
        held.push(report);
        if tx
            .send(Msg::Epoch {
                trial_id,
                reports: std::mem::take(&mut held),
                reply: Some(reply),
            })
            .is_err()
        {
            return Control::Stop;
        }
        answer.blocking_recv().unwrap_or(Control::Stop)
    };
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        trainer.train(config, resume.as_ref(), &mut on_epoch)
    }))
    .unwrap_or_else(|panic| {
        Err(TrainError(format!(
            "the trainer panicked: {}",
            panic_text(&panic)
        )))
    });
    if !held.is_empty()
        && let Some((trial_id, tx)) = link.get()
    {
        let _ = tx.send(Msg::Epoch {
            trial_id,
            reports: held,
            reply: None,
        });
    }
    result
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
