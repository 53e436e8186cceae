//! Throughput benchmark: seconds per epoch of the digits MLP at batch 16/64/256 on the CPU
//! backend, and metric rows stored per second. Run: `cargo bench --bench throughput`
//! (add `--features ndarray -- ndarray` to time burn's deprecated ndarray backend instead).

use std::time::Instant;

use lcurve::data;
use lcurve::spec::{Activation, DatasetName, Optimizer, TrialConfig};
use lcurve::store::{SqliteStore, Store, Write};
use lcurve::trainer::{BurnTrainer, Control, EpochReport, Trainer};

const EPOCHS: usize = 12;

fn main() {
    let backend = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "flex".into());
    let split = data::split(&data::load(DatasetName::Digits), 0.2, 7);
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
    for batch in [16, 64, 256] {
        let config = TrialConfig {
            learning_rate: 1e-3,
            batch_size: batch,
            epochs: EPOCHS,
            activation: Activation::Relu,
            optimizer: Optimizer::Adam,
            hidden: vec![128],
            seed: 7,
            dataset: DatasetName::Digits,
            validation_fraction: 0.2,
        };
        let mut seconds = Vec::new();
        trainer
            .train(&config, &mut |r: EpochReport| {
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
            "name = \"bench\"\n[grid]\nlearning_rate = 0.1\nbatch_size = 8\nepochs = 1\n",
        )
        .unwrap();
        let id = store.create_sweep(&spec, false).await.unwrap();
        store
            .add_trials(id, &lcurve::spec::expand(&spec))
            .await
            .unwrap();
        let trial = store.claim_next(id).await.unwrap().unwrap();
        let report = |epoch| Write::Epoch {
            trial_id: trial.id,
            report: EpochReport {
                epoch,
                train_loss: 0.5,
                val_loss: 0.4,
                val_accuracy: 0.9,
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
