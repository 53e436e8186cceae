//! Expands a sweep's grid into trials, in a fixed order that users and tests rely on.

use serde::{Deserialize, Serialize};

use super::types::{Activation, DatasetName, Optimizer, SweepSpec};

/// Everything that determines one trial's result. Stored as JSON in `trials.config`;
/// its hash identifies the trial within a sweep across reruns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialConfig {
    pub learning_rate: f64,
    pub batch_size: usize,
    pub epochs: usize,
    pub activation: Activation,
    pub optimizer: Optimizer,
    pub hidden: Vec<usize>,
    pub seed: u64,
    pub dataset: DatasetName,
    pub validation_fraction: f64,
}

impl TrialConfig {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a trial config always serializes")
    }

    pub fn hash(&self) -> String {
        crate::util::sha256_hex(self.to_json().as_bytes())
    }

    /// A short human label, e.g. `lr=0.001 bs=32 ep=30 relu`.
    pub fn label(&self) -> String {
        format!(
            "lr={} bs={} ep={} {}",
            self.learning_rate,
            self.batch_size,
            self.epochs,
            crate::spec::Choice::name(self.activation)
        )
    }
}

/// One grid point with its 0-based position in expansion order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTrial {
    pub ordinal: usize,
    pub config: TrialConfig,
}

/// Number of trials the grid expands to.
pub fn grid_size(spec: &SweepSpec) -> usize {
    let g = &spec.grid;
    g.learning_rate.len() * g.batch_size.len() * g.epochs.len() * g.activation.len()
}

/// The Cartesian product of the grid lists. Order: `learning_rate` outermost, then
/// `batch_size`, `epochs`, and `activation` varying fastest; values in the order written.
pub fn expand(spec: &SweepSpec) -> Vec<PlannedTrial> {
    let g = &spec.grid;
    let mut out = Vec::with_capacity(grid_size(spec));
    for &learning_rate in &g.learning_rate {
        for &batch_size in &g.batch_size {
            for &epochs in &g.epochs {
                for &activation in &g.activation {
                    out.push(PlannedTrial {
                        ordinal: out.len(),
                        config: TrialConfig {
                            learning_rate,
                            batch_size,
                            epochs,
                            activation,
                            optimizer: spec.train.optimizer,
                            hidden: spec.model.hidden.clone(),
                            seed: spec.seed,
                            dataset: spec.data.dataset,
                            validation_fraction: spec.data.validation_fraction,
                        },
                    });
                }
            }
        }
    }
    out
}
