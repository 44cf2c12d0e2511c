//! The required resume test: the real `dln` binary with the real embedded model, killed with
//! SIGKILL in the middle of an iteration and resumed, ends with exactly the prompts and
//! accuracies of the same run left alone.

mod common;

use std::path::Path;
use std::time::Duration;

use common::example;
use common::run::{
    after_checkpoint, alone_and_killed, mid_iteration, ok, read_json, result, resume, train,
};

const SETS: [&str; 4] = [
    "train.iterations=3",
    "train.seed=5",
    "train.num_candidates=3",
    "train.batch_size=3",
];

#[test]
fn sigkill_mid_iteration_then_resume_equals_uninterrupted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tiny = |out: &Path| train(&example("tiny.toml"), out, &SETS);
    // Kill the second run once the first checkpoint exists and the next iteration has begun
    // (some of its events are logged).
    let next_began = |lines: &[String]| {
        mid_iteration(lines)
            && after_checkpoint(lines)
                .iter()
                .any(|l| l.contains("\"stage_started\"") && !l.contains("\"test\""))
    };
    let within = Duration::from_secs(600);
    let (alone, killed) = alone_and_killed(tmp.path(), within, tiny, next_began);
    assert!(!killed.join("result.json").exists());
    let cp = read_json(&killed.join("checkpoint.json"));
    assert_eq!(cp["finished"], false);

    let out = ok(resume(&killed).output().expect("resume"), "resume");
    let summary: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .find(|l| !l.is_empty())
            .expect("a summary line"),
    )
    .expect("summary is JSON");
    assert!(
        summary["usage"]["cache_hits"].as_u64().unwrap_or(0) > 0,
        "the resumed run reuses the paid calls"
    );

    let a = result(&alone);
    let b = result(&killed);
    for key in [
        "best_prompts",
        "final_prompts",
        "dev_accuracy",
        "test_accuracy",
        "train_accuracy",
        "iterations",
    ] {
        assert_eq!(a[key], b[key], "{key} differs");
    }
    let dev = |r: &serde_json::Value| -> Vec<serde_json::Value> {
        r["dev_history"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| p["accuracy"].clone())
            .collect()
    };
    assert_eq!(dev(&a), dev(&b));
}
