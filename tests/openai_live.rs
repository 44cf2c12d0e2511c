//! The HTTP backend against a real OpenAI-compatible server on loopback: llama-cpp-python's
//! server on the test model, SmolLM2-135M (`scripts/openai-server`, started by `.ci/run`).
//!
//! `DLN_TEST_OPENAI_URL` is the base URL of the server started with the echo fix (`fixed`);
//! `DLN_TEST_OPENAI_URL_UPSTREAM` (optional) one started unchanged. Without the variable each
//! test says it was skipped; `.ci/run` sets it so CI runs them.
//!
//! Scores are compared with the embedded engine on the same GGUF file. Tolerance: 1e-3 nats on a
//! target's summed log-probability and 1e-4 on class probabilities. Both sides run llama.cpp on
//! the same weights on the CPU, but different llama.cpp builds (the one llama-cpp-2 vendors and
//! the one llama-cpp-python vendors) with different batch shapes, so float32 sums may be
//! accumulated in different orders; measured differences are below 1e-5 (the test prints them),
//! while a one-token misalignment or a wrong token boundary is off by whole nats.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::session::*;
use dln::config::Config;
use dln::dln::events::Event;
use dln::llm::embedded::{EmbeddedBackend, EmbeddedOptions};
use dln::llm::openai::{OpenAiBackend, OpenAiConfig, ScoringMode};
use dln::llm::{Backend, ClassifyRequest, GenerateRequest, Prompt, ScoreRequest, VerbalizerReduce};
use dln::run::{Session, SessionOptions};

const SCORE_TOLERANCE: f64 = 1e-3;
const PROB_TOLERANCE: f64 = 1e-4;

fn url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            eprintln!("skipped: {var} is not set (scripts/openai-server starts a server; .ci/run sets it)");
            None
        }
    }
}

fn server_config(url: &str) -> OpenAiConfig {
    OpenAiConfig {
        base_url: url.to_string(),
        model: "smollm2-135m".into(),
        max_in_flight: 2,
        timeout_secs: 300.0,
        ..OpenAiConfig::default()
    }
}

async fn connect(url: &str) -> OpenAiBackend {
    OpenAiBackend::connect(&server_config(url), Path::new("."), 2048, None)
        .await
        .expect("connect to the live server")
}

fn embedded() -> EmbeddedBackend {
    let path = common::test_model();
    EmbeddedBackend::load(
        &path,
        EmbeddedOptions {
            context_size: 2048,
            threads: Some(1),
            ..Default::default()
        },
    )
    .expect("load the embedded model")
}

/// Texts whose seam the tokenizer does not merge (the target starts a new word), multi-token
/// targets and a multibyte one.
fn score_texts() -> Vec<ScoreRequest> {
    let pairs = [
        ("The capital of France is", " Paris, a city on the Seine."),
        (
            "Question: Which number is larger, 76 or 48?\nAnswer:",
            " 76",
        ),
        (
            "Translate to French: coffee with milk.\nFrench:",
            " café au lait",
        ),
        (
            "Let's think step by step. First,",
            " we compare the tens digits.",
        ),
        ("Is the sky blue? Answer Yes or No.\nAnswer:", " Yes"),
    ];
    pairs
        .iter()
        .map(|(c, t)| ScoreRequest {
            context: c.to_string(),
            target: t.to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_scores_agree_with_the_embedded_engine() {
    let Some(url) = url("DLN_TEST_OPENAI_URL") else {
        return;
    };
    let http = connect(&url).await;
    assert_eq!(
        http.scoring_mode(),
        ScoringMode::Echo,
        "{}",
        http.report().line()
    );
    // llama-cpp-python 0.3.36 refuses an array of prompts (an assertion, answered 500): the
    // probe finds it out and every prompt goes in its own request, whatever
    // `prompts_per_request` says (the default, 8, is what `server_config` asks for).
    let caps = &http.report().capabilities;
    assert!(!caps.prompt_arrays, "{}", http.report().line());
    assert!(
        http.report().line().contains("no prompt arrays"),
        "{}",
        http.report().line()
    );
    assert_eq!(http.requests_per_call(), 1);
    let local = embedded();
    let texts = score_texts();
    let a = http.score(texts.clone()).await.expect("http scores");
    let b = local.score(texts.clone()).await.expect("embedded scores");
    let mut max_diff = 0.0f64;
    for ((x, y), r) in a.iter().zip(&b).zip(&texts) {
        assert_eq!(x.tokens, y.tokens, "token count of {:?}", r.target);
        let d = (x.logprob - y.logprob).abs();
        eprintln!(
            "{:>50?}: http {:.6} embedded {:.6} diff {d:.2e}",
            r.target, x.logprob, y.logprob
        );
        max_diff = max_diff.max(d);
    }
    eprintln!("max score difference {max_diff:.2e} (tolerance {SCORE_TOLERANCE})");
    assert!(max_diff <= SCORE_TOLERANCE, "max difference {max_diff}");

    // Classes, with a multi-token verbalizer scored exactly (not by its first token).
    let req = ClassifyRequest {
        context: "Is the statement subjective or objective? \"Paris is in France.\"\nAnswer:"
            .into(),
        classes: vec![vec!["subjective".into()], vec!["objective".into()]],
        reduce: VerbalizerReduce::Sum,
    };
    let ca = http
        .classify(vec![req.clone()])
        .await
        .expect("http classify");
    let cb = local.classify(vec![req]).await.expect("embedded classify");
    let pd = (ca[0].probs[0] - cb[0].probs[0]).abs();
    eprintln!(
        "class probs http {:?} embedded {:?} diff {pd:.2e}",
        ca[0].probs, cb[0].probs
    );
    assert!(pd <= PROB_TOLERANCE, "class probability difference {pd}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_generation_honours_stops_and_seeds() {
    let Some(url) = url("DLN_TEST_OPENAI_URL") else {
        return;
    };
    let http = connect(&url).await;
    let g = http
        .generate(vec![
            GenerateRequest::greedy(Prompt::raw("Count: one, two, three,"), 12, vec![",".into()]),
            GenerateRequest {
                n: 2,
                seed: 5,
                temperature: 0.9,
                ..GenerateRequest::greedy(Prompt::raw("A short poem:\n"), 8, vec![])
            },
        ])
        .await
        .expect("generate");
    assert_eq!(g[0].len(), 1);
    assert!(!g[0][0].text.contains(','), "{:?}", g[0][0].text);
    assert!(!g[0][0].text.trim().is_empty(), "{:?}", g[0][0].text);
    assert_eq!(g[1].len(), 2);
    assert!(g[1].iter().all(|s| s.tokens >= 1 && s.tokens <= 8));
    let u = http.usage();
    assert!(u.tokens_generated >= 2 && u.tokens_computed > 0, "{u:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_upstream_server_is_detected_as_misaligned() {
    let Some(url) = url("DLN_TEST_OPENAI_URL_UPSTREAM") else {
        return;
    };
    let http = connect(&url).await;
    let caps = &http.report().capabilities;
    assert!(
        caps.echo_misaligned && !caps.echo,
        "{}",
        http.report().line()
    );
    assert_ne!(http.scoring_mode(), ScoringMode::Echo);
    let e = OpenAiBackend::connect(
        &OpenAiConfig {
            scoring: ScoringMode::Echo,
            ..server_config(&url)
        },
        Path::new("."),
        2048,
        None,
    )
    .await
    .expect_err("explicit echo on a misaligned server")
    .to_string();
    assert!(e.contains("shifted by one"), "{e}");
}

fn http_run_config(url: &str, layers: usize) -> Config {
    let text = tiny_config_text(layers)
        .replace("[model]\n", "[model]\nname = \"server\"\n")
        + &format!(
            "\n[backends.server]\nkind = \"openai\"\nbase_url = \"{url}\"\nmodel = \"smollm2-135m\"\nmax_in_flight = 2\ntimeout_secs = 300\n"
        );
    let mut c = Config::parse(&text, Path::new("live.toml")).expect("config");
    for (k, v) in [
        ("train.iterations", "1"),
        ("train.batch_size", "2"),
        ("train.num_candidates", "2"),
        ("train.num_hidden_samples", "1"),
        ("data.max_dev", "2"),
        ("data.max_test", "2"),
    ] {
        c.set(k, v).expect("override");
    }
    c
}

async fn run_http(config: Config, out: &Path, cache: &Path) -> (dln::run::RunSummary, Vec<Event>) {
    let opts = SessionOptions {
        out_dir: Some(out.to_path_buf()),
        cache_dir: Some(cache.to_path_buf()),
        ..Default::default()
    };
    let session = Session::start(config, opts).await.expect("start");
    let (r, events) = run_to_end(session).await;
    (r.expect("the run over HTTP succeeds"), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_dln1_and_dln2_runs_complete_over_http_and_a_rerun_sends_nothing() {
    let Some(url) = url("DLN_TEST_OPENAI_URL") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    // DLN-1.
    let (s, events) = run_http(http_run_config(&url, 1), &dir.path().join("dln1"), &cache).await;
    assert_eq!(s.iterations, 1);
    assert!(s.test_accuracy.is_some());
    let connected: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::BackendConnected { .. }))
        .collect();
    assert_eq!(connected.len(), 1, "one BackendConnected event");
    assert!(matches!(connected[0], Event::BackendConnected { scoring, .. } if scoring == "echo"));
    assert!(s.usage.calls > s.usage.cache_hits, "{:?}", s.usage);
    // The same run again: every call is answered by the call cache, none goes to the server.
    let (again, _) = run_http(http_run_config(&url, 1), &dir.path().join("dln1b"), &cache).await;
    assert_eq!(again.best_prompts, s.best_prompts);
    assert_eq!(
        again.usage.calls, again.usage.cache_hits,
        "{:?}",
        again.usage
    );
    assert_eq!(again.usage.tokens_computed, 0, "{:?}", again.usage);

    // DLN-2, one short iteration: a hidden layer's free text is scored over HTTP too.
    let mut c2 = http_run_config(&url, 2);
    c2.set("data.max_dev", "1").expect("override");
    c2.set("data.max_test", "1").expect("override");
    let (s2, events2) = run_http(c2, &dir.path().join("dln2"), &cache).await;
    assert_eq!(s2.iterations, 1);
    assert_eq!(s2.best_prompts.len(), 2);
    assert!(events2
        .iter()
        .any(|e| matches!(e, Event::ForwardDone { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_cached_backend_resends_nothing() {
    let Some(url) = url("DLN_TEST_OPENAI_URL") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let texts = score_texts()[..2].to_vec();
    let first = {
        let c = dln::llm::cache::CachedBackend::new(Arc::new(connect(&url).await), dir.path())
            .expect("cache");
        c.score(texts.clone()).await.expect("score")
    };
    let http = Arc::new(connect(&url).await);
    let c = dln::llm::cache::CachedBackend::new(http.clone(), dir.path()).expect("reopen");
    let before = http.attempts().0;
    let again = c.score(texts).await.expect("score again");
    assert_eq!(again, first);
    assert_eq!(http.attempts().0, before, "nothing was sent again");
}
