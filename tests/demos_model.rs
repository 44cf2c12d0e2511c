//! Demonstrations on the real embedded model: a DLN-1 run of the shipped demo with `demos = 3`
//! completes; the same run killed with SIGKILL mid-iteration and resumed ends with the same
//! prompts, demonstrations and accuracies; its event log replays (every line reads back, the
//! demonstration moves are in it); the exported network carries the demonstrations and
//! `dln predict` answers with it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::example;
use common::run::{alone_and_killed, export, mid_iteration, ok, predict, result, resume, train};
use dln::dln::events::Event;

#[test]
fn a_run_with_demonstrations_completes_resumes_to_the_same_result_and_replays() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let with_demos = |out: &Path| {
        let sets = [
            "layers.0.demos=3",
            "train.iterations=3",
            "train.batch_size=6",
            "train.val_freq=1",
        ];
        train(&example("dln1-demo.toml"), out, &sets)
    };
    let within = Duration::from_secs(900);
    let (alone, killed) = alone_and_killed(tmp.path(), within, with_demos, mid_iteration);
    let a = result(&alone);
    assert_eq!(a["best_demos"][0].as_array().map(Vec::len), Some(3), "{a}");
    ok(resume(&killed).output().expect("resume"), "resume");
    let b = result(&killed);
    for key in [
        "best_prompts",
        "final_prompts",
        "best_demos",
        "final_demos",
        "dev_accuracy",
        "test_accuracy",
        "train_accuracy",
        "iterations",
    ] {
        assert_eq!(a[key], b[key], "{key} differs");
    }

    // Replay: every line of the log reads back; demonstration moves were scored.
    let events = dln::run::read_events(&killed).expect("the log reads back");
    let moves = events
        .iter()
        .filter_map(|e| match e {
            Event::CandidatesScored { candidates, .. } => Some(candidates),
            _ => None,
        })
        .flatten()
        .filter(|c| c.demo_move.is_some())
        .count();
    assert!(moves > 0, "demonstration moves were scored");
    assert!(matches!(
        events.last(),
        Some(Event::RunFinished { .. }) | Some(Event::StateChanged { .. })
    ));

    // The exported network carries its demonstrations, and predict runs with them.
    let file = tmp.path().join("net.toml");
    export(&alone, &file);
    let text = std::fs::read_to_string(&file).expect("exported");
    assert_eq!(
        text.matches("[[layers.demonstrations]]").count(),
        3,
        "{text}"
    );
    let inputs = tmp.path().join("in.jsonl");
    std::fs::write(&inputs, "{\"sentence\": \"a wonderful, moving film\"}\n").expect("inputs");
    let out = ok(
        predict(&file, &inputs).output().expect("predict"),
        "predict",
    );
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("\"prediction\""), "{answer}");
}
