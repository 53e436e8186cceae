//! Asynchronous successive halving (ASHA): rungs at `min_epochs * eta^k` epochs; a trial that
//! reaches a rung continues if it is in the top `1/eta` of the trials that have reached that
//! rung so far, and otherwise pauses (its state saved) until it ranks high enough or the sweep
//! runs out of other work. A free slot never waits for a rung to fill.

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use super::{Action, Decision, fmt4};
use crate::spec::{Choice, Metric};
use crate::trainer::EpochReport;

/// The promotion book of one sweep.
#[derive(Debug, Clone)]
pub struct Asha {
    pub metric: Metric,
    pub min_epochs: usize,
    pub eta: usize,
    /// Per rung: each trial's best value up to the rung's epoch.
    at: Vec<BTreeMap<i64, f64>>,
    /// Per rung: trials that went on past it.
    promoted: Vec<HashSet<i64>>,
    /// Paused trials and the rung they wait at.
    paused: BTreeMap<i64, usize>,
}

impl Asha {
    pub fn new(metric: Metric, min_epochs: usize, eta: usize) -> Self {
        Self {
            metric,
            min_epochs: min_epochs.max(1),
            eta: eta.max(2),
            at: Vec::new(),
            promoted: Vec::new(),
            paused: BTreeMap::new(),
        }
    }

    /// The epoch of rung `k`.
    pub fn rung_epoch(&self, k: usize) -> usize {
        self.min_epochs
            .saturating_mul(self.eta.saturating_pow(k.min(40) as u32))
    }

    /// The rung index if `epoch` is a rung before the trial's last epoch.
    pub fn rung_at(&self, epoch: usize, max_epochs: usize) -> Option<usize> {
        if epoch >= max_epochs {
            return None;
        }
        (0..64)
            .map(|k| (k, self.rung_epoch(k)))
            .take_while(|(_, e)| *e <= epoch)
            .find(|(_, e)| *e == epoch)
            .map(|(k, _)| k)
    }

    fn ensure(&mut self, k: usize) {
        while self.at.len() <= k {
            self.at.push(BTreeMap::new());
            self.promoted.push(HashSet::new());
        }
    }

    /// (0-based rank of `trial` at rung `k`, trials at the rung, how many may go on).
    fn rank(&self, k: usize, trial: i64) -> (usize, usize, usize) {
        let metric = self.metric;
        let values = &self.at[k];
        let mine = values.get(&trial).copied().unwrap_or(f64::NAN);
        let better = values
            .iter()
            .filter(|(id, v)| {
                **id != trial && (metric.better(**v, mine) || (**v == mine && **id < trial))
            })
            .count();
        (better, values.len(), values.len() / self.eta)
    }

    fn details(
        &self,
        k: usize,
        trial: i64,
        rank: usize,
        n: usize,
        keep: usize,
    ) -> serde_json::Value {
        json!({
            "metric": self.metric.name(),
            "rung": k,
            "rung_epoch": self.rung_epoch(k),
            "value": crate::util::json_number(self.at[k].get(&trial).copied().unwrap_or(f64::NAN)),
            "rank": rank + 1,
            "trials_at_rung": n,
            "promoted_per_rung": keep,
            "eta": self.eta,
        })
    }

    /// A trial has reached rung `k` with its curve so far: it goes on (`Promote`) when it
    /// ranks in the top `1/eta` of the rung, else it pauses.
    pub fn arrive(
        &mut self,
        trial: i64,
        k: usize,
        curve: &[EpochReport],
        max_epochs: usize,
    ) -> Decision {
        self.ensure(k);
        let epoch = self.rung_epoch(k);
        let best = self
            .metric
            .best(curve.iter().take(epoch).map(|r| r.get(self.metric)));
        self.at[k].insert(trial, best);
        let (rank, n, keep) = self.rank(k, trial);
        let next = self.rung_epoch(k + 1).min(max_epochs);
        let metric = self.metric.name();
        let (action, reason) = if rank < keep && !self.promoted[k].contains(&trial) {
            self.promoted[k].insert(trial);
            (
                Action::Promote,
                format!(
                    "best {metric} {} at rung {k} (epoch {epoch}) ranks {} of {n}: in the top 1/{}, continues to epoch {next}",
                    fmt4(best),
                    rank + 1,
                    self.eta
                ),
            )
        } else {
            self.paused.insert(trial, k);
            (
                Action::Pause,
                format!(
                    "best {metric} {} at rung {k} (epoch {epoch}) ranks {} of {n}: outside the top 1/{} ({keep} may go on); paused, and promoted later if it moves up",
                    fmt4(best),
                    rank + 1,
                    self.eta
                ),
            )
        };
        Decision {
            rule: "asha",
            epoch,
            action,
            reason,
            details: self.details(k, trial, rank, n, keep),
        }
    }

    /// The paused trial to continue now, if one ranks in the top `1/eta` of its rung
    /// (highest rung first, then best rank); it is marked promoted.
    pub fn promotable(&mut self, max_epochs: impl Fn(i64) -> usize) -> Option<(i64, Decision)> {
        let mut best: Option<(usize, usize, i64)> = None;
        for (&trial, &k) in &self.paused {
            let (rank, _, keep) = self.rank(k, trial);
            if rank < keep && !self.promoted[k].contains(&trial) {
                let better = match best {
                    None => true,
                    Some((bk, brank, _)) => k > bk || (k == bk && rank < brank),
                };
                if better {
                    best = Some((k, rank, trial));
                }
            }
        }
        let (k, rank, trial) = best?;
        self.paused.remove(&trial);
        self.promoted[k].insert(trial);
        let (_, n, keep) = self.rank(k, trial);
        let epoch = self.rung_epoch(k);
        let next = self.rung_epoch(k + 1).min(max_epochs(trial));
        let decision = Decision {
            rule: "asha",
            epoch,
            action: Action::Promote,
            reason: format!(
                "promoted from rung {k} (epoch {epoch}): now ranks {} of {n}, in the top 1/{}; continues from its checkpoint to epoch {next}",
                rank + 1,
                self.eta
            ),
            details: self.details(k, trial, rank, n, keep),
        };
        Some((trial, decision))
    }

    /// When nothing else is left to run and no trial has gone past the highest rung that
    /// paused trials wait at (too few reached it for a top third), the best paused trial there
    /// goes on, so the most promising configuration trains to its last epoch instead of the
    /// slots standing idle. Only one: once a trial has gone past a rung, no leader follows.
    pub fn promote_leader(&mut self, max_epochs: impl Fn(i64) -> usize) -> Option<(i64, Decision)> {
        let top = self.paused.values().copied().max()?;
        if !self.promoted[top].is_empty() {
            return None;
        }
        let metric = self.metric;
        let (trial, _) = self
            .paused
            .iter()
            .filter(|(_, k)| **k == top)
            .map(|(t, _)| (*t, self.at[top].get(t).copied().unwrap_or(f64::NAN)))
            .fold(None, |best: Option<(i64, f64)>, (t, v)| match best {
                Some((_, bv)) if !metric.better(v, bv) => best,
                _ => Some((t, v)),
            })?;
        self.paused.remove(&trial);
        self.promoted[top].insert(trial);
        let (rank, n, keep) = self.rank(top, trial);
        let epoch = self.rung_epoch(top);
        let next = self.rung_epoch(top + 1).min(max_epochs(trial));
        let decision = Decision {
            rule: "asha",
            epoch,
            action: Action::Promote,
            reason: format!(
                "no other trial is left to run: the best paused trial at the highest rung ({top}, epoch {epoch}; ranks {} of {n}) continues from its checkpoint to epoch {next}",
                rank + 1
            ),
            details: self.details(top, trial, rank, n, keep),
        };
        Some((trial, decision))
    }

    /// When nothing else is left to run: every paused trial ends, stopped at its rung.
    pub fn stop_paused(&mut self) -> Vec<(i64, Decision)> {
        let paused = std::mem::take(&mut self.paused);
        paused
            .into_iter()
            .map(|(trial, k)| {
                let (rank, n, keep) = self.rank(k, trial);
                let epoch = self.rung_epoch(k);
                (
                    trial,
                    Decision {
                        rule: "asha",
                        epoch,
                        action: Action::Stop,
                        reason: format!(
                            "paused at rung {k} (epoch {epoch}) and never promoted: ranks {} of {n}, outside the top 1/{}",
                            rank + 1,
                            self.eta
                        ),
                        details: self.details(k, trial, rank, n, keep),
                    },
                )
            })
            .collect()
    }

    pub fn is_paused(&self, trial: i64) -> bool {
        self.paused.contains_key(&trial)
    }

    pub fn any_paused(&self) -> bool {
        !self.paused.is_empty()
    }

    /// Rebuilds the book from a stored trial: its curve fills the rungs it reached, a curve
    /// past a rung means it was promoted there, and `paused_at` (its checkpoint epoch) means
    /// it waits at that rung.
    pub fn restore(
        &mut self,
        trial: i64,
        curve: &[EpochReport],
        max_epochs: usize,
        paused_at: Option<usize>,
    ) {
        for k in 0..64 {
            let epoch = self.rung_epoch(k);
            if epoch >= max_epochs || epoch > curve.len() {
                break;
            }
            self.ensure(k);
            let best = self
                .metric
                .best(curve[..epoch].iter().map(|r| r.get(self.metric)));
            self.at[k].insert(trial, best);
            if curve.len() > epoch {
                self.promoted[k].insert(trial);
            }
            if paused_at == Some(epoch) {
                self.paused.insert(trial, k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stopping::testing::curve;

    #[test]
    fn rungs_are_geometric_and_stop_before_the_last_epoch() {
        let a = Asha::new(Metric::ValLoss, 1, 3);
        assert_eq!(
            (0..4).map(|k| a.rung_epoch(k)).collect::<Vec<_>>(),
            [1, 3, 9, 27]
        );
        assert_eq!(a.rung_at(3, 30), Some(1));
        assert_eq!(a.rung_at(4, 30), None);
        assert_eq!(a.rung_at(9, 9), None, "the last epoch is not a rung");
    }

    /// Trials arrive at rung 0 one by one: each goes on only while it is in the top 1/3 of
    /// those that have arrived; paused ones are promoted when enough worse trials arrive.
    #[test]
    fn arrivals_promote_the_top_third_and_pause_the_rest() {
        let mut a = Asha::new(Metric::ValLoss, 1, 3);
        // (trial, value at epoch 1, expected action, why)
        let rows: &[(i64, f64, Action, &str)] = &[
            (
                1,
                0.5,
                Action::Pause,
                "1 at the rung: floor(1/3) = 0 may go on",
            ),
            (2, 0.9, Action::Pause, "2 at the rung: none may go on"),
            (
                3,
                0.4,
                Action::Promote,
                "3 at the rung, one may go on, and 0.4 is the best",
            ),
            (
                4,
                0.7,
                Action::Pause,
                "4: one may go on (3, already promoted); 0.7 ranks 3rd",
            ),
            (5, 0.8, Action::Pause, "5: one may go on"),
            (6, 0.6, Action::Pause, "6: two may go on, but 0.6 ranks 4th"),
        ];
        for (trial, v, expected, why) in rows {
            let d = a.arrive(*trial, 0, &curve(&[*v]), 10);
            assert_eq!(d.action, *expected, "trial {trial}: {why} ({})", d.reason);
        }
        // With 6 at the rung, 2 may go on: trial 1 (0.5, rank 2) is promoted from its pause.
        let (t, d) = a.promotable(|_| 10).unwrap();
        assert_eq!(t, 1, "{}", d.reason);
        assert!(
            d.reason
                .starts_with("promoted from rung 0 (epoch 1): now ranks 2 of 6"),
            "{}",
            d.reason
        );
        assert!(
            a.promotable(|_| 10).is_none(),
            "no one else is in the top third"
        );
        let stopped: Vec<i64> = a.stop_paused().into_iter().map(|(t, _)| t).collect();
        assert_eq!(stopped, vec![2, 4, 5, 6]);
    }

    #[test]
    fn noise_and_nan_use_the_best_so_far_and_restore_rebuilds_the_book() {
        let mut a = Asha::new(Metric::ValLoss, 2, 2);
        // The best value up to the rung counts: 0.3 at epoch 1 beats a noisy 0.9 at epoch 2.
        let d = a.arrive(1, 0, &curve(&[0.3, 0.9]), 10);
        assert_eq!(d.details["value"], 0.3);
        a.arrive(2, 0, &curve(&[f64::NAN, f64::NAN]), 10);
        let (t, _) = a.promotable(|_| 10).unwrap();
        assert_eq!(t, 1, "NaN ranks last");
        let mut b = Asha::new(Metric::ValLoss, 2, 2);
        b.restore(1, &curve(&[0.3, 0.9, 0.8, 0.7]), 10, None);
        b.restore(2, &curve(&[0.5, 0.6]), 10, Some(2));
        assert!(b.is_paused(2) && !b.is_paused(1));
        assert!(
            b.promotable(|_| 10).is_none(),
            "trial 1 already went on from rung 0"
        );
    }
}
