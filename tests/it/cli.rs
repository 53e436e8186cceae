//! The `lcurve` binary end to end: a tiny real burn sweep, the inspection commands, and bad
//! input that must exit non-zero without touching the database.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{TempDb, png_summary, sql};

const TINY: &str = r#"
name = "tiny"
seed = 3
[train]
max_parallel = 2
[params]
hidden = [16]
learning_rate = 0.01
batch_size = 128
epochs = 2
activation = ["relu", "tanh"]
"#;

/// `lcurve ARGS` in `dir`, on that folder's default database.
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lcurve"));
    c.args(args).current_dir(dir).env_remove("LCURVE_DB");
    c
}

fn lcurve(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("run lcurve")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_real_sweep_stores_every_epoch_and_draws_charts() {
    let db = TempDb::new();
    let dir = db.dir.path();
    std::fs::write(dir.join("tiny.toml"), TINY).unwrap();
    let out = lcurve(dir, &["run", "tiny.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("[  2/2]")
            && text(&out).contains("[  1/2]")
            && text(&out).contains("s left"),
        "progress, with the time left, is shown: {}",
        text(&out)
    );
    // The file alone holds the sweep: the run moved SQLite's write-ahead log into it and
    // closed it, so a copy of `lcurve.db` without its `-wal` beside it has every row.
    assert!(!dir.join("lcurve.db-wal").exists(), "the log is left over");
    std::fs::copy(dir.join("lcurve.db"), dir.join("copy.db")).unwrap();
    let copied = lcurve(
        dir,
        &[
            "--db",
            "copy.db",
            "query",
            "select count(*) as n from metrics",
        ],
    );
    assert!(text(&copied).contains("│ 16 │"), "{}", text(&copied));

    let q = lcurve(
        dir,
        &[
            "query",
            "select ordinal, state, epochs_run, best_val_loss is not null as has_loss, best_val_accuracy > 0.5 as learned from trial_summary order by ordinal",
        ],
    );
    assert!(q.status.success(), "{}", text(&q));
    let rows: Vec<&str> = std::str::from_utf8(&q.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("completed"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", text(&q));
    assert!(
        rows.iter().all(
            |r| r.split(['│', '┆']).map(str::trim).collect::<Vec<_>>()[3..6] == ["2", "1", "1"]
        ),
        "{}",
        text(&q)
    );
    let n = lcurve(dir, &["query", "select count(*) as n from metrics"]);
    assert!(
        text(&n).contains("│ 16 │"),
        "2 trials x 2 epochs x 4 series: {}",
        text(&n)
    );

    for png in [
        "reports/tiny/curves.png",
        "reports/tiny/trials/000.png",
        "reports/tiny/trials/001.png",
    ] {
        let (w, h, colours) = png_summary(&dir.join(png));
        assert!(w >= 800 && h >= 550, "{png}: {w}x{h}");
        assert!(colours > 10, "{png} is blank ({colours} colours)");
    }

    let ls = lcurve(dir, &["ls"]);
    assert!(
        ls.status.success() && text(&ls).contains("tiny"),
        "{}",
        text(&ls)
    );
    let show = lcurve(dir, &["show", "tiny"]);
    assert!(
        show.status.success() && text(&show).contains("relu") && text(&show).contains("completed"),
        "{}",
        text(&show)
    );

    // Same seed and config: a second sweep under another name gives the same numbers.
    std::fs::write(
        dir.join("tiny2.toml"),
        TINY.replace("\"tiny\"", "\"tiny2\""),
    )
    .unwrap();
    assert!(lcurve(dir, &["run", "tiny2.toml"]).status.success());
    let same = lcurve(
        dir,
        &[
            "query",
            "select count(*) as differing from trial_summary a join trial_summary b on a.ordinal = b.ordinal and a.sweep = 'tiny' and b.sweep = 'tiny2' where a.best_val_loss <> b.best_val_loss",
        ],
    );
    assert!(text(&same).contains("│ 0 "), "{}", text(&same));

    // Rerunning finishes at once: nothing is trained again.
    let again = lcurve(dir, &["run", "tiny.toml"]);
    assert!(
        again.status.success() && text(&again).contains("2 of 2 trials were already finished"),
        "{}",
        text(&again)
    );

    // `report` redraws from the database alone.
    std::fs::remove_dir_all(dir.join("reports")).unwrap();
    let report = lcurve(dir, &["report", "tiny"]);
    assert!(report.status.success(), "{}", text(&report));
    assert!(dir.join("reports/tiny/curves.png").exists());

    // The query connection is read-only.
    let write = lcurve(dir, &["query", "delete from metrics"]);
    assert!(!write.status.success(), "{}", text(&write));
    assert!(text(&lcurve(dir, &["query", "select count(*) from metrics"])).contains("32"));
}

#[test]
fn bad_input_exits_non_zero_and_writes_nothing() {
    let db = TempDb::new();
    let dir = db.dir.path();
    std::fs::write(
        dir.join("bad.toml"),
        TINY.replace("batch_size = 128", "batch_size = 0"),
    )
    .unwrap();
    let out = lcurve(dir, &["run", "bad.toml"]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains("bad.toml:9: `params.batch_size`: 0 is out of range"),
        "{msg}"
    );
    assert_eq!(
        msg.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "one error: {msg}"
    );
    assert!(!dir.join("lcurve.db").exists(), "no database was created");

    // Every kind of bad value: one error line naming file, line and key; still no database.
    let tiny = TINY.trim_start();
    let cases = [
        (
            format!("colour = \"red\"\n{tiny}"),
            "bad.toml:1: `colour`: unknown field",
        ),
        (
            tiny.replace("learning_rate = 0.01", "learning_rate = -1.0"),
            "bad.toml:7: `params.learning_rate`: -1.0 is out of range",
        ),
        (
            tiny.replace("\"tanh\"]", "\"swish\"]"),
            "bad.toml:10: `params.activation`: \"swish\" is not known",
        ),
        (
            format!("{tiny}[data]\ndataset = \"mnist\"\n"),
            "bad.toml:12: `data.dataset`: \"mnist\" is not known",
        ),
    ];
    for (toml, expected) in cases {
        std::fs::write(dir.join("bad.toml"), toml).unwrap();
        let out = lcurve(dir, &["run", "bad.toml"]);
        let msg = text(&out);
        assert!(
            !out.status.success() && msg.starts_with(&format!("error: {expected}")),
            "{msg}"
        );
        assert!(!dir.join("lcurve.db").exists(), "no database after: {msg}");
    }

    let missing = lcurve(dir, &["run", "nope.toml"]);
    assert!(
        !missing.status.success()
            && text(&missing).contains("nope.toml: cannot read the sweep file")
    );

    let ls = lcurve(dir, &["ls"]);
    assert!(
        !ls.status.success() && text(&ls).contains("no database at lcurve.db"),
        "{}",
        text(&ls)
    );
    assert!(!dir.join("lcurve.db").exists());
}

/// A sweep begun before engines existed trained on burn, and its stored spec names no engine.
/// Rerunning its file, which names none either, continues it on burn and says so; asking for
/// the fused engine by name is a changed spec.
#[test]
fn a_sweep_begun_on_burn_continues_on_burn() {
    let db = TempDb::new();
    let dir = db.dir.path();
    let burn = TINY.replace("max_parallel = 2", "max_parallel = 2\nengine = \"burn\"");
    std::fs::write(dir.join("s.toml"), &burn).unwrap();
    assert!(lcurve(dir, &["run", "s.toml"]).status.success());
    let stored = sql(&db.path, "select spec from sweeps").unwrap();
    assert!(!stored.contains("engine"), "{stored}");

    std::fs::write(dir.join("s.toml"), TINY).unwrap();
    let again = lcurve(dir, &["run", "s.toml"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again)
            .contains("was begun by an older lcurve on the burn engine and continues on it")
            && text(&again).contains("2 of 2 trials were already finished"),
        "{}",
        text(&again)
    );
    let configs = sql(
        &db.path,
        "select count(*) from trials where config like '%engine%'",
    );
    assert_eq!(configs.unwrap().trim(), "0");

    let named = TINY.replace("max_parallel = 2", "max_parallel = 2\nengine = \"fused\"");
    std::fs::write(dir.join("s.toml"), named).unwrap();
    let out = lcurve(dir, &["run", "s.toml"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("already exists in the database with a different spec"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_changed_spec_under_the_same_name_is_refused() {
    let db = TempDb::new();
    let dir = db.dir.path();
    let one = TINY
        .replace("activation = [\"relu\", \"tanh\"]", "activation = \"relu\"")
        .replace("epochs = 2", "epochs = 1");
    std::fs::write(dir.join("s.toml"), &one).unwrap();
    assert!(lcurve(dir, &["run", "s.toml"]).status.success());
    std::fs::write(dir.join("s.toml"), one.replace("seed = 3", "seed = 4")).unwrap();
    let out = lcurve(dir, &["run", "s.toml"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("already exists in the database with a different spec"),
        "{}",
        text(&out)
    );
    let plan = lcurve(dir, &["plan", "s.toml"]);
    assert!(
        plan.status.success() && text(&plan).contains("1 trials"),
        "{}",
        text(&plan)
    );
}

#[test]
fn ctrl_c_keeps_finished_epochs_and_a_rerun_continues() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let db = TempDb::new();
    let dir = db.dir.path();
    let sweep = TINY
        .replace("epochs = 2", "epochs = 60")
        .replace("batch_size = 128", "batch_size = 16");
    std::fs::write(dir.join("long.toml"), sweep).unwrap();
    let mut child = command(dir, &["run", "long.toml"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("start  #1") {
        line.clear();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("will run again"), "{rest}");

    let states = lcurve(
        dir,
        &[
            "query",
            "select state, count(*) as n from trials group by state",
        ],
    );
    assert!(text(&states).contains("pending"), "{}", text(&states));
    let kept = lcurve(dir, &["query", "select count(*) > 0 as kept from metrics"]);
    assert!(
        text(&kept).contains("│ 1 "),
        "epochs before Ctrl-C are stored: {}",
        text(&kept)
    );

    let again = lcurve(dir, &["run", "long.toml"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("(attempt 2)"), "{}", text(&again));
    let done = lcurve(
        dir,
        &[
            "query",
            "select count(*) as n from metrics where name = 'val_loss'",
        ],
    );
    assert!(
        text(&done).contains("│ 120 │"),
        "2 trials x 60 epochs, no leftovers: {}",
        text(&done)
    );
}

/// A regression sweep on a CSV file next to the sweep file.
const CSV_SWEEP: &str = r#"
name = "csvreg"
[data]
dataset = "csv"
path = "data/points.csv"
target = "y"
[params]
learning_rate = [0.01, 0.03]
batch_size = 8
epochs = 3
hidden = [8]
[stopping]
metric = "val_rmse"
patience = 5
"#;

fn points_csv() -> String {
    // y = 2a - b + small wiggle: learnable, with fractional targets (so: regression).
    let mut csv = String::from("a,b,y\n");
    for i in 0..60 {
        let (a, b) = (i as f64 / 10.0, (i % 7) as f64);
        csv.push_str(&format!(
            "{a},{b},{:.3}\n",
            2.0 * a - b + 0.01 * (i % 3) as f64
        ));
    }
    csv.push_str("1.5,NA,2.0\n");
    csv
}

#[test]
fn a_csv_sweep_runs_records_its_data_and_refuses_changed_data() {
    let db = TempDb::new();
    let dir = db.dir.path();
    std::fs::create_dir(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/points.csv"), points_csv()).unwrap();
    std::fs::write(dir.join("csv.toml"), CSV_SWEEP).unwrap();

    let plan = lcurve(dir, &["plan", "csv.toml"]);
    let shown = text(&plan);
    assert!(plan.status.success(), "{shown}");
    assert!(shown.contains("61 rows (1 dropped)"), "{shown}");
    assert!(shown.contains("regression (inferred"), "{shown}");
    assert!(shown.contains("2 trials, 0 already finished"), "{shown}");
    assert!(!dir.join("lcurve.db").exists(), "plan writes nothing");

    let out = lcurve(dir, &["run", "csv.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let q = lcurve(
        dir,
        &[
            "query",
            "select count(*) as n, min(best_val_rmse > 0) as ok, max(task) as task from trial_summary",
        ],
    );
    assert!(text(&q).contains("│ 2 ┆ 1  ┆ regression │"), "{}", text(&q));
    let data = lcurve(
        dir,
        &[
            "query",
            "select json_extract(data, '$.rows_dropped') as dropped, json_array_length(json_extract(data, '$.valid_index')) as valid, length(json_extract(data, '$.sha256')) as sha from sweeps",
        ],
    );
    assert!(
        text(&data).contains("│ 1       ┆ 12    ┆ 64  │"),
        "{}",
        text(&data)
    );
    let show = lcurve(dir, &["show", "csvreg"]);
    assert!(text(&show).contains("best_val_rmse"), "{}", text(&show));

    // The same sweep on changed data is refused, and nothing is written.
    // WAL pages may move into the main file when a connection closes, so compare content.
    let dump = || {
        crate::support::sql(
            &dir.join("lcurve.db"),
            "select name, spec_hash, data, (select count(*) from trials), (select group_concat(value) from metrics) from sweeps",
        )
        .unwrap()
    };
    let before = dump();
    std::fs::write(
        dir.join("data/points.csv"),
        points_csv().replace("2.0\n", "2.5\n"),
    )
    .unwrap();
    let changed = lcurve(dir, &["run", "csv.toml"]);
    assert!(!changed.status.success());
    assert!(
        text(&changed).contains("was trained on other data than this run reads (sha256:"),
        "{}",
        text(&changed)
    );
    assert!(dump() == before, "the refused run changed nothing");
    let replaced = lcurve(dir, &["run", "csv.toml", "--replace"]);
    assert!(replaced.status.success(), "{}", text(&replaced));
}

#[test]
fn csv_problems_exit_non_zero_and_write_nothing() {
    let db = TempDb::new();
    let dir = db.dir.path();
    std::fs::create_dir(dir.join("data")).unwrap();
    let cases = [
        (None, "data/points.csv: cannot read the CSV file"),
        (
            Some("a,b,z\n1,2,3\n"),
            "`data.target` names column \"y\", which is not in the file (columns: a, b, z)",
        ),
        (
            Some("a,b,y\n1,2,0.5\nx,3,0.7\n2,2,0.1\n"),
            "data/points.csv:3: column \"a\" has text (\"x\") where numbers are expected",
        ),
        (
            Some("a,b,y\nNA,2,0.5\n1,,0.7\n"),
            "no rows left after dropping 2 rows",
        ),
    ];
    std::fs::write(dir.join("csv.toml"), CSV_SWEEP).unwrap();
    for (csv, expected) in cases {
        let _ = std::fs::remove_file(dir.join("data/points.csv"));
        if let Some(csv) = csv {
            std::fs::write(dir.join("data/points.csv"), csv).unwrap();
        }
        let out = lcurve(dir, &["run", "csv.toml"]);
        let msg = text(&out);
        assert!(!out.status.success(), "{msg}");
        assert!(
            msg.starts_with("error: csv.toml: [data]: ") && msg.contains(expected),
            "expected {expected}\ngot {msg}"
        );
        assert_eq!(msg.lines().count(), 1, "one line: {msg}");
        assert!(!dir.join("lcurve.db").exists(), "no database after: {msg}");
    }
}

#[test]
fn plan_lists_every_example_sweep_with_its_trial_count() {
    let db = TempDb::new();
    let examples = [
        ("quickstart.toml", 4),
        ("digits.toml", 32),
        ("random.toml", 32),
        ("conditional.toml", 10),
        ("train_fraction.toml", 15),
        ("penguins.toml", 6),
        ("digits_full.toml", 32),
        ("wine_full.toml", 32),
        ("asha.toml", 32),
    ];
    let sweeps = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
    for (file, trials) in examples {
        let path = sweeps.join(file);
        let out = lcurve(
            db.dir.path(),
            &["plan", path.to_str().unwrap(), "--limit", "100"],
        );
        let shown = text(&out);
        assert!(out.status.success(), "{file}: {shown}");
        assert!(
            shown.contains(&format!("\n{trials} trials, 0 already finished")),
            "{file}: {shown}"
        );
        let rows = shown.lines().filter(|l| l.contains("┆ new ")).count();
        assert_eq!(rows, trials, "{file} lists every trial: {shown}");
    }
    assert!(!db.path.exists(), "plan writes nothing");
}

/// A database written by lcurve 0.1 (committed under tests/fixtures) is upgraded in place
/// and everything in it still reads; its 0.1 sweep file is refused with what to change.
#[test]
fn the_committed_0_1_database_is_upgraded_in_place() {
    let db = TempDb::new();
    let dir = db.dir.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::copy(fixtures.join("lcurve-0.1.db"), &db.path).unwrap();
    std::fs::copy(fixtures.join("fixture.toml"), dir.join("fixture.toml")).unwrap();

    let show = lcurve(dir, &["show", "fixture"]);
    assert!(show.status.success(), "{}", text(&show));
    assert!(
        text(&show).contains("stopped") && text(&show).contains("1.5860"),
        "{}",
        text(&show)
    );
    let q = lcurve(
        dir,
        &[
            "query",
            "select count(*) as n, sum(best_val_loss > 0) as losses, count(momentum) as momenta, max(data is null) as no_data from trial_summary join sweeps on sweeps.name = sweep",
        ],
    );
    assert!(
        text(&q).contains("│ 2 ┆ 2      ┆ 0       ┆ 1       │"),
        "{}",
        text(&q)
    );
    let decisions = lcurve(dir, &["query", "select count(*) from decisions"]);
    assert!(text(&decisions).contains("│ 8 "), "{}", text(&decisions));
    // Migration 5 gave the old finished trials their stored scores.
    let scored = lcurve(
        dir,
        &[
            "query",
            "select count(*) from trials where scored_epochs = epochs_run and best_val_loss > 0",
        ],
    );
    assert!(text(&scored).contains("│ 2 "), "{}", text(&scored));
    let report = lcurve(dir, &["report", "fixture"]);
    assert!(report.status.success(), "{}", text(&report));

    let old_file = lcurve(dir, &["run", "fixture.toml"]);
    assert!(!old_file.status.success());
    assert!(
        text(&old_file).contains("the [grid] table is now called [params]"),
        "{}",
        text(&old_file)
    );
}

#[test]
fn real_divergence_ends_the_trial_and_the_sweep_and_report_carry_on() {
    let db = TempDb::new();
    let dir = db.dir.path();
    let sweep = TINY
        .replace("learning_rate = 0.01", "learning_rate = [0.01, 1e6]")
        .replace(
            "activation = [\"relu\", \"tanh\"]",
            "optimizer = \"sgd\"\nepochs = 3",
        )
        .replace("epochs = 2\n", "");
    std::fs::write(dir.join("div.toml"), sweep).unwrap();
    let out = lcurve(dir, &["run", "div.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let q = lcurve(
        dir,
        &[
            "query",
            "select t.ordinal, t.state, d.epoch, d.reason from trials t left join decisions d on d.trial_id = t.id and d.action = 'diverge' order by t.ordinal",
        ],
    );
    let shown = text(&q).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(shown.contains("│ 0 ┆ completed"), "{shown}");
    assert!(
        shown.contains("│ 1 ┆ diverged ┆ 1 ┆") && shown.contains("at epoch 1: the trial diverged"),
        "{shown}"
    );
    assert!(
        dir.join("reports/tiny/trials/001.png").exists(),
        "{}",
        text(&out)
    );
}

#[test]
fn query_cannot_change_the_database() {
    let db = TempDb::new();
    let dir = db.dir.path();
    std::fs::write(
        dir.join("tiny.toml"),
        TINY.replace("epochs = 2", "epochs = 1"),
    )
    .unwrap();
    assert!(lcurve(dir, &["run", "tiny.toml"]).status.success());
    let files =
        || ["lcurve.db", "lcurve.db-wal"].map(|f| std::fs::read(dir.join(f)).unwrap_or_default());
    let before = files();
    for sql in [
        "drop table metrics",
        "delete from trials",
        "update sweeps set name = 'x'",
        "insert into sweeps (name, spec, spec_hash, lcurve_version) values ('a', '{}', 'h', 'v')",
        "pragma journal_mode = delete",
    ] {
        let out = lcurve(dir, &["query", sql]);
        assert!(!out.status.success(), "{sql}: {}", text(&out));
        assert!(
            text(&out).contains("the query failed: lcurve query only reads"),
            "{sql}: {}",
            text(&out)
        );
    }
    assert!(files() == before, "the database files are unchanged");
}

#[test]
fn replay_compares_policies_on_stored_curves_and_draws_them() {
    let db = TempDb::new();
    let dir = db.dir.path();
    let sweep = "name = \"full\"\n[train]\nmax_parallel = 2\n[params]\nlearning_rate = [0.03, 0.01, 0.003, 0.001]\nbatch_size = [16, 64]\nepochs = 10\n";
    std::fs::write(dir.join("full.toml"), sweep).unwrap();
    let run = lcurve(dir, &["run", "full.toml", "--synthetic-trainer", "0"]);
    assert!(run.status.success(), "{}", text(&run));
    let out = lcurve(
        dir,
        &[
            "replay",
            "full",
            "--policy",
            "full",
            "--policy",
            "median:warmup=2,min_peers=2",
            "--policy",
            "iepoch:epoch=2,top=2",
        ],
    );
    let shown = text(&out).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("│ full (no stopping) ┆ 80 ┆ 100.0% ┆ yes ┆"),
        "8 trials x 10 epochs: {shown}"
    );
    assert!(
        shown.contains("│ i-epoch:epoch=2,top=2 ┆ 32 ┆ 40.0% ┆"),
        "8 x 2 + 2 x 8: {shown}"
    );
    assert!(shown.contains("│ median:warmup=2,min_peers=2 ┆"), "{shown}");
    let (w, h, colours) = png_summary(&dir.join("reports/full/replay.png"));
    assert!(
        w >= 800 && h >= 600 && colours > 10,
        "{w}x{h}, {colours} colours"
    );

    let bad = lcurve(dir, &["replay", "full", "--policy", "hyperband"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad).starts_with("error: --policy \"hyperband\": \"hyperband\" is not a policy"),
        "{}",
        text(&bad)
    );
}

#[test]
fn show_prints_the_top_50_as_a_table_and_every_trial_as_csv() {
    let db = TempDb::new();
    let dir = db.dir.path();
    let rates: Vec<String> = (1..=60).map(|i| format!("{i}e-4")).collect();
    let sweep = format!(
        "name = \"many\"\n[params]\nlearning_rate = [{}]\nbatch_size = 32\nepochs = 2\n",
        rates.join(", ")
    );
    std::fs::write(dir.join("many.toml"), sweep).unwrap();
    assert!(
        lcurve(dir, &["run", "many.toml", "--synthetic-trainer", "0"])
            .status
            .success()
    );
    let rows = |out: &str| out.lines().filter(|l| l.starts_with("│ ")).count() - 1;
    let table = String::from_utf8(lcurve(dir, &["show", "many"]).stdout).unwrap();
    assert_eq!(rows(&table), 50, "{table}");
    assert!(
        table.ends_with("... and 10 more trials (--limit 60 lists them all)\n"),
        "{table}"
    );
    let all = String::from_utf8(lcurve(dir, &["show", "many", "--limit", "60"]).stdout).unwrap();
    assert_eq!(rows(&all), 60, "{all}");
    assert!(!all.contains("more trials"), "{all}");
    let csv = String::from_utf8(lcurve(dir, &["show", "many", "--format", "csv"]).stdout).unwrap();
    assert_eq!(csv.lines().count(), 61, "{csv}");
}

#[test]
fn show_trial_export_and_query_print_tables_csv_and_json() {
    let db = TempDb::new();
    let dir = db.dir.path();
    let sweep = "name = \"fmt\"\n[params]\nlearning_rate = [0.03, 0.01, 0.003]\nbatch_size = 32\nepochs = 4\nactivation = [\"relu\", \"tanh\"]\n";
    std::fs::write(dir.join("fmt.toml"), sweep).unwrap();
    assert!(
        lcurve(dir, &["run", "fmt.toml", "--synthetic-trainer", "0"])
            .status
            .success()
    );

    // show: CSV parses, best first; --sort and --reverse reorder; a bad column is named.
    let csv = lcurve(dir, &["show", "fmt", "--format", "csv"]);
    let out = String::from_utf8(csv.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "ordinal,learning_rate,activation,best_val_loss,best_val_accuracy,final_val_loss,epochs_run,epochs,state,stop_reason"
    );
    assert_eq!(lines.len(), 7, "{out}");
    for l in &lines[1..] {
        let cells: Vec<&str> = l.split(',').collect();
        let (best, last): (f64, f64) = (cells[3].parse().unwrap(), cells[5].parse().unwrap());
        assert!(last >= best, "the final loss is never below the best: {l}");
    }
    let losses: Vec<f64> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
        .collect();
    assert!(losses.windows(2).all(|w| w[0] <= w[1]), "{losses:?}");
    let sorted = lcurve(
        dir,
        &[
            "show",
            "fmt",
            "--format",
            "csv",
            "--sort",
            "learning_rate",
            "--limit",
            "2",
        ],
    );
    let out = String::from_utf8(sorted.stdout).unwrap();
    assert!(out.lines().skip(1).all(|l| l.contains(",0.003,")), "{out}");
    let bad = lcurve(dir, &["show", "fmt", "--sort", "colour"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("--sort \"colour\" is not a column (accepted: ordinal, learning_rate"),
        "{}",
        text(&bad)
    );

    // ls and query as JSON.
    let ls = lcurve(dir, &["ls", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(
        (v[0]["sweep"].as_str(), v[0]["completed"].as_i64()),
        (Some("fmt"), Some(6))
    );
    let q = lcurve(
        dir,
        &[
            "query",
            "select ordinal, best_val_loss from trial_summary order by ordinal",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 6);
    assert!(v[0]["best_val_loss"].as_f64().unwrap() > 0.0);

    // trial: config, curve and decisions; CSV is the curve; JSON has all three.
    let t = lcurve(dir, &["trial", "fmt", "2"]);
    let shown = text(&t);
    assert!(t.status.success(), "{shown}");
    assert!(
        shown.starts_with("trial 2 of `fmt`: completed after 4 epochs"),
        "{shown}"
    );
    assert!(
        shown.contains("learning_rate") && shown.contains("split_seed"),
        "{shown}"
    );
    let t = lcurve(dir, &["trial", "fmt", "2", "--format", "csv"]);
    let out = String::from_utf8(t.stdout).unwrap();
    assert_eq!(out.lines().count(), 1 + 4, "{out}");
    assert!(
        out.starts_with("epoch,train_loss,val_loss,val_accuracy,val_rmse,epoch_seconds\n1,"),
        "{out}"
    );
    let t = lcurve(dir, &["trial", "fmt", "2", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&t.stdout).unwrap();
    assert_eq!(v["config"]["learning_rate"], 0.01);
    assert_eq!(v["curve"].as_array().unwrap().len(), 4);
    let missing = lcurve(dir, &["trial", "fmt", "9"]);
    assert!(
        text(&missing).contains("sweep `fmt` has no trial 9 (its trials are 0 to 5"),
        "{}",
        text(&missing)
    );

    // compare: two sweeps side by side, best first.
    std::fs::write(
        dir.join("fmt2.toml"),
        sweep
            .replace("\"fmt\"", "\"fmt2\"")
            .replace("epochs = 4", "epochs = 2"),
    )
    .unwrap();
    assert!(
        lcurve(dir, &["run", "fmt2.toml", "--synthetic-trainer", "0"])
            .status
            .success()
    );
    let c = lcurve(
        dir,
        &["compare", "fmt", "fmt2", "--limit", "3", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&c.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v[0]["rank"], 1);
    assert!(
        v[0]["fmt trial"]
            .as_str()
            .unwrap()
            .contains("learning_rate=0.03"),
        "{v}"
    );
    assert!(
        v[0]["fmt best_val_loss"].as_f64().unwrap() < v[0]["fmt2 best_val_loss"].as_f64().unwrap(),
        "4 epochs beat 2: {v}"
    );
    assert!(
        text(&c).contains("chart: reports/compare-fmt-vs-fmt2.png"),
        "{}",
        text(&c)
    );
    let (w, h, colours) = png_summary(&dir.join("reports/compare-fmt-vs-fmt2.png"));
    assert!(w >= 1200 && h >= 700 && colours > 20, "{w}x{h}, {colours}");

    // export: long has a row per trial, epoch and metric; wide a row per trial and epoch.
    let long = lcurve(dir, &["export", "fmt"]);
    let out = String::from_utf8(long.stdout).unwrap();
    assert_eq!(
        out.lines().next(),
        Some("ordinal,learning_rate,activation,epoch,metric,value")
    );
    assert_eq!(out.lines().count(), 1 + 6 * 4 * 4, "{out}");
    let wide = lcurve(dir, &["export", "fmt", "--wide", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&wide.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 6 * 4);
    assert_eq!(v[0]["activation"], "relu");
    assert!(v[0]["val_rmse"].is_null(), "classification has no RMSE");
}

/// The queries in the README's "Queries people write", on a small sweep named `q`.
#[test]
fn the_documented_queries_run() {
    let db = TempDb::new();
    let dir = db.dir.path();
    let sweep = "name = \"q\"\n[params]\nlearning_rate = [0.03, 0.003]\nbatch_size = 32\nepochs = 12\nactivation = [\"relu\", \"tanh\"]\n[stopping]\npatience = 3\n";
    std::fs::write(dir.join("q.toml"), sweep).unwrap();
    assert!(
        lcurve(dir, &["run", "q.toml", "--synthetic-trainer", "0"])
            .status
            .success()
    );
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("### Queries people write")
        .nth(1)
        .and_then(|s| s.split("```sql").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the README has the queries");
    let queries: Vec<String> = section
        .split(';')
        .map(|q| {
            q.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|q| !q.trim().is_empty())
        .collect();
    assert_eq!(queries.len(), 5, "{queries:?}");
    let mut outputs = Vec::new();
    for q in &queries {
        let out = lcurve(dir, &["query", q, "--format", "json"]);
        assert!(out.status.success(), "{q}\n{}", text(&out));
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        outputs.push(rows);
    }
    assert_eq!(
        outputs[0].as_array().unwrap().len(),
        2,
        "one row per activation"
    );
    assert!(
        outputs[2]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["epoch"].as_i64().unwrap() >= 1)
    );
    assert!(
        !outputs[3].as_array().unwrap().is_empty(),
        "trial 2's curve"
    );
    // The Python example's query, through Python's own sqlite3 module when Python is here.
    let python = Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; con=sqlite3.connect(sys.argv[1]); print(con.execute(\"select count(*) from trial_summary s join epoch_metrics m using (trial_id) where s.sweep = ?\", ('q',)).fetchone()[0])")
        .arg(&db.path)
        .output();
    if let Ok(p) = python {
        assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
        let n: usize = String::from_utf8_lossy(&p.stdout).trim().parse().unwrap();
        assert!(n >= 4 * 3, "{n} trial-epochs");
    }
}

#[test]
fn bash_completion_completes_commands_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let script = lcurve(dir.path(), &["completions", "bash"]);
    assert!(script.status.success(), "{}", text(&script));
    std::fs::write(dir.path().join("lcurve.bash"), &script.stdout).unwrap();
    // Bash's completion function, called as bash would on `lcurve sh<TAB>` and
    // `lcurve show --f<TAB>`.
    let complete = |words: &str, cword: usize, cur: &str, prev: &str| {
        let line = format!(
            "source lcurve.bash; COMP_WORDS=({words}); COMP_CWORD={cword}; _lcurve lcurve {cur} {prev}; echo \"${{COMPREPLY[@]}}\""
        );
        let out = Command::new("bash")
            .args(["-c", &line])
            .current_dir(dir.path())
            .output()
            .expect("run bash");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("lcurve sh", 1, "sh", "lcurve"), "show");
    assert_eq!(complete("lcurve show --f", 2, "--f", "show"), "--format");
    let fish = lcurve(dir.path(), &["completions", "fish"]);
    assert!(String::from_utf8_lossy(&fish.stdout).contains("complete -c lcurve"));
}

#[test]
fn every_command_has_help_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        "run",
        "plan",
        "report",
        "replay",
        "ls",
        "show",
        "trial",
        "compare",
        "export",
        "completions",
        "query",
    ] {
        let help = lcurve(dir.path(), &[cmd, "--help"]);
        let out = text(&help);
        assert!(help.status.success(), "{cmd}: {out}");
        assert!(
            out.contains(&format!("lcurve {cmd} ")),
            "`lcurve {cmd} --help` shows no example:\n{out}"
        );
    }
}

const PROGRESS: &str = "name = \"prog\"\n[train]\nmax_parallel = 2\n[params]\nlearning_rate = [0.001, 0.01]\nbatch_size = 32\nepochs = 6\nactivation = \"relu\"\n";

#[test]
fn progress_lines_show_each_running_trial_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), PROGRESS).unwrap();
    let out = lcurve(
        dir.path(),
        &[
            "run",
            "p.toml",
            "--synthetic-trainer",
            "40",
            "--progress-every",
            "0.05",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains('\x1b'), "no terminal codes in a pipe:\n{err}");
    // One line per running trial: its ordinal, epoch out of planned, current val_loss.
    let status: Vec<&str> = err.lines().filter(|l| l.contains(" epoch ")).collect();
    let val_loss = |l: &str| {
        l.split("val_loss ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert!(
        status
            .iter()
            .any(|l| l.contains("#0") && l.contains("/6") && val_loss(l).is_some_and(|v| v > 0.0)),
        "{err}"
    );
    assert!(status.iter().any(|l| l.contains("#1")), "{err}");
    assert!(err.contains("[  2/2]"), "{err}");
}

#[test]
fn progress_is_redrawn_in_place_on_a_terminal() {
    // util-linux's `script` gives the run a pseudo-terminal, as a person's shell would.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), PROGRESS).unwrap();
    let log = dir.path().join("tty.log");
    let cmd = format!(
        "{} run p.toml --synthetic-trainer 40",
        env!("CARGO_BIN_EXE_lcurve")
    );
    let status = Command::new("script")
        .args(["-qec", &cmd])
        .arg(&log)
        .current_dir(dir.path())
        .env_remove("LCURVE_DB")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run script (util-linux)");
    assert!(status.success());
    let tty = std::fs::read_to_string(&log).unwrap();
    assert!(
        tty.contains("\x1b[2F\x1b[J"),
        "the two running trials' lines are redrawn in place:\n{tty}"
    );
    assert!(tty.contains("epoch   6/6"), "{tty}");
}
