//! The capability probe: what a server can score, asked once per server and model when a run
//! starts and cached in the data directory (`openai-probe/<hash>.json`).
//!
//! It tries, with tiny requests: echo + logprobs on `/completions` (and checks that the echoed
//! log-probabilities are aligned: the last prompt token's value must equal what the same
//! token gets when generated after the same prefix — llama-cpp-python up to at least 0.3.36 is
//! off by one position for models that add no BOS token, and such numbers would silently train on
//! noise), vLLM's `prompt_logprobs`, top log-probabilities of a generated token (and how many),
//! and whether only `/chat/completions` answers. [`ScoringMode::choose`] then picks the best mode
//! or refuses an explicit choice the server cannot honour.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::client::Transport;
use super::wire::{
    parse_body, score_from_echo, score_from_prompt_logprobs, ChatMessageWire, ChatRequest,
    ChatResponse, CompletionRequest, CompletionResponse,
};
use crate::llm::{LlmError, LlmResult};

/// How an HTTP backend scores text, best first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoringMode {
    /// Pick the best the probe found.
    #[default]
    Auto,
    /// `echo: true` + `logprobs`: exact log-probabilities of the prompt's tokens.
    Echo,
    /// vLLM's `prompt_logprobs`: exact too.
    PromptLogprobs,
    /// Top log-probabilities of the first generated token only: classes by their verbalizers'
    /// first tokens (approximate for multi-token labels), no free-text scores.
    TopLogprobs,
    /// No log-probabilities at all: candidates are ranked by accuracy.
    None,
}

impl ScoringMode {
    pub fn name(self) -> &'static str {
        match self {
            ScoringMode::Auto => "auto",
            ScoringMode::Echo => "echo",
            ScoringMode::PromptLogprobs => "prompt_logprobs",
            ScoringMode::TopLogprobs => "top_logprobs",
            ScoringMode::None => "none",
        }
    }

    /// Whether free-text `log p(target | context)` is exact in this mode.
    pub fn scores_text(self) -> bool {
        matches!(self, ScoringMode::Echo | ScoringMode::PromptLogprobs)
    }

    /// The mode to use: `requested` if the server supports it, the best supported one for
    /// `Auto`; an explicit choice the server cannot honour is an error that says what it can do.
    pub fn choose(requested: ScoringMode, caps: &Capabilities) -> LlmResult<ScoringMode> {
        let supported = |m: ScoringMode| match m {
            ScoringMode::Auto => true,
            ScoringMode::Echo => caps.echo,
            ScoringMode::PromptLogprobs => caps.prompt_logprobs,
            ScoringMode::TopLogprobs => caps.top_logprobs.is_some(),
            ScoringMode::None => true,
        };
        if requested == ScoringMode::Auto {
            for m in [
                ScoringMode::Echo,
                ScoringMode::PromptLogprobs,
                ScoringMode::TopLogprobs,
            ] {
                if supported(m) {
                    return Ok(m);
                }
            }
            return Ok(ScoringMode::None);
        }
        if supported(requested) {
            return Ok(requested);
        }
        let why = match requested {
            ScoringMode::Echo if caps.echo_misaligned => {
                "its echoed log-probabilities are shifted by one token (a known llama-cpp-python \
                 bug for models without a BOS token; scripts/openai-server starts it with the fix)"
            }
            ScoringMode::Echo => "it does not return log-probabilities of an echoed prompt",
            ScoringMode::PromptLogprobs => "it does not accept vLLM's `prompt_logprobs`",
            _ => "it returns no top log-probabilities",
        };
        Err(LlmError::InvalidRequest(format!(
            "scoring = \"{}\" was asked for, but the server cannot: {why}. It supports: {}. \
             Set `scoring = \"auto\"` on the backend to use the best of these",
            requested.name(),
            caps.summary()
        )))
    }
}

/// What a server was found to support.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// `/completions` answers at all.
    pub completions: bool,
    /// Only `/chat/completions` answers.
    pub chat_only: bool,
    /// Echo + logprobs gives aligned prompt log-probabilities.
    pub echo: bool,
    /// Echo + logprobs answered, but off by one token.
    #[serde(default)]
    pub echo_misaligned: bool,
    pub prompt_logprobs: bool,
    /// The largest `logprobs` (top-k) the server accepted on a generated token.
    pub top_logprobs: Option<u32>,
    /// `/completions` scores an array of prompts in one request, one choice each (vLLM, the
    /// OpenAI API); llama-cpp-python refuses more than one.
    #[serde(default)]
    pub prompt_arrays: bool,
}

impl Capabilities {
    /// One line for events and the UI.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.chat_only {
            parts.push("chat only".to_string());
        }
        if self.echo {
            parts.push("echo+logprobs".to_string());
        } else if self.echo_misaligned {
            parts.push("echo+logprobs (misaligned, unused)".to_string());
        }
        if self.prompt_logprobs {
            parts.push("prompt_logprobs".to_string());
        }
        if let Some(k) = self.top_logprobs {
            parts.push(format!("top_logprobs (up to {k})"));
        }
        if self.echo || self.prompt_logprobs {
            parts.push(if self.prompt_arrays {
                "prompt arrays".to_string()
            } else {
                "one prompt per request (no prompt arrays)".to_string()
            });
        }
        if parts.is_empty() {
            "no log-probabilities".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// The probe's cache file for a server and model.
pub fn cache_path(dir: &Path, base_url: &str, model: &str) -> PathBuf {
    let mut h = Sha256::new();
    h.update(base_url.as_bytes());
    h.update(b"\n");
    h.update(model.as_bytes());
    let hex = hex::encode(h.finalize());
    dir.join(format!("{}.json", &hex[..16]))
}

/// What a cached probe must have been written by to be trusted: probes of older builds lack
/// later questions (prompt arrays) and are asked again.
const PROBE_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Cached {
    #[serde(default)]
    version: u32,
    base_url: String,
    model: String,
    capabilities: Capabilities,
}

/// The cached capabilities, if this server and model were probed before.
pub fn load_cached(dir: &Path, base_url: &str, model: &str) -> Option<Capabilities> {
    let text = std::fs::read_to_string(cache_path(dir, base_url, model)).ok()?;
    let c: Cached = serde_json::from_str(&text).ok()?;
    (c.version == PROBE_VERSION && c.base_url == base_url && c.model == model)
        .then_some(c.capabilities)
}

/// Stores the capabilities (a failure to write only costs a probe next time).
pub fn store_cached(dir: &Path, base_url: &str, model: &str, caps: &Capabilities) {
    let c = Cached {
        version: PROBE_VERSION,
        base_url: base_url.to_string(),
        model: model.to_string(),
        capabilities: caps.clone(),
    };
    let path = cache_path(dir, base_url, model);
    // Atomic (a unique temporary, synced, renamed): two processes probing at once never share
    // a temporary, and a crash leaves the old answer or the new one.
    let written = std::fs::create_dir_all(dir)
        .map_err(|e| (dir.to_path_buf(), e))
        .and_then(|()| {
            crate::files::atomic_write(&path, &serde_json::to_vec_pretty(&c).unwrap_or_default())
        });
    if let Err((p, e)) = written {
        tracing::warn!("cannot cache the probe in {}: {e}", p.display());
    }
}

/// The probe's text: plain words whose tokens no tokenizer merges across the seam.
const PROBE_CONTEXT: &str = "The capital of France is";

/// Asks the server what it supports. Errors only for what no mode survives (a bad key, a wrong
/// model or URL, an unreachable server).
pub async fn probe(t: &Transport, model: &str) -> LlmResult<Capabilities> {
    let mut caps = Capabilities::default();
    // 1. A generated token with top log-probabilities (also: does /completions exist at all).
    let mut gen = CompletionRequest::scoring(model, PROBE_CONTEXT);
    gen.logprobs = Some(5);
    let first = match t.post("/completions", &gen).await {
        Ok(body) => Some(parse_body::<CompletionResponse>(&body, "/completions")?),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(e),
    };
    let Some(first) = first else {
        // Chat only (or a wrong URL: the chat request says which).
        let req = ChatRequest {
            model: model.to_string(),
            messages: vec![ChatMessageWire {
                role: "user".into(),
                content: "Say yes.".into(),
            }],
            max_tokens: 1,
            temperature: 0.0,
            top_p: None,
            seed: None,
            stop: Vec::new(),
            logprobs: false,
            top_logprobs: None,
        };
        let body = t.post("/chat/completions", &req).await?;
        parse_body::<ChatResponse>(&body, "/chat/completions")?;
        caps.chat_only = true;
        return Ok(caps);
    };
    caps.completions = true;
    let generated = first.choices.first().and_then(|c| {
        let lp = c.logprobs.as_ref()?;
        let tok = lp.tokens.first()?.clone();
        let v = (*lp.token_logprobs.first()?)?;
        let has_top = lp.top_logprobs.first().is_some_and(|t| t.is_some());
        Some((tok, v, has_top))
    });
    if let Some((_, _, true)) = &generated {
        caps.top_logprobs = Some(5);
        for k in [20u32, 10] {
            let mut r = gen.clone();
            r.logprobs = Some(k);
            if t.post("/completions", &r).await.is_ok() {
                caps.top_logprobs = Some(k);
                break;
            }
        }
    }
    // 2. Echo: score the context plus the token the server itself generated, and check the
    //    echoed value of that token against its generated log-probability.
    if let Some((tok, gen_lp, _)) = &generated {
        if !tok.is_empty() && !tok.contains('\u{fffd}') {
            let text = format!("{PROBE_CONTEXT}{tok}");
            let mut echo = CompletionRequest::scoring(model, &text);
            echo.echo = true;
            echo.logprobs = Some(1);
            if let Ok(body) = t.post("/completions", &echo).await {
                if let Ok(resp) = parse_body::<CompletionResponse>(&body, "/completions") {
                    if let Some(c) = resp.choices.first() {
                        if let Ok(Ok(s)) = score_from_echo(c, &text, PROBE_CONTEXT.len()) {
                            if s.tokens == 1 && aligned(s.logprob, *gen_lp) {
                                caps.echo = true;
                            } else {
                                caps.echo_misaligned = true;
                            }
                        }
                    }
                }
            }
            // 3. vLLM's prompt_logprobs.
            let mut pl = CompletionRequest::scoring(model, &text);
            pl.prompt_logprobs = Some(0);
            if let Ok(body) = t.post("/completions", &pl).await {
                if let Ok(resp) = parse_body::<CompletionResponse>(&body, "/completions") {
                    let entries = resp
                        .choices
                        .first()
                        .and_then(|c| c.prompt_logprobs.clone())
                        .or(resp.prompt_logprobs);
                    if let Some(entries) = entries {
                        if let Ok(Ok(s)) =
                            score_from_prompt_logprobs(&entries, &text, PROBE_CONTEXT.len())
                        {
                            caps.prompt_logprobs = aligned(s.logprob, *gen_lp);
                        }
                    }
                }
            }
            // 4. Several prompts in one request, in the mode just found.
            if caps.echo || caps.prompt_logprobs {
                caps.prompt_arrays = prompt_arrays(t, model, &caps, &text).await;
            }
        }
    }
    Ok(caps)
}

/// Whether `/completions` scores `[text, PROBE_CONTEXT]` in one request: two choices, by
/// `index`, each with its own prompt's log-probabilities. Asked once, without retries (a
/// server that refuses arrays may answer 500).
async fn prompt_arrays(t: &Transport, model: &str, caps: &Capabilities, text: &str) -> bool {
    let mut req = CompletionRequest::scoring(model, text);
    req.prompt = serde_json::json!([text, PROBE_CONTEXT]);
    if caps.echo {
        req.echo = true;
        req.logprobs = Some(1);
    } else {
        req.prompt_logprobs = Some(0);
    }
    let Ok(body) = t.post_once("/completions", &req).await else {
        return false;
    };
    let Ok(resp) = parse_body::<CompletionResponse>(&body, "/completions") else {
        return false;
    };
    answers_each_prompt(&resp, &[text, PROBE_CONTEXT], caps.echo)
}

/// Whether a response to an array of `prompts` has one choice per prompt (by `index`) whose
/// log-probabilities are of that prompt.
pub(super) fn answers_each_prompt(resp: &CompletionResponse, prompts: &[&str], echo: bool) -> bool {
    if resp.choices.len() != prompts.len() {
        return false;
    }
    prompts.iter().enumerate().all(|(i, p)| {
        let Some(c) = resp.choices.iter().find(|c| c.index == i) else {
            return false;
        };
        let n = p.chars().count();
        if echo {
            c.logprobs
                .as_ref()
                .is_some_and(|l| l.text_offset.iter().filter(|o| **o < n).count() > 1)
                && c.text.starts_with(p)
        } else {
            c.prompt_logprobs.as_ref().is_some_and(|e| e.len() > 1)
        }
    })
}

/// Whether two log-probabilities of the same token agree (servers compute them in float32,
/// sometimes in different batches).
fn aligned(a: f64, b: f64) -> bool {
    (a - b).abs() <= 0.02 + 0.01 * b.abs()
}

fn is_not_found(e: &LlmError) -> bool {
    e.to_string().contains("(404")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(echo: bool, pl: bool, top: Option<u32>) -> Capabilities {
        Capabilities {
            completions: true,
            echo,
            prompt_logprobs: pl,
            top_logprobs: top,
            ..Default::default()
        }
    }

    #[test]
    fn auto_picks_the_best_mode() {
        let c = caps(true, true, Some(5));
        assert_eq!(
            ScoringMode::choose(ScoringMode::Auto, &c).ok(),
            Some(ScoringMode::Echo)
        );
        let c = caps(false, true, Some(5));
        assert_eq!(
            ScoringMode::choose(ScoringMode::Auto, &c).ok(),
            Some(ScoringMode::PromptLogprobs)
        );
        let c = caps(false, false, Some(5));
        assert_eq!(
            ScoringMode::choose(ScoringMode::Auto, &c).ok(),
            Some(ScoringMode::TopLogprobs)
        );
        let c = caps(false, false, None);
        assert_eq!(
            ScoringMode::choose(ScoringMode::Auto, &c).ok(),
            Some(ScoringMode::None)
        );
    }

    #[test]
    fn an_explicit_mode_the_server_lacks_is_refused_clearly() {
        let c = Capabilities {
            echo_misaligned: true,
            ..caps(false, false, Some(5))
        };
        let e = ScoringMode::choose(ScoringMode::Echo, &c)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("shifted by one"), "{e}");
        assert!(e.contains("top_logprobs"), "{e}");
        assert!(e.contains("scoring = \"auto\""), "{e}");
        let e = ScoringMode::choose(ScoringMode::PromptLogprobs, &caps(true, false, None))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("prompt_logprobs"), "{e}");
        assert_eq!(
            ScoringMode::choose(ScoringMode::None, &caps(true, true, None)).ok(),
            Some(ScoringMode::None)
        );
    }

    #[test]
    fn cache_round_trips_per_server_and_model() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = caps(true, false, Some(20));
        store_cached(dir.path(), "http://a/v1", "m", &c);
        assert_eq!(load_cached(dir.path(), "http://a/v1", "m"), Some(c));
        assert_eq!(load_cached(dir.path(), "http://b/v1", "m"), None);
        assert_eq!(load_cached(dir.path(), "http://a/v1", "n"), None);
    }
}
