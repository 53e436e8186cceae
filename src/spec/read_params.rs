//! Reads the `[params]` table into a [`Space`], walking the TOML with its spans so every error
//! names the line and the dotted key.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ErrorSite, SpecError};
use super::space::{Branch, Domain, Kind, MAX_LAYERS, MAX_WIDTH, Param, Space, Value};

/// The distributions a parameter can be written as, e.g. `{ log_uniform = [1e-4, 1e-1] }`.
const DISTRIBUTIONS: &str = "{ uniform = [low, high] }, { log_uniform = [low, high] }, { int = [low, high] } or { choice = [a, b, ...] }";

pub(crate) struct ParamsReader<'a> {
    pub site: &'a ErrorSite<'a>,
}

impl ParamsReader<'_> {
    fn err(
        &self,
        key: &str,
        span: Range<usize>,
        problem: impl Into<String>,
        accepted: impl Into<String>,
    ) -> SpecError {
        self.site.error(key, Some(span), problem, accepted)
    }

    /// `table` is the `[params]` value, or `None` when the file has no `[params]`.
    pub fn space(&self, table: Option<&Spanned<DeValue>>) -> Result<Space, SpecError> {
        let Some(table) = table else {
            return Err(self.site.error(
                "params",
                None,
                "is missing",
                "a [params] table with at least learning_rate, batch_size and epochs",
            ));
        };
        let DeValue::Table(entries) = table.get_ref() else {
            return Err(self.err(
                "params",
                table.span(),
                "must be a table",
                "[params] followed by key = value lines",
            ));
        };
        let mut params = BTreeMap::new();
        let mut when_value = None;
        for (key, value) in entries.iter() {
            if key.get_ref() == "when" {
                when_value = Some(value);
                continue;
            }
            let param = self.param(&format!("params.{}", key.get_ref()), key)?;
            let domain = self.domain(param, &format!("params.{}", param.key()), value)?;
            params.insert(param, domain);
        }
        for required in [Param::LearningRate, Param::BatchSize, Param::Epochs] {
            if !params.contains_key(&required) {
                return Err(self.err(
                    &format!("params.{required}"),
                    table.span(),
                    "is missing",
                    required.hint(),
                ));
            }
        }
        let when = match when_value {
            None => Vec::new(),
            Some(w) => self.branches(w, &params)?,
        };
        let space = Space { params, when };
        self.check_requirements(&space, entries)?;
        Ok(space)
    }

    fn param(
        &self,
        dotted: &str,
        key: &Spanned<std::borrow::Cow<str>>,
    ) -> Result<Param, SpecError> {
        Param::from_key(key.get_ref()).ok_or_else(|| {
            self.err(
                dotted,
                key.span(),
                "is not a parameter lcurve knows",
                Param::all_keys(),
            )
        })
    }

    /// `[params.when.<param>.<value>]` tables.
    fn branches(
        &self,
        when: &Spanned<DeValue>,
        base: &BTreeMap<Param, Domain>,
    ) -> Result<Vec<Branch>, SpecError> {
        let example = "[params.when.optimizer.sgd] followed by momentum = [0.0, 0.9]";
        let DeValue::Table(by_param) = when.get_ref() else {
            return Err(self.err("params.when", when.span(), "must be a table", example));
        };
        let mut out = Vec::new();
        for (pkey, by_value) in by_param.iter() {
            let dotted = format!("params.when.{}", pkey.get_ref());
            let param = self.param(&dotted, pkey)?;
            let Kind::Word(words) = param.kind() else {
                return Err(self.err(
                    &dotted,
                    pkey.span(),
                    "conditions can only be on a parameter that takes words",
                    "optimizer, activation or lr_schedule",
                ));
            };
            let DeValue::Table(by_value) = by_value.get_ref() else {
                return Err(self.err(&dotted, by_value.span(), "must be a table", example));
            };
            for (vkey, body) in by_value.iter() {
                let dotted = format!("{dotted}.{}", vkey.get_ref());
                let word = vkey.get_ref().to_string();
                let known = words.contains(&word.as_str());
                let possible = match base.get(&param) {
                    Some(d) => d.contains(&Value::Word(word.clone())),
                    None => param.default_value() == Some(Value::Word(word.clone())),
                };
                if !possible {
                    let present = match base.get(&param) {
                        Some(Domain::Values(vs)) | Some(Domain::Choice(vs)) => vs
                            .iter()
                            .map(Value::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        _ => param
                            .default_value()
                            .map_or(String::new(), |v| format!("{v} (the default)")),
                    };
                    let problem = if known {
                        format!(
                            "{param} is never \"{word}\" in this sweep (it is {present}), so these keys would never apply"
                        )
                    } else {
                        format!("\"{word}\" is not a value of {param}")
                    };
                    return Err(self.err(
                        &dotted,
                        vkey.span(),
                        problem,
                        format!(
                            "add \"{word}\" to params.{param}, or use one of its values: {present}"
                        ),
                    ));
                }
                let DeValue::Table(keys) = body.get_ref() else {
                    return Err(self.err(&dotted, body.span(), "must be a table", example));
                };
                let sampled_condition = base.get(&param).is_some_and(Domain::is_sampled);
                let mut params = BTreeMap::new();
                for (key, value) in keys.iter() {
                    let kdotted = format!("{dotted}.{}", key.get_ref());
                    if key.get_ref() == "when" {
                        return Err(self.err(
                            &kdotted,
                            key.span(),
                            "conditions cannot be nested",
                            "one level: [params.when.<param>.<value>]",
                        ));
                    }
                    let p = self.param(&kdotted, key)?;
                    if p == param {
                        return Err(self.err(
                            &kdotted,
                            key.span(),
                            format!("cannot set {param} under a condition on {param}"),
                            "set it in [params]",
                        ));
                    }
                    if base.contains_key(&p) {
                        return Err(self.err(
                            &kdotted,
                            key.span(),
                            format!("{p} is also set in [params]; a key is either always there or conditional"),
                            format!("remove params.{p} or this one"),
                        ));
                    }
                    if out
                        .iter()
                        .any(|b: &Branch| b.param != param && b.params.contains_key(&p))
                    {
                        return Err(self.err(
                            &kdotted,
                            key.span(),
                            format!("{p} is already conditional on another parameter"),
                            "condition each key on one parameter only",
                        ));
                    }
                    let domain = self.domain(p, &kdotted, value)?;
                    if sampled_condition && matches!(&domain, Domain::Values(vs) if vs.len() > 1) {
                        return Err(self.err(
                            &kdotted,
                            value.span(),
                            format!("is a list under {param}, which is sampled, so the number of trials would depend on the draw"),
                            "a single value or a distribution such as { choice = [...] }",
                        ));
                    }
                    if let Some((q, v)) = p.requires()
                        && !(q == param && v == word)
                        && base.get(&q).and_then(Domain::fixed) != Some(&Value::Word(v.into()))
                    {
                        return Err(self.err(
                            &kdotted,
                            key.span(),
                            format!("{p} only applies when {q} = \"{v}\""),
                            format!("put it under [params.when.{q}.{v}]"),
                        ));
                    }
                    params.insert(p, domain);
                }
                out.push(Branch {
                    param,
                    value: word,
                    params,
                });
            }
        }
        Ok(out)
    }

    /// Top-level keys such as `momentum` need their condition (`optimizer = "sgd"`) to hold
    /// for every trial; otherwise they belong under `[params.when...]`.
    fn check_requirements(&self, space: &Space, entries: &DeTable) -> Result<(), SpecError> {
        for &p in space.params.keys() {
            let Some((q, v)) = p.requires() else { continue };
            let want = Value::Word(v.to_string());
            let holds = match space.params.get(&q) {
                Some(d) => d.fixed() == Some(&want),
                None => q.default_value() == Some(want),
            };
            if !holds {
                let span = entries
                    .iter()
                    .find(|(k, _)| k.get_ref() == p.key())
                    .map_or(0..0, |(k, _)| k.span());
                let now = match space.params.get(&q) {
                    Some(Domain::Values(vs)) | Some(Domain::Choice(vs)) => vs
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => q
                        .default_value()
                        .map_or(String::new(), |d| format!("{d} (the default)")),
                };
                return Err(self.err(
                    &format!("params.{p}"),
                    span,
                    format!("{p} only applies when {q} = \"{v}\", but {q} can be {now}"),
                    format!("move it under [params.when.{q}.{v}], or set {q} = \"{v}\""),
                ));
            }
        }
        Ok(())
    }

    fn domain(
        &self,
        param: Param,
        key: &str,
        value: &Spanned<DeValue>,
    ) -> Result<Domain, SpecError> {
        match value.get_ref() {
            DeValue::Table(t) => self.distribution(param, key, t, value.span()),
            DeValue::Array(items)
                if !(param == Param::Hidden
                    && items
                        .iter()
                        .all(|i| !matches!(i.get_ref(), DeValue::Array(_)))) =>
            {
                let values = self.values(param, key, items, value.span())?;
                Ok(Domain::Values(values))
            }
            _ => Ok(Domain::Values(vec![self.value(param, key, value)?])),
        }
    }

    /// A non-empty list without repeats.
    fn values(
        &self,
        param: Param,
        key: &str,
        items: &[Spanned<DeValue>],
        span: Range<usize>,
    ) -> Result<Vec<Value>, SpecError> {
        if items.is_empty() {
            return Err(self.err(
                key,
                span,
                "is an empty list, so the sweep would have no trials",
                param.hint(),
            ));
        }
        let mut out: Vec<Value> = Vec::with_capacity(items.len());
        for item in items {
            let v = self.value(param, key, item)?;
            if out.contains(&v) {
                return Err(self.err(
                    key,
                    item.span(),
                    format!("{v} is listed twice, which would run the same trial twice"),
                    "each value once",
                ));
            }
            out.push(v);
        }
        Ok(out)
    }

    fn value(&self, param: Param, key: &str, item: &Spanned<DeValue>) -> Result<Value, SpecError> {
        convert(param, item.get_ref())
            .map_err(|problem| self.err(key, item.span(), problem, param.hint()))
    }

    fn distribution(
        &self,
        param: Param,
        key: &str,
        table: &DeTable,
        span: Range<usize>,
    ) -> Result<Domain, SpecError> {
        let mut entries = table.iter();
        let (Some((name, args)), None) = (entries.next(), entries.next()) else {
            return Err(self.err(
                key,
                span,
                "a distribution is a table with exactly one key",
                DISTRIBUTIONS,
            ));
        };
        let dkey = format!("{key}.{}", name.get_ref());
        let pair = |what: &str| -> Result<(f64, f64), SpecError> {
            let DeValue::Array(items) = args.get_ref() else {
                return Err(self.err(
                    &dkey,
                    args.span(),
                    "needs [low, high]",
                    format!("e.g. {what}"),
                ));
            };
            let nums: Vec<f64> = items.iter().filter_map(|i| number(i.get_ref())).collect();
            match nums[..] {
                [lo, hi] if items.len() == 2 => {
                    if lo.is_nan() || hi.is_nan() || lo >= hi {
                        return Err(self.err(
                            &dkey,
                            args.span(),
                            format!("low {lo} is not below high {hi}"),
                            format!("[low, high] with low < high, e.g. {what}"),
                        ));
                    }
                    Ok((lo, hi))
                }
                _ => Err(self.err(
                    &dkey,
                    args.span(),
                    "needs exactly two numbers, [low, high]",
                    format!("e.g. {what}"),
                )),
            }
        };
        let check_ends = |lo: f64, hi: f64| -> Result<(), SpecError> {
            for end in [lo, hi] {
                check_number(param, end).map_err(|p| {
                    self.err(
                        &dkey,
                        args.span(),
                        format!("the range reaches outside what {param} accepts: {p}"),
                        param.hint(),
                    )
                })?;
            }
            Ok(())
        };
        match (name.get_ref().as_ref(), param.kind()) {
            ("uniform", Kind::Float { .. }) => {
                let (lo, hi) = pair("{ uniform = [0.0, 0.5] }")?;
                check_ends(lo, hi)?;
                Ok(Domain::Uniform(lo, hi))
            }
            ("log_uniform", Kind::Float { .. }) => {
                let (lo, hi) = pair("{ log_uniform = [1e-4, 1e-1] }")?;
                if lo <= 0.0 {
                    return Err(self.err(
                        &dkey,
                        args.span(),
                        format!("a log range must be above 0, and {lo} is not"),
                        "e.g. { log_uniform = [1e-4, 1e-1] }",
                    ));
                }
                check_ends(lo, hi)?;
                Ok(Domain::LogUniform(lo, hi))
            }
            ("int", Kind::Int { min, max }) => {
                let DeValue::Array(items) = args.get_ref() else {
                    return Err(self.err(
                        &dkey,
                        args.span(),
                        "needs [low, high]",
                        "e.g. { int = [16, 256] }",
                    ));
                };
                let ints: Vec<i64> = items.iter().filter_map(|i| integer(i.get_ref())).collect();
                match ints[..] {
                    [lo, hi] if items.len() == 2 && lo < hi && lo >= min && hi <= max => {
                        Ok(Domain::Int(lo, hi))
                    }
                    [lo, hi] if items.len() == 2 && lo >= hi => Err(self.err(
                        &dkey,
                        args.span(),
                        format!("low {lo} is not below high {hi}"),
                        "[low, high] with low < high, e.g. { int = [16, 256] }",
                    )),
                    [_, _] if items.len() == 2 => Err(self.err(
                        &dkey,
                        args.span(),
                        format!("the range reaches outside what {param} accepts"),
                        param.hint(),
                    )),
                    _ => Err(self.err(
                        &dkey,
                        args.span(),
                        "needs exactly two integers, [low, high]",
                        "e.g. { int = [16, 256] }",
                    )),
                }
            }
            ("choice", _) => {
                let DeValue::Array(items) = args.get_ref() else {
                    return Err(self.err(
                        &dkey,
                        args.span(),
                        "needs a list of values",
                        "e.g. { choice = [\"relu\", \"tanh\"] }",
                    ));
                };
                Ok(Domain::Choice(self.values(
                    param,
                    &dkey,
                    items,
                    args.span(),
                )?))
            }
            ("uniform" | "log_uniform", _) => Err(self.err(
                &dkey,
                name.span(),
                format!("{param} does not take fractional values"),
                "{ int = [low, high] } or { choice = [...] }",
            )),
            ("int", _) => Err(self.err(
                &dkey,
                name.span(),
                format!("{param} is not an integer parameter"),
                "{ uniform = [low, high] }, { log_uniform = [low, high] } or { choice = [...] }",
            )),
            _ => Err(self.err(
                &dkey,
                name.span(),
                format!("\"{}\" is not a distribution", name.get_ref()),
                DISTRIBUTIONS,
            )),
        }
    }
}

fn number(v: &DeValue) -> Option<f64> {
    match v {
        DeValue::Float(f) => f.as_str().parse().ok(),
        DeValue::Integer(_) => integer(v).map(|i| i as f64),
        _ => None,
    }
}

fn integer(v: &DeValue) -> Option<i64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// Whether `x` is in the range of a number parameter.
fn check_number(param: Param, x: f64) -> Result<Value, String> {
    let Kind::Float {
        min,
        max,
        min_open,
        max_open,
    } = param.kind()
    else {
        return Err(format!("{param} is not a number parameter"));
    };
    let low_ok = if min_open { x > min } else { x >= min };
    let high_ok = if max_open { x < max } else { x <= max };
    if !x.is_finite() || !low_ok || !high_ok {
        return Err(format!("{x} is out of range"));
    }
    Ok(Value::Num(x))
}

/// One value for `param`, or what is wrong with it.
pub(crate) fn convert(param: Param, v: &DeValue) -> Result<Value, String> {
    let describe = || describe_value(v);
    match param.kind() {
        Kind::Float { .. } => {
            let x = number(v).ok_or_else(|| format!("{} is not a number", describe()))?;
            check_number(param, x).map_err(|_| format!("{} is out of range", describe()))
        }
        Kind::Int { min, max } => {
            let i = integer(v).ok_or_else(|| format!("{} is not an integer", describe()))?;
            if i < min || i > max {
                return Err(format!("{} is out of range", describe()));
            }
            Ok(Value::Int(i))
        }
        Kind::Word(words) => match v {
            DeValue::String(s) if words.contains(&s.as_ref()) => Ok(Value::Word(s.to_string())),
            DeValue::String(s) => Err(format!("\"{s}\" is not known")),
            _ => Err(format!("{} is not a word in quotes", describe())),
        },
        Kind::Widths => {
            let DeValue::Array(items) = v else {
                return Err(format!("{} is not a list of layer widths", describe()));
            };
            if items.len() > MAX_LAYERS {
                return Err(format!("{} layers are more than {MAX_LAYERS}", items.len()));
            }
            items
                .iter()
                .map(|w| match integer(w.get_ref()) {
                    Some(n) if (1..=MAX_WIDTH).contains(&n) => Ok(n as usize),
                    _ => Err(format!(
                        "layer width {} is not an integer from 1 to {MAX_WIDTH}",
                        describe_value(w.get_ref())
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Widths)
        }
    }
}

fn describe_value(v: &DeValue) -> String {
    match v {
        DeValue::String(s) => format!("\"{s}\""),
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) => "a list".into(),
        DeValue::Table(_) => "a table".into(),
    }
}
