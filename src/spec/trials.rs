//! Expands a sweep's search space into trials, in a fixed order that users and tests rely on,
//! and resolves each trial to a config that holds every value it is trained with.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::space::{Assignment, Domain, Param, Value, product};
use super::types::{
    Activation, Choice, CsvSpec, DatasetName, Engine, LrSchedule, Optimizer, Strategy, SweepSpec,
    Task,
};

/// Everything that determines one trial's result. Stored as JSON in `trials.config`; its hash
/// identifies the trial within a sweep across reruns. Keys that do not apply to this trial
/// (`momentum` for Adam) are left out rather than stored with a meaningless value. Keys added
/// after lcurve 0.1 read with the values 0.1 trained with, so older databases stay readable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialConfig {
    pub learning_rate: f64,
    #[serde(default = "constant_schedule")]
    pub lr_schedule: LrSchedule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_step_every: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_step_gamma: Option<f64>,
    pub batch_size: usize,
    pub epochs: usize,
    pub optimizer: Optimizer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta2: Option<f64>,
    #[serde(default)]
    pub weight_decay: f64,
    pub hidden: Vec<usize>,
    #[serde(default)]
    pub dropout: f64,
    pub activation: Activation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_slope: Option<f64>,
    #[serde(default = "whole")]
    pub train_fraction: f64,
    /// Seeds weight initialisation, batch order and dropout.
    pub seed: u64,
    pub dataset: DatasetName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvSpec>,
    #[serde(default = "classification")]
    pub task: Task,
    pub validation_fraction: f64,
    /// Seeds the validation split and the `train_fraction` subset; the sweep's seed.
    /// (lcurve 0.1 split with the trial's `seed`, which was always the sweep's.)
    #[serde(default)]
    pub split_seed: u64,
    /// What computes the steps; trials stored before engines existed trained with burn.
    #[serde(default = "Engine::burn", skip_serializing_if = "Engine::is_burn")]
    pub engine: Engine,
}

fn constant_schedule() -> LrSchedule {
    LrSchedule::Constant
}

fn whole() -> f64 {
    1.0
}

fn classification() -> Task {
    Task::Classification
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
        let mut label = format!(
            "lr={} bs={} ep={} {}",
            self.learning_rate,
            self.batch_size,
            self.epochs,
            self.activation.name()
        );
        if self.optimizer != Optimizer::Adam {
            label.push(' ');
            label.push_str(self.optimizer.name());
        }
        label
    }

    /// The learning rate for `epoch` (1-based) under this trial's schedule. Cosine anneals
    /// from the full rate at epoch 1 towards 0 at `epochs + 1`; step multiplies by
    /// `lr_step_gamma` every `lr_step_every` epochs.
    pub fn learning_rate_at(&self, epoch: usize) -> f64 {
        let done = epoch.saturating_sub(1) as f64;
        match self.lr_schedule {
            LrSchedule::Constant => self.learning_rate,
            LrSchedule::Step => {
                let every = self.lr_step_every.unwrap_or(10).max(1);
                let steps = (epoch.saturating_sub(1) / every) as i32;
                self.learning_rate * self.lr_step_gamma.unwrap_or(0.5).powi(steps)
            }
            LrSchedule::Cosine => {
                let progress = done / self.epochs.max(1) as f64;
                self.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// Each hyperparameter this trial has, as `(key, value as text)`, in expansion order.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        self.param_values()
            .map(|(key, v)| (key, v.to_string()))
            .collect()
    }

    /// Each hyperparameter this trial has, as `(key, value)`, in expansion order; the values
    /// borrow from the config, so comparing them formats nothing ([`varying`] over 10,000
    /// trials).
    pub fn param_values(&self) -> impl Iterator<Item = (&'static str, ParamValue<'_>)> {
        use ParamValue::{Int, Num, Widths, Word};
        let int = |x: usize| Int(x as u64);
        let entries: [(Param, Option<ParamValue>); 17] = [
            (Param::TrainFraction, Some(Num(self.train_fraction))),
            (Param::LearningRate, Some(Num(self.learning_rate))),
            (Param::LrSchedule, Some(Word(self.lr_schedule.name()))),
            (Param::LrStepEvery, self.lr_step_every.map(int)),
            (Param::LrStepGamma, self.lr_step_gamma.map(Num)),
            (Param::BatchSize, Some(int(self.batch_size))),
            (Param::Epochs, Some(int(self.epochs))),
            (Param::Optimizer, Some(Word(self.optimizer.name()))),
            (Param::Momentum, self.momentum.map(Num)),
            (Param::Beta1, self.beta1.map(Num)),
            (Param::Beta2, self.beta2.map(Num)),
            (Param::WeightDecay, Some(Num(self.weight_decay))),
            (Param::Hidden, Some(Widths(&self.hidden))),
            (Param::Dropout, Some(Num(self.dropout))),
            (Param::Activation, Some(Word(self.activation.name()))),
            (Param::NegativeSlope, self.negative_slope.map(Num)),
            (Param::Seed, Some(Int(self.seed))),
        ];
        entries
            .into_iter()
            .filter_map(|(p, v)| v.map(|v| (p.key(), v)))
    }
}

/// One hyperparameter's value in a [`TrialConfig`]. Two values are equal exactly when their
/// texts (`Display`) are.
#[derive(Debug, Clone, Copy)]
pub enum ParamValue<'a> {
    Num(f64),
    Int(u64),
    Word(&'static str),
    Widths(&'a [usize]),
}

impl PartialEq for ParamValue<'_> {
    fn eq(&self, other: &Self) -> bool {
        use ParamValue::*;
        match (self, other) {
            // By bits, as the text tells 0 from -0; no config holds a NaN.
            (Num(a), Num(b)) => a.to_bits() == b.to_bits(),
            (Int(a), Int(b)) => a == b,
            (Word(a), Word(b)) => a == b,
            (Widths(a), Widths(b)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Display for ParamValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Num(x) => write!(f, "{x}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Word(w) => f.write_str(w),
            ParamValue::Widths(w) => write!(f, "{w:?}"),
        }
    }
}

/// The hyperparameters that differ between `configs`, in expansion order.
pub fn varying<'a>(configs: impl IntoIterator<Item = &'a TrialConfig>) -> Vec<&'static str> {
    // Per key: its first value, and whether another value was seen. Once a key is known to
    // vary its values are not compared again (10,000 trials stay linear).
    let mut seen: Vec<(&'static str, ParamValue, bool)> = Vec::new();
    for c in configs {
        for (key, value) in c.param_values() {
            match seen.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, true)) => {}
                Some((_, first, varies)) => *varies = *first != value,
                None => seen.push((key, value, false)),
            }
        }
    }
    let order = |k: &str| Param::from_key(k).map_or(usize::MAX, |p| p as usize);
    let mut keys: Vec<&'static str> = seen
        .into_iter()
        .filter(|(_, _, varies)| *varies)
        .map(|(k, _, _)| k)
        .collect();
    keys.sort_by_key(|k| order(k));
    keys
}

/// One trial with its 0-based position in expansion order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTrial {
    pub ordinal: usize,
    pub config: TrialConfig,
}

/// Why a sweep could not be expanded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpandError {
    #[error("the data's task (classification or regression) is not known yet; read the data first")]
    TaskUnknown,
    #[error(
        "random search drew a trial it had already drawn {attempts} times in a row at trial {at}: the distributions hold fewer distinct points than `search.trials` asks for; lower `trials` or widen the distributions"
    )]
    TooFewDistinct { at: usize, attempts: usize },
}

/// How many trials the sweep expands to (grid points times random samples), saturating.
pub fn trial_count(spec: &SweepSpec) -> u128 {
    spec.params
        .grid_points()
        .saturating_mul(spec.search.trials as u128)
}

/// How many times random search redraws a sample that repeats an earlier trial.
const REDRAWS: usize = 100;

/// The trials of a sweep. Lists form a grid (the first parameter in expansion order varies
/// slowest, `seed` fastest; values in the order written), and conditional lists expand inside
/// the point they apply to. In random search each grid point gets `search.trials` samples of
/// the distributions, each from its own seeded stream, so the same file gives the same trials.
/// Check [`trial_count`] against a cap first: this builds every trial.
pub fn expand(spec: &SweepSpec) -> Result<Vec<PlannedTrial>, ExpandError> {
    let task = spec.data.task.ok_or(ExpandError::TaskUnknown)?;
    let space = &spec.params;
    let lists: Vec<(Param, &[Value])> = space
        .params
        .iter()
        .filter_map(|(p, d)| match d {
            Domain::Values(vs) => Some((*p, vs.as_slice())),
            _ => None,
        })
        .collect();
    let samples = spec.search.trials.max(1);
    let random = spec.search.strategy == Strategy::Random;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (p, point) in product(&lists).into_iter().enumerate() {
        for k in 0..samples {
            let mut rng = ChaCha8Rng::seed_from_u64(spec.search.seed);
            rng.set_stream((p * samples + k) as u64);
            let mut attempt = 0;
            let configs = loop {
                let configs: Vec<TrialConfig> = draw(spec, &point, &mut rng)
                    .iter()
                    .map(|a| resolve(a, spec, task))
                    .collect();
                let hashes: Vec<String> = configs.iter().map(TrialConfig::hash).collect();
                if hashes.iter().all(|h| !seen.contains(h)) {
                    seen.extend(hashes);
                    break configs;
                }
                attempt += 1;
                if !random || attempt >= REDRAWS {
                    return Err(ExpandError::TooFewDistinct {
                        at: out.len(),
                        attempts: attempt,
                    });
                }
            };
            for config in configs {
                out.push(PlannedTrial {
                    ordinal: out.len(),
                    config,
                });
            }
        }
    }
    Ok(out)
}

/// One grid point with its distributions sampled and its conditional keys expanded.
fn draw(spec: &SweepSpec, point: &Assignment, rng: &mut ChaCha8Rng) -> Vec<Assignment> {
    let space = &spec.params;
    let mut base = point.clone();
    for (param, domain) in &space.params {
        if domain.is_sampled() {
            base.insert(*param, sample(*param, domain, rng));
        }
    }
    let matching: Vec<_> = space
        .when
        .iter()
        .filter(|b| word_of(&base, b.param).as_deref() == Some(b.value.as_str()))
        .collect();
    let cond_lists: Vec<(Param, &[Value])> = matching
        .iter()
        .flat_map(|b| b.params.iter())
        .filter_map(|(p, d)| match d {
            Domain::Values(vs) => Some((*p, vs.as_slice())),
            _ => None,
        })
        .collect();
    product(&cond_lists)
        .into_iter()
        .map(|sub| {
            let mut a = base.clone();
            a.extend(sub);
            for (param, domain) in matching.iter().flat_map(|b| b.params.iter()) {
                if domain.is_sampled() {
                    a.insert(*param, sample(*param, domain, rng));
                }
            }
            a
        })
        .collect()
}

fn sample(param: Param, domain: &Domain, rng: &mut ChaCha8Rng) -> Value {
    match domain {
        Domain::Values(vs) | Domain::Choice(vs) => vs[rng.random_range(0..vs.len())].clone(),
        Domain::Uniform(lo, hi) => Value::Num(tidy(rng.random_range(*lo..*hi), *lo, *hi)),
        Domain::LogUniform(lo, hi) => {
            let x = rng.random_range(lo.ln()..hi.ln()).exp();
            Value::Num(tidy(x, *lo, *hi))
        }
        Domain::Int(lo, hi) => {
            let _ = param;
            Value::Int(rng.random_range(*lo..=*hi))
        }
    }
}

/// Rounds a sampled number to 4 significant digits, so configs read well in tables and SQL,
/// keeping it inside the sampled range.
fn tidy(x: f64, lo: f64, hi: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 3 - x.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits);
    let rounded = (x * scale).round() / scale;
    // Parse back so the stored value is the short decimal, not a nearby binary neighbour.
    let rounded: f64 = format!("{rounded:.*}", digits.max(0) as usize)
        .parse()
        .unwrap_or(rounded);
    rounded.clamp(lo, hi)
}

fn word_of(a: &Assignment, param: Param) -> Option<String> {
    a.get(&param)
        .and_then(Value::as_word)
        .map(String::from)
        .or_else(|| {
            param
                .default_value()
                .and_then(|v| v.as_word().map(String::from))
        })
}

/// A parameter's value in `a`, its default if it applies to this trial, or `None` if it
/// does not (momentum under Adam).
fn get(a: &Assignment, param: Param) -> Option<Value> {
    if let Some((q, v)) = param.requires()
        && word_of(a, q).as_deref() != Some(v)
    {
        return None;
    }
    a.get(&param).cloned().or_else(|| param.default_value())
}

fn num(a: &Assignment, param: Param) -> Option<f64> {
    get(a, param).and_then(|v| v.as_f64())
}

fn int(a: &Assignment, param: Param) -> Option<i64> {
    match get(a, param)? {
        Value::Int(i) => Some(i),
        _ => None,
    }
}

fn choice<T: Choice + PartialEq>(a: &Assignment, param: Param) -> T {
    get(a, param)
        .and_then(|v| v.as_word().and_then(T::parse))
        .or_else(|| {
            param
                .default_value()
                .and_then(|v| v.as_word().and_then(T::parse))
        })
        .unwrap_or(T::ALL[0].1)
}

fn resolve(a: &Assignment, spec: &SweepSpec, task: Task) -> TrialConfig {
    // Required parameters are checked by the parser; the fallbacks below are never used.
    let count = |p| int(a, p).map_or(1, |i| i.max(1) as usize);
    TrialConfig {
        learning_rate: num(a, Param::LearningRate).unwrap_or(1e-3),
        lr_schedule: choice(a, Param::LrSchedule),
        lr_step_every: int(a, Param::LrStepEvery).map(|i| i as usize),
        lr_step_gamma: num(a, Param::LrStepGamma),
        batch_size: count(Param::BatchSize),
        epochs: count(Param::Epochs),
        optimizer: choice(a, Param::Optimizer),
        momentum: num(a, Param::Momentum),
        beta1: num(a, Param::Beta1),
        beta2: num(a, Param::Beta2),
        weight_decay: num(a, Param::WeightDecay).unwrap_or(0.0),
        hidden: match get(a, Param::Hidden) {
            Some(Value::Widths(w)) => w,
            _ => vec![128],
        },
        dropout: num(a, Param::Dropout).unwrap_or(0.0),
        activation: choice(a, Param::Activation),
        negative_slope: num(a, Param::NegativeSlope),
        train_fraction: num(a, Param::TrainFraction).unwrap_or(1.0),
        seed: int(a, Param::Seed).map_or(spec.seed, |s| s as u64),
        dataset: spec.data.dataset,
        csv: spec.data.csv.clone(),
        task,
        validation_fraction: spec.data.validation_fraction,
        split_seed: spec.seed,
        engine: spec.train.engine,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_give_the_documented_learning_rates() {
        let spec = crate::spec::parse(
            std::path::Path::new("t.toml"),
            "name = \"s\"\n[params]\nlearning_rate = 0.1\nbatch_size = 8\nepochs = 4\nlr_schedule = [\"constant\", \"step\", \"cosine\"]\n[params.when.lr_schedule.step]\nlr_step_every = 2\nlr_step_gamma = 0.5\n",
        )
        .unwrap();
        let t = expand(&spec).unwrap();
        let rates = |i: usize| -> Vec<f64> {
            (1..=4)
                .map(|e| (t[i].config.learning_rate_at(e) * 1e6).round() / 1e6)
                .collect()
        };
        assert_eq!(rates(0), [0.1, 0.1, 0.1, 0.1]);
        assert_eq!(rates(1), [0.1, 0.1, 0.05, 0.05]);
        // Cosine: 0.1 * (1 + cos(pi * (e - 1) / 4)) / 2.
        assert_eq!(rates(2), [0.1, 0.085355, 0.05, 0.014645]);
        assert_eq!(t[0].config.lr_step_every, None, "step keys only under step");
    }

    #[test]
    fn param_values_are_equal_exactly_when_their_texts_are() {
        let spec = crate::spec::parse(
            std::path::Path::new("t.toml"),
            "name = \"s\"\n[params]\nlearning_rate = [0.1, 0.10000000000000002, 1e-3]\nbatch_size = 8\nepochs = [2, 3]\nhidden = [[8], [8, 4]]\nactivation = [\"relu\", \"tanh\"]\nweight_decay = [0.0, 1e-4]\n",
        )
        .unwrap();
        let mut t = expand(&spec).unwrap();
        // The text tells -0 from 0 (spec files cannot list both, stored configs could).
        let mut negative = t[0].clone();
        negative.config.weight_decay = -0.0;
        t.push(negative);
        for a in &t {
            for b in &t {
                let (va, vb): (Vec<_>, Vec<_>) = (
                    a.config.param_values().collect(),
                    b.config.param_values().collect(),
                );
                for ((ka, x), (kb, y)) in va.iter().zip(&vb) {
                    assert_eq!(ka, kb);
                    assert_eq!(x == y, x.to_string() == y.to_string(), "{ka}: {x} vs {y}");
                }
            }
        }
        assert_eq!(
            varying(t.iter().map(|p| &p.config)),
            [
                "learning_rate",
                "epochs",
                "weight_decay",
                "hidden",
                "activation"
            ]
        );
        assert_eq!(
            varying(t.iter().take(1).map(|p| &p.config)),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn configs_stored_by_lcurve_0_1_still_read() {
        let old = r#"{"learning_rate":0.001,"batch_size":32,"epochs":6,"activation":"relu","optimizer":"adam","hidden":[128],"seed":7,"dataset":"digits","validation_fraction":0.2}"#;
        let c: TrialConfig = serde_json::from_str(old).unwrap();
        assert_eq!(c.lr_schedule, LrSchedule::Constant);
        assert_eq!(
            (c.dropout, c.weight_decay, c.train_fraction),
            (0.0, 0.0, 1.0)
        );
        assert_eq!((c.task, c.momentum), (Task::Classification, None));
    }

    #[test]
    fn tidy_keeps_four_significant_digits_inside_the_range() {
        assert_eq!(tidy(0.000123456, 1e-4, 1e-1), 0.0001235);
        assert_eq!(tidy(0.5123456, 0.0, 1.0), 0.5123);
        assert_eq!(tidy(0.99996, 0.0, 0.9999), 0.9999);
        assert_eq!(tidy(123.456, 1.0, 1000.0), 123.5);
    }
}
