//! The `dln` binary's runs seen from outside: its commands on the test model, their checked
//! output, the files a run directory holds, and a running process watched through its event log
//! and signalled.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::dln;

/// A temporary directory and the run directory `run` inside it (not created: the run makes it).
pub fn run_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    (tmp, run)
}

/// This test binary again, running only its test `name` (the child half of a test that needs a
/// process to kill or to race), with no injected fault inherited.
pub fn this_test(name: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("test binary"));
    c.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env_remove("DLN_FAULT");
    c
}

/// `dln train CONFIG --out OUT --set …` on the test model, not yet run.
pub fn train(config: &Path, out: &Path, sets: &[&str]) -> Command {
    let mut c = dln();
    c.arg("train").arg(config).arg("--out").arg(out);
    for set in sets {
        c.args(["--set", set]);
    }
    c
}

/// `dln resume DIR` on the test model, not yet run.
pub fn resume(dir: &Path) -> Command {
    let mut c = dln();
    c.arg("resume").arg(dir);
    c
}

/// `dln export RUN -o FILE`, which must succeed: the run's network as a file.
pub fn export(run: &Path, to: &Path) {
    let out = dln()
        .arg("export")
        .arg(run)
        .arg("-o")
        .arg(to)
        .output()
        .expect("dln export");
    ok(out, "export");
}

/// `dln predict NETWORK -i INPUTS` on the test model (a network file or a run directory), not
/// yet run; the caller adds options.
pub fn predict(network: &Path, inputs: &Path) -> Command {
    let mut c = dln();
    c.arg("predict").arg(network).arg("-i").arg(inputs);
    c
}

/// The output of a command that had to succeed; `what` names the command when it did not.
pub fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        stderr(&out)
    );
    out
}

/// A command's standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A JSON file, parsed.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A run directory's `result.json`.
pub fn result(dir: &Path) -> Value {
    read_json(&dir.join("result.json"))
}

/// The lines of a run directory's event log so far (none before the run has written one).
pub fn event_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The lines logged after the first checkpoint (none while there is none).
pub fn after_checkpoint(lines: &[String]) -> &[String] {
    match lines
        .iter()
        .position(|l| l.contains("\"checkpoint_written\""))
    {
        Some(cp) => &lines[cp + 1..],
        None => &[],
    }
}

/// Whether the log shows an iteration after the first checkpoint under way: its forward pass
/// done, its own checkpoint not written yet.
pub fn mid_iteration(lines: &[String]) -> bool {
    let after = after_checkpoint(lines);
    after.iter().any(|l| l.contains("\"forward_done\""))
        && !after.iter().any(|l| l.contains("\"checkpoint_written\""))
}

/// Reads the event log of the run `child` writes to `dir` until `ready` holds for its lines
/// (true), or until the child ends or `within` has passed (false).
pub fn watch(
    child: &mut Child,
    dir: &Path,
    within: Duration,
    ready: impl Fn(&[String]) -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if ready(&event_lines(dir)) {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// SIGKILLs the run `child` writes to `dir` once `ready` holds for its event log, and reaps it;
/// false when the run ended, or `within` passed, first.
pub fn kill_when(
    mut child: Child,
    dir: &Path,
    within: Duration,
    ready: impl Fn(&[String]) -> bool,
) -> bool {
    let hit = watch(&mut child, dir, within, ready);
    if hit {
        child.kill().expect("SIGKILL");
    }
    let _ = child.wait();
    hit
}

/// The same run twice in `tmp`, as `run(dir)` makes it: in `alone` left to its end (which must
/// succeed), in `killed` SIGKILLed once `ready` holds for its event log (within `within`);
/// returns the two directories, for the test to resume `killed` and compare.
pub fn alone_and_killed(
    tmp: &Path,
    within: Duration,
    run: impl Fn(&Path) -> Command,
    ready: impl Fn(&[String]) -> bool,
) -> (PathBuf, PathBuf) {
    let alone = tmp.join("alone");
    let killed = tmp.join("killed");
    ok(run(&alone).output().expect("run dln"), "the run left alone");
    let child = run(&killed).spawn().expect("spawn dln");
    assert!(
        kill_when(child, &killed, within, ready),
        "the run should have been killed in the middle of an iteration"
    );
    (alone, killed)
}

/// Sends the signal `sig` (`INT`, `TERM`, `HUP`…) to a child, as `kill -SIG PID` does.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig}");
}
