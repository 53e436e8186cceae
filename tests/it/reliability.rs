//! Promises that are tested by trying to break them: SIGKILL at random moments, Ctrl-C once
//! and twice, readers during a run, and two runs of one sweep.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::TempDb;

/// 8 trials of 15 synthetic epochs, two at a time, with patience so decisions are stored too.
const SWEEP: &str = r#"
name = "killme"
[train]
max_parallel = 2
[params]
learning_rate = [0.001, 0.003, 0.01, 0.03]
batch_size = 32
epochs = 15
activation = ["relu", "tanh"]
[stopping]
patience = 4
"#;

fn lcurve(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lcurve"));
    c.args(args)
        .current_dir(dir)
        .env_remove("LCURVE_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn output(c: &mut Command) -> Output {
    c.output().expect("run lcurve")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run_synthetic(dir: &Path, file: &str, ms: u64) -> Command {
    lcurve(
        dir,
        &[
            "run",
            file,
            "--synthetic-trainer",
            &ms.to_string(),
            "--reports",
            "r",
        ],
    )
}

fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Every curve as `ordinal|epoch|name|value` lines, for comparing whole databases.
fn curves(db: &Path) -> String {
    sqlite(
        db,
        "select t.ordinal, m.epoch, m.name, m.value from metrics m join trials t on t.id = m.trial_id where m.name <> 'epoch_seconds' order by 1, 3, 2",
    )
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let reference = TempDb::new();
    std::fs::write(reference.dir.path().join("s.toml"), SWEEP).unwrap();
    let clean = output(&mut run_synthetic(reference.dir.path(), "s.toml", 3));
    assert!(clean.status.success(), "{}", text(&clean));

    let db = TempDb::new();
    let dir = db.dir.path();
    std::fs::write(dir.join("s.toml"), SWEEP).unwrap();
    // A fixed-seed generator picks the moments, so a failure can be replayed.
    let mut state: u64 = 0x5eed;
    let mut killed_mid_run = 0;
    for _ in 0..20 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = Duration::from_millis(20 + (state >> 33) % 300);
        let mut child = run_synthetic(dir, "s.toml", 3).spawn().unwrap();
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        // SIGKILL (a finished run has nothing left to kill).
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(
        killed_mid_run >= 10,
        "most kills land mid-run ({killed_mid_run})"
    );
    let last = output(&mut run_synthetic(dir, "s.toml", 3));
    assert!(last.status.success(), "{}", text(&last));

    assert_eq!(sqlite(&db.path, "pragma integrity_check"), "ok");
    let restarted: u32 = sqlite(&db.path, "select count(*) from trials where attempt > 1")
        .parse()
        .unwrap();
    assert!(
        restarted >= 2,
        "kills interrupted running trials ({restarted} restarted)"
    );
    // Every trial finished exactly once.
    assert_eq!(
        sqlite(
            &db.path,
            "select count(*) from trials where state in ('completed', 'stopped')"
        ),
        "8"
    );
    // Each curve has epochs 1..=epochs_run, each once (the primary key forbids repeats).
    let gaps = sqlite(
        &db.path,
        "select count(*) from trials t where t.epochs_run <> (select count(*) from metrics m where m.trial_id = t.id and m.name = 'val_loss') or t.epochs_run <> (select max(epoch) from metrics m where m.trial_id = t.id)",
    );
    assert_eq!(gaps, "0", "a curve has a missing epoch");
    // No metric or decision from an abandoned attempt: the curves are exactly those of a run
    // that was never killed.
    assert_eq!(curves(&db.path), curves(&reference.path));
    assert_eq!(
        sqlite(&db.path, "select count(*) from decisions"),
        sqlite(&reference.path, "select count(*) from decisions")
    );
}

#[test]
fn a_second_run_of_the_same_sweep_is_refused_while_the_first_runs() {
    let db = TempDb::new();
    let dir = db.dir.path();
    std::fs::write(dir.join("s.toml"), SWEEP).unwrap();
    let mut first = run_synthetic(dir, "s.toml", 20).spawn().unwrap();
    // Wait until the first run holds the sweep (its trials are running).
    let started = Instant::now();
    while !db.path.exists()
        || sqlite(
            &db.path,
            "select count(*) from trials where state = 'running'",
        ) == "0"
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "first run never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = output(&mut run_synthetic(dir, "s.toml", 20));
    let msg = text(&second);
    assert!(!second.status.success());
    assert!(
        msg.contains("sweep `killme` is already being run by another lcurve process (pid "),
        "{msg}"
    );
    // Readers are not blocked while the sweep writes.
    for args in [
        &["show", "killme"][..],
        &["ls"][..],
        &["query", "select count(*) from metrics"][..],
        &["report", "killme", "--reports", "r2"][..],
    ] {
        let out = output(&mut lcurve(dir, args));
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    sqlite(&db.path, "select count(*) from epoch_metrics");
    let done = first.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", text(&done));
    assert!(!text(&done).contains("locked"), "{}", text(&done));
    assert_eq!(
        sqlite(&db.path, "select max(attempt) from trials"),
        "1",
        "no trial ran twice"
    );
}

#[test]
fn a_second_ctrl_c_quits_at_once_and_a_rerun_finishes_the_sweep() {
    let db = TempDb::new();
    let dir = db.dir.path();
    std::fs::write(dir.join("s.toml"), SWEEP).unwrap();
    // Epochs of 2 s: the first Ctrl-C alone would wait for the current one.
    let mut child = run_synthetic(dir, "s.toml", 2000).spawn().unwrap();
    let started = Instant::now();
    while !db.path.exists()
        || sqlite(
            &db.path,
            "select count(*) from trials where state = 'running'",
        ) == "0"
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "run never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(130), "{msg}");
    assert!(msg.contains("interrupted twice: quitting now"), "{msg}");
    assert!(
        sqlite(&db.path, "select count(*) from metrics") == "0",
        "no epoch had finished"
    );
    let rerun = output(&mut run_synthetic(dir, "s.toml", 1));
    assert!(rerun.status.success(), "{}", text(&rerun));
    assert_eq!(
        sqlite(
            &db.path,
            "select count(*) from trials where state in ('completed', 'stopped')"
        ),
        "8"
    );
}
