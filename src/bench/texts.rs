//! Deterministic benchmark texts: DLN-shaped prompts, inputs and hidden reasoning made of
//! ordinary English words from a fixed seed, so every run measures the same token streams
//! without any external data.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::llm::{Backend, LlmResult};

const WORDS: &[&str] = &[
    "the",
    "answer",
    "question",
    "model",
    "reason",
    "carefully",
    "before",
    "giving",
    "final",
    "statement",
    "whether",
    "true",
    "false",
    "because",
    "every",
    "example",
    "shows",
    "that",
    "a",
    "small",
    "number",
    "of",
    "people",
    "walked",
    "to",
    "river",
    "and",
    "counted",
    "stones",
    "when",
    "sun",
    "was",
    "high",
    "over",
    "hills",
    "think",
    "about",
    "step",
    "by",
    "it",
    "is",
    "important",
    "read",
    "each",
    "word",
    "then",
    "decide",
    "which",
    "option",
    "best",
    "fits",
    "context",
    "given",
    "above",
    "if",
    "unsure",
    "choose",
    "most",
    "likely",
    "label",
    "simple",
    "rules",
    "apply",
    "here",
    "only",
    "one",
    "can",
    "be",
    "correct",
    "so",
    "check",
    "facts",
    "against",
    "what",
    "you",
    "know",
    "world",
    "history",
    "science",
    "logic",
    "arithmetic",
];

/// Words from `seed` appended until the text has at least `tokens` tokens.
pub async fn words(backend: &dyn Backend, seed: u64, tokens: usize) -> LlmResult<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut text = String::new();
    let mut sentence_len = 0;
    while backend.count_tokens(&text).await? < tokens {
        let word = WORDS.choose(&mut rng).copied().unwrap_or("word");
        if sentence_len == 0 {
            if !text.is_empty() {
                text.push(' ');
            }
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                text.extend(first.to_uppercase());
                text.push_str(chars.as_str());
            }
        } else {
            text.push(' ');
            text.push_str(word);
        }
        sentence_len += 1;
        if sentence_len >= 12 {
            text.push('.');
            sentence_len = 0;
        }
    }
    Ok(text)
}

/// `n` texts of about `tokens` tokens each, seeded from `base`.
pub async fn many(
    backend: &dyn Backend,
    base: u64,
    n: usize,
    tokens: usize,
) -> LlmResult<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(words(backend, base * 1000 + i as u64, tokens).await?);
    }
    Ok(out)
}
