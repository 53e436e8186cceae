//! Learning-curve extrapolation: fit a few parametric families to the curve so far, predict
//! the value at the trial's final epoch with an uncertainty, and stop a trial whose chance of
//! beating the best finished trial is too small.

use serde_json::json;

use super::{Action, Context, Decision, StoppingRule, best_so_far, fmt4};
use crate::spec::{Choice, Metric};
use crate::util::json_number;

#[derive(Debug, Clone)]
pub struct ExtrapolationRule {
    pub metric: Metric,
    /// Decide only from this many epochs on (at least 4, to fit three parameters).
    pub warmup: usize,
    /// Stop when the chance of beating the best finished trial is below this.
    pub min_probability: f64,
}

/// A predicted value at a future epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub family: &'static str,
    pub mean: f64,
    /// Standard deviation: the fit's residual scatter, grown with the distance extrapolated,
    /// plus the disagreement between families.
    pub std: f64,
}

/// The families, each `y = a + b * basis(t, c)` with `c` searched on a grid and `a`, `b` by
/// least squares.
type Family = (&'static str, fn(f64, f64) -> f64, &'static [f64]);

const FAMILIES: [Family; 3] = [
    (
        "exponential decay",
        |t, c| (-c * t).exp(),
        &[0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1.0, 1.5],
    ),
    (
        "power law",
        |t, c| t.powf(-c),
        &[0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0],
    ),
    ("log-linear", |t, _| t.ln(), &[0.0]),
];

/// Least squares `y = a + b x`; returns (a, b, sum of squared residuals).
fn line(xs: &[f64], ys: &[f64]) -> Option<(f64, f64, f64)> {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if sxx < 1e-12 {
        return None;
    }
    let b = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (x - mx) * (y - my))
        .sum::<f64>()
        / sxx;
    let a = my - b * mx;
    let sse = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (y - a - b * x).powi(2))
        .sum();
    Some((a, b, sse))
}

/// Fits every family to `points` (epoch, value) and predicts the value at epoch `at`. `None`
/// with fewer than 4 finite points.
pub fn forecast(points: &[(f64, f64)], at: f64) -> Option<Forecast> {
    let pts: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    if pts.len() < 4 {
        return None;
    }
    let ts: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let n = pts.len() as f64;
    // Per family: the best c, its prediction and residual variance.
    let fits: Vec<(&'static str, f64, f64)> = FAMILIES
        .iter()
        .filter_map(|(name, basis, cs)| {
            cs.iter()
                .filter_map(|&c| {
                    let xs: Vec<f64> = ts.iter().map(|&t| basis(t, c)).collect();
                    let (a, b, sse) = line(&xs, &ys)?;
                    Some((a + b * basis(at, c), sse))
                })
                .filter(|(pred, _)| pred.is_finite())
                .min_by(|x, y| x.1.total_cmp(&y.1))
                .map(|(pred, sse)| (*name, pred, sse / (n - 3.0).max(1.0)))
        })
        .collect();
    let (family, mean, var) = *fits.iter().min_by(|x, y| x.2.total_cmp(&y.2))?;
    let last = ts.last().copied().unwrap_or(1.0);
    let reach = 1.0 + (at - last).max(0.0) / last.max(1.0);
    let spread = {
        let m = fits.iter().map(|f| f.1).sum::<f64>() / fits.len() as f64;
        (fits.iter().map(|f| (f.1 - m).powi(2)).sum::<f64>() / fits.len() as f64).sqrt()
    };
    let floor = 1e-3 * ys.iter().map(|y| y.abs()).fold(0.0, f64::max).max(1e-9);
    let std = (var * reach * reach + spread * spread).sqrt().max(floor);
    Some(Forecast { family, mean, std })
}

/// The standard normal cumulative distribution (Abramowitz and Stegun 7.1.26, |error| < 1.5e-7).
fn phi(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

impl StoppingRule for ExtrapolationRule {
    fn name(&self) -> &'static str {
        "extrapolation"
    }

    fn decide(&self, ctx: &Context) -> Decision {
        let last = ctx.last();
        let epoch = last.epoch;
        let metric = self.metric.name();
        let target = ctx.max_epochs;
        let mine = best_so_far(self.metric, ctx.curve);
        let best = ctx.peers.best_finished(ctx.trial_id);
        let points: Vec<(f64, f64)> = ctx
            .curve
            .iter()
            .map(|r| (r.epoch as f64, r.get(self.metric)))
            .collect();
        let fc = forecast(&points, target as f64);
        let mut details = json!({
            "metric": metric,
            "best_so_far": json_number(mine),
            "best_finished": best.map(json_number),
            "final_epoch": target,
            "min_probability": self.min_probability,
        });
        let (action, reason) = match (&fc, best) {
            _ if epoch < self.warmup.max(4) => (
                Action::Continue,
                format!("warm-up: epoch {epoch} of {}", self.warmup.max(4)),
            ),
            _ if epoch >= target => (Action::Continue, "at its final epoch".to_string()),
            (_, None) => (
                Action::Continue,
                "no finished trial to compare with yet".to_string(),
            ),
            (None, _) => (
                Action::Continue,
                "too few finite values to fit a curve".to_string(),
            ),
            (Some(f), Some(best)) => {
                let z = (best - f.mean) / f.std;
                let chance = if ctx.peers.better(mine, best) {
                    1.0
                } else if self.metric.minimize() {
                    phi(z)
                } else {
                    phi(-z)
                };
                details["predicted"] = json_number(f.mean);
                details["predicted_std"] = json_number(f.std);
                details["family"] = json!(f.family);
                details["probability"] = json_number(chance);
                let summary = format!(
                    "{metric} predicted at epoch {target}: {} ± {} ({}); chance to beat the best finished trial's {} is {:.1}%",
                    fmt4(f.mean),
                    fmt4(f.std),
                    f.family,
                    fmt4(best),
                    100.0 * chance
                );
                if chance < self.min_probability {
                    (
                        Action::Stop,
                        format!("{summary}, below {}%", 100.0 * self.min_probability),
                    )
                } else {
                    (Action::Continue, summary)
                }
            }
        };
        Decision {
            rule: self.name(),
            epoch,
            action,
            reason,
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stopping::testing::{ask, peers};

    fn curve_of(f: impl Fn(f64) -> f64, n: usize) -> Vec<f64> {
        (1..=n).map(|e| f(e as f64)).collect()
    }

    #[test]
    fn forecasts_recover_known_curves() {
        let exp: Vec<(f64, f64)> = (1..=8)
            .map(|e| (e as f64, 0.2 + 1.5 * (-0.3 * e as f64).exp()))
            .collect();
        let f = forecast(&exp, 30.0).unwrap();
        assert!((f.mean - 0.2002).abs() < 0.02, "{f:?}");
        let pow: Vec<(f64, f64)> = (1..=8)
            .map(|e| (e as f64, 0.1 + 2.0 * (e as f64).powf(-0.5)))
            .collect();
        let f = forecast(&pow, 30.0).unwrap();
        assert!(
            (f.mean - (0.1 + 2.0 * 30f64.powf(-0.5))).abs() < 0.05,
            "{f:?}"
        );
        assert!(forecast(&exp[..3], 30.0).is_none(), "needs 4 points");
        assert!((phi(0.0) - 0.5).abs() < 1e-7 && (phi(1.96) - 0.975).abs() < 1e-3);
    }

    #[test]
    fn table_of_curves_peers_and_decisions() {
        let rule = ExtrapolationRule {
            metric: Metric::ValLoss,
            warmup: 5,
            min_probability: 0.05,
        };
        let slow = curve_of(|e| 0.8 + 1.0 * (-0.3 * e).exp(), 6);
        let promising = curve_of(|e| 0.05 + 1.5 * (-0.25 * e).exp(), 6);
        let mut noisy = curve_of(|e| 0.3 + 1.0 * (-0.3 * e).exp(), 8);
        for (i, v) in noisy.iter_mut().enumerate() {
            *v += if i % 2 == 0 { 0.08 } else { -0.08 };
        }
        let finished: &[(&[f64], bool)] = &[(&[1.0, 0.6, 0.45, 0.4, 0.35, 0.3, 0.3], true)];
        let running: &[(&[f64], bool)] = &[(&[1.0, 0.6, 0.45, 0.4, 0.35, 0.3, 0.3], false)];
        // (curve, peers, expected, why)
        type Row<'a> = (&'a [f64], &'a [(&'a [f64], bool)], Action, &'a str);
        let rows: &[Row] = &[
            (&slow[..4], finished, Action::Continue, "warm-up"),
            (
                &slow,
                finished,
                Action::Stop,
                "levels off near 0.8, far above 0.3",
            ),
            (&promising, finished, Action::Continue, "heads below 0.3"),
            (&slow, running, Action::Continue, "no finished trial yet"),
            (
                &[0.2, 0.9, 0.9, 0.9, 0.9, 0.9],
                finished,
                Action::Continue,
                "already beat the best once",
            ),
            (
                &noisy,
                finished,
                Action::Continue,
                "noise widens the interval around ~0.33",
            ),
        ];
        for (values, peer_curves, expected, why) in rows {
            let d = ask(&rule, values, 30, &peers(peer_curves));
            assert_eq!(d.action, *expected, "{values:?}: {why} ({})", d.reason);
        }
        let d = ask(&rule, &slow, 30, &peers(finished));
        assert!(
            d.reason.starts_with("val_loss predicted at epoch 30: 0.8"),
            "{}",
            d.reason
        );
        assert!(d.details["probability"].as_f64().unwrap() < 0.05);
    }
}
