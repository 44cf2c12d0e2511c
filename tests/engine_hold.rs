//! A pause holds the embedded engine within one decode step: while held its token counters stay
//! still and its call does not finish; released, the call carries on and gives exactly what it
//! gives when left alone (the same samples and log-probabilities), so a pause loses nothing.
//! The engine says when it is quiet (held and between decode steps), which is when a run is
//! announced paused.
//! On the real SmolLM2-135M model.

mod common;

use std::sync::Arc;
use std::time::Duration;

use dln::llm::embedded::{EmbeddedBackend, EmbeddedOptions};
use dln::llm::{Backend, GenerateRequest, Generation, Prompt, ScoreRequest};

fn request() -> GenerateRequest {
    GenerateRequest {
        prompt: Prompt::raw("Question: name three colours of the rainbow.\nAnswer:"),
        temperature: 0.8,
        top_p: 0.95,
        max_tokens: 48,
        stop: vec![],
        seed: 3,
        n: 4,
    }
}

fn load() -> Arc<EmbeddedBackend> {
    let path = common::test_model();
    Arc::new(EmbeddedBackend::load(&path, EmbeddedOptions::default()).expect("the model loads"))
}

type Call<T> = tokio::task::JoinHandle<dln::llm::LlmResult<T>>;

/// Starts `request` on the engine and returns once it is generating (its counter moved by 8).
async fn generating(
    backend: &Arc<EmbeddedBackend>,
    request: GenerateRequest,
) -> Call<Vec<Vec<Generation>>> {
    let start = backend.usage().tokens_generated;
    let engine = Arc::clone(backend);
    let call = tokio::spawn(async move { engine.generate(vec![request]).await });
    while backend.usage().tokens_generated < start + 8 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    call
}

/// Whether the engine is quiet within `polls` looks 10 ms apart.
async fn quiet_within(backend: &EmbeddedBackend, polls: usize) -> bool {
    for _ in 0..polls {
        if backend.is_quiet() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    backend.is_quiet()
}

/// Waits while the engine is held: once it says it is quiet (a decode step already under way
/// when the hold was set may finish first), what it computed must not move.
async fn assert_still(backend: &EmbeddedBackend, what: &str) {
    assert!(
        quiet_within(backend, 600).await,
        "{what}: the held engine never went quiet"
    );
    let before = backend.usage();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = backend.usage();
    assert_eq!(
        (after.tokens_computed, after.tokens_generated),
        (before.tokens_computed, before.tokens_generated),
        "{what}: the engine computed while held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_engine_stops_within_a_step_and_carries_on_exactly_when_released() {
    let backend = load();
    let alone = backend.generate(vec![request()]).await.expect("generate");

    // Held in the middle of a generation.
    let start = backend.usage().tokens_generated;
    let call = generating(&backend, request()).await;
    backend.hold(true);
    assert_still(&backend, "generation").await;
    assert!(!call.is_finished(), "the held generation finished");
    let generated = backend.usage().tokens_generated - start;
    assert!(
        generated < 4 * 48,
        "held before its end ({generated} tokens)"
    );
    backend.hold(false);
    let held = call.await.expect("join").expect("generate");
    assert_eq!(held, alone, "a held generation gives what it gives alone");

    // Held before a scoring call starts: it computes nothing until released.
    let score = ScoreRequest {
        context: "The colours of the rainbow are red, orange,".into(),
        target: " yellow, green, blue".into(),
    };
    let alone = backend.score(vec![score.clone()]).await.expect("score");
    backend.hold(true);
    let engine = Arc::clone(&backend);
    let other = ScoreRequest {
        context: "A different context, not cached: the sky is".into(),
        target: " blue".into(),
    };
    let call = tokio::spawn(async move { engine.score(vec![other, score]).await });
    assert_still(&backend, "scoring").await;
    assert!(!call.is_finished(), "the held scoring finished");
    backend.hold(false);
    let held = call.await.expect("join").expect("score");
    assert_eq!(held[1].logprob.to_bits(), alone[0].logprob.to_bits());
    // The worker counts itself at work until just after it answered.
    assert!(
        quiet_within(backend.as_ref(), 100).await,
        "nothing at work after the call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_left_while_held_is_abandoned_by_the_engine() {
    let backend = load();
    let alone = backend.generate(vec![request()]).await.expect("generate");
    let mut long = request();
    long.max_tokens = 400;
    let call = generating(&backend, long).await;
    backend.hold(true);
    // The caller leaves (a person's command left the held stage), then the hold is released:
    // the engine does not run the abandoned call on.
    call.abort();
    assert!(call.await.is_err_and(|e| e.is_cancelled()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    backend.hold(false);
    let before = backend.usage().tokens_generated;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        backend.usage().tokens_generated,
        before,
        "the abandoned generation ran on"
    );
    // The engine answers the next call as if nothing had happened.
    let again = backend.generate(vec![request()]).await.expect("generate");
    assert_eq!(again, alone);
}
