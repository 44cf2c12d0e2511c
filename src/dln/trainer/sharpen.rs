//! Sharpening: each posterior sample `h̃` of the hidden text below layer `l` gets
//! `w̃ = log p(target above | F(R(x, h̃); π_l)) + log p(h̃ | F_h(x; π_{l-1}))`, and each example's
//! weights are normalized at temperature `T` (ALGORITHM.md §3), which picks `h*`.

use crate::dln::error::DlnError;
use crate::dln::events::{Event, LayerIndex, PosteriorExample, Stage};
use crate::dln::math;
use crate::dln::ops::{self, call_seed, Operation};

use super::forward::Forward;
use super::{IterState, Trainer};

/// A sample of a posterior: (example position, sample index).
type SampleAt = (usize, usize);

/// The scoring requests of listed samples, in their order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SharpenRequests {
    /// (`F(R(x, h̃); π_l)` with the output layer's demonstrations, the target above).
    pub likelihood: Vec<(String, String)>,
    /// (`F_h(x; π_{l-1})`, `h̃`).
    pub prior: Vec<(String, String)>,
    /// Seeds of the likelihood calls under accuracy scoring.
    pub seeds: Vec<u64>,
}

/// Every sample of a posterior.
pub(super) fn all_samples(examples: &[PosteriorExample]) -> Vec<SampleAt> {
    examples
        .iter()
        .enumerate()
        .flat_map(|(e, ex)| (0..ex.samples.len()).map(move |s| (e, s)))
        .collect()
}

/// The samples not scored yet (a person's, added after sharpening).
pub(super) fn unscored_samples(examples: &[PosteriorExample]) -> Vec<SampleAt> {
    examples
        .iter()
        .enumerate()
        .flat_map(|(e, ex)| {
            ex.samples
                .iter()
                .enumerate()
                .filter(|(_, s)| s.log_weight.is_none())
                .map(move |(s, _)| (e, s))
        })
        .collect()
}

/// The requests scoring the listed samples of the posterior below layer `l`. A sample's seed
/// index is its position in the whole posterior, so scoring a sample later (a person's) asks
/// what scoring it with the others would have asked.
pub(super) fn sharpen_requests(
    forward: &Forward<'_>,
    cur: &IterState,
    l: LayerIndex,
    examples: &[PosteriorExample],
    which: &[SampleAt],
) -> Result<SharpenRequests, DlnError> {
    let net = forward.net;
    let layer = &net.layers[l];
    let below = &net.layers[l - 1];
    let mut offsets = Vec::with_capacity(examples.len());
    let mut at = 0;
    for ex in examples {
        offsets.push(at);
        at += ex.samples.len();
    }
    let shots = if l == net.output() {
        forward.shots
    } else {
        &[]
    };
    let mut r = SharpenRequests {
        likelihood: Vec::with_capacity(which.len()),
        prior: Vec::with_capacity(which.len()),
        seeds: Vec::with_capacity(which.len()),
    };
    for &(e, s) in which {
        let ex = &examples[e];
        let i = ex.index;
        let text = &ex.samples[s].text;
        let u = ops::layer_input(layer, &cur.batch[i].input, Some(text))?;
        r.likelihood.push((
            ops::forward_context(layer, &u, &layer.prompt, shots)?,
            ex.target.clone(),
        ));
        let below_ctx = ops::forward_context(below, &cur.fwd.inputs[l - 1][i], &below.prompt, &[])?;
        r.prior.push((below_ctx, text.clone()));
        let seed_index = offsets[e] + s;
        r.seeds.push(call_seed(
            forward.seed,
            cur.iteration,
            Operation::Sharpening,
            l,
            seed_index,
        ));
    }
    Ok(r)
}

/// Writes the terms of the listed samples: `log_likelihood`, `log_prior` (when the prior is
/// on) and `w̃`, their sum.
pub(super) fn fold_terms(
    examples: &mut [PosteriorExample],
    which: &[SampleAt],
    likelihood: &[f64],
    prior: Option<&[f64]>,
) {
    for (j, &(e, s)) in which.iter().enumerate() {
        let sm = &mut examples[e].samples[s];
        let p = prior.map(|p| p[j]);
        sm.log_likelihood = Some(likelihood[j]);
        sm.log_prior = p;
        sm.log_weight = Some(likelihood[j] + p.unwrap_or(0.0));
    }
}

/// Normalizes one example's sample weights from their log-weights, and picks `h*`. Without
/// `own_eligible`, the forward pass's own text (sample 0) of an example the network got wrong
/// takes no weight and cannot be `h*` while another sample can.
pub(super) fn reweigh(ex: &mut PosteriorExample, temperature: f64, own_eligible: bool) {
    let lw: Vec<f64> = ex
        .samples
        .iter()
        .map(|s| s.log_weight.unwrap_or(f64::NEG_INFINITY))
        .collect();
    let mut excluded: Vec<bool> = ex.samples.iter().map(|s| s.excluded).collect();
    let others = excluded.iter().skip(1).any(|e| !e);
    if !own_eligible && !ex.correct && others {
        if let Some(own) = excluded.first_mut() {
            *own = true;
        }
    }
    let w = math::sharpen(&lw, &excluded, temperature);
    let live = excluded.iter().filter(|e| !**e).count();
    ex.entropy = Some(math::normalized_entropy(&w, live));
    let masked: Vec<f64> = w
        .iter()
        .zip(&excluded)
        .map(|(w, e)| if *e { f64::NAN } else { *w })
        .collect();
    ex.best = math::argmax(&masked);
    for (s, w) in ex.samples.iter_mut().zip(w) {
        s.weight = Some(w);
    }
}

impl Trainer {
    pub(super) async fn stage_sharpen(&mut self, l: LayerIndex) -> Result<(), DlnError> {
        let post = self.cur()?.posteriors[l]
            .clone()
            .ok_or_else(|| DlnError::Command(format!("no posterior samples for layer {l}")))?;
        let which = all_samples(&post.examples);
        self.sharpen(l, post.examples, &which).await
    }

    /// Scores the hidden texts a person added after sharpening (exactly as sharpening scored
    /// the others), re-normalizes their examples' weights and picks `h*` again.
    pub(super) async fn stage_rescore(&mut self, l: LayerIndex) -> Result<(), DlnError> {
        let Some(post) = self.cur()?.posteriors[l].clone() else {
            return Ok(());
        };
        let which = unscored_samples(&post.examples);
        if which.is_empty() {
            return Ok(());
        }
        self.sharpen(l, post.examples, &which).await
    }

    /// The Sharpening stage over the listed samples of the posterior below layer `l`: scores
    /// them, re-normalizes the weights of their examples and stores the posterior as sharpened.
    /// (Every example holds at least its forward sample, so listing every sample re-normalizes
    /// every example.)
    async fn sharpen(
        &mut self,
        l: LayerIndex,
        mut examples: Vec<PosteriorExample>,
        which: &[SampleAt],
    ) -> Result<(), DlnError> {
        let before = self.meter();
        let it = self.iteration;
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::Sharpening,
            layer: Some(l),
            total: which.len(),
            usage: self.live_usage(None),
        });
        let demos = self.net.demos();
        let forward = Forward {
            net: &self.net,
            shots: &self.shots,
            demos: &demos,
            seed: self.train.seed,
        };
        let r = sharpen_requests(&forward, self.cur()?, l, &examples, which)?;
        let priors = if self.train.include_prior {
            r.prior.len()
        } else {
            0
        };
        self.expect(Stage::Sharpening, which.len(), r.likelihood.len() + priors);
        let (likelihood, prior) = self.sharpening_terms(l, r).await?;
        fold_terms(&mut examples, which, &likelihood, prior.as_deref());
        let temperature = self.train.posterior_temperature;
        let own_eligible = !self.train.exclude_wrong_hidden;
        let mut touched: Vec<usize> = which.iter().map(|(e, _)| *e).collect();
        touched.dedup();
        for e in touched {
            reweigh(&mut examples[e], temperature, own_eligible);
        }
        self.keep_posterior(l, examples, true, before)
    }

    /// The backend calls of sharpening: the likelihoods (the output layer's accuracy under
    /// accuracy scoring, its class log-probability, or a hidden text's per-token mean) and,
    /// when the prior is on, the priors.
    async fn sharpening_terms(
        &self,
        l: LayerIndex,
        r: SharpenRequests,
    ) -> Result<(Vec<f64>, Option<Vec<f64>>), DlnError> {
        let op = Operation::Sharpening;
        let burn_in = self.train.burn_in;
        let classes = self.net.classes.as_ref();
        let layer = &self.net.layers[l];
        let output = l == self.net.output();
        let likelihood = if output && self.accuracy_scoring(l) {
            ops::prediction_accuracies(layer, classes, r.likelihood, r.seeds).await?
        } else if output {
            ops::output_logprobs(layer, classes, op, r.likelihood, burn_in)
                .await?
                .0
        } else {
            ops::text_logprobs(layer, op, r.likelihood, burn_in).await?
        };
        let prior = if self.train.include_prior {
            let below = &self.net.layers[l - 1];
            Some(ops::text_logprobs(below, op, r.prior, burn_in).await?)
        } else {
            None
        };
        Ok((likelihood, prior))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dln::events::{HiddenSample, SampleOrigin};
    use crate::dln::trainer::testing::{iteration, network};

    fn example(weights: &[Option<f64>], correct: bool) -> PosteriorExample {
        PosteriorExample {
            index: 0,
            input: "x".into(),
            target: "y".into(),
            hidden: "h".into(),
            correct,
            samples: weights
                .iter()
                .enumerate()
                .map(|(s, w)| HiddenSample {
                    log_weight: *w,
                    ..HiddenSample::unscored(format!("h{s}"), SampleOrigin::Posterior)
                })
                .collect(),
            best: None,
            entropy: None,
        }
    }

    #[test]
    fn seeds_index_a_sample_by_its_place_in_the_whole_posterior() {
        let net = network(2);
        let cur = iteration(&net, 2, &[false, false]);
        let examples = vec![example(&[None, None], false), {
            let mut e = example(&[None, None, None], false);
            e.index = 1;
            e
        }];
        let forward = Forward {
            net: &net,
            shots: &[],
            demos: &[],
            seed: 5,
        };
        let which = vec![(1, 2)];
        let r = sharpen_requests(&forward, &cur, 1, &examples, &which).unwrap();
        assert_eq!(
            r.seeds,
            vec![call_seed(5, cur.iteration, Operation::Sharpening, 1, 4)]
        );
        assert!(
            r.likelihood[0].0.contains("h2"),
            "the sample is the layer's text below"
        );
        assert_eq!(r.likelihood[0].1, "y");
        assert_eq!(r.prior[0].1, "h2");
        assert_eq!(all_samples(&examples).len(), 5);
    }

    #[test]
    fn terms_sum_into_the_log_weight_and_reweighing_picks_h_star() {
        let mut examples = vec![example(&[None, None], true)];
        fold_terms(
            &mut examples,
            &[(0, 0), (0, 1)],
            &[-2.0, -1.0],
            Some(&[-0.5, -0.5]),
        );
        let s = &examples[0].samples[1];
        assert_eq!(
            (s.log_likelihood, s.log_prior, s.log_weight),
            (Some(-1.0), Some(-0.5), Some(-1.5))
        );
        fold_terms(&mut examples, &[(0, 0)], &[-3.0], None);
        assert_eq!(
            examples[0].samples[0].log_weight,
            Some(-3.0),
            "no prior: w̃ is the likelihood"
        );
        reweigh(&mut examples[0], 1.0, true);
        assert_eq!(examples[0].best, Some(1));
        let total: f64 = examples[0].samples.iter().filter_map(|s| s.weight).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!(unscored_samples(&examples).is_empty());
    }

    #[test]
    fn a_wrong_examples_own_text_can_be_left_out_of_the_weights() {
        let mut ex = example(&[Some(-0.1), Some(-5.0)], false);
        reweigh(&mut ex, 1.0, false);
        assert_eq!(ex.best, Some(1));
        assert_eq!(ex.samples[0].weight, Some(0.0));
        reweigh(&mut ex, 1.0, true);
        assert_eq!(ex.best, Some(0));
    }
}
