//! The report folder: every chart decodes and is not blank, `index.html` links only files
//! that exist, and a real headless browser (Debian's chromium) shows the page with its charts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lcurve::run::{RunOptions, run_sweep};
use lcurve::scheduler::Quiet;
use lcurve::trainer::SyntheticTrainer;

use crate::support::{TempDb, png_pixels, png_summary, spec};

/// 3 learning rates x 2 activations x 2 batch sizes; the largest learning rate diverges.
const GRID: &str = r#"
name = "grid"
[train]
max_parallel = 2
[params]
learning_rate = [0.001, 0.01, 0.1]
activation = ["relu", "tanh"]
batch_size = [32, 128]
epochs = 8
[stopping]
metric = "val_loss"
patience = 2
min_delta = 0.01
"#;

async fn run(db: &TempDb, toml: &str) -> PathBuf {
    let store = db.open().await;
    let s = spec(toml);
    let trainer = SyntheticTrainer {
        diverge_at_lr: Some(0.1),
        epoch_delay: Duration::from_millis(1),
        ..Default::default()
    };
    let opts = RunOptions {
        reports: db.dir.path().join("reports"),
        replace: false,
        max_trials: 100,
        live_report: None,
        close: false,
    };
    let r = run_sweep(
        &store,
        &s,
        None,
        || Ok(trainer),
        &opts,
        &mut Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert!(r.report.failed.is_empty(), "{:?}", r.report.failed);
    r.report.dir
}

/// The `src="..."` and `href="..."` targets of a page.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let target = part.split('"').next().unwrap_or("");
            if !target.starts_with('#') {
                out.push(target.to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_has_every_chart_and_a_page_that_links_them() {
    let db = TempDb::new();
    let dir = run(&db, GRID).await;
    for (file, min_w, min_h) in [
        ("curves.png", 1200, 700),
        ("panels.png", 800, 300),
        ("summary.png", 1200, 600),
        ("heatmap.png", 600, 250),
        ("trials/000.png", 800, 550),
        ("trials/011.png", 800, 550),
    ] {
        let (w, h, colours) = png_summary(&dir.join(file));
        assert!(w >= min_w && h >= min_h, "{file}: {w}x{h}");
        assert!(colours > 20, "{file} looks blank ({colours} colours)");
    }
    assert!(
        !dir.join("learning_curve.png").exists(),
        "train_fraction does not vary"
    );
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let targets = links(&html);
    for chart in ["curves.png", "panels.png", "summary.png", "heatmap.png"] {
        assert!(
            targets.iter().any(|t| t == chart),
            "{chart} not on the page"
        );
    }
    for t in &targets {
        assert!(
            !t.contains("://") && !t.starts_with('/'),
            "self-contained: {t}"
        );
        assert!(dir.join(t).exists(), "the page links a missing file: {t}");
    }
    assert_eq!(
        targets.iter().filter(|t| t.starts_with("trials/")).count(),
        3 * 12,
        "each trial's chart: linked from the leaderboard, and shown as a linked thumbnail"
    );
    assert_eq!(
        html.matches("<tr class=").count(),
        12,
        "12 leaderboard rows"
    );
    assert!(html.contains("4 diverged"), "state counts");
    assert!(html.contains("NaN (diverged)"), "diverged values say so");
    assert!(
        html.contains("learning_rate = [0.001, 0.01, 0.1]"),
        "the spec as TOML"
    );
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "a finished sweep does not reload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_train_fraction_sweep_gets_a_learning_curve() {
    let db = TempDb::new();
    let toml = r#"
name = "sizes"
[params]
train_fraction = [0.25, 0.5, 1.0]
seed = [1, 2]
learning_rate = 0.01
batch_size = 32
epochs = 4
"#;
    let dir = run(&db, toml).await;
    let (w, h, colours) = png_summary(&dir.join("learning_curve.png"));
    assert!(w >= 1000 && h >= 600 && colours > 20, "{w}x{h}, {colours}");
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.contains("<img src=\"learning_curve.png\""));
}

/// Debian's chromium, where installed (`.ci/run` installs it and sets
/// LCURVE_REQUIRE_BROWSER=1, so there its absence fails the test).
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|name| Path::new("/usr/bin").join(name))
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("LCURVE_REQUIRE_BROWSER").is_none(),
            "LCURVE_REQUIRE_BROWSER is set but no chromium is installed"
        );
        eprintln!("skipped: no chromium in /usr/bin (install Debian's chromium to run this)");
    }
    found
}

/// A headless screenshot of `page`, 1400 px wide.
fn screenshot(browser: &Path, page: &Path, out: &Path, profile: &Path) {
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
            "--window-size=1400,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", out.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("start chromium");
    assert!(
        status.status.success() && out.exists(),
        "chromium failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// Pixels close to the charts' first colour (Tableau blue, 31,119,180), which the page's
/// own styles never use: they can only come from chart images that loaded.
fn chart_pixels(shot: &Path) -> (usize, usize) {
    let (_, _, pixels) = png_pixels(shot);
    let near = |p: &[u8; 3]| {
        p.iter()
            .zip([31u8, 119, 180])
            .all(|(a, b)| a.abs_diff(b) <= 14)
    };
    let white = pixels.iter().filter(|p| **p == [255, 255, 255]).count();
    (
        pixels.iter().filter(|p| near(p)).count(),
        pixels.len() - white,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_browser_shows_the_page_with_its_charts() {
    let Some(browser) = chromium() else {
        return;
    };
    let db = TempDb::new();
    let dir = run(&db, GRID).await;
    let work = db.dir.path();
    let shot = work.join("shot.png");
    screenshot(
        &browser,
        &dir.join("index.html"),
        &shot,
        &work.join("profile"),
    );
    let (blue, inked) = chart_pixels(&shot);
    let (w, h, _) = png_pixels(&shot);
    assert!(
        inked > (w * h / 50) as usize,
        "the page is nearly blank: {inked} inked pixels"
    );
    assert!(
        blue > 2000,
        "the charts did not load: {blue} chart-coloured pixels"
    );

    // The same page with its charts gone: the check above would have failed.
    for chart in ["curves.png", "panels.png", "summary.png", "heatmap.png"] {
        std::fs::remove_file(dir.join(chart)).unwrap();
    }
    std::fs::remove_dir_all(dir.join("trials")).unwrap();
    let broken = work.join("broken.png");
    screenshot(
        &browser,
        &dir.join("index.html"),
        &broken,
        &work.join("profile2"),
    );
    let (blue_broken, _) = chart_pixels(&broken);
    assert!(
        blue_broken < 200,
        "without charts there is no chart colour: {blue_broken}"
    );
}

/// Runs the sweep `sweep` (written to `<name>.toml`) with `args` and the synthetic trainer,
/// and returns every live page (one that reloads itself) that `index.html` was seen to hold
/// while it ran, in order; the run must succeed.
fn live_pages(dir: &Path, name: &str, sweep: &str, args: &[&str]) -> Vec<String> {
    let file = format!("{name}.toml");
    std::fs::write(dir.join(&file), sweep).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lcurve"))
        .args(["run", file.as_str()])
        .args(args)
        .current_dir(dir)
        .env_remove("LCURVE_DB")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let index = dir.join(format!("reports/{name}/index.html"));
    let mut pages: Vec<String> = Vec::new();
    while child.try_wait().unwrap().is_none() {
        if let Ok(html) = std::fs::read_to_string(&index)
            && html.contains("http-equiv=\"refresh\"")
            && pages.last() != Some(&html)
        {
            pages.push(html);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(child.wait().unwrap().success());
    pages
}

#[test]
fn the_report_fills_in_while_the_sweep_runs() {
    let db = TempDb::new();
    let dir = db.dir.path();
    // One at a time: with 2, both first trials could end together and leave only the tail,
    // whose page is drawn only once it lasts a second (`TAIL_PAGE_AFTER`), longer than this
    // sweep's; then no live page was written (seen once in CI).
    let sweep = "name = \"live\"\n[train]\nmax_parallel = 1\n[params]\nlearning_rate = [0.001, 0.01]\nbatch_size = 32\nepochs = 8\nactivation = [\"relu\", \"tanh\"]\n";
    let args = ["--synthetic-trainer", "60", "--redraw-every", "0.05"];
    let pages = live_pages(dir, "live", sweep, &args);
    let live = pages
        .last()
        .expect("index.html was written while the sweep ran");
    assert!(live.contains("<b>running</b>"), "the running page says so");
    let done = std::fs::read_to_string(dir.join("reports/live/index.html")).unwrap();
    assert!(
        !done.contains("http-equiv=\"refresh\""),
        "the finished page stops reloading"
    );
    assert!(done.contains("4 trials: 4 completed"), "{done}");
}

/// A sweep whose trials all start at once and run long gets its first live page `every`
/// after the start, before any trial ends.
#[test]
fn the_first_live_page_comes_before_any_trial_ends() {
    let db = TempDb::new();
    let sweep = "name = \"long\"\n[train]\nmax_parallel = 2\n[params]\nlearning_rate = [0.001, 0.01]\nbatch_size = 32\nepochs = 15\nactivation = \"relu\"\n";
    let args = ["--synthetic-trainer", "100", "--redraw-every", "0.2"];
    let pages = live_pages(db.dir.path(), "long", sweep, &args);
    let live = pages
        .first()
        .expect("index.html was written while the sweep ran");
    assert!(
        live.contains("2 trials: 2 running"),
        "the first page came while both trials ran: {live}"
    );
}

/// A live redraw of trials only draws each ended trial's chart once and nothing else; once
/// the run is over it draws nothing; the final redraw then adds the page and the summary
/// charts without drawing those trial charts again, and runs what it is given to run meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_redraw_draws_ended_trials_once_and_stops_when_the_run_is_over() {
    use lcurve::report::{Drawn, Live, redraw, redraw_and};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let db = TempDb::new();
    let dir = run(&db, GRID).await;
    std::fs::remove_dir_all(&dir).unwrap();
    let store = db.open().await;
    let root = db.dir.path().join("reports");
    let over = Arc::new(AtomicBool::new(false));
    let trials_only = || {
        Some(Live {
            over: over.clone(),
            page: false,
        })
    };
    let names = |written: &[PathBuf]| -> Vec<String> {
        let mut v: Vec<String> = written
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        v.sort();
        v
    };

    over.store(true, Ordering::Relaxed);
    let mut drawn = Drawn::default();
    let nothing = redraw(&store, "grid", &root, &mut drawn, trials_only())
        .await
        .unwrap();
    assert!(nothing.written.is_empty(), "{:?}", nothing.written);

    over.store(false, Ordering::Relaxed);
    let first = redraw(&store, "grid", &root, &mut drawn, trials_only())
        .await
        .unwrap();
    let expected: Vec<String> = (0..12).map(|i| format!("trials/{i:03}.png")).collect();
    assert_eq!(names(&first.written), expected);
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    assert!(
        !dir.join("index.html").exists(),
        "no page from a trials-only redraw"
    );
    let again = redraw(&store, "grid", &root, &mut drawn, trials_only())
        .await
        .unwrap();
    assert!(again.written.is_empty(), "{:?}", again.written);

    // The final redraw, with work to do while it draws (the run settles the database log).
    let ran = AtomicBool::new(false);
    let meanwhile = async { ran.store(true, Ordering::Relaxed) };
    let last = redraw_and(&store, "grid", &root, &mut drawn, None, meanwhile)
        .await
        .unwrap();
    assert!(ran.load(Ordering::Relaxed), "what runs meanwhile has run");
    let written = names(&last.written);
    assert!(written.contains(&"index.html".to_string()), "{written:?}");
    assert!(written.contains(&"curves.png".to_string()), "{written:?}");
    assert!(
        !written.iter().any(|w| w.starts_with("trials/")),
        "{written:?}"
    );
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        page.contains("trials/011.png"),
        "the page links every trial chart"
    );
}
