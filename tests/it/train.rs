//! Both engines with every model and training option: regression, dropout, SGD momentum,
//! weight decay, schedules and train_fraction reach the training and stay reproducible, and
//! the fused engine's curves match burn's.

use std::path::Path;

use lcurve::run::prepare_data;
use lcurve::spec::Engine;
use lcurve::spec::{PlannedTrial, expand, parse};
use lcurve::trainer::{Control, EpochReport, MlpTrainer, Trainer};

const ENGINES: [&str; 2] = ["fused", "burn"];

/// Builds the sweep (on `engine`), its trainer and its trials.
fn setup(toml: &str, engine: &str) -> (MlpTrainer, Vec<PlannedTrial>) {
    let path = Path::new("sweeps/test.toml");
    let toml = format!("{toml}\n[train]\nengine = \"{engine}\"\n");
    let mut spec = parse(path, &toml).unwrap_or_else(|e| panic!("{e}"));
    let split = prepare_data(&mut spec, path).unwrap();
    let trials = expand(&spec).unwrap();
    let want = if engine == "fused" {
        Engine::Fused
    } else {
        Engine::Burn
    };
    assert!(trials.iter().all(|t| t.config.engine == want));
    (MlpTrainer::new(&split), trials)
}

fn curve(trainer: &MlpTrainer, trial: &PlannedTrial) -> Vec<EpochReport> {
    let mut out = Vec::new();
    trainer
        .train(&trial.config, None, &mut |r: EpochReport| {
            out.push(r);
            Control::Continue
        })
        .unwrap();
    out
}

fn losses(c: &[EpochReport]) -> Vec<(f64, f64)> {
    c.iter().map(|r| (r.train_loss, r.val_loss)).collect()
}

#[test]
fn regression_reports_rmse_in_the_targets_units_and_learns() {
    for engine in ENGINES {
        regression_learns(engine);
    }
}

fn regression_learns(engine: &str) {
    let (trainer, trials) = setup(
        "name = \"r\"\n[data]\ndataset = \"diabetes\"\n[params]\nlearning_rate = 0.01\nbatch_size = 32\nepochs = 8\nhidden = [32]\n",
        engine,
    );
    let c = curve(&trainer, &trials[0]);
    assert!(c.iter().all(|r| r.val_accuracy.is_none()));
    let rmse: Vec<f64> = c.iter().map(|r| r.val_rmse.unwrap()).collect();
    // The target (disease progression) spans 25-346 with sd ~77; a fitted model gets to ~55-65.
    assert!(rmse[0] > rmse[7], "{rmse:?}");
    assert!((40.0..80.0).contains(&rmse[7]), "{rmse:?}");
    // val_loss is the MSE on the standardized target: rmse = sqrt(val_loss) * sd.
    let ratio = rmse[7] / c[7].val_loss.sqrt();
    assert!((60.0..95.0).contains(&ratio), "{ratio}");
}

#[test]
fn every_option_reaches_training_and_stays_reproducible() {
    for engine in ENGINES {
        every_option(engine);
    }
}

fn every_option(engine: &str) {
    let (trainer, trials) = setup(
        r#"
name = "opts"
[data]
dataset = "iris"
[params]
learning_rate = 0.05
batch_size = 16
epochs = 4
hidden = [16]
optimizer = "sgd"
momentum = [0.0, 0.9]
weight_decay = [0.0, 0.01]
dropout = [0.0, 0.3]
lr_schedule = ["constant", "step"]
activation = "leaky_relu"
negative_slope = 0.2
train_fraction = [1.0, 0.3]
[params.when.lr_schedule.step]
lr_step_every = 2
lr_step_gamma = 0.1
"#,
        engine,
    );
    assert_eq!(trials.len(), 32);
    let curves: Vec<Vec<(f64, f64)>> = trials.iter().map(|t| losses(&curve(&trainer, t))).collect();
    // Each option changes the numbers: no two trials train alike.
    for i in 0..curves.len() {
        for j in 0..i {
            assert_ne!(curves[i], curves[j], "trials {j} and {i} trained alike");
        }
    }
    // Dropout, shuffling and init are seeded per trial: training again gives the same curve,
    // even while another trial trains at the same time.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| losses(&curve(&trainer, &trials[5])));
        let b = s.spawn(|| losses(&curve(&trainer, &trials[6])));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a, b), (curves[5].clone(), curves[6].clone()));
}

/// Pausing at epoch 3 and continuing from the checkpoint gives exactly the curve of training
/// straight through: the model, the optimizer state (Adam moments, SGD momentum), the batch
/// order and the dropout stream all survive the pause.
#[test]
fn a_checkpointed_trial_continues_exactly_where_it_paused() {
    for engine in ENGINES {
        checkpoint_resumes(engine);
    }
}

fn checkpoint_resumes(engine: &str) {
    use lcurve::trainer::{Checkpoint, TrainEnd};
    let (trainer, trials) = setup(
        r#"
name = "ckpt"
[data]
dataset = "iris"
[params]
learning_rate = 0.02
batch_size = 16
epochs = 6
hidden = [16]
dropout = 0.2
train_fraction = 0.7
optimizer = ["adam", "sgd"]
[params.when.optimizer.sgd]
momentum = 0.9
"#,
        engine,
    );
    for trial in &trials {
        let straight = curve(&trainer, trial);
        let mut first = Vec::new();
        let end = trainer
            .train(&trial.config, None, &mut |r: EpochReport| {
                let epoch = r.epoch;
                first.push(r);
                if epoch == 3 {
                    Control::Pause
                } else {
                    Control::Continue
                }
            })
            .unwrap();
        let TrainEnd::Paused(checkpoint) = end else {
            panic!("the trainer paused")
        };
        assert_eq!(checkpoint.epoch, 3);
        assert!(
            checkpoint.data.len() > 1000,
            "model and optimizer state are saved"
        );
        let mut rest = Vec::new();
        let end = trainer
            .train(&trial.config, Some(&checkpoint), &mut |r: EpochReport| {
                rest.push(r);
                Control::Continue
            })
            .unwrap();
        assert_eq!(end, TrainEnd::Finished(6));
        let resumed: Vec<EpochReport> = first.into_iter().chain(rest).collect();
        let epochs: Vec<usize> = resumed.iter().map(|r| r.epoch).collect();
        assert_eq!(epochs, [1, 2, 3, 4, 5, 6], "no repeated or missing epochs");
        assert_eq!(
            losses(&resumed),
            losses(&straight),
            "{:?}: the same numbers as training straight through",
            trial.config.optimizer
        );
        assert!(
            resumed[3].train_loss < resumed[0].train_loss,
            "no jump back after the pause"
        );
        let damaged = Checkpoint {
            epoch: 3,
            data: checkpoint.data[..10].to_vec(),
        };
        let err = trainer
            .train(&trial.config, Some(&damaged), &mut |_| Control::Continue)
            .unwrap_err();
        assert!(err.0.contains("checkpoint is damaged"), "{}", err.0);
    }
}

/// The fused engine trains the burn model: from the same initial weights, batches and dropout
/// masks, its curves match burn's to float rounding, for every activation, both optimizers,
/// dropout, weight decay and both tasks.
#[test]
fn the_fused_engine_matches_burn() {
    let sweeps = [
        r#"
name = "agree"
[data]
dataset = "digits"
[params]
learning_rate = 0.01
batch_size = 64
epochs = 4
hidden = [32, 16]
activation = ["relu", "leaky_relu", "gelu", "sigmoid", "tanh"]
optimizer = ["adam", "sgd"]
dropout = [0.0, 0.2]
weight_decay = 0.001
[params.when.optimizer.sgd]
momentum = 0.9
"#,
        "name = \"agree-r\"\n[data]\ndataset = \"diabetes\"\n[params]\nlearning_rate = 0.01\nbatch_size = 32\nepochs = 4\nhidden = [16]\nactivation = [\"tanh\", \"relu\"]\n",
    ];
    let mut worst = 0.0f64;
    for toml in sweeps {
        let (fused, trials) = setup(toml, "fused");
        let (burn, burn_trials) = setup(toml, "burn");
        for (f, b) in trials.iter().zip(&burn_trials) {
            let (cf, cb) = (curve(&fused, f), curve(&burn, b));
            assert_eq!(cf.len(), cb.len());
            for (rf, rb) in cf.iter().zip(&cb) {
                for (x, y) in [(rf.train_loss, rb.train_loss), (rf.val_loss, rb.val_loss)] {
                    let rel = (x - y).abs() / y.abs().max(1e-3);
                    worst = worst.max(rel);
                    assert!(
                        rel < 1e-4,
                        "{}: epoch {}: fused {x} vs burn {y}",
                        f.config.label(),
                        rf.epoch
                    );
                }
                if let (Some(x), Some(y)) = (rf.val_accuracy, rb.val_accuracy) {
                    assert!(
                        (x - y).abs() <= 0.006,
                        "{}: accuracy {x} vs {y}",
                        f.config.label()
                    );
                }
            }
            // One loss per optimizer step, whose mean is the epoch's training loss.
            for r in cf.iter().chain(&cb) {
                let rows = if toml.contains("digits") { 1438 } else { 353 };
                assert_eq!(r.steps.len(), (rows as usize).div_ceil(f.config.batch_size));
                let mean =
                    r.steps.iter().map(|&l| f64::from(l)).sum::<f64>() / r.steps.len() as f64;
                assert!(
                    (mean - r.train_loss).abs() < 1e-5 * r.train_loss,
                    "{mean} vs {}",
                    r.train_loss
                );
            }
            // It learns: the last epoch beats the first.
            assert!(
                cf.last().unwrap().val_loss < cf[0].val_loss,
                "{}",
                f.config.label()
            );
        }
    }
    eprintln!("largest relative difference between engines: {worst:.2e}");
}
