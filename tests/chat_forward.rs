//! A forward template in the model's chat format (issue 9, item 9), on the real SmolLM2 model:
//! the conversation rendered to text is what the model continues from as a chat prompt, token
//! for token, so scoring it as raw text scores the chat format exactly; and a run whose output
//! layer uses the built-in `forward_chat` template trains and evaluates.

mod common;

use std::path::{Path, PathBuf};

use dln::llm::embedded::{EmbeddedBackend, EmbeddedOptions};
use dln::llm::{Backend, ChatMessage, GenerateRequest, Prompt};

fn backend() -> EmbeddedBackend {
    EmbeddedBackend::load(&common::test_model(), EmbeddedOptions::default())
        .expect("the model loads")
}

use common::block_on;

#[test]
fn a_chat_rendered_to_text_is_the_chat_prompt_token_for_token() {
    let b = backend();
    let messages = vec![ChatMessage {
        role: "user".into(),
        content: "Is the sentiment of the sentence positive or negative?\n\nInput: a gem of a film"
            .into(),
    }];
    let text = b
        .chat_text(&messages, "Answer:")
        .expect("the model has a chat format");
    assert!(
        text.contains("<|im_start|>user\nIs the sentiment")
            && text.ends_with("<|im_start|>assistant\nAnswer:"),
        "{text:?}"
    );
    // The markup is the model's special tokens, not their spelling as plain text (a context is
    // tokenized with BOS when the model wants one).
    let (marker, _) = block_on(b.prefill("<|im_start|>")).expect("prefill");
    let (spelled, _) = block_on(b.prefill("<|im_start |>")).expect("prefill");
    assert!(
        marker < spelled && marker <= 2,
        "<|im_start|> is {marker} tokens, spelled out {spelled}"
    );
    // The same continuation, greedy, from the chat prompt and from its text.
    let chat = Prompt::Chat {
        messages,
        assistant_prefix: "Answer:".into(),
    };
    let from_chat = GenerateRequest::greedy(chat, 6, vec!["\n".into()]);
    let from_text = GenerateRequest::greedy(Prompt::raw(text), 6, vec!["\n".into()]);
    let out = block_on(b.generate(vec![from_chat, from_text])).expect("generation");
    assert_eq!(out[0][0].text, out[1][0].text);
    assert!(!out[0][0].text.trim().is_empty(), "{:?}", out[0][0]);
}

/// `dln train CONFIG --set …` on the test model into a new run directory.
fn train(config: &str, sets: &[&str]) -> (tempfile::TempDir, PathBuf) {
    common::train_with(common::dln(), config, sets)
}

#[test]
fn a_run_with_a_chat_forward_template_evaluates_and_trains() {
    let (_tmp, run) = train(
        "examples/tiny.toml",
        &[
            "layers.0.templates.forward=forward_chat",
            "train.iterations=1",
        ],
    );
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("result.json")).expect("result"))
            .expect("json");
    let dev = result["dev_accuracy"].as_f64().expect("a dev accuracy");
    assert!((0.0..=1.0).contains(&dev), "{result}");
    assert!(result["test_accuracy"].as_f64().is_some(), "{result}");
    let config = std::fs::read_to_string(run.join("config.toml")).expect("config");
    assert!(config.contains("forward = \"forward_chat\""), "{config}");
    assert!(Path::new(&run).join("events.jsonl").is_file());
}

/// A hidden layer in the chat format (`forward_hidden_chat`): the hidden text is the assistant's
/// turn, generated from the rendered chat and written into the run's events. With the bench's
/// starting prompt the raw `forward_hidden` template gets an empty text from SmolLM2 for most
/// navigate inputs (docs/RESULTS.md); in its own chat format the model writes for every one.
#[test]
fn a_hidden_layer_in_the_chat_format_writes_its_thoughts() {
    let (_tmp, run) = train(
        "examples/dln2-demo.toml",
        &[
            "layers.0.templates.forward=forward_hidden_chat",
            "layers.0.prompt=Decompose the problem to make it simpler.",
            "layers.0.forward_max_tokens=64",
            "train.iterations=1",
            "train.batch_size=4",
            "train.num_candidates=2",
            "data.max_dev=0",
            "data.max_test=0",
        ],
    );
    let forward = common::events(&run)
        .into_iter()
        .find(|e| e["event"] == "forward_done")
        .expect("a forward pass");
    let hidden: Vec<&str> = forward["examples"]
        .as_array()
        .expect("examples")
        .iter()
        .map(|x| x["hidden"][0].as_str().expect("a hidden text"))
        .collect();
    assert_eq!(hidden.len(), 4, "{forward}");
    for h in &hidden {
        assert!(!h.trim().is_empty(), "an empty hidden text: {hidden:?}");
        assert!(
            !h.contains("<|im_") && !h.contains("assistant\n"),
            "chat markup leaked into the hidden text: {h:?}"
        );
    }
    let config = std::fs::read_to_string(run.join("config.toml")).expect("config");
    assert!(
        config.contains("forward = \"forward_hidden_chat\""),
        "{config}"
    );
}
