//! Generation over `/completions` or `/chat/completions`, one sample per request with its own
//! seed, stop strings applied by dln's rule.

use serde_json::Value;

use super::wire::{ChatMessageWire, ChatRequest, CompletionRequest};
use super::OpenAiBackend;
use crate::llm::stop::find_stop;
use crate::llm::{GenerateRequest, Generation, LlmError, LlmResult, Prompt};

impl OpenAiBackend {
    pub(super) async fn generate_one(&self, r: &GenerateRequest, j: u32) -> LlmResult<Generation> {
        let seed = sample_seed(r.seed, j);
        let temperature = r.temperature.max(0.0);
        let top_p = (temperature > 0.0 && r.top_p < 1.0).then_some(r.top_p);
        let use_chat = matches!(r.prompt, Prompt::Chat { .. }) || self.caps.chat_only;
        // Stops are sent to the server (it stops early, which is what makes them cheap); a
        // stop that fired inside the output's leading whitespace is not one by dln's rule, so
        // such an answer is asked again without stops and cut here.
        for with_stops in [true, false] {
            let stop = if with_stops {
                r.stop.clone()
            } else {
                Vec::new()
            };
            let (text, tokens, finish) = if use_chat {
                let (messages, prefix) = chat_messages(&r.prompt);
                let resp = self
                    .chat(&ChatRequest {
                        model: self.model.clone(),
                        messages,
                        max_tokens: r.max_tokens.max(1),
                        temperature,
                        top_p,
                        seed: Some(seed),
                        stop,
                        logprobs: false,
                        top_logprobs: None,
                    })
                    .await?;
                let c = &resp.choices[0];
                let mut text = c.message.content.clone().unwrap_or_default();
                // The answer may repeat the assistant prefix it was asked to continue.
                if !prefix.is_empty() {
                    if let Some(rest) = text.trim_start().strip_prefix(prefix.trim()) {
                        text = rest.to_string();
                    }
                }
                let tokens = resp.usage.map(|u| u.completion_tokens as u32).unwrap_or(0);
                (text, tokens, c.finish_reason.clone())
            } else {
                let Prompt::Raw { text: prompt } = &r.prompt else {
                    return Err(LlmError::InvalidRequest("expected a raw prompt".into()));
                };
                let resp = self
                    .completion(&CompletionRequest {
                        model: self.model.clone(),
                        prompt: Value::String(prompt.clone()),
                        max_tokens: r.max_tokens.max(1),
                        temperature,
                        top_p,
                        seed: Some(seed),
                        stop,
                        echo: false,
                        logprobs: None,
                        prompt_logprobs: None,
                    })
                    .await?;
                let c = &resp.choices[0];
                let tokens = resp.usage.map(|u| u.completion_tokens as u32).unwrap_or(0);
                (c.text.clone(), tokens, c.finish_reason.clone())
            };
            let stopped_in_lead = with_stops
                && !r.stop.is_empty()
                && finish.as_deref() == Some("stop")
                && text.trim().is_empty();
            if stopped_in_lead {
                continue;
            }
            let mut text = text;
            let stopped_here = find_stop(&text, &r.stop, 0);
            if let Some(cut) = stopped_here {
                text.truncate(cut);
            }
            // A server says `length` when the token budget ended the text.
            let cut = stopped_here.is_none() && finish.as_deref() == Some("length");
            return Ok(Generation {
                text,
                tokens,
                token_logprobs: None,
                cut,
            });
        }
        Err(LlmError::Backend(
            "generation gave no answer after asking without stop strings".into(),
        ))
    }
}

/// A chat prompt's messages for `/chat/completions`. The assistant prefix (which the embedded
/// engine writes into the assistant turn) cannot be pre-filled through the standard API, so it
/// closes the last user message instead; the answer is stripped of it if the model repeats it.
fn chat_messages(p: &Prompt) -> (Vec<ChatMessageWire>, String) {
    match p {
        Prompt::Raw { text } => (
            vec![ChatMessageWire {
                role: "user".into(),
                content: text.clone(),
            }],
            String::new(),
        ),
        Prompt::Chat {
            messages,
            assistant_prefix,
        } => {
            let mut out: Vec<ChatMessageWire> = messages
                .iter()
                .map(|m| ChatMessageWire {
                    role: m.role.clone(),
                    content: m.content.clone(),
                })
                .collect();
            if !assistant_prefix.trim().is_empty() {
                match out.iter_mut().rev().find(|m| m.role == "user") {
                    Some(m) => {
                        m.content.push_str("\n\n");
                        m.content.push_str(assistant_prefix.trim());
                    }
                    None => out.push(ChatMessageWire {
                        role: "user".into(),
                        content: assistant_prefix.trim().to_string(),
                    }),
                }
            }
            (out, assistant_prefix.clone())
        }
    }
}

/// The seed of sample `j` of a request: its own stream per `(seed, j)`, in the range every
/// server accepts (non-negative 31-bit).
fn sample_seed(seed: u64, j: u32) -> u64 {
    let mut z = seed ^ (u64::from(j)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) & 0x7FFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_seeds_differ_per_sample_and_fit_31_bits() {
        let a = sample_seed(42, 0);
        let b = sample_seed(42, 1);
        assert_ne!(a, b);
        assert_eq!(a, sample_seed(42, 0));
        assert!(a < (1 << 31) && b < (1 << 31));
    }

    #[test]
    fn chat_prompts_close_the_user_turn_with_the_prefix() {
        let p = Prompt::Chat {
            messages: vec![crate::llm::ChatMessage {
                role: "user".into(),
                content: "Improve this.".into(),
            }],
            assistant_prefix: "New instruction:".into(),
        };
        let (m, prefix) = chat_messages(&p);
        assert_eq!(m.len(), 1);
        assert!(m[0].content.ends_with("\n\nNew instruction:"));
        assert_eq!(prefix, "New instruction:");
    }
}
