//! What cross-trial rules know of the other trials: each one's curve of the sweep's metric so
//! far, and whether it has finished.

use std::collections::HashMap;

use crate::spec::Metric;

#[derive(Debug, Clone, Default)]
struct PeerCurve {
    /// The metric at epochs 1, 2, ... (NaN where it was not finite).
    values: Vec<f64>,
    finished: bool,
}

/// Every trial's curve of one metric, fed by the scheduler (or by `replay`) as epochs arrive.
#[derive(Debug, Clone)]
pub struct Peers {
    metric: Metric,
    curves: HashMap<i64, PeerCurve>,
}

impl Peers {
    pub fn new(metric: Metric) -> Self {
        Self {
            metric,
            curves: HashMap::new(),
        }
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Records `value` as `trial`'s metric at `epoch` (1-based); later epochs are dropped, so
    /// a trial that starts again from epoch 1 replaces its old curve.
    pub fn record(&mut self, trial: i64, epoch: usize, value: f64) {
        let c = self.curves.entry(trial).or_default();
        c.values.truncate(epoch.saturating_sub(1));
        while c.values.len() + 1 < epoch {
            c.values.push(f64::NAN);
        }
        c.values
            .push(if value.is_finite() { value } else { f64::NAN });
        c.finished = false;
    }

    /// Marks `trial` as finished (its curve will not grow).
    pub fn finish(&mut self, trial: i64) {
        self.curves.entry(trial).or_default().finished = true;
    }

    /// Forgets `trial` (it will run again from epoch 1).
    pub fn forget(&mut self, trial: i64) {
        self.curves.remove(&trial);
    }

    /// Whether `a` is a better value than `b` for this metric (NaN is never better).
    pub fn better(&self, a: f64, b: f64) -> bool {
        self.metric.better(a, b)
    }

    /// The best value among `values`, NaN if none is finite.
    pub fn best_of(&self, values: impl IntoIterator<Item = f64>) -> f64 {
        self.metric.best(values)
    }

    /// The best-so-far at `epoch` of every trial but `exclude` that has reached `epoch`.
    pub fn best_so_far_at(&self, epoch: usize, exclude: i64) -> Vec<f64> {
        self.curves
            .iter()
            .filter(|(id, c)| **id != exclude && c.values.len() >= epoch && epoch > 0)
            .map(|(_, c)| self.best_of(c.values[..epoch].iter().copied()))
            .collect()
    }

    /// The best value any finished trial but `exclude` reached, if one finished.
    pub fn best_finished(&self, exclude: i64) -> Option<f64> {
        let best = self.best_of(
            self.curves
                .iter()
                .filter(|(id, c)| **id != exclude && c.finished)
                .flat_map(|(_, c)| c.values.iter().copied()),
        );
        best.is_finite().then_some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_keep_curves_restart_and_ignore_the_asking_trial() {
        let mut p = Peers::new(Metric::ValLoss);
        for (e, v) in [(1, 1.0), (2, 0.5), (3, 0.7)] {
            p.record(1, e, v);
        }
        for (e, v) in [(1, 0.9), (2, f64::NAN)] {
            p.record(2, e, v);
        }
        let mut at2 = p.best_so_far_at(2, 99);
        at2.sort_by(f64::total_cmp);
        assert_eq!(at2, vec![0.5, 0.9], "NaN does not replace a best");
        assert_eq!(p.best_so_far_at(3, 99), vec![0.5]);
        assert_eq!(
            p.best_so_far_at(2, 1),
            vec![0.9],
            "the asking trial is left out"
        );
        assert_eq!(p.best_finished(99), None);
        p.finish(1);
        assert_eq!(p.best_finished(99), Some(0.5));
        p.record(1, 1, 2.0);
        assert_eq!(
            p.best_so_far_at(2, 99),
            vec![0.9],
            "a restarted trial starts over"
        );
        assert_eq!(p.best_finished(99), None);
    }
}
