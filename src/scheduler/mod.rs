//! The scheduler: claims trials, runs up to `max_parallel` trainers on blocking threads, asks
//! the stopping rules after every epoch, and is the one writer that records it all.

mod outcome;

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::spec::Choice;
use crate::spec::Metric;
use crate::stopping::{Action, Context, Decision, Peers, StoppingRule, decide_all};
use crate::store::{ClaimedTrial, Store, StoreError, TrialOutcome, TrialState, Write};
use crate::trainer::{Control, EpochReport, TrainError, Trainer};

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
}

/// Progress that says nothing (tests, library users).
pub struct Quiet;
impl Progress for Quiet {}

pub struct SchedulerOptions {
    pub max_parallel: usize,
    pub rules: Vec<Box<dyn StoppingRule>>,
    /// The metric whose best value and epoch are stored on each trial.
    pub best_metric: Metric,
}

/// What one call to [`run`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub finished: HashMap<TrialState, usize>,
    /// Trials stopped by cancellation and put back to `pending`.
    pub interrupted: usize,
}

enum Msg {
    Epoch {
        trial_id: i64,
        report: EpochReport,
        reply: oneshot::Sender<Control>,
    },
    Done {
        trial_id: i64,
        result: Result<usize, TrainError>,
    },
}

struct Running {
    claim: ClaimedTrial,
    curve: Vec<EpochReport>,
    stop: Option<Decision>,
    interrupted: bool,
}

/// Runs every pending trial of `sweep_id` until none is left or `cancel` resolves; on
/// cancellation, running trials stop after their current epoch (which is kept) and go back to
/// `pending`, so the next run starts them again.
pub async fn run<S: Store, T: Trainer>(
    store: &S,
    sweep_id: i64,
    trainer: Arc<T>,
    opts: &SchedulerOptions,
    progress: &mut dyn Progress,
    cancel: impl Future<Output = ()>,
) -> Result<RunSummary, StoreError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut running: HashMap<i64, Running> = HashMap::new();
    let mut summary = RunSummary::default();
    let (mut exhausted, mut cancelled) = (false, false);
    let mut peers = finished_peers(store, sweep_id, opts.best_metric).await?;
    tokio::pin!(cancel);

    loop {
        while !exhausted && !cancelled && running.len() < opts.max_parallel.max(1) {
            match store.claim_next(sweep_id).await? {
                None => exhausted = true,
                Some(claim) => {
                    peers.forget(claim.id);
                    spawn_trainer(claim.clone(), trainer.clone(), tx.clone());
                    let id = claim.id;
                    running.insert(
                        id,
                        Running {
                            claim,
                            curve: Vec::new(),
                            stop: None,
                            interrupted: false,
                        },
                    );
                    progress.started(&running[&id].claim, &ordinals(&running));
                }
            }
        }
        if running.is_empty() {
            break;
        }
        let first = tokio::select! {
            msg = rx.recv() => msg.expect("the scheduler holds a sender"),
            () = &mut cancel, if !cancelled => {
                cancelled = true;
                continue;
            }
        };
        // Take everything that has arrived, and commit it in one transaction.
        let mut batch = vec![first];
        while let Ok(msg) = rx.try_recv() {
            batch.push(msg);
        }
        let step = process(batch, &mut running, &mut peers, opts, cancelled);
        store.apply(&step.writes).await?;
        for (reply, control) in step.replies {
            // A trainer that has gone away (panicked) no longer needs an answer.
            let _ = reply.send(control);
        }
        for (claim, outcome) in step.ended {
            if outcome.state == TrialState::Pending {
                summary.interrupted += 1;
            } else {
                *summary.finished.entry(outcome.state).or_default() += 1;
            }
            progress.finished(
                claim.ordinal,
                &claim.config.label(),
                &outcome,
                &ordinals(&running),
            );
        }
    }
    store.finish_sweep(sweep_id).await?;
    Ok(summary)
}

/// What one batch of messages asks for: rows to commit, then answers to send and trial ends
/// to announce, both only after the commit.
struct Step {
    writes: Vec<Write>,
    replies: Vec<(oneshot::Sender<Control>, Control)>,
    ended: Vec<(ClaimedTrial, TrialOutcome)>,
}

/// Applies the rules to each reported epoch and turns finished trainers into outcomes.
fn process(
    batch: Vec<Msg>,
    running: &mut HashMap<i64, Running>,
    peers: &mut Peers,
    opts: &SchedulerOptions,
    cancelled: bool,
) -> Step {
    let mut step = Step {
        writes: Vec::with_capacity(batch.len() * 3),
        replies: Vec::new(),
        ended: Vec::new(),
    };
    for msg in batch {
        match msg {
            Msg::Epoch {
                trial_id,
                report,
                reply,
            } => {
                let r = running
                    .get_mut(&trial_id)
                    .expect("epochs come from running trials");
                r.curve.push(report);
                peers.record(trial_id, report.epoch, report.get(peers.metric()));
                step.writes.push(Write::Epoch { trial_id, report });
                let control = if cancelled {
                    r.interrupted = true;
                    Control::Stop
                } else {
                    let ctx = Context {
                        curve: &r.curve,
                        max_epochs: r.claim.config.epochs,
                        trial_id,
                        peers,
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
                    } else {
                        Control::Continue
                    }
                };
                step.replies.push((reply, control));
            }
            Msg::Done { trial_id, result } => {
                let r = running
                    .remove(&trial_id)
                    .expect("done comes from running trials");
                let outcome = outcome::decide(&r, result, opts.best_metric);
                if outcome.state == TrialState::Pending {
                    peers.forget(trial_id);
                } else {
                    peers.finish(trial_id);
                }
                step.writes.push(Write::Finish {
                    trial_id,
                    outcome: outcome.clone(),
                });
                step.ended.push((r.claim, outcome));
            }
        }
    }
    step
}

/// The curves of the sweep's finished trials (from earlier runs), for cross-trial rules.
async fn finished_peers<S: Store>(
    store: &S,
    sweep_id: i64,
    metric: crate::spec::Metric,
) -> Result<Peers, StoreError> {
    let mut peers = Peers::new(metric);
    let finished: Vec<i64> = store
        .trials(sweep_id)
        .await?
        .iter()
        .filter(|t| t.state.is_finished())
        .map(|t| t.id)
        .collect();
    if finished.is_empty() {
        return Ok(peers);
    }
    let mut points: Vec<_> = store
        .metrics(sweep_id)
        .await?
        .into_iter()
        .filter(|m| m.name == metric.name() && finished.contains(&m.trial_id))
        .collect();
    points.sort_by_key(|m| (m.trial_id, m.epoch));
    for m in points {
        peers.record(m.trial_id, m.epoch, m.value);
    }
    for id in finished {
        peers.finish(id);
    }
    Ok(peers)
}

fn ordinals(running: &HashMap<i64, Running>) -> Vec<usize> {
    let mut v: Vec<usize> = running.values().map(|r| r.claim.ordinal).collect();
    v.sort_unstable();
    v
}

/// Trains on a blocking thread; every epoch waits for the scheduler's answer.
fn spawn_trainer<T: Trainer>(claim: ClaimedTrial, trainer: Arc<T>, tx: mpsc::UnboundedSender<Msg>) {
    let trial_id = claim.id;
    tokio::task::spawn_blocking(move || {
        let epoch_tx = tx.clone();
        let mut on_epoch = move |report: EpochReport| {
            let (reply, answer) = oneshot::channel();
            if epoch_tx
                .send(Msg::Epoch {
                    trial_id,
                    report,
                    reply,
                })
                .is_err()
            {
                return Control::Stop;
            }
            answer.blocking_recv().unwrap_or(Control::Stop)
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            trainer.train(&claim.config, &mut on_epoch)
        }))
        .unwrap_or_else(|panic| {
            Err(TrainError(format!(
                "the trainer panicked: {}",
                panic_text(&panic)
            )))
        });
        let _ = tx.send(Msg::Done { trial_id, result });
    });
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
