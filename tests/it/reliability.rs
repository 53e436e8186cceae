//! Promises that are tested by trying to break them: SIGKILL at random moments, Ctrl-C once
//! and twice, readers during a run, and two runs of one sweep.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TempDb, sql};

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

fn sqlite(db: &Path, query: &str) -> String {
    sql(db, query).unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// Whether the run in `db` has a trial training yet (false while the file or its tables are
/// still being created).
fn training(db: &Path) -> bool {
    db.exists()
        && sql(db, "select count(*) from trials where state = 'running'")
            .is_ok_and(|n| !n.is_empty() && n != "0")
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
    let clean = output(&mut run_synthetic(reference.dir.path(), "s.toml", 0));
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
        let wait = Duration::from_millis((state >> 33) % 150);
        // 8 trials x 15 epochs x 25 ms / 2 at once: 1.5 s of training, longer than the kills.
        let mut child = run_synthetic(dir, "s.toml", 25).spawn().unwrap();
        // Wait for training to start (however slow the machine), then a seeded moment more.
        let started = Instant::now();
        while child.try_wait().unwrap().is_none()
            && started.elapsed() < Duration::from_secs(20)
            && !training(&db.path)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
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
    let last = output(&mut run_synthetic(dir, "s.toml", 0));
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
    let first = run_synthetic(dir, "s.toml", 20).spawn().unwrap();
    // Wait until the first run holds the sweep (its trials are running).
    let started = Instant::now();
    while !training(&db.path) {
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
    let child = run_synthetic(dir, "s.toml", 2000).spawn().unwrap();
    let started = Instant::now();
    while !training(&db.path) {
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

fn md5(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A bad place for the database or the reports: one clear error, no panic, nothing half-done
/// that a rerun in a good place cannot finish.
#[test]
fn a_bad_environment_gets_a_clear_error_and_recovers() {
    let db = TempDb::new();
    let dir = db.dir.path();
    std::fs::write(dir.join("s.toml"), SWEEP).unwrap();
    let run_on = |db: &str, extra: &[&str]| {
        let mut args = vec!["--db", db, "run", "s.toml", "--synthetic-trainer", "0"];
        args.extend(extra);
        output(&mut lcurve(dir, &args))
    };
    let cases = [
        (
            "missing/x.db",
            "error: cannot open the database missing/x.db: the folder missing does not exist",
        ),
        (
            "/proc/x.db",
            "error: cannot open the database /proc/x.db: SQLite cannot open or create it there",
        ),
    ];
    for (path, expected) in cases {
        let out = run_on(path, &[]);
        assert!(!out.status.success());
        assert!(text(&out).starts_with(expected), "{}", text(&out));
        assert!(!text(&out).contains("panicked"));
    }

    // A file that is not SQLite, and a database from a newer lcurve: refused, left as they were.
    std::fs::write(dir.join("notes.db"), "my notes, not a database\n").unwrap();
    let future = dir.join("future.db");
    sqlite(
        &future,
        "create table _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL); insert into _sqlx_migrations (version, description, success, checksum, execution_time) values (20991231000000, 'future', 1, x'00', 0)",
    );
    for (file, expected) in [
        ("notes.db", "it is not an SQLite database"),
        (
            "future.db",
            "was written by a newer lcurve (it has schema migration 20991231000000",
        ),
    ] {
        let before = md5(&dir.join(file));
        for args in [
            &["--db", file, "ls"][..],
            &["--db", file, "run", "s.toml"][..],
        ] {
            let out = output(&mut lcurve(dir, args));
            assert!(!out.status.success());
            assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
        }
        assert_eq!(md5(&dir.join(file)), before, "{file} is untouched");
    }

    // A full disk, simulated by a file-size limit: the run fails with a clear error, the
    // database stays sound, and a rerun without the limit finishes the sweep. The limit (100
    // KiB) is above the new file's 68 KiB (a copy of the schema template) and below what the
    // sweep writes to the log.
    let script = format!(
        "trap '' XFSZ; ulimit -f 100; exec {} --db full.db run s.toml --synthetic-trainer 0",
        env!("CARGO_BIN_EXE_lcurve")
    );
    let full = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir)
        .output()
        .expect("bash runs");
    let msg = text(&full);
    assert!(!full.status.success(), "{msg}");
    assert!(
        msg.contains("could not be written (disk full, a file-size limit, or a failing disk)"),
        "{msg}"
    );
    assert_eq!(sqlite(&dir.join("full.db"), "pragma integrity_check"), "ok");
    let rerun = run_on("full.db", &[]);
    assert!(rerun.status.success(), "{}", text(&rerun));
    assert_eq!(
        sqlite(
            &dir.join("full.db"),
            "select count(*) from trials where state in ('completed', 'stopped')"
        ),
        "8"
    );

    // A reports folder that cannot be written: the trials are stored, the exit says so, and
    // `lcurve report` draws them later.
    let out = run_on("r.db", &["--reports", "/proc/reports"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the data is safe in the database; rerun `lcurve report`"),
        "{}",
        text(&out)
    );
    assert_eq!(
        sqlite(
            &dir.join("r.db"),
            "select count(*) from trials where state = 'pending'"
        ),
        "0"
    );
    let report = output(&mut lcurve(dir, &["--db", "r.db", "report", "killme"]));
    assert!(report.status.success(), "{}", text(&report));
}

/// Every file in `tests/bad_sweeps/` (its first line says `# expect: <part of the message>`)
/// gets exactly one error line with that message and a non-zero exit, and the database is
/// byte-for-byte what it was.
#[test]
fn every_file_in_the_bad_input_corpus_is_refused_without_touching_the_database() {
    let db = TempDb::new();
    let dir = db.dir.path();
    std::fs::write(dir.join("good.toml"), SWEEP.replace("killme", "bad")).unwrap();
    let good = output(&mut run_synthetic(dir, "good.toml", 0));
    assert!(good.status.success(), "{}", text(&good));
    let files_of_db = || -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("lcurve.db")
            })
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = files_of_db();

    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_sweeps");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "{} files", files.len());
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let first = bytes.split(|&b| b == b'\n').next().unwrap();
        let expected = String::from_utf8_lossy(first)
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{} has no `# expect:` line", file.display()))
            .to_string();
        let out = output(&mut lcurve(dir, &["run", file.to_str().unwrap()]));
        let msg = text(&out).replace(&file.display().to_string(), "bad.toml");
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(!out.status.success(), "{name}: {msg}");
        assert!(
            msg.starts_with("error: ") && msg.contains(&expected),
            "{name}: expected {expected:?}\n got {msg}"
        );
        assert_eq!(msg.trim_end().lines().count(), 1, "{name}: one line: {msg}");
        assert!(!msg.contains("panicked"), "{name}: {msg}");
        assert!(files_of_db() == before, "{name} changed the database");
    }
}
