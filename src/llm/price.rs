//! What a backend's tokens cost: a configured [`Price`] per million prompt and generated tokens,
//! and [`Priced`], the wrapper that adds the cost to a backend's [`Usage`] counters.
//!
//! The price is the user's (their provider's list price, in whatever currency they think in);
//! dln only multiplies. A wrapper rather than a field of each backend: the cost follows the
//! counters every backend already keeps, so the trainer's per-layer, per-operation accounting
//! (`UsageBook`) carries it without knowing prices exist.

use serde::{Deserialize, Serialize};

use super::{Backend, SharedBackend, Usage};

/// Price per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// Per million prompt tokens (every token sent, whether or not the server cached it).
    pub prompt: f64,
    /// Per million generated tokens.
    pub generated: f64,
}

impl Price {
    /// A price from a backend table's `prompt_price` / `generated_price`; `None` when neither
    /// is set (the backend is free).
    pub fn from_config(prompt: Option<f64>, generated: Option<f64>) -> Option<Price> {
        if prompt.is_none() && generated.is_none() {
            return None;
        }
        Some(Price {
            prompt: prompt.unwrap_or(0.0),
            generated: generated.unwrap_or(0.0),
        })
    }

    /// What `usage`'s tokens cost (its own `cost` ignored).
    pub fn cost(&self, usage: &Usage) -> f64 {
        let prompt = (usage.tokens_computed + usage.tokens_reused) as f64;
        (prompt * self.prompt + usage.tokens_generated as f64 * self.generated) / 1e6
    }

    /// A price must be a finite number, not below zero; `key` names the field in the message.
    pub fn check(value: Option<f64>, key: &str) -> Result<(), String> {
        match value {
            Some(v) if !v.is_finite() || v < 0.0 => Err(format!(
                "`{key}` must be a price per million tokens of 0 or more (got {v})"
            )),
            _ => Ok(()),
        }
    }
}

/// For `skip_serializing_if`: no cost recorded.
pub fn is_free(cost: &f64) -> bool {
    *cost == 0.0
}

/// A backend whose [`Usage`] also says what its tokens cost at `price`. Place it outside the
/// call cache: the cache's hits add no tokens, so they add no cost.
pub struct Priced {
    inner: SharedBackend,
    price: Price,
}

impl Priced {
    pub fn new(inner: SharedBackend, price: Price) -> Priced {
        Priced { inner, price }
    }
}

/// Pricing changes only the usage it reports; everything else is the inner backend's.
impl super::BackendLayer for Priced {
    fn inner(&self) -> &dyn Backend {
        self.inner.as_ref()
    }
    fn usage(&self) -> Usage {
        let mut u = self.inner.usage();
        u.cost = self.price.cost(&u);
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(computed: u64, reused: u64, generated: u64) -> Usage {
        Usage {
            tokens_computed: computed,
            tokens_reused: reused,
            tokens_generated: generated,
            ..Usage::default()
        }
    }

    #[test]
    fn cost_is_prompt_and_generated_tokens_at_their_price_per_million() {
        let p = Price {
            prompt: 0.15,
            generated: 0.60,
        };
        // 1.5M prompt tokens (1M computed + 0.5M reused) and 250k generated.
        let c = p.cost(&tokens(1_000_000, 500_000, 250_000));
        assert!((c - (1.5 * 0.15 + 0.25 * 0.60)).abs() < 1e-12, "{c}");
        assert_eq!(p.cost(&tokens(0, 0, 0)), 0.0);
    }

    #[test]
    fn a_price_needs_one_of_its_two_keys_and_must_not_be_negative() {
        assert_eq!(Price::from_config(None, None), None);
        assert_eq!(
            Price::from_config(None, Some(2.0)),
            Some(Price {
                prompt: 0.0,
                generated: 2.0
            })
        );
        assert!(Price::check(Some(-1.0), "prompt_price").is_err());
        assert!(Price::check(Some(f64::NAN), "prompt_price").is_err());
        assert!(Price::check(Some(0.0), "prompt_price").is_ok());
    }

    #[test]
    fn usage_differences_carry_the_cost_of_the_calls_between() {
        let p = Price {
            prompt: 1.0,
            generated: 2.0,
        };
        let mut before = tokens(100, 0, 10);
        before.cost = p.cost(&before);
        let mut after = tokens(300, 0, 60);
        after.cost = p.cost(&after);
        let d = after.since(&before);
        assert_eq!(d.billed_tokens(), 250);
        assert!((d.cost - (200.0 + 100.0) / 1e6).abs() < 1e-15);
        let mut sum = before;
        sum.add(&d);
        assert!((sum.cost - after.cost).abs() < 1e-15);
    }

    #[test]
    fn a_priced_backend_answers_what_its_inner_backend_answers() {
        let inner: SharedBackend =
            std::sync::Arc::new(crate::llm::scripted::ScriptedBackend::new());
        let priced = Priced::new(
            inner.clone(),
            Price {
                prompt: 1.0,
                generated: 1.0,
            },
        );
        let messages = [crate::llm::ChatMessage {
            role: "user".into(),
            content: "hi".into(),
        }];
        // A chat forward template is scored through the priced wrapper as through its engine.
        assert_eq!(
            priced.chat_text(&messages, "Answer:").unwrap(),
            inner.chat_text(&messages, "Answer:").unwrap()
        );
        assert_eq!(priced.answered(), inner.answered());
    }

    /// A GGUF named by a priced backend and bare by another layer is one engine: its tokens
    /// count once, at the price (they were counted twice, once through each handle).
    #[tokio::test]
    async fn one_engine_behind_a_priced_and_a_bare_handle_counts_once() {
        let engine: SharedBackend =
            std::sync::Arc::new(crate::llm::scripted::ScriptedBackend::new());
        let price = Price {
            prompt: 1.0,
            generated: 1.0,
        };
        let priced: SharedBackend = std::sync::Arc::new(Priced::new(engine.clone(), price));
        let request = crate::llm::ScoreRequest {
            context: "Q: 2+2? A:".into(),
            target: " 4".into(),
        };
        engine.score(vec![request.clone()]).await.unwrap();
        priced.score(vec![request]).await.unwrap();
        let once = engine.usage();
        assert_eq!(once.calls, 2);
        let total = crate::llm::engines_usage([&priced, &engine, &priced]);
        assert_eq!(total.tokens_computed, once.tokens_computed);
        assert_eq!(total.calls, 2);
        assert!((total.cost - price.cost(&once)).abs() < 1e-15);
        // Two engines are two.
        let other: SharedBackend =
            std::sync::Arc::new(crate::llm::scripted::ScriptedBackend::new());
        assert_eq!(crate::llm::engines_usage([&engine, &other]).calls, 2);
    }
}
