//! The training loop against the scripted backend: every stage runs for DLN-1, DLN-2 and DLN-3,
//! the numbers in the events are the method's formulas, and the run directory is complete.

mod common;

use common::session::*;
use dln::dln::events::Event;
use dln::llm::scripted::ScriptedBackend;
use dln::run::{read_checkpoint, read_events, read_result, Session};

async fn run_layers(
    layers: usize,
    backend: ScriptedBackend,
) -> (tempfile::TempDir, Vec<Event>, dln::run::RunSummary) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let session = Session::start(tiny_config(layers), options_with(backend, &out))
        .await
        .expect("start");
    let (r, events) = run_to_end(session).await;
    let summary = r.expect("run succeeds");
    (dir, events, summary)
}

#[tokio::test]
async fn dln1_runs_every_stage_and_writes_the_run_directory() {
    let (dir, events, summary) = run_layers(1, scripted()).await;
    let out = dir.path().join("run");
    assert_eq!(summary.iterations, 2);
    assert!(summary.test_accuracy.is_some());
    assert_eq!(
        count(&events, |e| matches!(e, Event::ForwardDone { .. })),
        2
    );
    assert!(count(&events, |e| matches!(e, Event::CandidatesScored { .. })) >= 1);
    // The start (first_eval) and after each of the 2 iterations.
    assert_eq!(
        count(
            &events,
            |e| matches!(e, Event::Evaluated { split, .. } if *split == dln::dln::events::Split::Dev)
        ),
        3
    );
    assert_eq!(
        count(&events, |e| matches!(e, Event::CheckpointWritten { .. })),
        3
    );
    for f in [
        "config.toml",
        "events.jsonl",
        "checkpoint.json",
        "result.json",
        "cache/calls.sqlite",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // events.jsonl holds what the live channel saw (floats up to JSON's last digit).
    let logged = read_events(&out).expect("read events");
    assert_eq!(logged.len(), events.len());
    let tag = |e: &Event| {
        serde_json::to_value(e)
            .ok()
            .and_then(|v| v.get("event").cloned())
    };
    for (a, b) in logged.iter().zip(&events) {
        assert_eq!(tag(a), tag(b));
    }
    let cp = read_checkpoint(&out).expect("checkpoint").expect("present");
    assert!(cp.finished);
    assert_eq!(cp.state.iteration, 2);
    let result = read_result(&out).expect("result").expect("present");
    assert_eq!(result.best_prompts, summary.best_prompts);
    assert!(result.usage.calls > 0);
    assert!(result
        .usage_by_layer
        .iter()
        .any(|u| u.operation == dln::dln::events::Operation::Propose));
}

#[tokio::test]
async fn dln2_and_dln3_sample_sharpen_and_update_every_layer() {
    for layers in [2usize, 3] {
        let (_dir, events, summary) = run_layers(layers, scripted()).await;
        assert_eq!(summary.best_prompts.len(), layers);
        // Every hidden text gets posterior samples and sharpening, top-down.
        let sampled: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                Event::PosteriorSampled {
                    iteration: 0,
                    layer,
                    ..
                } => Some(*layer),
                _ => None,
            })
            .collect();
        let expect: Vec<usize> = (1..layers).rev().collect();
        let all_right_first = events.iter().any(|e| matches!(e, Event::Warning { message } if message.contains("iteration 1: every example")));
        if !all_right_first {
            assert_eq!(sampled, expect, "{layers} layers");
        }
        for e in &events {
            if let Event::Sharpened { examples, .. } = e {
                for ex in examples {
                    let w: Vec<f64> = ex
                        .samples
                        .iter()
                        .map(|s| s.weight.expect("weight"))
                        .collect();
                    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                    // w = softmax(log_weight / T) with T = 1, log_weight = ll + prior.
                    let lw: Vec<f64> = ex
                        .samples
                        .iter()
                        .map(|s| s.log_weight.expect("lw"))
                        .collect();
                    let m = lw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = lw.iter().map(|l| (l - m).exp()).sum();
                    for (s, l) in ex.samples.iter().zip(&lw) {
                        assert!((s.weight.expect("w") - (l - m).exp() / z).abs() < 1e-9);
                        let sum = s.log_likelihood.expect("ll") + s.log_prior.expect("prior");
                        assert!((sum - l).abs() < 1e-12);
                    }
                    let best = ex.best.expect("best");
                    assert!(w.iter().all(|x| *x <= w[best]));
                    let h = ex.entropy.expect("entropy");
                    assert!((0.0..=1.0).contains(&h));
                }
            }
        }
        // Each layer has its own ELBO term once updated.
        let terms = events.iter().find_map(|e| match e {
            Event::Elbo { terms, total, .. } => Some((terms.clone(), *total)),
            _ => None,
        });
        if let Some((terms, total)) = terms {
            assert_eq!(terms.len(), layers);
            let s: f64 = terms.iter().flatten().sum();
            assert!((s - total).abs() < 1e-12);
        }
    }
}

#[tokio::test]
async fn dln1_candidate_scores_are_mean_class_log_likelihoods() {
    // Proposed prompts (which say "variant") put 3:1 on class 0 = (A); the current prompt is 1:1.
    let backend = scripted().on_classify(|r| {
        if r.context.contains("variant") {
            vec![(3.0f64).ln(), 0.0]
        } else {
            vec![0.0, 0.0]
        }
    });
    let (_dir, events, _) = run_layers(1, backend).await;
    let mut checked = 0;
    let mut batch_targets: Vec<String> = Vec::new();
    for e in &events {
        match e {
            Event::ForwardDone { examples, .. } => {
                batch_targets = examples.iter().map(|x| x.target.clone()).collect()
            }
            Event::CandidatesScored {
                candidates, winner, ..
            } => {
                for c in candidates {
                    let expect = match c.origin {
                        // The start (current, or remembered from its dev evaluation).
                        _ if !c.prompt.contains("variant") => 0.5f64.ln(),
                        _ => {
                            let lp: Vec<f64> = batch_targets
                                .iter()
                                .map(|t| {
                                    if t == "(A)" {
                                        0.75f64.ln()
                                    } else {
                                        0.25f64.ln()
                                    }
                                })
                                .collect();
                            lp.iter().sum::<f64>() / lp.len() as f64
                        }
                    };
                    assert!((c.score.expect("scored") - expect).abs() < 1e-9, "{c:?}");
                    checked += 1;
                }
                let best = candidates
                    .iter()
                    .map(|c| c.score.unwrap_or(f64::NEG_INFINITY))
                    .fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(candidates[*winner].score, Some(best));
            }
            _ => {}
        }
    }
    assert!(checked >= 2);
}

#[tokio::test]
async fn baselines_run_through_the_same_code() {
    // 0-shot: no training, dev and test of the initial prompt.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = tiny_config(1);
    c.set("train.mode", "zero_shot").expect("mode");
    let s = Session::start(c, options_with(scripted(), &dir.path().join("zero")))
        .await
        .expect("start");
    let (r, events) = run_to_end(s).await;
    let r = r.expect("zero-shot run");
    assert_eq!(r.iterations, 0);
    assert_eq!(
        count(&events, |e| matches!(e, Event::ForwardDone { .. })),
        0
    );
    assert!(r.dev_accuracy.is_some() && r.test_accuracy.is_some());
    assert_eq!(
        r.best_prompts,
        vec!["Answer the question with the letter of the correct option.".to_string()]
    );

    // k-shot: k training examples rendered before every input.
    let backend = scripted();
    let mut c = tiny_config(1);
    c.set("train.mode", "k_shot").expect("mode");
    c.set("train.k_shot", "2").expect("k");
    let s = Session::start(c, options_with(backend.clone(), &dir.path().join("kshot")))
        .await
        .expect("start");
    let (r, _) = run_to_end(s).await;
    r.expect("k-shot run");
    let contexts: Vec<String> = backend
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            dln::llm::scripted::ScriptedCall::Classify(r) => Some(r.context),
            _ => None,
        })
        .collect();
    assert!(!contexts.is_empty());
    for ctx in contexts {
        assert_eq!(ctx.matches("Input:").count(), 3, "{ctx}");
    }
}

/// The stages' times are checkpointed, so a resumed run forecasts its first iteration at once
/// instead of after one it has to run in full again.
#[tokio::test]
async fn a_resumed_run_forecasts_at_once_from_the_checkpointed_stage_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    run_succeeding(tiny_config(1), scripted(), &out).await;
    let cp = read_checkpoint(&out).expect("checkpoint").expect("present");
    let kinds: Vec<&str> = cp
        .state
        .stage_times
        .iter()
        .map(|t| t.stage.as_str())
        .collect();
    for kind in ["forward", "propose:0", "score:0", "evaluate"] {
        assert!(kinds.contains(&kind), "{kind} not kept: {kinds:?}");
    }
    let mut opts = options_with(scripted(), &out);
    opts.overrides = vec!["train.iterations=3".into()];
    let session = Session::resume(&out, opts).await.expect("resume");
    let (r, events) = run_to_end(session).await;
    r.expect("the resumed run succeeds");
    let first = events.iter().find_map(|e| match e {
        Event::Forecast {
            iteration,
            iteration_left_ms,
            run_left_ms,
            ..
        } => Some((*iteration, *iteration_left_ms, *run_left_ms)),
        _ => None,
    });
    let (iteration, this, run) = first.expect("a forecast");
    assert_eq!(iteration, 2);
    assert!(this.is_some() && run.is_some(), "{first:?}");
}
