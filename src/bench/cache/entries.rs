//! The synthetic entries both stores are filled with and asked for, shaped like a real run's:
//! class distributions, generations with their token log-probabilities, and scores.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::MODEL;
use crate::llm::cache::{call_key, decode, encode, Key};
use crate::llm::{
    ClassDistribution, ClassifyRequest, GenerateRequest, Generation, Prompt, Score, ScoreRequest,
    VerbalizerReduce,
};

pub(super) const WORDS: &[&str] = &[
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
    "sentence",
    "review",
    "movie",
    "great",
    "terrible",
    "step",
    "left",
    "right",
    "turn",
    "around",
    "date",
    "today",
    "yesterday",
    "object",
    "order",
    "first",
    "last",
    "positive",
    "negative",
];

pub(super) fn text(rng: &mut ChaCha8Rng, chars: usize) -> String {
    let mut s = String::with_capacity(chars + 12);
    while s.len() < chars {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
    }
    s
}

pub(super) fn logprobs(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| -rng.gen::<f64>() * 3.0).collect()
}

/// A request of the workload, typed as the cache hashes it.
pub(super) enum Req {
    Classify(ClassifyRequest),
    Generate(GenerateRequest),
    Score(ScoreRequest),
}

impl Req {
    pub(super) fn op(&self) -> &'static str {
        match self {
            Req::Classify(_) => "classify",
            Req::Generate(_) => "generate",
            Req::Score(_) => "score",
        }
    }

    pub(super) fn key(&self) -> Key {
        match self {
            Req::Classify(r) => call_key(MODEL, self.op(), r),
            Req::Generate(r) => call_key(MODEL, self.op(), r),
            Req::Score(r) => call_key(MODEL, self.op(), r),
        }
    }
}

/// The request of entry `i`, the same in every process: 7 in 10 classify, 2 generate, 1 score.
pub(super) fn request(i: usize) -> Req {
    let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
    let context = format!("{i} {}", text(&mut rng, 600));
    match i % 10 {
        0..=6 => Req::Classify(ClassifyRequest {
            context,
            classes: vec![vec!["yes".into()], vec!["no".into()]],
            reduce: VerbalizerReduce::Sum,
        }),
        7 | 8 => Req::Generate(GenerateRequest {
            seed: i as u64,
            ..GenerateRequest::greedy(Prompt::raw(context), 128, vec!["\n\n".into()])
        }),
        _ => Req::Score(ScoreRequest {
            context,
            target: text(&mut rng, 300),
        }),
    }
}

/// An answer of the workload, typed.
pub(super) enum Answer {
    Classify(ClassDistribution),
    Generate(Vec<Generation>),
    Score(Score),
}

impl Answer {
    /// As the old cache wrote it.
    pub(super) fn json(&self) -> String {
        match self {
            Answer::Classify(a) => serde_json::to_string(a),
            Answer::Generate(a) => serde_json::to_string(a),
            Answer::Score(a) => serde_json::to_string(a),
        }
        .unwrap_or_default()
    }

    /// As the SQLite cache stores it.
    pub(super) fn stored(&self) -> Vec<u8> {
        match self {
            Answer::Classify(a) => encode(a),
            Answer::Generate(a) => encode(a),
            Answer::Score(a) => encode(a),
        }
        .unwrap_or_default()
    }
}

/// The answer to entry `i`'s request.
pub(super) fn answer(i: usize, req: &Req) -> Answer {
    let mut rng = ChaCha8Rng::seed_from_u64(i as u64 | 1 << 40);
    match req {
        Req::Classify(_) => {
            let p: f64 = rng.gen();
            let probs = vec![p, 1.0 - p];
            Answer::Classify(ClassDistribution {
                log_probs: probs.iter().map(|p| p.ln()).collect(),
                probs,
            })
        }
        Req::Generate(_) => {
            let tokens = rng.gen_range(40..120);
            Answer::Generate(vec![Generation {
                text: text(&mut rng, tokens * 5),
                tokens: tokens as u32,
                token_logprobs: Some(logprobs(&mut rng, tokens)),
                cut: rng.gen_bool(0.2),
            }])
        }
        Req::Score(_) => {
            let tokens = rng.gen_range(60..100);
            let token_logprobs = logprobs(&mut rng, tokens);
            Answer::Score(Score {
                logprob: token_logprobs.iter().sum(),
                token_logprobs,
                tokens: tokens as u32,
            })
        }
    }
}

/// Entry `i`: operation, key, answer.
pub(super) fn entry(i: usize) -> (&'static str, Key, Answer) {
    let req = request(i);
    let a = answer(i, &req);
    (req.op(), req.key(), a)
}

/// Decodes a stored answer as the cache would for the entry's operation; false if it does not
/// decode.
pub(super) fn decode_stored(op: &str, bytes: &[u8]) -> bool {
    match op {
        "classify" => decode::<ClassDistribution>(bytes).is_some(),
        "generate" => decode::<Vec<Generation>>(bytes).is_some(),
        _ => decode::<Score>(bytes).is_some(),
    }
}

pub(super) fn decode_value(op: &str, v: serde_json::Value) -> bool {
    match op {
        "classify" => serde_json::from_value::<ClassDistribution>(v).is_ok(),
        "generate" => serde_json::from_value::<Vec<Generation>>(v).is_ok(),
        _ => serde_json::from_value::<Score>(v).is_ok(),
    }
}

/// The requests the lookups ask (random entries, the same on both sides).
pub(super) fn lookup_requests(entries: usize, lookups: usize) -> Vec<Req> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..lookups)
        .map(|_| request(rng.gen_range(0..entries)))
        .collect()
}
