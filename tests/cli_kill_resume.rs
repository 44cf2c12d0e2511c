//! The required resume test: the real `dln` binary with the real embedded model, killed with
//! SIGKILL in the middle of an iteration and resumed, ends with exactly the prompts and
//! accuracies of the same run left alone.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::dln;

fn config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/tiny.toml")
}

const SETS: [&str; 8] = [
    "--set",
    "train.iterations=3",
    "--set",
    "train.seed=5",
    "--set",
    "train.num_candidates=3",
    "--set",
    "train.batch_size=3",
];

fn train_args(out: &Path) -> Vec<String> {
    let mut v = vec![
        "train".to_string(),
        config().display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    v.extend(SETS.iter().map(|s| s.to_string()));
    v
}

fn result(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("result.json")).expect("result.json");
    serde_json::from_str(&text).expect("result parses")
}

fn event_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn sigkill_mid_iteration_then_resume_equals_uninterrupted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let alone = tmp.path().join("alone");
    let killed = tmp.path().join("killed");

    let args = train_args(&alone);
    let out = dln().args(&args).output().expect("run dln");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Start the same run and kill it once the first checkpoint exists and the next iteration
    // has begun (some of its events are logged).
    let args = train_args(&killed);
    let mut child = dln().args(&args).spawn().expect("spawn dln");
    let start = Instant::now();
    let mut killed_mid = false;
    while start.elapsed() < Duration::from_secs(600) {
        let lines = event_lines(&killed);
        if let Some(cp) = lines
            .iter()
            .position(|l| l.contains("\"checkpoint_written\""))
        {
            let after = &lines[cp + 1..];
            if after
                .iter()
                .any(|l| l.contains("\"stage_started\"") && !l.contains("\"test\""))
                && after.iter().any(|l| l.contains("\"forward_done\""))
                && !after.iter().any(|l| l.contains("\"checkpoint_written\""))
            {
                child.kill().expect("SIGKILL");
                killed_mid = true;
                break;
            }
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.wait();
    assert!(
        killed_mid,
        "the run should have been killed in the middle of an iteration"
    );
    assert!(!killed.join("result.json").exists());
    let cp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(killed.join("checkpoint.json")).expect("checkpoint"),
    )
    .expect("json");
    assert_eq!(cp["finished"], false);

    let out = dln()
        .args(["resume", &killed.display().to_string()])
        .output()
        .expect("resume");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
