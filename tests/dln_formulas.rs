//! The method's bookkeeping against ALGORITHM.md, with the scripted backend: the memory holds the
//! M best dev prompt sets (not only the improvements), the ELBO shown is the sum of the chosen
//! prompts' ELBO terms without the trust-region or log-p penalties and includes a fixed layer's
//! term, and a backend without log-probabilities ranks candidates by batch accuracy.

mod common;

use common::session::*;
use dln::config::Config;
use dln::dln::events::{CandidateOrigin, Event};
use dln::dln::math::MemoryEntry;
use dln::llm::scripted::{unit_hash, ScriptedBackend};
use dln::run::{read_checkpoint, RunSummary, Session};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

async fn run(
    config: Config,
    backend: ScriptedBackend,
) -> (tempfile::TempDir, RunSummary, Vec<Event>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Session::start(config, options_with(backend, &dir.path().join("run")))
        .await
        .expect("start");
    let (r, events) = run_to_end(s).await;
    (dir, r.expect("run succeeds"), events)
}

/// The class index of `letter` in a request's classes.
fn class_of(classes: &[Vec<String>], letter: &str) -> usize {
    classes
        .iter()
        .position(|v| {
            v.iter()
                .any(|t| t.trim().trim_matches(|c| c == '(' || c == ')') == letter)
        })
        .unwrap_or(0)
}

/// Right on an input when a hash of the input is below a threshold read from the prompt
/// ("variant N" → N/100, else 1/2), so dev accuracy moves up and down with the prompts.
fn threshold_backend() -> ScriptedBackend {
    scripted().on_classify(|r| {
        let re = regex::Regex::new(r"\(A\)\s*(\d+)\s*\(B\)\s*(\d+)").expect("regex");
        let (a, b) = re
            .captures_iter(&r.context)
            .last()
            .and_then(|c| Some((c[1].parse::<u64>().ok()?, c[2].parse::<u64>().ok()?)))
            .unwrap_or((1, 0));
        let vre = regex::Regex::new(r"variant (\d+)").expect("regex");
        let t = vre
            .captures(&r.context)
            .and_then(|c| c[1].parse::<f64>().ok())
            .map(|n| n / 100.0)
            .unwrap_or(0.5);
        let input = r.context.rsplit("Input:").next().unwrap_or_default();
        let right = unit_hash(input) < t;
        let larger = if a > b { "A" } else { "B" };
        let smaller = if a > b { "B" } else { "A" };
        let mut m = vec![0.0; r.classes.len()];
        m[class_of(&r.classes, if right { larger } else { smaller })] = 9f64.ln();
        m
    })
}

/// What `PromptMemory` must hold after a run: the `capacity` best distinct prompt sets of the
/// dev history (earlier first among equals).
fn top_m(history: &[(f64, Vec<String>)], capacity: usize) -> Vec<MemoryEntry> {
    let mut sorted: Vec<&(f64, Vec<String>)> = history.iter().collect();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out: Vec<MemoryEntry> = Vec::new();
    for (acc, prompts) in sorted {
        if !out.iter().any(|e| &e.prompts == prompts) {
            out.push(MemoryEntry {
                prompts: prompts.clone(),
                demos: Vec::new(),
                dev_accuracy: *acc,
            });
        }
    }
    out.truncate(capacity);
    out
}

#[tokio::test]
async fn memory_holds_the_m_best_dev_prompt_sets() {
    let mut discriminating = 0;
    for seed in 1..=12u64 {
        let mut c = tiny_config(1);
        for (k, v) in [
            ("train.iterations", "5"),
            ("train.memory", "2"),
            ("train.patience", "-1"),
            ("train.seed", &seed.to_string()),
        ] {
            c.set(k, v).expect("set");
        }
        let (dir, _, _) = run(c, threshold_backend()).await;
        let cp = read_checkpoint(&dir.path().join("run"))
            .expect("read")
            .expect("checkpoint");
        let history: Vec<(f64, Vec<String>)> = cp
            .state
            .dev_history
            .iter()
            .map(|d| (d.accuracy, d.prompts.clone()))
            .collect();
        assert_eq!(cp.state.memory.entries, top_m(&history, 2), "seed {seed}");
        // Whether remembering only the improvements would have differed.
        let mut improvements = Vec::new();
        let mut best = f64::NEG_INFINITY;
        for h in &history {
            if h.0 > best {
                best = h.0;
                improvements.push(h.clone());
            }
        }
        if top_m(&improvements, 2) != cp.state.memory.entries {
            discriminating += 1;
        }
    }
    assert!(
        discriminating > 0,
        "no seed had a non-improving dev point among the 2 best"
    );
}

fn elbos(events: &[Event]) -> Vec<(usize, Vec<Option<f64>>, f64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Elbo {
                iteration,
                terms,
                total,
            } => Some((*iteration, terms.clone(), *total)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_elbo_shown_leaves_out_the_trust_region_term() {
    // Proposals put 3:1 on (A), the current prompt 1:1: candidates differ in their class
    // distributions, so the KL term is non-zero for proposals.
    let backend = scripted().on_classify(|r| {
        if r.context.contains("variant") {
            let mut m = vec![0.0; r.classes.len()];
            m[class_of(&r.classes, "A")] = 3f64.ln();
            m
        } else {
            vec![0.0; r.classes.len()]
        }
    });
    let mut c = tiny_config(1);
    c.set("train.trust_factor", "0.1").expect("trust");
    c.set("train.iterations", "4").expect("iterations");
    let (_dir, _, events) = run(c, backend).await;
    let dist = |p: &str| {
        if p.contains("variant") {
            [0.75, 0.25]
        } else {
            [0.5, 0.5]
        }
    };
    let kl = |old: [f64; 2], new: [f64; 2]| -> f64 {
        (0..2).map(|c| old[c] * (old[c] / new[c]).ln()).sum()
    };
    let mut with_kl = 0;
    for (it, _, candidates, winner) in scored(&events) {
        // Candidate 0 is the current prompt: the trust region's reference.
        let old = dist(&candidates[0].prompt);
        for cand in &candidates {
            let want = kl(old, dist(&cand.prompt));
            assert!(
                close(cand.kl.expect("kl computed"), want),
                "{cand:?} vs {want}"
            );
        }
        let w = &candidates[winner];
        let (_, terms, total) = elbos(&events)
            .into_iter()
            .find(|(i, _, _)| *i == it)
            .expect("elbo of the iteration");
        // The ELBO term is the candidate's log-likelihood: its score plus λ·KL.
        let elbo = w.score.expect("score") + 0.1 * w.kl.expect("kl");
        assert!(close(terms[0].expect("term"), elbo), "{terms:?} vs {elbo}");
        assert!(close(total, elbo));
        if w.kl.unwrap_or(0.0) > 0.0 {
            with_kl += 1;
        }
    }
    assert!(with_kl > 0, "no proposal won: the check did not bite");
}

#[tokio::test]
async fn a_fixed_output_layer_still_contributes_elbo2() {
    let mut c = tiny_config(2);
    c.layers[1].trainable = false;
    let (_dir, _, events) = run(c, scripted()).await;
    let s = scored(&events);
    let fixed: Vec<_> = s.iter().filter(|(_, l, _, _)| *l == 1).collect();
    assert!(!fixed.is_empty(), "the fixed layer's ELBO term is scored");
    for (_, _, candidates, winner) in &fixed {
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].origin, CandidateOrigin::Current);
        assert_eq!(*winner, 0);
    }
    assert_eq!(
        count(&events, |e| matches!(
            e,
            Event::PromptSelected { layer: 1, .. }
        )),
        0
    );
    assert_eq!(
        count(&events, |e| matches!(
            e,
            Event::CandidatesProposed { layer: 1, .. }
        )),
        0
    );
    for (it, terms, total) in elbos(&events) {
        let e2 = s
            .iter()
            .find(|(i, l, _, _)| *i == it && *l == 1)
            .and_then(|(_, _, c, _)| c[0].score)
            .expect("ELBO2 of the fixed prompt");
        assert!(close(terms[1].expect("ELBO2"), e2));
        assert!(close(total, terms[0].expect("ELBO1") + e2));
    }
}

#[tokio::test]
async fn without_log_probabilities_candidates_are_ranked_by_batch_accuracy() {
    let (_dir, _, events) = run(tiny_config(1), scripted().without_logprobs()).await;
    assert!(events.iter().any(
        |e| matches!(e, Event::Warning { message } if message.contains("no log-probabilities"))
    ));
    let s = scored(&events);
    assert!(!s.is_empty());
    for (_, _, candidates, _) in s {
        for c in candidates {
            // Batch accuracy over 3 examples: 0, 1/3, 2/3 or 1.
            let k = c.score.expect("score") * 3.0;
            assert!(
                (k - k.round()).abs() < 1e-9 && (0.0..=3.0).contains(&k),
                "{c:?}"
            );
        }
    }
}
