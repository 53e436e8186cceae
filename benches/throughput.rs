//! The performance figures in README "Performance", each printed with its unit: an epoch
//! against the arithmetic bound, a whole sweep's overhead, concurrency, metric ingest, a
//! 10,000-trial database, stopping decisions and start-up time.
//!
//! Run all: `cargo bench --bench throughput`. One section: `cargo bench --bench throughput --
//! epochs` (sections: epochs, sweep, overhead, concurrency, store, scale, decisions,
//! startup). burn's deprecated ndarray backend: `cargo bench --features ndarray --bench
//! throughput -- epochs ndarray`.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::tensor::{Device, Distribution, Tensor};
use lcurve::run::{RunOptions, head_start, prepare_data, run_sweep_begun};
use lcurve::spec::Engine;
use lcurve::spec::{Choice as _, SweepSpec, expand, load, parse};
use lcurve::store::{SqliteStore, Store, TrialOutcome, TrialState, Write};
use lcurve::trainer::{BurnTrainer, Control, EpochReport, FusedTrainer, MlpTrainer, Trainer};

const EPOCHS: usize = 15;
/// The issue's measured float32 GEMM peak on this kind of machine, one core.
const ISSUE_PEAK_GFLOPS: f64 = 250.0;
/// The Python reference: the 32-trial digits grid with two worker processes (issue 7).
const PYTHON_TWO_PROCESSES_S: f64 = 5.8;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let backend = if args.iter().any(|a| a == "ndarray") {
        "ndarray"
    } else {
        "flex"
    };
    let sections = [
        "epochs",
        "sweep",
        "overhead",
        "concurrency",
        "store",
        "scale",
        "decisions",
        "startup",
        "process",
    ];
    let chosen: Vec<&str> = sections
        .iter()
        .copied()
        .filter(|s| args.iter().any(|a| a == s))
        .collect();
    let want = |s: &str| chosen.is_empty() || chosen.contains(&s);
    // `rounds=N`: the sweep section's rounds (9 unless given; more for a steadier median).
    // `epochs=N`: its trials train N epochs each instead of the sweep file's 30, to see which
    // part of the overhead is per epoch and which is per sweep.
    let number = |key: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(key)?.parse::<usize>().ok())
            .filter(|&n| n > 0)
    };
    let (rounds, epochs_each) = (number("rounds="), number("epochs="));
    println!(
        "lcurve {} on {} cores ({})",
        env!("CARGO_PKG_VERSION"),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::consts::ARCH
    );
    if want("epochs") {
        epochs("fused");
        epochs(backend);
    }
    if want("sweep") {
        sweep(Engine::Fused, rounds.unwrap_or(9), epochs_each);
        // `-- sweep fused`: the fused engine alone.
        if !args.iter().any(|a| a == "fused") {
            sweep(Engine::Burn, 3, epochs_each);
        }
    }
    if want("overhead") {
        overhead(15);
    }
    if want("concurrency") {
        concurrency();
    }
    if want("store") {
        store_rate();
    }
    if want("scale") {
        scale();
    }
    if want("decisions") {
        decision_cost();
    }
    if want("startup") {
        startup();
    }
    if want("process") {
        process_runs(15, Duration::from_secs(3));
    }
    // The runs' folders go only now: see `keep`.
    KEPT.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

fn digits(extra: &str) -> (SweepSpec, lcurve::data::Split) {
    let mut spec = parse(
        Path::new("bench.toml"),
        &format!("name = \"bench\"\nseed = 7\n[params]\nhidden = [128]\n{extra}"),
    )
    .expect("the bench spec parses");
    let split = prepare_data(&mut spec, Path::new("bench.toml")).expect("digits loads");
    (spec, split)
}

/// The float32 multiply-add peak of the calling thread's core, GFLOP/s (best of 5 runs of
/// 12 independent chains of FMAs, as wide as the CPU has), and which instructions: the most
/// that any GEMM can reach on it.
fn fma_peak() -> Option<(f64, &'static str)> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        const STEPS: usize = 20_000_000;
        // Each chain is `a = a * x + y`; `black_box` keeps the chains from being folded away.
        #[target_feature(enable = "avx512f")]
        fn avx512() {
            let mut acc = [_mm512_set1_ps(1.0); 12];
            let x = _mm512_set1_ps(std::hint::black_box(0.999_999));
            let y = _mm512_set1_ps(std::hint::black_box(1e-7));
            for _ in 0..STEPS {
                for a in &mut acc {
                    *a = _mm512_fmadd_ps(*a, x, y);
                }
            }
            std::hint::black_box(acc);
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2() {
            let mut acc = [_mm256_set1_ps(1.0); 12];
            let x = _mm256_set1_ps(std::hint::black_box(0.999_999));
            let y = _mm256_set1_ps(std::hint::black_box(1e-7));
            for _ in 0..STEPS {
                for a in &mut acc {
                    *a = _mm256_fmadd_ps(*a, x, y);
                }
            }
            std::hint::black_box(acc);
        }
        let (run, lanes, kind): (fn(), usize, &str) =
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512, checked just above.
                (|| unsafe { avx512() }, 16, "AVX-512")
            } else if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA, checked just above.
                (|| unsafe { avx2() }, 8, "AVX2")
            } else {
                return None;
            };
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let started = Instant::now();
            run();
            best = best.min(started.elapsed().as_secs_f64());
        }
        Some(((STEPS * 12 * lanes * 2) as f64 / best / 1e9, kind))
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// Float32 GEMM throughput of the backend on one thread, GFLOP/s (best of 10 512x512
/// products).
fn gemm_peak(device: &Device) -> f64 {
    let n = 512;
    let a = Tensor::<2>::random([n, n], Distribution::Default, device);
    let b = Tensor::<2>::random([n, n], Distribution::Default, device);
    let mut best = f64::INFINITY;
    for _ in 0..10 {
        let started = Instant::now();
        let c = a.clone().matmul(b.clone());
        std::hint::black_box(c.into_data());
        best = best.min(started.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}

/// Epoch times on one engine: `fused`, or burn on `flex` (or `ndarray`).
fn epochs(engine: &str) {
    let (spec, split) = digits(&format!(
        "learning_rate = 1e-3\nbatch_size = [16, 64, 256]\nepochs = {EPOCHS}\n"
    ));
    let device = match engine {
        #[cfg(feature = "ndarray")]
        "ndarray" => lcurve::trainer::ndarray_device(),
        _ => Device::flex(),
    };
    let trainer: Box<dyn Trainer> = match engine {
        "fused" => Box::new(FusedTrainer::new(&split)),
        _ => Box::new(BurnTrainer::with_device(&split, device.clone())),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let peak = pool.install(|| gemm_peak(&device));
    // The core's peak is the same for both engines: measured and printed once.
    let fma = if engine == "fused" { fma_peak() } else { None };
    // Forward 2 FLOP per weight per sample, backward twice that; validation forward only.
    let weights = (64 * 128 + 128 * 10) as f64;
    let (train, valid) = (split.train.rows() as f64, split.valid.rows() as f64);
    let flop = 6.0 * weights * train + 2.0 * weights * valid;
    let bound_ms = flop / (ISSUE_PEAK_GFLOPS * 1e9) * 1e3;
    let name = if engine == "fused" {
        "fused engine".to_string()
    } else {
        format!("burn engine, {engine} backend")
    };
    println!(
        "epochs ({name}): digits MLP [64 -> 128 -> 10], Adam, {train} training + {valid} validation rows, 1 thread"
    );
    println!(
        "  arithmetic: {:.1} MFLOP per epoch; bound {bound_ms:.3} ms at the issue's {ISSUE_PEAK_GFLOPS:.0} GFLOP/s (GEMM measured here now: {peak:.0} GFLOP/s, bound {:.3} ms)",
        flop / 1e6,
        flop / (peak * 1e9) * 1e3
    );
    if let Some((gflops, kind)) = fma {
        println!(
            "  this core's float32 FMA peak ({kind}, 12 independent chains): {gflops:.0} GFLOP/s, a bound of {:.3} ms per epoch",
            flop / (gflops * 1e9) * 1e3
        );
    }
    let time = |config: &lcurve::spec::TrialConfig| {
        let mut seconds = Vec::new();
        trainer
            .train(config, None, &mut |r: EpochReport| {
                seconds.push(r.seconds);
                Control::Continue
            })
            .expect("training runs");
        // The first epochs pay one-off costs (allocation, caches); report the rest.
        let mut steady = seconds[2..].to_vec();
        steady.sort_by(f64::total_cmp);
        (steady[0] * 1e3, steady[steady.len() / 2] * 1e3)
    };
    for trial in expand(&spec).unwrap() {
        let config = &trial.config;
        let (min, median) = time(config);
        let steps = (train / config.batch_size as f64).ceil();
        println!(
            "  relu, batch {:>3}: {min:>6.3} ms/epoch best, {median:>6.3} median (epochs 3-{EPOCHS}) = {:>4.2}x the bound; {:>5.1} us per optimizer step",
            config.batch_size,
            min / bound_ms,
            median * 1e3 / steps
        );
    }
    let (spec, _) = digits(&format!(
        "learning_rate = 1e-3\nbatch_size = 64\nepochs = {EPOCHS}\nactivation = [\"tanh\", \"sigmoid\", \"gelu\"]\n"
    ));
    for trial in expand(&spec).unwrap() {
        let (min, median) = time(&trial.config);
        println!(
            "  {:<7} batch  64: {min:>6.3} ms/epoch best, {median:>6.3} median = {:>4.2}x the bound",
            trial.config.activation.name(),
            min / bound_ms
        );
    }
}

/// `sweeps/digits.toml` as the `sweep` and `overhead` sections run it: stopping off, 2 trials
/// at once, on `engine`, with `epochs` per trial if given (else its 30); with its data.
fn digits_sweep(engine: Engine, epochs: Option<usize>) -> (SweepSpec, lcurve::data::Split) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/digits.toml");
    let mut toml = std::fs::read_to_string(&path).expect("sweeps/digits.toml reads");
    if let Some(n) = epochs {
        let grid = "\nepochs = 30\n";
        assert!(toml.contains(grid), "sweeps/digits.toml has `epochs = 30`");
        toml = toml.replace(grid, &format!("\nepochs = {n}\n"));
    }
    let mut spec = parse(&path, &toml).expect("sweeps/digits.toml parses");
    spec.stopping = None;
    spec.train.max_parallel = 2;
    spec.train.engine = engine;
    let split = prepare_data(&mut spec, &path).unwrap();
    (spec, split)
}

/// `lcurve run sweeps/digits.toml` without stopping and with live reports, against the same
/// trials trained with nothing around them (two threads pulling from one queue), the two
/// taking turns for `rounds` rounds (every other round the training alone first): the best
/// of each, and the median of the rounds' own ratios (the shared machine's speed drifts
/// between rounds, less within one).
fn sweep(engine: Engine, rounds: usize, epochs_each: Option<usize>) {
    let (spec, split) = digits_sweep(engine, epochs_each);
    let trials = expand(&spec).unwrap();
    let epochs: usize = trials.iter().map(|t| t.config.epochs).sum();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut full, mut bare) = (f64::INFINITY, f64::INFINITY);
    let mut phases = [0.0f64; 3];
    let mut outside = Vec::new();
    let mut parts = Vec::new();
    // Trainer threads' wall and CPU time, in the runs and alone.
    let (mut in_run, mut in_bare) = (Vec::new(), Vec::new());
    // Their CPU seconds, in the runs and alone.
    let (mut cpu_run, mut cpu_bare) = (Vec::new(), Vec::new());
    // The CPU time of everything in a run but the training threads, and its share.
    let mut other_cpu = Vec::new();
    // How the training threads spent each round, in the runs and alone.
    let (mut sched_run, mut sched_bare) = (Vec::new(), Vec::new());
    // The same trials trained alone, two threads pulling from one queue: wall seconds, the
    // threads' share off their CPU, their CPU seconds, and how they spent the time.
    let alone = || {
        let accounts = Arc::new(Accounts::default());
        let trainer = Accounted {
            inner: MlpTrainer::new(&split),
            accounts: accounts.clone(),
        };
        let next = AtomicUsize::new(0);
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(t) = trials.get(i) else { break };
                        trainer
                            .train(&t.config, None, &mut |_| Control::Continue)
                            .unwrap();
                    }
                });
            }
        });
        (
            started.elapsed().as_secs_f64(),
            accounts.off_cpu(),
            accounts.cpu_s(),
            accounts.schedule(started),
        )
    };
    for round in 0..rounds {
        // Every other round trains alone first, so that neither side always follows the
        // other (and, say, the run's files being written back to the disk).
        let first = (round % 2 == 1).then(alone);
        let started = Instant::now();
        let process_cpu = process_cpu_ns();
        let accounts = Arc::new(Accounts::default());
        let (clock, dir) = timed_run(
            &rt,
            &spec,
            Some(&split.record),
            (
                Accounted {
                    inner: MlpTrainer::new(&split),
                    accounts: accounts.clone(),
                },
                true,
            ),
            Some(Duration::from_secs(5)),
        );
        let total = started.elapsed().as_secs_f64();
        let process_cpu = (process_cpu_ns() - process_cpu) as f64 / 1e9;
        keep(dir);
        in_run.push(accounts.off_cpu());
        cpu_run.push(accounts.cpu_s());
        sched_run.push(accounts.schedule(started));
        other_cpu.push((
            process_cpu - accounts.cpu_s(),
            (process_cpu - accounts.cpu_s()) / process_cpu,
        ));
        if total < full {
            full = total;
            let (first, last) = (clock.first.unwrap(), clock.last.unwrap());
            phases = [
                (first - started).as_secs_f64(),
                (last - first).as_secs_f64(),
                started.elapsed().as_secs_f64() - (last - started).as_secs_f64(),
            ];
        }

        let (alone, off_cpu, cpu_s, schedule) = first.unwrap_or_else(alone);
        in_bare.push(off_cpu);
        cpu_bare.push(cpu_s);
        sched_bare.push(schedule);
        bare = bare.min(alone);
        outside.push((total - alone).max(0.0) / total);
        // The round's excess in two parts: training ended later than alone did (the run's
        // other work took the trainers' cores, and its start), and the final report.
        let trained = (clock.last.unwrap() - started).as_secs_f64();
        parts.push(((trained - alone) / total, (total - trained) / total));
    }
    let [_, later_low, later, later_high, _] = spread(parts.iter().map(|s| s.0).collect());
    let [_, after_low, after, after_high, _] = spread(parts.iter().map(|s| s.1).collect());
    let [_, outside_low, outside, outside_high, _] = spread(outside);
    other_cpu.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!(
        "sweep ({} engine): sweeps/digits.toml, stopping off, reports on, 2 at once: {} trials, {epochs} trial-epochs",
        engine.name(),
        trials.len()
    );
    println!(
        "  lcurve run: {full:.2} s (best of {rounds}); the same training alone: {bare:.2} s; everything else: {:.1}% of wall time (median of the rounds: {:.1}%, quartiles {:.1}-{:.1}%)",
        100.0 * (full - bare).max(0.0) / full,
        100.0 * outside,
        100.0 * outside_low,
        100.0 * outside_high
    );
    println!(
        "  of each round's wall time (medians): training ended {:.1}% later than alone (quartiles {:.1}-{:.1}%), the final report {:.1}% (quartiles {:.1}-{:.1}%)",
        100.0 * later,
        100.0 * later_low,
        100.0 * later_high,
        100.0 * after,
        100.0 * after_low,
        100.0 * after_high
    );
    let median = |of: &[Schedule], f: fn(&Schedule) -> f64| spread(of.iter().map(f).collect())[2];
    let both = |f: fn(&Schedule) -> f64| (median(&sched_run, f), median(&sched_bare, f));
    let (first, inside, between, tail, end) = (
        both(|s| s.first),
        both(|s| s.inside),
        both(|s| s.between),
        both(|s| s.tail),
        both(|s| s.end),
    );
    println!(
        "  the training threads, in the runs and alone (medians): the first trial began {:.2} and {:.2} ms after the start; inside trials {:.1} and {:.1} ms in all; between trials {:.1} and {:.1} ms in all; one thread done, the other training: {:.1} and {:.1} ms; the last trial ended {:.1} and {:.1} ms after the start",
        first.0, first.1, inside.0, inside.1, between.0, between.1, tail.0, tail.1, end.0, end.1
    );
    println!(
        "  phases of that run: opening the database and the sweep (the first trials training meanwhile) {:.3} s, training {:.3} s, final report (with the database log settled into its file meanwhile) {:.3} s",
        phases[0], phases[1], phases[2]
    );
    // The burn engine trains on a rayon pool's thread, not the calling one: not measured.
    if engine == Engine::Fused {
        println!(
            "  training threads off their CPU (waiting, or preempted by the run's other threads): {:.1}% of their time in the runs, {:.1}% alone (medians)",
            100.0 * spread(in_run)[2],
            100.0 * spread(in_bare)[2]
        );
        println!(
            "  training threads' CPU time: {:.3} s in the runs, {:.3} s alone (medians)",
            spread(cpu_run)[2],
            spread(cpu_bare)[2]
        );
        let (other, share) = other_cpu[other_cpu.len() / 2];
        println!(
            "  CPU time of everything but training in a run (scheduler, database, charts, kernel): {:.0} ms, {:.1}% of the run's CPU time (median; range {:.0}-{:.0} ms)",
            1e3 * other,
            100.0 * share,
            1e3 * other_cpu[0].0,
            1e3 * other_cpu[other_cpu.len() - 1].0
        );
    }
    println!(
        "  against the two-process Python sweep ({PYTHON_TWO_PROCESSES_S} s, issue 7): {:.2}x its time (goal: 0.3x)",
        full / PYTHON_TWO_PROCESSES_S
    );
}

/// The least, lower quartile, median, upper quartile and most of `v` (not empty).
fn spread(mut v: Vec<f64>) -> [f64; 5] {
    v.sort_by(f64::total_cmp);
    let at = |q: usize| v[(v.len() - 1) * q / 4];
    [v[0], at(1), v[v.len() / 2], at(3), v[v.len() - 1]]
}

/// The CPU time that everything but training takes in the digits sweep (scheduler, database,
/// charts, runtime, kernel), measured without the training's noise: each trial's epochs are
/// recorded once from the fused engine, then every round runs the sweep (stopping off,
/// reports on, 2 at once) with a trainer that replays them, each epoch after sleeping as long
/// as it took: the same curves, rows and charts at the same pace, with nothing training. The
/// process's CPU time less that of the replaying threads is the run's own work, as `sweep`
/// counts it. With the training beside it that figure moves by tens of ms between runs on
/// this shared machine; this one by a few. The trial charts are all drawn as trials end
/// here, on the otherwise idle cores, while the real sweep leaves most to its final report.
fn overhead(rounds: usize) {
    let (spec, split) = digits_sweep(Engine::Fused, None);
    let trainer = MlpTrainer::new(&split);
    let mut recorded = std::collections::HashMap::new();
    for t in expand(&spec).unwrap() {
        let mut epochs = Vec::new();
        trainer
            .train(&t.config, None, &mut |r| {
                epochs.push(r);
                Control::Continue
            })
            .unwrap();
        recorded.insert(t.config.hash(), epochs);
    }
    let replay = Replay(Arc::new(recorded));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut outside, mut replaying, mut wall) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (started, process_cpu) = (Instant::now(), process_cpu_ns());
        let accounts = Arc::new(Accounts::default());
        let trainer = Accounted {
            inner: replay.clone(),
            accounts: accounts.clone(),
        };
        let (_, dir) = timed_run(
            &rt,
            &spec,
            Some(&split.record),
            (trainer, true),
            Some(Duration::from_secs(5)),
        );
        let process = (process_cpu_ns() - process_cpu) as f64 / 1e6;
        keep(dir);
        outside.push(process - 1e3 * accounts.cpu_s());
        replaying.push(1e3 * accounts.cpu_s());
        wall.push(started.elapsed().as_secs_f64());
    }
    let [least, low, median, high, most] = spread(outside);
    println!(
        "overhead: the digits sweep (32 trials, 960 epochs, stopping off, reports on, 2 at once) replaying recorded epochs at their recorded pace, {rounds} rounds"
    );
    println!(
        "  CPU time outside the training threads (scheduler, database, charts, runtime, kernel): {:.0} ms (median; quartiles {:.0}-{:.0}, range {:.0}-{:.0} ms); the replaying threads (sleeps, the rules, sending epochs): {:.0} ms; wall time {:.2} s (medians)",
        median,
        low,
        high,
        least,
        most,
        spread(replaying)[2],
        spread(wall)[2]
    );
}

/// Replays recorded epochs by trial configuration, each after sleeping as long as it took.
#[derive(Clone)]
struct Replay(Arc<std::collections::HashMap<String, Vec<EpochReport>>>);

impl Trainer for Replay {
    fn train(
        &self,
        config: &lcurve::spec::TrialConfig,
        resume: Option<&lcurve::trainer::Checkpoint>,
        on_epoch: &mut lcurve::trainer::EpochSink,
    ) -> Result<lcurve::trainer::TrainEnd, lcurve::trainer::TrainError> {
        assert!(resume.is_none(), "the replay has no checkpoints");
        let epochs = &self.0[&config.hash()];
        for r in epochs {
            std::thread::sleep(Duration::from_secs_f64(r.seconds));
            if on_epoch(r.clone()) != Control::Continue {
                return Ok(lcurve::trainer::TrainEnd::Finished(r.epoch));
            }
        }
        Ok(lcurve::trainer::TrainEnd::Finished(epochs.len()))
    }
}

/// The runs' folders, kept until every section has run. On ext4 without a journal (this
/// machine's), creating a file skips each free inode of its group deleted in the last minute
/// (six while its inode table block is not yet written back), one page cache lookup each:
/// right after a section or a bench run had deleted its folders, `overhead` read 100-102 ms
/// instead of 89-90. Leave a few minutes between bench runs for the same reason.
static KEPT: std::sync::Mutex<Vec<tempfile::TempDir>> = std::sync::Mutex::new(Vec::new());

/// Keeps `dir` (and its files) until the bench ends.
fn keep(dir: tempfile::TempDir) {
    KEPT.lock().unwrap_or_else(|e| e.into_inner()).push(dir);
}

/// Runs `spec` with `lcurve run`'s library call on a fresh database and reports folder, and
/// returns when its training began and ended, and the folder, which callers [`keep`]:
/// deleting its 45 files is not part of a run, and was timed as one. With `head`, the first
/// trials begin training before the database is made, as `lcurve run` does for a new one
/// (see `lcurve::run::head_start`); `Clock::first` is then after training began.
fn timed_run<T: Trainer>(
    rt: &tokio::runtime::Runtime,
    spec: &SweepSpec,
    data: Option<&lcurve::data::DataRecord>,
    (trainer, head): (T, bool),
    live_report: Option<Duration>,
) -> (Clock, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut clock = Clock::default();
    let trainer = Arc::new(trainer);
    let begun = head.then(|| head_start(spec, &trainer));
    rt.block_on(async {
        let store = SqliteStore::open(&dir.path().join("bench.db"))
            .await
            .unwrap();
        let opts = RunOptions {
            reports: dir.path().join("reports"),
            replace: false,
            max_trials: 100,
            live_report,
            close: true,
        };
        let begun = (trainer, begun.flatten());
        let cancel = std::future::pending();
        let r = run_sweep_begun(&store, spec, data, begun, &opts, &mut clock, cancel)
            .await
            .unwrap();
        assert!(r.report.failed.is_empty());
    });
    (clock, dir)
}

/// A trainer that records when its threads' `train` calls began and ended, and their CPU time.
struct Accounted<T> {
    inner: T,
    accounts: Arc<Accounts>,
}

/// Each `train` call's thread, start and end, and the nanoseconds of CPU time spent in them.
#[derive(Default)]
struct Accounts {
    calls: Mutex<Vec<(std::thread::ThreadId, Instant, Instant)>>,
    cpu: AtomicU64,
}

/// How the training threads spent a sweep begun at some instant, in milliseconds.
#[derive(Clone, Copy)]
struct Schedule {
    /// From the start to the first trial's.
    first: f64,
    /// Inside trials, summed over the threads: longer than alone where other threads
    /// preempted them.
    inside: f64,
    /// Between a thread's trials, summed over the threads.
    between: f64,
    /// From the first thread's last trial's end to the last one's: one core without a
    /// trial. Which thread gets which trial varies, and so does this (by up to a trial).
    tail: f64,
    /// From the start to the last trial's end.
    end: f64,
}

impl Accounts {
    /// How the training threads spent the sweep begun at `started`.
    fn schedule(&self, started: Instant) -> Schedule {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut by_thread: std::collections::HashMap<_, Vec<(Instant, Instant)>> =
            std::collections::HashMap::new();
        for &(thread, start, end) in self.calls.lock().expect("the calls' lock").iter() {
            by_thread.entry(thread).or_default().push((start, end));
        }
        let (mut between, mut firsts, mut ends) = (0.0, Vec::new(), Vec::new());
        for mine in by_thread.values_mut() {
            mine.sort_unstable();
            between += mine.windows(2).map(|w| ms(w[1].0 - w[0].1)).sum::<f64>();
            firsts.push(mine[0].0);
            ends.push(mine[mine.len() - 1].1);
        }
        ends.sort_unstable();
        let first = *firsts.iter().min().expect("a trial trained");
        Schedule {
            first: ms(first - started),
            inside: self.wall_ns() as f64 / 1e6,
            between,
            tail: ms(ends[ends.len() - 1] - ends[0]),
            end: ms(ends[ends.len() - 1] - started),
        }
    }

    /// Nanoseconds inside `train` calls, summed over the threads.
    fn wall_ns(&self) -> u64 {
        let calls = self.calls.lock().expect("the calls' lock");
        calls.iter().map(|c| (c.2 - c.1).as_nanos() as u64).sum()
    }

    /// The share of the training threads' time they were not on a CPU.
    fn off_cpu(&self) -> f64 {
        let wall = self.wall_ns() as f64;
        let cpu = self.cpu.load(Ordering::Relaxed) as f64;
        if wall > 0.0 {
            (wall - cpu).max(0.0) / wall
        } else {
            0.0
        }
    }

    /// The training threads' CPU time, in seconds.
    fn cpu_s(&self) -> f64 {
        self.cpu.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// This thread's CPU time, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    cpu_clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The CPU time of all of this process's threads, in nanoseconds.
fn process_cpu_ns() -> u64 {
    cpu_clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock_ns(clock: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `t` is.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

impl<T: Trainer> Trainer for Accounted<T> {
    fn train(
        &self,
        config: &lcurve::spec::TrialConfig,
        resume: Option<&lcurve::trainer::Checkpoint>,
        on_epoch: &mut lcurve::trainer::EpochSink,
    ) -> Result<lcurve::trainer::TrainEnd, lcurve::trainer::TrainError> {
        let (start, cpu) = (Instant::now(), thread_cpu_ns());
        let end = self.inner.train(config, resume, on_epoch);
        let cpu = thread_cpu_ns() - cpu;
        self.accounts.calls.lock().expect("the calls' lock").push((
            std::thread::current().id(),
            start,
            Instant::now(),
        ));
        self.accounts.cpu.fetch_add(cpu, Ordering::Relaxed);
        end
    }
}

/// When training began and when its last trial finished (the final report is not timed).
#[derive(Default)]
struct Clock {
    first: Option<Instant>,
    last: Option<Instant>,
}

impl lcurve::scheduler::Progress for Clock {
    fn begin(&mut self, _total: usize, _already_finished: usize) {
        self.first = Some(Instant::now());
    }

    fn finished(&mut self, _: usize, _: &str, _: &TrialOutcome, _: &[usize]) {
        self.last = Some(Instant::now());
    }
}

/// Trial-epochs per second at 1, 2 and 4 trials at once, through the scheduler: the best of
/// five rounds, the three settings taking turns in each, so a slow spell on the shared
/// machine does not land on one setting only.
fn concurrency() {
    let (mut spec, split) = digits(
        "learning_rate = [1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3, 7e-3, 8e-3, 9e-3, 1e-2, 2e-2, 3e-2]\nbatch_size = 32\nepochs = 40\n",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let settings = [1usize, 2, 4];
    let mut rates = [0.0f64; 3];
    for _ in 0..5 {
        for (i, &parallel) in settings.iter().enumerate() {
            spec.train.max_parallel = parallel;
            let (clock, dir) = timed_run(
                &rt,
                &spec,
                Some(&split.record),
                (MlpTrainer::new(&split), false),
                None,
            );
            keep(dir);
            let training = clock.last.unwrap() - clock.first.unwrap();
            rates[i] = rates[i].max(480.0 / training.as_secs_f64());
        }
    }
    for (parallel, rate) in settings.iter().zip(rates) {
        println!("concurrency: max_parallel = {parallel}: {rate:>6.1} trial-epochs/s (best of 5)");
    }
    println!(
        "  2 at once: {:.2}x one at a time (goal 1.8x); 4 at once: {:.2}x two (goal >= 1.0x)",
        rates[1] / rates[0],
        rates[2] / rates[1]
    );
    // What the scheduler and the store add to each epoch: trainers that take no time at all,
    // going on without answers (no stopping rules) and waiting for each (a median rule, which
    // compares with the other trial, and never fires here).
    for (rules, stopping) in [
        ("no stopping rules", ""),
        (
            "a median rule",
            "[stopping]\nmetric = \"val_loss\"\n[stopping.median]\nwarmup = 5000\n",
        ),
    ] {
        let (mut spec, _) = digits(&format!(
            "learning_rate = [1e-3, 2e-3]\nbatch_size = 32\nepochs = 2000\n{stopping}"
        ));
        spec.train.max_parallel = 2;
        let (clock, _dir) = timed_run(
            &rt,
            &spec,
            None,
            (lcurve::trainer::SyntheticTrainer::default(), false),
            None,
        );
        let per_epoch = (clock.last.unwrap() - clock.first.unwrap()).as_secs_f64() / 4000.0;
        println!(
            "  scheduler and store per epoch (2 trainers that take no time, {rules}): {:.1} us of wall time",
            per_epoch * 1e6
        );
    }
}

fn bench_store(rt: &tokio::runtime::Runtime, path: &Path, toml: &str) -> (SqliteStore, i64) {
    rt.block_on(async {
        let store = SqliteStore::open(path).await.unwrap();
        let spec = parse(Path::new("bench.toml"), toml).unwrap();
        let id = store.create_sweep(&spec, None, false).await.unwrap();
        store.add_trials(id, &expand(&spec).unwrap()).await.unwrap();
        (store, id)
    })
}

fn epoch(trial_id: i64, epoch: usize) -> Write {
    let v = 0.1 + 1.0 / epoch as f64;
    Write::Epoch {
        trial_id,
        report: EpochReport {
            epoch,
            train_loss: v * 0.9,
            val_loss: v,
            val_accuracy: Some(1.0 - v / 2.0),
            val_rmse: None,
            seconds: 0.001,
            steps: Vec::new(),
        },
    }
}

fn store_rate() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (store, id) = bench_store(
        &rt,
        &dir.path().join("bench.db"),
        "name = \"bench\"\n[params]\nlearning_rate = 0.1\nbatch_size = 8\nepochs = 1\n",
    );
    rt.block_on(async {
        let trial = store.claim_next(id).await.unwrap().unwrap();
        let mut base = 1;
        for (per_tx, epochs) in [(1usize, 2_000usize), (64, 64_000), (2_500, 250_000)] {
            let writes: Vec<Write> = (base..base + epochs).map(|e| epoch(trial.id, e)).collect();
            base += epochs;
            let started = Instant::now();
            for chunk in writes.chunks(per_tx) {
                store.apply(chunk).await.unwrap();
            }
            let rows = epochs * 4;
            println!(
                "store: {:>9.0} metric rows/s with {per_tx} epoch(s) ({} rows) per transaction",
                rows as f64 / started.elapsed().as_secs_f64(),
                per_tx * 4
            );
        }
        // Per-step losses: 2,000 epochs of 500 steps each, in one transaction (1 M steps,
        // stored as 2,000 rows of 500, and 8,000 metric rows), three times.
        for round in 0..3 {
            let writes: Vec<Write> = (base..base + 2_000)
                .map(|e| {
                    let mut w = epoch(trial.id, e);
                    if let Write::Epoch { report, .. } = &mut w {
                        report.steps = (0..500).map(|i| 1.0 / (1.0 + (e * 500 + i) as f32)).collect();
                    }
                    w
                })
                .collect();
            base += 2_000;
            let started = Instant::now();
            store.apply(&writes).await.unwrap();
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "store: {:>9.0} steps/s batched (1,000,000 steps as 2,000 epoch rows, and 8,000 metric rows, in one transaction, run {})",
                1_000_000.0 / seconds,
                round + 1
            );
        }
    });
    sweep_writes(&rt, dir.path());
}

/// Median wall time of `lcurve ARGS` over `n` runs, in ms.
/// The writes of the digits sweep as `lcurve run` commits them (32 trials of 30 epochs, each
/// epoch 4 metrics, 45 step losses and the divergence guard's decision; a start and an end
/// per trial), in 7 transactions (one per 100 ms of its training), each round into a new
/// database: the process's CPU time for them, which the sweep spends beside its training.
fn sweep_writes(rt: &tokio::runtime::Runtime, dir: &Path) {
    let toml =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/digits.toml"))
            .unwrap();
    let mut cpu = Vec::new();
    for round in 0..30 {
        let (store, id) = bench_store(rt, &dir.join(format!("writes{round}.db")), &toml);
        let trials: Vec<i64> = rt.block_on(async {
            store
                .trials(id)
                .await
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect()
        });
        let mut writes = Vec::new();
        for &trial_id in &trials {
            writes.push(Write::Start { trial_id });
            for e in 1..=30 {
                let mut w = epoch(trial_id, e);
                if let Write::Epoch { report, .. } = &mut w {
                    report.steps = (0..45).map(|i| 1.0 / (1.0 + (e * 45 + i) as f32)).collect();
                }
                writes.push(w);
                writes.push(Write::Decision {
                    trial_id,
                    decision: lcurve::stopping::Decision {
                        rule: "divergence",
                        epoch: e,
                        action: lcurve::stopping::Action::Continue,
                        reason: "losses are finite".to_string(),
                        details: serde_json::json!({
                            "factor": null, "first_train_loss": 1.47, "first_val_loss": 0.91,
                            "train_loss": 0.1 + 1.0 / e as f64, "val_loss": 0.2 + 1.0 / e as f64,
                        }),
                    },
                });
            }
            writes.push(Write::Finish {
                trial_id,
                outcome: TrialOutcome {
                    state: TrialState::Completed,
                    epochs_run: 30,
                    best: Some((30, 0.2)),
                    stop_reason: None,
                    error: None,
                },
            });
        }
        let started = process_cpu_ns();
        rt.block_on(async {
            for chunk in writes.chunks(writes.len().div_ceil(7)) {
                store.apply(chunk).await.unwrap();
            }
        });
        cpu.push((process_cpu_ns() - started) as f64 / 1e6);
        rt.block_on(store.close());
    }
    cpu.sort_by(f64::total_cmp);
    println!(
        "store: the digits sweep's writes (960 epochs: 3,840 metric rows, 960 of step losses, 960 decisions; 32 starts and ends) in 7 transactions: {:.1} ms of CPU (median of {} rounds, each into a new database; quartiles {:.1}-{:.1} ms)",
        cpu[cpu.len() / 2],
        cpu.len(),
        cpu[cpu.len() / 4],
        cpu[cpu.len() * 3 / 4]
    );
}

/// `lcurve run` of the digits sweep (stopping off) as whole processes, `rounds` of them, each
/// on a new database and `gap` after the one before (a user's runs are seconds apart, by
/// which time a virtual machine may have handed the memory the last one freed back to its
/// host: first touching fresh memory is what `src/report/buffers.rs` is about). The other
/// sections run in one process, whose later rounds reuse what the first made; this one pays
/// for everything a run pays for. The final phase is from the last trial's progress line (on
/// stderr) to the process's end: the last commit, the final report and closing.
fn process_runs(rounds: usize, gap: Duration) {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let digits =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/digits.toml"))
            .expect("sweeps/digits.toml reads");
    // Stopping off: every trial runs its 30 epochs, as in the `sweep` section.
    let toml = digits.split("\n[stopping]").next().unwrap_or(&digits);
    let sweep = dir.path().join("nostop.toml");
    std::fs::write(&sweep, toml).unwrap();
    let spec = load(&sweep).expect("the sweep loads");
    assert!(
        spec.stopping.is_none(),
        "the sweep without its [stopping] table"
    );
    let trials = expand(&spec).unwrap().len();
    let last = format!("{trials}/{trials}]");
    let (mut whole, mut tail) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        std::thread::sleep(gap);
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lcurve"))
            .arg("run")
            .arg(&sweep)
            .arg("--db")
            .arg(dir.path().join(format!("run{round}.db")))
            .arg("--reports")
            .arg(dir.path().join(format!("reports{round}")))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run lcurve");
        let mut ended = None;
        for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
            if line.unwrap().contains(&last) {
                ended = Some(Instant::now());
            }
        }
        assert!(child.wait().unwrap().success(), "lcurve run failed");
        whole.push(started.elapsed().as_secs_f64() * 1e3);
        tail.push(
            ended
                .expect("the last trial's line")
                .elapsed()
                .as_secs_f64()
                * 1e3,
        );
    }
    whole.sort_by(f64::total_cmp);
    tail.sort_by(f64::total_cmp);
    let n = rounds;
    println!(
        "process: lcurve run of the digits sweep (stopping off, new databases, {:.0} s apart), {n} runs: {:.0} ms (median; quartiles {:.0}-{:.0}); from the last trial's line to the end {:.1} ms (median; quartiles {:.1}-{:.1})",
        gap.as_secs_f64(),
        whole[n / 2],
        whole[n / 4],
        whole[3 * n / 4],
        tail[n / 2],
        tail[n / 4],
        tail[3 * n / 4]
    );
}

fn time_cli(db: &Path, args: &[&str], n: usize) -> f64 {
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let started = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_lcurve"))
                .arg("--db")
                .arg(db)
                .args(args)
                .output()
                .expect("run lcurve");
            assert!(
                out.status.success(),
                "lcurve {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

/// A database of 10,000 finished trials x 100 epochs x 4 metrics (4 M metric rows), plus a
/// 100-trial sweep; then `ls`, `show` and `report` through the real binary.
fn scale() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // LCURVE_BENCH_DB=path keeps the database for a closer look.
    let db = std::env::var_os("LCURVE_BENCH_DB")
        .map_or_else(|| dir.path().join("scale.db"), std::path::PathBuf::from);
    let lrs: Vec<String> = (1..=100).map(|i| format!("{}e-4", i)).collect();
    let started = Instant::now();
    let mut rows = 0;
    for (name, batch_sizes) in [("scale", 100), ("scale-100", 1)] {
        let toml = format!(
            "name = \"{name}\"\n[params]\nlearning_rate = [{}]\nbatch_size = [{}]\nepochs = 100\n",
            lrs.join(", "),
            (1..=batch_sizes)
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let (store, id) = bench_store(&rt, &db, &toml);
        rt.block_on(async {
            let mut writes = Vec::new();
            while let Some(t) = store.claim_next(id).await.unwrap() {
                writes.extend((1..=100).map(|e| epoch(t.id, e)));
                writes.push(Write::Finish {
                    trial_id: t.id,
                    outcome: TrialOutcome {
                        state: TrialState::Completed,
                        epochs_run: 100,
                        best: Some((100, 0.11)),
                        stop_reason: None,
                        error: None,
                    },
                });
                rows += 400;
                if writes.len() > 2_500 {
                    store.apply(&writes).await.unwrap();
                    writes.clear();
                }
            }
            store.apply(&writes).await.unwrap();
            store.finish_sweep(id).await.unwrap();
        });
    }
    println!(
        "scale: built 10,100 trials x 100 epochs ({rows} metric rows) in {:.1} s; database {:.0} MB",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&db).map_or(0, |m| m.len()) as f64 / 1e6
    );
    for (what, args) in [
        ("lcurve ls", vec!["ls"]),
        (
            "lcurve show scale (a table of the top 50)",
            vec!["show", "scale"],
        ),
        (
            "lcurve show scale --limit 20",
            vec!["show", "scale", "--limit", "20"],
        ),
        (
            "lcurve show scale (all 10,000 rows, CSV)",
            vec!["show", "scale", "--format", "csv"],
        ),
        ("lcurve trial scale 5000", vec!["trial", "scale", "5000"]),
    ] {
        println!("  {what}: {:.0} ms", time_cli(&db, &args, 5));
    }
    let reports = dir.path().join("reports");
    let reports = reports.to_str().unwrap();
    println!(
        "  lcurve report scale-100 (100 trials x 100 epochs, 106 files): {:.0} ms",
        time_cli(&db, &["report", "scale-100", "--reports", reports], 3)
    );
    // The indexes the leaderboard and the listing use.
    rt.block_on(async {
        let store = SqliteStore::open(&db).await.unwrap();
        for (what, sql) in [
            (
                "ls counts",
                "SELECT state, count(*) FROM trials WHERE sweep_id = 1 GROUP BY state",
            ),
            (
                "show scores",
                "SELECT id, best_val_loss FROM trials WHERE sweep_id = 1",
            ),
            (
                "a running trial's best",
                "SELECT min(value) FROM metrics WHERE trial_id = 1 AND name = 'val_loss' AND kind = 'finite'",
            ),
        ] {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
            let steps: Vec<String> = plan.into_iter().map(|p| p.3).collect();
            println!("  query plan, {what}: {}", steps.join("; "));
        }
    });
}

/// Microseconds per stopping decision: the extrapolation rule (three curve families fitted)
/// and the median rule over 100 peers, on a 30-epoch curve.
fn decision_cost() {
    use lcurve::spec::Metric;
    use lcurve::stopping::{Context, ExtrapolationRule, MedianRule, Peers, StoppingRule};
    let curve: Vec<EpochReport> = (1..=30)
        .map(|e| {
            let v = 0.1 + 2.0 * (-0.2 * e as f64).exp() + 0.01 * (e as f64 * 1.7).sin();
            EpochReport {
                epoch: e,
                train_loss: v,
                val_loss: v,
                val_accuracy: None,
                val_rmse: None,
                seconds: 0.0,
                steps: Vec::new(),
            }
        })
        .collect();
    let mut peers = Peers::new(Metric::ValLoss);
    for t in 0..100 {
        for e in 1..=60 {
            peers.record(t, e, 0.05 + 1.0 / (e as f64 + t as f64 * 0.1));
        }
        peers.finish(t);
    }
    let rules: [(&str, Box<dyn StoppingRule>); 2] = [
        (
            "extrapolation",
            Box::new(ExtrapolationRule {
                metric: Metric::ValLoss,
                warmup: 5,
                min_probability: 0.05,
            }),
        ),
        (
            "median (100 peers)",
            Box::new(MedianRule {
                metric: Metric::ValLoss,
                warmup: 5,
                min_peers: 4,
                percentile: 50.0,
            }),
        ),
    ];
    for (name, rule) in rules {
        let ctx = Context {
            curve: &curve,
            max_epochs: 60,
            trial_id: -1,
            peers: &peers,
        };
        let n = 2_000;
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(rule.decide(std::hint::black_box(&ctx)));
        }
        println!(
            "decision: {:>8.1} us per {name} decision on a 30-epoch curve",
            started.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}

/// Median wall time of `lcurve --help` and `lcurve ls` (a small database) over 21 runs.
fn startup() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("small.db");
    bench_store(
        &rt,
        &db,
        "name = \"small\"\n[params]\nlearning_rate = [0.1, 0.01]\nbatch_size = 8\nepochs = 1\n",
    );
    println!(
        "startup: lcurve --help {:.1} ms, lcurve ls {:.1} ms (median of 21)",
        time_cli(&db, &["--help"], 21),
        time_cli(&db, &["ls"], 21)
    );
}
