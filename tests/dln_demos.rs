//! Demonstrations as parameters against the scripted backend: a run with `demos = k` scores
//! demonstration moves beside the instruction candidates, never scores an example it shows,
//! and carries the demonstrations through checkpoint, result and export.

mod common;

use common::session::*;
use dln::dln::events::Event;
use dln::run::export::{export_run, Format, Which};
use dln::run::{read_checkpoint, read_result};

fn with_demos(layers: usize, k: usize) -> dln::config::Config {
    let mut c = tiny_config(layers);
    c.set("train.batch_size", "6").expect("batch size");
    c.set("train.iterations", "3").expect("iterations");
    c.set(&format!("layers.{}.demos", layers - 1), &k.to_string())
        .expect("demos");
    c
}

#[tokio::test]
async fn demonstration_moves_are_scored_beside_instructions_and_travel_with_the_prompt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let events = run_succeeding(with_demos(1, 2), scripted(), &out).await;
    let scored = scored(&events);
    assert!(!scored.is_empty());
    let mut moves = 0;
    for (_, _, candidates, _) in &scored {
        let current = &candidates[0];
        assert!(current.demos.len() <= 2 && current.demo_move.is_none());
        for c in &candidates[1..] {
            match &c.demo_move {
                // A move keeps the instruction and changes the demonstrations.
                Some(m) => {
                    moves += 1;
                    assert_eq!(c.prompt, current.prompt, "{}", m.describe());
                    assert_ne!(c.demos, current.demos, "{}", m.describe());
                    assert!(c.demos.len() <= 2);
                }
                // An instruction proposal keeps the demonstrations.
                None if c.origin == dln::dln::events::CandidateOrigin::Proposed => {
                    assert_eq!(c.demos, current.demos, "{}", c.prompt)
                }
                None => {}
            }
        }
    }
    assert!(moves > 0, "demonstration moves were scored");
    // The demonstrations are checkpointed, in the result and in the exported network.
    let state = read_checkpoint(&out)
        .expect("read")
        .expect("checkpoint")
        .state;
    assert_eq!(state.demos.len(), 1);
    assert_eq!(state.demos[0].len(), 2, "k = 2 drawn at the start");
    let result = read_result(&out).expect("read").expect("result");
    assert_eq!(result.best_demos.len(), 1);
    let exported = export_run(&out, Which::Best).expect("export");
    assert_eq!(
        exported.config.layers[0].demonstrations,
        result.best_demos[0]
    );
    let toml = exported.render(Format::Toml).expect("toml");
    assert!(toml.contains("[[layers.demonstrations]]"), "{toml}");
    let text = exported.render(Format::Text).expect("text");
    assert!(text.contains("## demonstration: ex"), "{text}");
}

/// What example a scoring context asks about, and the examples it shows before it.
fn asked_and_shown(context: &str) -> (String, Vec<String>) {
    let inputs: Vec<String> = context
        .split("Input: ")
        .skip(1)
        .map(|s| s.split("\nAnswer:").next().unwrap_or("").to_string())
        .collect();
    let (asked, shown) = inputs.split_last().expect("an input");
    (asked.clone(), shown.to_vec())
}

/// The held-out rule end to end: in a run with demonstrations no context asks about an example
/// it shows, except the forward passes over the batch (which answer with the current prompt
/// and so may meet a current demonstration); every such context is one of a forward pass.
#[tokio::test]
async fn no_candidate_is_scored_on_an_example_it_shows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = scripted();
    let events = run_succeeding(with_demos(1, 2), backend.clone(), &dir.path().join("run")).await;
    let forward_contexts = events
        .iter()
        .filter_map(|e| match e {
            Event::ForwardDone { examples, .. } => Some(examples.len()),
            _ => None,
        })
        .sum::<usize>();
    let mut seen_with_demos = 0;
    let mut shown_and_asked = 0;
    for call in backend.calls() {
        let context = match call {
            dln::llm::scripted::ScriptedCall::Classify(r) => r.context,
            dln::llm::scripted::ScriptedCall::Score(r) => r.context,
            dln::llm::scripted::ScriptedCall::Generate(_) => continue,
        };
        let (asked, shown) = asked_and_shown(&context);
        if !shown.is_empty() {
            seen_with_demos += 1;
        }
        if shown.contains(&asked) {
            shown_and_asked += 1;
        }
    }
    assert!(seen_with_demos > 0);
    assert!(
        shown_and_asked <= forward_contexts,
        "{shown_and_asked} contexts asked about an example they show"
    );
}
