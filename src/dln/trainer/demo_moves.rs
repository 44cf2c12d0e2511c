//! The demonstration moves of an update (see [`crate::dln::demos`]): which examples may come
//! in (the batch's wrong ones first, then others), drawn from a stream of their own.

use crate::data::Dataset;
use crate::dln::demos::{self, Demo, DemoMove};
use crate::dln::error::DlnError;
use crate::dln::events::{Candidate, Event, LayerIndex};
use crate::dln::math;
use crate::dln::ops::{self, Draw};

use super::batch::demo_of;
use super::{IterState, Trainer};

impl IterState {
    /// The demonstrations layer `l` may bring in, as (preferred, others). The output layer
    /// shows an example's target: its preferred are the batch's wrong examples, its others the
    /// training examples at `extra`. A hidden layer shows the best posterior text `h*` of the
    /// text it writes (known for the batch only): preferred are the examples whose `h*` differs
    /// from the layer's own text (it was wrong and a better text is known), others the rest of
    /// the batch answered right.
    pub(super) fn demo_pool(
        &self,
        data: &Dataset,
        output: LayerIndex,
        l: LayerIndex,
        extra: &[usize],
    ) -> (Vec<Demo>, Vec<Demo>) {
        let b = self.batch.len();
        if l == output {
            let preferred = (0..b)
                .filter(|&i| !self.fwd.correct[i])
                .map(|i| demo_of(data, self.batch_index[i]))
                .collect();
            let others = extra.iter().map(|&i| demo_of(data, i)).collect();
            return (preferred, others);
        }
        let (mut preferred, mut others) = (Vec::new(), Vec::new());
        for i in 0..b {
            let best = self.best_hidden(l + 1, i);
            let demo = Demo {
                index: self.batch_index[i],
                input: self.fwd.inputs[l][i].clone(),
                output: best.trim().to_string(),
            };
            if demo.output.is_empty() {
                continue;
            }
            if best.trim() != self.fwd.hidden[l][i].trim() {
                preferred.push(demo);
            } else if self.fwd.correct[i] {
                others.push(demo);
            }
        }
        (preferred, others)
    }
}

impl Trainer {
    /// The batch positions every candidate of layer `l` is scored on (the held-out rule:
    /// [`demos::held_out`]). When the candidates together show every example of the batch, the
    /// demonstration moves are dropped (with a warning) so the instruction candidates can still
    /// be ranked; empty when even the current demonstrations cover the batch.
    pub(super) fn held_out(
        &self,
        l: LayerIndex,
        candidates: &mut Vec<Candidate>,
    ) -> Result<Vec<usize>, DlnError> {
        let index = &self.cur()?.batch_index;
        let shown = |cs: &[Candidate]| {
            let sets: Vec<&[Demo]> = cs.iter().map(|c| c.demos.as_slice()).collect();
            demos::held_out(index, &sets)
        };
        let kept = shown(candidates);
        if !kept.is_empty() || candidates.iter().all(|c| c.demo_move.is_none()) {
            return Ok(kept);
        }
        candidates.retain(|c| c.demo_move.is_none());
        let kept = shown(candidates);
        self.emit(Event::Warning {
            message: format!(
                "iteration {}, layer {}: the demonstration moves would show every example of the batch, \
                 leaving none to score them on; only the instruction candidates are ranked",
                self.iteration + 1,
                l + 1
            ),
        });
        Ok(kept)
    }

    /// Layer `l`'s demonstration moves of this update (none unless it learns demonstrations).
    pub(super) fn demo_moves(&self, l: LayerIndex) -> Result<Vec<(Vec<Demo>, DemoMove)>, DlnError> {
        let layer = &self.net.layers[l];
        let n = self.train.demo_moves;
        if layer.max_demos == 0 || n == 0 || layer.demos_pinned {
            return Ok(Vec::new());
        }
        let mut rng = ops::stream(self.train.seed, self.iteration, Draw::DemoMoves, l, 0);
        let output = self.net.output();
        let extra = if l == output {
            math::random_batch(self.data.train.len(), n + layer.max_demos, &mut rng)
        } else {
            Vec::new()
        };
        let (preferred, others) = self.cur()?.demo_pool(&self.data, output, l, &extra);
        Ok(demos::moves(
            &layer.demos,
            layer.max_demos,
            n,
            &preferred,
            &others,
            &mut rng,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use crate::config::TrainConfig;
    use crate::dln::events::CandidateOrigin;
    use crate::dln::trainer::score::candidate;
    use crate::dln::trainer::testing::{dataset, iteration, network, network_on};
    use crate::dln::trainer::EventSink;
    use crate::llm::scripted::{ScriptedBackend, ScriptedCall};

    use super::*;

    struct Quiet;
    impl EventSink for Quiet {
        fn emit(&self, _: Event) {}
    }

    /// The training example a scoring context asks about (the last `Input:` of the context).
    fn asked(context: &str) -> usize {
        let last = context.rsplit("Input: question ").next().unwrap_or("");
        let digits: String = last.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().expect("a question number")
    }

    #[tokio::test]
    async fn every_candidate_is_scored_on_the_batch_less_what_any_candidate_shows() {
        let backend = ScriptedBackend::new();
        let data = dataset(10);
        let net = network_on(1, backend.clone());
        let mut t = Trainer::new(
            net,
            &TrainConfig::default(),
            Path::new("."),
            data,
            Arc::new(Quiet),
        )
        .expect("a trainer");
        let mut cur = iteration(&t.net, 6, &[false; 6]);
        cur.batch_index = (0..6).collect();
        let shown =
            |ix: &[usize]| -> Vec<Demo> { ix.iter().map(|&i| demo_of(&t.data, i)).collect() };
        let prompt = t.net.layers[0].prompt.clone();
        let mut now = candidate(prompt.clone(), CandidateOrigin::Current);
        now.demos = shown(&[1, 2]);
        let mut swap = candidate(prompt, CandidateOrigin::Proposed);
        swap.demos = shown(&[1, 3]);
        swap.demo_move = Some(DemoMove::Swap {
            slot: 1,
            from: 2,
            to: 3,
        });
        let mut instruction = candidate("Another instruction.".into(), CandidateOrigin::Proposed);
        instruction.demos = shown(&[1, 2]);
        cur.candidates[0] = vec![now, swap, instruction];
        t.current = Some(cur);
        t.stage_score(0).await.expect("scored");
        let asked: Vec<usize> = backend
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                ScriptedCall::Score(r) => Some(asked(&r.context)),
                _ => None,
            })
            .collect();
        assert_eq!(
            asked,
            [0, 4, 5].repeat(3),
            "the same held-out examples for each"
        );
        let scored = &t.cur().expect("iteration").candidates[0];
        assert!(scored.iter().all(|c| c.score.is_some()));
    }

    #[test]
    fn the_output_layer_prefers_the_batch_wrong_examples_and_shows_their_targets() {
        let net = network(1);
        let data = dataset(10);
        let mut cur = iteration(&net, 3, &[true, false, false]);
        cur.batch_index = vec![4, 5, 6];
        let (preferred, others) = cur.demo_pool(&data, 0, 0, &[0, 9]);
        let idx: Vec<usize> = preferred.iter().map(|d| d.index).collect();
        assert_eq!(idx, vec![5, 6]);
        assert_eq!(preferred[0].output, data.train[5].target);
        assert_eq!(preferred[0].input, data.train[5].input);
        assert_eq!(
            others.iter().map(|d| d.index).collect::<Vec<_>>(),
            vec![0, 9]
        );
    }

    #[test]
    fn a_hidden_layer_shows_h_star_and_prefers_the_examples_it_improves() {
        let net = network(2);
        let data = dataset(10);
        // No posterior: h* is the layer's own text, so the right example is an "other" and
        // the wrong ones (no better text known) are not shown at all.
        let mut cur = iteration(&net, 3, &[true, false, false]);
        cur.batch_index = vec![4, 5, 6];
        let (preferred, others) = cur.demo_pool(&data, 1, 0, &[]);
        assert!(preferred.is_empty());
        assert_eq!(others.len(), 1);
        assert_eq!((others[0].index, others[0].output.as_str()), (4, "h0-0"));
    }
}
