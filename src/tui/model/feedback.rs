//! A person's written notes on a layer, as the workbench reduces them: the notes in force per
//! layer (`LayerView::feedback`) and a line in the activity log for each added or removed one.

use crate::dln::events::{Event, Note};

use super::layer::Intervention;
use super::text::one_line_of;
use super::RunView;

impl RunView {
    /// Applies `FeedbackAdded` and `FeedbackRemoved`; other events are left alone.
    pub(super) fn apply_feedback(&mut self, event: &Event) {
        let text = match event {
            Event::FeedbackAdded {
                layer,
                iteration,
                example,
                input,
                text,
            } => {
                let note = Note {
                    text: text.clone(),
                    example: *example,
                    input: input.clone(),
                    iteration: *iteration,
                };
                let line = format!(
                    "note on layer {}: {}",
                    layer + 1,
                    one_line_of(&note.describe(), 200)
                );
                if let Some(l) = self.layers.get_mut(*layer) {
                    l.feedback.push(note);
                }
                line
            }
            Event::FeedbackRemoved { layer, index, text } => {
                if let Some(l) = self.layers.get_mut(*layer) {
                    if *index < l.feedback.len() {
                        l.feedback.remove(*index);
                    }
                }
                format!(
                    "removed note on layer {}: {}",
                    layer + 1,
                    one_line_of(text, 200)
                )
            }
            _ => return,
        };
        self.interventions.push(Intervention {
            iteration: self.iteration,
            text,
        });
    }
}
