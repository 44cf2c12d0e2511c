//! Class distributions in each scoring mode: every verbalizer variant scored exactly, the first
//! token's top log-probabilities, or a generated answer matched against the verbalizers.

use super::{wire, CompletionRequest, OpenAiBackend};
use crate::llm::{
    fold_classes, verbalizer_items, verbalizer_variants, ClassDistribution, ClassifyRequest,
    GenerateRequest, LlmResult, Prompt, ScoreRequest,
};

impl OpenAiBackend {
    /// Every verbalizer variant of every class scored exactly after its context (the rule the
    /// embedded engine keeps).
    pub(super) async fn classify_exact(
        &self,
        requests: &[ClassifyRequest],
    ) -> LlmResult<Vec<ClassDistribution>> {
        let items = verbalizer_items(requests)?;
        let scored: Vec<ScoreRequest> = items
            .iter()
            .map(|item| ScoreRequest {
                context: requests[item.request].context.clone(),
                target: item.variant.clone(),
            })
            .collect();
        let scores = self.score_many(&scored).await?;
        Ok(fold_classes(
            requests,
            &items,
            scores.into_iter().map(|s| s.logprob),
        ))
    }

    /// A class distribution from a generated answer (servers without log-probabilities): the
    /// class whose verbalizer the answer starts with gets almost all the mass; no match is
    /// uniform.
    pub(super) async fn classify_by_generation(
        &self,
        r: &ClassifyRequest,
    ) -> LlmResult<ClassDistribution> {
        let longest = r
            .classes
            .iter()
            .flatten()
            .map(|v| v.len())
            .max()
            .unwrap_or(1);
        let g = self
            .generate_one(
                &GenerateRequest::greedy(
                    Prompt::raw(r.context.clone()),
                    (longest as u32 / 2 + 4).min(32),
                    vec!["\n".into()],
                ),
                0,
            )
            .await?;
        let answer = crate::loss::normalize_answer(&g.text);
        let hit = r.classes.iter().position(|vs| {
            vs.iter().any(|v| {
                let v = crate::loss::normalize_answer(v);
                !v.is_empty() && (answer == v || answer.starts_with(&format!("{v} ")))
            })
        });
        let k = r.classes.len();
        let masses: Vec<f64> = (0..k)
            .map(|c| match hit {
                Some(h) if h == c => 0.0,
                Some(_) => -20.0,
                None => 0.0,
            })
            .collect();
        Ok(ClassDistribution::from_log_masses(&masses))
    }

    /// A class distribution from the top log-probabilities of the first answer token: each
    /// verbalizer variant's mass is the top entry that starts it (approximate for multi-token
    /// labels, which share their first token's mass); classes missing from the top-k get less
    /// than the smallest listed entry.
    pub(super) async fn classify_by_top(
        &self,
        r: &ClassifyRequest,
    ) -> LlmResult<ClassDistribution> {
        let mut req = CompletionRequest::scoring(&self.model, &r.context);
        req.logprobs = self.caps.top_logprobs;
        let resp = self.completion(&req).await?;
        let top = wire::first_position_top(&resp.choices[0])?;
        let floor = top.iter().map(|(_, v)| *v).fold(0.0f64, f64::min) - 1.0;
        let masses: Vec<f64> = r
            .classes
            .iter()
            .map(|vs| {
                let mut lps = Vec::new();
                for variant in verbalizer_variants(vs) {
                    let best = top
                        .iter()
                        .filter(|(k, _)| !k.trim().is_empty() && variant.starts_with(k.as_str()))
                        .max_by_key(|(k, _)| k.len())
                        .map(|(_, v)| *v);
                    if let Some(v) = best {
                        if !lps.contains(&v) {
                            lps.push(v);
                        }
                    }
                }
                if lps.is_empty() {
                    floor
                } else {
                    r.reduce.apply(&lps)
                }
            })
            .collect();
        Ok(ClassDistribution::from_log_masses(&masses))
    }
}
