//! Exact scores from a server's prompt log-probabilities: `log p(target | context)` with the
//! target's tokens located by their offsets, and the two-request difference when the server's
//! tokenizer merges the context's end with the target's start.

use serde_json::Value;

use futures::future::try_join_all;

use super::wire::{
    self, score_from_echo, score_from_prompt_logprobs, CompletionRequest, SeamError,
};
use super::{prefix_order, OpenAiBackend, ScoringMode};
use crate::llm::{LlmError, LlmResult, Score, ScoreRequest};

impl OpenAiBackend {
    /// The server's log-probabilities of each prompt's tokens, in the probed mode, in the
    /// prompts' order ([`PromptScores::from`] reads any suffix of a prompt out of its answer).
    /// Prompts go out in prefix order, several to a request (`prompt` as an array) where the
    /// probe found the server answers arrays, up to `prompts_per_request`; requests go out
    /// concurrently.
    async fn prompt_scores(&self, texts: &[String]) -> LlmResult<Vec<PromptScores>> {
        if !self.mode.scores_text() {
            return Err(LlmError::InvalidRequest(format!(
                "this server gives no prompt log-probabilities (scoring mode {}): free-text \
                 scores (hidden layers, the posterior prior, free-text answers) need a server \
                 with echo+logprobs or vLLM's prompt_logprobs; use a classification task with \
                 `train.include_prior = false` and one layer, or another server",
                self.mode.name()
            )));
        }
        let order = prefix_order(texts, |t| t.as_str());
        let chunks: Vec<&[usize]> = order.chunks(self.prompts_per_request.max(1)).collect();
        let answers = try_join_all(chunks.iter().map(|chunk| {
            let prompts: Vec<&str> = chunk.iter().map(|i| texts[*i].as_str()).collect();
            self.prompt_scores_request(prompts)
        }))
        .await?;
        let mut out: Vec<Option<PromptScores>> = texts.iter().map(|_| None).collect();
        for (chunk, scores) in chunks.iter().zip(answers) {
            for (i, s) in chunk.iter().zip(scores) {
                out[*i] = Some(s);
            }
        }
        out.into_iter()
            .map(|o| o.ok_or_else(|| LlmError::Backend("lost a prompt's scores".into())))
            .collect()
    }

    /// One `/completions` request for `prompts` (a string for one, an array for several).
    async fn prompt_scores_request(&self, prompts: Vec<&str>) -> LlmResult<Vec<PromptScores>> {
        let mut req = CompletionRequest::scoring(&self.model, prompts[0]);
        if prompts.len() > 1 {
            req.prompt = Value::from(prompts.clone());
        }
        if self.mode == ScoringMode::Echo {
            req.echo = true;
            req.logprobs = Some(1);
        } else {
            req.prompt_logprobs = Some(0);
        }
        let mut resp = self.completion(&req).await?;
        if prompts.len() == 1 {
            return Ok(vec![self.one_prompt_scores(&mut resp, 0)?]);
        }
        if resp.choices.len() != prompts.len() {
            return Err(LlmError::Backend(format!(
                "the server answered {} choices for {} prompts in one request; set \
                 `prompts_per_request = 1` on the backend (or delete its probe cache in the data \
                 directory's openai-probe/ to probe again)",
                resp.choices.len(),
                prompts.len()
            )));
        }
        (0..prompts.len())
            .map(|i| self.one_prompt_scores(&mut resp, i))
            .collect()
    }

    /// The scores of the prompt at `index` of a request out of its response.
    fn one_prompt_scores(
        &self,
        resp: &mut wire::CompletionResponse,
        index: usize,
    ) -> LlmResult<PromptScores> {
        let pos = if resp.choices.len() == 1 {
            0
        } else {
            resp.choices
                .iter()
                .position(|c| c.index == index)
                .ok_or_else(|| {
                    LlmError::Backend(format!("the server's answer has no choice {index}"))
                })?
        };
        let choice = &mut resp.choices[pos];
        match self.mode {
            ScoringMode::Echo => Ok(PromptScores::Echo(choice.clone())),
            _ => {
                let entries = choice
                    .prompt_logprobs
                    .take()
                    .or_else(|| resp.prompt_logprobs.clone())
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
        }
    }

    /// `log p(target | context)` of every request, exactly: the target's tokens located by
    /// offset. When the server's tokenizer merges the context's end with the target's start
    /// into one token, the score is the difference of two exact prompt scores,
    /// `log p(tail + target | head) - log p(tail | head)` where `tail` is the context's part of
    /// the merged token (the contexts of such requests are scored in a second round).
    pub(super) async fn score_many(&self, requests: &[ScoreRequest]) -> LlmResult<Vec<Score>> {
        for r in requests {
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
        }
        let texts: Vec<String> = requests
            .iter()
            .map(|r| format!("{}{}", r.context, r.target))
            .collect();
        let joint = self.prompt_scores(&texts).await?;
        let mut out: Vec<Option<Score>> = requests.iter().map(|_| None).collect();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            match joint[i].from(&texts[i], r.context.len())? {
                Ok(s) => out[i] = Some(s),
                Err(SeamError::Merged { at }) => merged.push((i, at)),
                Err(e) => {
                    return Err(LlmError::Backend(format!(
                        "cannot locate the target's tokens ({e:?}) in the server's tokenization \
                         of {:?}",
                        cut(&texts[i])
                    )))
                }
            }
        }
        if !merged.is_empty() {
            let contexts: Vec<String> = merged
                .iter()
                .map(|(i, _)| requests[*i].context.clone())
                .collect();
            let tails = self.prompt_scores(&contexts).await?;
            for ((i, at), tail) in merged.into_iter().zip(tails) {
                let whole = joint[i].from(&texts[i], at)?;
                let tail = tail.from(&requests[i].context, at)?;
                out[i] = Some(match (whole, tail) {
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
                            cut(&texts[i])
                        )))
                    }
                });
            }
        }
        out.into_iter()
            .map(|o| o.ok_or_else(|| LlmError::Backend("lost a score".into())))
            .collect()
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
