//! A person's written feedback on a layer ("the hidden layer forgets the turns"), or on one
//! training example: a note stays in force for the layer's proposals until the person removes
//! it. The trainer renders the notes in force into the layer's backward templates (the
//! `feedback` variable), apart from the metric's own feedback (`metric_feedback`), so an
//! ablation can switch either off (`train.person_feedback`, `train.metric_feedback`).

use serde::{Deserialize, Serialize};

/// One note of a person on a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub text: String,
    /// The training example the note is about (its index in the training split); absent for a
    /// note on the layer as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<usize>,
    /// That example's input, as the proposer is shown it with the note (empty without one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub input: String,
    /// The iteration in progress (or next) when the note was written.
    #[serde(default)]
    pub iteration: usize,
}

impl Note {
    /// The note as one line: its text, and the example it is about.
    pub fn describe(&self) -> String {
        match self.example {
            Some(e) => format!("{} (on training example {e})", self.text),
            None => self.text.clone(),
        }
    }
}

/// No layer has a note (what leaves the notes out of a checkpoint).
pub fn no_notes(notes: &[Vec<Note>]) -> bool {
    notes.iter().all(Vec::is_empty)
}
