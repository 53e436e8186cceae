//! The validated sweep: types that can only hold values the rest of lcurve accepts.

use serde::{Deserialize, Serialize};

use super::space::Space;

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

/// What computes the training steps. Both train the same model from the same initial
/// weights with the same batches; their curves agree to float rounding, not bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// Forward, backward and optimizer as a few GEMMs and loops over flat f32 buffers.
    Fused,
    /// burn's autodiff on its `flex` CPU backend (every sweep before `engine` existed).
    Burn,
}

impl Engine {
    /// Sweeps and trials stored before engines existed trained with burn and name none, so
    /// burn is left out of the stored JSON to keep their hashes.
    pub fn is_burn(&self) -> bool {
        *self == Self::Burn
    }

    pub fn burn() -> Self {
        Self::Burn
    }
}

impl Choice for Engine {
    const ALL: &'static [(&'static str, Self)] = &[("fused", Self::Fused), ("burn", Self::Burn)];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    Constant,
    Step,
    Cosine,
}

impl Choice for LrSchedule {
    const ALL: &'static [(&'static str, Self)] = &[
        ("constant", Self::Constant),
        ("step", Self::Step),
        ("cosine", Self::Cosine),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetName {
    Digits,
    Iris,
    Wine,
    BreastCancer,
    Diabetes,
    Csv,
}

impl Choice for DatasetName {
    const ALL: &'static [(&'static str, Self)] = &[
        ("digits", Self::Digits),
        ("iris", Self::Iris),
        ("wine", Self::Wine),
        ("breast_cancer", Self::BreastCancer),
        ("diabetes", Self::Diabetes),
        ("csv", Self::Csv),
    ];
}

/// What the model predicts: a class (cross-entropy, accuracy) or a number (MSE, RMSE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Classification,
    Regression,
}

impl Choice for Task {
    const ALL: &'static [(&'static str, Self)] = &[
        ("classification", Self::Classification),
        ("regression", Self::Regression),
    ];
}

/// What to do with a CSV row that has an empty or `NA` cell in a used column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    Drop,
    Fail,
}

impl Choice for MissingPolicy {
    const ALL: &'static [(&'static str, Self)] = &[("drop", Self::Drop), ("fail", Self::Fail)];
}

/// What to do with a feature column that holds text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoricalPolicy {
    OneHot,
    Refuse,
}

impl Choice for CategoricalPolicy {
    const ALL: &'static [(&'static str, Self)] =
        &[("one_hot", Self::OneHot), ("refuse", Self::Refuse)];
}

/// A metric that every trainer reports each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    TrainLoss,
    ValLoss,
    ValAccuracy,
    ValRmse,
}

impl Choice for Metric {
    const ALL: &'static [(&'static str, Self)] = &[
        ("val_loss", Self::ValLoss),
        ("val_accuracy", Self::ValAccuracy),
        ("train_loss", Self::TrainLoss),
        ("val_rmse", Self::ValRmse),
    ];
}

impl Metric {
    /// Whether a smaller value is better.
    pub fn minimize(self) -> bool {
        !matches!(self, Self::ValAccuracy)
    }

    /// Whether `a` is a better value than `b` (NaN is never better, and anything beats NaN).
    pub fn better(self, a: f64, b: f64) -> bool {
        if a.is_nan() {
            return false;
        }
        if b.is_nan() {
            return true;
        }
        if self.minimize() { a < b } else { a > b }
    }

    /// The best of `values`; NaN when there is none.
    pub fn best(self, values: impl IntoIterator<Item = f64>) -> f64 {
        values
            .into_iter()
            .fold(f64::NAN, |b, v| if self.better(v, b) { v } else { b })
    }

    /// The metrics reported for `task`, quoted, for "accepted: ..." in errors.
    pub fn reported_for(task: Task) -> String {
        Self::ALL
            .iter()
            .filter(|(_, m)| m.applies_to(task))
            .map(|(w, _)| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether trainers report this metric for `task`.
    pub fn applies_to(self, task: Task) -> bool {
        match self {
            Self::ValAccuracy => task == Task::Classification,
            Self::ValRmse => task == Task::Regression,
            Self::TrainLoss | Self::ValLoss => true,
        }
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

/// A CSV file as the data (`dataset = "csv"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvSpec {
    /// As written in the sweep file, relative to it; stored so the spec does not depend on
    /// where the project is checked out.
    pub path: String,
    /// `path` resolved against the sweep file's folder; where the file is read from.
    #[serde(skip)]
    pub resolved: std::path::PathBuf,
    pub target: String,
    /// Feature columns; `None` means every other column.
    pub features: Option<Vec<String>>,
    pub header: bool,
    pub delimiter: char,
    pub missing: MissingPolicy,
    pub categorical: CategoricalPolicy,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSpec {
    pub dataset: DatasetName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvSpec>,
    /// `None` until the data are read, when the sweep file leaves it to be inferred.
    pub task: Option<Task>,
    pub validation_fraction: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Grid,
    Random,
}

impl Choice for Strategy {
    const ALL: &'static [(&'static str, Self)] = &[("grid", Self::Grid), ("random", Self::Random)];
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchSpec {
    pub strategy: Strategy,
    /// Random samples per grid point (1 for a plain grid).
    pub trials: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainSpec {
    /// How many trials run at once. A property of the machine, not of the experiment, so it
    /// is left out of the stored spec and its hash: resuming on another machine is allowed.
    #[serde(skip)]
    pub max_parallel: usize,
    /// Part of the experiment (the numbers differ in rounding), so it is in the hash.
    #[serde(skip_serializing_if = "Engine::is_burn")]
    pub engine: Engine,
    /// Whether the sweep file names the engine; when it does not, a sweep that an older
    /// lcurve began (on burn) continues on burn.
    #[serde(skip)]
    pub engine_named: bool,
}

impl TrainSpec {
    /// Nothing of it is stored: the spec JSON then has no `train` key, as before engines.
    pub fn stores_nothing(&self) -> bool {
        self.engine.is_burn()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatienceSpec {
    pub patience: usize,
    pub min_delta: f64,
    pub warmup: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdSpec {
    pub after_epoch: usize,
    pub worse_than: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MedianSpec {
    pub warmup: usize,
    pub min_peers: usize,
    pub percentile: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtrapolationSpec {
    pub warmup: usize,
    pub min_probability: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AshaSpec {
    /// The first rung's epoch.
    pub min_epochs: usize,
    /// Each rung keeps the top `1/eta` and is `eta` times further than the last.
    pub eta: usize,
}

/// The defaults of the rules' settings, shared by sweep files and `lcurve replay` policies.
impl Default for PatienceSpec {
    fn default() -> Self {
        Self {
            patience: 5,
            min_delta: 0.0,
            warmup: 0,
        }
    }
}

impl Default for MedianSpec {
    fn default() -> Self {
        Self {
            warmup: 5,
            min_peers: 4,
            percentile: 50.0,
        }
    }
}

impl Default for ExtrapolationSpec {
    fn default() -> Self {
        Self {
            warmup: 5,
            min_probability: 0.05,
        }
    }
}

impl Default for AshaSpec {
    fn default() -> Self {
        Self {
            min_epochs: 1,
            eta: 3,
        }
    }
}

/// The `[stopping]` table: one metric and the rules that watch it (any combination).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoppingSpec {
    pub metric: Metric,
    pub patience: Option<PatienceSpec>,
    pub threshold: Option<ThresholdSpec>,
    pub median: Option<MedianSpec>,
    pub extrapolation: Option<ExtrapolationSpec>,
    pub asha: Option<AshaSpec>,
    /// A loss above this many times its first value counts as divergence.
    pub divergence_factor: Option<f64>,
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
    pub search: SearchSpec,
    pub params: Space,
    #[serde(skip_serializing_if = "TrainSpec::stores_nothing")]
    pub train: TrainSpec,
    pub stopping: Option<StoppingSpec>,
    /// The sweep file's text as read; stored in `sweeps.source` for the report, not in the
    /// spec or its hash (comments and layout do not change a sweep).
    #[serde(skip)]
    pub source: Option<String>,
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
