//! The search space: every sweepable parameter, its accepted values, distributions for random
//! search, and conditional parameters (`[params.when.optimizer.sgd]`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

/// A parameter that a sweep file may set in `[params]`. The declaration order is the
/// expansion order: `train_fraction` outermost, `seed` varying fastest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Param {
    TrainFraction,
    LearningRate,
    LrSchedule,
    LrStepEvery,
    LrStepGamma,
    BatchSize,
    Epochs,
    Optimizer,
    Momentum,
    Beta1,
    Beta2,
    WeightDecay,
    Hidden,
    Dropout,
    Activation,
    NegativeSlope,
    Seed,
}

/// What values a parameter takes.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A finite number in `[min, max]` (`(min, ...` when `min_open`, `..., max)` when `max_open`).
    Float {
        min: f64,
        max: f64,
        min_open: bool,
        max_open: bool,
    },
    /// An integer in `[min, max]`.
    Int { min: i64, max: i64 },
    /// One of a fixed set of words.
    Word(&'static [&'static str]),
    /// Hidden layer widths, e.g. `[128, 64]`.
    Widths,
}

/// The most hidden layers and the widest layer accepted.
pub const MAX_LAYERS: usize = 16;
pub const MAX_WIDTH: i64 = 65_536;

impl Param {
    pub const ALL: [Param; 17] = [
        Param::TrainFraction,
        Param::LearningRate,
        Param::LrSchedule,
        Param::LrStepEvery,
        Param::LrStepGamma,
        Param::BatchSize,
        Param::Epochs,
        Param::Optimizer,
        Param::Momentum,
        Param::Beta1,
        Param::Beta2,
        Param::WeightDecay,
        Param::Hidden,
        Param::Dropout,
        Param::Activation,
        Param::NegativeSlope,
        Param::Seed,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Param::TrainFraction => "train_fraction",
            Param::LearningRate => "learning_rate",
            Param::LrSchedule => "lr_schedule",
            Param::LrStepEvery => "lr_step_every",
            Param::LrStepGamma => "lr_step_gamma",
            Param::BatchSize => "batch_size",
            Param::Epochs => "epochs",
            Param::Optimizer => "optimizer",
            Param::Momentum => "momentum",
            Param::Beta1 => "beta1",
            Param::Beta2 => "beta2",
            Param::WeightDecay => "weight_decay",
            Param::Hidden => "hidden",
            Param::Dropout => "dropout",
            Param::Activation => "activation",
            Param::NegativeSlope => "negative_slope",
            Param::Seed => "seed",
        }
    }

    pub fn from_key(key: &str) -> Option<Param> {
        Param::ALL.into_iter().find(|p| p.key() == key)
    }

    /// Every key, for "accepted: ..." in errors.
    pub fn all_keys() -> String {
        Param::ALL.map(Param::key).join(", ")
    }

    pub fn kind(self) -> Kind {
        const UNIT_OPEN_TOP: Kind = Kind::Float {
            min: 0.0,
            max: 1.0,
            min_open: false,
            max_open: true,
        };
        match self {
            Param::TrainFraction => Kind::Float {
                min: 0.0,
                max: 1.0,
                min_open: true,
                max_open: false,
            },
            Param::LearningRate => Kind::Float {
                min: 0.0,
                max: f64::MAX,
                min_open: true,
                max_open: false,
            },
            Param::LrSchedule => Kind::Word(&["constant", "step", "cosine"]),
            Param::LrStepEvery => Kind::Int {
                min: 1,
                max: 1_000_000,
            },
            Param::LrStepGamma => Kind::Float {
                min: 0.0,
                max: 1.0,
                min_open: true,
                max_open: false,
            },
            Param::BatchSize => Kind::Int {
                min: 1,
                max: 1 << 20,
            },
            Param::Epochs => Kind::Int {
                min: 1,
                max: 1_000_000,
            },
            Param::Optimizer => Kind::Word(&["adam", "sgd"]),
            Param::Momentum | Param::Beta1 | Param::Beta2 | Param::Dropout => UNIT_OPEN_TOP,
            Param::NegativeSlope => UNIT_OPEN_TOP,
            Param::WeightDecay => Kind::Float {
                min: 0.0,
                max: f64::MAX,
                min_open: false,
                max_open: false,
            },
            Param::Hidden => Kind::Widths,
            Param::Activation => Kind::Word(&["relu", "leaky_relu", "gelu", "sigmoid", "tanh"]),
            Param::Seed => Kind::Int {
                min: 0,
                max: i64::MAX,
            },
        }
    }

    /// The parameter and value this one only makes sense with: `momentum` needs SGD.
    pub fn requires(self) -> Option<(Param, &'static str)> {
        match self {
            Param::Momentum => Some((Param::Optimizer, "sgd")),
            Param::Beta1 | Param::Beta2 => Some((Param::Optimizer, "adam")),
            Param::NegativeSlope => Some((Param::Activation, "leaky_relu")),
            Param::LrStepEvery | Param::LrStepGamma => Some((Param::LrSchedule, "step")),
            _ => None,
        }
    }

    /// The value used when a sweep does not set this parameter; `None` for required ones.
    /// `seed` defaults to the sweep's seed, which the caller supplies.
    pub fn default_value(self) -> Option<Value> {
        Some(match self {
            Param::LearningRate | Param::BatchSize | Param::Epochs | Param::Seed => return None,
            Param::TrainFraction => Value::Num(1.0),
            Param::LrSchedule => Value::Word("constant".into()),
            Param::LrStepEvery => Value::Int(10),
            Param::LrStepGamma => Value::Num(0.5),
            Param::Optimizer => Value::Word("adam".into()),
            Param::Momentum => Value::Num(0.0),
            Param::Beta1 => Value::Num(0.9),
            Param::Beta2 => Value::Num(0.999),
            Param::WeightDecay => Value::Num(0.0),
            Param::Hidden => Value::Widths(vec![128]),
            Param::Dropout => Value::Num(0.0),
            Param::Activation => Value::Word("relu".into()),
            Param::NegativeSlope => Value::Num(0.01),
        })
    }

    /// What to write, for error messages.
    pub fn hint(self) -> String {
        match self.kind() {
            Kind::Float {
                min,
                max,
                min_open,
                max_open,
            } => {
                let lo = if min_open { ">" } else { ">=" };
                let range = if max == f64::MAX {
                    format!("a number {lo} {min}")
                } else {
                    let hi = if max_open { "<" } else { "<=" };
                    format!("a number {lo} {min} and {hi} {max}")
                };
                format!("{range}, or a list of them, or a distribution")
            }
            Kind::Int { min, max } => {
                if max >= 1_000_000 {
                    format!("an integer >= {min}, or a list of them, or {{ int = [low, high] }}")
                } else {
                    format!(
                        "an integer from {min} to {max}, or a list of them, or {{ int = [low, high] }}"
                    )
                }
            }
            Kind::Word(words) => {
                let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                format!("{}, or a list of them", quoted.join(", "))
            }
            Kind::Widths => format!(
                "a list of layer widths (1 to {MAX_WIDTH}, at most {MAX_LAYERS} layers) such as [128] or [64, 64], or a list of such lists such as [[64], [128, 128]]"
            ),
        }
    }
}

impl Serialize for Param {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One value of a parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    Num(f64),
    Word(String),
    Widths(Vec<usize>),
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Num(x) => Some(*x),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_word(&self) -> Option<&str> {
        match self {
            Value::Word(w) => Some(w),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Num(x) => write!(f, "{x}"),
            Value::Word(w) => write!(f, "\"{w}\""),
            Value::Widths(w) => write!(f, "{w:?}"),
        }
    }
}

/// How a parameter varies: listed values (the grid; one value is a fixed setting) or a
/// distribution sampled per trial in random search.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    Values(Vec<Value>),
    Uniform(f64, f64),
    LogUniform(f64, f64),
    Int(i64, i64),
    Choice(Vec<Value>),
}

impl Domain {
    pub fn is_sampled(&self) -> bool {
        !matches!(self, Domain::Values(_))
    }

    /// Whether `value` can come out of this domain.
    pub fn contains(&self, value: &Value) -> bool {
        match self {
            Domain::Values(vs) | Domain::Choice(vs) => vs.contains(value),
            _ => false,
        }
    }

    /// The single value of a fixed setting.
    pub fn fixed(&self) -> Option<&Value> {
        match self {
            Domain::Values(vs) if vs.len() == 1 => vs.first(),
            _ => None,
        }
    }
}

/// Parameters that exist only when `param` has the word `value`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Branch {
    pub param: Param,
    pub value: String,
    pub params: BTreeMap<Param, Domain>,
}

/// A whole `[params]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Space {
    pub params: BTreeMap<Param, Domain>,
    pub when: Vec<Branch>,
}

impl Space {
    /// Whether any parameter, conditional ones included, is a distribution.
    pub fn has_distributions(&self) -> bool {
        self.params.values().any(Domain::is_sampled)
            || self
                .when
                .iter()
                .any(|b| b.params.values().any(Domain::is_sampled))
    }

    /// How many grid points the lists give (before random samples), saturating.
    pub fn grid_points(&self) -> u128 {
        let branch_factor = |param: Param, value: &str| -> u128 {
            self.when
                .iter()
                .filter(|b| b.param == param && b.value == value)
                .flat_map(|b| b.params.values())
                .map(|d| match d {
                    Domain::Values(vs) => vs.len() as u128,
                    _ => 1,
                })
                .fold(1u128, u128::saturating_mul)
        };
        let mut n: u128 = 1;
        let mut conditioned: Vec<Param> = self.when.iter().map(|b| b.param).collect();
        conditioned.dedup();
        for (&p, d) in &self.params {
            let factor = match d {
                Domain::Values(vs) if conditioned.contains(&p) => vs
                    .iter()
                    .filter_map(Value::as_word)
                    .map(|w| branch_factor(p, w))
                    .fold(0u128, u128::saturating_add),
                Domain::Values(vs) => vs.len() as u128,
                _ => 1,
            };
            n = n.saturating_mul(factor);
        }
        // A condition on a parameter left at its default applies to every point.
        for p in conditioned {
            if !self.params.contains_key(&p)
                && let Some(Value::Word(w)) = p.default_value()
            {
                n = n.saturating_mul(branch_factor(p, &w));
            }
        }
        n
    }
}

/// A value that a trial gives each parameter it has.
pub type Assignment = BTreeMap<Param, Value>;

/// Every combination of the listed values, the first list varying slowest.
pub fn product(lists: &[(Param, &[Value])]) -> Vec<Assignment> {
    let mut out = vec![Assignment::new()];
    for (param, values) in lists {
        out = out
            .into_iter()
            .flat_map(|a| {
                values.iter().map(move |v| {
                    let mut a = a.clone();
                    a.insert(*param, v.clone());
                    a
                })
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_order_is_the_expansion_order() {
        for p in Param::ALL {
            assert_eq!(Param::from_key(p.key()), Some(p));
        }
        assert!(Param::LearningRate < Param::BatchSize);
        assert!(Param::BatchSize < Param::Epochs);
        assert!(Param::Epochs < Param::Activation);
        assert!(Param::Activation < Param::Seed);
        let mut sorted = Param::ALL;
        sorted.sort();
        assert_eq!(sorted, Param::ALL);
    }

    #[test]
    fn product_varies_the_last_list_fastest() {
        let lr = [Value::Num(0.1), Value::Num(0.01)];
        let act = [Value::Word("relu".into()), Value::Word("tanh".into())];
        let got: Vec<String> = product(&[(Param::LearningRate, &lr), (Param::Activation, &act)])
            .iter()
            .map(|a| format!("{} {}", a[&Param::LearningRate], a[&Param::Activation]))
            .collect();
        assert_eq!(
            got,
            [
                "0.1 \"relu\"",
                "0.1 \"tanh\"",
                "0.01 \"relu\"",
                "0.01 \"tanh\""
            ]
        );
    }

    #[test]
    fn grid_points_count_conditional_lists_only_where_they_apply() {
        let words =
            |ws: &[&str]| Domain::Values(ws.iter().map(|w| Value::Word(w.to_string())).collect());
        let nums = |xs: &[f64]| Domain::Values(xs.iter().map(|&x| Value::Num(x)).collect());
        let space = Space {
            params: BTreeMap::from([
                (Param::Optimizer, words(&["adam", "sgd"])),
                (Param::LearningRate, nums(&[0.1, 0.01, 0.001])),
            ]),
            when: vec![Branch {
                param: Param::Optimizer,
                value: "sgd".into(),
                params: BTreeMap::from([(Param::Momentum, nums(&[0.0, 0.5, 0.9]))]),
            }],
        };
        // adam: 3 learning rates; sgd: 3 learning rates x 3 momenta.
        assert_eq!(space.grid_points(), 3 + 9);
    }
}
