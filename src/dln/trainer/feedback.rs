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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::dln::events::Command;
    use crate::dln::state::TrainerState;
    use crate::dln::trainer::posterior::posterior_requests;
    use crate::dln::trainer::propose::proposal_prompt;
    use crate::dln::trainer::testing::{dataset, iteration, network};
    use crate::dln::trainer::EventSink;
    use crate::llm::Prompt;

    #[derive(Default)]
    struct Log(Mutex<Vec<Event>>);
    impl EventSink for Log {
        fn emit(&self, e: Event) {
            self.0.lock().expect("log").push(e);
        }
    }

    fn trainer(k: usize, log: Arc<Log>) -> Trainer {
        let train = TrainConfig::default();
        Trainer::new(network(k), &train, Path::new("."), dataset(10), log).expect("a trainer")
    }

    fn text(p: &Prompt) -> String {
        match p {
            Prompt::Raw { text } => text.clone(),
            Prompt::Chat { messages, .. } => messages.iter().map(|m| m.content.clone()).collect(),
        }
    }

    fn rejected(log: &Log) -> Vec<String> {
        log.0
            .lock()
            .expect("log")
            .iter()
            .filter_map(|e| match e {
                Event::CommandRejected { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_note_is_in_force_until_removed_and_checkpointed_meanwhile() {
        let log = Arc::new(Log::default());
        let mut t = trainer(2, log.clone());
        t.apply(Command::AddFeedback {
            layer: 0,
            example: None,
            text: " The hidden layer forgets the turns. ".into(),
        });
        t.apply(Command::AddFeedback {
            layer: 0,
            example: Some(3),
            text: "Count the steps here.".into(),
        });
        assert!(rejected(&log).is_empty(), "{:?}", rejected(&log));
        let notes = &t.net.layers[0].feedback;
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0].text, "The hidden layer forgets the turns.");
        assert_eq!(notes[1].input, t.data.train[3].input);
        assert!(log.0.lock().expect("log").contains(&Event::FeedbackAdded {
            layer: 0,
            iteration: 0,
            example: Some(3),
            input: t.data.train[3].input.clone(),
            text: "Count the steps here.".into(),
        }));
        assert_eq!(
            notes_shown(&t.net.layers[0], &t.train),
            vec![
                "The hidden layer forgets the turns.".to_string(),
                "Count the steps here. (on training example 3)".to_string()
            ]
        );
        // Mid-iteration a stop saves the iteration's start with the notes applied.
        t.current = Some(iteration(&t.net, 2, &[true, false]));
        t.apply(Command::RemoveFeedback { layer: 0, index: 0 });
        let saved = t.checkpoint_state();
        assert_eq!(saved.feedback[0].len(), 1);
        assert_eq!(saved.feedback[0][0].example, Some(3));
        // A resumed trainer has them, and a checkpoint round-trips through JSON.
        let json = serde_json::to_string(&saved).expect("json");
        let back: TrainerState = serde_json::from_str(&json).expect("parse");
        let r = Trainer::restore(
            network(2),
            &TrainConfig::default(),
            Path::new("."),
            dataset(10),
            back,
            log.clone(),
        )
        .expect("restored");
        assert_eq!(r.net.layers[0].feedback, t.net.layers[0].feedback);
    }

    #[test]
    fn a_checkpoint_without_notes_is_written_and_read_as_before() {
        let t = trainer(2, Arc::new(Log::default()));
        let json = serde_json::to_value(t.checkpoint_state()).expect("json");
        assert!(json.get("feedback").is_none(), "{json}");
        let old: TrainerState = serde_json::from_value(json).expect("an old checkpoint loads");
        assert!(old.feedback.is_empty());
    }

    #[test]
    fn bad_notes_are_refused_with_one_reason_each() {
        let log = Arc::new(Log::default());
        let mut t = trainer(2, log.clone());
        t.net.layers[1].trainable = false;
        let add = |layer, example, text: &str| Command::AddFeedback {
            layer,
            example,
            text: text.into(),
        };
        t.apply(add(5, None, "x"));
        t.apply(add(1, None, "x"));
        t.apply(add(0, None, "  "));
        t.apply(add(0, Some(10), "x"));
        t.apply(Command::RemoveFeedback { layer: 0, index: 0 });
        let reasons = rejected(&log);
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert!(
            reasons[0].contains("there is no layer 6 (the network has 2"),
            "{}",
            reasons[0]
        );
        assert!(
            reasons[1].contains("layer 2 is not trained"),
            "{}",
            reasons[1]
        );
        assert!(reasons[2].contains("cannot be empty"), "{}", reasons[2]);
        assert!(
            reasons[3].contains("no training example 10"),
            "{}",
            reasons[3]
        );
        assert!(
            reasons[4].contains("layer 1 has no note 1"),
            "{}",
            reasons[4]
        );
        assert!(t.net.layers.iter().all(|l| l.feedback.is_empty()));
    }

    /// Layer `l`'s first proposal prompt of `cur` under `train`.
    fn proposal(t: &Trainer, train: &TrainConfig, l: LayerIndex) -> String {
        let infos: Vec<Value> = [("(A)", "(A)"), ("(C)", "(B)"), ("(C)", "(A)")]
            .iter()
            .enumerate()
            .map(|(i, (p, y))| {
                json!({"input": format!("question {i}"), "h": format!("h0-{i}"), "prediction": p,
                       "output": p, "target": y, "loss": if p == y { 0.0 } else { 1.0 }, "correct": p == y})
            })
            .collect();
        text(&proposal_prompt(&t.net, train, l, 0, "", &infos).expect("renders"))
    }

    #[test]
    fn notes_and_the_metric_each_show_in_their_own_part_and_switch_off_alone() {
        let mut t = trainer(2, Arc::new(Log::default()));
        let on = TrainConfig::default();
        let plain = proposal(&t, &on, 1);
        t.apply(Command::AddFeedback {
            layer: 1,
            example: None,
            text: "Answer with the letter only.".into(),
        });
        t.apply(Command::AddFeedback {
            layer: 1,
            example: Some(7),
            text: "This one is a trick.".into(),
        });
        let noted = proposal(&t, &on, 1);
        let section = format!(
            "A reviewer's notes on this instruction:\n- Answer with the letter only.\n- This one is a trick. (about the \
             input: \"{}\")\n\n",
            t.data.train[7].input
        );
        assert_eq!(
            noted.replacen(&section, "", 1),
            plain,
            "the notes are one section added:\n{noted}"
        );
        // person_feedback off: exactly the prompt without notes.
        let no_person = TrainConfig {
            person_feedback: false,
            ..TrainConfig::default()
        };
        assert_eq!(proposal(&t, &no_person, 1), plain);
        assert!(notes_shown(&t.net.layers[1], &no_person).is_empty());
        // metric_feedback off: the notes stay, right/wrong and the correct answer go.
        let no_metric = TrainConfig {
            metric_feedback: false,
            ..TrainConfig::default()
        };
        let blind = proposal(&t, &no_metric, 1);
        assert!(blind.contains(&section), "{blind}");
        assert!(
            !blind.contains("right") && !blind.contains("correct answer is"),
            "{blind}"
        );
        let told = noted
            .replace(" (right)", "")
            .replace(" (wrong, the correct answer is (B))", "")
            .replace(" (wrong, the correct answer is (A))", "");
        assert_eq!(blind, told, "only the metric's words go");
    }

    #[test]
    fn a_posterior_request_shows_the_hidden_layers_notes_and_its_examples_own() {
        let mut t = trainer(2, Arc::new(Log::default()));
        let train = TrainConfig::default();
        t.apply(Command::AddFeedback {
            layer: 0,
            example: None,
            text: "Track which way you face.".into(),
        });
        t.apply(Command::AddFeedback {
            layer: 0,
            example: Some(6),
            text: "Two lefts make a turn around.".into(),
        });
        let mut cur = iteration(&t.net, 2, &[false, false]);
        cur.batch_index = vec![6, 2];
        let r = posterior_requests(&t.net, &train, &cur, 1).expect("requests");
        let shown: Vec<(usize, String)> = r
            .owners
            .iter()
            .zip(&r.requests)
            .map(|(i, q)| (*i, text(&q.prompt)))
            .collect();
        for (i, q) in &shown {
            assert!(q.contains("- Track which way you face."), "{q}");
            assert_eq!(q.contains("Two lefts make a turn around."), *i == 0, "{q}");
        }
        let off = TrainConfig {
            person_feedback: false,
            ..TrainConfig::default()
        };
        let r = posterior_requests(&t.net, &off, &cur, 1).expect("requests");
        assert!(r
            .requests
            .iter()
            .all(|q| !text(&q.prompt).contains("reviewer")));
    }
}
