//! Dropping the embedded engine while its model thread decodes stops and joins that thread.
//! A process that exits with llama.cpp still decoding on another thread has ggml's globals torn
//! down under it and dies of a segmentation fault instead of its own exit code (seen after a
//! panic in the workbench). Alone in its test binary: it counts this process's model threads.

mod common;

use std::sync::Arc;

use dln::llm::embedded::{EmbeddedBackend, EmbeddedOptions};
use dln::llm::{Backend, GenerateRequest, Prompt};

/// Threads of this process named like the engine's worker.
fn model_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "dln-llm")
        .count()
}

#[test]
fn dropping_the_engine_mid_generation_ends_its_model_thread() {
    let path = common::test_model();
    let before = model_threads();
    let backend = Arc::new(
        EmbeddedBackend::load(
            &path,
            EmbeddedOptions {
                threads: Some(1),
                ..EmbeddedOptions::default()
            },
        )
        .expect("the model loads"),
    );
    assert_eq!(
        model_threads(),
        before + 1,
        "the engine runs one model thread"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // A generation far longer than the test waits: 8 samples of 2000 tokens at most, no stop.
    let request = GenerateRequest {
        prompt: Prompt::raw("Chapter one. Once upon a time, in a small village by the sea,"),
        temperature: 1.0,
        top_p: 1.0,
        max_tokens: 2000,
        stop: vec![],
        seed: 7,
        n: 8,
    };
    let engine = Arc::clone(&backend);
    let call = rt.spawn(async move { engine.generate(vec![request]).await });
    // Wait until the model thread is decoding this generation (its token counters move).
    rt.block_on(async {
        while backend.usage().tokens_generated < 16 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    // The caller goes away (as a panicking workbench's runtime drops its tasks), then the last
    // handle on the engine: the drop returns only once the model thread has ended.
    call.abort();
    assert!(
        rt.block_on(call).is_err_and(|e| e.is_cancelled()),
        "the call was cancelled mid-generation"
    );
    let generated = backend.usage().tokens_generated;
    assert!(
        generated < 8 * 2000,
        "the generation was still running when it was cancelled ({generated} tokens)"
    );
    drop(backend);
    assert_eq!(
        model_threads(),
        before,
        "the model thread ended with the engine"
    );
}
