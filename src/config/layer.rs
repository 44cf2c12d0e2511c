//! `[[layers]]`: one table per language layer, from the input side (0) to the output layer.

use serde::{Deserialize, Serialize};

use super::Config;

/// Template choices of one layer: a built-in name (`forward`, `forward_hidden`, `residual`,
/// `propose_prompt`, `propose_hidden`), a `.toml` file, or a reference-layout `.yaml` file with
/// an optional `@version` suffix. Empty = the built-in that fits the layer's position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerTemplates {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub forward: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub residual: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub propose_prompt: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub propose_hidden: String,
}

/// One language layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayerConfig {
    /// The initial prompt `π`. Empty on the output layer = the task description.
    pub prompt: String,
    pub templates: LayerTemplates,
    /// Whether the loop may update this layer's prompt (see [`Config::trainable`]).
    pub trainable: bool,
    /// Pinned prompts are excluded from updates until unpinned (a person's decision).
    pub pinned: bool,
    /// Forward sampling (0 = greedy).
    pub forward_temperature: f32,
    /// Forward max tokens (the hidden text's length on a hidden layer, the answer's on the
    /// output layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_max_tokens: Option<u32>,
    /// Sampling temperature of the backward (proposal) LLM.
    pub backward_temperature: f32,
    pub backward_max_tokens: u32,
    /// Model of this layer's forward calls (default: `[model]`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Model of this layer's backward (proposal) calls (default: the forward model).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub backward_model: String,
    /// `k`: demonstrations the layer learns to show before the input (0 = instruction only).
    #[serde(skip_serializing_if = "is_zero")]
    pub demos: usize,
    /// The demonstrations to start from (an exported network's learned ones); empty = drawn
    /// from the training split (output layer) or grown from `h*` (hidden layers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub demonstrations: Vec<crate::dln::demos::Demo>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The one place a layer's defaults are written; serde fills absent keys from it.
impl Default for LayerConfig {
    fn default() -> Self {
        LayerConfig {
            prompt: String::new(),
            templates: LayerTemplates::default(),
            trainable: true,
            pinned: false,
            forward_temperature: 0.0,
            forward_max_tokens: None,
            backward_temperature: 0.7,
            backward_max_tokens: 96,
            model: String::new(),
            backward_model: String::new(),
            demos: 0,
            demonstrations: Vec::new(),
        }
    }
}

impl LayerConfig {
    /// Forward max tokens, defaulting by position: hidden layers write reasoning, the output
    /// layer a short answer.
    pub fn forward_max_tokens(&self, is_output: bool) -> u32 {
        self.forward_max_tokens
            .unwrap_or(if is_output { 16 } else { 64 })
    }
}

impl LayerConfig {
    /// Checks what serde cannot: temperatures and token budgets (`l`: the layer's index).
    pub(super) fn validate(&self, l: usize) -> Result<(), String> {
        use super::range::{count, non_negative, MAX_TOKENS};
        let key = |k: &str| format!("layers.{l}.{k}");
        non_negative(
            &key("forward_temperature"),
            self.forward_temperature.into(),
            100.0,
        )?;
        non_negative(
            &key("backward_temperature"),
            self.backward_temperature.into(),
            100.0,
        )?;
        count(
            &key("backward_max_tokens"),
            self.backward_max_tokens.into(),
            1,
            MAX_TOKENS,
        )?;
        if let Some(n) = self.forward_max_tokens {
            count(&key("forward_max_tokens"), n.into(), 1, MAX_TOKENS)?;
        }
        Ok(())
    }
}

impl Config {
    /// Whether the config lets the loop train layer `l`: the layer is `trainable` and
    /// `train.train_layers` (when given) selects it. Pins are the network's, not the config's.
    pub fn trainable(&self, l: usize) -> bool {
        let selected = self
            .train
            .train_layers
            .as_ref()
            .is_none_or(|tl| tl.contains(&l));
        self.layers.get(l).is_some_and(|c| c.trainable && selected)
    }
}
