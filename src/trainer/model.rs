//! The multi-layer perceptron that burn trains: linear layers with one activation between them.

use burn::config::Config;
use burn::module::Module;
use burn::nn::activation::{Activation as ActivationModule, ActivationConfig, LeakyReluConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::spec::Activation;

#[derive(Config, Debug)]
pub struct MlpConfig {
    pub n_features: usize,
    pub hidden: Vec<usize>,
    pub n_classes: usize,
    pub activation: ActivationConfig,
}

impl MlpConfig {
    /// The burn activation config for one of lcurve's activation names.
    pub fn activation_for(activation: Activation) -> ActivationConfig {
        match activation {
            Activation::Relu => ActivationConfig::Relu,
            Activation::LeakyRelu => ActivationConfig::LeakyRelu(LeakyReluConfig::new()),
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
            output: LinearConfig::new(last, self.n_classes).init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    activation: ActivationModule,
    output: Linear,
}

impl Mlp {
    /// Logits for a batch.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        // x: [batch, n_features] -> ... -> [batch, hidden[i]] -> [batch, n_classes]
        let x = self
            .hidden
            .iter()
            .fold(x, |x, layer| self.activation.forward(layer.forward(x)));
        self.output.forward(x)
    }
}
