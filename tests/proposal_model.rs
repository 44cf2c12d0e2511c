//! The built-in generation templates on the real SmolLM2-135M-Instruct model: the proposal
//! template's output parses into new instructions (not echoes, not sentences about the
//! instruction), and the hidden-state templates produce text.

mod common;

use dln::llm::{Backend, GenerateRequest};
use dln::template::{parse_proposal, Template};
use serde_json::{json, Value};

use common::{block_on, embedded};

fn template(name: &str) -> Template {
    // TEMPLATE_DIR lets a person try edited templates against the model without rebuilding.
    match std::env::var("TEMPLATE_DIR") {
        Ok(dir) => Template::load(&std::path::Path::new(&dir).join(format!("{name}.toml")))
            .expect("template file"),
        Err(_) => Template::builtin(name).expect("builtin"),
    }
}

/// `n` samples at the reference's proposal temperature, messages cycled, one seed each.
fn sample(t: &Template, ctx: impl Fn(usize) -> Value, n: usize) -> Vec<String> {
    let requests = (0..n)
        .map(|i| {
            let text = t.render(&ctx(i)).expect("render");
            let mut r = GenerateRequest::greedy(t.prompt(text), 80, t.stop.clone());
            r.temperature = 0.7;
            r.top_p = 0.95;
            r.seed = i as u64;
            r
        })
        .collect();
    let out = block_on(embedded().generate(requests)).expect("generate");
    out.into_iter().map(|mut s| s.remove(0).text).collect()
}

fn info(input: &str, prediction: &str, target: &str) -> Value {
    let loss = if dln::loss::exact_match(prediction, target) {
        0.0
    } else {
        1.0
    };
    json!({"input": input, "prediction": prediction, "output": prediction, "target": target,
           "loss": loss, "correct": loss == 0.0})
}

fn check_proposals(current: &str, infos: Value) -> usize {
    let t = template("propose_prompt");
    let texts = sample(
        &t,
        |i| json!({"prompt": current, "backward_infos": infos, "message": t.message(i)}),
        8,
    );
    let mut parsed = 0;
    for text in &texts {
        let p = parse_proposal(text, current);
        eprintln!("raw: {text:?}\n  -> {p:?}");
        if let Some(p) = p {
            assert_ne!(p.to_lowercase(), current.to_lowercase());
            parsed += 1;
        }
    }
    eprintln!("{parsed}/8 proposals parsed for {current:?}");
    parsed
}

#[test]
fn smollm2_proposals_parse_into_instructions() {
    let sentiment = json!([
        info(
            "The soup was cold and the waiter ignored us.",
            "positive",
            "negative"
        ),
        info("Lovely staff and fresh bread.", "positive", "positive"),
        info(
            "The charger stopped working after a week.",
            "positive",
            "negative"
        ),
        info("I laughed out loud three times.", "negative", "positive"),
    ]);
    let navigate = json!([
        info("If you follow these instructions, do you return to the starting point? Always face forward. Take 3 steps left. Take 3 steps right.\nOptions:\n- Yes\n- No", "No", "Yes"),
        info("If you follow these instructions, do you return to the starting point? Take 2 steps. Turn around. Take 5 steps.\nOptions:\n- Yes\n- No", "No", "No"),
        info("If you follow these instructions, do you return to the starting point? Always face forward. Take 4 steps forward. Take 1 step left.\nOptions:\n- Yes\n- No", "Yes", "No"),
    ]);
    let a = check_proposals("Classify the review.", sentiment);
    let b = check_proposals("Answer Yes or No.", navigate);
    assert!(
        a + b >= 8,
        "at least half of the proposals should parse ({a}/8, {b}/8)"
    );
}

#[test]
fn smollm2_hidden_templates_produce_thoughts() {
    let input = "If you follow these instructions, do you return to the starting point? Always face forward. Take 3 steps left. Take 3 steps right.\nOptions:\n- Yes\n- No";
    let fh = template("forward_hidden");
    let h = sample(
        &fh,
        |_| json!({"prompt": "Track your position after each step.", "input": input}),
        2,
    );
    for t in &h {
        eprintln!("forward_hidden: {t:?}");
    }
    let ph = template("propose_hidden");
    let posterior = sample(
        &ph,
        |i| json!({"next_prompt": "Answer Yes or No.", "input": input, "h": h[0], "y": "Yes", "message": ph.message(i)}),
        3,
    );
    for t in &posterior {
        eprintln!("propose_hidden: {t:?}");
    }
    assert!(
        h.iter()
            .chain(&posterior)
            .filter(|t| t.trim().len() > 10)
            .count()
            >= 4
    );
}
