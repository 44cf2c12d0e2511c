//! `dln lineage RUN` on a real DLN-2 run (2 iterations on the test model): every winner's
//! ancestry reaches the start prompt, in the text, in `--dot` and in `--json`, and the proposed
//! prompts carry their provenance (the training examples their proposer was shown, its
//! message); plus the errors for what is not a run.

mod common;

use std::collections::BTreeMap;

use common::run::{ok, stderr, stdout};
use serde_json::Value;

fn lineage(run: &std::path::Path, args: &[&str]) -> std::process::Output {
    common::bin()
        .arg("lineage")
        .arg(run)
        .args(args)
        .output()
        .expect("dln lineage")
}

#[test]
fn every_winner_of_a_dln2_run_traces_back_to_the_start() {
    let (_tmp, run) = common::train_with(
        common::dln(),
        "examples/dln2-demo.toml",
        &[
            "train.iterations=2",
            "train.batch_size=2",
            "train.num_candidates=3",
            "train.num_hidden_samples=2",
            "data.max_dev=2",
            "data.max_test=2",
            "layers.0.forward_max_tokens=24",
            "layers.0.backward_max_tokens=32",
            "layers.1.backward_max_tokens=32",
        ],
    );

    // --json: the model.
    let json: Value =
        serde_json::from_str(&stdout(&ok(lineage(&run, &["--json"]), "lineage --json")))
            .expect("JSON");
    let layers = json["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    let mut proposed = 0;
    let mut winners_total = 0;
    for layer in layers {
        let nodes = layer["nodes"].as_array().expect("nodes");
        assert_eq!(nodes[0]["kind"], "start");
        let by_id: BTreeMap<u64, &Value> = nodes
            .iter()
            .map(|n| (n["id"].as_u64().expect("id"), n))
            .collect();
        for n in nodes {
            if n["won"] == true {
                winners_total += 1;
            }
            // Every node, winners first of all, walks back to the start.
            let mut at = n;
            let mut steps = 0;
            while let Some(p) = at["parent"].as_u64() {
                at = by_id[&p];
                steps += 1;
                assert!(steps <= nodes.len(), "a cycle from {n}");
            }
            assert_eq!(at["kind"], "start", "{n} does not reach the start");
            if n["kind"] == "proposed" {
                proposed += 1;
                let source = &n["source"];
                let shown = source["shown"].as_array().expect("shown examples");
                assert!(!shown.is_empty(), "{n}");
                assert!(
                    source["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{n}"
                );
                assert!(
                    source["template"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("propose")),
                    "{n}"
                );
            }
        }
        assert!(!layer["updates"].as_array().expect("updates").is_empty());
    }
    assert!(proposed > 0, "the run proposed prompts: {json}");

    // Text: each layer, the winners' ancestry back to the start, the provenance.
    let text = stdout(&ok(lineage(&run, &[]), "lineage"));
    assert!(
        text.contains("layer 1 ·") && text.contains("layer 2 ·"),
        "{text}"
    );
    let chains: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("winners and their ancestry"))
        .filter(|l| l.trim_start().starts_with('#'))
        .filter(|l| l.contains(" ← ") || l.trim() == "#0 (start)")
        .collect();
    for chain in &chains {
        assert!(chain.trim_end().ends_with("#0 (start)"), "{chain}\n{text}");
    }
    assert!(
        text.contains("the prompt now, and where it came from"),
        "{text}"
    );
    if winners_total > 0 {
        assert!(!chains.is_empty(), "{text}");
    }
    // A proposal's provenance is on the winner's lines or the best rejected's.
    assert!(text.contains("shown ex"), "{text}");
    if text.contains("★") {
        assert!(text.contains("message:"), "{text}");
    }

    // One layer only.
    let one = stdout(&ok(lineage(&run, &["--layer", "2"]), "lineage --layer 2"));
    assert!(
        one.contains("layer 2 ·") && !one.contains("layer 1 ·"),
        "{one}"
    );

    // --dot: a graph with an edge from the start and a cluster per layer.
    let dot = stdout(&ok(lineage(&run, &["--dot"]), "lineage --dot"));
    assert!(dot.starts_with("digraph lineage {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    assert!(dot.contains("subgraph cluster_layer0") && dot.contains("subgraph cluster_layer1"));
    assert!(
        dot.contains("l0n0 -> ") || dot.contains("l1n0 -> "),
        "{dot}"
    );
    assert!(
        dot.contains("fillcolor=\"gold\""),
        "the prompt now is highlighted: {dot}"
    );
}

#[test]
fn what_is_not_a_run_is_named_with_the_fix() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = lineage(&tmp.path().join("nope"), &[]);
    assert!(!missing.status.success());
    let e = stderr(&missing);
    assert!(
        e.contains("is not a directory") && e.contains("dln runs"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");

    let not_run = lineage(tmp.path(), &[]);
    assert!(!not_run.status.success());
    let e = stderr(&not_run);
    assert!(
        e.contains("is not a run directory") && e.contains("events.jsonl"),
        "{e}"
    );

    // A recorded run of a single layer: --layer 2 is out of range.
    let recorded = common::fixture("bench-results/runs/hyperbaton/0-shot/seed-1");
    let out = lineage(&recorded, &["--layer", "2"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("give 1 to 1"), "{}", stderr(&out));
    let text = stdout(&ok(lineage(&recorded, &[]), "lineage of a recorded run"));
    assert!(text.contains("#0 (start)"), "{text}");
}
