//! Kill anywhere, lose nothing: a DLN-2 run (scripted backend, so the sweep is fast) is crashed
//! at many points — at stage starts, in the middle of an event-log append, of a call-cache append
//! and of a checkpoint write (`DLN_FAULT`, which aborts the process like SIGKILL after leaving the
//! half-written bytes a real kill would leave), and by real SIGKILLs at moments in the middle of
//! stages — then resumed; every resumed run must end with the uninterrupted run's prompts,
//! scores, memory and `result.json`, with an event log that replays.
//!
//! Each run is a child process: this test binary started again on the `sweep_child` test with
//! `DLN_SWEEP_CHILD` set. (The real-model kill test is `cli_kill_resume.rs`.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::run::{read_json, this_test};
use common::session::*;
use dln::run::{read_events, Session};

const CHILD: &str = "DLN_SWEEP_CHILD";
const DIR: &str = "DLN_SWEEP_DIR";
const DELAY: &str = "DLN_SWEEP_DELAY_MS";

/// The child: starts or resumes the run in `DLN_SWEEP_DIR`. A no-op in a normal test run.
#[test]
fn sweep_child() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR).expect("DLN_SWEEP_DIR"));
    let delay = std::env::var(DELAY)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let backend = scripted().with_delay(Duration::from_millis(delay));
        let opts = options_with(backend, &dir);
        let session = match mode.as_str() {
            "start" => Session::start(tiny_config(2), opts).await,
            _ => Session::resume(&dir, opts).await,
        }
        .expect("session");
        let (r, _) = run_to_end(session).await;
        let summary = r.expect("the run ends");
        // What the fault matrix reads: a run stopped by a write it could not make says so.
        eprintln!("stop_reason: {:?}", summary.stop_reason);
    });
}

fn child(mode: &str, dir: &Path, env: &[(&str, String)]) -> Command {
    let mut c = this_test("sweep_child");
    c.env(CHILD, mode)
        .env(DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn run(mode: &str, dir: &Path, env: &[(&str, String)]) -> Output {
    child(mode, dir, env).output().expect("child runs")
}

fn must_succeed(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What must not change when a run is killed and resumed: the result without wall time and
/// token accounting (a resumed run counts its cache hits), and the checkpoint's state without
/// the stages' times (prompts,
/// memory with every candidate's score, best dev, history, random state).
fn outcome(dir: &Path) -> (serde_json::Value, serde_json::Value) {
    let mut result = read_json(&dir.join("result.json"));
    let r = result.as_object_mut().expect("result object");
    for k in ["elapsed_ms", "usage", "usage_by_layer"] {
        r.remove(k);
    }
    let mut cp = read_json(&dir.join("checkpoint.json"));
    cp.as_object_mut()
        .expect("checkpoint object")
        .remove("written_at");
    let state = cp["state"].as_object_mut().expect("checkpoint state");
    state.remove("usage");
    state.remove("stage_times");
    (result, cp)
}

fn lines_with(dir: &Path, needle: &str) -> usize {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// `n` points spread over `1..=max`.
fn spread(max: usize, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (1..=n).map(|i| (i * max).div_ceil(n).max(1)).collect();
    v.dedup();
    v
}

/// Resumes a crashed run until it finishes (a crash before the run directory holds its config
/// is redone from the start, as a person would) and checks it against the uninterrupted run.
fn resume_and_compare(dir: &Path, expected: &(serde_json::Value, serde_json::Value), what: &str) {
    let mode = if dir.join("config.toml").exists() {
        "resume"
    } else {
        "start"
    };
    must_succeed(&run(mode, dir, &[]), &format!("{what}: {mode}"));
    let got = outcome(dir);
    assert_eq!(got.0, expected.0, "{what}: result.json differs");
    assert_eq!(got.1, expected.1, "{what}: checkpoint differs");
    read_events(dir).unwrap_or_else(|e| panic!("{what}: the event log does not replay: {e}"));
    for line in std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
    {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("{what}: a torn event line was left: {e}: {line}"));
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .expect("run dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "{what}: stale temporaries {leftovers:?}"
    );
}

#[test]
fn killed_anywhere_and_resumed_equals_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let alone = tmp.path().join("alone");
    must_succeed(&run("start", &alone, &[]), "the uninterrupted run");
    let expected = outcome(&alone);
    let events = std::fs::read_to_string(alone.join("events.jsonl"))
        .expect("events")
        .lines()
        .count();
    let stages = lines_with(&alone, "\"stage_started\"");
    let checkpoints = lines_with(&alone, "\"checkpoint_written\"");
    assert!(
        stages >= 10 && checkpoints >= 2,
        "{stages} stages, {checkpoints} checkpoints"
    );

    // Crash points: (fault point, pass number).
    let mut points: Vec<(&str, usize)> = Vec::new();
    points.extend(spread(stages, 8).into_iter().map(|n| ("stage", n)));
    points.extend(spread(events, 8).into_iter().map(|n| ("event_append", n)));
    // config.toml, every checkpoint, result.json.
    points.extend((1..=checkpoints + 2).map(|n| ("atomic_write", n)));
    points.extend([1, 2, 4, 8, 16].map(|n| ("cache_append", n)));

    let mut crashed = 0;
    for (i, (name, n)) in points.iter().enumerate() {
        let dir = tmp.path().join(format!("fault-{i}"));
        let what = format!("crash at {name} #{n}");
        let out = run("start", &dir, &[("DLN_FAULT", format!("{name}:{n}"))]);
        if out.status.success() {
            // The run made fewer passes through this point than asked: nothing to resume.
            assert!(
                *name == "cache_append",
                "{what}: the run did not crash:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("injected crash"),
            "{what}: the run failed otherwise:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        crashed += 1;
        resume_and_compare(&dir, &expected, &what);
    }

    // Real SIGKILLs in the middle of stages: a slowed backend, killed when the event log has
    // reached a given length.
    for (i, frac) in [0.2, 0.45, 0.7, 0.9].iter().enumerate() {
        let dir = tmp.path().join(format!("kill-{i}"));
        let what = format!("SIGKILL at {:.0}% of the events", frac * 100.0);
        let target = ((events as f64) * frac) as usize;
        let mut c = child("start", &dir, &[(DELAY, "15".into())])
            .spawn()
            .expect("spawn");
        let start = Instant::now();
        loop {
            let n = std::fs::read_to_string(dir.join("events.jsonl"))
                .unwrap_or_default()
                .lines()
                .count();
            if n >= target || start.elapsed() > Duration::from_secs(120) {
                break;
            }
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        c.kill().expect("SIGKILL");
        let _ = c.wait();
        assert!(
            !dir.join("result.json").exists(),
            "{what}: the run ended before the kill"
        );
        crashed += 1;
        resume_and_compare(&dir, &expected, &what);
    }
    assert!(crashed >= 20, "only {crashed} crash points");
    eprintln!("{crashed} crash points, each resumed to the uninterrupted run's end");
}

/// What became of a run given a fault at one write point.
fn fault_outcome(
    dir: &Path,
    out: &Output,
    expected: &(serde_json::Value, serde_json::Value),
    what: &str,
) -> &'static str {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let finished_whole = out.status.success()
        && json_opt(&dir.join("result.json")).is_some_and(|r| r["stopped_early"] == false);
    if finished_whole {
        // The fault cost nothing the run needed (a cache write: the answer was in memory).
        let got = outcome(dir);
        assert_eq!(got.0, expected.0, "{what}: result.json differs");
        assert_eq!(got.1, expected.1, "{what}: checkpoint differs");
        read_events(dir).unwrap_or_else(|e| panic!("{what}: the event log does not replay: {e}"));
        return "same result";
    }
    let outcome = if stderr.contains("injected crash") {
        "killed, resumed: same result"
    } else {
        // Stopped by the failed write, or refused to start: the message names the errno.
        assert!(
            out.status.success() && stderr.contains("stop_reason: Some(WriteFailed)")
                || stderr.contains("No space left on device")
                || stderr.contains("Input/output error"),
            "{what}: neither a resumable stop nor a clear error:\n{stderr}"
        );
        "stopped, resumed: same result"
    };
    // Every line on disk is whole before anything repairs it.
    for line in std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|_| !stderr.contains("injected crash"))
    {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("{what}: a torn event line was left: {e}: {line}"));
    }
    resume_and_compare(dir, expected, what);
    outcome
}

fn json_opt(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The fault matrix, in the style of SQLite's I/O-error tests: at each write point of a run
/// (an event append early, mid-run and late; the config, a checkpoint, the result; a call-cache
/// batch), a kill, a full disk (`ENOSPC` from that write on) and one failed write (`EIO`).
/// Every cell ends with the uninterrupted run's result: at once, or after `resume`. Prints the
/// matrix (docs/FAULTS.md holds a copy).
#[test]
fn write_fault_matrix_every_cell_same_result_or_resumable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let alone = tmp.path().join("alone");
    must_succeed(&run("start", &alone, &[]), "the uninterrupted run");
    let expected = outcome(&alone);
    let events = std::fs::read_to_string(alone.join("events.jsonl"))
        .expect("events")
        .lines()
        .count();
    let checkpoints = lines_with(&alone, "\"checkpoint_written\"");
    let points: Vec<(String, &str, usize)> = vec![
        ("event append, early".into(), "event_append", 3),
        ("event append, mid-run".into(), "event_append", events / 2),
        ("event append, last".into(), "event_append", events),
        ("config.toml".into(), "atomic_write", 1),
        ("checkpoint, first".into(), "atomic_write", 2),
        ("checkpoint, last".into(), "atomic_write", checkpoints + 1),
        ("result.json".into(), "atomic_write", checkpoints + 2),
        ("call cache, first batch".into(), "cache_append", 1),
        ("call cache, 8th batch".into(), "cache_append", 8),
    ];
    let faults = [("kill", "abort"), ("ENOSPC", "enospc"), ("EIO", "eio")];
    let mut table = String::from(
        "| write point | kill | ENOSPC (disk full) | EIO (one write) |\n|---|---|---|---|\n",
    );
    for (i, (label, name, n)) in points.iter().enumerate() {
        table.push_str(&format!("| {label} (`{name}` #{n}) |"));
        for (fault, mode) in faults {
            let dir = tmp.path().join(format!("matrix-{i}-{mode}"));
            let what = format!("{fault} at {label} ({name} #{n})");
            let out = run(
                "start",
                &dir,
                &[("DLN_FAULT", format!("{name}:{n}:{mode}"))],
            );
            let cell = fault_outcome(&dir, &out, &expected, &what);
            table.push_str(&format!(" {cell} |"));
        }
        table.push('\n');
    }
    eprintln!("{table}");
}

/// A newest checkpoint damaged after it was written (a disk error, a hand edit) falls back to
/// the one before it: the resume says so, redoes the last iteration from there, and ends with
/// the uninterrupted run's result.
#[test]
fn a_damaged_newest_checkpoint_resumes_from_the_previous_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let alone = tmp.path().join("alone");
    must_succeed(&run("start", &alone, &[]), "the uninterrupted run");
    let expected = outcome(&alone);
    let dir = tmp.path().join("damaged");
    must_succeed(&run("start", &dir, &[]), "the run");
    let prev = dir.join(dln::run::PREVIOUS_CHECKPOINT_FILE);
    assert!(prev.is_file(), "the previous checkpoint is kept");
    let newest = dir.join("checkpoint.json");
    let text = std::fs::read_to_string(&newest).expect("checkpoint");
    std::fs::write(&newest, &text[..text.len() / 3]).expect("damage it");
    std::fs::remove_file(dir.join("result.json")).expect("as if it had not finished");
    let (c, warning) = dln::run::read_checkpoint_reporting(&dir).expect("falls back");
    assert!(
        c.is_some_and(|c| !c.finished),
        "the previous checkpoint is an unfinished one"
    );
    assert!(warning.is_some_and(|w| w.contains("checkpoint.prev.json")));
    must_succeed(&run("resume", &dir, &[]), "the resume");
    assert!(
        lines_with(&dir, "checkpoint.prev.json") >= 1,
        "the resume says which checkpoint it used"
    );
    let got = outcome(&dir);
    assert_eq!(got.0, expected.0, "result.json differs");
    assert_eq!(got.1, expected.1, "checkpoint differs");
}
