//! `dln branch` on real runs of the tiny example on the test model: a run trained for two
//! iterations is branched after its first, once with a new prompt and more iterations and once
//! unchanged; each branch trains to completion with `dln resume`, names its parent in `dln runs`,
//! `dln runs show` and `dln compare`, replays the parent's history before its own, and exports;
//! the parent's files are never touched; what a branch cannot do is refused with the reason and
//! leaves no directory.

mod common;

use std::path::{Path, PathBuf};

use common::run::{event_lines, ok, read_json, result, resume, stderr, stdout, train};
use common::{dln, example};

fn branch(parent: &Path, args: &[&str]) -> std::process::Output {
    dln()
        .arg("branch")
        .arg(parent)
        .args(args)
        .output()
        .expect("dln branch")
}

/// The bytes of every file of a run directory but its lock and call cache.
fn files_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "cache" || name == "run.lock" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).expect("read file")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_branch_trains_to_completion_from_its_parents_iteration_and_names_its_parent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let parent = tmp.path().join("run");
    ok(
        train(&example("tiny.toml"), &parent, &["train.iterations=2"])
            .env("DLN_DATA", tmp.path().join("data"))
            .output()
            .expect("dln train"),
        "train the parent",
    );
    // The state at every boundary is kept: after the start evaluation and each iteration.
    let kept: Vec<String> = std::fs::read_dir(parent.join("iterations"))
        .expect("iterations/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for it in ["0000.json", "0001.json", "0002.json"] {
        assert!(kept.iter().any(|k| k == it), "{it} in {kept:?}");
    }
    let before = files_of(&parent);

    // Refused: a point the run never reached, other data, a directory that holds something.
    let far = branch(&parent, &["--at", "7"]);
    assert_eq!(far.status.code(), Some(1));
    assert!(
        stderr(&far).contains("no state was kept after iteration 7")
            && stderr(&far).contains("after iterations 0 to 2"),
        "{}",
        stderr(&far)
    );
    let data = branch(&parent, &["--set", "data.path=other.json"]);
    assert!(stderr(&data).contains("a branch trains on its parent's examples"));
    let full = tmp.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("notes.txt"), "mine").unwrap();
    let taken = branch(&parent, &["--out", full.to_str().unwrap()]);
    assert!(
        stderr(&taken).contains("already holds a run"),
        "{}",
        stderr(&taken)
    );
    assert_eq!(
        std::fs::read_to_string(full.join("notes.txt")).unwrap(),
        "mine"
    );
    let not_a_run = branch(tmp.path(), &[]);
    assert!(stderr(&not_a_run).contains("is not a run directory"));
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("run-b") && !n.ends_with(".tmp")),
        "a refused branch leaves nothing: {names:?}"
    );

    // A branch after iteration 1 with a person's prompt and a third iteration.
    let prompt = "Compare the two numbers and answer with the letter of the larger one.";
    let changed = tmp.path().join("changed");
    let made = ok(
        branch(
            &parent,
            &[
                "--at",
                "1",
                "--set",
                &format!("layers.0.prompt={prompt}"),
                "--set",
                "train.iterations=3",
                "--out",
                changed.to_str().unwrap(),
            ],
        ),
        "branch",
    );
    assert_eq!(stdout(&made).trim(), changed.display().to_string());
    assert!(stderr(&made).contains("dln resume"), "{}", stderr(&made));
    let record = read_json(&changed.join("branch.json"));
    assert_eq!(record["iteration"], 1);
    assert_eq!(
        Path::new(record["parent"].as_str().unwrap()),
        parent.canonicalize().unwrap()
    );
    let state = read_json(&changed.join("checkpoint.json"));
    assert_eq!(state["state"]["iteration"], 1);
    assert_eq!(state["state"]["prompts"][0], prompt);

    // Its log is the parent's up to the point (as the snapshot recorded), then `branched`.
    let snapshot = read_json(&parent.join("iterations/0001.json"));
    let cut = snapshot["events_len"].as_u64().unwrap() as usize;
    let parent_log = std::fs::read(parent.join("events.jsonl")).unwrap();
    let branch_log = std::fs::read(changed.join("events.jsonl")).unwrap();
    assert_eq!(&branch_log[..cut], &parent_log[..cut]);
    let own = String::from_utf8_lossy(&branch_log[cut..]).into_owned();
    assert!(own.starts_with("{\"event\":\"branched\""), "{own}");

    ok(
        resume(&changed)
            .env("DLN_DATA", tmp.path().join("data"))
            .output()
            .expect("dln resume"),
        "resume the branch",
    );
    let r = result(&changed);
    assert_eq!(r["stopped_early"], false);
    assert_eq!(r["iterations"], 3);
    let lines = event_lines(&changed);
    let branched = lines
        .iter()
        .position(|l| l.contains("\"branched\""))
        .expect("branched event");
    assert!(lines[branched + 1..]
        .iter()
        .any(|l| l.contains("\"run_started\"") && l.contains("\"start_iteration\":1")));
    // The person's prompt is what the branch trained from.
    assert!(lines[branched + 1..]
        .iter()
        .any(|l| l.contains("\"run_started\"") && l.contains(prompt)));
    // A whole replay: the parent's past and the branch's own iterations.
    let events = dln::run::read_events(&changed).expect("replay the branch");
    assert!(events.len() == lines.len());

    // Unchanged, a branch retraces its parent's last iteration to the same end.
    let same = tmp.path().join("same");
    let made = ok(
        branch(&parent, &["--at", "1", "--out", same.to_str().unwrap()]),
        "branch unchanged",
    );
    // It takes its parent's call cache along, so it computes nothing its parent computed.
    assert!(
        stderr(&made).contains("copied the parent's call cache"),
        "{}",
        stderr(&made)
    );
    let computed = |usage: &serde_json::Value| -> u64 {
        usage
            .as_array()
            .expect("usage entries")
            .iter()
            .map(|e| {
                e["usage"]["tokens_computed"].as_u64().unwrap()
                    + e["usage"]["tokens_generated"].as_u64().unwrap()
            })
            .sum()
    };
    let inherited = computed(&read_json(&same.join("checkpoint.json"))["state"]["usage"]);
    ok(
        resume(&same)
            .env("DLN_DATA", tmp.path().join("data"))
            .output()
            .expect("dln resume"),
        "resume the unchanged branch",
    );
    let p = result(&parent);
    let s = result(&same);
    assert_eq!(s["final_prompts"], p["final_prompts"]);
    assert_eq!(s["dev_accuracy"], p["dev_accuracy"]);
    assert_eq!(s["test_accuracy"], p["test_accuracy"]);
    let own = read_json(&same.join("checkpoint.json"));
    assert_eq!(
        computed(&own["state"]["usage"]),
        inherited,
        "every call of the retraced iteration and the test was answered from the copied cache"
    );

    // The parent is untouched by all of it.
    assert!(files_of(&parent) == before, "the parent's files changed");

    // The family in `dln runs`, `dln runs show` and `dln compare`.
    let runs = stdout(&ok(
        common::bin()
            .arg("runs")
            .arg(tmp.path())
            .output()
            .expect("dln runs"),
        "runs",
    ));
    let row = |name: &str| {
        runs.lines()
            .find(|l| l.trim_end().ends_with(&format!("/{name}")))
            .unwrap_or_else(|| panic!("{name} in\n{runs}"))
            .to_string()
    };
    assert!(runs.contains("branch of"), "{runs}");
    assert!(row("changed").contains("run@1") && row("same").contains("run@1"));
    assert!(!row("run").contains("@"), "{runs}");
    let show = stdout(&ok(
        common::bin()
            .args(["runs", "show"])
            .arg(&parent)
            .output()
            .expect("dln runs show"),
        "runs show",
    ));
    for child in [&changed, &same] {
        assert!(
            show.contains(&format!("after iteration 1 → {}", child.display())),
            "{show}"
        );
    }
    let compare = stdout(&ok(
        common::bin()
            .arg("compare")
            .arg(&parent)
            .arg(&changed)
            .output()
            .expect("dln compare"),
        "compare",
    ));
    assert!(compare.contains("#1@1"), "{compare}");

    // A branch is a run like any other: it exports.
    let out = tmp.path().join("net.toml");
    common::run::export(&changed, &out);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("[[layers]]"));
}
