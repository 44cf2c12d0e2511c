//! The embedded engine on the real SmolLM2 model: exactness of prefix reuse, classification,
//! generation controls and errors. The model is loaded once per test binary and shared.

use std::sync::OnceLock;

use dln::llm::embedded::{EmbeddedBackend, EmbeddedOptions};
use dln::llm::{Backend, ScoreRequest};

fn backend() -> &'static EmbeddedBackend {
    static BACKEND: OnceLock<EmbeddedBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        let path = std::env::var("DLN_MODEL")
            .unwrap_or_else(|_| "/tmp/models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
        EmbeddedBackend::load(std::path::Path::new(&path), EmbeddedOptions::default())
            .expect("model loads")
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn score_smoke() {
    let b = backend();
    let s = rt()
        .block_on(b.score(vec![ScoreRequest {
            context: "The capital of France is".into(),
            target: " Paris".into(),
        }]))
        .expect("score");
    eprintln!("{s:?} {}", b.model_id());
    assert!(s[0].logprob < 0.0);
}
