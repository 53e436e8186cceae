//! A deterministic fake trainer with closed-form learning curves, so the scheduler, store and
//! reports are tested in milliseconds without burn doing real work.

use std::time::Duration;

use super::{Checkpoint, Control, EpochReport, EpochSink, TrainEnd, TrainError, Trainer};
use crate::spec::{Task, TrialConfig};

/// Curves `loss(e) = floor + (start - floor) * exp(-rate * e) + noise`, where the rate grows
/// with the learning rate; validation loss turns upwards after `overfit_after` epochs.
#[derive(Debug, Clone, Default)]
pub struct SyntheticTrainer {
    /// Learning rates at or above this produce NaN losses from epoch 2 (a diverging trial).
    pub diverge_at_lr: Option<f64>,
    /// Learning rates equal to this make the trainer fail before its first epoch.
    pub fail_at_lr: Option<f64>,
    /// Validation loss rises by 0.25 per epoch after this epoch (makes patience fire).
    pub overfit_after: Option<usize>,
    /// Sleep per epoch, to hold trials open in concurrency tests.
    pub epoch_delay: Duration,
}

impl SyntheticTrainer {
    /// The validation loss this trainer reports for `config` at `epoch`, before divergence.
    pub fn val_loss(&self, config: &TrialConfig, epoch: usize) -> f64 {
        let e = epoch as f64;
        let rate = 0.1 + 20.0 * config.learning_rate;
        let floor = 0.1 + 0.02 * (config.batch_size as f64).ln();
        let base = floor + 2.2 * (-rate * e).exp();
        // Deterministic "noise": a small wobble that depends on the epoch and the seed.
        let noise = 0.002 * ((e * 1.7 + config.seed as f64).sin());
        let overfit = self
            .overfit_after
            .map_or(0.0, |k| 0.25 * (e - k as f64).max(0.0));
        base + noise + overfit
    }
}

impl Trainer for SyntheticTrainer {
    fn train(
        &self,
        config: &TrialConfig,
        resume: Option<&Checkpoint>,
        on_epoch: &mut EpochSink,
    ) -> Result<TrainEnd, TrainError> {
        if self.fail_at_lr == Some(config.learning_rate) {
            return Err(TrainError(format!(
                "synthetic failure at learning rate {}",
                config.learning_rate
            )));
        }
        let diverges = self
            .diverge_at_lr
            .is_some_and(|lr| config.learning_rate >= lr);
        // The closed form needs no state: a checkpoint is just the epoch it was taken after.
        let first = resume.map_or(1, |c| c.epoch + 1);
        for epoch in first..=config.epochs {
            std::thread::sleep(self.epoch_delay);
            let val_loss = if diverges && epoch >= 2 {
                f64::NAN
            } else {
                self.val_loss(config, epoch)
            };
            let train_loss = if val_loss.is_nan() {
                f64::INFINITY
            } else {
                val_loss * 0.9
            };
            // Four steps per epoch whose mean is the epoch's training loss.
            let steps = [1.05, 1.0, 0.95, 1.0]
                .iter()
                .map(|k| (train_loss * k) as f32)
                .collect();
            let report = EpochReport {
                epoch,
                train_loss,
                val_loss,
                val_accuracy: (config.task == Task::Classification).then(|| {
                    if val_loss.is_nan() {
                        0.1
                    } else {
                        (1.0 - val_loss / 3.0).clamp(0.0, 1.0)
                    }
                }),
                val_rmse: (config.task == Task::Regression).then(|| val_loss.sqrt()),
                seconds: 1e-4,
                steps,
            };
            match on_epoch(report) {
                Control::Continue => {}
                Control::Stop => return Ok(TrainEnd::Finished(epoch)),
                Control::Pause => {
                    return Ok(TrainEnd::Paused(Checkpoint {
                        epoch,
                        data: (epoch as u64).to_le_bytes().to_vec(),
                    }));
                }
            }
        }
        Ok(TrainEnd::Finished(config.epochs))
    }
}
