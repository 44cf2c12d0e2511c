//! Score and select: each candidate prompt of layer `l` is scored by its ELBO term over the
//! batch, `Σ_i Σ_s w_{i,s} log p(target | F(u_{i,s}; π̃))` (the output layer: less the trust
//! region's KL; a hidden layer: with the log-p penalty on wrong texts), and the best replaces
//! the prompt.

use crate::config::Selection;
use crate::data::Example;
use crate::dln::demos;
use crate::dln::error::DlnError;
use crate::dln::events::{Candidate, CandidateOrigin, Event, LayerIndex, Stage};
use crate::dln::math;
use crate::dln::network::Layer;
use crate::dln::ops::{self, call_seed, Draw, Operation};
use crate::llm::Usage;

use super::{IterState, Posterior, StageId, Trainer};

/// A candidate prompt not scored yet.
pub(in crate::dln::trainer) fn candidate(prompt: String, origin: CandidateOrigin) -> Candidate {
    Candidate {
        prompt,
        origin,
        score: None,
        kl: None,
        demos: Vec::new(),
        demo_move: None,
        proposal: None,
    }
}

/// Splits a flat list into rows of the given lengths.
fn reshape(values: &[f64], shape: &[usize]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(shape.len());
    let mut at = 0;
    for n in shape {
        out.push(values[at..at + n].to_vec());
        at += n;
    }
    out
}

/// Splits `values` into consecutive runs of the given lengths.
fn split_by(values: Vec<f64>, lengths: impl Iterator<Item = usize>) -> Vec<Vec<f64>> {
    let mut rest = values.into_iter();
    lengths.map(|n| rest.by_ref().take(n).collect()).collect()
}

/// An example's texts below a layer (`None`: the layer reads `x` directly) and their weights.
type Below = (Vec<Option<String>>, Vec<f64>);

/// The texts below layer `l` for every example with their weights: the posterior's samples, or
/// a single weight-1 "sample" per example (the forward pass's text, or nothing when the layer
/// reads `x` directly).
fn samples_below(cur: &IterState, l: LayerIndex) -> Vec<Below> {
    match cur.posteriors.get(l).and_then(|p| p.as_ref()) {
        Some(p) if l > 0 => p
            .examples
            .iter()
            .map(|ex| {
                let texts = ex.samples.iter().map(|s| Some(s.text.clone())).collect();
                (texts, weights_of(ex))
            })
            .collect(),
        _ => (0..cur.batch.len())
            .map(|i| {
                let below = (l > 0).then(|| cur.fwd.hidden[l - 1][i].clone());
                (vec![below], vec![1.0])
            })
            .collect(),
    }
}

fn weights_of(ex: &crate::dln::events::PosteriorExample) -> Vec<f64> {
    ex.samples.iter().map(|s| s.weight.unwrap_or(0.0)).collect()
}

/// Scoring pairs (context, target) and the number of pairs per example.
type Pairs = (Vec<(String, String)>, Vec<usize>);

/// The output layer's scoring pairs for a candidate prompt: (`F(R(x_i, h̃_{i,s}); π̃)`, `y_i`)
/// for every sample below, and the number of samples per example.
fn output_pairs(
    layer: &Layer,
    batch: &[Example],
    below: &[Below],
    prompt: &str,
    shots: &[Example],
) -> Result<Pairs, DlnError> {
    let mut pairs = Vec::new();
    let mut shape = Vec::with_capacity(below.len());
    for (i, (texts, _)) in below.iter().enumerate() {
        shape.push(texts.len());
        for h in texts {
            let u = ops::layer_input(layer, &batch[i].input, h.as_deref())?;
            pairs.push((
                ops::forward_context(layer, &u, prompt, shots)?,
                batch[i].target.clone(),
            ));
        }
    }
    Ok((pairs, shape))
}

/// A hidden layer's scoring pairs for a candidate prompt: (`F_h(x_i; π̃)`, `h̃_{i,s}`) for every
/// posterior sample of the text it writes.
fn hidden_pairs(
    layer: &Layer,
    inputs: &[String],
    post: &Posterior,
    prompt: &str,
    shown: &[Example],
) -> Result<Vec<(String, String)>, DlnError> {
    let mut pairs = Vec::new();
    for ex in &post.examples {
        let ctx = ops::forward_context(layer, &inputs[ex.index], prompt, shown)?;
        for s in &ex.samples {
            pairs.push((ctx.clone(), s.text.clone()));
        }
    }
    Ok(pairs)
}

/// Seeds of the accuracy-scoring calls of candidate `c` of layer `l`: pair `j` is call
/// `c·P + j` of the layer's scoring (`P` pairs per candidate, the same for every candidate).
fn score_seeds(seed: u64, iteration: usize, l: LayerIndex, c: usize, pairs: usize) -> Vec<u64> {
    (0..pairs)
        .map(|j| call_seed(seed, iteration, Operation::Score, l, c * pairs + j))
        .collect()
}

/// The winner of the scored candidates (the first best; 0 when none scored) and its ELBO term
/// (`None` when it has none). With a `pick` stream (`selection = "random"`), the winner is a
/// scored candidate drawn from it instead.
fn fold_scores<R: rand::Rng>(
    candidates: &[Candidate],
    elbos: &[f64],
    pick: Option<&mut R>,
) -> (usize, Option<f64>) {
    let scores: Vec<f64> = candidates
        .iter()
        .map(|c| c.score.unwrap_or(f64::NEG_INFINITY))
        .collect();
    let scored: Vec<usize> = (0..scores.len())
        .filter(|&i| scores[i].is_finite())
        .collect();
    let winner = match pick {
        Some(rng) if !scored.is_empty() => scored[rng.gen_range(0..scored.len())],
        _ => math::argmax(&scores).unwrap_or(0),
    };
    (winner, elbos.get(winner).copied().filter(|e| !e.is_nan()))
}

impl Trainer {
    pub(super) async fn stage_score(&mut self, l: LayerIndex) -> Result<(), DlnError> {
        // A layer that is not updated (pinned, or fixed by the config) still has its ELBO term
        // computed for the current prompt alone: the ELBO shown is the sum over every layer.
        let fixed = !self.net.layers[l].updatable();
        if !fixed && self.cur()?.candidates[l].is_empty() {
            return Ok(());
        }
        let before = self.meter();
        let it = self.iteration;
        let mut candidates = if fixed {
            let mut now = candidate(self.net.layers[l].prompt.clone(), CandidateOrigin::Current);
            now.demos = self.net.layers[l].demos.clone();
            vec![now]
        } else {
            self.cur()?.candidates[l].clone()
        };
        let kept = self.held_out(l, &mut candidates)?;
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::Score,
            layer: Some(l),
            total: candidates.len(),
            usage: self.live_usage(None),
        });
        // Each candidate's ELBO term before the trust region or the log-p penalty.
        let elbos = if kept.is_empty() {
            vec![f64::NAN; candidates.len()]
        } else if l == self.net.output() {
            self.score_output(l, &mut candidates, &kept, before).await?
        } else {
            let post = self.cur()?.posteriors.get(l + 1).and_then(|p| p.as_ref());
            let post = post.ok_or_else(|| {
                DlnError::Command(format!("no posterior for the hidden text of layer {l}"))
            })?;
            let post = Posterior {
                examples: (post.examples.iter())
                    .filter(|e| kept.contains(&e.index))
                    .cloned()
                    .collect(),
                sharpened: post.sharpened,
            };
            self.score_hidden(l, &post, &mut candidates, before).await?
        };
        let mut pick = (self.train.selection == Selection::Random)
            .then(|| ops::stream(self.train.seed, it, Draw::Pick, l, 0));
        let (winner, elbo) = fold_scores(&candidates, &elbos, pick.as_mut());
        self.emit(Event::CandidatesScored {
            iteration: it,
            layer: l,
            candidates: candidates.clone(),
            winner,
        });
        let cur = self.cur_mut()?;
        cur.candidates[l] = candidates;
        cur.winners[l] = Some(winner);
        cur.elbo[l] = elbo;
        self.account(l, Operation::Score, before);
        Ok(())
    }

    /// Candidate `c` of `total` is scored: a progress event with the usage so far.
    fn scored(&self, l: LayerIndex, c: usize, total: usize, before: Usage) {
        self.emit(Event::StageProgress {
            iteration: self.iteration,
            stage: Stage::Score,
            done: c + 1,
            total,
            usage: self.live_usage(Some((l, Operation::Score, before))),
        });
    }

    /// Scores the output layer's candidates on every sample below, weighted; with a trust
    /// factor and classes, less `λ·KL` from the current prompt's class distributions.
    async fn score_output(
        &self,
        l: LayerIndex,
        candidates: &mut [Candidate],
        kept: &[usize],
        before: Usage,
    ) -> Result<Vec<f64>, DlnError> {
        let cur = self.cur()?;
        let tc = &self.train;
        let it = self.iteration;
        let layer = &self.net.layers[l];
        let classes = self.net.classes.as_ref();
        let accuracy_scoring = self.accuracy_scoring(l);
        let all_below = samples_below(cur, l);
        let below: Vec<Below> = kept.iter().map(|&i| all_below[i].clone()).collect();
        let batch: Vec<Example> = kept.iter().map(|&i| cur.batch[i].clone()).collect();
        let weights: Vec<Vec<f64>> = below.iter().map(|(_, w)| w.clone()).collect();
        let mut elbos = vec![f64::NAN; candidates.len()];
        let mut kl_dists: Vec<Vec<Vec<f64>>> = Vec::new();
        let nc = candidates.len();
        let mut per_candidate = Vec::with_capacity(nc);
        for cand in candidates.iter() {
            let shown = demos::shown(&self.shots, &cand.demos);
            per_candidate.push(output_pairs(layer, &batch, &below, &cand.prompt, &shown)?);
        }
        // Log-likelihoods of every candidate in one call: the engine then computes a prefix
        // the candidates share once (an input and its hidden text, where the template puts the
        // prompt after them) rather than once per candidate. Accuracy scoring stays per
        // candidate (its predictions are drawn per call).
        let mut merged = if accuracy_scoring {
            None
        } else {
            let pairs: Vec<(String, String)> = (per_candidate.iter())
                .flat_map(|(p, _)| p.iter().cloned())
                .collect();
            self.expect(Stage::Score, nc, pairs.len());
            let values = ops::output_logprobs(layer, classes, Operation::Score, pairs, tc.burn_in)
                .await?
                .0;
            Some(split_by(values, per_candidate.iter().map(|(p, _)| p.len())))
        };
        for (c, (cand, (pairs, shape))) in candidates.iter_mut().zip(per_candidate).enumerate() {
            let values = match merged.as_mut() {
                Some(merged) => std::mem::take(&mut merged[c]),
                None => {
                    let seeds = score_seeds(tc.seed, it, l, c, pairs.len());
                    ops::prediction_accuracies(layer, classes, pairs, seeds).await?
                }
            };
            let mut score = math::weighted_elbo(&reshape(&values, &shape), &weights);
            elbos[c] = score;
            if let (true, Some(cl)) = (tc.trust_factor > 0.0, classes) {
                let shown = demos::shown(&self.shots, &cand.demos);
                let contexts: Vec<String> = kept
                    .iter()
                    .map(|&i| {
                        ops::forward_context(layer, &cur.fwd.inputs[l][i], &cand.prompt, &shown)
                    })
                    .collect::<Result<_, _>>()?;
                let d = ops::classify(layer, cl, contexts).await?;
                kl_dists.push(d.into_iter().map(|d| d.probs).collect());
                let kl = math::mean_kl(&kl_dists[0], &kl_dists[c]);
                cand.kl = Some(kl);
                score -= tc.trust_factor * kl;
            }
            cand.score = Some(score);
            if merged.is_none() {
                self.scored(l, c, nc, before);
            }
        }
        if merged.is_some() && nc > 0 {
            self.expected_done();
            self.scored(l, nc - 1, nc, before);
        }
        Ok(elbos)
    }

    /// Scores a hidden layer's candidates on its own ELBO term over the posterior samples of
    /// the text it writes, with the log-p penalty on the wrong examples' own texts.
    async fn score_hidden(
        &self,
        l: LayerIndex,
        post: &Posterior,
        candidates: &mut [Candidate],
        before: Usage,
    ) -> Result<Vec<f64>, DlnError> {
        let cur = self.cur()?;
        let (tc, layer) = (&self.train, &self.net.layers[l]);
        let weights: Vec<Vec<f64>> = post.examples.iter().map(weights_of).collect();
        let shape: Vec<usize> = post.examples.iter().map(|e| e.samples.len()).collect();
        // Rows of the kept examples whose answer was wrong.
        let wrong: Vec<usize> = (post.examples.iter().enumerate())
            .filter(|(_, e)| !cur.fwd.correct[e.index])
            .map(|(j, _)| j)
            .collect();
        let penalty = math::logp_penalty_at(
            tc.logp_penalty,
            self.iteration,
            tc.iterations,
            tc.decay_logp_penalty,
        );
        let mut elbos = vec![f64::NAN; candidates.len()];
        let nc = candidates.len();
        // Every candidate's pairs in one call, so that what they share (an input before the
        // prompt) is computed once.
        let mut pairs = Vec::new();
        let mut lengths = Vec::with_capacity(nc);
        for cand in candidates.iter() {
            let shown = demos::shown(&[], &cand.demos);
            let own = hidden_pairs(layer, &cur.fwd.inputs[l], post, &cand.prompt, &shown)?;
            lengths.push(own.len());
            pairs.extend(own);
        }
        self.expect(Stage::Score, nc, pairs.len());
        let values = ops::text_logprobs(layer, Operation::Score, pairs, tc.burn_in).await?;
        let split = split_by(values, lengths.into_iter());
        for (c, (cand, values)) in candidates.iter_mut().zip(split).enumerate() {
            let ll = reshape(&values, &shape);
            let elbo = math::weighted_elbo(&ll, &weights);
            // Sample 0 of every example is the forward pass's own hidden text.
            let wrong_lp: Vec<f64> = wrong.iter().map(|i| ll[*i][0]).collect();
            elbos[c] = elbo;
            cand.score = Some(math::apply_logp_penalty(elbo, penalty, &wrong_lp));
        }
        if nc > 0 {
            self.expected_done();
            self.scored(l, nc - 1, nc, before);
        }
        Ok(elbos)
    }

    /// Select: the winner of the scores replaces layer `l`'s prompt (unless a person pinned
    /// it between scoring and selection).
    pub(super) fn stage_select(&mut self, l: LayerIndex) {
        let it = self.iteration;
        let Some(cur) = self.current.as_ref() else {
            return;
        };
        let Some(w) = cur.winners[l] else { return };
        let Some(c) = cur.candidates[l].get(w).cloned() else {
            return;
        };
        if !self.net.layers[l].updatable() {
            return;
        }
        let previous = std::mem::replace(&mut self.net.layers[l].prompt, c.prompt.clone());
        self.net.layers[l].demos = c.demos.clone();
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::Select,
            layer: Some(l),
            total: 1,
            usage: self.live_usage(None),
        });
        // GEPA keeps a mutation that beat its parent: it is scored on dev and joins the pool,
        // unless the pool holds it already (a small proposer writes an earlier member again).
        let known = |t: &Self| {
            let demos = math::stored_demos(t.net.demos());
            t.pool
                .as_ref()
                .is_some_and(|p| p.holds(&t.net.prompts(), &demos))
        };
        if self.train.gepa() && c.origin == CandidateOrigin::Proposed && !known(self) {
            if let Some(cur) = self.current.as_mut() {
                cur.queue.push_front(StageId::Evaluate);
            }
        }
        self.emit(Event::PromptSelected {
            iteration: it,
            layer: l,
            prompt: c.prompt,
            previous,
            demos: c.demos,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dln::events::{HiddenSample, PosteriorExample, SampleOrigin};
    use crate::dln::trainer::testing::{iteration, network};

    #[test]
    fn without_a_posterior_each_example_is_one_weight_one_sample() {
        let net = network(2);
        let cur = iteration(&net, 2, &[false, true]);
        let below = samples_below(&cur, 1);
        assert_eq!(
            below[1],
            (vec![Some(cur.fwd.hidden[0][1].clone())], vec![1.0])
        );
        assert_eq!(samples_below(&cur, 0)[0], (vec![None], vec![1.0]));
        let (pairs, shape) =
            output_pairs(&net.layers[1], &cur.batch, &below, "new prompt", &[]).unwrap();
        assert_eq!(shape, vec![1, 1]);
        assert!(pairs[1].0.contains("new prompt") && pairs[1].0.contains(&cur.fwd.hidden[0][1]));
        assert_eq!(pairs[1].1, cur.batch[1].target);
    }

    #[test]
    fn a_hidden_layer_scores_every_posterior_sample_under_its_example_context() {
        let net = network(2);
        let cur = iteration(&net, 1, &[false]);
        let sample = |t: &str, w: f64| HiddenSample {
            weight: Some(w),
            ..HiddenSample::unscored(t.into(), SampleOrigin::Posterior)
        };
        let post = Posterior {
            examples: vec![PosteriorExample {
                index: 0,
                input: "x".into(),
                target: "y".into(),
                hidden: "h".into(),
                correct: false,
                samples: vec![sample("a", 0.25), sample("b", 0.75)],
                best: Some(1),
                entropy: None,
            }],
            sharpened: true,
        };
        let pairs = hidden_pairs(&net.layers[0], &cur.fwd.inputs[0], &post, "cand", &[]).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].0, pairs[1].0);
        assert_eq!((pairs[0].1.as_str(), pairs[1].1.as_str()), ("a", "b"));
        assert_eq!(weights_of(&post.examples[0]), vec![0.25, 0.75]);
    }

    #[test]
    fn every_scoring_call_of_a_layer_has_its_own_seed() {
        let a = score_seeds(7, 2, 1, 0, 3);
        let b = score_seeds(7, 2, 1, 1, 3);
        assert_eq!(b[0], call_seed(7, 2, Operation::Score, 1, 3));
        assert!(a.iter().all(|s| !b.contains(s)));
        assert_ne!(
            score_seeds(7, 2, 0, 1, 3),
            b,
            "the layer is part of the seed"
        );
    }

    #[test]
    fn the_first_best_score_wins_and_brings_its_elbo_term() {
        let mut cands = vec![
            candidate("a".into(), CandidateOrigin::Current),
            candidate("b".into(), CandidateOrigin::Proposed),
            candidate("c".into(), CandidateOrigin::Proposed),
        ];
        for (c, s) in cands.iter_mut().zip([-2.0, -1.0, -1.0]) {
            c.score = Some(s);
        }
        let none: Option<&mut rand_chacha::ChaCha8Rng> = None;
        assert_eq!(
            fold_scores(&cands, &[-2.5, -1.5, -1.2], none),
            (1, Some(-1.5))
        );
        assert_eq!(
            fold_scores(&cands, &[f64::NAN; 3], None::<&mut rand_chacha::ChaCha8Rng>),
            (1, None)
        );
        assert_eq!(
            fold_scores(&[], &[], None::<&mut rand_chacha::ChaCha8Rng>),
            (0, None)
        );
        assert_eq!(
            reshape(&[1.0, 2.0, 3.0], &[2, 1]),
            vec![vec![1.0, 2.0], vec![3.0]]
        );
    }

    #[test]
    fn a_random_pick_takes_only_scored_candidates_and_is_fixed_by_its_stream() {
        let mut cands: Vec<Candidate> = (0..6)
            .map(|i| candidate(format!("p{i}"), CandidateOrigin::Proposed))
            .collect();
        // Candidates 1 and 4 could not be scored (no score, or no likelihood at all).
        for (i, c) in cands.iter_mut().enumerate() {
            c.score = match i {
                1 => None,
                4 => Some(f64::NEG_INFINITY),
                _ => Some(-(i as f64)),
            };
        }
        let elbos = [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0];
        let mut seen = std::collections::BTreeSet::new();
        for iteration in 0..64 {
            let mut rng = ops::stream(9, iteration, Draw::Pick, 0, 0);
            let (w, elbo) = fold_scores(&cands, &elbos, Some(&mut rng));
            assert!(![1, 4].contains(&w), "picked unscored candidate {w}");
            assert_eq!(elbo, Some(elbos[w]));
            let mut again = ops::stream(9, iteration, Draw::Pick, 0, 0);
            assert_eq!(fold_scores(&cands, &elbos, Some(&mut again)).0, w);
            seen.insert(w);
        }
        // Not the best-score rule: every scored candidate is picked some time.
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![0, 2, 3, 5]);
    }
}

#[cfg(test)]
#[path = "score_tests.rs"]
mod one_request_tests;
