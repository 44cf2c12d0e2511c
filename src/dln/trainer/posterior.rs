//! Posterior sampling: for the hidden text below layer `l`, samples `h̃` drawn by layer `l`'s
//! backward model toward the target above (`y`, or the best sample `h*` of the text above).

use serde_json::json;

use crate::config::TrainConfig;
use crate::dln::error::DlnError;
use crate::dln::events::{Event, HiddenSample, LayerIndex, PosteriorExample, SampleOrigin, Stage};
use crate::dln::network::Network;
use crate::dln::ops::{self, call_seed, Operation};
use crate::llm::{GenerateRequest, Generation, Usage};

use super::feedback;
use super::{IterState, Posterior, Trainer};

impl IterState {
    /// `h*` of example `i` for the hidden text below layer `l` (written by layer `l-1`): its
    /// best posterior sample once sharpened, else the forward pass's own text.
    pub(super) fn best_hidden(&self, l: LayerIndex, i: usize) -> String {
        self.posteriors
            .get(l)
            .and_then(|p| p.as_ref())
            .and_then(|p| {
                let ex = p.examples.get(i)?;
                ex.best.map(|b| ex.samples[b].text.clone())
            })
            .unwrap_or_else(|| self.fwd.hidden[l - 1][i].clone())
    }

    /// The target of layer `l` (above a hidden text) for example `i`: `y` for the output layer,
    /// else the best posterior sample `h*` of the hidden text layer `l` writes.
    pub(super) fn target_above(&self, output: LayerIndex, l: LayerIndex, i: usize) -> String {
        if l == output {
            return self.batch[i].target.clone();
        }
        self.best_hidden(l + 1, i)
    }

    /// The hidden texts a person wrote for the posterior below layer `l` before it was drawn,
    /// as (example, text); they leave the waiting list.
    fn take_pending_hidden(&mut self, l: LayerIndex) -> Vec<(usize, String)> {
        let b = self.batch.len();
        let pending = self
            .pending_hidden
            .iter()
            .filter(|(pl, i, _)| *pl == l && *i < b)
            .map(|(_, i, t)| (*i, t.clone()))
            .collect();
        self.pending_hidden.retain(|(pl, _, _)| *pl != l);
        pending
    }
}

/// The requests of the posterior below layer `l`, and the examples they fill in.
#[derive(Debug, Clone)]
pub(super) struct PosteriorRequests {
    /// Every example of the batch, holding its forward sample `h_i` so far.
    pub examples: Vec<PosteriorExample>,
    pub requests: Vec<GenerateRequest>,
    /// `owners[r]`: the example position request `r` samples for.
    pub owners: Vec<usize>,
}

/// `S` requests per example (only the wrong ones with `only_wrong_posterior`) on layer `l`'s
/// hidden-state proposal template `q`, message alternative `s`, seeds by position `i·S + s`.
pub(super) fn posterior_requests(
    net: &Network,
    train: &TrainConfig,
    cur: &IterState,
    l: LayerIndex,
) -> Result<PosteriorRequests, DlnError> {
    let s_count = train.num_hidden_samples;
    let layer = &net.layers[l];
    let below = &net.layers[l - 1];
    let q = layer.propose_hidden.as_ref().ok_or_else(|| {
        DlnError::Config(format!("layer {l} has no hidden-state proposal template"))
    })?;
    let b = cur.batch.len();
    let mut out = PosteriorRequests {
        examples: Vec::with_capacity(b),
        requests: Vec::new(),
        owners: Vec::new(),
    };
    for i in 0..b {
        let target = cur.target_above(net.output(), l, i);
        let h = cur.fwd.hidden[l - 1][i].clone();
        out.examples.push(PosteriorExample {
            index: i,
            input: cur.batch[i].input.clone(),
            target: target.clone(),
            hidden: h.clone(),
            correct: cur.fwd.correct[i],
            samples: vec![HiddenSample::unscored_cut(
                h.clone(),
                SampleOrigin::Forward,
                cur.fwd
                    .cut
                    .get(l - 1)
                    .and_then(|c| c.get(i))
                    .copied()
                    .unwrap_or(false),
            )],
            best: None,
            entropy: None,
        });
        if train.only_wrong_posterior && cur.fwd.correct[i] {
            continue;
        }
        for s in 0..s_count {
            let text = q.render(&json!({
                "input": cur.fwd.inputs[l - 1][i],
                "h": h,
                "y": target,
                "next_prompt": layer.prompt,
                "message": q.message(s),
                "prompt": below.prompt,
                "feedback": feedback::hidden_feedback(below, train, cur.batch_index.get(i).copied()),
            }))?;
            out.requests.push(GenerateRequest {
                prompt: q.prompt(text),
                temperature: layer.backward_temperature,
                top_p: train.backward_top_p,
                max_tokens: below.forward_max_tokens,
                stop: q.stop.clone(),
                seed: call_seed(
                    train.seed,
                    cur.iteration,
                    Operation::PosteriorSampling,
                    l,
                    i * s_count + s,
                ),
                n: 1,
            });
            out.owners.push(i);
        }
    }
    Ok(out)
}

/// Adds the drawn samples (trimmed, empty ones dropped) and then a person's texts to their
/// examples.
pub(super) fn fold_posterior(
    examples: &mut [PosteriorExample],
    owners: &[usize],
    answers: Vec<Vec<Generation>>,
    human: Vec<(usize, String)>,
) {
    for (&i, gens) in owners.iter().zip(answers) {
        for g in gens {
            let text = g.text.trim().to_string();
            if !text.is_empty() {
                examples[i].samples.push(HiddenSample::unscored_cut(
                    text,
                    SampleOrigin::Posterior,
                    g.cut,
                ));
            }
        }
    }
    for (i, text) in human {
        examples[i]
            .samples
            .push(HiddenSample::unscored(text, SampleOrigin::Human));
    }
}

impl Trainer {
    pub(super) async fn stage_posterior(&mut self, l: LayerIndex) -> Result<(), DlnError> {
        let before = self.meter();
        let it = self.iteration;
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::PosteriorSampling,
            layer: Some(l),
            total: self.cur()?.batch.len() * self.train.num_hidden_samples,
            usage: self.live_usage(None),
        });
        let PosteriorRequests {
            mut examples,
            requests,
            owners,
        } = posterior_requests(&self.net, &self.train, self.cur()?, l)?;
        let total = self.cur()?.batch.len() * self.train.num_hidden_samples;
        self.expect(Stage::PosteriorSampling, total, requests.len());
        let layer = &self.net.layers[l];
        let answers = ops::generate_backward(layer, Operation::PosteriorSampling, requests).await?;
        let human = self.cur_mut()?.take_pending_hidden(l);
        fold_posterior(&mut examples, &owners, answers, human);
        self.keep_posterior(l, examples, false, before)
    }

    /// Stores the posterior below layer `l` (drawn, or `sharpened`), says so, and accounts
    /// the stage's calls since `before`.
    pub(super) fn keep_posterior(
        &mut self,
        l: LayerIndex,
        examples: Vec<PosteriorExample>,
        sharpened: bool,
        before: Usage,
    ) -> Result<(), DlnError> {
        let (iteration, shown) = (self.iteration, examples.clone());
        self.emit(if sharpened {
            Event::Sharpened {
                iteration,
                layer: l,
                examples: shown,
            }
        } else {
            Event::PosteriorSampled {
                iteration,
                layer: l,
                examples: shown,
            }
        });
        self.cur_mut()?.posteriors[l] = Some(Posterior {
            examples,
            sharpened,
        });
        let operation = if sharpened {
            Operation::Sharpening
        } else {
            Operation::PosteriorSampling
        };
        self.account(l, operation, before);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dln::trainer::testing::{iteration, network};

    #[test]
    fn requests_aim_at_the_target_above_with_seeds_by_position() {
        let net = network(2);
        let train = TrainConfig {
            num_hidden_samples: 2,
            ..TrainConfig::default()
        };
        let cur = iteration(&net, 3, &[true, false, false]);
        let r = posterior_requests(&net, &train, &cur, 1).unwrap();
        assert_eq!(r.examples.len(), 3);
        assert_eq!(r.owners, vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(
            r.examples[2].target, cur.batch[2].target,
            "the output layer's target is y"
        );
        assert_eq!(r.examples[1].samples[0].origin, SampleOrigin::Forward);
        assert_eq!(
            r.requests[3].seed,
            call_seed(
                train.seed,
                cur.iteration,
                Operation::PosteriorSampling,
                1,
                3
            )
        );
        let only_wrong = TrainConfig {
            only_wrong_posterior: true,
            ..train
        };
        let r = posterior_requests(&net, &only_wrong, &cur, 1).unwrap();
        assert_eq!(
            r.owners,
            vec![1, 1, 2, 2],
            "a right example keeps only its own text"
        );
    }

    #[test]
    fn folding_keeps_non_empty_samples_then_a_persons_texts() {
        let net = network(2);
        let cur = iteration(&net, 2, &[false, false]);
        let mut r = posterior_requests(&net, &TrainConfig::default(), &cur, 1).unwrap();
        let gen = |t: &str| Generation {
            text: t.to_string(),
            tokens: 1,
            token_logprobs: None,
            cut: false,
        };
        let answers = vec![vec![gen("  first ")], vec![gen(" ")]];
        fold_posterior(&mut r.examples, &[0, 1], answers, vec![(1, "mine".into())]);
        let texts = |e: usize| -> Vec<&str> {
            r.examples[e]
                .samples
                .iter()
                .map(|s| s.text.as_str())
                .collect()
        };
        assert_eq!(texts(0), vec![cur.fwd.hidden[0][0].as_str(), "first"]);
        assert_eq!(texts(1), vec![cur.fwd.hidden[0][1].as_str(), "mine"]);
        assert_eq!(r.examples[1].samples[1].origin, SampleOrigin::Human);
    }
}
