//! Demonstrations as parameters: besides its instruction, a layer with `demos = k` learns an
//! ordered list of up to `k` training examples to show before the input (the target for the
//! output layer; the best posterior sample `h*` for a hidden layer). An update adds
//! demonstration *moves* to the instruction proposals (swap one for another example, drop one,
//! add one, reorder); a candidate changes the instruction or the demonstrations, never both.
//!
//! Held-out rule: an example is never scored while it is shown. Every candidate of an update is
//! scored on the same examples, the batch minus every example any candidate shows
//! ([`held_out`]), so the scores stay means over one set and a candidate cannot win by hiding
//! the hard examples of the batch in its own demonstrations.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::data::Example;

/// One demonstration: training example `index`, its input, and the output the layer should
/// write for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Demo {
    /// Position of the example in the training split.
    pub index: usize,
    pub input: String,
    pub output: String,
}

impl Demo {
    /// As the forward template's `examples` show it (`{input, target}`).
    pub fn example(&self) -> Example {
        Example {
            input: self.input.clone(),
            target: self.output.clone(),
        }
    }
}

/// What a demonstration candidate changed, as events and the workbench say it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "move", rename_all = "snake_case")]
pub enum DemoMove {
    /// The demonstration at `slot` (training example `from`) replaced by example `to`.
    Swap { slot: usize, from: usize, to: usize },
    /// The demonstration at `slot` (training example `example`) removed.
    Drop { slot: usize, example: usize },
    /// Training example `example` appended.
    Add { example: usize },
    /// The same demonstrations in a new order (training example indices, as shown).
    Reorder { order: Vec<usize> },
    /// Every demonstration removed (training example indices, as shown): the instruction alone.
    Clear { examples: Vec<usize> },
}

impl DemoMove {
    /// "swap ex 12 → ex 87", "drop ex 12", "add ex 87", "reorder 87, 12, 5".
    pub fn describe(&self) -> String {
        match self {
            DemoMove::Swap { from, to, .. } => format!("swap ex {from} → ex {to}"),
            DemoMove::Drop { example, .. } => format!("drop ex {example}"),
            DemoMove::Add { example } => format!("add ex {example}"),
            DemoMove::Reorder { order } => {
                let o: Vec<String> = order.iter().map(|i| i.to_string()).collect();
                format!("reorder {}", o.join(", "))
            }
            DemoMove::Clear { examples } => {
                let o: Vec<String> = examples.iter().map(|i| format!("ex {i}")).collect();
                format!("show none (drop {})", o.join(", "))
            }
        }
    }
}

/// The forward template's `examples`: `shots` (k-shot baseline) then the layer's demonstrations.
pub fn shown(shots: &[Example], demos: &[Demo]) -> Vec<Example> {
    shots
        .iter()
        .cloned()
        .chain(demos.iter().map(Demo::example))
        .collect()
}

/// The training examples a set of demonstrations shows, by index.
pub fn indices(demos: &[Demo]) -> Vec<usize> {
    demos.iter().map(|d| d.index).collect()
}

/// The kinds of move, in the order an update tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Swap,
    Add,
    Drop,
    Reorder,
}

const KINDS: [Kind; 4] = [Kind::Swap, Kind::Add, Kind::Drop, Kind::Reorder];

/// `moves` demonstration moves from `current` (at most `k` demonstrations), each a whole new
/// demonstration set with the move that made it. `preferred` are demonstrations that may come
/// in, the batch's wrong examples first (they are drawn before the rest), and `others` the
/// remaining pool (random training examples); neither may already be shown. Kinds are tried in
/// turn (swap, add when fewer than `k`, drop, reorder), skipping those that cannot apply; each
/// incoming example is used once. When two or more are shown, one more candidate shows none,
/// so a layer whose examples hurt (the k-shot start can be below 0-shot) can shed them in one
/// update rather than one per update.
pub fn moves<R: Rng>(
    current: &[Demo],
    k: usize,
    moves: usize,
    preferred: &[Demo],
    others: &[Demo],
    rng: &mut R,
) -> Vec<(Vec<Demo>, DemoMove)> {
    let shown = indices(current);
    let mut pool: Vec<Demo> = Vec::new();
    for group in [preferred, others] {
        let mut g: Vec<Demo> = group
            .iter()
            .filter(|d| !shown.contains(&d.index) && !pool.iter().any(|p| p.index == d.index))
            .cloned()
            .collect();
        g.shuffle(rng);
        pool.extend(g);
    }
    let mut pool = pool.into_iter();
    let mut out: Vec<(Vec<Demo>, DemoMove)> = Vec::new();
    let mut turn = 0;
    let mut idle = 0;
    while out.len() < moves && idle < KINDS.len() {
        let kind = KINDS[turn % KINDS.len()];
        turn += 1;
        let made = match kind {
            Kind::Swap if !current.is_empty() => pool.next().map(|d| {
                let slot = rng.gen_range(0..current.len());
                let mut set = current.to_vec();
                let from = std::mem::replace(&mut set[slot], d).index;
                let to = set[slot].index;
                (set, DemoMove::Swap { slot, from, to })
            }),
            Kind::Add if current.len() < k => pool.next().map(|d| {
                let example = d.index;
                let mut set = current.to_vec();
                set.push(d);
                (set, DemoMove::Add { example })
            }),
            Kind::Drop if !current.is_empty() => {
                let slot = rng.gen_range(0..current.len());
                let mut set = current.to_vec();
                let example = set.remove(slot).index;
                Some((set, DemoMove::Drop { slot, example }))
            }
            Kind::Reorder if current.len() >= 2 => {
                let mut set = current.to_vec();
                set.shuffle(rng);
                if set == current {
                    set.rotate_left(1);
                }
                let order = indices(&set);
                Some((set, DemoMove::Reorder { order }))
            }
            _ => None,
        };
        match made {
            Some(m) if !out.iter().any(|(s, _)| *s == m.0) => {
                out.push(m);
                idle = 0;
            }
            _ => idle += 1,
        }
    }
    if moves > 0 && current.len() >= 2 {
        out.push((
            Vec::new(),
            DemoMove::Clear {
                examples: indices(current),
            },
        ));
    }
    out
}

/// The batch positions every candidate of an update is scored on: those whose training example
/// no candidate shows (`batch_index[i]` is position `i`'s index in the training split).
pub fn held_out(batch_index: &[usize], shown_by_candidates: &[&[Demo]]) -> Vec<usize> {
    (0..batch_index.len())
        .filter(|&i| {
            !shown_by_candidates
                .iter()
                .any(|s| s.iter().any(|d| d.index == batch_index[i]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn demo(i: usize) -> Demo {
        Demo {
            index: i,
            input: format!("question {i}"),
            output: "(A)".into(),
        }
    }

    fn demos(ix: &[usize]) -> Vec<Demo> {
        ix.iter().map(|i| demo(*i)).collect()
    }

    #[test]
    fn moves_swap_from_the_wrong_examples_first_then_add_drop_reorder() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let current = demos(&[1, 2]);
        let m = moves(&current, 3, 4, &demos(&[7]), &demos(&[8, 9]), &mut rng);
        assert_eq!(m.len(), 5, "four moves, then showing none");
        match &m[0].1 {
            DemoMove::Swap { slot, from, to } => {
                assert_eq!(*to, 7, "the wrong example comes in first");
                assert_eq!(current[*slot].index, *from);
                assert_eq!(m[0].0[*slot].index, 7);
                assert_eq!(m[0].0.len(), 2);
            }
            other => panic!("first move {other:?}"),
        }
        assert!(matches!(m[1].1, DemoMove::Add { example } if example == 8 || example == 9));
        assert_eq!(m[1].0.len(), 3);
        assert!(matches!(m[2].1, DemoMove::Drop { .. }));
        assert_eq!(m[2].0.len(), 1);
        assert_eq!(m[3].1, DemoMove::Reorder { order: vec![2, 1] });
        assert_eq!(m[3].1.describe(), "reorder 2, 1");
        assert!(m[4].0.is_empty());
        assert_eq!(m[4].1.describe(), "show none (drop ex 1, ex 2)");
        let swap = DemoMove::Swap {
            slot: 0,
            from: 12,
            to: 87,
        };
        assert_eq!(swap.describe(), "swap ex 12 → ex 87");
    }

    #[test]
    fn moves_skip_what_cannot_apply_and_never_bring_in_a_shown_example() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        // Full (k = 2) and nothing new to show: only drop and reorder remain.
        let full = demos(&[1, 2]);
        let m = moves(&full, 2, 5, &demos(&[1]), &demos(&[2]), &mut rng);
        let kinds: Vec<String> = m.iter().map(|(_, m)| m.describe()).collect();
        assert!((3..=4).contains(&m.len()), "{kinds:?}");
        assert!(kinds[0].starts_with("drop") && kinds[1].starts_with("reorder"));
        assert!(kinds[kinds.len() - 1].starts_with("show none"), "{kinds:?}");
        assert!(kinds.iter().all(|k| k.starts_with("drop")
            || k.starts_with("reorder")
            || k.starts_with("show none")));
        assert_ne!(m[0].0, m[m.len() - 2].0, "every move makes another set");
        // One demonstration: dropping it already shows none.
        let one = moves(&demos(&[1]), 2, 3, &[], &demos(&[3]), &mut rng);
        assert!(one
            .iter()
            .all(|(_, m)| !matches!(m, DemoMove::Clear { .. })));
        // Empty: only adds, each of another example.
        let m = moves(&[], 2, 3, &[], &demos(&[4, 5, 6]), &mut rng);
        assert_eq!(m.len(), 3);
        assert!(m
            .iter()
            .all(|(s, m)| matches!(m, DemoMove::Add { .. }) && s.len() == 1));
        assert!(moves(&full, 2, 0, &[], &demos(&[3]), &mut rng).is_empty());
    }

    #[test]
    fn the_held_out_batch_leaves_out_every_example_any_candidate_shows() {
        let a = demos(&[10, 11]);
        let b = demos(&[10, 12]);
        assert_eq!(held_out(&[10, 11, 12, 13, 14], &[&a, &b]), vec![3, 4]);
        assert_eq!(held_out(&[10, 13], &[]), vec![0, 1]);
    }
}
