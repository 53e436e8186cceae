//! The multi-layer perceptron that burn trains: linear layers with one activation between
//! them, and optional dropout after each hidden layer.

use burn::config::Config;
use burn::module::Module;
use burn::nn::activation::{Activation as ActivationModule, ActivationConfig, LeakyReluConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::spec::Activation;

#[derive(Config, Debug)]
pub struct MlpConfig {
    pub n_features: usize,
    pub hidden: Vec<usize>,
    /// Classes for classification, 1 for regression.
    pub n_outputs: usize,
    pub activation: ActivationConfig,
}

impl MlpConfig {
    /// The burn activation config for one of lcurve's activation names.
    pub fn activation_for(activation: Activation, negative_slope: Option<f64>) -> ActivationConfig {
        match activation {
            Activation::Relu => ActivationConfig::Relu,
            Activation::LeakyRelu => ActivationConfig::LeakyRelu(
                LeakyReluConfig::new().with_negative_slope(negative_slope.unwrap_or(0.01)),
            ),
            Activation::Gelu => ActivationConfig::Gelu,
            Activation::Sigmoid => ActivationConfig::Sigmoid,
            Activation::Tanh => ActivationConfig::Tanh,
        }
    }

    pub fn init(&self, device: &Device) -> Mlp {
        let mut widths = vec![self.n_features];
        widths.extend(&self.hidden);
        let hidden = widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        let last = *widths.last().expect("widths starts with n_features");
        Mlp {
            hidden,
            activation: self.activation.init(device),
            output: LinearConfig::new(last, self.n_outputs).init(device),
        }
    }
}

/// One linear layer's weights (`[d_in, d_out]`, row-major) and bias, as plain numbers.
pub type LayerValues = (Vec<f32>, Vec<f32>);

#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    activation: ActivationModule,
    output: Linear,
}

/// Dropout driven by the trial's own generator, so concurrent trials stay reproducible
/// (burn's dropout draws from one generator shared by every thread).
pub struct Dropout<'a> {
    pub prob: f64,
    pub rng: &'a mut ChaCha8Rng,
}

impl Dropout<'_> {
    /// Fills a row-major mask with `1 / keep` (kept) or 0 (dropped), one draw per element.
    pub fn fill(&mut self, mask: &mut [f32]) {
        let keep = 1.0 - self.prob;
        let scale = (1.0 / keep) as f32;
        for m in mask {
            *m = if self.rng.random_bool(keep) {
                scale
            } else {
                0.0
            };
        }
    }

    fn apply(&mut self, x: Tensor<2>) -> Tensor<2> {
        let [rows, cols] = x.dims();
        let mut mask = vec![0.0; rows * cols];
        self.fill(&mut mask);
        let mask = Tensor::from_data(TensorData::new(mask, [rows, cols]), &x.device());
        x * mask
    }
}

impl Mlp {
    /// Each layer's weights (`[d_in, d_out]`, row-major) and bias, input layer first.
    pub fn layer_values(&self) -> Result<Vec<LayerValues>, String> {
        fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, String> {
            t.into_data()
                .try_to_vec::<f32>()
                .map_err(|e| format!("{e:?}"))
        }
        self.hidden
            .iter()
            .chain(std::iter::once(&self.output))
            .map(|layer| {
                let w = read(layer.weight.val())?;
                let b = match &layer.bias {
                    Some(b) => read(b.val())?,
                    None => vec![0.0; layer.weight.val().dims()[1]],
                };
                Ok((w, b))
            })
            .collect()
    }

    /// Outputs for a batch (logits, or predictions for regression), without dropout.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_train(x, None)
    }

    /// Outputs for a training batch, with dropout after each hidden layer when given.
    pub fn forward_train(&self, x: Tensor<2>, mut dropout: Option<&mut Dropout>) -> Tensor<2> {
        // x: [batch, n_features] -> ... -> [batch, hidden[i]] -> [batch, n_outputs]
        let x = self.hidden.iter().fold(x, |x, layer| {
            let h = self.activation.forward(layer.forward(x));
            match dropout.as_deref_mut() {
                Some(d) if d.prob > 0.0 => d.apply(h),
                _ => h,
            }
        });
        self.output.forward(x)
    }
}
