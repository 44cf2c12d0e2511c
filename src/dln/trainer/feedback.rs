//! A person's written notes on a layer (or one of its training examples): the commands that add
//! and remove them, and what the layer's backward templates are shown of them (the `feedback`
//! variable, apart from the metric's own feedback, `metric_feedback`).

use serde_json::{json, Value};

use crate::config::TrainConfig;
use crate::dln::error::DlnError;
use crate::dln::events::{Event, LayerIndex};
use crate::dln::feedback::Note;
use crate::dln::network::Layer;

use super::Trainer;

/// The notes a proposal of `layer` is shown now, one line each (empty when
/// `train.person_feedback` is off): what a candidate's provenance records.
pub fn notes_shown(layer: &Layer, train: &TrainConfig) -> Vec<String> {
    shown(layer, train).map(Note::describe).collect()
}

fn shown<'a>(layer: &'a Layer, train: &TrainConfig) -> impl Iterator<Item = &'a Note> {
    let on = train.person_feedback;
    layer.feedback.iter().filter(move |_| on)
}

/// The `feedback` variable of `layer`'s prompt-proposal template: each note in force with the
/// input of the example it is about (empty for a note on the layer); empty when
/// `train.person_feedback` is off.
pub(super) fn prompt_feedback(layer: &Layer, train: &TrainConfig) -> Value {
    Value::Array(shown(layer, train).map(note_json).collect())
}

/// The `feedback` variable of a posterior request for training example `example` of the hidden
/// text `writer` writes: its notes on the layer and those on that example.
pub(super) fn hidden_feedback(
    writer: &Layer,
    train: &TrainConfig,
    example: Option<usize>,
) -> Value {
    Value::Array(
        shown(writer, train)
            .filter(|n| n.example.is_none() || n.example == example)
            .map(note_json)
            .collect(),
    )
}

fn note_json(n: &Note) -> Value {
    json!({ "text": n.text, "input": n.input, "example": n.example })
}

impl Trainer {
    /// Adds a person's note to `layer`'s notes in force (see `Command::AddFeedback`).
    pub(super) fn add_feedback(
        &mut self,
        layer: LayerIndex,
        example: Option<usize>,
        text: String,
    ) -> Result<(), DlnError> {
        self.feedback_layer(layer)?;
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(DlnError::Command(
                "a note cannot be empty: write what the layer should do differently".into(),
            ));
        }
        let train = self.data.train.len();
        let input = match example {
            Some(e) if e >= train => {
                return Err(DlnError::Command(format!(
                    "there is no training example {e} (the training split has {train}): name one from 0 to {}",
                    train.saturating_sub(1)
                )))
            }
            Some(e) => self.data.train[e].input.clone(),
            None => String::new(),
        };
        let note = Note {
            text: text.clone(),
            example,
            input: input.clone(),
            iteration: self.iteration,
        };
        self.net.layers[layer].feedback.push(note);
        self.save_feedback(layer);
        self.emit(Event::FeedbackAdded {
            layer,
            iteration: self.iteration,
            example,
            input,
            text,
        });
        Ok(())
    }

    /// Removes note `index` of `layer`'s notes in force.
    pub(super) fn remove_feedback(
        &mut self,
        layer: LayerIndex,
        index: usize,
    ) -> Result<(), DlnError> {
        self.feedback_layer(layer)?;
        let notes = &mut self.net.layers[layer].feedback;
        if index >= notes.len() {
            return Err(DlnError::Command(format!(
                "layer {} has no note {} (it has {})",
                layer + 1,
                index + 1,
                notes.len()
            )));
        }
        let note = notes.remove(index);
        self.save_feedback(layer);
        self.emit(Event::FeedbackRemoved {
            layer,
            index,
            text: note.text,
        });
        Ok(())
    }

    /// A layer a note may be written on: one that exists and is trained.
    fn feedback_layer(&self, layer: LayerIndex) -> Result<(), DlnError> {
        let k = self.net.layers.len();
        let Some(l) = self.net.layers.get(layer) else {
            return Err(DlnError::Command(format!(
                "there is no layer {} (the network has {k}, numbered from 1)",
                layer + 1
            )));
        };
        if !l.trainable {
            return Err(DlnError::Command(format!(
                "layer {} is not trained (`trainable = false` or left out of `train.train_layers`): it has no \
                 proposals for a note to steer",
                layer + 1
            )));
        }
        Ok(())
    }

    /// The layer's notes in what a stop would save.
    fn save_feedback(&mut self, layer: LayerIndex) {
        let k = self.net.layers.len();
        let saved = &mut self.snapshot.feedback;
        saved.resize(k.max(saved.len()), Vec::new());
        saved[layer] = self.net.layers[layer].feedback.clone();
    }
}
