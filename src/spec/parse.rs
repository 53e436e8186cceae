//! Reads a sweep file's TOML into a [`SweepSpec`], checking every key once, at the boundary.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ErrorSite, SpecError};
use super::types::*;

/// Sweeps larger than this are refused; `--max-trials` raises the cap.
pub const DEFAULT_MAX_TRIALS: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Spanned<String>,
    seed: Option<Spanned<i64>>,
    description: Option<String>,
    #[serde(default)]
    data: RawData,
    #[serde(default)]
    model: RawModel,
    #[serde(default)]
    train: RawTrain,
    grid: Spanned<RawGrid>,
    stopping: Option<RawStopping>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawData {
    dataset: Option<Spanned<String>>,
    validation_fraction: Option<Spanned<f64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawModel {
    hidden: Option<Spanned<Vec<Spanned<i64>>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTrain {
    optimizer: Option<Spanned<String>>,
    max_parallel: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    learning_rate: Option<Spanned<toml::Value>>,
    batch_size: Option<Spanned<toml::Value>>,
    epochs: Option<Spanned<toml::Value>>,
    activation: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStopping {
    metric: Option<Spanned<String>>,
    patience: Option<Spanned<i64>>,
    min_delta: Option<Spanned<f64>>,
}

/// Reads and validates the sweep file at `path`.
pub fn load(path: &Path) -> Result<SweepSpec, SpecError> {
    let source = std::fs::read_to_string(path).map_err(|e| SpecError {
        path: path.to_path_buf(),
        key: String::new(),
        line: None,
        problem: format!("cannot read the sweep file: {e}"),
        accepted: "a readable TOML file, e.g. sweeps/quickstart.toml".into(),
    })?;
    parse(path, &source)
}

/// Validates sweep-file text; `path` is only used in error messages.
pub fn parse(path: &Path, source: &str) -> Result<SweepSpec, SpecError> {
    let site = ErrorSite { path, source };
    let raw: RawSpec = toml::from_str(source).map_err(|e| toml_error(&site, &e))?;
    Validator { site }.spec(raw)
}

fn toml_error(site: &ErrorSite, e: &toml::de::Error) -> SpecError {
    let problem = e.message().trim().to_string();
    let key = e
        .span()
        .and_then(|span| key_at(site.source, span.start))
        // serde names a missing key in backticks ("missing field `name`").
        .or_else(|| {
            problem
                .split('`')
                .nth(1)
                .filter(|_| problem.contains("field"))
                .map(String::from)
        })
        .unwrap_or_default();
    let accepted = if problem.contains("unknown field") || problem.contains("missing field") {
        "see sweeps/README.md for every key".to_string()
    } else {
        String::new()
    };
    site.error(&key, e.span(), problem, accepted)
}

/// The dotted key written on the line holding byte `at`, e.g. `train.max_parallel`.
fn key_at(source: &str, at: usize) -> Option<String> {
    let at = at.min(source.len());
    let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = source[line_start..].lines().next()?;
    let key = line.split_once('=')?.0.trim();
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let table = source[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

struct Validator<'a> {
    site: ErrorSite<'a>,
}

impl Validator<'_> {
    fn err(
        &self,
        key: &str,
        span: Range<usize>,
        problem: impl Into<String>,
        accepted: &str,
    ) -> SpecError {
        self.site.error(key, Some(span), problem, accepted)
    }

    fn spec(&self, raw: RawSpec) -> Result<SweepSpec, SpecError> {
        let name = SweepName::parse(raw.name.get_ref()).ok_or_else(|| {
            self.err(
                "name",
                raw.name.span(),
                format!("{:?} is not a file-safe name", raw.name.get_ref()),
                SweepName::RULE,
            )
        })?;
        let seed = match raw.seed {
            None => 7,
            Some(s) => u64::try_from(*s.get_ref()).map_err(|_| {
                self.err("seed", s.span(), "must not be negative", "an integer >= 0")
            })?,
        };
        let grid_span = raw.grid.span();
        Ok(SweepSpec {
            name,
            seed,
            description: raw.description,
            data: self.data(raw.data)?,
            model: self.model(raw.model)?,
            train: self.train(raw.train)?,
            grid: self.grid(raw.grid.into_inner(), grid_span)?,
            stopping: raw.stopping.map(|s| self.stopping(s)).transpose()?,
        })
    }

    fn data(&self, raw: RawData) -> Result<DataSpec, SpecError> {
        let dataset = match raw.dataset {
            None => DatasetName::Digits,
            Some(d) => self.choice("data.dataset", &d)?,
        };
        let validation_fraction = match raw.validation_fraction {
            None => 0.2,
            Some(v) if v.get_ref().is_finite() && *v.get_ref() > 0.0 && *v.get_ref() < 1.0 => {
                *v.get_ref()
            }
            Some(v) => {
                return Err(self.err(
                    "data.validation_fraction",
                    v.span(),
                    format!("{} is out of range", v.get_ref()),
                    "a number strictly between 0 and 1, e.g. 0.2",
                ));
            }
        };
        Ok(DataSpec {
            dataset,
            validation_fraction,
        })
    }

    fn model(&self, raw: RawModel) -> Result<ModelSpec, SpecError> {
        let Some(hidden) = raw.hidden else {
            return Ok(ModelSpec { hidden: vec![128] });
        };
        let widths = hidden
            .into_inner()
            .into_iter()
            .map(|w| {
                positive(*w.get_ref()).ok_or_else(|| {
                    self.err(
                        "model.hidden",
                        w.span(),
                        format!("layer width {} is not positive", w.get_ref()),
                        "a list of integers >= 1, e.g. [128] or [64, 64]",
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ModelSpec { hidden: widths })
    }

    fn train(&self, raw: RawTrain) -> Result<TrainSpec, SpecError> {
        let optimizer = match raw.optimizer {
            None => Optimizer::Adam,
            Some(o) => self.choice("train.optimizer", &o)?,
        };
        let max_parallel = match raw.max_parallel {
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            Some(m) => positive(*m.get_ref()).ok_or_else(|| {
                self.err(
                    "train.max_parallel",
                    m.span(),
                    format!("{} trials at once is not possible", m.get_ref()),
                    "an integer >= 1 (default: the number of cores)",
                )
            })?,
        };
        Ok(TrainSpec {
            optimizer,
            max_parallel,
        })
    }

    fn stopping(&self, raw: RawStopping) -> Result<StoppingSpec, SpecError> {
        let metric = match raw.metric {
            None => Metric::ValLoss,
            Some(m) => self.choice("stopping.metric", &m)?,
        };
        let patience = match raw.patience {
            None => 5,
            Some(p) => positive(*p.get_ref()).ok_or_else(|| {
                self.err(
                    "stopping.patience",
                    p.span(),
                    format!("{} epochs is not a patience", p.get_ref()),
                    "an integer >= 1 (epochs without improvement before stopping)",
                )
            })?,
        };
        let min_delta = match raw.min_delta {
            None => 0.0,
            Some(d) if d.get_ref().is_finite() && *d.get_ref() >= 0.0 => *d.get_ref(),
            Some(d) => {
                return Err(self.err(
                    "stopping.min_delta",
                    d.span(),
                    format!("{} is not a usable improvement threshold", d.get_ref()),
                    "a finite number >= 0, e.g. 1e-4",
                ));
            }
        };
        Ok(StoppingSpec {
            metric,
            patience,
            min_delta,
        })
    }

    fn grid(&self, raw: RawGrid, span: Range<usize>) -> Result<GridSpec, SpecError> {
        let required = |v: Option<Spanned<toml::Value>>, key: &str, example: &str| {
            v.ok_or_else(|| self.err(&format!("grid.{key}"), span.clone(), "is missing", example))
        };
        let lr = required(
            raw.learning_rate,
            "learning_rate",
            "a number > 0 or a list, e.g. [1e-3, 1e-2]",
        )?;
        let learning_rate = self.list(
            "grid.learning_rate",
            &lr,
            "finite numbers > 0, e.g. 1e-3 or [1e-3, 3e-3]",
            |v| {
                let x = v.as_float().or_else(|| v.as_integer().map(|i| i as f64))?;
                (x.is_finite() && x > 0.0).then_some(x)
            },
        )?;
        let bs = required(
            raw.batch_size,
            "batch_size",
            "an integer >= 1 or a list, e.g. [32, 128]",
        )?;
        let batch_size = self.list(
            "grid.batch_size",
            &bs,
            "integers >= 1, e.g. 64 or [32, 128]",
            |v| positive(v.as_integer()?),
        )?;
        let ep = required(raw.epochs, "epochs", "an integer >= 1 or a list, e.g. 30")?;
        let epochs = self.list(
            "grid.epochs",
            &ep,
            "integers >= 1, e.g. 30 or [10, 30]",
            |v| positive(v.as_integer()?),
        )?;
        let activation = match raw.activation {
            None => vec![Activation::Relu],
            Some(a) => {
                let accepted = Activation::accepted();
                self.list("grid.activation", &a, &accepted, |v| {
                    Activation::parse(v.as_str()?)
                })?
            }
        };
        Ok(GridSpec {
            learning_rate,
            batch_size,
            epochs,
            activation,
        })
    }

    /// One value or a non-empty list without repeats, each converted by `convert`.
    fn list<T: PartialEq>(
        &self,
        key: &str,
        value: &Spanned<toml::Value>,
        accepted: &str,
        convert: impl Fn(&toml::Value) -> Option<T>,
    ) -> Result<Vec<T>, SpecError> {
        let items: Vec<&toml::Value> = match value.get_ref() {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        if items.is_empty() {
            return Err(self.err(
                key,
                value.span(),
                "is an empty list, so the sweep would have no trials",
                accepted,
            ));
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let v = convert(item).ok_or_else(|| {
                self.err(
                    key,
                    value.span(),
                    format!("{} is not accepted", show(item)),
                    accepted,
                )
            })?;
            if out.contains(&v) {
                return Err(self.err(
                    key,
                    value.span(),
                    format!(
                        "{} is listed twice, which would run the same trial twice",
                        show(item)
                    ),
                    "each value once",
                ));
            }
            out.push(v);
        }
        Ok(out)
    }

    fn choice<T: Choice>(&self, key: &str, word: &Spanned<String>) -> Result<T, SpecError> {
        T::parse(word.get_ref()).ok_or_else(|| {
            self.err(
                key,
                word.span(),
                format!("{:?} is not known", word.get_ref()),
                &T::accepted(),
            )
        })
    }
}

fn positive(i: i64) -> Option<usize> {
    usize::try_from(i).ok().filter(|&n| n >= 1)
}

fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}
