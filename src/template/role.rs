//! What a template is for, and so which variables it may use.

use serde::{Deserialize, Serialize};

use crate::dln::events::TemplateRole;

/// The job of a template. Each role's renderer provides a fixed set of variables; a template
/// using any other name is rejected when loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `F(x; π)` of an output layer: `prompt`, `input`, and `examples` (k-shot: a list of
    /// `{input, target}` rendered before the input).
    Forward,
    /// `F_h(x; π)` of a hidden layer: `prompt`, `input`, and `examples` (the layer's learned
    /// demonstrations: a list of `{input, target}`, `target` being the best hidden text `h*`).
    ForwardHidden,
    /// `R(x, h)`: `input`, `h`.
    Residual,
    /// `B_π`: `prompt`, `backward_infos` (a list of `{input, h?, prediction, output, target,
    /// loss, correct}`; `output` is the reference's name for `prediction`), `message`, and
    /// `next_prompt` (the layer above's prompt, where there is one).
    ProposePrompt,
    /// The approximate posterior `q(h | x, y, h, π_next)`: `input`, `h`, `y`, `next_prompt`,
    /// `message`, and `prompt` (the prompt of the layer that writes the hidden text, so `q` can
    /// be written in that layer's forward format).
    ProposeHidden,
}

/// Names minijinja provides itself (functions, the loop variable); always allowed.
pub(crate) const GLOBALS: &[&str] = &["range", "dict", "namespace", "debug", "loop", "self"];

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Forward,
        Role::ForwardHidden,
        Role::Residual,
        Role::ProposePrompt,
        Role::ProposeHidden,
    ];

    /// The variables a renderer of this role provides.
    pub fn allowed(self) -> &'static [&'static str] {
        match self {
            Role::Forward => &["prompt", "input", "examples"],
            Role::ForwardHidden => &["prompt", "input", "examples"],
            Role::Residual => &["input", "h"],
            Role::ProposePrompt => &["prompt", "backward_infos", "message", "next_prompt"],
            Role::ProposeHidden => &["input", "h", "y", "next_prompt", "message", "prompt"],
        }
    }

    /// The role of a layer's replaceable template (the event vocabulary's [`TemplateRole`]);
    /// a forward template is `ForwardHidden` on a hidden layer.
    pub fn for_layer(role: TemplateRole, hidden_layer: bool) -> Role {
        match role {
            TemplateRole::Forward if hidden_layer => Role::ForwardHidden,
            TemplateRole::Forward => Role::Forward,
            TemplateRole::Residual => Role::Residual,
            TemplateRole::ProposePrompt => Role::ProposePrompt,
            TemplateRole::ProposeHidden => Role::ProposeHidden,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Forward => "forward",
            Role::ForwardHidden => "forward_hidden",
            Role::Residual => "residual",
            Role::ProposePrompt => "propose_prompt",
            Role::ProposeHidden => "propose_hidden",
        })
    }
}
