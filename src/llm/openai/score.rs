//! Exact scores from a server's prompt log-probabilities: `log p(target | context)` with the
//! target's tokens located by their offsets, and the two-request difference when the server's
//! tokenizer merges the context's end with the target's start.

use serde_json::Value;

use super::wire::{
    self, score_from_echo, score_from_prompt_logprobs, CompletionRequest, SeamError,
};
use super::{OpenAiBackend, ScoringMode};
use crate::llm::{LlmError, LlmResult, Score, ScoreRequest};

impl OpenAiBackend {
    /// The server's log-probabilities of the prompt `text`'s tokens, in the probed mode (one
    /// request; [`PromptScores::from`] reads any suffix of the prompt out of it).
    async fn prompt_scores(&self, text: &str) -> LlmResult<PromptScores> {
        let mut req = CompletionRequest::scoring(&self.model, text);
        match self.mode {
            ScoringMode::Echo => {
                req.echo = true;
                req.logprobs = Some(1);
                let mut resp = self.completion(&req).await?;
                Ok(PromptScores::Echo(resp.choices.swap_remove(0)))
            }
            ScoringMode::PromptLogprobs => {
                req.prompt_logprobs = Some(0);
                let resp = self.completion(&req).await?;
                let entries = resp.choices[0]
                    .prompt_logprobs
                    .clone()
                    .or(resp.prompt_logprobs)
                    .ok_or_else(|| {
                        LlmError::Backend(
                            "the server answered without `prompt_logprobs`; it was probed as \
                             supporting them (delete the probe cache in the data directory's \
                             openai-probe/ to probe again)"
                                .into(),
                        )
                    })?;
                Ok(PromptScores::Prompt(entries))
            }
            other => Err(LlmError::InvalidRequest(format!(
                "this server gives no prompt log-probabilities (scoring mode {}): free-text \
                 scores (hidden layers, the posterior prior, free-text answers) need a server \
                 with echo+logprobs or vLLM's prompt_logprobs; use a classification task with \
                 `train.include_prior = false` and one layer, or another server",
                other.name()
            ))),
        }
    }

    /// `log p(target | context)`, exactly: the target's tokens located by offset. When the
    /// server's tokenizer merges the context's end with the target's start into one token, the
    /// score is the difference of two exact prompt scores, `log p(tail + target | head) -
    /// log p(tail | head)` where `tail` is the context's part of the merged token.
    pub(super) async fn score_one(&self, r: &ScoreRequest) -> LlmResult<Score> {
        if r.target.is_empty() {
            return Err(LlmError::EmptyTarget);
        }
        if r.context.is_empty() {
            return Err(LlmError::InvalidRequest(
                "an HTTP server gives no log-probability for the first token of a prompt: \
                 scoring needs a non-empty context"
                    .into(),
            ));
        }
        let text = format!("{}{}", r.context, r.target);
        let joint = self.prompt_scores(&text).await?;
        let out = match joint.from(&text, r.context.len())? {
            Ok(s) => s,
            Err(SeamError::Merged { at }) => {
                let whole = joint.from(&text, at)?;
                let tail = self.prompt_scores(&r.context).await?.from(&r.context, at)?;
                match (whole, tail) {
                    (Ok(mut w), Ok(t)) => {
                        if let Some(first) = w.token_logprobs.first_mut() {
                            *first -= t.logprob;
                        }
                        w.logprob -= t.logprob;
                        w
                    }
                    _ => {
                        return Err(LlmError::Backend(format!(
                            "cannot locate the target's tokens in the server's tokenization \
                             of {:?}",
                            cut(&text)
                        )))
                    }
                }
            }
            Err(e) => {
                return Err(LlmError::Backend(format!(
                    "cannot locate the target's tokens ({e:?}) in the server's tokenization of \
                     {:?}",
                    cut(&text)
                )))
            }
        };
        Ok(out)
    }
}

/// One answer with a prompt's log-probabilities.
enum PromptScores {
    Echo(wire::CompletionChoice),
    Prompt(Vec<Option<serde_json::Map<String, Value>>>),
}

impl PromptScores {
    /// The score of the prompt's tokens from byte `from` on (`text` is the prompt sent).
    fn from(&self, text: &str, from: usize) -> LlmResult<Result<Score, SeamError>> {
        match self {
            PromptScores::Echo(c) => score_from_echo(c, text, from),
            PromptScores::Prompt(e) => score_from_prompt_logprobs(e, text, from),
        }
    }
}

fn cut(s: &str) -> String {
    let n = s.chars().count();
    if n <= 80 {
        s.to_string()
    } else {
        let tail: String = s.chars().skip(n - 80).collect();
        format!("…{tail}")
    }
}
