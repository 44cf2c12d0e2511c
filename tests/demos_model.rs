//! Demonstrations on the real embedded model: a DLN-1 run of the shipped demo with `demos = 3`
//! completes; the same run killed with SIGKILL mid-iteration and resumed ends with the same
//! prompts, demonstrations and accuracies; its event log replays (every line reads back, the
//! demonstration moves are in it); the exported network carries the demonstrations and
//! `dln predict` answers with it.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::dln;
use dln::dln::events::Event;

fn train_args(out: &Path) -> Vec<String> {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/dln1-demo.toml");
    let mut v = vec![
        "train".to_string(),
        config.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    for s in [
        "layers.0.demos=3",
        "train.iterations=3",
        "train.batch_size=6",
        "train.val_freq=1",
    ] {
        v.push("--set".into());
        v.push(s.into());
    }
    v
}

fn ok(out: std::process::Output) -> std::process::Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
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

/// Kills the run writing to `dir` once an iteration after the first checkpoint has begun.
fn kill_mid_iteration(mut child: std::process::Child, dir: &Path) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(900) {
        let lines = event_lines(dir);
        if let Some(cp) = lines
            .iter()
            .position(|l| l.contains("\"checkpoint_written\""))
        {
            let after = &lines[cp + 1..];
            if after.iter().any(|l| l.contains("\"forward_done\""))
                && !after.iter().any(|l| l.contains("\"checkpoint_written\""))
            {
                child.kill().expect("SIGKILL");
                let _ = child.wait();
                return true;
            }
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_run_with_demonstrations_completes_resumes_to_the_same_result_and_replays() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let alone = tmp.path().join("alone");
    let killed = tmp.path().join("killed");
    let args = train_args(&alone);
    ok(dln().args(&args).output().expect("run dln"));
    let a = result(&alone);
    assert_eq!(a["best_demos"][0].as_array().map(Vec::len), Some(3), "{a}");

    let args = train_args(&killed);
    let child = dln().args(&args).spawn().expect("spawn dln");
    assert!(kill_mid_iteration(child, &killed), "killed mid-iteration");
    ok(dln()
        .args(["resume", &killed.display().to_string()])
        .output()
        .expect("resume"));
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
    ok(dln()
        .args([
            "export",
            &alone.display().to_string(),
            "-o",
            &file.display().to_string(),
        ])
        .output()
        .expect("export"));
    let text = std::fs::read_to_string(&file).expect("exported");
    assert_eq!(
        text.matches("[[layers.demonstrations]]").count(),
        3,
        "{text}"
    );
    let inputs = tmp.path().join("in.jsonl");
    std::fs::write(&inputs, "{\"sentence\": \"a wonderful, moving film\"}\n").expect("inputs");
    let out = ok(dln()
        .args([
            "predict",
            &file.display().to_string(),
            "-i",
            &inputs.display().to_string(),
        ])
        .output()
        .expect("predict"));
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("\"prediction\""), "{answer}");
}
