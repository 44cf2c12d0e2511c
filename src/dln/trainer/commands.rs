//! A person's steering between stages: pin, unpin and replace prompts, replace templates, add
//! or remove a demonstration and pin a layer's demonstrations, add a hidden text to a posterior
//! or exclude one of its samples, write or remove a note (`feedback.rs`). A command that cannot apply is a `CommandRejected` event and
//! changes nothing.

use crate::dln::demos::Demo;
use crate::dln::error::DlnError;
use crate::dln::events::{Command, Event, HiddenSample, LayerIndex, SampleOrigin, TemplateRole};
use crate::dln::math;
use crate::dln::state::HiddenEdit;

use super::batch::demo_of;
use super::sharpen::reweigh;
use super::{IterState, StageId, Trainer};

impl IterState {
    /// Whether the posterior of the hidden text below layer `l` (written by layer `l-1`) can
    /// still take a person's edit: from the forward pass of the iteration until the last prompt
    /// update that reads its weights (layer `l-1`'s scoring). Returns notes on what already used
    /// the previous weights; an error once the batch has moved on.
    fn posterior_window(&self, l: LayerIndex) -> Result<Vec<String>, DlnError> {
        // Iterations and layers as a person counts them (from 1).
        let (it, shown) = (self.iteration + 1, l + 1);
        let has = |s: StageId| self.done.contains(&s) || self.queue.contains(&s);
        if !has(StageId::PosteriorSampling(l)) {
            return Err(DlnError::Command(format!(
                "iteration {it} has no posterior for the hidden text below layer {shown}: every example of its batch \
                 was right, so the prompts stay"
            )));
        }
        if self.done.contains(&StageId::Score(l - 1)) {
            return Err(DlnError::Command(format!(
                "the batch has moved on: layer {}'s prompt update of iteration {it} has already used the weights \
                 of this posterior, so the edit applies to nothing",
                l
            )));
        }
        let mut notes = Vec::new();
        if self.done.contains(&StageId::Score(l)) {
            notes.push(format!(
                "iteration {it}: layer {shown}'s candidates were already scored with the previous weights; the edit \
                 counts for layer {}'s update only",
                l
            ));
        }
        if l >= 2 && self.done.contains(&StageId::PosteriorSampling(l - 1)) {
            notes.push(format!(
                "iteration {it}: the posterior of the hidden text below layer {} was already drawn toward the \
                 previous best sample h*",
                l
            ));
        }
        Ok(notes)
    }
}

impl Trainer {
    /// Applies a person's command (all but pause/resume/step/stop, which belong to the driver).
    /// A command that cannot apply is an `Error` event; the run goes on unchanged. An edit of a
    /// posterior is recorded with its stage boundary, so a stop and resume replays it there.
    pub fn apply(&mut self, command: Command) {
        let edit = matches!(
            command,
            Command::AddHidden { .. }
                | Command::ExcludeSample { .. }
                | Command::IncludeSample { .. }
        );
        let at = self.current.as_ref().map(|c| c.done.len());
        match self.try_apply(command.clone()) {
            Ok(()) => {
                if let (true, Some(after_stages)) = (edit, at) {
                    self.snapshot.hidden_edits.push(HiddenEdit {
                        after_stages,
                        command,
                    });
                }
            }
            Err(e) => self.emit(Event::CommandRejected {
                command,
                reason: e.to_string(),
            }),
        }
    }

    pub(super) fn try_apply(&mut self, command: Command) -> Result<(), DlnError> {
        match command {
            Command::Pin { layer, prompt } => {
                self.set_prompt(layer, &prompt, Some(true))?;
                self.emit(Event::PromptPinned { layer, prompt });
            }
            Command::Unpin { layer } => {
                self.layer_checked(layer)?;
                self.net.layers[layer].pinned = false;
                self.snapshot.pinned[layer] = false;
                self.emit(Event::PromptUnpinned { layer });
            }
            Command::SetPrompt { layer, prompt } => {
                self.set_prompt(layer, &prompt, None)?;
                self.emit(Event::PromptReplaced { layer, prompt });
            }
            Command::SetTemplate {
                layer,
                role,
                source,
            } => self.set_template(layer, role, source)?,
            Command::AddHidden {
                layer,
                example,
                text,
            } => self.add_hidden(layer, example, text)?,
            Command::ExcludeSample {
                layer,
                example,
                sample,
            } => self.set_excluded(layer, example, sample, true)?,
            Command::IncludeSample {
                layer,
                example,
                sample,
            } => self.set_excluded(layer, example, sample, false)?,
            Command::AddDemo { layer, example } => self.add_demo(layer, example)?,
            Command::RemoveDemo { layer, example } => self.remove_demo(layer, example)?,
            Command::PinDemos { layer } => {
                self.pin_demos(layer, true)?;
                self.emit(Event::DemosPinned { layer });
            }
            Command::UnpinDemos { layer } => {
                self.pin_demos(layer, false)?;
                self.emit(Event::DemosUnpinned { layer });
            }
            Command::AddFeedback {
                layer,
                example,
                text,
            } => self.add_feedback(layer, example, text)?,
            Command::RemoveFeedback { layer, index } => self.remove_feedback(layer, index)?,
            Command::Pause | Command::Resume | Command::Step | Command::Stop => {}
        }
        Ok(())
    }

    fn pin_demos(&mut self, layer: LayerIndex, pinned: bool) -> Result<(), DlnError> {
        self.layer_checked(layer)?;
        self.net.layers[layer].demos_pinned = pinned;
        let k = self.net.layers.len();
        let s = &mut self.snapshot.demos_pinned;
        s.resize(k.max(s.len()), false);
        s[layer] = pinned;
        Ok(())
    }

    /// Shows training example `example` as layer `layer`'s last demonstration (see
    /// [`Command::AddDemo`]).
    fn add_demo(&mut self, layer: LayerIndex, example: usize) -> Result<(), DlnError> {
        self.layer_checked(layer)?;
        let train = self.data.train.len();
        if example >= train {
            return Err(DlnError::Command(format!(
                "there is no training example {example} (the training split has {train})"
            )));
        }
        let l = &self.net.layers[layer];
        if l.max_demos == 0 {
            return Err(DlnError::Command(format!(
                "layer {layer} shows no demonstrations (demos = 0 in its config): give it demos = k to add one"
            )));
        }
        if l.demos.len() >= l.max_demos {
            return Err(DlnError::Command(format!(
                "layer {layer} already shows {} demonstrations, its most (demos = {}): remove one first",
                l.demos.len(),
                l.max_demos
            )));
        }
        if l.demos.iter().any(|d| d.index == example) {
            return Err(DlnError::Command(format!(
                "layer {layer} already shows training example {example}"
            )));
        }
        let demo = if layer == self.net.output() {
            demo_of(&self.data, example)
        } else {
            self.hidden_demo(layer, example)?
        };
        let mut demos = self.net.layers[layer].demos.clone();
        demos.push(demo);
        self.replace_demos(layer, demos);
        Ok(())
    }

    /// A hidden layer's demonstration of training example `example`: its input to the layer and
    /// the best hidden text `h*` it should write, known for the batch in progress only.
    fn hidden_demo(&self, layer: LayerIndex, example: usize) -> Result<Demo, DlnError> {
        let not_in_batch = || {
            DlnError::Command(format!(
                "layer {layer} is a hidden layer: its demonstration shows the best hidden text h* of an example of \
                 the batch in progress, and training example {example} is not in it"
            ))
        };
        let cur = self.current.as_ref().ok_or_else(not_in_batch)?;
        let i = cur
            .batch_index
            .iter()
            .position(|&t| t == example)
            .ok_or_else(not_in_batch)?;
        let input = cur.fwd.inputs.get(layer).and_then(|v| v.get(i));
        let (Some(input), true) = (input, cur.fwd.hidden.len() > layer) else {
            return Err(DlnError::Command(format!(
                "the forward pass of the batch in progress has not reached layer {layer} yet"
            )));
        };
        Ok(Demo {
            index: example,
            input: input.clone(),
            output: cur.best_hidden(layer + 1, i).trim().to_string(),
        })
    }

    fn remove_demo(&mut self, layer: LayerIndex, example: usize) -> Result<(), DlnError> {
        self.layer_checked(layer)?;
        let mut demos = self.net.layers[layer].demos.clone();
        let Some(slot) = demos.iter().position(|d| d.index == example) else {
            return Err(DlnError::Command(format!(
                "layer {layer} does not show training example {example}"
            )));
        };
        demos.remove(slot);
        self.replace_demos(layer, demos);
        Ok(())
    }

    /// A layer's demonstrations set by a person: now, in what a stop would save, and as an
    /// event.
    fn replace_demos(&mut self, layer: LayerIndex, demos: Vec<Demo>) {
        self.net.layers[layer].demos = demos.clone();
        let k = self.net.layers.len();
        let mut saved = std::mem::take(&mut self.snapshot.demos);
        saved.resize(k.max(saved.len()), Vec::new());
        saved[layer] = demos.clone();
        self.snapshot.demos = math::stored_demos(saved);
        self.emit(Event::DemosReplaced { layer, demos });
    }

    fn layer_checked(&self, layer: LayerIndex) -> Result<(), DlnError> {
        if layer >= self.net.layers.len() {
            return Err(DlnError::Command(format!(
                "there is no layer {layer} (the network has {})",
                self.net.layers.len()
            )));
        }
        Ok(())
    }

    /// Replaces a layer's prompt now and in what a stop would save; `pin` pins it too.
    fn set_prompt(
        &mut self,
        layer: LayerIndex,
        prompt: &str,
        pin: Option<bool>,
    ) -> Result<(), DlnError> {
        self.layer_checked(layer)?;
        self.net.layers[layer].prompt = prompt.to_string();
        self.snapshot.prompts[layer] = prompt.to_string();
        if let Some(p) = pin {
            self.net.layers[layer].pinned = p;
            self.snapshot.pinned[layer] = p;
        }
        Ok(())
    }

    fn set_template(
        &mut self,
        layer: LayerIndex,
        role: TemplateRole,
        source: String,
    ) -> Result<(), DlnError> {
        self.net
            .set_template(layer, role, &source, &self.base_dir)?;
        let edits = self.net.layers[layer].edited_templates.clone();
        if let Some(s) = self.snapshot.edited_templates.get_mut(layer) {
            *s = edits;
        }
        self.emit(Event::TemplateReplaced {
            layer,
            role,
            source,
        });
        Ok(())
    }

    /// The iteration in progress, for an edit of its posteriors (an error saying why there is
    /// none to edit otherwise), with the notes of [`IterState::posterior_window`].
    fn editable_posterior(
        &mut self,
        l: LayerIndex,
    ) -> Result<(&mut IterState, Vec<String>), DlnError> {
        self.layer_checked(l)?;
        let it = self.iteration;
        let Some(cur) = self.current.as_mut() else {
            return Err(DlnError::Command(if it == 0 {
                "no batch has been drawn yet: a hidden text applies to the batch of the iteration in progress"
                    .to_string()
            } else {
                format!(
                    "the batch has moved on: iteration {} and its prompt updates are done, so the edit applies to \
                     nothing (pause after sharpening to edit the posterior of the batch in progress)",
                    it
                )
            }));
        };
        let notes = cur.posterior_window(l)?;
        Ok((cur, notes))
    }

    fn add_hidden(
        &mut self,
        layer: LayerIndex,
        example: usize,
        text: String,
    ) -> Result<(), DlnError> {
        self.layer_checked(layer)?;
        if layer == 0 {
            return Err(DlnError::Command(
                "layer 0 reads the input directly: there is no hidden text below it".into(),
            ));
        }
        if text.trim().is_empty() {
            return Err(DlnError::Command("a hidden text cannot be empty".into()));
        }
        let (cur, notes) = self.editable_posterior(layer)?;
        if example >= cur.batch.len() {
            return Err(DlnError::Command(format!(
                "there is no example {example} in the current batch (it has {})",
                cur.batch.len()
            )));
        }
        match cur.posteriors[layer].as_mut() {
            // Not sampled yet: it joins the samples when they are drawn.
            None => cur.pending_hidden.push((layer, example, text.clone())),
            Some(p) => {
                p.examples[example]
                    .samples
                    .push(HiddenSample::unscored(text.clone(), SampleOrigin::Human));
                // Already sharpened: score it like the others before anything uses the weights
                // again.
                if p.sharpened && cur.queue.front() != Some(&StageId::Rescore(layer)) {
                    cur.queue.push_front(StageId::Rescore(layer));
                }
            }
        }
        self.emit(Event::HiddenAdded {
            layer,
            example,
            text,
        });
        self.warn_all(notes);
        Ok(())
    }

    /// Excludes a posterior sample (or, with `excluded` false, counts it again).
    fn set_excluded(
        &mut self,
        layer: LayerIndex,
        example: usize,
        sample: usize,
        excluded: bool,
    ) -> Result<(), DlnError> {
        let it = self.iteration;
        let temperature = self.train.posterior_temperature;
        let own_eligible = !self.train.exclude_wrong_hidden;
        let (cur, notes) = self.editable_posterior(layer)?;
        let p = cur
            .posteriors
            .get_mut(layer)
            .and_then(|p| p.as_mut())
            .ok_or_else(|| {
                DlnError::Command(format!(
                    "layer {layer} has no posterior samples yet this iteration"
                ))
            })?;
        let ex = p.examples.get_mut(example).ok_or_else(|| {
            DlnError::Command(format!(
                "there is no example {example} in the current batch"
            ))
        })?;
        let s = ex.samples.get_mut(sample).ok_or_else(|| {
            DlnError::Command(format!("example {example} has no sample {sample}"))
        })?;
        s.excluded = excluded;
        let resharpen = p.sharpened;
        if resharpen {
            // The terms are known: only the normalization and h* change.
            reweigh(ex, temperature, own_eligible);
        }
        let examples = p.examples.clone();
        self.emit(if excluded {
            Event::SampleExcluded {
                layer,
                example,
                sample,
            }
        } else {
            Event::SampleIncluded {
                layer,
                example,
                sample,
            }
        });
        if resharpen {
            self.emit(Event::Sharpened {
                iteration: it,
                layer,
                examples,
            });
        }
        self.warn_all(notes);
        Ok(())
    }

    fn warn_all(&self, messages: Vec<String>) {
        for message in messages {
            self.emit(Event::Warning { message });
        }
    }
}
