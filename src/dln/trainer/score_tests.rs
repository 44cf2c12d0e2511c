//! Scoring a layer's candidates: every candidate in one request to the backend (so the engine
//! computes what they share once), each scored as it would be alone.

use std::path::Path;
use std::sync::Arc;

use crate::config::TrainConfig;
use crate::dln::events::{CandidateOrigin, Event, HiddenSample, PosteriorExample, SampleOrigin};
use crate::dln::math;
use crate::dln::ops::{self, Operation};
use crate::dln::trainer::testing::{dataset, iteration, network_on};
use crate::dln::trainer::{EventSink, Posterior, Trainer};
use crate::llm::scripted::ScriptedBackend;

use super::candidate;

struct Quiet;
impl EventSink for Quiet {
    fn emit(&self, _: Event) {}
}

fn trainer(layers: usize, backend: &ScriptedBackend) -> Trainer {
    let net = network_on(layers, backend.clone());
    Trainer::new(
        net,
        &TrainConfig::default(),
        Path::new("."),
        dataset(10),
        Arc::new(Quiet),
    )
    .expect("a trainer")
}

fn proposed(prompts: &[&str]) -> Vec<crate::dln::events::Candidate> {
    prompts
        .iter()
        .map(|p| candidate(p.to_string(), CandidateOrigin::Proposed))
        .collect()
}

#[tokio::test]
async fn the_output_layers_candidates_are_scored_in_one_request_each_as_alone() {
    let backend = ScriptedBackend::new();
    let mut t = trainer(1, &backend);
    let mut cur = iteration(&t.net, 4, &[false; 4]);
    cur.batch_index = (0..4).collect();
    let prompts = [
        "Answer with the letter.",
        "Pick A or B.",
        "Think, then answer.",
    ];
    cur.candidates[0] = proposed(&prompts);
    t.current = Some(cur);
    t.stage_score(0).await.expect("scored");
    assert_eq!(
        backend.score_batches(),
        vec![3 * 4],
        "one request, every candidate's pairs"
    );

    let cur = t.cur().expect("iteration");
    let layer = &t.net.layers[0];
    for (c, prompt) in cur.candidates[0].iter().zip(prompts) {
        let pairs: Vec<(String, String)> = (cur.batch.iter())
            .map(|e| {
                let ctx = ops::forward_context(layer, &e.input, prompt, &[]).expect("context");
                (ctx, e.target.clone())
            })
            .collect();
        let (alone, _) = ops::output_logprobs(layer, None, Operation::Score, pairs, 0.0)
            .await
            .expect("scored alone");
        let rows: Vec<Vec<f64>> = alone.iter().map(|v| vec![*v]).collect();
        let want = math::weighted_elbo(&rows, &vec![vec![1.0]; rows.len()]);
        assert_eq!(c.score, Some(want), "{prompt}");
    }
}

#[tokio::test]
async fn a_hidden_layers_candidates_are_scored_in_one_request_each_as_alone() {
    let backend = ScriptedBackend::new();
    let mut t = trainer(2, &backend);
    let mut cur = iteration(&t.net, 3, &[true, false, true]);
    cur.batch_index = (0..3).collect();
    let weights = [0.5, 0.3, 0.2];
    let examples: Vec<PosteriorExample> = (0..3)
        .map(|i| PosteriorExample {
            index: i,
            input: cur.batch[i].input.clone(),
            target: cur.batch[i].target.clone(),
            hidden: format!("h0-{i}"),
            correct: i != 1,
            samples: (0..3)
                .map(|s| {
                    let origin = if s == 0 {
                        SampleOrigin::Forward
                    } else {
                        SampleOrigin::Posterior
                    };
                    let mut sample = HiddenSample::unscored(format!("thought {i}.{s}"), origin);
                    sample.weight = Some(weights[s]);
                    sample
                })
                .collect(),
            best: Some(0),
            entropy: Some(0.9),
        })
        .collect();
    cur.posteriors[1] = Some(Posterior {
        examples: examples.clone(),
        sharpened: true,
    });
    let prompts = ["Think it through.", "List the steps."];
    cur.candidates[0] = proposed(&prompts);
    t.current = Some(cur);
    t.stage_score(0).await.expect("scored");
    assert_eq!(
        backend.score_batches(),
        vec![2 * 3 * 3],
        "one request for both candidates"
    );

    let cur = t.cur().expect("iteration");
    let layer = &t.net.layers[0];
    let scores: Vec<f64> = (cur.candidates[0].iter())
        .map(|c| c.score.expect("scored"))
        .collect();
    assert_ne!(scores[0], scores[1]);
    for (c, prompt) in cur.candidates[0].iter().zip(prompts) {
        let mut rows = Vec::new();
        for ex in &examples {
            let ctx = ops::forward_context(layer, &cur.fwd.inputs[0][ex.index], prompt, &[])
                .expect("context");
            let pairs = (ex.samples.iter())
                .map(|s| (ctx.clone(), s.text.clone()))
                .collect();
            rows.push(
                ops::text_logprobs(layer, Operation::Score, pairs, 0.0)
                    .await
                    .expect("scored alone"),
            );
        }
        let w: Vec<Vec<f64>> = vec![weights.to_vec(); 3];
        // No log-p penalty by default: the score is the ELBO term.
        assert_eq!(c.score, Some(math::weighted_elbo(&rows, &w)), "{prompt}");
    }
}
