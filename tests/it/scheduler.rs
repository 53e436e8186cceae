//! The scheduler with the synthetic trainer: concurrency bound, stopping decisions stored,
//! diverged and failed trials, resume after a crash and after cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lcurve::run::{RunOptions, RunResult, head_start, run_sweep, run_sweep_begun};
use lcurve::scheduler::{HeadStart, Quiet};
use lcurve::spec::{Choice as _, SweepSpec, TrialConfig, expand};
use lcurve::store::{SqliteStore, Store, TrialOutcome, TrialState, Write};
use lcurve::trainer::{
    Checkpoint, EpochReport, EpochSink, SyntheticTrainer, TrainEnd, TrainError, Trainer,
};

use crate::support::{SMALL, TempDb, spec};

/// Counts how many trials train at the same moment.
struct Counting {
    inner: SyntheticTrainer,
    now: AtomicUsize,
    peak: Arc<AtomicUsize>,
}

impl Trainer for Counting {
    fn train(
        &self,
        c: &TrialConfig,
        resume: Option<&Checkpoint>,
        on_epoch: &mut EpochSink,
    ) -> Result<TrainEnd, TrainError> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        let r = self.inner.train(c, resume, on_epoch);
        self.now.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

fn opts(db: &TempDb) -> RunOptions {
    RunOptions {
        reports: db.dir.path().join("reports"),
        replace: false,
        max_trials: 100,
        live_report: None,
        close: false,
    }
}

async fn states(store: &SqliteStore, sweep: &str) -> Vec<TrialState> {
    let id = store.sweep(sweep).await.unwrap().id;
    store
        .trials(id)
        .await
        .unwrap()
        .iter()
        .map(|t| t.state)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_max_parallel_at_once() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(&SMALL.replace(
        "learning_rate = [0.001, 0.01]",
        "learning_rate = [0.001, 0.002, 0.003]",
    ));
    let peak = Arc::new(AtomicUsize::new(0));
    let trainer = Counting {
        inner: SyntheticTrainer {
            epoch_delay: Duration::from_millis(15),
            ..Default::default()
        },
        now: AtomicUsize::new(0),
        peak: peak.clone(),
    };
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(trainer),
        &opts(&db),
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(r.summary.finished.get(&TrialState::Completed), Some(&6));
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "max_parallel = 2 and 6 trials of 90 ms"
    );
    let m = store.metrics(r.sweep_id).await.unwrap();
    assert_eq!(m.len(), 6 * 6 * 4, "6 trials x 6 epochs x 4 series");
}

#[tokio::test]
async fn patience_stops_are_decided_stored_and_explained() {
    let db = TempDb::new();
    let store = db.open().await;
    let s =
        spec(&format!("{SMALL}\n[stopping]\npatience = 2\n").replace("epochs = 6", "epochs = 12"));
    let trainer = SyntheticTrainer {
        overfit_after: Some(4),
        ..Default::default()
    };
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(trainer),
        &opts(&db),
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    let trials = store.trials(r.sweep_id).await.unwrap();
    for t in &trials {
        assert_eq!(t.state, TrialState::Stopped, "trial {}", t.ordinal);
        let best = t.best_epoch.unwrap();
        assert_eq!(
            t.epochs_run,
            Some(best + 2),
            "stops `patience` epochs after the best"
        );
        assert!(
            t.stop_reason
                .as_ref()
                .unwrap()
                .starts_with("val_loss has not improved"),
            "{:?}",
            t.stop_reason
        );
    }
    let stops = store.stop_decisions(r.sweep_id).await.unwrap();
    assert_eq!(stops.len(), 4);
    assert!(
        stops
            .iter()
            .all(|d| d.rule == "patience" && d.action == "stop")
    );
    // One continue decision per rule per epoch before the stop is stored too.
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM decisions WHERE action = 'continue' AND rule = 'patience'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let epochs: usize = trials.iter().map(|t| t.epochs_run.unwrap() - 1).sum();
    assert_eq!(usize::try_from(n).unwrap(), epochs);
}

#[tokio::test]
async fn diverged_and_failed_trials_end_and_the_sweep_goes_on() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(&SMALL.replace(
        "learning_rate = [0.001, 0.01]",
        "learning_rate = [0.001, 0.01, 0.05]",
    ));
    let trainer = SyntheticTrainer {
        diverge_at_lr: Some(0.01),
        fail_at_lr: Some(0.05),
        ..Default::default()
    };
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(trainer),
        &opts(&db),
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    use TrialState::*;
    assert_eq!(
        states(&store, "small").await,
        vec![Completed, Completed, Diverged, Diverged, Failed, Failed]
    );
    let trials = store.trials(r.sweep_id).await.unwrap();
    assert_eq!(
        trials[2].epochs_run,
        Some(2),
        "stopped at the first NaN epoch"
    );
    assert!(
        trials[2]
            .stop_reason
            .as_ref()
            .unwrap()
            .contains("is inf at epoch 2: the trial diverged")
    );
    // The NaN is stored as NaN, not dropped.
    let m = store.metrics(r.sweep_id).await.unwrap();
    assert!(m.iter().any(|p| p.trial_id == trials[2].id
        && p.name == "val_loss"
        && p.epoch == 2
        && p.value.is_nan()));
    assert!(r.report.failed.is_empty(), "{:?}", r.report.failed);
}

#[tokio::test]
async fn rerun_after_a_crash_resumes_without_mixing_attempts() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    // A first process claimed trial 0, recorded two epochs of a different curve, and died.
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let t = store.claim_next(id).await.unwrap().unwrap();
    let junk = EpochReport {
        epoch: 1,
        train_loss: 9.0,
        val_loss: 9.0,
        val_accuracy: Some(0.0),
        val_rmse: None,
        seconds: 0.0,
        steps: vec![9.0; 5],
    };
    store
        .apply(&[
            Write::Epoch {
                trial_id: t.id,
                report: junk.clone(),
            },
            Write::Epoch {
                trial_id: t.id,
                report: EpochReport { epoch: 2, ..junk },
            },
        ])
        .await
        .unwrap();

    let trainer = SyntheticTrainer::default();
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(trainer.clone()),
        &opts(&db),
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(r.summary.finished.get(&TrialState::Completed), Some(&4));
    let trials = store.trials(id).await.unwrap();
    assert_eq!(trials[0].attempt, 2);
    assert_eq!(trials[0].id, t.id, "same trial id across runs");
    let m = store.metrics(id).await.unwrap();
    let curve: Vec<f64> = m
        .iter()
        .filter(|p| p.trial_id == t.id && p.name == "val_loss")
        .map(|p| p.value)
        .collect();
    let expected: Vec<f64> = (1..=6)
        .map(|e| trainer.val_loss(&trials[0].config, e))
        .collect();
    assert_eq!(curve, expected, "only the second attempt's curve");
    // So are the per-step losses: 4 a epoch from the synthetic trainer, none of the 9s.
    let steps = store.steps(t.id).await.unwrap();
    assert_eq!(steps.len(), 24);
    assert_eq!(steps[23].0, 24);
    assert_eq!(steps[23].1, 6);
    assert!(steps.iter().all(|s| s.2 < 9.0), "{steps:?}");

    // A third run finds everything done and trains nothing.
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(trainer.clone()),
        &opts(&db),
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(r.already_done, 4);
    assert!(r.summary.finished.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_keeps_finished_epochs_and_requeues_running_trials() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let slow = SyntheticTrainer {
        epoch_delay: Duration::from_millis(30),
        ..Default::default()
    };
    let cancel = tokio::time::sleep(Duration::from_millis(100));
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(slow.clone()),
        &opts(&db),
        &mut Quiet,
        cancel,
    )
    .await
    .unwrap();
    assert_eq!(r.summary.interrupted, 2, "two trials were running");
    let trials = store.trials(r.sweep_id).await.unwrap();
    assert!(trials.iter().all(|t| t.state == TrialState::Pending));
    let kept = store.metrics(r.sweep_id).await.unwrap().len();
    assert!(kept > 0, "epochs finished before the interrupt are stored");
    let name = s.name.as_str();
    let unfinished = store.sweep(name).await.unwrap().finished_at;
    assert_eq!(unfinished, None, "an interrupted sweep is not finished");

    let fast = SyntheticTrainer::default();
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(fast),
        &opts(&db),
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(r.summary.finished.get(&TrialState::Completed), Some(&4));
    assert_eq!(store.metrics(r.sweep_id).await.unwrap().len(), 4 * 6 * 4);
    let finished = store.sweep(name).await.unwrap().finished_at;
    assert!(
        finished.is_some(),
        "the run's last commit marks the sweep finished"
    );
}

/// Panics on the second trial's third epoch.
struct Panicking(SyntheticTrainer);

impl Trainer for Panicking {
    fn train(
        &self,
        c: &TrialConfig,
        resume: Option<&Checkpoint>,
        on_epoch: &mut EpochSink,
    ) -> Result<TrainEnd, TrainError> {
        if c.learning_rate == 0.01 {
            let mut epochs = 0;
            let mut sink = |r: EpochReport| {
                epochs += 1;
                if epochs == 3 {
                    panic!("index out of bounds in a layer");
                }
                on_epoch(r)
            };
            return self.0.train(c, resume, &mut sink);
        }
        self.0.train(c, resume, on_epoch)
    }
}

#[tokio::test]
async fn a_panic_in_a_training_thread_fails_that_trial_with_its_message() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(Panicking(SyntheticTrainer::default())),
        &opts(&db),
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    use TrialState::*;
    assert_eq!(
        states(&store, "small").await,
        vec![Completed, Completed, Failed, Failed]
    );
    let trials = store.trials(r.sweep_id).await.unwrap();
    let q: (String, i64) = sqlx::query_as("SELECT error, epochs_run FROM trials WHERE id = ?")
        .bind(trials[2].id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(
        q.0.contains("the trainer panicked: index out of bounds in a layer"),
        "{q:?}"
    );
    assert_eq!(q.1, 2, "the two epochs before the panic are kept");
}

#[tokio::test]
async fn the_median_rule_stops_trials_behind_their_peers_and_says_so() {
    let db = TempDb::new();
    let store = db.open().await;
    // One at a time, fastest-learning first: later trials are compared with finished ones.
    let s = spec(
        r#"
name = "median"
[train]
max_parallel = 1
[params]
learning_rate = [0.03, 0.02, 0.01, 0.001, 0.0005]
batch_size = 32
epochs = 12
[stopping.median]
warmup = 2
min_peers = 2
"#,
    );
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(SyntheticTrainer::default()),
        &opts(&db),
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    use TrialState::*;
    assert_eq!(
        states(&store, "median").await,
        vec![Completed, Completed, Stopped, Stopped, Stopped],
        "the slow learners fall behind the median of the earlier trials"
    );
    let trials = store.trials(r.sweep_id).await.unwrap();
    assert_eq!(
        trials[3].epochs_run,
        Some(3),
        "stopped at the first epoch after warm-up"
    );
    let reason = trials[3].stop_reason.as_ref().unwrap();
    assert!(
        reason.starts_with("best val_loss so far") && reason.contains("is worse than the median"),
        "{reason}"
    );
    let rules: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT rule FROM decisions WHERE action = 'stop'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(rules, vec![("median".to_string(),)]);
}

const ASHA: &str = r#"
name = "asha"
[train]
max_parallel = 1
[params]
learning_rate = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.0005, 0.0002]
batch_size = 32
epochs = 9
[stopping.asha]
min_epochs = 1
eta = 3
"#;

#[tokio::test]
async fn asha_pauses_promotes_from_checkpoints_and_stops_the_rest() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(ASHA);
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(SyntheticTrainer::default()),
        &opts(&db),
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    let trials = store.trials(r.sweep_id).await.unwrap();
    let metrics = store.metrics(r.sweep_id).await.unwrap();
    // Rungs at epochs 1 and 3 (9 is the last epoch). Asynchronous promotion lets a trial go
    // on when it is in the top third of those at the rung *so far*, so a few more than a third
    // may pass a rung; never fewer than a third of all.
    let runs: Vec<usize> = trials.iter().map(|t| t.epochs_run.unwrap()).collect();
    assert!(runs.iter().all(|e| [1, 3, 9].contains(e)), "{runs:?}");
    let past0 = runs.iter().filter(|&&e| e >= 3).count();
    let past1 = runs.iter().filter(|&&e| e == 9).count();
    assert!((3..=5).contains(&past0), "{runs:?}");
    assert!((1..=3).contains(&past1), "{runs:?}");
    // One trial at a time, the order is fixed, and so is the outcome. Each new trial here is
    // the best so far at rung 0, the worst case for asynchronous promotion: 37 of 81 epochs.
    assert_eq!(runs, [1, 1, 3, 3, 9, 9, 9, 1, 1]);
    assert!(trials.iter().all(|t| t.state.is_finished()));
    // The fastest learner (lr 0.064) goes all the way; nothing was trained twice.
    let winner = trials
        .iter()
        .find(|t| t.config.learning_rate == 0.064)
        .unwrap();
    assert_eq!(winner.epochs_run, Some(9));
    assert_eq!(r.summary.interrupted, 0);
    for t in &trials {
        let epochs: Vec<usize> = {
            let mut e: Vec<usize> = metrics
                .iter()
                .filter(|m| m.trial_id == t.id && m.name == "val_loss")
                .map(|m| m.epoch)
                .collect();
            e.sort();
            e
        };
        let expected: Vec<usize> = (1..=t.epochs_run.unwrap()).collect();
        assert_eq!(
            epochs, expected,
            "trial {}: no repeated or missing epochs",
            t.ordinal
        );
        assert_eq!(t.attempt, 1, "resumed from a checkpoint, never restarted");
        // Each value is the trainer's for that epoch: continued, not retrained.
        for m in metrics
            .iter()
            .filter(|m| m.trial_id == t.id && m.name == "val_loss")
        {
            let expected = SyntheticTrainer::default().val_loss(&t.config, m.epoch);
            assert!(
                (m.value - expected).abs() < 1e-12,
                "trial {} epoch {}",
                t.ordinal,
                m.epoch
            );
        }
    }
    let actions: Vec<(String, i64)> = sqlx::query_as(
        "SELECT action, count(*) FROM decisions WHERE rule = 'asha' GROUP BY action ORDER BY action",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let count = |a: &str| actions.iter().find(|x| x.0 == a).map_or(0, |x| x.1);
    assert_eq!(count("stop") as usize, 9 - past1, "{actions:?}");
    assert_eq!(count("promote") as usize, past0 + past1, "{actions:?}");
    assert!(count("pause") >= count("stop"), "{actions:?}");
    let left: (i64,) = sqlx::query_as("SELECT count(*) FROM checkpoints")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left.0, 0, "finished trials keep no checkpoint");
}

#[tokio::test]
async fn asha_survives_cancellation_and_continues_paused_trials_on_the_next_run() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(ASHA);
    let slow = SyntheticTrainer {
        epoch_delay: Duration::from_millis(15),
        ..Default::default()
    };
    // Cancel once several trials have paused.
    let cancel = tokio::time::sleep(Duration::from_millis(150));
    let first = run_sweep(
        &store,
        &s,
        None,
        || Ok(slow.clone()),
        &opts(&db),
        &mut Quiet,
        cancel,
    )
    .await
    .unwrap();
    assert!(first.summary.finished.values().sum::<usize>() < 9);
    let paused = store.paused(first.sweep_id).await.unwrap();
    assert!(!paused.is_empty(), "some trials were paused when cancelled");
    let second = run_sweep(
        &store,
        &s,
        None,
        || Ok(SyntheticTrainer::default()),
        &opts(&db),
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    let trials = store.trials(second.sweep_id).await.unwrap();
    assert!(trials.iter().all(|t| t.state.is_finished()));
    let runs: Vec<usize> = trials.iter().map(|t| t.epochs_run.unwrap()).collect();
    assert!(runs.iter().all(|e| [1, 3, 9].contains(e)), "{runs:?}");
    let best = trials
        .iter()
        .find(|t| t.config.learning_rate == 0.064)
        .unwrap();
    assert_eq!(best.epochs_run, Some(9), "{runs:?}");
    let m = store.metrics(second.sweep_id).await.unwrap();
    for t in &trials {
        let n = m
            .iter()
            .filter(|p| p.trial_id == t.id && p.name == "val_loss")
            .count();
        assert_eq!(n, t.epochs_run.unwrap(), "trial {}", t.ordinal);
    }
}

/// Counts the epochs whose report has returned to the trainer, so a test can tell whether a
/// trainer went on while the scheduler was held up.
struct Reporting {
    inner: SyntheticTrainer,
    returned: Arc<(std::sync::Mutex<usize>, std::sync::Condvar)>,
}

impl Trainer for Reporting {
    fn train(
        &self,
        c: &TrialConfig,
        resume: Option<&Checkpoint>,
        on_epoch: &mut EpochSink,
    ) -> Result<TrainEnd, TrainError> {
        let returned = self.returned.clone();
        self.inner.train(c, resume, &mut |report: EpochReport| {
            let control = on_epoch(report);
            *returned.0.lock().unwrap() += 1;
            returned.1.notify_all();
            control
        })
    }
}

/// Holds the scheduler in its progress call for the first stored epoch until the trainer has
/// got past its third epoch, or `patience` has passed; records which, and every epoch told.
/// Likewise in the call for the first trial's end (of 6 epochs), until the trainer has got
/// past an epoch of the next trial.
struct Holding {
    returned: Arc<(std::sync::Mutex<usize>, std::sync::Condvar)>,
    patience: Duration,
    went_on: Option<bool>,
    went_on_to_next: Option<bool>,
    told: Vec<(usize, usize)>,
}

impl Holding {
    /// Waits until more than `epochs` epochs have returned or `patience` has passed; says
    /// which.
    fn hold(&self, epochs: usize) -> bool {
        let (count, changed) = &*self.returned;
        let (count, _) = changed
            .wait_timeout_while(count.lock().unwrap(), self.patience, |n| *n <= epochs)
            .unwrap();
        *count > epochs
    }
}

impl lcurve::scheduler::Progress for Holding {
    fn epoch(&mut self, e: &lcurve::scheduler::EpochProgress) {
        self.told.push((e.ordinal, e.epoch));
        if self.went_on.is_none() {
            self.went_on = Some(self.hold(2));
        }
    }

    fn finished(&mut self, _: usize, _: &str, _: &lcurve::store::TrialOutcome, _: &[usize]) {
        if self.went_on_to_next.is_none() {
            self.went_on_to_next = Some(self.hold(6));
        }
    }
}

/// With rules that read only the trial's own curve (divergence, always on; patience), a
/// trainer does not wait for the scheduler's answer after each epoch: the training thread asks
/// the same rules, and gets past its third epoch while the scheduler is held on the first.
/// Nor at a trial's end: its thread takes the next queued trial and trains it while the
/// scheduler is held on the end. With the median rule, which compares with other trials, it
/// must wait for every answer, and for the scheduler to start the next trial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_own_curve_rules_trainers_do_not_wait_for_the_scheduler() {
    for (stopping, patience, expected) in [
        ("", Duration::from_secs(30), true),
        (
            "[stopping]\nmetric = \"val_loss\"\npatience = 3\n",
            Duration::from_secs(30),
            true,
        ),
        (
            "[stopping]\nmetric = \"val_loss\"\n[stopping.median]\nwarmup = 2\nmin_peers = 1\n",
            Duration::from_millis(300),
            false,
        ),
    ] {
        let db = TempDb::new();
        let store = db.open().await;
        let s = spec(&format!(
            "{}{stopping}",
            SMALL.replace("max_parallel = 2", "max_parallel = 1")
        ));
        let returned = Arc::new((std::sync::Mutex::new(0), std::sync::Condvar::new()));
        let trainer = Reporting {
            inner: SyntheticTrainer::default(),
            returned: returned.clone(),
        };
        let mut progress = Holding {
            returned,
            patience,
            went_on: None,
            went_on_to_next: None,
            told: Vec::new(),
        };
        let r = run_sweep(
            &store,
            &s,
            None,
            || Ok(trainer),
            &opts(&db),
            &mut progress,
            std::future::pending(),
        )
        .await
        .unwrap();
        assert_eq!(progress.went_on, Some(expected), "stopping: {stopping:?}");
        assert_eq!(progress.went_on_to_next, Some(expected), "{stopping:?}");
        assert_eq!(
            r.summary.finished.get(&TrialState::Completed),
            Some(&4),
            "{stopping:?}"
        );
        // Every epoch is stored, in order, whether or not the trainer waited.
        let id = store.sweep("small").await.unwrap().id;
        let epochs: Vec<usize> = store
            .metrics(id)
            .await
            .unwrap()
            .iter()
            .filter(|m| m.name == "val_loss")
            .map(|m| m.epoch)
            .collect();
        assert_eq!(epochs, [1, 2, 3, 4, 5, 6].repeat(4), "{stopping:?}");
        // And told to the progress display, each once and in order, though a trainer that
        // does not wait sends its epochs several at a time.
        let told: Vec<(usize, usize)> = (0..4).flat_map(|t| (1..=6).map(move |e| (t, e))).collect();
        assert_eq!(progress.told, told, "{stopping:?}");
    }
}

/// Records, at each `saved(n)`, how many trial ends had been reported, and how many trials
/// the database showed as ended, read on a connection of its own.
struct Saving {
    db: std::path::PathBuf,
    reported: usize,
    told: Vec<(usize, usize, i64)>,
}

impl lcurve::scheduler::Progress for Saving {
    fn finished(&mut self, _: usize, _: &str, _: &lcurve::store::TrialOutcome, _: &[usize]) {
        self.reported += 1;
    }

    fn saved(&mut self, ends: usize) {
        let url = format!("sqlite://{}", self.db.display());
        let stored = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM trials WHERE state NOT IN ('pending', 'running')",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                pool.close().await;
                n
            })
        });
        self.told.push((ends, self.reported, stored));
    }
}

/// The run is told how many trial ends are committed, after they were reported, and only
/// once the database shows them: the live report reads them from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trial_ends_are_told_once_the_database_shows_them() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(&SMALL.replace(
        "learning_rate = [0.001, 0.01]",
        "learning_rate = [0.001, 0.002, 0.003]",
    ));
    let trainer = SyntheticTrainer {
        epoch_delay: Duration::from_millis(15),
        ..Default::default()
    };
    let mut progress = Saving {
        db: db.path.clone(),
        reported: 0,
        told: Vec::new(),
    };
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(trainer),
        &opts(&db),
        &mut progress,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(r.summary.finished.get(&TrialState::Completed), Some(&6));
    // Six trials of 90 ms, two at a time, and commits at most 100 ms apart: some ends are
    // committed while the run goes on.
    assert!(!progress.told.is_empty(), "no ends were told");
    let mut last = 0;
    for &(ends, reported, stored) in &progress.told {
        assert!(ends > last, "counts grow: {:?}", progress.told);
        assert!(
            ends <= reported,
            "told before reported: {:?}",
            progress.told
        );
        assert!(
            stored >= ends as i64,
            "told before the database showed them: {:?}",
            progress.told
        );
        last = ends;
    }
}

/// Records, for each training, the trial's learning rate and activation, the thread's name,
/// and the last epoch it reached; and how many trainings are under way.
#[derive(Default)]
struct Traced {
    inner: SyntheticTrainer,
    runs: std::sync::Mutex<Vec<(String, Option<String>, usize)>>,
    now: AtomicUsize,
}

impl Trainer for Traced {
    fn train(
        &self,
        c: &TrialConfig,
        resume: Option<&Checkpoint>,
        on_epoch: &mut EpochSink,
    ) -> Result<TrainEnd, TrainError> {
        self.now.fetch_add(1, Ordering::SeqCst);
        let mut reached = 0;
        let r = self.inner.train(c, resume, &mut |report: EpochReport| {
            reached = report.epoch;
            on_epoch(report)
        });
        let thread = std::thread::current().name().map(str::to_string);
        let key = format!("{} {}", c.learning_rate, c.activation.name());
        self.runs.lock().unwrap().push((key, thread, reached));
        self.now.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

/// A traced synthetic trainer whose epochs take `epoch_ms`.
fn traced(epoch_ms: u64) -> Arc<Traced> {
    Arc::new(Traced {
        inner: SyntheticTrainer {
            epoch_delay: Duration::from_millis(epoch_ms),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// Runs `s` on `store` with the trials `head` began on `trainer`.
async fn run_begun(
    store: &SqliteStore,
    db: &TempDb,
    s: &SweepSpec,
    trainer: &Arc<Traced>,
    head: Option<HeadStart>,
) -> RunResult {
    let begun = (trainer.clone(), head);
    let cancel = std::future::pending();
    run_sweep_begun(store, s, None, begun, &opts(db), &mut Quiet, cancel)
        .await
        .unwrap()
}

/// Every stored metric of `sweep`, by trial ordinal.
async fn curves(store: &SqliteStore, sweep: i64) -> Vec<(usize, String, usize, f64)> {
    let ordinal: std::collections::HashMap<i64, usize> = store
        .trials(sweep)
        .await
        .unwrap()
        .iter()
        .map(|t| (t.id, t.ordinal))
        .collect();
    let mut m: Vec<_> = store
        .metrics(sweep)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.name != "epoch_seconds")
        .map(|p| (ordinal[&p.trial_id], p.name.to_string(), p.epoch, p.value))
        .collect();
    m.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trials_begun_before_the_store_opens_are_adopted_not_trained_again() {
    let s = spec(&format!("{SMALL}\n[stopping]\npatience = 3\n"));
    let trainer = traced(2);
    // Begun before the database exists, as `lcurve run` does for a new one.
    let head = head_start(&s, &trainer);
    assert!(head.is_some(), "patience reads the trial's own curve");
    let db = TempDb::new();
    let store = db.open().await;
    let r = run_begun(&store, &db, &s, &trainer, head).await;
    assert_eq!(r.summary.finished.get(&TrialState::Completed), Some(&4));
    let runs = trainer.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 4, "each trial trained once: {runs:?}");
    let begun: Vec<&str> = runs
        .iter()
        .filter(|r| r.1.as_deref() == Some("lcurve-head-start"))
        .map(|r| r.0.as_str())
        .collect();
    assert!(
        begun.contains(&"0.001 relu") && begun.contains(&"0.001 tanh"),
        "the first two trials trained on the threads begun ahead: {runs:?}"
    );
    assert!(runs.iter().all(|r| r.2 == 6), "{runs:?}");

    // The same curves, trial for trial, as a run that began nothing ahead.
    let other = TempDb::new();
    let other_store = other.open().await;
    let plain = run_sweep(
        &other_store,
        &s,
        None,
        || Ok(trainer.inner.clone()),
        &opts(&other),
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    let stored = curves(&store, r.sweep_id).await;
    assert_eq!(stored.len(), 4 * 6 * 3);
    assert_eq!(stored, curves(&other_store, plain.sweep_id).await);
    let trials = store.trials(r.sweep_id).await.unwrap();
    assert!(trials.iter().all(|t| t.attempt == 1), "{trials:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_begun_ahead_that_the_store_has_finished_is_abandoned() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    // An earlier run finished trial 0 (with a curve of its own) and left the rest.
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let first = store.claim_next(id).await.unwrap().unwrap();
    assert_eq!(first.ordinal, 0);
    let mut writes: Vec<Write> = (1..=6)
        .map(|epoch| Write::Epoch {
            trial_id: first.id,
            report: EpochReport {
                epoch,
                train_loss: 5.0,
                val_loss: 5.0,
                val_accuracy: Some(0.5),
                val_rmse: None,
                seconds: 0.0,
                steps: vec![5.0],
            },
        })
        .collect();
    writes.push(Write::Finish {
        trial_id: first.id,
        outcome: TrialOutcome {
            state: TrialState::Completed,
            epochs_run: 6,
            best: Some((6, 5.0)),
            stop_reason: None,
            error: None,
        },
    });
    store.apply(&writes).await.unwrap();

    let trainer = traced(20);
    let head = head_start(&s, &trainer);
    let r = run_begun(&store, &db, &s, &trainer, head).await;
    assert_eq!(r.already_done, 1);
    assert_eq!(r.summary.finished.get(&TrialState::Completed), Some(&3));
    // Trial 0's thread stops after the epoch it is on, and wrote nothing.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while trainer.now.load(Ordering::SeqCst) > 0 {
        assert!(std::time::Instant::now() < deadline, "a trainer still runs");
        std::thread::sleep(Duration::from_millis(5));
    }
    let runs = trainer.runs.lock().unwrap().clone();
    let abandoned: Vec<_> = runs.iter().filter(|r| r.0 == "0.001 relu").collect();
    assert_eq!(abandoned.len(), 1, "{runs:?}");
    assert!(abandoned[0].2 < 6, "stopped early: {runs:?}");
    assert_eq!(runs.len(), 4, "{runs:?}");
    let trials = store.trials(id).await.unwrap();
    assert_eq!(trials[0].attempt, 1);
    let stored = curves(&store, id).await;
    let zero: Vec<f64> = stored
        .iter()
        .filter(|m| m.0 == 0 && m.1 == "val_loss")
        .map(|m| m.3)
        .collect();
    assert_eq!(zero, vec![5.0; 6], "trial 0's stored curve is untouched");
    assert_eq!(stored.len(), 4 * 6 * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_told_to_close_the_store_closes_it_with_everything_in_the_file() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let opts = RunOptions {
        close: true,
        ..opts(&db)
    };
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(SyntheticTrainer::default()),
        &opts,
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert!(r.report.failed.is_empty(), "{:?}", r.report.failed);
    assert!(
        r.report.written.iter().any(|p| p.ends_with("curves.png")),
        "the charts were drawn after the close: {:?}",
        r.report.written
    );
    assert!(store.sweep("small").await.is_err(), "the store is closed");
    let wal = db.path.with_extension("db-wal");
    assert!(!wal.exists(), "the log went into the file");
    let again = db.open().await;
    assert_eq!(
        states(&again, "small").await,
        vec![TrialState::Completed; 4]
    );
    assert!(again.sweep("small").await.unwrap().finished_at.is_some());
}
