//! The HTTP backend's response parsing on recorded bodies (`tests/data/openai/`): llama-cpp-python
//! (recorded live, with and without its echo fix) and vLLM (written to its documented schema).

mod common;

use dln::llm::openai::wire::{
    first_position_top, parse_body, score_from_echo, score_from_prompt_logprobs,
    CompletionResponse, SeamError,
};

fn load(name: &str) -> CompletionResponse {
    let path = common::fixture("openai").join(name);
    let bytes = std::fs::read(&path).expect("recorded body");
    parse_body(&bytes, name).expect("parses")
}

const PROMPT: &str = "The capital of France is Paris";
const TARGET_AT: usize = 24; // " Paris"

#[test]
fn llama_cpp_python_fixed_echo_matches_the_generated_logprob() {
    let gen = load("llama-cpp-python-top-logprobs.json");
    let top = first_position_top(&gen.choices[0]).expect("top");
    let paris = top
        .iter()
        .find(|(k, _)| k == " Paris")
        .map(|(_, v)| *v)
        .expect("\" Paris\" in the top 5 (keys are decoded text)");
    let echo = load("llama-cpp-python-echo-fixed.json");
    let s = score_from_echo(&echo.choices[0], PROMPT, TARGET_AT)
        .expect("score")
        .expect("located");
    assert_eq!(s.tokens, 1);
    assert!((s.logprob - paris).abs() < 1e-9, "{} vs {paris}", s.logprob);
    // Several tokens: " France is Paris".
    let s = score_from_echo(&echo.choices[0], PROMPT, 14)
        .expect("score")
        .expect("located");
    assert_eq!(s.tokens, 3);
    let usage = echo.usage.expect("usage");
    assert_eq!(usage.completion_tokens, 1, "scored with max_tokens 1");
}

#[test]
fn llama_cpp_python_upstream_echo_is_one_token_late() {
    let gen = load("llama-cpp-python-top-logprobs.json");
    let paris = gen.choices[0]
        .logprobs
        .as_ref()
        .expect("logprobs")
        .token_logprobs[0]
        .expect("value");
    let echo = load("llama-cpp-python-echo-upstream.json");
    let s = score_from_echo(&echo.choices[0], PROMPT, TARGET_AT)
        .expect("score")
        .expect("located");
    // What the probe sees: the echoed value of the same token is whole nats off.
    assert!((s.logprob - paris).abs() > 1.0, "{} vs {paris}", s.logprob);
}

#[test]
fn a_seam_inside_a_token_is_reported_not_guessed() {
    let echo = load("llama-cpp-python-echo-fixed.json");
    // "Par|is": the target would start inside the " Paris" token.
    let r = score_from_echo(&echo.choices[0], PROMPT, 27).expect("score");
    assert_eq!(r, Err(SeamError::Merged { at: 24 }));
}

#[test]
fn multi_token_verbalizer_positions_are_exact() {
    let echo = load("llama-cpp-python-echo-multitoken.json");
    let prompt = "Is it subjective or objective?\nAnswer: subjective";
    let at = prompt.len() - " subjective".len();
    let s = score_from_echo(&echo.choices[0], prompt, at)
        .expect("score")
        .expect("located");
    assert_eq!(s.tokens, 1);
    assert!((s.logprob - (-3.108630657196045)).abs() < 1e-12);
    // "Answer: subjective" spans 3 tokens.
    let s = score_from_echo(
        &echo.choices[0],
        prompt,
        prompt.len() - "Answer: subjective".len(),
    )
    .expect("score")
    .expect("located");
    assert_eq!(s.tokens, 3);
}

#[test]
fn vllm_echo_offsets_that_count_the_bos_text_are_corrected() {
    let echo = load("vllm-echo.json");
    let s = score_from_echo(&echo.choices[0], PROMPT, TARGET_AT)
        .expect("score")
        .expect("located");
    assert_eq!(s.tokens, 1);
    assert_eq!(s.logprob, -0.17578125);
    let s = score_from_echo(&echo.choices[0], PROMPT, 3)
        .expect("score")
        .expect("located");
    assert_eq!(s.tokens, 5);
    let want = -2.40625 - 0.10546875 - 0.48046875 - 0.62890625 - 0.17578125;
    assert!((s.logprob - want).abs() < 1e-12);
}

#[test]
fn vllm_prompt_logprobs_pick_the_prompts_own_tokens() {
    let r = load("vllm-prompt-logprobs.json");
    let entries = r.choices[0]
        .prompt_logprobs
        .clone()
        .expect("prompt_logprobs");
    let s = score_from_prompt_logprobs(&entries, PROMPT, TARGET_AT)
        .expect("score")
        .expect("located");
    assert_eq!(s.token_logprobs, vec![-0.17578125]);
    // " capital" is listed beside the top-ranked " first": the prompt's own token is taken.
    let s = score_from_prompt_logprobs(&entries, PROMPT, 3)
        .expect("score")
        .expect("located");
    assert_eq!(
        s.token_logprobs,
        vec![-2.40625, -0.10546875, -0.48046875, -0.62890625, -0.17578125]
    );
    // A target starting inside a token is reported.
    assert_eq!(
        score_from_prompt_logprobs(&entries, PROMPT, 26).expect("score"),
        Err(SeamError::Merged { at: 24 })
    );
}

#[test]
fn torn_bodies_are_errors() {
    let e = parse_body::<CompletionResponse>(b"{\"choices\": [{\"text\": \"a", "/completions")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("malformed response from /completions"), "{e}");
}
