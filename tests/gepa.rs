//! GEPA in dln's harness (`train.optimizer = "gepa"`, `dln bench accuracy --methods gepa`), on
//! the real small model: the loop keeps a pool scored per dev example, draws each iteration's
//! parent from its Pareto front, writes one reflective mutation shown the whole minibatch, keeps
//! it only when it beats its parent there, and ends with the pool's best; it trains to a token
//! budget (`train.until_tokens`) and ends finished; a run killed mid-iteration resumes to the run
//! left alone; the benchmark gives GEPA the tokens DLN-1 spent on the same task and seed.

mod common;

use std::path::Path;

use common::run::{ok, read_json, result, resume, stdout, train};
use serde_json::Value;

const GEPA: &[&str] = &["train.optimizer=gepa", "train.iterations=4"];

fn kind(e: &Value) -> &str {
    e["event"].as_str().unwrap_or_default()
}

fn of_kind<'a>(events: &'a [Value], k: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| kind(e) == k).collect()
}

fn n(v: &Value) -> usize {
    v.as_u64().expect("a count") as usize
}

/// What a GEPA run's log must show, iteration by iteration; returns the prompts of the pool's
/// members in the order they joined.
fn check_gepa_log(run: &Path) -> Vec<String> {
    let events = common::events(run);
    let added = of_kind(&events, "pool_added");
    assert!(!added.is_empty(), "the start evaluation makes member 0");
    assert_eq!(n(&added[0]["member"]), 0);
    assert!(
        added[0]["parent"].is_null(),
        "the starting prompts have no parent"
    );
    // A member evaluated again after a kill (the rerun of what the kill interrupted) is the
    // same member: the pool is by index.
    let mut members: Vec<String> = Vec::new();
    for e in &added {
        let (m, prompt) = (n(&e["member"]), e["prompts"][0].as_str().expect("prompt"));
        assert!(m <= members.len(), "members join in order: {e}");
        members.truncate(m);
        members.push(prompt.to_string());
    }
    let iterations = of_kind(&events, "iteration_done").len();
    let parents = of_kind(&events, "parent_selected");
    let mut drawn: Vec<u64> = parents
        .iter()
        .filter_map(|e| e["iteration"].as_u64())
        .collect();
    drawn.dedup();
    assert_eq!(drawn.len(), iterations, "one parent drawn per iteration");
    // Each iteration's events: from its parent's draw to the next one (the start evaluation,
    // member 0, comes before the first).
    // (An iteration a kill interrupted is drawn again when the run resumes: its last draw counts.)
    let draw_of = |it: usize| {
        let at = events.iter().rposition(|e| {
            kind(e) == "parent_selected" && e["iteration"].as_u64() == Some(it as u64)
        });
        at.expect("a draw")
    };
    for it in 0..iterations {
        let start = draw_of(it);
        let end = if it + 1 < iterations {
            draw_of(it + 1)
        } else {
            events.len()
        };
        let segment = &events[start..end];
        let in_it = |k: &str| -> Vec<&Value> { segment.iter().filter(|e| kind(e) == k).collect() };
        let parent = &in_it("parent_selected")[0];
        // The member drawn was in the pool and on its front.
        let member = n(&parent["member"]);
        let before: Vec<&&Value> = added
            .iter()
            .filter(|e| {
                e["member"]
                    .as_u64()
                    .is_some_and(|m| (m as usize) < member + 1)
            })
            .collect();
        assert!(!before.is_empty(), "iteration {it} drew member {member}");
        let front = parent["front"].as_array().expect("front");
        assert!(
            front
                .iter()
                .any(|f| n(&f["member"]) == member && n(&f["wins"]) > 0),
            "iteration {it}: the parent is on the front: {parent}"
        );
        assert_eq!(
            parent["prompts"][0].as_str(),
            Some(members[member].as_str())
        );
        let proposed = in_it("candidates_proposed");
        let scored = in_it("candidates_scored");
        let joined = in_it("pool_added");
        let dev: Vec<&Value> = in_it("evaluated")
            .into_iter()
            .filter(|e| e["split"] == "dev")
            .collect();
        if proposed.is_empty() {
            // A minibatch answered right throughout: GEPA skips it.
            assert!(joined.is_empty() && dev.is_empty(), "iteration {it}");
            continue;
        }
        let cands = proposed[0]["candidates"].as_array().expect("candidates");
        assert!(cands.len() <= 2, "the parent and one mutation: {cands:?}");
        assert_eq!(cands[0]["origin"], "current");
        assert_eq!(cands[0]["prompt"].as_str(), Some(members[member].as_str()));
        if let Some(m) = cands.get(1) {
            let source = &m["proposal"];
            assert_eq!(source["template"], "propose_reflective", "{m}");
            assert_eq!(
                source["shown"].as_array().map(Vec::len),
                Some(2),
                "the reflection sees the whole minibatch (b = 2): {m}"
            );
        }
        let winner = n(&scored[0]["winner"]);
        let kept = winner != 0;
        if kept {
            let scores: Vec<f64> = scored[0]["candidates"]
                .as_array()
                .expect("scored")
                .iter()
                .map(|c| c["score"].as_f64().expect("score"))
                .collect();
            assert!(
                scores[1] > scores[0],
                "kept only when strictly better: {scores:?}"
            );
        }
        // A mutation the pool holds already is not scored on dev again.
        let known = kept
            && events[..start]
                .iter()
                .any(|e| kind(e) == "pool_added" && e["prompts"][0] == cands[1]["prompt"]);
        assert_eq!(
            (joined.len(), dev.len()),
            if kept && !known { (1, 1) } else { (0, 0) },
            "iteration {it}: a dev evaluation exactly when a new mutation is kept"
        );
        if kept && !known {
            assert_eq!(n(&joined[0]["parent"]), member);
            assert_eq!(
                joined[0]["prompts"][0].as_str(),
                cands[1]["prompt"].as_str()
            );
        }
    }
    // The run ends with the pool's best member: dev accuracy, then mean score, then age.
    let last = added.last().expect("a member");
    let best = n(&last["best"]);
    let acc = |e: &Value| e["dev_accuracy"].as_f64().expect("acc");
    let mean = |e: &Value| e["mean_score"].as_f64().expect("mean");
    for e in &added {
        let b = added[best];
        assert!(
            acc(e) < acc(b) || (acc(e) == acc(b) && mean(e) <= mean(b)),
            "member {} beats the best {best}",
            e["member"]
        );
    }
    let r = result(run);
    assert_eq!(r["best_prompts"][0].as_str(), Some(members[best].as_str()));
    assert_eq!(r["dev_accuracy"].as_f64(), Some(acc(added[best])));
    assert_eq!(r["stopped_early"], false);
    let checkpoint = read_json(&run.join("checkpoint.json"));
    assert_eq!(
        checkpoint["state"]["pool"]["members"]
            .as_array()
            .map(Vec::len),
        Some(members.len()),
        "the pool is checkpointed"
    );
    members
}

#[test]
fn a_gepa_run_keeps_a_pareto_pool_and_a_killed_run_resumes_to_the_same_end() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = common::example("tiny.toml");
    let (alone, killed) = (tmp.path().join("alone"), tmp.path().join("killed"));
    ok(
        train(&config, &alone, GEPA).output().expect("run"),
        "the run left alone",
    );
    // Killed as by SIGKILL before the fourth stage: the first iteration's score of its mutation.
    let died = train(&config, &killed, GEPA)
        .env("DLN_FAULT", "stage:4")
        .output()
        .expect("run");
    assert!(!died.status.success(), "the fault point ends the run");
    assert!(
        !common::events(&killed)
            .iter()
            .any(|e| kind(e) == "iteration_done"),
        "killed within the first iteration"
    );
    let members = check_gepa_log(&alone);
    ok(resume(&killed).output().expect("resume"), "resume");
    assert_eq!(check_gepa_log(&killed), members, "the same pool");
    let (a, k) = (result(&alone), result(&killed));
    for key in [
        "best_prompts",
        "dev_accuracy",
        "test_accuracy",
        "iterations",
    ] {
        assert_eq!(a[key], k[key], "{key}");
    }
}

/// The billed tokens of a usage object.
fn billed(u: &Value) -> u64 {
    ["tokens_computed", "tokens_reused", "tokens_generated"]
        .iter()
        .map(|k| u[k].as_u64().unwrap_or(0))
        .sum()
}

/// A run's tokens outside its test.
fn training_tokens(r: &Value) -> u64 {
    r["usage_by_layer"]
        .as_array()
        .expect("usage")
        .iter()
        .filter(|e| e["operation"] != "test")
        .map(|e| billed(&e["usage"]))
        .sum()
}

#[test]
fn training_ends_at_the_token_budget_and_the_run_is_finished() {
    let budget = 6000;
    let until = format!("train.until_tokens={budget}");
    let (_tmp, run) = common::train_with(
        common::dln(),
        "examples/tiny.toml",
        &["train.optimizer=gepa", "train.iterations=100", &until],
    );
    let r = result(&run);
    let its = n(&r["iterations"]);
    assert!(its > 0 && its < 100, "the budget ended training: {its}");
    let spent = training_tokens(&r);
    assert!(spent >= budget, "{spent} tokens");
    // Before the last iteration began the budget was not spent yet.
    let events = common::events(&run);
    let last = of_kind(&events, "iteration_done")
        .last()
        .copied()
        .expect("an iteration")
        .clone();
    let last_tokens: u64 = last["usage"]
        .as_array()
        .expect("usage")
        .iter()
        .map(|e| billed(&e["usage"]))
        .sum();
    assert!(spent - last_tokens < budget, "{spent} - {last_tokens}");
    assert_eq!(r["stopped_early"], false);
    assert!(r["test_accuracy"].is_number(), "then the test: {r}");
    let members = check_gepa_log(&run);
    assert!(
        members.len() > 1,
        "this seed keeps mutations, so the pool's rules are exercised: {members:?}"
    );
}

#[test]
fn the_bench_gives_gepa_dln_1_s_tokens_and_refuses_gepa_without_them() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bench = |out: &Path, methods: &str| {
        let mut c = common::dln();
        c.args(["bench", "accuracy", "examples/tiny.toml", "--seeds", "1"])
            .args(["--methods", methods, "--set", "train.iterations=1"])
            .arg("--out")
            .arg(out)
            .current_dir(common::repo());
        c.output().expect("bench")
    };
    let out = tmp.path().join("both");
    // GEPA named first still runs after DLN-1, whose tokens it is given.
    let o = ok(bench(&out, "gepa,dln-1"), "bench gepa and dln-1");
    let table = stdout(&o);
    assert!(
        table.contains("| gepa |") && table.contains("| dln-1 |"),
        "{table}"
    );
    let runs = out.join("runs/tiny");
    let dln1 = result(&runs.join("dln-1/seed-1"));
    let config = std::fs::read_to_string(runs.join("gepa/seed-1/config.toml")).expect("config");
    let want = format!("until_tokens = {}", training_tokens(&dln1));
    assert!(config.contains(&want), "{want} in\n{config}");
    assert!(config.contains("optimizer = \"gepa\""), "{config}");
    let gepa = result(&runs.join("gepa/seed-1"));
    assert!(training_tokens(&gepa) >= training_tokens(&dln1));
    // Alone, GEPA has no budget to be given: the cell fails saying what to do.
    let lone = bench(&tmp.path().join("alone"), "gepa");
    let all = format!("{}{}", stdout(&lone), common::run::stderr(&lone));
    assert!(
        all.contains("dln-1") && all.contains("train.until_tokens"),
        "{all}"
    );
}
