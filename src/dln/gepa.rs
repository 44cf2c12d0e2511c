//! GEPA's candidate pool (`train.optimizer = "gepa"`; Agrawal et al., 2025, "GEPA: Reflective
//! Prompt Evolution Can Outperform Reinforcement Learning"), as pure arithmetic.
//!
//! Every candidate kept is scored on each dev example. For each example the candidates with
//! the best score there form that example's front; a candidate on no front, or one whose every
//! front holds another candidate of the front set, is dominated and never drawn. A parent is
//! drawn among the rest with probability proportional to the number of fronts it is on, so the
//! search keeps growing from every candidate that is the best at something rather than from one
//! incumbent. dln's per-example score is the exact log-likelihood of the target, so the fronts
//! keep a graded signal where 0/1 accuracy would tie every candidate that answers alike.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::dln::demos::Demo;
use crate::dln::math::no_demos;

/// One candidate of the pool: a whole network's prompts, with where it came from and its
/// dev scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub prompts: Vec<String>,
    #[serde(default, skip_serializing_if = "no_demos")]
    pub demos: Vec<Vec<Demo>>,
    /// The member it was mutated from (`None` for the starting prompts).
    pub parent: Option<usize>,
    /// The iteration that made it (0 for the starting prompts, evaluated before the first).
    pub iteration: usize,
    pub dev_accuracy: f64,
    /// `scores[i]`: its score on dev example `i` (log-likelihood of the target).
    pub scores: Vec<f64>,
}

impl Member {
    pub fn mean_score(&self) -> f64 {
        crate::dln::math::mean(&self.scores)
    }
}

/// A member on the Pareto front, with the number of dev examples it is best on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontEntry {
    pub member: usize,
    pub wins: usize,
}

/// The candidates kept so far, in the order they joined.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub members: Vec<Member>,
}

impl Pool {
    /// Adds `m`; returns its index.
    pub fn add(&mut self, m: Member) -> usize {
        self.members.push(m);
        self.members.len() - 1
    }

    /// Whether a member has exactly these prompts and demonstrations.
    pub fn holds(&self, prompts: &[String], demos: &[Vec<Demo>]) -> bool {
        self.members
            .iter()
            .any(|m| m.prompts == prompts && m.demos == demos)
    }

    /// `fronts()[i]`: the members with the best score on dev example `i` (exact ties all).
    pub fn fronts(&self) -> Vec<Vec<usize>> {
        let n = self
            .members
            .iter()
            .map(|m| m.scores.len())
            .min()
            .unwrap_or(0);
        (0..n)
            .map(|i| {
                let best = self
                    .members
                    .iter()
                    .map(|m| m.scores[i])
                    .fold(f64::NEG_INFINITY, f64::max);
                (0..self.members.len())
                    .filter(|&k| self.members[k].scores[i] == best)
                    .collect()
            })
            .collect()
    }

    /// The members a parent is drawn from, each with the number of fronts it is on, in member
    /// order. Dominated members are removed one at a time, the weakest (fewest fronts, then
    /// lowest mean score) first: a member is dominated when every front it is on still holds
    /// another member that is not removed.
    pub fn front(&self) -> Vec<FrontEntry> {
        let fronts = self.fronts();
        let wins: Vec<usize> = (0..self.members.len())
            .map(|k| fronts.iter().filter(|f| f.contains(&k)).count())
            .collect();
        let means: Vec<f64> = self.members.iter().map(Member::mean_score).collect();
        let mut alive: Vec<usize> = (0..self.members.len()).filter(|&k| wins[k] > 0).collect();
        let mut order = alive.clone();
        order.sort_by(|&a, &b| wins[a].cmp(&wins[b]).then(means[a].total_cmp(&means[b])));
        for k in order {
            let dominated = fronts
                .iter()
                .filter(|f| f.contains(&k))
                .all(|f| f.iter().any(|&o| o != k && alive.contains(&o)));
            if dominated && alive.len() > 1 {
                alive.retain(|&o| o != k);
            }
        }
        alive
            .into_iter()
            .map(|member| FrontEntry {
                member,
                wins: wins[member],
            })
            .collect()
    }

    /// A parent drawn from `front` (the pool's [`front`](Self::front)), with probability
    /// proportional to its wins; `None` for an empty pool. With no dev scores at all, the last
    /// member.
    pub fn draw(&self, front: &[FrontEntry], rng: &mut impl Rng) -> Option<usize> {
        let total: usize = front.iter().map(|e| e.wins).sum();
        if total == 0 {
            return self.members.len().checked_sub(1);
        }
        let mut pick = rng.gen_range(0..total);
        for e in front {
            if pick < e.wins {
                return Some(e.member);
            }
            pick -= e.wins;
        }
        front.last().map(|e| e.member)
    }

    /// The member a run ends with: the best dev accuracy, then the best mean score, then the
    /// earliest.
    pub fn best(&self) -> Option<usize> {
        (0..self.members.len()).reduce(|b, k| {
            let (mb, mk) = (&self.members[b], &self.members[k]);
            let better = mk
                .dev_accuracy
                .total_cmp(&mb.dev_accuracy)
                .then(mk.mean_score().total_cmp(&mb.mean_score()));
            if better == std::cmp::Ordering::Greater {
                k
            } else {
                b
            }
        })
    }

    /// The chain of parents from member `k` back to the start, `k` first.
    pub fn ancestry(&self, k: usize) -> Vec<usize> {
        let mut out = vec![k];
        let mut at = k;
        while let Some(p) = self.members.get(at).and_then(|m| m.parent) {
            if out.contains(&p) {
                break;
            }
            out.push(p);
            at = p;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn member(parent: Option<usize>, acc: f64, scores: &[f64]) -> Member {
        Member {
            prompts: vec![format!("p{}", scores.len())],
            demos: Vec::new(),
            parent,
            iteration: 0,
            dev_accuracy: acc,
            scores: scores.to_vec(),
        }
    }

    fn pool(members: Vec<Member>) -> Pool {
        Pool { members }
    }

    #[test]
    fn each_example_s_front_is_every_member_with_its_best_score() {
        let p = pool(vec![
            member(None, 0.5, &[-1.0, -0.2, -3.0]),
            member(Some(0), 0.5, &[-0.5, -0.2, -4.0]),
        ]);
        assert_eq!(p.fronts(), vec![vec![1], vec![0, 1], vec![0]]);
        assert_eq!(
            p.front(),
            vec![
                FrontEntry { member: 0, wins: 2 },
                FrontEntry { member: 1, wins: 2 }
            ]
        );
    }

    #[test]
    fn a_member_best_only_where_another_also_is_is_dominated() {
        // 1 is best only on example 1, where 0 ties it; 0 is alone on example 0.
        let p = pool(vec![
            member(None, 0.5, &[-0.1, -0.2]),
            member(Some(0), 0.5, &[-0.9, -0.2]),
            member(Some(0), 0.0, &[-2.0, -2.0]),
        ]);
        assert_eq!(p.front(), vec![FrontEntry { member: 0, wins: 2 }]);
        // Two members tied on every example: one of them stays.
        let twins = pool(vec![
            member(None, 0.5, &[-0.1, -0.2]),
            member(Some(0), 0.5, &[-0.1, -0.2]),
        ]);
        assert_eq!(twins.front().len(), 1);
    }

    #[test]
    fn parents_are_drawn_in_proportion_to_their_wins_and_fixed_by_the_stream() {
        let p = pool(vec![
            member(None, 0.5, &[-0.1, -0.1, -0.1, -5.0]),
            member(Some(0), 0.5, &[-1.0, -1.0, -1.0, -0.1]),
        ]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let front = p.front();
        let draws: Vec<usize> = (0..4000).filter_map(|_| p.draw(&front, &mut rng)).collect();
        let ones = draws.iter().filter(|&&k| k == 1).count() as f64 / draws.len() as f64;
        assert!((ones - 0.25).abs() < 0.03, "share of member 1: {ones}");
        let again = |s| p.draw(&front, &mut rand_chacha::ChaCha8Rng::seed_from_u64(s));
        assert_eq!(again(9), again(9));
        assert_eq!(Pool::default().draw(&[], &mut rng), None);
        let unscored = pool(vec![member(None, 0.0, &[]), member(Some(0), 0.0, &[])]);
        assert_eq!(unscored.draw(&unscored.front(), &mut rng), Some(1));
    }

    #[test]
    fn the_best_member_is_by_dev_accuracy_then_mean_score_then_age() {
        let p = pool(vec![
            member(None, 0.5, &[-1.0]),
            member(Some(0), 0.6, &[-2.0]),
            member(Some(1), 0.6, &[-1.5]),
            member(Some(1), 0.6, &[-1.5]),
        ]);
        assert_eq!(p.best(), Some(2));
        assert!(p.holds(&["p1".to_string()], &[]) && !p.holds(&["p9".to_string()], &[]));
        assert_eq!(p.ancestry(3), vec![3, 1, 0]);
        assert_eq!(Pool::default().best(), None);
    }
}
