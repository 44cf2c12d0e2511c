//! Signals, exit codes and run-directory ownership of the real `dln` binary on the real
//! embedded model: one SIGINT (or SIGTERM, SIGHUP) stops at the next stage boundary with a
//! checkpoint and exit code 3; a second SIGINT or SIGTERM stops at once with 130 (a SIGTERM
//! delivered twice at once, as `timeout` does, is one); `timeout` leaves a run that `dln resume`
//! finishes; a second process on the same run directory is refused while the
//! first runs, and a killed owner's lock never blocks a resume.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::run::{event_lines, result, resume, signal, stderr, watch};
use common::{example, test_model};

const STOPPED: i32 = 3;
const INTERRUPTED: i32 = 130;

/// `dln train examples/tiny.toml --out DIR` for `iterations` iterations.
fn train(out: &Path, iterations: usize) -> Command {
    let its = format!("train.iterations={iterations}");
    common::run::train(&example("tiny.toml"), out, &[&its])
}

/// Waits until the run has started its `nth` stage (the model is loaded and working).
fn wait_for_stage(child: &mut Child, dir: &Path, nth: usize) {
    let started = |lines: &[String]| {
        let n = lines
            .iter()
            .filter(|l| l.contains("\"stage_started\""))
            .count();
        n >= nth
    };
    assert!(
        watch(child, dir, Duration::from_secs(300), started),
        "dln ended, or took over 300 s, before its stage {nth}"
    );
}

fn finish(child: Child) -> Output {
    child.wait_with_output().expect("dln exits")
}

/// Resumes until the run finishes; every resume must end with 0.
fn resume_to_end(dir: &Path) {
    let out = resume(dir).output().expect("resume");
    assert_eq!(out.status.code(), Some(0), "resume: {}", stderr(&out));
    assert_eq!(result(dir)["stopped_early"], false);
}

/// Sends `sig` to `child` `times` times in one `kill` call (`kill -TERM PID PID`): deliveries
/// microseconds apart, as `timeout` makes them.
fn signal_at_once(child: &Child, sig: &str, times: usize) {
    let pid = child.id().to_string();
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(std::iter::repeat_n(&pid, times))
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig} ×{times}");
}

/// One stop request (`sig`, delivered `times` times at once) stops the run at a stage boundary
/// with exit 3, and the run resumes to its end.
fn stop_once(sig: &str, times: usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let mut child = train(&dir, 2).spawn().expect("spawn dln");
    wait_for_stage(&mut child, &dir, 2);
    signal_at_once(&child, sig, times);
    let out = finish(child);
    assert_eq!(
        out.status.code(),
        Some(STOPPED),
        "one {sig} (delivered {times}×): stopped early at a stage boundary\n{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("dln resume"), "{}", stderr(&out));
    let summary: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().expect("summary"))
            .expect("the summary line is JSON");
    assert_eq!(summary["stopped_early"], true);
    assert!(dir.join("checkpoint.json").is_file());
    resume_to_end(&dir);
}

#[test]
fn one_sigint_stops_at_a_stage_boundary_with_code_3_and_resumes() {
    stop_once("INT", 1);
}

#[test]
fn sigterm_and_sighup_stop_like_one_sigint() {
    stop_once("TERM", 1);
    stop_once("HUP", 1);
}

#[test]
fn a_sigterm_delivered_twice_at_once_as_timeout_does_stops_like_one() {
    // `timeout` sends SIGTERM to dln and then to its process group: two deliveries,
    // microseconds apart, of one request.
    stop_once("TERM", 2);
}

#[test]
fn a_second_sigint_stops_at_once_with_code_130_and_the_run_resumes() {
    second_signal_stops_at_once("INT");
}

#[test]
fn a_second_sigterm_stops_at_once_like_a_second_sigint() {
    second_signal_stops_at_once("TERM");
}

fn second_signal_stops_at_once(sig: &str) {
    // The second Ctrl-C must come while the stage that the first one waits for still runs: it is
    // sent as soon as the run says it is stopping. A stage can still end first on a busy
    // machine (then the run stops with 3, correctly); try again, a few times at most.
    for attempt in 1..=4 {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("run");
        let mut child = train(&dir, 2)
            .args(["--set", "train.batch_size=6"])
            .spawn()
            .expect("spawn dln");
        wait_for_stage(&mut child, &dir, 2);
        signal(&child, sig);
        let start = Instant::now();
        while !event_lines(&dir).iter().any(|l| l.contains("\"stopping\"")) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no stopping state"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // A SIGTERM within half a second of the first is taken for its duplicate (`timeout`
        // signals the process and its group): the second one comes after that.
        if sig == "TERM" {
            std::thread::sleep(Duration::from_millis(600).saturating_sub(start.elapsed()));
        }
        signal(&child, sig);
        let out = finish(child);
        if out.status.code() == Some(STOPPED) && attempt < 4 {
            eprintln!("attempt {attempt}: the stage ended before the second Ctrl-C; again");
            continue;
        }
        assert_eq!(out.status.code(), Some(INTERRUPTED), "{}", stderr(&out));
        assert!(stderr(&out).contains("dln resume"), "{}", stderr(&out));
        assert!(out.stdout.is_empty(), "no summary for an interrupted run");
        resume_to_end(&dir);
        return;
    }
}

#[test]
fn runs_under_timeout_leave_a_directory_that_resume_finishes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let its = "train.iterations=2".to_string();
    let cfg = example("tiny.toml").display().to_string();
    let out_dir = dir.display().to_string();
    let bin = env!("CARGO_BIN_EXE_dln");
    // `timeout` sends SIGTERM; --preserve-status passes dln's own exit code through.
    let first = Command::new("timeout")
        .args([
            "--preserve-status",
            "20s",
            bin,
            "train",
            &cfg,
            "--out",
            &out_dir,
        ])
        .args(["--set", &its])
        .env("DLN_MODEL", test_model())
        .output()
        .expect("timeout dln train");
    let code = first.status.code();
    assert!(
        code == Some(0) || code == Some(STOPPED),
        "timeout train: {code:?}\n{}",
        stderr(&first)
    );
    let mut rounds = 0;
    let mut code = code;
    while code == Some(STOPPED) {
        rounds += 1;
        assert!(rounds <= 20, "the run makes no progress under timeout");
        let again = Command::new("timeout")
            .args(["--preserve-status", "20s", bin, "resume", &out_dir])
            .env("DLN_MODEL", test_model())
            .output()
            .expect("timeout dln resume");
        code = again.status.code();
        assert!(
            code == Some(0) || code == Some(STOPPED),
            "timeout resume: {code:?}\n{}",
            stderr(&again)
        );
    }
    let result = result(&dir);
    assert_eq!(result["stopped_early"], false, "finished in the end");
    assert_eq!(result["iterations"], 2);
}

#[test]
fn a_second_process_on_a_run_is_refused_and_a_killed_owner_never_blocks_resume() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run");
    let mut owner = train(&dir, 2).spawn().expect("spawn dln");
    wait_for_stage(&mut owner, &dir, 1);
    let second = resume(&dir).output().expect("second dln");
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let msg = stderr(&second);
    assert_eq!(msg.trim().lines().count(), 1, "one line: {msg}");
    assert!(
        msg.contains("is in use by process") && msg.contains(&owner.id().to_string()),
        "names the owner: {msg}"
    );
    // A second `train` into the same directory is refused the same way.
    let third = train(&dir, 2).output().expect("third dln");
    assert_eq!(third.status.code(), Some(1), "{}", stderr(&third));
    assert!(
        stderr(&third).contains("is in use by process"),
        "{}",
        stderr(&third)
    );

    owner.kill().expect("SIGKILL the owner");
    let _ = owner.wait();
    assert!(
        dir.join("run.lock").exists(),
        "the killed owner's lock file stays"
    );
    resume_to_end(&dir);
}
