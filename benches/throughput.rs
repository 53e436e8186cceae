//! Throughput benchmark: seconds per epoch of the digits MLP at batch 16/64/256 on the CPU
//! backend, and metric rows stored per second. Run: `cargo bench --bench throughput`
//! (add `--features ndarray -- ndarray` to time burn's deprecated ndarray backend instead).

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
