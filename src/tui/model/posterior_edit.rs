//! A person's edits of a posterior as the workbench reduces them: a hidden text they wrote,
//! a sample excluded or included again, each also a line in the activity log.

use crate::dln::events::{Event, HiddenSample, SampleOrigin};

use super::text::one_line_of;
use super::RunView;

impl RunView {
    /// Applies `HiddenAdded`, `SampleExcluded` and `SampleIncluded`; other events are left alone.
    pub(super) fn apply_posterior_edit(&mut self, event: &Event) {
        match event {
            Event::HiddenAdded {
                layer,
                example,
                text,
            } => {
                if let Some(p) = self.posteriors.get_mut(layer) {
                    if let Some(ex) = p.examples.iter_mut().find(|e| e.index == *example) {
                        let present = ex
                            .samples
                            .iter()
                            .any(|s| s.origin == SampleOrigin::Human && s.text == *text);
                        if !present {
                            ex.samples
                                .push(HiddenSample::unscored(text.clone(), SampleOrigin::Human));
                        }
                    }
                }
                self.note(
                    self.iteration,
                    &format!(
                        "wrote a hidden text for example {}: {}",
                        example + 1,
                        one_line_of(text, 50)
                    ),
                );
            }
            Event::SampleExcluded {
                layer,
                example,
                sample,
            } => {
                if let Some(p) = self.posteriors.get_mut(layer) {
                    if let Some(ex) = p.examples.iter_mut().find(|e| e.index == *example) {
                        if let Some(s) = ex.samples.get_mut(*sample) {
                            s.excluded = true;
                            s.weight = Some(0.0);
                        }
                        if ex.best == Some(*sample) {
                            ex.best = None;
                        }
                    }
                }
                self.note(
                    self.iteration,
                    &format!("excluded sample {} of example {}", sample + 1, example + 1),
                );
            }
            Event::SampleIncluded {
                layer,
                example,
                sample,
            } => {
                // Its weight comes back with the `Sharpened` that follows, if it was sharpened.
                if let Some(s) = self
                    .posteriors
                    .get_mut(layer)
                    .and_then(|p| p.examples.iter_mut().find(|e| e.index == *example))
                    .and_then(|ex| ex.samples.get_mut(*sample))
                {
                    s.excluded = false;
                    s.weight = None;
                }
                self.note(
                    self.iteration,
                    &format!(
                        "included sample {} of example {} again",
                        sample + 1,
                        example + 1
                    ),
                );
            }
            _ => {}
        }
    }
}
