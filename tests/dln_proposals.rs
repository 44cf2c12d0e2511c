//! What the proposer is asked and what becomes a candidate (issue 9, part 1), with the scripted
//! backend: rejected proposals are drawn again until N−1 distinct ones parse, each proposal has
//! its own held-out half and shuffle, the batches depend on the seed and the iteration alone, the
//! start is evaluated on dev, a hidden layer's proposer is never told "wrong, the correct answer
//! is <its own text>", a proposal prompt too long for the context drops shown examples
//! instead of ending the run, and the question every input opens with is shown once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::session::*;
use dln::config::Config;
use dln::dln::events::{CandidateOrigin, Event, Rejection};
use dln::llm::scripted::{unit_hash, ScriptedBackend, ScriptedCall};
use dln::llm::{GenerateRequest, Prompt};
use dln::run::{read_checkpoint, RunSummary, Session};

async fn run(
    config: Config,
    backend: ScriptedBackend,
) -> (tempfile::TempDir, Result<RunSummary, String>, Vec<Event>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Session::start(config, options_with(backend, &dir.path().join("run")))
        .await
        .expect("start");
    let (r, events) = run_to_end(s).await;
    (dir, r, events)
}

fn is_proposal(r: &GenerateRequest) -> bool {
    matches!(&r.prompt, Prompt::Chat { assistant_prefix, .. } if assistant_prefix.contains("instruction"))
}

/// The user message of a chat request.
fn user_text(r: &GenerateRequest) -> String {
    match &r.prompt {
        Prompt::Chat { messages, .. } => messages
            .iter()
            .filter(|m| m.role == "user")
            .map(|m| m.content.clone())
            .collect(),
        Prompt::Raw { text } => text.clone(),
    }
}

fn proposal_requests(backend: &ScriptedBackend) -> Vec<GenerateRequest> {
    backend
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            ScriptedCall::Generate(r) if is_proposal(&r) => Some(r),
            _ => None,
        })
        .collect()
}

/// The "Input: ..." lines a proposal prompt shows, in order.
fn shown_inputs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("Input:") {
            // Tiny's inputs span lines: keep up to the student's answer.
            let mut s = l.to_string();
            for m in &lines[i + 1..] {
                if m.starts_with("Student") {
                    break;
                }
                s.push('\n');
                s.push_str(m);
            }
            out.push(s);
        }
    }
    out
}

#[tokio::test]
async fn rejected_proposals_are_drawn_again_until_n_minus_1_distinct_parse() {
    // Of every three proposal requests: one is about the instruction (meta), one repeats the
    // same text (a duplicate after the first), one is new.
    let k = Arc::new(AtomicUsize::new(0));
    let counter = k.clone();
    let backend = scripted().on_generate(move |r, _| {
        if is_proposal(r) {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            return match n % 3 {
                0 => " Make the instruction clearer and more specific.".into(),
                1 => " Pick the option with the LARGER number.".into(),
                _ => format!(" Read both numbers and pick the larger, variant {n}."),
            };
        }
        "I look at option A and B".into()
    });
    let mut c = tiny_config(1);
    c.set("train.num_candidates", "4").expect("N");
    c.set("train.iterations", "3").expect("iterations");
    c.set("train.proposal_rounds", "6").expect("rounds");
    let (_dir, r, events) = run(c.clone(), backend).await;
    r.expect("run");
    let mut updates = 0;
    let mut duplicates = 0;
    for e in &events {
        if let Event::CandidatesProposed {
            candidates,
            drawn,
            rejected,
            ..
        } = e
        {
            updates += 1;
            let proposed: Vec<&str> = candidates
                .iter()
                .filter(|c| c.origin == CandidateOrigin::Proposed)
                .map(|c| c.prompt.as_str())
                .collect();
            assert_eq!(proposed.len(), 3, "N−1 proposals: {candidates:?}");
            assert_eq!(*drawn, proposed.len() + rejected.len());
            assert!(*drawn > 3, "some were drawn again");
            assert!(rejected.iter().any(|r| r.reason == Rejection::Meta));
            // The repeated text is a duplicate, or an echo once it became the prompt.
            assert!(rejected.iter().all(|r| matches!(
                r.reason,
                Rejection::Meta | Rejection::Duplicate | Rejection::Echo
            )));
            duplicates += rejected
                .iter()
                .filter(|r| r.reason == Rejection::Duplicate)
                .count();
            // Duplicates are found after normalization (case and punctuation).
            let keys: Vec<String> = proposed
                .iter()
                .map(|p| dln::template::proposal_key(p))
                .collect();
            let mut dedup = keys.clone();
            dedup.sort();
            dedup.dedup();
            assert_eq!(dedup.len(), keys.len());
        }
    }
    assert!(updates >= 1);
    assert!(duplicates > 0);
    // Old logs without the counts still read.
    let old = r#"{"event":"candidates_proposed","iteration":0,"layer":0,"candidates":[]}"#;
    let e: Event = serde_json::from_str(old).expect("old event replays");
    assert!(matches!(e, Event::CandidatesProposed { drawn: 0, .. }));
}

#[tokio::test]
async fn each_proposal_has_its_own_held_out_half_and_top_p() {
    let backend = scripted();
    let mut c = tiny_config(1);
    c.set("train.num_candidates", "5").expect("N");
    c.set("train.batch_size", "4").expect("b");
    c.set("train.iterations", "3").expect("iterations");
    let (_dir, r, _) = run(c, backend.clone()).await;
    r.expect("run");
    let requests = proposal_requests(&backend);
    assert!(!requests.is_empty());
    let mut differing = 0;
    for update in requests.chunks(4) {
        let sets: Vec<Vec<String>> = update
            .iter()
            .map(|r| {
                let mut s = shown_inputs(&user_text(r));
                s.sort();
                s
            })
            .collect();
        for s in &sets {
            assert_eq!(s.len(), 2, "half of a batch of 4");
        }
        if sets.iter().any(|s| s != &sets[0]) {
            differing += 1;
        }
    }
    assert!(differing > 0, "held-out halves drawn once per update");
    for r in &requests {
        assert!((r.top_p - 0.95).abs() < 1e-6, "proposal top-p {}", r.top_p);
    }
}

#[tokio::test]
async fn the_question_every_input_opens_with_is_shown_to_the_proposer_once() {
    // tiny's inputs all open with "Which number is larger?"; the prompt says something else.
    let backend = scripted();
    let (_dir, r, _) = run(tiny_config(1), backend.clone()).await;
    r.expect("run");
    let requests = proposal_requests(&backend);
    assert!(!requests.is_empty());
    for r in &requests {
        let text = user_text(r);
        assert_eq!(
            text.matches("Which number is larger?").count(),
            1,
            "shown once: {text}"
        );
        assert!(text.contains("Every input begins with: \"Which number is larger?\""));
        for input in shown_inputs(&text) {
            assert!(input.starts_with("Input: Options:\n(A) "), "{input}");
        }
    }
    // The student still reads whole inputs.
    let forward = backend.calls().into_iter().any(|c| match c {
        ScriptedCall::Classify(r) => r.context.contains("Which number is larger?\nOptions:"),
        _ => false,
    });
    assert!(forward);
}

fn batches(events: &[Event]) -> Vec<Vec<String>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ForwardDone { examples, .. } => {
                Some(examples.iter().map(|x| x.input.clone()).collect())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn one_seed_gives_the_same_batches_whatever_n_and_held_out() {
    let mut a = tiny_config(1);
    a.set("train.iterations", "4").expect("iterations");
    let mut b = a.clone();
    b.set("train.num_candidates", "5").expect("N");
    b.set("train.held_out_ranking", "false").expect("held out");
    b.set("train.memory", "0").expect("memory");
    let (_d1, r1, e1) = run(a.clone(), scripted()).await;
    let (_d2, r2, e2) = run(b, scripted()).await;
    r1.expect("run a");
    r2.expect("run b");
    let (ba, bb) = (batches(&e1), batches(&e2));
    assert_eq!(ba.len(), 4);
    assert_eq!(ba, bb);
    // A 2-layer network on the same seed reads the same inputs too.
    let mut two = tiny_config(2);
    two.set("train.iterations", "4").expect("iterations");
    let (_d3, r3, e3) = run(two, scripted()).await;
    r3.expect("run dln-2");
    assert_eq!(batches(&e3), ba);
    // And the batches change with the seed.
    a.set("train.seed", "8").expect("seed");
    let (_d4, r4, e4) = run(a, scripted()).await;
    r4.expect("run seed 8");
    assert_ne!(batches(&e4), ba);
}

#[tokio::test]
async fn the_start_is_evaluated_on_dev_and_can_stay_the_best() {
    // The starting prompt is right on every dev input and wrong on the training ones; proposals
    // are the other way round, so every update picks a proposal (higher batch likelihood) and
    // every later dev evaluation scores 0. Only a dev evaluation of the start finds the best.
    let c = tiny_config(1);
    assert!(c.train.first_eval, "first_eval is on by default");
    let data = dln::run::load_data(&c).expect("data");
    let dev: Vec<String> = data.dev.iter().map(|e| e.input.clone()).collect();
    let backend = scripted().on_classify(move |r| {
        let input = r.context.rsplit("Input:").next().unwrap_or_default().trim();
        let input = input.strip_suffix("Answer:").unwrap_or(input).trim();
        let on_dev = dev.iter().any(|d| d.trim() == input);
        let start = !r.context.contains("variant");
        let right = on_dev == start;
        let nums: Vec<u64> = input
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse().ok())
            .collect();
        let a_larger = nums.len() >= 2 && nums[nums.len() - 2] > nums[nums.len() - 1];
        let mut m = vec![0.0; r.classes.len()];
        m[if a_larger == right { 0 } else { 1 }] = 5.0;
        m
    });
    let (dir, r, events) = run(c, backend).await;
    let summary = r.expect("run");
    let first_dev = events
        .iter()
        .position(|e| matches!(e, Event::Evaluated { split, .. } if *split == dln::dln::events::Split::Dev))
        .expect("a dev evaluation");
    let first_forward = events
        .iter()
        .position(|e| matches!(e, Event::ForwardDone { .. }))
        .unwrap_or(usize::MAX);
    assert!(first_dev < first_forward, "dev before training");
    let cp = read_checkpoint(&dir.path().join("run"))
        .expect("read")
        .expect("checkpoint");
    let start = vec!["Answer the question with the letter of the correct option.".to_string()];
    assert_eq!(cp.state.dev_history[0].iteration, 0);
    assert_eq!(cp.state.dev_history[0].prompts, start);
    assert!(
        cp.state.dev_history[1..]
            .iter()
            .all(|d| d.accuracy == 0.0 && d.prompts != start),
        "{:?}",
        cp.state.dev_history
    );
    assert_eq!(summary.dev_accuracy, Some(1.0));
    assert_eq!(summary.best_prompts, start);
}

/// "Student's answer: X (wrong, the correct answer is Y)" pairs of a proposal prompt.
fn wrong_pairs(text: &str) -> Vec<(String, String)> {
    let re =
        regex::Regex::new(r"(?s)Student's answer: (.*?) \(wrong, the correct answer is (.*?)\)\n")
            .expect("regex");
    re.captures_iter(text)
        .map(|c| (c[1].trim().to_string(), c[2].trim().to_string()))
        .collect()
}

#[tokio::test]
async fn the_hidden_layers_proposer_is_never_told_its_own_text_is_the_correction() {
    let mut shown_wrong = 0;
    let mut own_best_for_wrong = 0;
    for seed in 1..=6u64 {
        let backend = scripted();
        let mut c = tiny_config(2);
        c.set("train.seed", &seed.to_string()).expect("seed");
        c.set("train.iterations", "3").expect("iterations");
        let (_dir, r, events) = run(c, backend.clone()).await;
        r.expect("run");
        // Wrong examples whose best sample is the forward pass's own text: the case where the
        // proposer used to read "wrong, the correct answer is <the same text>".
        for e in &events {
            if let Event::Sharpened { examples, .. } = e {
                own_best_for_wrong += examples
                    .iter()
                    .filter(|ex| !ex.correct && ex.best == Some(0))
                    .count();
            }
        }
        for r in proposal_requests(&backend) {
            let text = user_text(&r);
            // Layer 0's proposer is the one told about the second step.
            if !text.contains("read by a second step") {
                continue;
            }
            for (own, correction) in wrong_pairs(&text) {
                assert_ne!(own, correction, "in {text}");
                shown_wrong += 1;
            }
        }
    }
    assert!(
        own_best_for_wrong > 0,
        "no wrong example kept its own text: the check did not bite"
    );
    assert!(
        shown_wrong > 0,
        "no layer-0 example was shown with a better text"
    );
}

#[tokio::test]
async fn a_proposal_prompt_too_long_for_the_context_drops_examples() {
    // Long inputs make every shown example cost many tokens; the context holds the forward
    // calls and a proposal prompt with one example, not with two.
    let long = " word".repeat(60);
    let backend = scripted()
        .on_generate(move |r, _| {
            if is_proposal(r) {
                format!(
                    " Pick the larger number, variant {}.",
                    (unit_hash(&format!("{}", r.seed)) * 100.0) as u32
                )
            } else {
                "ok".into()
            }
        })
        .with_context_size(260);
    let data = tempfile::tempdir().expect("tempdir");
    let path = data.path().join("long.json");
    let rows: Vec<serde_json::Value> = (0..12)
        .map(|i| {
            let (a, b) = (10 + i * 7 % 50, 60 - i * 3);
            let answer = if a > b { "(A)" } else { "(B)" };
            serde_json::json!({"question": format!("Which number is larger?{long}\nOptions:\n(A) {a}\n(B) {b}"), "answer": answer})
        })
        .collect();
    std::fs::write(&path, serde_json::to_string(&rows).expect("json")).expect("write");
    let text = tiny_config_text(1).replace(
        &common::example("data/tiny.json").display().to_string(),
        &path.display().to_string(),
    );
    let mut c = Config::parse(&text, std::path::Path::new("long.toml")).expect("config");
    c.set("train.batch_size", "4").expect("b");
    let (_dir, r, events) = run(c, backend.clone()).await;
    r.expect("the run does not abort");
    let dropped: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::CandidatesProposed {
                examples_dropped, ..
            } => Some(*examples_dropped),
            _ => None,
        })
        .collect();
    assert!(!dropped.is_empty());
    assert!(dropped.iter().all(|d| *d >= 1), "{dropped:?}");
    assert!(events.iter().any(
        |e| matches!(e, Event::Warning { message } if message.contains("left out of proposal prompts"))
    ));
    for r in proposal_requests(&backend) {
        let text = user_text(&r);
        assert_eq!(shown_inputs(&text).len(), 1, "{text}");
    }
}

#[tokio::test]
async fn exclude_wrong_hidden_keeps_the_text_that_led_to_an_error_out_of_the_posterior() {
    let mut checked = 0;
    for seed in 1..=4u64 {
        let mut c = tiny_config(2);
        c.set("train.seed", &seed.to_string()).expect("seed");
        c.set("train.exclude_wrong_hidden", "true").expect("option");
        let (_dir, r, events) = run(c, scripted()).await;
        r.expect("run");
        for e in &events {
            if let Event::Sharpened { examples, .. } = e {
                for ex in examples
                    .iter()
                    .filter(|x| !x.correct && x.samples.len() > 1)
                {
                    assert_eq!(ex.samples[0].weight, Some(0.0), "{ex:?}");
                    assert_ne!(ex.best, Some(0));
                    let w: f64 = ex.samples.iter().filter_map(|s| s.weight).sum();
                    assert!((w - 1.0).abs() < 1e-9);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0);
}
