//! The validated sweep: types that can only hold values the rest of lcurve accepts.

use serde::{Deserialize, Serialize};

/// A word from a fixed set, as written in a sweep file (`"relu"`, `"adam"`, ...).
pub trait Choice: Sized + Copy + 'static {
    const ALL: &'static [(&'static str, Self)];

    fn parse(word: &str) -> Option<Self> {
        Self::ALL.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
    }

    fn name(self) -> &'static str
    where
        Self: PartialEq,
    {
        Self::ALL
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(w, _)| *w)
            .unwrap_or("?")
    }

    /// `"a", "b" or "c"`, for error messages.
    fn accepted() -> String {
        let words: Vec<String> = Self::ALL.iter().map(|(w, _)| format!("\"{w}\"")).collect();
        match words.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => words.join(""),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    LeakyRelu,
    Gelu,
    Sigmoid,
    Tanh,
}

impl Choice for Activation {
    const ALL: &'static [(&'static str, Self)] = &[
        ("relu", Self::Relu),
        ("leaky_relu", Self::LeakyRelu),
        ("gelu", Self::Gelu),
        ("sigmoid", Self::Sigmoid),
        ("tanh", Self::Tanh),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    Adam,
    Sgd,
}

impl Choice for Optimizer {
    const ALL: &'static [(&'static str, Self)] = &[("adam", Self::Adam), ("sgd", Self::Sgd)];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetName {
    Digits,
}

impl Choice for DatasetName {
    const ALL: &'static [(&'static str, Self)] = &[("digits", Self::Digits)];
}

/// A metric that every trainer reports each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    TrainLoss,
    ValLoss,
    ValAccuracy,
}

impl Choice for Metric {
    const ALL: &'static [(&'static str, Self)] = &[
        ("val_loss", Self::ValLoss),
        ("val_accuracy", Self::ValAccuracy),
        ("train_loss", Self::TrainLoss),
    ];
}

impl Metric {
    /// Whether a smaller value is better.
    pub fn minimize(self) -> bool {
        !matches!(self, Self::ValAccuracy)
    }
}

/// A sweep name: non-empty, at most 100 characters of `A-Z a-z 0-9 . _ -`, not starting with `.`,
/// so it can name a folder under `reports/` as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SweepName(String);

impl SweepName {
    pub const RULE: &'static str =
        "1 to 100 characters of letters, digits, '.', '_' and '-', not starting with '.'";

    pub fn parse(name: &str) -> Option<Self> {
        let ok = !name.is_empty()
            && name.len() <= 100
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        ok.then(|| Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SweepName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSpec {
    pub dataset: DatasetName,
    pub validation_fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpec {
    pub hidden: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainSpec {
    pub optimizer: Optimizer,
    /// How many trials run at once. A property of the machine, not of the experiment, so it
    /// is left out of the stored spec and its hash: resuming on another machine is allowed.
    #[serde(skip)]
    pub max_parallel: usize,
}

/// The lists whose Cartesian product is the sweep; each list is non-empty and has no repeats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridSpec {
    pub learning_rate: Vec<f64>,
    pub batch_size: Vec<usize>,
    pub epochs: Vec<usize>,
    pub activation: Vec<Activation>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoppingSpec {
    pub metric: Metric,
    pub patience: usize,
    pub min_delta: f64,
}

/// A whole sweep file after validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepSpec {
    pub name: SweepName,
    pub seed: u64,
    /// Free text; stored in `sweeps.description`, not in the spec or its hash.
    #[serde(skip)]
    pub description: Option<String>,
    pub data: DataSpec,
    pub model: ModelSpec,
    pub train: TrainSpec,
    pub grid: GridSpec,
    pub stopping: Option<StoppingSpec>,
}

impl SweepSpec {
    /// The spec as canonical JSON: what is stored in `sweeps.spec` and hashed.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a spec always serializes")
    }

    /// Hex SHA-256 of [`Self::to_json`]; equal hashes mean the same experiment.
    pub fn hash(&self) -> String {
        crate::util::sha256_hex(self.to_json().as_bytes())
    }
}
