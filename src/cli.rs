//! Argument definitions and the command handlers: each parses, calls the library, and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};

use lcurve::inspect;
use lcurve::lock::RunLock;
use lcurve::output::Format;
use lcurve::report::write_report;
use lcurve::run::{
    RunOptions, check_size, describe_data, head_start, prepare_data, run_sweep, run_sweep_begun,
};
use lcurve::scheduler::Progress;
use lcurve::spec::{self, Choice as _, DEFAULT_MAX_TRIALS};
use lcurve::store::{ClaimedTrial, SqliteStore, Store, TrialOutcome};
use lcurve::trainer::{MlpTrainer, SyntheticTrainer};

/// How many trials `lcurve show` prints as a table when no --limit is given.
const SHOW_TABLE_ROWS: usize = 50;

/// Prints a line to stdout; a closed pipe (`lcurve show x | head`) ends the program quietly
/// instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

#[derive(Parser)]
#[command(
    name = "lcurve",
    version,
    about = "Learning-curve sweeps: a TOML search space trained with burn, every epoch in SQLite, charts as PNG.",
    long_about = "lcurve trains every trial of a search space written in TOML (grids, random search, \
conditional parameters; built-in datasets or a CSV file), several at once, stores every epoch's \
losses and metrics in one SQLite file, stops trials early by rules or ASHA (recording why), \
and writes a report under reports/<sweep>/: index.html with the leaderboard and every chart, \
redrawn while the sweep runs.\n\n\
Examples:\n  lcurve run sweeps/quickstart.toml\n  lcurve plan sweeps/random.toml\n  lcurve ls\n  \
lcurve show quickstart --sort best_val_accuracy\n  lcurve trial quickstart 2\n  \
lcurve compare digits-reference digits-asha\n  \
lcurve query \"select ordinal, activation, best_val_loss from trial_summary order by best_val_loss\"\n  \
lcurve completions bash > ~/.local/share/bash-completion/completions/lcurve"
)]
pub struct Cli {
    /// SQLite database file; created on first `run`.
    #[arg(long, global = true, env = "LCURVE_DB", default_value = "lcurve.db")]
    db: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a sweep, or resume it: finished trials are skipped, interrupted ones run again.
    ///
    /// Example: lcurve run sweeps/digits.toml
    Run {
        /// The sweep file (TOML); see sweeps/README.md for every key.
        sweep: PathBuf,
        /// Folder in which the charts go, under a subfolder named after the sweep.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// If a sweep of this name is stored with a different spec, delete it and its results
        /// and start again (without this, such a run is refused).
        #[arg(long)]
        replace: bool,
        /// Refuse sweeps with more trials than this.
        #[arg(long, default_value_t = DEFAULT_MAX_TRIALS)]
        max_trials: usize,
        /// Redraw the report (charts and index.html) as trials end, at most every this many
        /// seconds, so it fills in while the sweep runs (the first page comes this long after
        /// the start even if no trial has ended); 0 draws it only at the end.
        #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
        redraw_every: f64,
        /// How often, in seconds, to print the running trials' epochs when stderr is not a
        /// terminal (a pipe or CI log); on a terminal they are redrawn in place.
        #[arg(long, default_value_t = 10.0, value_name = "SECONDS", hide = true)]
        progress_every: f64,
        /// Testing aid: train with a synthetic trainer (closed-form curves) that takes this
        /// many milliseconds per epoch, instead of burn.
        #[arg(long, hide = true, value_name = "MS")]
        synthetic_trainer: Option<u64>,
    },
    /// Check a sweep file and its data, and list the trials it would run, how many are already
    /// finished, and the work in trial-epochs; changes nothing.
    ///
    /// Example: lcurve plan sweeps/random.toml --limit 10
    Plan {
        /// The sweep file (TOML).
        sweep: PathBuf,
        /// List at most this many trials (the count and the work cover all of them).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Refuse sweeps with more trials than this.
        #[arg(long, default_value_t = DEFAULT_MAX_TRIALS)]
        max_trials: usize,
    },
    /// Redraw a sweep's charts from the database alone.
    ///
    /// Example: lcurve report digits-reference
    Report {
        /// The sweep's name (see `lcurve ls`).
        name: String,
        /// Folder in which the charts go, under a subfolder named after the sweep.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// Replay stopping policies on a sweep's stored curves and compare what each would have
    /// cost (trial-epochs) and found (regret against the best of the full curves). Run the
    /// sweep without [stopping] first, so the curves are complete. Writes
    /// reports/<sweep>/replay.png (compute against regret).
    ///
    /// A policy is `full`, `patience[:patience=5,min_delta=0.0001,warmup=0]`,
    /// `median[:warmup=5,min_peers=4,percentile=50]`, `threshold:after_epoch=3,worse_than=1.5`,
    /// `extrapolation[:warmup=5,min_probability=0.05]` or `iepoch[:epoch=3,top=4]`
    /// (every trial to epoch 3, then the best 4 to the end); join rules with `+`.
    ///
    /// Example: lcurve replay digits-full --policy median:warmup=3 --policy iepoch:epoch=3,top=4
    Replay {
        /// The sweep's name (see `lcurve ls`).
        name: String,
        /// A policy to replay; repeat for several. Default: a standard set.
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Trials at once in the simulation (as `max_parallel` in a sweep file).
        #[arg(long, default_value_t = 2)]
        max_parallel: usize,
        /// The metric to score (default: the sweep's stopping metric, else val_loss).
        #[arg(long)]
        metric: Option<String>,
        /// Folder in which the chart goes, under a subfolder named after the sweep.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
    },
    /// List sweeps with their trial counts by state.
    ///
    /// Example: lcurve ls --format csv
    Ls {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show a sweep's leaderboard, best validation loss first: the hyperparameters that vary,
    /// best and stored metrics, epochs run, state and stop reason.
    ///
    /// Examples: lcurve show quickstart --limit 5
    ///           lcurve show digits-reference --sort best_val_accuracy --format csv
    Show {
        /// The sweep's name (see `lcurve ls`).
        name: String,
        /// Show at most this many trials [default: 50 as a table, all as CSV or JSON].
        #[arg(long)]
        limit: Option<usize>,
        /// Sort by this column (best first for metrics, ascending otherwise).
        #[arg(long)]
        sort: Option<String>,
        /// Reverse the order.
        #[arg(long)]
        reverse: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show one trial: every setting it was trained with, its curve epoch by epoch, and its
    /// stopping decisions.
    ///
    /// Example: lcurve trial quickstart 2
    Trial {
        /// The sweep's name (see `lcurve ls`).
        name: String,
        /// The trial's ordinal (the `#` column of `lcurve show`).
        ordinal: usize,
        /// table: all three parts; csv: the curve; json: one object with all three.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Compare two sweeps: their leaderboards side by side, best validation loss first, and
    /// the best curves of each on one chart (reports/compare-A-vs-B.png).
    ///
    /// Example: lcurve compare digits-reference digits-asha --limit 5
    Compare {
        /// The first sweep's name.
        a: String,
        /// The second sweep's name.
        b: String,
        /// Show this many of each.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Draw this many best curves of each sweep on the chart.
        #[arg(long, default_value_t = 3)]
        curves: usize,
        /// Folder in which the chart goes.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Export a sweep's stored metrics with the hyperparameters that vary, for pandas, R or a
    /// spreadsheet: long (a row per trial, epoch and metric) or --wide (a row per trial and
    /// epoch).
    ///
    /// Example: lcurve export digits-reference --format csv --wide > curves.csv
    Export {
        /// The sweep's name (see `lcurve ls`).
        name: String,
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
        /// One row per trial and epoch, a column per metric.
        #[arg(long)]
        wide: bool,
    },
    /// Print a shell completion script.
    ///
    /// Examples: lcurve completions bash > ~/.local/share/bash-completion/completions/lcurve
    ///           lcurve completions zsh > ~/.zfunc/_lcurve
    ///           lcurve completions fish > ~/.config/fish/completions/lcurve.fish
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Run one SQL statement on a read-only connection and print the rows.
    ///
    /// Tables: sweeps, trials, metrics, decisions; views: trial_summary, epoch_metrics
    /// (see README.md). Writes are refused.
    ///
    /// Example: lcurve query "select * from trial_summary order by best_val_loss limit 5"
    Query {
        /// One SQL statement, e.g. "select * from trial_summary".
        sql: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

pub async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            sweep,
            reports,
            replace,
            max_trials,
            redraw_every,
            progress_every,
            synthetic_trainer,
        } => {
            run(
                &cli.db,
                &sweep,
                RunOptions {
                    reports,
                    replace,
                    max_trials,
                    live_report: (redraw_every > 0.0 && redraw_every.is_finite())
                        .then(|| std::time::Duration::from_secs_f64(redraw_every)),
                    close: true,
                },
                synthetic_trainer,
                std::time::Duration::from_secs_f64(progress_every.clamp(0.0, 1e6)),
            )
            .await
        }
        Command::Plan {
            sweep,
            limit,
            max_trials,
        } => plan(&cli.db, &sweep, max_trials, limit).await,
        Command::Report { name, reports } => {
            let store = open_existing(&cli.db).await?;
            print_report(&write_report(&store, &name, &reports).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            name,
            policies,
            max_parallel,
            metric,
            reports,
        } => {
            let store = open_existing(&cli.db).await?;
            replay(
                &store,
                &name,
                &policies,
                max_parallel,
                metric.as_deref(),
                &reports,
            )
            .await
        }
        Command::Ls { format } => {
            let store = open_existing(&cli.db).await?;
            say!(
                "{}",
                inspect::sweeps_rows(&store.sweeps().await?).render(format)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Show {
            name,
            limit,
            sort,
            reverse,
            format,
        } => {
            let store = open_existing(&cli.db).await?;
            let sweep = store.sweep(&name).await?;
            let (trials, scores) = store.trials_with_scores(sweep.id).await?;
            // A table is for reading: the top of a 10,000-trial sweep, not all of it.
            let shown = limit.or((format == Format::Table).then_some(SHOW_TABLE_ROWS));
            let rows = inspect::leaderboard_rows(&trials, &scores, sort.as_deref(), reverse, shown)
                .map_err(anyhow::Error::msg)?;
            let mut out = rows.render(format);
            if limit.is_none() && rows.rows.len() < trials.len() {
                out.push_str(&format!(
                    "\n... and {} more trials (--limit {} lists them all)",
                    trials.len() - rows.rows.len(),
                    trials.len()
                ));
            }
            say!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Trial {
            name,
            ordinal,
            format,
        } => {
            let store = open_existing(&cli.db).await?;
            trial(&store, &name, ordinal, format).await
        }
        Command::Compare {
            a,
            b,
            limit,
            curves,
            reports,
            format,
        } => {
            let store = open_existing(&cli.db).await?;
            let (sa, sb) = (store.sweep(&a).await?, store.sweep(&b).await?);
            let (ta, scores_a) = store.trials_with_scores(sa.id).await?;
            let (tb, scores_b) = store.trials_with_scores(sb.id).await?;
            let rows = inspect::compare_rows((&a, &ta, &scores_a), (&b, &tb, &scores_b), limit);
            say!("{}", rows.render(format));
            let sides = [(&sa, ta.as_slice()), (&sb, tb.as_slice())];
            match lcurve::report::write_compare(&store, sides, curves, &reports).await? {
                Ok(path) => {
                    eprintln!("chart: {}", path.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Export { name, format, wide } => {
            let store = open_existing(&cli.db).await?;
            let sweep = store.sweep(&name).await?;
            let (trials, metrics) = (
                store.trials(sweep.id).await?,
                store.metrics(sweep.id).await?,
            );
            say!(
                "{}",
                inspect::export_rows(&trials, &metrics, wide).render(format)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "lcurve", &mut out);
            say!("{}", String::from_utf8_lossy(&out).trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Query { sql, format } => {
            let store = open_existing(&cli.db).await?;
            let rows = inspect::query_rows(store.pool(), &sql).await.map_err(|e| {
                let code = e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .and_then(|c| c.parse::<i64>().ok());
                // SQLITE_READONLY, or SQLITE_IOERR from a journal change on a read-only file.
                if matches!(code.map(|c| c & 0xff), Some(8 | 10)) {
                    anyhow::anyhow!(
                        "the query failed: lcurve query only reads (the database is opened read-only, so nothing can be changed by mistake); use sqlite3 to change data ({e})"
                    )
                } else {
                    anyhow::anyhow!("the query failed: {e}")
                }
            })?;
            match format {
                Format::Table if rows.rows.is_empty() => say!("(no rows)"),
                Format::Table => say!("{}\n({} rows)", rows.render(format), rows.rows.len()),
                _ => say!("{}", rows.render(format)),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn trial(
    store: &SqliteStore,
    name: &str,
    ordinal: usize,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let sweep = store.sweep(name).await?;
    let trials = store.trials(sweep.id).await?;
    let Some(t) = trials.iter().find(|t| t.ordinal == ordinal) else {
        anyhow::bail!(
            "sweep `{name}` has no trial {ordinal} (its trials are 0 to {}; see `lcurve show {name}`)",
            trials.len().saturating_sub(1)
        );
    };
    let points = store.trial_metrics(&[t.id]).await?;
    let config = inspect::trial_config_rows(t);
    let curve = inspect::curve_rows(&points);
    let decisions = inspect::query_rows(
        store.pool(),
        &format!(
            "SELECT epoch, rule, action, reason, details FROM decisions
             WHERE trial_id = {} AND action <> 'continue' ORDER BY epoch, id",
            t.id
        ),
    )
    .await?;
    match format {
        Format::Table => {
            say!(
                "trial {ordinal} of `{name}`: {} after {} epochs{}",
                t.state.as_str(),
                t.epochs_run.unwrap_or(0),
                t.stop_reason
                    .as_ref()
                    .map_or(String::new(), |r| format!(" ({r})"))
            );
            say!("{}", config.render(format));
            say!("{}", curve.render(format));
            if decisions.rows.is_empty() {
                say!("no stopping decisions other than continue");
            } else {
                say!("{}", decisions.render(format));
            }
        }
        Format::Csv => say!("{}", curve.render(format)),
        Format::Json => {
            let parse = |r: &lcurve::output::Rows| {
                serde_json::from_str::<serde_json::Value>(&r.render(Format::Json))
                    .unwrap_or_default()
            };
            let doc = serde_json::json!({
                "sweep": name,
                "ordinal": ordinal,
                "state": t.state.as_str(),
                "config": t.config,
                "curve": parse(&curve),
                "decisions": parse(&decisions),
            });
            say!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn open_existing(db: &Path) -> anyhow::Result<SqliteStore> {
    if !db.exists() {
        anyhow::bail!(
            "no database at {}; run a sweep first (lcurve run sweeps/quickstart.toml) or pass --db",
            db.display()
        );
    }
    SqliteStore::open_read_only(db)
        .await
        .with_context(|| format!("cannot open {}", db.display()))
}

async fn run(
    db: &Path,
    path: &Path,
    opts: RunOptions,
    synthetic_ms: Option<u64>,
    progress_every: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    // Everything about the file is checked before the database is touched.
    let mut spec = spec::load(path)?;
    check_size(&spec, path, opts.max_trials)?;
    let split = Arc::new(prepare_data(&mut spec, path)?);
    // A database not made yet holds no sweep to resume: the first trials begin training
    // while it is made (see `run::head_start`).
    let begun = match synthetic_ms {
        None if !db.exists() => {
            let trainer = Arc::new(MlpTrainer::shared(split.clone()));
            let head = head_start(&spec, &trainer);
            Some((trainer, head))
        }
        _ => None,
    };
    let store = SqliteStore::open(db).await?;
    // One process per sweep and database: a second would re-queue the first one's trials.
    let _lock = RunLock::acquire(db, spec.name.as_str())?;
    let started = Instant::now();
    eprintln!(
        "sweep `{}`: {} trials, up to {} at once; database {}",
        spec.name,
        spec::trial_count(&spec),
        spec.train.max_parallel,
        db.display()
    );
    eprintln!("{}", describe_data(&split.record));
    let mut progress = Printer {
        plain_every: progress_every,
        ..Printer::default()
    };
    let cancel = async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\ninterrupted: finishing the current epochs, then stopping; rerun the same command to resume (Ctrl-C again to quit at once)"
            );
            tokio::spawn(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    // Everything committed so far is kept; trials left `running` are re-queued
                    // by the next run, which starts them again.
                    eprintln!(
                        "interrupted twice: quitting now; finished trials are kept, rerun to continue"
                    );
                    std::process::exit(130);
                }
            });
        } else {
            std::future::pending::<()>().await;
        }
    };
    let record = Some(&split.record);
    let result = match synthetic_ms {
        // A stand-in trainer with closed-form curves, for tests that kill the process.
        Some(ms) => {
            let trainer = || {
                Ok(SyntheticTrainer {
                    epoch_delay: std::time::Duration::from_millis(ms),
                    ..SyntheticTrainer::default()
                })
            };
            run_sweep(&store, &spec, record, trainer, &opts, &mut progress, cancel).await
        }
        None => match begun {
            Some(begun) => {
                run_sweep_begun(&store, &spec, record, begun, &opts, &mut progress, cancel).await
            }
            None => {
                let trainer = || Ok(MlpTrainer::shared(split.clone()));
                run_sweep(&store, &spec, record, trainer, &opts, &mut progress, cancel).await
            }
        },
    };
    progress.clear();
    let result = result?;
    store.close().await;
    if result.engine != spec.train.engine {
        eprintln!(
            "sweep `{}` was begun by an older lcurve on the {} engine and continues on it; to retrain it on the {} engine, add engine = \"{}\" under [train] and pass --replace",
            spec.name.as_str(),
            result.engine.name(),
            spec.train.engine.name(),
            spec.train.engine.name()
        );
    }
    if result.already_done > 0 {
        eprintln!(
            "{} of {} trials were already finished and were skipped",
            result.already_done, result.total
        );
    }
    let mut counts: Vec<String> = result
        .summary
        .finished
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    counts.sort();
    eprintln!(
        "done in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        if counts.is_empty() {
            "nothing to run".into()
        } else {
            counts.join(", ")
        }
    );
    print_report(&result.report);
    if result.summary.interrupted > 0 {
        eprintln!(
            "{} trials were interrupted and will run again on the next `lcurve run`",
            result.summary.interrupted
        );
        return Ok(ExitCode::from(130));
    }
    eprintln!(
        "next: lcurve show {}   |   lcurve query \"select * from trial_summary\"",
        spec.name
    );
    Ok(if result.report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn replay(
    store: &SqliteStore,
    name: &str,
    policies: &[String],
    max_parallel: usize,
    metric: Option<&str>,
    reports: &Path,
) -> anyhow::Result<ExitCode> {
    use lcurve::replay::{default_policies, parse_policy, replay, stored_curves, truncated};
    use lcurve::spec::{Choice, Metric};
    let sweep = store.sweep(name).await?;
    let stored_metric = serde_json::from_str::<serde_json::Value>(&sweep.spec)
        .ok()
        .and_then(|s| s["stopping"]["metric"].as_str().map(String::from));
    let metric_name = metric
        .map(String::from)
        .or(stored_metric)
        .unwrap_or("val_loss".into());
    let metric = Metric::parse(&metric_name).ok_or_else(|| {
        anyhow::anyhow!(
            "--metric {metric_name:?} is not known (accepted: {})",
            Metric::accepted()
        )
    })?;
    let trials = store.trials(sweep.id).await?;
    let curves = stored_curves(&trials, &store.metrics(sweep.id).await?);
    if curves.is_empty() {
        anyhow::bail!("sweep `{name}` has no stored curves yet; run it first");
    }
    let max_epochs = curves.iter().map(|c| c.planned_epochs).max().unwrap_or(1);
    let policies = if policies.is_empty() {
        default_policies(metric, max_epochs)
    } else {
        policies
            .iter()
            .map(|p| parse_policy(p, metric).map_err(|e| anyhow::anyhow!("--policy {p:?}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let cut = truncated(&curves);
    if cut > 0 {
        eprintln!(
            "note: {cut} of {} trials stopped before their planned epochs in the stored run; \
             replay treats those curves as complete (run the sweep without [stopping] for full curves)",
            curves.len()
        );
    }
    let outcomes = replay(&policies, &curves, max_parallel, metric);
    let best = format!("best {}", metric.name());
    let mut t = lcurve::output::Rows::new(&[
        "policy",
        "trial-epochs",
        "of full grid",
        "best trial kept",
        &best,
        "regret",
    ]);
    for o in &outcomes {
        t.rows.push(
            [
                o.policy.clone(),
                o.trial_epochs.to_string(),
                format!("{:.1}%", 100.0 * o.fraction),
                if o.top1_kept { "yes" } else { "no" }.to_string(),
                format!("{:.4}", o.best_found),
                format!("{:.4}", o.regret),
            ]
            .map(lcurve::output::Cell::Text)
            .to_vec(),
        );
    }
    say!("{}", t.render(Format::Table));
    say!(
        "{} trials, {} stored trial-epochs, {max_parallel} at once; metric {}",
        curves.len(),
        curves.iter().map(|c| c.curve.len()).sum::<usize>(),
        metric.name()
    );
    let points: Vec<lcurve::report::ReplayPoint> = outcomes
        .iter()
        .map(|o| lcurve::report::ReplayPoint {
            label: o.policy.clone(),
            compute: o.fraction,
            regret: o.regret,
            top1_kept: o.top1_kept,
        })
        .collect();
    let dir = lcurve::report::ReportPaths::new(reports, &sweep.name)
        .dir()
        .to_path_buf();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the report folder {}", dir.display()))?;
    let png = dir.join("replay.png");
    lcurve::report::draw_replay(&sweep.name, metric.name(), &points, &png)
        .map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", png.display()))?;
    eprintln!("chart: {}", png.display());
    Ok(ExitCode::SUCCESS)
}

async fn plan(db: &Path, path: &Path, max_trials: usize, limit: usize) -> anyhow::Result<ExitCode> {
    let mut spec = spec::load(path)?;
    check_size(&spec, path, max_trials)?;
    let split = prepare_data(&mut spec, path)?;
    let planned = spec::expand(&spec)?;
    let stored = if db.exists() {
        let store = SqliteStore::open_read_only(db).await?;
        match store.sweep(spec.name.as_str()).await {
            Ok(s) => store.trials(s.id).await?,
            Err(_) => Vec::new(),
        }
    } else {
        Vec::new()
    };
    say!("{}", describe_data(&split.record));
    say!("{}", inspect::plan_table(&planned, &stored, limit));
    let epochs: usize = planned.iter().map(|p| p.config.epochs).sum();
    let finished: std::collections::HashSet<String> = stored
        .iter()
        .filter(|t| t.state.is_finished())
        .map(|t| t.config.hash())
        .collect();
    let done: Vec<&spec::PlannedTrial> = planned
        .iter()
        .filter(|p| finished.contains(&p.config.hash()))
        .collect();
    let done_epochs: usize = done.iter().map(|p| p.config.epochs).sum();
    let place = if db.exists() {
        format!("in {}", db.display())
    } else {
        format!("(no database at {} yet)", db.display())
    };
    say!(
        "{} trials, {} already finished {place}; work: at most {epochs} trial-epochs ({} left), fewer when early stopping ends trials sooner",
        planned.len(),
        done.len(),
        epochs - done_epochs
    );
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &lcurve::report::ReportOutcome) {
    if !report.written.is_empty() {
        let kept = match report.kept {
            0 => String::new(),
            1 => ", and 1 trial chart drawn while it ran".to_string(),
            n => format!(", and {n} trial charts drawn while it ran"),
        };
        eprintln!(
            "report: {} ({} files written{kept})",
            report.dir.join("index.html").display(),
            report.written.len()
        );
    }
    for failure in &report.failed {
        eprintln!("error: {failure} (the data is safe in the database; rerun `lcurve report`)");
    }
}

/// A running trial as the progress lines show it.
struct Status {
    label: String,
    epoch: usize,
    epochs: usize,
    val_loss: f64,
}

/// Prints one line per trial start and end, and the running trials' epochs: on a terminal as
/// a block of lines redrawn in place (one per running trial); otherwise (CI logs, pipes) as
/// plain lines, at most every 10 seconds. What one event prints goes out in one write:
/// `eprintln!` wrote each line and its newline apart (stderr has no buffer), 2-6 system
/// calls per trial start or end, on the thread that runs the scheduler.
struct Printer {
    total: usize,
    done: usize,
    /// When this run began, and how many trials it has finished (for the ETA).
    since: Option<Instant>,
    done_here: usize,
    tty: bool,
    live: std::collections::BTreeMap<usize, Status>,
    /// Lines of the live block now on the terminal.
    shown: usize,
    last_block: Instant,
    last_plain: Instant,
    /// How often plain (not a terminal) status lines are printed.
    plain_every: std::time::Duration,
    /// What the event being handled prints, written at its end by [`Printer::flush`].
    out: String,
}

impl Default for Printer {
    fn default() -> Self {
        use std::io::IsTerminal as _;
        Self {
            total: 0,
            done: 0,
            since: None,
            done_here: 0,
            tty: std::io::stderr().is_terminal(),
            live: std::collections::BTreeMap::new(),
            shown: 0,
            last_block: Instant::now(),
            last_plain: Instant::now(),
            plain_every: std::time::Duration::from_secs(10),
            out: String::new(),
        }
    }
}

impl Printer {
    /// `, about 12s left`: this run's pace so far times the trials still to finish.
    fn eta(&self) -> String {
        let (Some(since), left) = (self.since, self.total.saturating_sub(self.done)) else {
            return String::new();
        };
        if left == 0 || self.done_here == 0 {
            return String::new();
        }
        let secs = since.elapsed().as_secs_f64() / self.done_here as f64 * left as f64;
        if secs < 90.0 {
            format!(", about {secs:.0}s left")
        } else {
            format!(", about {:.0} min left", secs / 60.0)
        }
    }

    fn status_lines(&self) -> Vec<String> {
        self.live
            .iter()
            .map(|(ordinal, s)| {
                let loss = if s.epoch == 0 {
                    "starting".to_string()
                } else {
                    format!("val_loss {:.4}", s.val_loss)
                };
                format!(
                    "    #{ordinal:<3} epoch {:>3}/{:<3} {loss}   {}",
                    s.epoch, s.epochs, s.label
                )
            })
            .collect()
    }

    /// Removes the live block from the terminal.
    fn clear(&mut self) {
        self.unshow();
        self.flush();
    }

    /// Adds what moves the cursor back over the live block and erases it.
    fn unshow(&mut self) {
        if self.tty && self.shown > 0 {
            use std::fmt::Write as _;
            let _ = write!(self.out, "\x1b[{}F\x1b[J", self.shown);
            self.shown = 0;
        }
    }

    fn draw_block(&mut self) {
        if self.tty {
            let lines = self.status_lines();
            self.push_lines(&lines);
            self.shown = lines.len();
            self.last_block = Instant::now();
        }
    }

    fn push_lines(&mut self, lines: &[String]) {
        for l in lines {
            self.out.push_str(l);
            self.out.push('\n');
        }
    }

    /// Writes what the event printed, in one write; a failed write (stderr closed) is
    /// ignored, as progress is not the run's result.
    fn flush(&mut self) {
        use std::io::Write as _;
        if !self.out.is_empty() {
            let _ = std::io::stderr().lock().write_all(self.out.as_bytes());
            self.out.clear();
        }
    }

    /// A line that stays (start, end, pause), printed above the live block.
    fn line(&mut self, text: &str) {
        self.unshow();
        self.out.push_str(text);
        self.out.push('\n');
        self.draw_block();
        self.flush();
    }
}

impl Progress for Printer {
    fn paused(&mut self, ordinal: usize, label: &str, epoch: usize, running: &[usize]) {
        self.live.remove(&ordinal);
        self.line(&format!(
            "  pause  #{ordinal:<3} {label}: at epoch {epoch} (ASHA rung; may be promoted later)   running: {running:?}"
        ));
    }

    fn begin(&mut self, total: usize, already_finished: usize) {
        self.total = total;
        self.done = already_finished;
        self.since = Some(Instant::now());
    }

    fn started(&mut self, trial: &ClaimedTrial, running: &[usize]) {
        let again = if trial.attempt > 1 {
            format!(" (attempt {})", trial.attempt)
        } else {
            String::new()
        };
        let label = trial.config.label();
        self.live.insert(
            trial.ordinal,
            Status {
                label: label.clone(),
                epoch: 0,
                epochs: trial.config.epochs,
                val_loss: f64::NAN,
            },
        );
        self.line(&format!(
            "  start  #{:<3} {label}{again}   running: {running:?}",
            trial.ordinal
        ));
    }

    fn finished(&mut self, ordinal: usize, label: &str, o: &TrialOutcome, running: &[usize]) {
        self.done += 1;
        self.done_here += 1;
        self.live.remove(&ordinal);
        let best = o
            .best
            .map_or("-".into(), |(e, v)| format!("{v:.4} at epoch {e}"));
        let text = format!(
            "[{:>3}/{}] #{ordinal:<3} {label}: {} after {} epochs, best {best}{}   running: {running:?}{}",
            self.done,
            self.total,
            o.state.as_str(),
            o.epochs_run,
            o.error
                .as_ref()
                .map_or(String::new(), |e| format!(" ({e})")),
            self.eta()
        );
        self.line(&text);
    }

    fn epoch(&mut self, e: &lcurve::scheduler::EpochProgress) {
        if let Some(s) = self.live.get_mut(&e.ordinal) {
            s.epoch = e.epoch;
            s.epochs = e.epochs;
            s.val_loss = e.val_loss;
        }
        if self.tty {
            if self.last_block.elapsed() >= std::time::Duration::from_millis(100) {
                self.unshow();
                self.draw_block();
                self.flush();
            }
        } else if self.last_plain.elapsed() >= self.plain_every {
            self.last_plain = Instant::now();
            let lines = self.status_lines();
            self.push_lines(&lines);
            self.flush();
        }
    }
}
