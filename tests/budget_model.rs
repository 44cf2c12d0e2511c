//! A budget on the real embedded model, through the binary: the shipped DLN-1 demo with the
//! model priced (a `[backends]` entry of kind `embedded` with `prompt_price`/`generated_price`, named by
//! the layer: a layer's own model is not overridden by `DLN_MODEL`)
//! and a tiny `train.budget_cost` stops cleanly (exit 3, the reason on stderr, `budget_reached`
//! in the log, a checkpoint, `dln runs` says "stopped (budget)"); every usage entry carries the
//! cost of its tokens at that price; `dln resume --set train.budget_cost=…` with a larger budget
//! finishes the run, its spending counted on from where it stopped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use dln::dln::events::{Event, StopReason};

fn dln(args: &[String]) -> Output {
    common::dln().args(args).output().expect("dln runs")
}

fn args(head: &[&str], sets: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    for s in sets {
        v.push("--set".into());
        v.push(s.to_string());
    }
    v
}

fn events(dir: &Path) -> Vec<Event> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .expect("events.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event"))
        .collect()
}

/// Price per million tokens: 1000, the same for prompt and generated tokens, so a token costs
/// exactly 0.001.
const PRICE: &str = "1000";

#[test]
fn a_cost_budget_stops_the_run_resumably_and_a_larger_one_finishes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("run");
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/dln1-demo.toml");
    let train = args(
        &[
            "train",
            &config.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        &[
            "backends.local.kind=embedded",
            &format!("backends.local.prompt_price={PRICE}"),
            &format!("backends.local.generated_price={PRICE}"),
            "layers.0.model=local",
            "train.iterations=1",
            "train.batch_size=2",
            "train.val_freq=1",
            // 500 tokens: the run (about 1500) stops after its first stages.
            "train.budget_cost=0.5",
        ],
    );
    let first = dln(&train);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(3), "stopped, resumable: {stderr}");
    assert!(stderr.contains("budget reached"), "{stderr}");
    assert!(stderr.contains("at its budget"), "{stderr}");
    assert!(out.join("checkpoint.json").is_file());

    let log = events(&out);
    let reached = log
        .iter()
        .find_map(|e| match e {
            Event::BudgetReached {
                tokens,
                cost,
                budget_cost,
                ..
            } => Some((*tokens, *cost, *budget_cost)),
            _ => None,
        })
        .expect("a budget_reached event");
    assert_eq!(reached.2, Some(0.5));
    assert!(reached.1 >= 0.5, "stopped at its budget: {reached:?}");
    assert!(
        (reached.1 - reached.0 as f64 * 0.001).abs() < 1e-9,
        "every billed token costs 0.001: {reached:?}"
    );
    assert!(log.iter().any(|e| matches!(
        e,
        Event::RunFinished {
            stopped_early: true,
            stop_reason: Some(StopReason::Budget),
            ..
        }
    )));
    let info = dln::run::runs::run_info(&out).expect("a run");
    assert_eq!(info.status_label(), "stopped (budget)");

    // A larger budget: the run goes on from its checkpoint and finishes.
    let resume = args(
        &["resume", &out.display().to_string()],
        &["train.budget_cost=1000000"],
    );
    let second = dln(&resume);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("result.json")).expect("result.json"),
    )
    .expect("result parses");
    assert_eq!(result["stopped_early"], false);
    assert!(result.get("stop_reason").is_none());
    let usage = &result["usage"];
    let tokens = ["tokens_computed", "tokens_reused", "tokens_generated"]
        .iter()
        .map(|k| usage[k].as_u64().expect("a count"))
        .sum::<u64>();
    let cost = usage["cost"].as_f64().expect("the run's cost");
    assert!(
        (cost - tokens as f64 * 0.001).abs() < 1e-6,
        "{cost} for {tokens} tokens"
    );
    assert!(
        tokens > reached.0,
        "the resumed run counts on from what was spent before the stop"
    );
    // Per layer and operation too, in the iteration's event.
    let per_op: Vec<(u64, f64)> = events(&out)
        .iter()
        .filter_map(|e| match e {
            Event::IterationDone { usage, .. } => Some(usage.clone()),
            _ => None,
        })
        .flatten()
        .map(|e| (e.usage.billed_tokens(), e.usage.cost))
        .collect();
    assert!(!per_op.is_empty());
    for (t, c) in per_op {
        assert!((c - t as f64 * 0.001).abs() < 1e-9, "{c} for {t} tokens");
    }
}
