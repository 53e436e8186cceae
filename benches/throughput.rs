//! Throughput benchmark: seconds per epoch of the digits MLP at batch 16/64/256 on the CPU
//! backend, metric rows stored per second, and the cost of a stopping decision.
//! Run: `cargo bench --bench throughput` (add `--features ndarray -- ndarray` to time burn's
//! deprecated ndarray backend instead).

use std::time::Instant;

use std::path::Path;

use lcurve::run::prepare_data;
use lcurve::spec::{expand, parse};
use lcurve::store::{SqliteStore, Store, Write};
use lcurve::trainer::{BurnTrainer, Control, EpochReport, Trainer};

const EPOCHS: usize = 12;

fn main() {
    let backend = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "flex".into());
    let mut spec = parse(
        Path::new("bench.toml"),
        &format!(
            "name = \"bench\"\nseed = 7\n[params]\nlearning_rate = 1e-3\nbatch_size = [16, 64, 256]\nepochs = {EPOCHS}\nhidden = [128]\n"
        ),
    )
    .expect("the bench spec parses");
    let split = prepare_data(&mut spec, Path::new("bench.toml")).expect("digits loads");
    let trials = expand(&spec).expect("the bench spec expands");
    let trainer = match backend.as_str() {
        "flex" => BurnTrainer::new(&split),
        #[cfg(feature = "ndarray")]
        "ndarray" => BurnTrainer::with_device(&split, lcurve::trainer::ndarray_device()),
        other => panic!("unknown backend {other}; use flex (or ndarray with --features ndarray)"),
    };
    println!(
        "backend {backend}: digits MLP [64 -> 128 -> 10], relu, Adam, {} training rows, 1 thread",
        split.train.rows()
    );
    for trial in &trials {
        let config = &trial.config;
        let batch = config.batch_size;
        let mut seconds = Vec::new();
        trainer
            .train(config, None, &mut |r: EpochReport| {
                seconds.push(r.seconds);
                Control::Continue
            })
            .expect("training runs");
        // The first epoch pays one-off costs (allocation, caches); report the rest.
        let mut steady = seconds[2..].to_vec();
        steady.sort_by(f64::total_cmp);
        let median = steady[steady.len() / 2];
        println!(
            "  batch {batch:>3}: {:>7.2} ms/epoch (median of epochs 3-{EPOCHS}; first epoch {:.2} ms)",
            median * 1e3,
            seconds[0] * 1e3
        );
    }
    store_rate();
    decision_cost();
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
            "  decision: {:>8.1} us per {name} decision on a 30-epoch curve",
            started.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}

fn store_rate() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("bench.db"))
            .await
            .unwrap();
        let spec = lcurve::spec::parse(
            std::path::Path::new("bench.toml"),
            "name = \"bench\"\n[params]\nlearning_rate = 0.1\nbatch_size = 8\nepochs = 1\n",
        )
        .unwrap();
        let id = store.create_sweep(&spec, None, false).await.unwrap();
        store.add_trials(id, &expand(&spec).unwrap()).await.unwrap();
        let trial = store.claim_next(id).await.unwrap().unwrap();
        let report = |epoch| Write::Epoch {
            trial_id: trial.id,
            report: EpochReport {
                epoch,
                train_loss: 0.5,
                val_loss: 0.4,
                val_accuracy: Some(0.9),
                val_rmse: None,
                seconds: 0.001,
            },
        };
        for per_tx in [1usize, 64] {
            let epochs = if per_tx == 1 { 2_000 } else { 50_000 };
            let base = if per_tx == 1 { 1 } else { 10_000 };
            let started = Instant::now();
            let writes: Vec<Write> = (base..base + epochs).map(report).collect();
            for chunk in writes.chunks(per_tx) {
                store.apply(chunk).await.unwrap();
            }
            let rows = epochs * 4;
            println!(
                "  store: {:>8.0} metric rows/s with {per_tx} epoch(s) ({} rows) per transaction",
                rows as f64 / started.elapsed().as_secs_f64(),
                per_tx * 4
            );
        }
    });
}
