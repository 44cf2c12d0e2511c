//! The OpenAI HTTP API's request and response shapes, and the pure functions that turn a
//! response into scores: no I/O here, so every shape (llama.cpp server, vLLM, OpenAI) is tested
//! against recorded bodies.
//!
//! Offsets: `text_offset` counts characters (Unicode scalar values) of the prompt as the server
//! saw it (Python `str` indices on llama-cpp-python and vLLM), never bytes; every function here
//! converts before comparing with Rust byte offsets.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::llm::{LlmError, LlmResult, Score};

/// The body of `POST /completions` (only the fields dln sends; absent ones are left out so
/// strict servers do not refuse them).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CompletionRequest {
    pub model: String,
    /// Text, or token ids.
    pub prompt: Value,
    pub max_tokens: u32,
    pub temperature: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub echo: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u32>,
    /// vLLM's log-probabilities of the prompt's own tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_logprobs: Option<u32>,
}

impl CompletionRequest {
    /// A request that scores `prompt` and generates as little as the server allows:
    /// `max_tokens: 1`, since 0 means *unlimited* on llama-cpp-python.
    pub fn scoring(model: &str, prompt: &str) -> Self {
        CompletionRequest {
            model: model.to_string(),
            prompt: Value::String(prompt.to_string()),
            max_tokens: 1,
            temperature: 0.0,
            top_p: None,
            seed: None,
            stop: Vec::new(),
            echo: false,
            logprobs: None,
            prompt_logprobs: None,
        }
    }
}

/// One message of `POST /chat/completions`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatMessageWire {
    pub role: String,
    pub content: String,
}

/// The body of `POST /chat/completions`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessageWire>,
    pub max_tokens: u32,
    pub temperature: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub logprobs: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
}

/// The `logprobs` object of a completion choice (the legacy completions shape).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct CompletionLogprobs {
    #[serde(default)]
    pub tokens: Vec<String>,
    #[serde(default)]
    pub token_logprobs: Vec<Option<f64>>,
    #[serde(default)]
    pub text_offset: Vec<usize>,
    /// One map per token from decoded token text (" positive") to its log-probability.
    #[serde(default)]
    pub top_logprobs: Vec<Option<serde_json::Map<String, Value>>>,
}

/// One choice of a completion response.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionChoice {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub index: usize,
    #[serde(default)]
    pub logprobs: Option<CompletionLogprobs>,
    /// vLLM: one entry per prompt token (`null` for the first), each a map from token id (as a
    /// string) to `{logprob, rank, decoded_token}`.
    #[serde(default)]
    pub prompt_logprobs: Option<Vec<Option<serde_json::Map<String, Value>>>>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// Token counts the server reports.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
pub struct UsageWire {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// A completion response.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionResponse {
    pub choices: Vec<CompletionChoice>,
    #[serde(default)]
    pub usage: Option<UsageWire>,
    /// vLLM puts `prompt_logprobs` here in some versions instead of on the choice.
    #[serde(default)]
    pub prompt_logprobs: Option<Vec<Option<serde_json::Map<String, Value>>>>,
}

/// The `logprobs` of a chat choice.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ChatLogprobs {
    #[serde(default)]
    pub content: Option<Vec<ChatTokenLogprob>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatTokenLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default)]
    pub top_logprobs: Vec<ChatTopLogprob>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatTopLogprob {
    pub token: String,
    pub logprob: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatChoice {
    pub message: ChatMessageOut,
    #[serde(default)]
    pub logprobs: Option<ChatLogprobs>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessageOut {
    #[serde(default)]
    pub content: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatResponse {
    pub choices: Vec<ChatChoice>,
    #[serde(default)]
    pub usage: Option<UsageWire>,
}

/// Parses a response body, naming the endpoint in the error (never a panic on a torn body).
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> LlmResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        let cut: String = String::from_utf8_lossy(body).chars().take(200).collect();
        LlmError::Backend(format!(
            "malformed response from {what} ({e}); the body began with {cut:?}"
        ))
    })
}

/// The byte offset in `text` of character index `chars` (the end of `text` when past it).
pub fn char_to_byte(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map(|(b, _)| b)
        .unwrap_or(text.len())
}

/// Where the target starts and which tokens are its own, from an echoed prompt's token offsets.
///
/// `prompt` is the full text sent (context + target); `target_start` the byte where the target
/// begins. A token belongs to the target when it starts at or after `target_start`; a token that
/// starts before it and reaches past it (the tokenizer merged the seam) makes the split inexact,
/// which is refused: the caller then asks with token ids, or says so.
pub fn target_token_range(
    prompt: &str,
    offsets_chars: &[usize],
    target_start: usize,
) -> Result<std::ops::Range<usize>, SeamError> {
    let offsets: Vec<usize> = offsets_chars
        .iter()
        .map(|c| char_to_byte(prompt, *c))
        .collect();
    for w in offsets.windows(2) {
        if w[1] < w[0] {
            return Err(SeamError::Unordered);
        }
    }
    let first = offsets
        .iter()
        .position(|o| *o >= target_start)
        .unwrap_or(offsets.len());
    if offsets.get(first) != Some(&target_start) {
        // The token before `first` starts before the target and runs into it.
        if first > 0 && target_start < prompt.len() {
            return Err(SeamError::Merged {
                at: offsets[first - 1],
            });
        }
        return Err(SeamError::NoTargetToken);
    }
    // Echo responses may carry generated tokens after the prompt: they start at or after the
    // prompt's end.
    let end = offsets
        .iter()
        .rposition(|o| *o < prompt.len())
        .map(|i| i + 1)
        .unwrap_or(first);
    if end <= first {
        return Err(SeamError::NoTargetToken);
    }
    Ok(first..end)
}

/// Why the target's tokens could not be located exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeamError {
    /// The tokenizer merged the end of the context with the start of the target into one
    /// token starting at byte `at`.
    Merged {
        at: usize,
    },
    NoTargetToken,
    Unordered,
}

/// A [`Score`] from an echoed completion (`echo: true, logprobs: k`), the target's tokens located
/// by their offsets.
pub fn score_from_echo(
    choice: &CompletionChoice,
    prompt: &str,
    target_start: usize,
) -> LlmResult<Result<Score, SeamError>> {
    let lp = choice.logprobs.as_ref().ok_or_else(|| {
        LlmError::Backend(
            "the server answered an echo request without `logprobs`; it cannot score prompts \
             (set `scoring = \"auto\"` on this backend to fall back)"
                .into(),
        )
    })?;
    if lp.text_offset.len() != lp.token_logprobs.len() {
        return Err(LlmError::Backend(format!(
            "inconsistent logprobs: {} offsets for {} log-probabilities",
            lp.text_offset.len(),
            lp.token_logprobs.len()
        )));
    }
    // Offsets count the decoded token texts from the first token on; a server that decodes a
    // BOS token into text (vLLM: "<|begin_of_text|>") counts it too, so they run ahead of the
    // prompt by that text. The tokens then spell that prefix followed by the echoed text.
    let concat: String = lp.tokens.concat();
    let shift = concat
        .strip_suffix(choice.text.as_str())
        .filter(|_| !choice.text.is_empty())
        .map(|p| p.chars().count())
        .unwrap_or(0);
    let offsets: Vec<usize> = lp
        .text_offset
        .iter()
        .map(|o| o.saturating_sub(shift))
        .collect();
    let range = match target_token_range(prompt, &offsets, target_start) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let mut token_logprobs = Vec::with_capacity(range.len());
    for i in range {
        match lp.token_logprobs[i] {
            Some(v) if v.is_finite() || v == f64::NEG_INFINITY => token_logprobs.push(v),
            _ => {
                return Err(LlmError::Backend(format!(
                    "the server gave no log-probability for prompt token {i}; it does not score \
                     echoed prompts (a llama.cpp server needs all logits kept: `--logits_all true`)"
                )))
            }
        }
    }
    Ok(Ok(score_of(token_logprobs)))
}

/// The entry of one `prompt_logprobs` position for the prompt's own token: with
/// `prompt_logprobs: 0` vLLM lists only that token; with more it lists the top ones too, and the
/// prompt's token is the one whose decoded text ends where the walk stands.
fn actual_entry<'a>(
    entry: &'a serde_json::Map<String, Value>,
    before: &str,
) -> Option<(&'a str, f64)> {
    let mut best: Option<(&str, f64)> = None;
    for v in entry.values() {
        let (Some(dec), Some(lp)) = (
            v.get("decoded_token").and_then(Value::as_str),
            v.get("logprob").and_then(Value::as_f64),
        ) else {
            continue;
        };
        if !dec.is_empty() && before.ends_with(dec) && best.is_none_or(|(b, _)| dec.len() > b.len())
        {
            best = Some((dec, lp));
        }
    }
    best
}

/// A [`Score`] from vLLM's `prompt_logprobs` (one entry per prompt token, `null` for the first,
/// each a map from token id to `{logprob, rank, decoded_token}`), the target's tokens located by
/// walking the decoded token texts back from the prompt's end.
pub fn score_from_prompt_logprobs(
    entries: &[Option<serde_json::Map<String, Value>>],
    prompt: &str,
    target_start: usize,
) -> LlmResult<Result<Score, SeamError>> {
    let mut end = prompt.len();
    let mut values: Vec<f64> = Vec::new();
    for (i, e) in entries.iter().enumerate().rev() {
        if end <= target_start {
            if end < target_start {
                return Ok(Err(SeamError::Merged { at: end }));
            }
            break;
        }
        let Some(e) = e else {
            if i == 0 {
                // The first prompt token has no log-probability: the target starts with it.
                return Ok(Err(SeamError::NoTargetToken));
            }
            return Err(malformed("prompt_logprobs (null inside the prompt)"));
        };
        let (dec, lp) = actual_entry(e, &prompt[..end]).ok_or_else(|| {
            LlmError::Backend(format!(
                "prompt_logprobs position {i}: no listed token ends the prompt at byte {end}; \
                 the decoded tokens do not spell the prompt"
            ))
        })?;
        end -= dec.len();
        values.push(lp);
    }
    if end != target_start {
        return Ok(Err(if end < target_start {
            SeamError::Merged { at: end }
        } else {
            SeamError::NoTargetToken
        }));
    }
    if values.is_empty() {
        return Ok(Err(SeamError::NoTargetToken));
    }
    values.reverse();
    Ok(Ok(score_of(values)))
}

/// The top log-probabilities at the first generated position (`logprobs: k`, no echo), keyed by
/// decoded token text.
pub fn first_position_top(choice: &CompletionChoice) -> LlmResult<Vec<(String, f64)>> {
    let lp = choice
        .logprobs
        .as_ref()
        .ok_or_else(|| malformed("completion without logprobs"))?;
    let top = lp
        .top_logprobs
        .first()
        .and_then(|t| t.as_ref())
        .ok_or_else(|| malformed("completion without top_logprobs"))?;
    Ok(top
        .iter()
        .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
        .collect())
}

fn score_of(token_logprobs: Vec<f64>) -> Score {
    Score {
        logprob: token_logprobs.iter().sum(),
        tokens: token_logprobs.len() as u32,
        token_logprobs,
    }
}

fn malformed(what: &str) -> LlmError {
    LlmError::Backend(format!("malformed response: {what}"))
}

/// The server's error message in an error body (`{"error": {"message": ..}}`, `{"detail": ..}`,
/// `{"message": ..}`, or the text itself), cut to a readable length.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let msg = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("detail"))
            .or_else(|| v.get("message"))
            .map(|m| match m {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    });
    let msg = msg.unwrap_or_else(|| text.trim().to_string());
    msg.chars().take(300).collect()
}

/// Whether an error message is a context-length refusal (each server words it its own way).
pub fn is_context_length(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("context length")
        || m.contains("context_length")
        || m.contains("maximum context")
        || m.contains("context window")
        || m.contains("exceed context")
        || (m.contains("too long") && m.contains("token"))
        || m.contains("requested tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_offsets_become_byte_offsets() {
        let s = "héllo wörld";
        assert_eq!(char_to_byte(s, 0), 0);
        assert_eq!(char_to_byte(s, 2), 3);
        assert_eq!(char_to_byte(s, 100), s.len());
    }

    #[test]
    fn target_tokens_are_found_by_offset() {
        let prompt = "Q: 2+2? A: four";
        // tokens: "Q", ":", " 2", "+", "2", "?", " A", ":", " four"
        let offs = [0, 1, 2, 4, 5, 6, 7, 9, 10];
        assert_eq!(target_token_range(prompt, &offs, 10), Ok(8..9));
        // A token straddling the seam is refused, not guessed.
        assert_eq!(
            target_token_range(prompt, &offs, 11),
            Err(SeamError::Merged { at: 10 })
        );
        // Generated tokens after the prompt are not the target's.
        let offs2 = [0, 1, 2, 4, 5, 6, 7, 9, 10, 15];
        assert_eq!(target_token_range(prompt, &offs2, 10), Ok(8..9));
    }

    #[test]
    fn errors_are_read_from_every_shape() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad key","type":"x"}}"#),
            "bad key"
        );
        assert_eq!(error_message(br#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_message(b"plain text"), "plain text");
        assert!(is_context_length(
            "This model's maximum context length is 2048 tokens"
        ));
        assert!(is_context_length(
            "Requested tokens (3000) exceed context window of 2048"
        ));
        assert!(!is_context_length("invalid model"));
    }
}
