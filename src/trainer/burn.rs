//! The real trainer: an MLP with cross-entropy loss, Adam or SGD, on burn's `flex` CPU backend.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{AdamConfig, GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::model::MlpConfig;
use super::{Control, EpochReport, EpochSink, TrainError, Trainer};
use crate::data::{Split, Table};
use crate::spec::{Optimizer, TrialConfig};

/// burn seeds one generator per backend, not per thread: parameter initialisation holds this
/// lock from seeding to the last initialised weight, so concurrent trials stay reproducible.
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// One split of the data as tensors on the CPU device.
struct Tensors {
    x: Tensor<2>,
    y: Tensor<1, Int>,
    rows: usize,
}

impl Tensors {
    fn new(table: &Table, device: &Device) -> Self {
        let rows = table.rows();
        let x = TensorData::new(table.features.clone(), [rows, table.n_features]);
        let labels: Vec<i64> = table.labels.iter().map(|&l| l as i64).collect();
        Self {
            x: Tensor::from_data(x, device),
            y: Tensor::from_data(TensorData::new(labels, [rows]), device),
            rows,
        }
    }
}

/// Trains on one split; the data become tensors once, when this is built, and every trial
/// shares them.
#[derive(Clone)]
pub struct BurnTrainer {
    device: Device,
    data: Arc<(Tensors, Tensors)>,
    n_features: usize,
    n_classes: usize,
}

impl BurnTrainer {
    /// Trains on burn's `flex` CPU backend (chosen by measurement; see README).
    pub fn new(split: &Split) -> Self {
        Self::with_device(split, Device::flex())
    }

    /// Trains on `device` (a plain device; autodiff is added for training).
    pub fn with_device(split: &Split, device: Device) -> Self {
        Self {
            device: device.clone(),
            data: Arc::new((
                Tensors::new(&split.train, &device),
                Tensors::new(&split.valid, &device),
            )),
            n_features: split.train.n_features,
            n_classes: split.train.n_classes,
        }
    }
}

impl Trainer for BurnTrainer {
    fn train(&self, config: &TrialConfig, on_epoch: &mut EpochSink) -> Result<usize, TrainError> {
        // One thread per trial: with several trials at once, a full-size pool each would fight
        // for the same cores.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .map_err(|e| TrainError(format!("cannot start a training thread pool: {e}")))?;
        pool.install(|| self.train_on_this_thread(config, on_epoch))
    }
}

impl BurnTrainer {
    fn train_on_this_thread(
        &self,
        config: &TrialConfig,
        on_epoch: &mut EpochSink,
    ) -> Result<usize, TrainError> {
        let device = self.device.clone().autodiff();
        let mlp = MlpConfig::new(
            self.n_features,
            config.hidden.clone(),
            self.n_classes,
            MlpConfig::activation_for(config.activation),
        );
        let mut model = {
            let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            device.seed(config.seed);
            let model = mlp.init(&device);
            // burn initialises parameters lazily, on first use: use them all now, under the lock.
            let _ = model
                .forward(Tensor::zeros([1, self.n_features], &device))
                .into_data();
            model
        };
        let mut optim = match config.optimizer {
            Optimizer::Adam => AdamConfig::new().init(),
            Optimizer::Sgd => SgdConfig::new().init(),
        };
        let loss_fn: CrossEntropyLoss = CrossEntropyLossConfig::new().init(&device);
        let (train, valid) = (&self.data.0, &self.data.1);
        let mut order: Vec<usize> = (0..train.rows).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);

        for epoch in 1..=config.epochs {
            let started = Instant::now();
            order.shuffle(&mut rng);
            let mut batch_losses = Vec::with_capacity(order.len().div_ceil(config.batch_size));
            for chunk in order.chunks(config.batch_size) {
                let idx: Vec<i64> = chunk.iter().map(|&i| i as i64).collect();
                let idx = Tensor::<1, Int>::from_data(
                    TensorData::new(idx, [chunk.len()]),
                    &train.x.device(),
                );
                let x = train.x.clone().select(0, idx.clone());
                let y = train.y.clone().select(0, idx);
                let loss = loss_fn.forward(model.forward(x), y);
                batch_losses.push(loss.clone().inner());
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(config.learning_rate, model, grads);
            }
            let train_loss = f64::from(Tensor::cat(batch_losses, 0).mean().into_scalar::<f32>());

            let eval = model.valid();
            let logits = eval.forward(valid.x.clone());
            let val_loss = f64::from(
                loss_fn
                    .forward(logits.clone(), valid.y.clone())
                    .into_scalar::<f32>(),
            );
            let correct = logits
                .argmax(1)
                .reshape([valid.rows])
                .equal(valid.y.clone())
                .int()
                .sum()
                .into_scalar::<i64>();
            let report = EpochReport {
                epoch,
                train_loss,
                val_loss,
                val_accuracy: correct as f64 / valid.rows.max(1) as f64,
                seconds: started.elapsed().as_secs_f64(),
            };
            if on_epoch(report) == Control::Stop {
                return Ok(epoch);
            }
        }
        Ok(config.epochs)
    }
}

/// burn's deprecated ndarray CPU device, for the backend benchmark only.
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
pub fn ndarray_device() -> Device {
    Device::ndarray()
}
