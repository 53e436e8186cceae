//! Reads a sweep file's TOML into a [`SweepSpec`], checking every key once, at the boundary.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ErrorSite, SpecError};
use super::read_params::ParamsReader;
use super::space::Space;
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
    search: Option<Spanned<RawSearch>>,
    /// Read again with spans by [`ParamsReader`]; here only so serde accepts the key.
    #[allow(dead_code)]
    params: Option<toml::Value>,
    /// The tables of lcurve 0.1, refused with a message that says where their keys went.
    grid: Option<Spanned<toml::Value>>,
    model: Option<Spanned<toml::Value>>,
    #[serde(default)]
    train: RawTrain,
    stopping: Option<RawStopping>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawData {
    dataset: Option<Spanned<String>>,
    validation_fraction: Option<Spanned<f64>>,
    task: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    target: Option<Spanned<String>>,
    features: Option<Spanned<Vec<String>>>,
    header: Option<Spanned<bool>>,
    delimiter: Option<Spanned<String>>,
    missing: Option<Spanned<String>>,
    categorical: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSearch {
    strategy: Option<Spanned<String>>,
    trials: Option<Spanned<i64>>,
    seed: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTrain {
    optimizer: Option<Spanned<String>>,
    max_parallel: Option<Spanned<i64>>,
    engine: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStopping {
    metric: Option<Spanned<String>>,
    patience: Option<Spanned<i64>>,
    min_delta: Option<Spanned<f64>>,
    warmup: Option<Spanned<i64>>,
    divergence_factor: Option<Spanned<f64>>,
    threshold: Option<RawThreshold>,
    median: Option<RawMedian>,
    extrapolation: Option<RawExtrapolation>,
    asha: Option<RawAsha>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsha {
    min_epochs: Option<Spanned<i64>>,
    eta: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    after_epoch: Option<Spanned<i64>>,
    worse_than: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMedian {
    warmup: Option<Spanned<i64>>,
    min_peers: Option<Spanned<i64>>,
    percentile: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtrapolation {
    warmup: Option<Spanned<i64>>,
    min_probability: Option<Spanned<f64>>,
}

/// Reads and validates the sweep file at `path`.
pub fn load(path: &Path) -> Result<SweepSpec, SpecError> {
    let source = std::fs::read_to_string(path).map_err(|e| SpecError {
        path: path.to_path_buf(),
        key: String::new(),
        line: None,
        problem: match e.kind() {
            std::io::ErrorKind::InvalidData => {
                "cannot read the sweep file: it is not UTF-8 text".to_string()
            }
            _ => format!("cannot read the sweep file: {e}"),
        },
        accepted: "a readable TOML file in UTF-8, e.g. sweeps/quickstart.toml".into(),
    })?;
    parse(path, &source)
}

/// Validates sweep-file text; `path` is only used in error messages.
pub fn parse(path: &Path, source: &str) -> Result<SweepSpec, SpecError> {
    let site = ErrorSite { path, source };
    let raw: RawSpec = toml::from_str(source).map_err(|e| toml_error(&site, &e))?;
    let doc = toml::de::DeTable::parse(source).map_err(|e| toml_error(&site, &e))?;
    let params = doc.get_ref().get("params");
    let folder = path.parent().unwrap_or(Path::new(""));
    let mut spec = Validator { site, folder }.spec(raw, params)?;
    spec.source = Some(source.to_string());
    Ok(spec)
}

fn toml_error(site: &ErrorSite, e: &toml::de::Error) -> SpecError {
    let problem = e.message().trim().to_string();
    let key = e
        .span()
        .and_then(|span| key_at(site.source, span.start))
        // serde names a missing key in backticks ("missing field `name`"); inside a table,
        // the span is the table's header.
        .or_else(|| {
            let field = problem
                .split('`')
                .nth(1)
                .filter(|_| problem.contains("field"))?;
            // A span at the very start is the whole document: a top-level key.
            let table = e.span().filter(|span| span.start > 0).and_then(|span| {
                let at = span.start.min(site.source.len());
                let start = site.source[..at].rfind('\n').map_or(0, |i| i + 1);
                let line = site.source[start..].lines().next()?.trim();
                let name = line.strip_prefix('[')?.split(']').next()?.trim();
                Some(name.to_string())
            });
            Some(match table {
                Some(t) if problem.contains("missing") => format!("{t}.{field}"),
                // `[stopping.asha]`: the header itself is the unknown key.
                Some(t) if t.ends_with(&format!(".{field}")) => t,
                _ => field.to_string(),
            })
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
    /// The sweep file's folder; CSV paths are relative to it.
    folder: &'a Path,
}

impl Validator<'_> {
    fn err(
        &self,
        key: &str,
        span: Range<usize>,
        problem: impl Into<String>,
        accepted: impl Into<String>,
    ) -> SpecError {
        self.site.error(key, Some(span), problem, accepted)
    }

    fn spec(
        &self,
        raw: RawSpec,
        params: Option<&Spanned<toml::de::DeValue>>,
    ) -> Result<SweepSpec, SpecError> {
        if let Some(g) = raw.grid {
            return Err(self.err(
                "grid",
                g.span(),
                "the [grid] table is now called [params]",
                "rename [grid] to [params]; see sweeps/README.md",
            ));
        }
        if let Some(m) = raw.model {
            return Err(self.err(
                "model",
                m.span(),
                "the [model] table is gone; its `hidden` key is now in [params]",
                "move `hidden = [...]` into [params]",
            ));
        }
        if let Some(o) = &raw.train.optimizer {
            return Err(self.err(
                "train.optimizer",
                o.span(),
                "`optimizer` is now in [params], where it can also be swept",
                "move `optimizer = ...` into [params]",
            ));
        }
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
        let space = ParamsReader { site: &self.site }.space(params)?;
        let search = self.search(raw.search, &space, seed)?;
        let data = self.data(raw.data)?;
        let stopping = raw.stopping.map(|s| self.stopping(s)).transpose()?;
        if let (Some(st), Some(task)) = (&stopping, data.task)
            && !st.metric.applies_to(task)
        {
            return Err(self.site.error(
                "stopping.metric",
                None,
                format!(
                    "\"{}\" is not reported for {} data",
                    st.metric.name(),
                    task.name()
                ),
                Metric::reported_for(task),
            ));
        }
        Ok(SweepSpec {
            name,
            seed,
            description: raw.description,
            data,
            search,
            params: space,
            train: self.train(raw.train)?,
            stopping,
            source: None,
        })
    }

    fn search(
        &self,
        raw: Option<Spanned<RawSearch>>,
        space: &Space,
        sweep_seed: u64,
    ) -> Result<SearchSpec, SpecError> {
        let sampled = space.has_distributions();
        let Some(raw) = raw else {
            if sampled {
                return Err(self.site.error(
                    "search",
                    None,
                    "[params] has a distribution, which needs random search",
                    "add [search] with strategy = \"random\" and trials = N, or give lists instead",
                ));
            }
            return Ok(SearchSpec {
                strategy: Strategy::Grid,
                trials: 1,
                seed: sweep_seed,
            });
        };
        let span = raw.span();
        let raw = raw.into_inner();
        let strategy = match &raw.strategy {
            None => Strategy::Grid,
            Some(s) => self.choice("search.strategy", s)?,
        };
        let seed = match raw.seed {
            None => sweep_seed,
            Some(s) => u64::try_from(*s.get_ref()).map_err(|_| {
                self.err(
                    "search.seed",
                    s.span(),
                    "must not be negative",
                    "an integer >= 0",
                )
            })?,
        };
        let trials = match (strategy, raw.trials) {
            (Strategy::Grid, Some(t)) => {
                return Err(self.err(
                    "search.trials",
                    t.span(),
                    "only random search takes a number of trials; a grid runs every point",
                    "strategy = \"random\", or remove `trials`",
                ));
            }
            (Strategy::Grid, None) => 1,
            (Strategy::Random, None) => {
                return Err(self.err(
                    "search.trials",
                    span,
                    "is missing; random search needs to know how many trials to draw",
                    "trials = N, an integer >= 1 (per grid point when lists are mixed in)",
                ));
            }
            (Strategy::Random, Some(t)) => positive(*t.get_ref()).ok_or_else(|| {
                self.err(
                    "search.trials",
                    t.span(),
                    format!("{} trials is not possible", t.get_ref()),
                    "an integer >= 1",
                )
            })?,
        };
        match strategy {
            Strategy::Grid if sampled => Err(self.site.error(
                "search.strategy",
                raw.strategy.as_ref().map(|s| s.span()),
                "[params] has a distribution, which a grid cannot enumerate",
                "strategy = \"random\" with trials = N, or give lists instead",
            )),
            Strategy::Random if !sampled => Err(self.site.error(
                "search.strategy",
                raw.strategy.as_ref().map(|s| s.span()),
                "random search needs at least one distribution in [params]; every draw would be the same",
                "e.g. learning_rate = { log_uniform = [1e-4, 1e-1] }, or strategy = \"grid\"",
            )),
            _ => Ok(SearchSpec {
                strategy,
                trials,
                seed,
            }),
        }
    }

    fn data(&self, raw: RawData) -> Result<DataSpec, SpecError> {
        let dataset = match &raw.dataset {
            None => DatasetName::Digits,
            Some(d) => self.choice("data.dataset", d)?,
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
        let task = raw
            .task
            .as_ref()
            .map(|t| self.choice::<Task>("data.task", t))
            .transpose()?;
        if dataset != DatasetName::Csv {
            let csv_keys = [
                ("path", raw.path.as_ref().map(|s| s.span())),
                ("target", raw.target.as_ref().map(|s| s.span())),
                ("features", raw.features.as_ref().map(|s| s.span())),
                ("header", raw.header.as_ref().map(|s| s.span())),
                ("delimiter", raw.delimiter.as_ref().map(|s| s.span())),
                ("missing", raw.missing.as_ref().map(|s| s.span())),
                ("categorical", raw.categorical.as_ref().map(|s| s.span())),
            ];
            if let Some((key, Some(span))) = csv_keys.iter().find(|(_, s)| s.is_some()) {
                return Err(self.err(
                    &format!("data.{key}"),
                    span.clone(),
                    format!(
                        "only applies to dataset = \"csv\", not \"{}\"",
                        dataset.name()
                    ),
                    "remove it, or set dataset = \"csv\"",
                ));
            }
            let builtin = crate::data::builtin_task(dataset);
            if let (Some(t), Some(asked)) = (&raw.task, task)
                && asked != builtin
                && !crate::data::builtin_allows(dataset, asked)
            {
                return Err(self.err(
                    "data.task",
                    t.span(),
                    format!("{} is a {} dataset", dataset.name(), builtin.name()),
                    format!("task = \"{}\", or leave it out", builtin.name()),
                ));
            }
            return Ok(DataSpec {
                dataset,
                csv: None,
                task: Some(task.unwrap_or(builtin)),
                validation_fraction,
            });
        }
        let required = |v: Option<Spanned<String>>, key: &str, example: &str| {
            v.ok_or_else(|| {
                self.site.error(
                    &format!("data.{key}"),
                    None,
                    "is missing; dataset = \"csv\" needs it",
                    example,
                )
            })
        };
        let path = required(
            raw.path,
            "path",
            "path = \"data/penguins.csv\" (relative to the sweep file)",
        )?;
        if path.get_ref().trim().is_empty() {
            return Err(self.err(
                "data.path",
                path.span(),
                "is empty",
                "a CSV file path relative to the sweep file",
            ));
        }
        let target = required(
            raw.target,
            "target",
            "target = \"species\", the column to predict",
        )?;
        let delimiter = match raw.delimiter {
            None => ',',
            Some(d) => {
                let mut chars = d.get_ref().chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii() && c != '"' && c != '\n' && c != '\r' => c,
                    _ => {
                        return Err(self.err(
                            "data.delimiter",
                            d.span(),
                            format!("{:?} is not one ASCII character", d.get_ref()),
                            "e.g. \",\", \";\" or \"\\t\"",
                        ));
                    }
                }
            }
        };
        let features = match raw.features {
            None => None,
            Some(f) => {
                let list = f.get_ref().clone();
                if list.is_empty() {
                    return Err(self.err(
                        "data.features",
                        f.span(),
                        "is an empty list",
                        "column names, or leave it out to use every other column",
                    ));
                }
                if list.contains(target.get_ref()) {
                    return Err(self.err(
                        "data.features",
                        f.span(),
                        format!("includes the target column {:?}", target.get_ref()),
                        "feature columns other than the target",
                    ));
                }
                for (i, name) in list.iter().enumerate() {
                    if list[..i].contains(name) {
                        return Err(self.err(
                            "data.features",
                            f.span(),
                            format!("{name:?} is listed twice"),
                            "each column once",
                        ));
                    }
                }
                Some(list)
            }
        };
        let csv = CsvSpec {
            resolved: self.folder.join(path.get_ref()),
            path: path.into_inner(),
            target: target.into_inner(),
            features,
            header: raw.header.is_none_or(|h| *h.get_ref()),
            delimiter,
            missing: match &raw.missing {
                None => MissingPolicy::Drop,
                Some(m) => self.choice("data.missing", m)?,
            },
            categorical: match &raw.categorical {
                None => CategoricalPolicy::OneHot,
                Some(c) => self.choice("data.categorical", c)?,
            },
        };
        Ok(DataSpec {
            dataset,
            csv: Some(csv),
            task,
            validation_fraction,
        })
    }

    fn train(&self, raw: RawTrain) -> Result<TrainSpec, SpecError> {
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
        let engine = match &raw.engine {
            None => Engine::Fused,
            Some(e) => self.choice("train.engine", e)?,
        };
        Ok(TrainSpec {
            max_parallel,
            engine,
            engine_named: raw.engine.is_some(),
        })
    }

    fn stopping(&self, raw: RawStopping) -> Result<StoppingSpec, SpecError> {
        let metric = match raw.metric {
            None => Metric::ValLoss,
            Some(m) => self.choice("stopping.metric", &m)?,
        };
        let count = |v: Option<Spanned<i64>>, key: &str, default: usize, min: usize| match v {
            None => Ok(default),
            Some(x) => usize::try_from(*x.get_ref())
                .ok()
                .filter(|&n| n >= min)
                .ok_or_else(|| {
                    self.err(
                        key,
                        x.span(),
                        format!("{} is out of range", x.get_ref()),
                        format!("an integer >= {min}"),
                    )
                }),
        };
        let number = |v: Spanned<f64>, key: &str, ok: fn(f64) -> bool, accepted: &str| {
            if ok(*v.get_ref()) {
                Ok(*v.get_ref())
            } else {
                Err(self.err(
                    key,
                    v.span(),
                    format!("{} is out of range", v.get_ref()),
                    accepted,
                ))
            }
        };
        let others = raw.threshold.is_some()
            || raw.median.is_some()
            || raw.extrapolation.is_some()
            || raw.asha.is_some();
        // Patience is on when asked for, and by default when no other rule is given.
        let patience = if raw.patience.is_some() || raw.min_delta.is_some() || !others {
            let defaults = PatienceSpec::default();
            let patience = match raw.patience {
                None => defaults.patience,
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
                None => defaults.min_delta,
                Some(d) => number(
                    d,
                    "stopping.min_delta",
                    |x| x.is_finite() && x >= 0.0,
                    "a finite number >= 0, e.g. 1e-4",
                )?,
            };
            Some(PatienceSpec {
                patience,
                min_delta,
                warmup: count(raw.warmup, "stopping.warmup", defaults.warmup, 0)?,
            })
        } else {
            if let Some(w) = raw.warmup {
                return Err(self.err(
                    "stopping.warmup",
                    w.span(),
                    "belongs to the patience rule, which this sweep does not use",
                    "set patience too, or give warmup under [stopping.median] or [stopping.extrapolation]",
                ));
            }
            None
        };
        let threshold = match raw.threshold {
            None => None,
            Some(t) => Some(ThresholdSpec {
                after_epoch: count(t.after_epoch, "stopping.threshold.after_epoch", 1, 1)?,
                worse_than: number(
                    t.worse_than,
                    "stopping.threshold.worse_than",
                    f64::is_finite,
                    "a finite number, e.g. 1.5",
                )?,
            }),
        };
        let (dm, dx, da) = (
            MedianSpec::default(),
            ExtrapolationSpec::default(),
            AshaSpec::default(),
        );
        let median = match raw.median {
            None => None,
            Some(m) => Some(MedianSpec {
                warmup: count(m.warmup, "stopping.median.warmup", dm.warmup, 0)?,
                min_peers: count(m.min_peers, "stopping.median.min_peers", dm.min_peers, 1)?,
                percentile: match m.percentile {
                    None => dm.percentile,
                    Some(p) => number(
                        p,
                        "stopping.median.percentile",
                        |x| (0.0..=100.0).contains(&x),
                        "a number from 0 to 100 (50 is the median)",
                    )?,
                },
            }),
        };
        let extrapolation = match raw.extrapolation {
            None => None,
            Some(x) => Some(ExtrapolationSpec {
                warmup: count(x.warmup, "stopping.extrapolation.warmup", dx.warmup, 4)?,
                min_probability: match x.min_probability {
                    None => dx.min_probability,
                    Some(p) => number(
                        p,
                        "stopping.extrapolation.min_probability",
                        |x| x > 0.0 && x < 1.0,
                        "a number strictly between 0 and 1, e.g. 0.05",
                    )?,
                },
            }),
        };
        let asha = match raw.asha {
            None => None,
            Some(a) => Some(AshaSpec {
                min_epochs: count(a.min_epochs, "stopping.asha.min_epochs", da.min_epochs, 1)?,
                eta: count(a.eta, "stopping.asha.eta", da.eta, 2)?,
            }),
        };
        let divergence_factor = match raw.divergence_factor {
            None => None,
            Some(f) => Some(number(
                f,
                "stopping.divergence_factor",
                |x| x.is_finite() && x > 1.0,
                "a number > 1, e.g. 10",
            )?),
        };
        Ok(StoppingSpec {
            metric,
            patience,
            threshold,
            median,
            extrapolation,
            asha,
            divergence_factor,
        })
    }

    fn choice<T: Choice>(&self, key: &str, word: &Spanned<String>) -> Result<T, SpecError> {
        T::parse(word.get_ref()).ok_or_else(|| {
            self.err(
                key,
                word.span(),
                format!("{:?} is not known", word.get_ref()),
                T::accepted(),
            )
        })
    }
}

fn positive(i: i64) -> Option<usize> {
    usize::try_from(i).ok().filter(|&n| n >= 1)
}
