//! `dln bench accuracy` on the real embedded model and the shipped tiny task: every method runs
//! as its own run directory, the table, CSV, JSON and plots are written, a second invocation
//! reads finished cells back instead of re-running them, and Ctrl-C stops a cell resumably
//! (the cells after it are reported as not run); `dln bench keep` copies the cells without
//! their caches and the table continues from the copy.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output};

use common::run::{stderr, stdout};

fn bench(out: &Path, extra: &[&str]) -> Command {
    let mut c = common::dln();
    c.args([
        "bench",
        "accuracy",
        "examples/tiny.toml",
        "--seeds",
        "1",
        "--k",
        "2",
    ])
    .arg("--out")
    .arg(out)
    .args(["--set", "train.iterations=1"])
    .args(extra)
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// [`common::run::ok`]'s output as text: stdout and stderr.
fn ok(out: Output, what: &str) -> (String, String) {
    let out = common::run::ok(out, what);
    (stdout(&out), stderr(&out))
}

#[test]
fn the_table_of_every_method_is_written_and_a_rerun_reads_it_back() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("bench");
    let methods = ["--methods", "0-shot,k-shot,dln-1,dln-2,dln-1-random"];
    let (stdout, stderr) = ok(
        bench(&out, &methods).output().expect("run"),
        "first invocation",
    );
    assert!(
        stderr.contains("time/cell"),
        "the estimate comes first:\n{stderr}"
    );
    assert!(
        stdout.contains("| task | 0-shot | 2-shot | dln-1 | dln-2 | dln-1-random |"),
        "{stdout}"
    );
    assert!(stdout.contains("| tiny |"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("json"))
            .expect("valid json");
    let cells = report["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 5);
    for c in cells {
        assert_eq!(c["status"], "finished", "{c}");
        let acc = c["test_accuracy"].as_f64().expect("a test accuracy");
        assert!((0.0..=1.0).contains(&acc));
        assert!(c["tokens"].as_u64().expect("tokens") > 0);
        let dir = out.join(c["run_dir"].as_str().expect("dir"));
        assert!(dir.join("result.json").is_file() && dir.join("events.jsonl").is_file());
        // Every test example's answer is counted, and the right ones agree with the accuracy.
        let answers = c["test_answers"].as_object().expect("test answers");
        let given: u64 = answers.values().map(|n| n.as_u64().expect("count")).sum();
        assert!(given > 0, "{c}");
        let right = (acc * given as f64).round() as u64;
        assert!(right <= given, "{c}");
    }
    // The trained methods have a dev curve that starts from the untrained prompt.
    let dln1 = cells
        .iter()
        .find(|c| c["method"] == "dln-1")
        .expect("dln-1");
    assert!(
        dln1["dev_curve"].as_array().expect("curve").len() >= 2,
        "{dln1}"
    );
    // The DLN-2 cell also measured its output layer alone (a 0-shot run of its best output
    // prompt on the input without the hidden text, on the same dev split); one layer did not.
    let dln2 = cells
        .iter()
        .find(|c| c["method"] == "dln-2")
        .expect("dln-2");
    let alone = dln2["output_alone_dev"]
        .as_f64()
        .expect("the output layer alone has a dev accuracy");
    assert!((0.0..=1.0).contains(&alone));
    let alone_dir = out
        .join(dln2["run_dir"].as_str().unwrap())
        .join("output-alone");
    let alone_config = std::fs::read_to_string(alone_dir.join("config.toml")).expect("config");
    let alone_config: toml::Table = alone_config.parse().expect("toml");
    assert_eq!(alone_config["layers"].as_array().unwrap().len(), 1);
    assert_eq!(alone_config["train"]["mode"].as_str(), Some("zero_shot"));
    assert!(dln1.get("output_alone_dev").is_none(), "{dln1}");
    // The random-pick ablation keeps a scored candidate drawn at random.
    let random_config =
        std::fs::read_to_string(out.join("runs/tiny/dln-1-random/seed-1/config.toml"))
            .expect("random config");
    assert!(
        random_config.contains("selection = \"random\""),
        "{random_config}"
    );
    // Same splits and seed: the 0-shot and DLN-1 cells saw the same test examples.
    let aggregates = report["aggregates"].as_array().expect("aggregates");
    assert!(aggregates.iter().all(|a| a["n"] == 1), "{aggregates:?}");

    let csv = std::fs::read_to_string(out.join("results.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(csv.starts_with("task,method,seed,status,test_accuracy"));
    for svg in ["accuracy.svg", "curves.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).expect("svg");
        assert!(text.starts_with("<svg") && text.contains("tiny"), "{svg}");
    }
    let md = std::fs::read_to_string(out.join("results.md")).expect("md");
    assert!(
        md.contains("](runs/tiny/dln-2/seed-1)"),
        "cells link to their runs:\n{md}"
    );
    assert!(md.contains("## How much the hidden layer helps"), "{md}");

    // Again: nothing re-runs, the same numbers come back.
    let (_, stderr) = ok(
        bench(&out, &methods).output().expect("rerun"),
        "second invocation",
    );
    // Five cells and the DLN-2 cell's output-alone run.
    assert_eq!(
        stderr.matches("done before, read back").count(),
        6,
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("view the table: dln bench view {}", out.display())),
        "{stderr}"
    );
    // What was written reads back as the report `dln bench view` shows.
    let back = dln::bench::accuracy::read_report(&out).expect("results.json reads back");
    assert_eq!(back.report.cells.len(), 5);
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("json"))
            .expect("valid json");
    assert_eq!(again["aggregates"], report["aggregates"]);

    // Kept elsewhere without the call caches, the table continues there: the same command with
    // the copy as --out reads every cell back, and the copy's runs open as runs.
    let kept = tmp.path().join("kept");
    let (stdout, _) = ok(
        common::dln()
            .args(["bench", "keep"])
            .arg(&out)
            .arg(&kept)
            .output()
            .expect("keep"),
        "keep",
    );
    assert!(
        stdout.contains("kept 5 finished cells, 0 stopped") && !stdout.contains("left"),
        "{stdout}"
    );
    let cells_dir = kept.join("runs/tiny");
    let mut caches = Vec::new();
    for method in std::fs::read_dir(&cells_dir).expect("kept cells") {
        let seed = method.expect("entry").path().join("seed-1");
        assert!(seed.join("result.json").is_file(), "{}", seed.display());
        if seed.join(dln::run::CACHE_DIR).exists() {
            caches.push(seed);
        }
    }
    assert!(caches.is_empty(), "call caches were copied: {caches:?}");
    assert!(kept.join("results.md").is_file() && kept.join("accuracy.svg").is_file());
    let (_, stderr) = ok(
        bench(&kept, &methods)
            .output()
            .expect("rerun on the kept copy"),
        "invocation on the kept copy",
    );
    assert_eq!(
        stderr.matches("done before, read back").count(),
        6,
        "{stderr}"
    );
    let from_kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kept.join("results.json")).expect("json"))
            .expect("valid json");
    assert_eq!(from_kept["aggregates"], report["aggregates"]);
    let (shown, _) = ok(
        common::dln()
            .args(["runs", "show"])
            .arg(kept.join("runs/tiny/dln-1/seed-1"))
            .output()
            .expect("runs show"),
        "runs show on a kept cell",
    );
    assert!(shown.contains("finished"), "{shown}");

    // --estimate runs nothing.
    let est = tmp.path().join("estimate");
    let (_, stderr) = ok(
        bench(&est, &["--methods", "dln-2", "--estimate"])
            .output()
            .expect("estimate"),
        "estimate",
    );
    assert!(
        stderr.contains("dln-2") && stderr.contains("estimate still to run"),
        "{stderr}"
    );
    assert!(!est.join("runs").exists());
}

#[test]
fn ctrl_c_stops_a_cell_resumably_and_the_next_invocation_finishes_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("bench");
    let kept = tmp.path().join("kept");
    let mut child = bench(
        &out,
        &["--methods", "dln-1,0-shot", "--set", "train.iterations=2"],
    )
    .arg("--keep")
    .arg(&kept)
    .spawn()
    .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("line");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("starting") {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        }
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(3), "stopped, resumable:\n{seen}");
    assert!(seen.contains("stopped; run again to resume"), "{seen}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("json"))
            .expect("a report of what was done");
    assert_eq!(report["cells"][0]["status"], "stopped");
    // The cell after it never started: the report says so, not that it stopped.
    assert_eq!(report["cells"][1]["status"], "not run");

    // Kept elsewhere as it stopped (--keep), the cell went with its checkpoint and its call
    // cache, and the invocation there resumes it: a cell can span machines.
    assert!(
        seen.contains("kept 0 finished and 1 stopped cells"),
        "{seen}"
    );
    assert!(kept.join("results.json").is_file());
    let cell = kept.join("runs/tiny/dln-1/seed-1");
    assert!(cell.join("checkpoint.json").is_file());
    assert!(cell
        .join(dln::run::CACHE_DIR)
        .join("calls.sqlite")
        .is_file());

    let (_, stderr) = ok(
        bench(
            &kept,
            &["--methods", "dln-1,0-shot", "--set", "train.iterations=2"],
        )
        .output()
        .expect("resume"),
        "resumed invocation",
    );
    assert!(stderr.contains("resuming"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kept.join("results.json")).expect("json"))
            .expect("valid json");
    assert_eq!(report["cells"][0]["status"], "finished");
    assert_eq!(report["cells"][1]["status"], "finished");
}

#[test]
fn a_sitting_killed_mid_cell_resumes_from_what_keep_copied_as_it_went() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("bench");
    let kept = tmp.path().join("kept");
    let args = ["--methods", "dln-1", "--set", "train.iterations=3"];
    let mut child = bench(&out, &args)
        .arg("--keep")
        .arg(&kept)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Once the running cell's first checkpoint is in the copy, the machine "goes away": a
    // kill, no chance to keep anything more.
    let checkpoint = kept.join("runs/tiny/dln-1/seed-1/checkpoint.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !checkpoint.is_file() {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the bench ended before keeping a checkpoint"
        );
        assert!(std::time::Instant::now() < deadline, "no checkpoint kept");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    let cell = kept.join("runs/tiny/dln-1/seed-1");
    assert!(!cell.join("run.lock").exists());
    assert!(cell
        .join(dln::run::CACHE_DIR)
        .join("calls.sqlite")
        .is_file());

    let (_, stderr) = ok(
        bench(&kept, &args).output().expect("resume from the copy"),
        "invocation on the copy",
    );
    assert!(stderr.contains("resuming"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kept.join("results.json")).expect("json"))
            .expect("valid json");
    assert_eq!(report["cells"][0]["status"], "finished", "{report}");
}
