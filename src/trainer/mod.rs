//! The `Trainer` extension point: trains one trial, epoch by epoch, reporting each epoch and
//! obeying the scheduler's continue/stop answer. Trainers know nothing of the store.

mod avx2;
mod avx512;
mod burn;
mod checkpoint;
mod fused;
mod model;
mod synthetic;

pub use self::burn::BurnTrainer;
#[cfg(feature = "ndarray")]
pub use self::burn::ndarray_device;
pub use fused::FusedTrainer;
pub use model::{Mlp, MlpConfig};
pub use synthetic::SyntheticTrainer;

use std::sync::{Arc, OnceLock};

use crate::data::Split;
use crate::spec::{Engine, Metric, TrialConfig};

/// The real trainer: each trial trains on the engine its config names.
#[derive(Clone)]
pub struct MlpTrainer {
    /// Also holds the split, from which `burn` is made.
    fused: FusedTrainer,
    /// Made for the first trial on burn: a sweep on the fused engine never needs its tensors
    /// (making them took 0.35 ms of the digits sweep's start, before its first trial).
    burn: Arc<OnceLock<BurnTrainer>>,
}

impl MlpTrainer {
    pub fn new(split: &Split) -> Self {
        Self::shared(Arc::new(split.clone()))
    }

    /// As [`MlpTrainer::new`], keeping `split` itself rather than a copy.
    pub fn shared(split: Arc<Split>) -> Self {
        Self {
            fused: FusedTrainer::shared(split),
            burn: Arc::default(),
        }
    }

    fn burn(&self) -> &BurnTrainer {
        self.burn
            .get_or_init(|| BurnTrainer::new(self.fused.split()))
    }
}

impl Trainer for MlpTrainer {
    fn train(
        &self,
        config: &TrialConfig,
        resume: Option<&Checkpoint>,
        on_epoch: &mut EpochSink,
    ) -> Result<TrainEnd, TrainError> {
        match config.engine {
            Engine::Fused => self.fused.train(config, resume, on_epoch),
            Engine::Burn => self.burn().train(config, resume, on_epoch),
        }
    }
}

/// What a trainer measured in one epoch (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    pub val_loss: f64,
    /// Classification only: the share of validation rows predicted right.
    pub val_accuracy: Option<f64>,
    /// Regression only: root mean squared error on validation, in the target's units.
    pub val_rmse: Option<f64>,
    /// Wall time of the epoch (training and validation), in seconds.
    pub seconds: f64,
    /// Each mini-batch's training loss, in order (stored as the epoch's `step_losses` row, one
    /// row per step in the `steps` view; empty when a trainer does not report them). The
    /// scheduler moves them to the store and does not keep them with the curve.
    pub steps: Vec<f32>,
}

impl EpochReport {
    /// The metric's value; NaN when this trainer does not report it for the task.
    pub fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::TrainLoss => self.train_loss,
            Metric::ValLoss => self.val_loss,
            Metric::ValAccuracy => self.val_accuracy.unwrap_or(f64::NAN),
            Metric::ValRmse => self.val_rmse.unwrap_or(f64::NAN),
        }
    }

    /// Every stored series, as `(name, value)`; the names are those in the `metrics` table.
    pub fn series(&self) -> Vec<(&'static str, f64)> {
        let mut out = vec![("train_loss", self.train_loss), ("val_loss", self.val_loss)];
        if let Some(a) = self.val_accuracy {
            out.push(("val_accuracy", a));
        }
        if let Some(r) = self.val_rmse {
            out.push(("val_rmse", r));
        }
        out.push(("epoch_seconds", self.seconds));
        out
    }
}

/// Called after every epoch with its report; returns the scheduler's answer.
pub type EpochSink<'a> = dyn FnMut(EpochReport) -> Control + Send + 'a;

/// The scheduler's answer to an epoch report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
    /// Stop for now and return a [`Checkpoint`] to continue from later (ASHA).
    Pause,
}

/// A trainer's saved state after `epoch`: everything it needs to continue exactly where it
/// stopped (model, optimizer state, data order, random streams). Opaque to the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub epoch: usize,
    pub data: Vec<u8>,
}

/// How a call to [`Trainer::train`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEnd {
    /// Ran this many epochs in total (fewer than planned when told to stop).
    Finished(usize),
    /// Told to pause: the state to continue from.
    Paused(Checkpoint),
}

/// Why a trial could not be trained (bad configuration for this data, a backend failure...).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TrainError(pub String);

/// Trains one trial. Blocking: the scheduler runs it on its own thread. `on_epoch` is called
/// after every epoch and returns whether to go on, stop, or pause; with `resume`, training
/// continues from that checkpoint at the epoch after it, never from epoch 1.
pub trait Trainer: Send + Sync + 'static {
    fn train(
        &self,
        config: &TrialConfig,
        resume: Option<&Checkpoint>,
        on_epoch: &mut EpochSink,
    ) -> Result<TrainEnd, TrainError>;
}
