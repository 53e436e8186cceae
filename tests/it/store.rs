//! The SQLite store's contract: idempotent trials, claim order, NaN round trip, the views,
//! and refusal of a changed spec.

use lcurve::spec::expand;
use lcurve::stopping::{Action, Decision};
use lcurve::store::{Store, StoreError, TrialOutcome, TrialState, Write};
use lcurve::trainer::EpochReport;

use crate::support::{SMALL, TempDb, spec};

fn report(epoch: usize, val_loss: f64) -> EpochReport {
    EpochReport {
        epoch,
        train_loss: val_loss,
        val_loss,
        val_accuracy: Some(0.5),
        val_rmse: None,
        seconds: 0.01,
        steps: vec![val_loss as f32; 3],
    }
}

/// The id of the first trial of the `SMALL` sweep, made in `store` and that trial claimed.
async fn first_trial_claimed(store: &impl Store) -> i64 {
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    store.claim_next(id).await.unwrap().unwrap().id
}

/// Epoch `e` of trial `trial_id`, its losses 1/e.
fn epoch_write(trial_id: i64, e: usize) -> Write {
    Write::Epoch {
        trial_id,
        report: report(e, 1.0 / e as f64),
    }
}

/// Commits epochs `epochs` of trial `trial_id`, one transaction each.
async fn commit_epochs(store: &impl Store, trial_id: i64, epochs: std::ops::RangeInclusive<usize>) {
    for e in epochs {
        store.apply(&[epoch_write(trial_id, e)]).await.unwrap();
    }
}

#[tokio::test]
async fn adding_trials_twice_adds_nothing_and_ids_stay() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    assert_eq!(store.add_trials(id, &expand(&s).unwrap()).await.unwrap(), 4);
    let first: Vec<i64> = store
        .trials(id)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        store.create_sweep(&s, None, false).await.unwrap(),
        id,
        "same spec resumes"
    );
    assert_eq!(store.add_trials(id, &expand(&s).unwrap()).await.unwrap(), 0);
    let again: Vec<i64> = store
        .trials(id)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(first, again);
}

#[tokio::test]
async fn changed_spec_is_refused_unless_replaced() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let changed = spec(&SMALL.replace("epochs = 6", "epochs = 9"));
    let err = store.create_sweep(&changed, None, false).await.unwrap_err();
    assert!(matches!(err, StoreError::SpecChanged { .. }), "{err}");
    assert!(err.to_string().contains("--replace"), "{err}");
    assert_eq!(store.trials(id).await.unwrap().len(), 4, "nothing deleted");
    let new_id = store.create_sweep(&changed, None, true).await.unwrap();
    assert_ne!(new_id, id);
    assert!(store.trials(new_id).await.unwrap().is_empty());
}

/// Per-step losses are numbered across epochs, NaN and infinities come back as NaN (NULL in
/// SQL), each loss reads back as exactly the `f32` recorded, the `steps` view gives one row per
/// step, and a trial's steps are deleted with it.
#[tokio::test]
async fn steps_are_numbered_across_epochs_and_go_with_their_trial() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let t = store.claim_next(id).await.unwrap().unwrap();
    let mut second = report(2, 0.5);
    second.steps[1] = f32::NAN;
    second.steps[2] = f32::INFINITY;
    let mut first = report(1, 0.75);
    first.steps[2] = 0.1;
    store
        .apply(&[
            Write::Epoch {
                trial_id: t.id,
                report: first,
            },
            Write::Epoch {
                trial_id: t.id,
                report: second,
            },
        ])
        .await
        .unwrap();
    let steps = store.steps(t.id).await.unwrap();
    let numbered: Vec<(usize, usize)> = steps.iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(numbered, [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]);
    assert_eq!(steps[0].2, 0.75);
    assert_eq!(steps[2].2, f64::from(0.1f32), "the f32 recorded, exactly");
    assert!(steps[4].2.is_nan());
    assert!(steps[5].2.is_nan(), "an infinite loss reads as NaN");

    // The same rows in SQL, through the `steps` view.
    let rows: Vec<(i64, i64, Option<f64>)> =
        sqlx::query_as("SELECT step, epoch, loss FROM steps WHERE trial_id = ? ORDER BY step")
            .bind(t.id)
            .fetch_all(store.pool())
            .await
            .unwrap();
    let expected = [
        (1, 1, Some(0.75)),
        (2, 1, Some(0.75)),
        (3, 1, Some(0.1)),
        (4, 2, Some(0.5)),
        (5, 2, None),
        (6, 2, None),
    ];
    assert_eq!(rows, expected);

    // An epoch recorded again (a rerun) replaces its steps.
    let mut again = report(2, 0.25);
    again.steps = vec![0.25; 3];
    store
        .apply(&[Write::Epoch {
            trial_id: t.id,
            report: again,
        }])
        .await
        .unwrap();
    let losses: Vec<f64> = store.steps(t.id).await.unwrap()[3..]
        .iter()
        .map(|s| s.2)
        .collect();
    assert_eq!(losses, [0.25; 3]);

    let changed = spec(&SMALL.replace("epochs = 6", "epochs = 9"));
    store.create_sweep(&changed, None, true).await.unwrap();
    assert!(
        store.steps(t.id).await.unwrap().is_empty(),
        "deleted with the trial"
    );
}

/// One batch with two trials' epochs interleaved, and one epoch written twice: every point
/// is stored with its own trial and epoch, and the later of the two writes is the one kept
/// (the store sorts a batch's rows into key order before inserting them).
#[tokio::test]
async fn a_batch_keeps_each_trials_points_and_the_later_of_two_writes() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let a = store.claim_next(id).await.unwrap().unwrap().id;
    let b = store.claim_next(id).await.unwrap().unwrap().id;
    let epoch = |trial_id, epoch, loss| Write::Epoch {
        trial_id,
        report: report(epoch, loss),
    };
    store
        .apply(&[
            epoch(b, 1, 0.9),
            epoch(a, 1, 0.8),
            epoch(b, 2, 0.7),
            epoch(a, 2, 0.6),
            epoch(b, 2, 0.5),
            epoch(a, 3, 0.4),
        ])
        .await
        .unwrap();
    let metrics = store.metrics(id).await.unwrap();
    let points = |trial: i64, name: &str| -> Vec<(usize, f64)> {
        metrics
            .iter()
            .filter(|m| m.trial_id == trial && m.name == name)
            .map(|m| (m.epoch, m.value))
            .collect()
    };
    assert_eq!(points(a, "val_loss"), [(1, 0.8), (2, 0.6), (3, 0.4)]);
    assert_eq!(
        points(b, "val_loss"),
        [(1, 0.9), (2, 0.5)],
        "the later write"
    );
    assert_eq!(points(b, "train_loss"), [(1, 0.9), (2, 0.5)]);
    let steps: Vec<f64> = store.steps(b).await.unwrap().iter().map(|s| s.2).collect();
    let (early, late) = (f64::from(0.9f32), f64::from(0.5f32));
    assert_eq!(steps, [early, early, early, late, late, late]);
}

/// Transactions one right after another on the store's writing connection all complete
/// (keeping statements on a detached sqlx connection, locked again for each, hung within
/// 2,000 of them), reads on the pool see each, and the store closes with no log left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_transactions_in_a_row_complete_and_read_back() {
    let db = TempDb::new();
    let store = db.open().await;
    let trial_id = first_trial_claimed(&store).await;
    let all = async {
        for e in 1..=2_000 {
            store.apply(&[epoch_write(trial_id, e)]).await.unwrap();
            if e % 500 == 0 {
                let read = store.trial_metrics(&[trial_id]).await.unwrap();
                assert_eq!(read.iter().filter(|m| m.name == "val_loss").count(), e);
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), all)
        .await
        .expect("2,000 transactions complete");
    store.close().await;
    assert!(!db.path.with_extension("db-wal").exists(), "no log left");
}

/// The `val_loss` epochs that a copy of `db`'s file alone holds, without its log (0 while
/// the copy is no whole database yet).
fn epochs_in_file_alone(db: &TempDb) -> usize {
    let copy = db.dir.path().join("copy.db");
    std::fs::copy(&db.path, &copy).unwrap();
    let count = crate::support::sql(
        &copy,
        "SELECT count(*) FROM metrics WHERE name = 'val_loss'",
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(db.dir.path().join(format!("copy.db{suffix}")));
    }
    count
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0)
}

/// Waits up to 20 s for a copy of `db`'s file alone to hold `epochs` epochs.
async fn file_alone_comes_to_hold(db: &TempDb, epochs: usize) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while epochs_in_file_alone(db) < epochs {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    true
}

/// `settle_soon` moves what is committed into the database file on its own task while the
/// writing connection goes on committing: a copy of the file alone, without its log, comes
/// to hold the epochs committed before the call. Nothing is lost, and closing leaves no log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settling_soon_moves_the_log_into_the_file_while_commits_go_on() {
    let db = TempDb::new();
    let store = db.open().await;
    let trial_id = first_trial_claimed(&store).await;
    commit_epochs(&store, trial_id, 1..=50).await;
    assert_eq!(
        epochs_in_file_alone(&db),
        0,
        "committed epochs wait in the log"
    );
    store.settle_soon();
    commit_epochs(&store, trial_id, 51..=60).await;
    assert!(
        file_alone_comes_to_hold(&db, 50).await,
        "the file alone holds the first 50 epochs within 20 s"
    );
    let read = store.trial_metrics(&[trial_id]).await.unwrap();
    assert_eq!(read.iter().filter(|m| m.name == "val_loss").count(), 60);
    store.close().await;
    assert!(!db.path.with_extension("db-wal").exists(), "no log left");
}

/// A reader that holds an older snapshot keeps `settle_soon`'s first checkpoint from copying
/// the log's later frames; once it lets go, a later try copies them, while the store stays
/// open: the file alone comes to hold every epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settling_soon_tries_again_after_a_reader_held_part_of_the_log() {
    use sqlx::Connection;
    let db = TempDb::new();
    let store = db.open().await;
    let trial_id = first_trial_claimed(&store).await;
    commit_epochs(&store, trial_id, 1..=30).await;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db.path);
    let mut reader = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM metrics WHERE name = 'val_loss'")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(seen, 30);
    commit_epochs(&store, trial_id, 31..=40).await;
    store.settle_soon();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        epochs_in_file_alone(&db) < 40,
        "the reader holds the later epochs in the log"
    );
    sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
    reader.close().await.unwrap();
    assert!(
        file_alone_comes_to_hold(&db, 40).await,
        "the file alone holds all 40 epochs within 20 s"
    );
    store.close().await;
}

/// A batch of many epochs' steps stores every step once, in order, with its own value.
#[tokio::test]
async fn a_batch_of_many_steps_stores_every_row_in_order() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let t = store.claim_next(id).await.unwrap().unwrap();
    let writes: Vec<Write> = (1..=3)
        .map(|epoch| {
            let mut r = report(epoch, 1.0 / epoch as f64);
            r.steps = (0..50).map(|i| (epoch * 100 + i) as f32).collect();
            Write::Epoch {
                trial_id: t.id,
                report: r,
            }
        })
        .collect();
    store.apply(&writes).await.unwrap();
    let steps = store.steps(t.id).await.unwrap();
    assert_eq!(steps.len(), 150);
    for (i, (step, epoch, loss)) in steps.iter().enumerate() {
        let (e, k) = (i / 50 + 1, i % 50);
        assert_eq!((*step, *epoch), (i + 1, e));
        assert_eq!(*loss, (e * 100 + k) as f64, "step {step}");
    }
}

#[tokio::test]
async fn claims_go_in_ordinal_order_and_run_out() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let mut ordinals = Vec::new();
    while let Some(c) = store.claim_next(id).await.unwrap() {
        assert_eq!(c.attempt, 1);
        ordinals.push(c.ordinal);
    }
    assert_eq!(ordinals, vec![0, 1, 2, 3]);
    assert!(
        store
            .trials(id)
            .await
            .unwrap()
            .iter()
            .all(|t| t.state == TrialState::Running)
    );
}

#[tokio::test]
async fn nan_and_infinities_survive_the_round_trip() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let t = store.claim_next(id).await.unwrap().unwrap();
    let writes = [
        Write::Epoch {
            trial_id: t.id,
            report: report(1, 0.5),
        },
        Write::Epoch {
            trial_id: t.id,
            report: EpochReport {
                train_loss: f64::INFINITY,
                ..report(2, f64::NAN)
            },
        },
        Write::Epoch {
            trial_id: t.id,
            report: report(3, f64::NEG_INFINITY),
        },
    ];
    store.apply(&writes).await.unwrap();
    let m = store.metrics(id).await.unwrap();
    let get = |name: &str, epoch: usize| {
        m.iter()
            .find(|p| p.name == name && p.epoch == epoch)
            .unwrap()
            .value
    };
    assert_eq!(get("val_loss", 1), 0.5);
    assert!(get("val_loss", 2).is_nan());
    assert_eq!(get("train_loss", 2), f64::INFINITY);
    assert_eq!(get("val_loss", 3), f64::NEG_INFINITY);
    // Re-recording an epoch replaces it rather than duplicating it.
    store
        .apply(&[Write::Epoch {
            trial_id: t.id,
            report: report(1, 0.25),
        }])
        .await
        .unwrap();
    let m = store.metrics(id).await.unwrap();
    assert_eq!(m.iter().filter(|p| p.name == "val_loss").count(), 3);
    assert_eq!(
        m.iter()
            .find(|p| p.name == "val_loss" && p.epoch == 1)
            .unwrap()
            .value,
        0.25
    );
}

#[tokio::test]
async fn views_show_one_row_per_trial_with_hyperparameters() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let t = store.claim_next(id).await.unwrap().unwrap();
    let decision = Decision {
        rule: "patience",
        epoch: 2,
        action: Action::Stop,
        reason: "flat".into(),
        details: serde_json::json!({}),
    };
    store
        .apply(&[
            Write::Epoch {
                trial_id: t.id,
                report: report(1, 0.9),
            },
            Write::Epoch {
                trial_id: t.id,
                report: report(2, 0.7),
            },
            Write::Decision {
                trial_id: t.id,
                decision,
            },
            Write::Finish {
                trial_id: t.id,
                outcome: TrialOutcome {
                    state: TrialState::Stopped,
                    epochs_run: 2,
                    best: Some((2, 0.7)),
                    stop_reason: Some("flat".into()),
                    error: None,
                },
            },
        ])
        .await
        .unwrap();
    let row: (i64, f64, i64, String, f64, f64, String, String) = sqlx::query_as(
        "SELECT ordinal, learning_rate, batch_size, activation, best_val_loss, final_val_loss, state, stop_reason
         FROM trial_summary WHERE trial_id = ?",
    )
    .bind(t.id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            0,
            0.001,
            32,
            "relu".into(),
            0.7,
            0.7,
            "stopped".into(),
            "flat".into()
        )
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM trial_summary")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 4);
    let wide: (i64, f64, f64) = sqlx::query_as(
        "SELECT epoch, val_loss, epoch_seconds FROM epoch_metrics WHERE trial_id = ? AND epoch = 2",
    )
    .bind(t.id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(wide, (2, 0.7, 0.01));
    let stops = store.stop_decisions(id).await.unwrap();
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].reason, "flat");
}

#[tokio::test]
async fn a_reclaimed_trial_starts_with_a_clean_curve() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let t = store.claim_next(id).await.unwrap().unwrap();
    store
        .apply(&[Write::Epoch {
            trial_id: t.id,
            report: report(1, 0.9),
        }])
        .await
        .unwrap();
    // The process dies here; the next run re-queues and claims the trial again.
    assert_eq!(store.requeue_running(id).await.unwrap(), 1);
    let again = store.claim_next(id).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempt), (t.id, 2));
    assert!(store.metrics(id).await.unwrap().is_empty());
}

/// A start written in a batch (as the scheduler does) comes before the batch's epochs, even
/// when listed after them: the second attempt's first epoch survives and the first attempt's
/// curve and steps go.
#[tokio::test]
async fn a_start_in_a_batch_clears_the_earlier_attempt_before_the_new_epochs() {
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let first = store.trials(id).await.unwrap()[1].clone();
    assert_eq!((first.state, first.attempt), (TrialState::Pending, 0));
    let trial_id = first.id;
    store
        .apply(&[
            Write::Start { trial_id },
            Write::Epoch {
                trial_id,
                report: report(1, 0.9),
            },
            Write::Epoch {
                trial_id,
                report: report(2, 0.8),
            },
        ])
        .await
        .unwrap();
    let t = &store.trials(id).await.unwrap()[1];
    assert_eq!((t.state, t.attempt), (TrialState::Running, 1));
    let epochs = |metrics: &[lcurve::store::MetricPoint]| -> Vec<(usize, f64)> {
        metrics
            .iter()
            .filter(|m| m.name == "val_loss")
            .map(|m| (m.epoch, m.value))
            .collect()
    };
    assert_eq!(
        epochs(&store.metrics(id).await.unwrap()),
        [(1, 0.9), (2, 0.8)]
    );
    // A crash, then the next run starts it again, its new first epoch in the same batch.
    assert_eq!(store.requeue_running(id).await.unwrap(), 1);
    store
        .apply(&[
            Write::Epoch {
                trial_id,
                report: report(1, 0.5),
            },
            Write::Start { trial_id },
        ])
        .await
        .unwrap();
    let t = &store.trials(id).await.unwrap()[1];
    assert_eq!((t.state, t.attempt), (TrialState::Running, 2));
    assert_eq!(epochs(&store.metrics(id).await.unwrap()), [(1, 0.5)]);
    assert_eq!(store.steps(trial_id).await.unwrap().len(), 3);
}

/// A database written by lcurve 0.1 (only the first migration, configs without the keys added
/// with search spaces) is upgraded in place on open and its sweeps still read.
#[tokio::test]
async fn a_database_from_the_first_schema_is_upgraded_and_still_reads() {
    let db = TempDb::new();
    let first = db.dir.path().join("first");
    std::fs::create_dir(&first).unwrap();
    let name = "20261127000001_initial.sql";
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(name),
        first.join(name),
    )
    .unwrap();
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db.path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::migrate::Migrator::new(first.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let old = r#"{"learning_rate":0.001,"batch_size":32,"epochs":6,"activation":"relu","optimizer":"adam","hidden":[128],"seed":7,"dataset":"digits","validation_fraction":0.2}"#;
        sqlx::query("INSERT INTO sweeps (name, spec, spec_hash, lcurve_version) VALUES ('old', '{}', 'h', '0.1.0')")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO trials (sweep_id, ordinal, config, config_hash, state, epochs_run) VALUES (1, 0, ?, 'c', 'completed', 1)")
            .bind(old)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO metrics (trial_id, name, epoch, value, kind) VALUES (1, 'val_loss', 1, 0.25, 'finite')")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let store = db.open().await;
    let sweep = store.sweep("old").await.unwrap();
    let trials = store.trials(sweep.id).await.unwrap();
    assert_eq!(trials[0].config.learning_rate, 0.001);
    assert_eq!(trials[0].config.train_fraction, 1.0);
    let row: (Option<String>, f64, Option<f64>, Option<String>) = sqlx::query_as(
        "SELECT s.data, t.best_val_loss, t.momentum, t.lr_schedule FROM trial_summary t JOIN sweeps s ON s.name = t.sweep",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(row, (None, 0.25, None, None), "new columns read as NULL");
}

/// Scores as text, so NaN compares equal to NaN.
fn scores_text(scores: &std::collections::HashMap<i64, lcurve::store::TrialScores>) -> Vec<String> {
    let mut v: Vec<String> = scores
        .iter()
        .map(|(id, s)| format!("{id}: {s:?}"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn stored_scores_equal_scores_computed_from_the_metrics() {
    use lcurve::inspect::scores_from_metrics;
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store.create_sweep(&s, None, false).await.unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    // Trial A finishes normally, B diverges (its last loss is NaN), C is still running.
    let a = store.claim_next(id).await.unwrap().unwrap();
    let b = store.claim_next(id).await.unwrap().unwrap();
    let c = store.claim_next(id).await.unwrap().unwrap();
    let mut writes = Vec::new();
    for (e, v) in [(1, 0.9), (2, 0.4), (3, 0.6)] {
        writes.push(Write::Epoch {
            trial_id: a.id,
            report: report(e, v),
        });
    }
    for (e, v) in [(1, 0.8), (2, f64::NAN)] {
        writes.push(Write::Epoch {
            trial_id: b.id,
            report: report(e, v),
        });
    }
    writes.push(Write::Epoch {
        trial_id: c.id,
        report: report(1, 0.7),
    });
    for (trial_id, state, epochs_run) in [
        (a.id, TrialState::Completed, 3),
        (b.id, TrialState::Diverged, 2),
    ] {
        writes.push(Write::Finish {
            trial_id,
            outcome: TrialOutcome {
                state,
                epochs_run,
                best: None,
                stop_reason: None,
                error: None,
            },
        });
    }
    store.apply(&writes).await.unwrap();
    let trials = store.trials(id).await.unwrap();
    let metrics = store.metrics(id).await.unwrap();
    let stored = store.scores(id).await.unwrap();
    assert_eq!(
        scores_text(&stored),
        scores_text(&scores_from_metrics(&trials, &metrics))
    );
    let (together, together_scores) = store.trials_with_scores(id).await.unwrap();
    assert_eq!(scores_text(&together_scores), scores_text(&stored));
    let ids = |t: &[lcurve::store::TrialRow]| {
        t.iter()
            .map(|t| (t.id, t.ordinal, t.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&together), ids(&trials));
    assert_eq!(stored[&a.id].best_val_loss, Some(0.4));
    assert_eq!(stored[&a.id].final_val_loss, Some(0.6));
    assert_eq!(stored[&a.id].epochs_run, 3);
    assert!(stored[&b.id].final_val_loss.unwrap().is_nan(), "NaN kept");
    assert_eq!(
        stored[&c.id].best_val_loss,
        Some(0.7),
        "running: from its metrics"
    );
    let scored: (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT scored_epochs FROM trials WHERE id = ?), (SELECT scored_epochs FROM trials WHERE id = ?)",
    )
    .bind(a.id)
    .bind(c.id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(scored, (Some(3), None), "stored at finish only");
}

#[tokio::test]
async fn every_kind_action_and_state_written_meets_the_schemas_checks() {
    // The store's writing connection does not evaluate CHECK constraints (see
    // WRITER_PRAGMAS in src/store/sqlite.rs); `integrity_check` does, over every row.
    let db = TempDb::new();
    let store = db.open().await;
    let s = spec(SMALL);
    let id = store
        .create_sweep(&s, Some(r#"{"rows": 3}"#), false)
        .await
        .unwrap();
    store.add_trials(id, &expand(&s).unwrap()).await.unwrap();
    let mut trials = Vec::new();
    while let Some(t) = store.claim_next(id).await.unwrap() {
        trials.push(t.id);
    }
    assert_eq!(trials.len(), 4);
    let mut writes = Vec::new();
    let values = [0.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    let actions = [
        Action::Continue,
        Action::Stop,
        Action::Diverge,
        Action::Pause,
        Action::Promote,
    ];
    let states = [
        TrialState::Completed,
        TrialState::Stopped,
        TrialState::Diverged,
        TrialState::Failed,
    ];
    for (i, &trial_id) in trials.iter().enumerate() {
        for (e, &v) in values.iter().enumerate() {
            writes.push(Write::Epoch {
                trial_id,
                report: report(e + 1, v),
            });
        }
        for (e, &action) in actions.iter().enumerate() {
            writes.push(Write::Decision {
                trial_id,
                decision: Decision {
                    rule: "patience",
                    epoch: e + 1,
                    action,
                    reason: "a reason".into(),
                    details: serde_json::json!({ "epoch": e + 1 }),
                },
            });
        }
        writes.push(Write::Finish {
            trial_id,
            outcome: TrialOutcome {
                state: states[i],
                epochs_run: values.len(),
                best: Some((1, 0.5)),
                stop_reason: None,
                error: (states[i] == TrialState::Failed).then(|| "it broke".into()),
            },
        });
    }
    store.apply(&writes).await.unwrap();
    let kinds: Vec<String> = sqlx::query_scalar("SELECT DISTINCT kind FROM metrics ORDER BY kind")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(kinds, ["-inf", "finite", "inf", "nan"]);
    let actions: i64 = sqlx::query_scalar("SELECT count(DISTINCT action) FROM decisions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(actions, 5);
    let check = |pool: &sqlx::SqlitePool| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("PRAGMA integrity_check")
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(check(store.pool()).await, ["ok"]);

    // The check has teeth: a row that breaks one, written with the checks off, is reported.
    let mut conn = store.pool().acquire().await.unwrap();
    sqlx::raw_sql(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE metrics SET kind = 'bogus' WHERE epoch = 1;
         PRAGMA ignore_check_constraints = OFF;",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    let broken = check(store.pool()).await;
    // One line per broken row: the 4 trials' 4 metrics at epoch 1.
    assert_eq!(broken.len(), 16, "{broken:?}");
    assert!(
        broken
            .iter()
            .all(|l| l == "CHECK constraint failed in metrics"),
        "{broken:?}"
    );
}
