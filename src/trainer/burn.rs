//! The real trainer: an MLP on burn's `flex` CPU backend, cross-entropy for classification or
//! MSE for regression, Adam or SGD, with weight decay, dropout and a learning-rate schedule.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig, MseLoss, Reduction};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, OptimizerRecord, SgdConfig};
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::Saved;
use super::model::{Dropout, Mlp, MlpConfig};
use super::{Checkpoint, Control, EpochReport, EpochSink, TrainEnd, TrainError, Trainer};
use crate::data::{Split, Subsets, Table, Target};
use crate::spec::{Optimizer, TrialConfig};

/// burn seeds one generator per backend, not per thread: parameter initialisation holds this
/// lock from seeding to the last initialised weight, so concurrent trials stay reproducible.
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// What the model is trained to output, as a tensor per split.
#[derive(Clone)]
enum Labels {
    Classes(Tensor<1, Int>),
    /// Standardized regression targets, `[rows, 1]`.
    Values(Tensor<2>),
}

/// One split of the data as tensors on the CPU device.
struct Tensors {
    x: Tensor<2>,
    y: Labels,
    rows: usize,
}

impl Tensors {
    fn new(table: &Table, device: &Device) -> Self {
        let rows = table.rows();
        let x = TensorData::new(table.features.clone(), [rows, table.n_features]);
        let y = match &table.target {
            Target::Classes(labels) => {
                let labels: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
                Labels::Classes(Tensor::from_data(TensorData::new(labels, [rows]), device))
            }
            Target::Values(v) => Labels::Values(Tensor::from_data(
                TensorData::new(v.clone(), [rows, 1]),
                device,
            )),
        };
        Self {
            x: Tensor::from_data(x, device),
            y,
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
    subsets: Subsets,
    n_features: usize,
    n_outputs: usize,
    /// The regression target's standard deviation, to report RMSE in its own units.
    target_std: Option<f64>,
}

impl BurnTrainer {
    /// Trains on burn's `flex` CPU backend (chosen by measurement; see README).
    pub fn new(split: &Split) -> Self {
        Self::with_device(split, Device::flex())
    }

    /// Trains on `device` (a plain device; autodiff is added for training).
    pub fn with_device(split: &Split, device: Device) -> Self {
        let n_outputs = match split.train.target {
            Target::Classes(_) => split.train.n_classes(),
            Target::Values(_) => 1,
        };
        Self {
            device: device.clone(),
            data: Arc::new((
                Tensors::new(&split.train, &device),
                Tensors::new(&split.valid, &device),
            )),
            subsets: split.subsets.clone(),
            n_features: split.train.n_features,
            n_outputs,
            target_std: split.record.target_std,
        }
    }
}

impl Trainer for BurnTrainer {
    fn train(
        &self,
        config: &TrialConfig,
        resume: Option<&Checkpoint>,
        on_epoch: &mut EpochSink,
    ) -> Result<TrainEnd, TrainError> {
        // One thread per trial: with several trials at once, a full-size pool each would fight
        // for the same cores.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .map_err(|e| TrainError(format!("cannot start a training thread pool: {e}")))?;
        pool.install(|| self.train_on_this_thread(config, resume, on_epoch))
    }
}

/// The trial's model with burn's initial weights for its seed, on `device` (an autodiff one).
pub(super) fn initial_model(
    device: &Device,
    config: &TrialConfig,
    n_features: usize,
    n_outputs: usize,
) -> Mlp {
    let mlp = MlpConfig::new(
        n_features,
        config.hidden.clone(),
        n_outputs,
        MlpConfig::activation_for(config.activation, config.negative_slope),
    );
    let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    device.seed(config.seed);
    let model = mlp.init(device);
    // burn initialises parameters lazily, on first use: use them all now, under the lock.
    let _ = model
        .forward(Tensor::zeros([1, n_features], device))
        .into_data();
    model
}

/// Adam or SGD as the trial's config says.
enum Optim<O1, O2> {
    Adam(O1),
    Sgd(O2),
}

impl BurnTrainer {
    fn loss(&self, output: Tensor<2>, y: &Labels, ce: &CrossEntropyLoss) -> Tensor<1> {
        match y {
            Labels::Classes(labels) => ce.forward(output, labels.clone()),
            Labels::Values(values) => MseLoss::new()
                .forward(output, values.clone(), Reduction::Mean)
                .reshape([1]),
        }
    }

    fn train_on_this_thread(
        &self,
        config: &TrialConfig,
        resume: Option<&Checkpoint>,
        on_epoch: &mut EpochSink,
    ) -> Result<TrainEnd, TrainError> {
        let device = self.device.clone().autodiff();
        let mut model = initial_model(&device, config, self.n_features, self.n_outputs);
        let decay =
            (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32));
        let mut optim = match config.optimizer {
            Optimizer::Adam => Optim::Adam(
                AdamConfig::new()
                    .with_beta_1(config.beta1.unwrap_or(0.9) as f32)
                    .with_beta_2(config.beta2.unwrap_or(0.999) as f32)
                    .with_weight_decay(decay)
                    .init(),
            ),
            Optimizer::Sgd => Optim::Sgd(
                SgdConfig::new()
                    .with_weight_decay(decay)
                    .with_momentum(config.momentum.filter(|&m| m > 0.0).map(|m| {
                        // Dampening 0, as in PyTorch (burn's default is 0.1).
                        MomentumConfig::new().with_momentum(m).with_dampening(0.0)
                    }))
                    .init(),
            ),
        };
        let ce: CrossEntropyLoss = CrossEntropyLossConfig::new().init(&device);
        let (train, valid) = (&self.data.0, &self.data.1);
        let mut order = self.subsets.pick(config.train_fraction);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut first = 1;
        if let Some(cp) = resume {
            let saved = Saved::decode(&cp.data)
                .ok_or_else(|| TrainError("the checkpoint is damaged".into()))?;
            let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(saved.model))
                .map_err(|e| TrainError(format!("cannot read the checkpoint's model: {e}")))?;
            model = model
                .try_load_record(record)
                .map_err(|e| TrainError(format!("cannot load the checkpoint's model: {e}")))?;
            let record = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(saved.optim))
                .map_err(|e| TrainError(format!("cannot read the checkpoint's optimizer: {e}")))?;
            optim = match optim {
                Optim::Adam(o) => Optim::Adam(o.load_record(record)),
                Optim::Sgd(o) => Optim::Sgd(o.load_record(record)),
            };
            rng.set_word_pos(saved.rng_word_pos);
            order = saved.order;
            first = cp.epoch + 1;
        }

        for epoch in first..=config.epochs {
            let started = Instant::now();
            let lr = config.learning_rate_at(epoch);
            order.shuffle(&mut rng);
            let mut batch_losses = Vec::with_capacity(order.len().div_ceil(config.batch_size));
            // One gather per epoch into the shuffled order; batches are then contiguous
            // slices of it (the same rows in the same order as a gather per batch, so the
            // same numbers; measured no slower).
            let idx: Vec<i64> = order.iter().map(|&i| i as i64).collect();
            let idx =
                Tensor::<1, Int>::from_data(TensorData::new(idx, [order.len()]), &train.x.device());
            let xs = train.x.clone().select(0, idx.clone());
            let ys = match &train.y {
                Labels::Classes(l) => Labels::Classes(l.clone().select(0, idx)),
                Labels::Values(v) => Labels::Values(v.clone().select(0, idx)),
            };
            for start in (0..order.len()).step_by(config.batch_size) {
                let end = (start + config.batch_size).min(order.len());
                let x = xs.clone().slice(start..end);
                let y = match &ys {
                    Labels::Classes(l) => Labels::Classes(l.clone().slice(start..end)),
                    Labels::Values(v) => Labels::Values(v.clone().slice(start..end)),
                };
                let mut dropout = Dropout {
                    prob: config.dropout,
                    rng: &mut rng,
                };
                let output = model.forward_train(x, Some(&mut dropout));
                let loss = self.loss(output, &y, &ce);
                batch_losses.push(loss.clone().inner());
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = match &mut optim {
                    Optim::Adam(o) => o.step(lr, model, grads),
                    Optim::Sgd(o) => o.step(lr, model, grads),
                };
            }
            let batch_losses = Tensor::cat(batch_losses, 0);
            let steps = batch_losses
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| TrainError(format!("cannot read the batch losses: {e:?}")))?;
            let train_loss = f64::from(batch_losses.mean().into_scalar::<f32>());

            let eval = model.valid();
            let output = eval.forward(valid.x.clone());
            let val_loss = f64::from(
                self.loss(output.clone(), &valid.y, &ce)
                    .into_scalar::<f32>(),
            );
            let (val_accuracy, val_rmse) = match &valid.y {
                Labels::Classes(labels) => {
                    let correct = output
                        .argmax(1)
                        .reshape([valid.rows])
                        .equal(labels.clone())
                        .int()
                        .sum()
                        .into_scalar::<i64>();
                    (Some(correct as f64 / valid.rows.max(1) as f64), None)
                }
                Labels::Values(_) => (None, Some(val_loss.sqrt() * self.target_std.unwrap_or(1.0))),
            };
            let report = EpochReport {
                epoch,
                train_loss,
                val_loss,
                val_accuracy,
                val_rmse,
                seconds: started.elapsed().as_secs_f64(),
                steps,
            };
            match on_epoch(report) {
                Control::Continue => {}
                Control::Stop => return Ok(TrainEnd::Finished(epoch)),
                Control::Pause => {
                    let err = |e: burn::store::RecordError| {
                        TrainError(format!("cannot save a checkpoint: {e}"))
                    };
                    let model = model.clone().into_record().into_bytes().map_err(err)?;
                    let optim = match &optim {
                        Optim::Adam(o) => o.to_record(),
                        Optim::Sgd(o) => o.to_record(),
                    }
                    .into_bytes()
                    .map_err(err)?;
                    let saved = Saved {
                        model: model.to_vec(),
                        optim: optim.to_vec(),
                        rng_word_pos: rng.get_word_pos(),
                        order,
                    };
                    return Ok(TrainEnd::Paused(Checkpoint {
                        epoch,
                        data: saved.encode(),
                    }));
                }
            }
        }
        Ok(TrainEnd::Finished(config.epochs))
    }
}

/// burn's deprecated ndarray CPU device, for the backend benchmark only.
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
pub fn ndarray_device() -> Device {
    Device::ndarray()
}
