//! The lineage view as a person uses it: a real run (the tiny example, 2 iterations on the test
//! model) replayed with `dln replay` in a tmux terminal; `L` opens the lineage of layer 1, `g`
//! goes to the start prompt, `j` to the next prompt (its provenance on screen when it was
//! proposed), `[` scrubs back an iteration with the view open, Esc closes it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::run::{ok, run_dir, stdout, train};
use common::tmux::{dln_line, Tmux};
use common::{bin, example};
use serde_json::Value;

/// `dln replay RUN` with its data directory in `tmp` and no user config.
fn replay_line(tmp: &Path, run: &Path) -> String {
    dln_line()
        .env("DLN_DATA", tmp.join("data"))
        .env("DLN_CONFIG", tmp.join("no-config.toml"))
        .arg("replay")
        .arg(run)
        .then("sleep 60")
}

#[test]
fn the_lineage_view_in_a_replay_of_a_real_run() {
    let (tmp, out) = run_dir();
    ok(
        train(
            &example("tiny.toml"),
            &out,
            &["train.iterations=2", "train.num_candidates=3"],
        )
        .env("DLN_DATA", tmp.path().join("data"))
        .output()
        .expect("dln train"),
        "the tiny run",
    );
    // What the view should show, from `dln lineage --json`.
    let json: Value = serde_json::from_str(&stdout(&ok(
        bin()
            .arg("lineage")
            .arg(&out)
            .arg("--json")
            .output()
            .expect("dln lineage"),
        "lineage --json",
    )))
    .expect("JSON");
    let layer = &json["layers"][0];
    let nodes = layer["nodes"].as_array().expect("nodes");
    let current = layer["current"].as_u64().expect("current");

    let tmux = Tmux::start("lineage", &replay_line(tmp.path(), &out));
    let quick = Duration::from_secs(30);
    tmux.wait_for("the replay", quick, |s| s.contains(" REPLAY "));
    // The Candidates pane hints the key.
    tmux.keys(&["3"]);
    tmux.wait_for("the lineage hint", quick, |s| s.contains("L lineage"));

    tmux.keys(&["L"]);
    let (s, _) = tmux.wait_for("the lineage view", quick, |s| {
        s.contains("Lineage · layer 1/1")
    });
    // The start prompt is in the tree (○, or ● when it is still the prompt now).
    assert!(
        s.contains("○ #0") || s.contains("● #0"),
        "the start prompt is in the tree:\n{s}"
    );
    assert!(
        s.contains(&format!("#{current} · ")),
        "the prompt now is selected:\n{s}"
    );

    // The start: its own story, no parent.
    tmux.keys(&["g"]);
    let (s, _) = tmux.wait_for("the start selected", quick, |s| {
        s.contains("#0 · start") && s.contains("the start prompt")
    });
    assert!(!s.contains("diff against"), "{s}");

    // The next prompt: its parent, why it won or lost, a diff, and its provenance.
    if nodes.len() > 1 {
        tmux.keys(&["j"]);
        let (s, _) = tmux.wait_for("the next prompt", quick, |s| s.contains("#1 · iteration"));
        assert!(s.contains("diff against #"), "{s}");
        let why = ["won at it", "lost at it", "not scored", "selected at it"];
        assert!(why.iter().any(|w| s.contains(w)), "{s}");
        if nodes[1]["kind"] == "proposed" {
            assert!(s.contains("shown ex"), "the provenance of a proposal:\n{s}");
            assert!(s.contains("message:"), "{s}");
        }
    }

    // Scrubbing back keeps the view open, on the tree as it was.
    tmux.keys(&["["]);
    tmux.wait_for("the scrubbed tree", quick, |s| {
        s.contains("Lineage · layer 1/1") && s.contains("iteration ")
    });

    tmux.keys(&["Escape"]);
    tmux.wait_for("the view closed", quick, |s| {
        !s.contains("Lineage · layer") && s.contains(" REPLAY ")
    });
    tmux.keys(&["q"]);
    tmux.wait_for("the exit", quick, |s| s.contains("EXIT=0"));
}
