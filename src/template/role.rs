//! What a template is for, and so which variables it may use. The one name of a template's job
//! everywhere: template files (`role = "…"`), configs (`templates.ROLE`), commands and events,
//! checkpoints, and the workbench's labels.

use serde::{Deserialize, Serialize};

/// The job of a template. Each role's renderer provides a fixed set of variables; a template
/// using any other name is rejected when loaded.
///
/// A layer has one template per *slot*: [`TemplateRole::Forward`], `Residual`, `ProposePrompt`
/// and `ProposeHidden` (see [`TemplateRole::of_layer`]); commands, events and checkpoints name
/// slots. [`TemplateRole::ForwardHidden`] is what the forward slot is on a hidden layer (it has no
/// k-shot examples); [`TemplateRole::at_layer`] says which role a slot's template is checked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateRole {
    /// `F(x; π)` of an output layer: `prompt`, `input`, and `examples` (k-shot: a list of
    /// `{input, target}` rendered before the input).
    Forward,
    /// `F_h(x; π)` of a hidden layer: `prompt`, `input`, and `examples` (the layer's learned
    /// demonstrations: a list of `{input, target}`, `target` being the best hidden text `h*`).
    ForwardHidden,
    /// `R(x, h)`: joins the input and the hidden text below this layer: `input`, `h`.
    Residual,
    /// `B_π`: `prompt`, `backward_infos` (a list of `{input, rest, h?, prediction, output,
    /// target, loss, correct}`; `output` is the reference's name for `prediction`, `rest` is
    /// the input without `shared_opening`), `shared_opening` (the opening sentences every input
    /// of the batch shares, or empty), `message`, and `next_prompt` (the layer above's prompt,
    /// where there is one), `feedback` (a person's notes in force on the layer: a list of
    /// `{text, input, example}`, `input` empty for a note on the whole layer; empty when there
    /// are none or `train.person_feedback` is off) and `metric_feedback` (false when
    /// `train.metric_feedback` is off: show no right/wrong and no correct answer).
    ProposePrompt,
    /// The approximate posterior `q(h | x, y, h, π_next)`: `input`, `h`, `y`, `next_prompt`,
    /// `message`, and `prompt` (the prompt of the layer that writes the hidden text, so `q` can
    /// be written in that layer's forward format), `feedback` (the notes in force on that
    /// layer and on this example, as for `ProposePrompt`).
    ProposeHidden,
}

/// Names minijinja provides itself (functions, the loop variable); always allowed.
pub(crate) const GLOBALS: &[&str] = &["range", "dict", "namespace", "debug", "loop", "self"];

impl TemplateRole {
    pub const ALL: [TemplateRole; 5] = [
        TemplateRole::Forward,
        TemplateRole::ForwardHidden,
        TemplateRole::Residual,
        TemplateRole::ProposePrompt,
        TemplateRole::ProposeHidden,
    ];

    /// The template slots of a layer above the first, in the order the workbench lists them.
    pub const SLOTS: [TemplateRole; 4] = [
        TemplateRole::Forward,
        TemplateRole::Residual,
        TemplateRole::ProposePrompt,
        TemplateRole::ProposeHidden,
    ];

    /// The template slots layer `layer` has: the first layer reads the input directly, so it
    /// has no residual and no hidden-proposal template.
    pub fn of_layer(layer: usize) -> &'static [TemplateRole] {
        const FIRST: [TemplateRole; 2] = [TemplateRole::Forward, TemplateRole::ProposePrompt];
        if layer == 0 {
            &FIRST
        } else {
            &TemplateRole::SLOTS
        }
    }

    /// Whether layer `layer` has this slot.
    pub fn is_slot_of(self, layer: usize) -> bool {
        TemplateRole::of_layer(layer).contains(&self.slot())
    }

    /// The slot a role's template fills (a hidden layer's forward template fills `Forward`).
    pub fn slot(self) -> TemplateRole {
        match self {
            TemplateRole::ForwardHidden => TemplateRole::Forward,
            r => r,
        }
    }

    /// The role a slot's template is checked as on a layer: the forward template of a hidden
    /// layer (`hidden`) is `ForwardHidden`. Also the name of the slot's built-in default.
    pub fn at_layer(self, hidden: bool) -> TemplateRole {
        match self.slot() {
            TemplateRole::Forward if hidden => TemplateRole::ForwardHidden,
            r => r,
        }
    }

    /// The role's one name (snake_case, as in files, configs, events and the workbench).
    pub fn name(self) -> &'static str {
        match self {
            TemplateRole::Forward => "forward",
            TemplateRole::ForwardHidden => "forward_hidden",
            TemplateRole::Residual => "residual",
            TemplateRole::ProposePrompt => "propose_prompt",
            TemplateRole::ProposeHidden => "propose_hidden",
        }
    }

    /// The variables a renderer of this role provides.
    pub fn allowed(self) -> &'static [&'static str] {
        match self {
            TemplateRole::Forward => &["prompt", "input", "examples"],
            TemplateRole::ForwardHidden => &["prompt", "input", "examples"],
            TemplateRole::Residual => &["input", "h"],
            TemplateRole::ProposePrompt => &[
                "prompt",
                "backward_infos",
                "shared_opening",
                "message",
                "next_prompt",
                "feedback",
                "metric_feedback",
            ],
            TemplateRole::ProposeHidden => &[
                "input",
                "h",
                "y",
                "next_prompt",
                "message",
                "prompt",
                "feedback",
            ],
        }
    }
}

impl std::fmt::Display for TemplateRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::TemplateRole;

    #[test]
    fn names_are_the_serialized_names() {
        for r in TemplateRole::ALL {
            let json = serde_json::to_value(r).expect("serializes");
            assert_eq!(json, serde_json::Value::String(r.name().to_string()));
            let back: TemplateRole = serde_json::from_value(json).expect("parses");
            assert_eq!(back, r);
        }
    }

    #[test]
    fn slots_and_layer_roles() {
        assert_eq!(TemplateRole::of_layer(0).len(), 2);
        assert_eq!(TemplateRole::of_layer(3), &TemplateRole::SLOTS);
        assert!(!TemplateRole::Residual.is_slot_of(0));
        assert!(TemplateRole::ForwardHidden.is_slot_of(0));
        assert_eq!(
            TemplateRole::Forward.at_layer(true),
            TemplateRole::ForwardHidden
        );
        assert_eq!(
            TemplateRole::ForwardHidden.at_layer(false),
            TemplateRole::Forward
        );
        assert_eq!(
            TemplateRole::Residual.at_layer(true),
            TemplateRole::Residual
        );
    }
}
