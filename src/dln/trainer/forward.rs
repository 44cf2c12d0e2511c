//! The forward pass: every layer in turn answers the examples (hidden texts, then the output
//! layer's predictions), and the Forward stage, which also plans the rest of the iteration.

use crate::data::Example;
use crate::dln::demos::{self, Demo};
use crate::dln::error::DlnError;
use crate::dln::events::{Event, ForwardExample, LayerIndex, Stage};
use crate::dln::math;
use crate::dln::network::Network;
use crate::dln::ops::{self, call_seed, Operation};

use super::batch::{batch_indices, eval_due};
use super::usage::{backend_usage, UsageBook};
use super::{StageId, Trainer};

/// The forward pass over a set of examples.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ForwardResult {
    /// `inputs[l][i]`: what layer `l` read for example `i` (`x`, or `R(x, h_{l-1})`).
    pub inputs: Vec<Vec<String>>,
    /// `hidden[l][i]`: the text layer `l` wrote (hidden layers only).
    pub hidden: Vec<Vec<String>>,
    /// `cut[l][i]`: whether `hidden[l][i]` was ended by the layer's token budget.
    pub cut: Vec<Vec<bool>>,
    pub predictions: Vec<String>,
    pub correct: Vec<bool>,
}

impl ForwardResult {
    /// The share of examples answered right.
    pub fn accuracy(&self) -> f64 {
        let right: Vec<f64> = self
            .correct
            .iter()
            .map(|c| if *c { 1.0 } else { 0.0 })
            .collect();
        math::mean(&right)
    }

    /// Folds layer `l`'s answers in: a hidden layer's texts, or the output layer's predictions
    /// judged against the examples' targets.
    fn fold_layer(
        &mut self,
        inputs: Vec<String>,
        answers: Vec<ops::Written>,
        output: bool,
        examples: &[Example],
    ) {
        let (answers, cut): (Vec<String>, Vec<bool>) =
            answers.into_iter().map(|w| (w.text, w.cut)).unzip();
        if output {
            self.correct = answers
                .iter()
                .zip(examples)
                .map(|(p, e)| ops::accuracy_of(p, &e.target) > 0.5)
                .collect();
            self.predictions = answers;
        } else {
            self.hidden.push(answers);
            self.cut.push(cut);
        }
        self.inputs.push(inputs);
    }

    /// The pass as events show it, example `i` numbered `offset + i`.
    pub fn examples(&self, examples: &[Example], offset: usize) -> Vec<ForwardExample> {
        examples
            .iter()
            .enumerate()
            .map(|(i, e)| ForwardExample {
                index: offset + i,
                input: e.input.clone(),
                target: e.target.clone(),
                hidden: self.hidden.iter().map(|h| h[i].clone()).collect(),
                hidden_cut: hidden_cut(self.cut.iter().map(|c| c[i]).collect()),
                prediction: self.predictions[i].clone(),
                correct: self.correct[i],
                train_index: None,
            })
            .collect()
    }
}

/// Which hidden texts of an example were cut, as the event log keeps it: empty when none was, so
/// an event read back from `events.jsonl` (which leaves an all-false list out) equals the live one.
fn hidden_cut(cut: Vec<bool>) -> Vec<bool> {
    if cut.iter().any(|c| *c) {
        cut
    } else {
        Vec::new()
    }
}

/// Where the calls of a forward pass sit, for their seeds: example `i` of the pass is asked with
/// `call_seed(seed, iteration, operation, layer, offset + i)`.
#[derive(Debug, Clone, Copy)]
pub(super) struct SeedAt {
    pub iteration: usize,
    pub operation: Operation,
    pub offset: usize,
}

/// One layer's requests in a forward pass.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LayerRequests {
    /// What the layer reads: `x`, or `R(x, h)` above the first layer.
    pub inputs: Vec<String>,
    /// `F(u; π)`, with the k-shot demonstrations on the output layer.
    pub contexts: Vec<String>,
    pub seeds: Vec<u64>,
}

/// A network answering examples: the forward pass of training, dev and test evaluation,
/// `dln eval` and `dln predict`.
pub struct Forward<'a> {
    pub net: &'a Network,
    /// k-shot demonstrations, shown to the output layer (empty outside `mode = "k_shot"`).
    pub shots: &'a [Example],
    /// The learned demonstrations of each layer, shown after the shots (`demos[l]`; a missing
    /// entry means none): part of the prompts the network answers with.
    pub demos: &'a [Vec<Demo>],
    /// The run seed.
    pub seed: u64,
}

impl Forward<'_> {
    /// Layer `l`'s requests for `examples` with `prompts`, given the texts the layer below
    /// wrote for them.
    pub(super) fn layer_requests(
        &self,
        l: LayerIndex,
        examples: &[Example],
        prompts: &[String],
        below: Option<&[String]>,
        at: SeedAt,
    ) -> Result<LayerRequests, DlnError> {
        let layer = &self.net.layers[l];
        let inputs: Vec<String> = examples
            .iter()
            .enumerate()
            .map(|(i, e)| ops::layer_input(layer, &e.input, below.map(|b| b[i].as_str())))
            .collect::<Result<_, _>>()?;
        let shots: &[Example] = if l == self.net.output() {
            self.shots
        } else {
            &[]
        };
        let shown = demos::shown(shots, self.demos.get(l).map_or(&[], Vec::as_slice));
        let contexts = inputs
            .iter()
            .map(|u| ops::forward_context(layer, u, &prompts[l], &shown))
            .collect::<Result<_, _>>()?;
        let seeds = (0..examples.len())
            .map(|i| call_seed(self.seed, at.iteration, at.operation, l, at.offset + i))
            .collect();
        Ok(LayerRequests {
            inputs,
            contexts,
            seeds,
        })
    }

    /// The pass over `examples` with `prompts`, layer by layer; each layer's calls are counted
    /// in `book` under `at.operation`.
    pub(super) async fn pass(
        &self,
        examples: &[Example],
        prompts: &[String],
        at: SeedAt,
        book: &mut UsageBook,
    ) -> Result<ForwardResult, DlnError> {
        let mut r = ForwardResult::default();
        for l in 0..self.net.layers.len() {
            let before = backend_usage(self.net);
            let below = l.checked_sub(1).map(|b| r.hidden[b].as_slice());
            let req = self.layer_requests(l, examples, prompts, below, at)?;
            let layer = &self.net.layers[l];
            let output = l == self.net.output();
            let answers = if output {
                let classes = self.net.classes.as_ref();
                ops::predict(layer, classes, req.contexts, req.seeds)
                    .await?
                    .into_iter()
                    .map(|text| ops::Written { text, cut: false })
                    .collect()
            } else {
                ops::generate_forward(layer, req.contexts, req.seeds).await?
            };
            r.fold_layer(req.inputs, answers, output, examples);
            book.add(l, at.operation, backend_usage(self.net).since(&before));
        }
        Ok(r)
    }
}

/// The stages that follow the forward pass: with a wrong example, top-down posterior sampling
/// and sharpening of every hidden text, then every layer's prompt update; a dev evaluation when
/// `evaluate`; then the end of the iteration.
pub(super) fn plan(output: LayerIndex, all_right: bool, evaluate: bool) -> Vec<StageId> {
    let mut plan = Vec::new();
    if !all_right {
        for l in (1..=output).rev() {
            plan.push(StageId::PosteriorSampling(l));
            plan.push(StageId::Sharpening(l));
        }
        for l in (0..=output).rev() {
            plan.push(StageId::Propose(l));
            plan.push(StageId::Score(l));
            plan.push(StageId::Select(l));
        }
    }
    if evaluate {
        plan.push(StageId::Evaluate);
    }
    plan.push(StageId::Finish);
    plan
}

impl Trainer {
    pub(super) async fn stage_forward(&mut self) -> Result<(), DlnError> {
        let it = self.iteration;
        let batch_index = batch_indices(&self.train, &self.data, it);
        let batch: Vec<Example> = batch_index
            .iter()
            .map(|i| self.data.train[*i].clone())
            .collect();
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::Forward,
            layer: None,
            total: batch.len(),
            usage: self.live_usage(None),
        });
        // One request per example and layer.
        self.expect(
            Stage::Forward,
            batch.len(),
            batch.len() * self.net.layers.len(),
        );
        let prompts = self.net.prompts();
        let at = SeedAt {
            iteration: it,
            operation: Operation::Forward,
            offset: 0,
        };
        let demos = self.net.demos();
        let forward = Forward {
            net: &self.net,
            shots: &self.shots,
            demos: &demos,
            seed: self.train.seed,
        };
        let fwd = forward.pass(&batch, &prompts, at, &mut self.usage).await?;
        let accuracy = fwd.accuracy();
        let mut examples = fwd.examples(&batch, 0);
        for (e, &t) in examples.iter_mut().zip(&batch_index) {
            e.train_index = Some(t);
        }
        self.emit(Event::ForwardDone {
            iteration: it,
            examples,
            accuracy,
            loss: 1.0 - accuracy,
        });
        let all_right = fwd.correct.iter().all(|c| *c);
        let plan = if self.train.gepa() {
            super::gepa::plan(self.net.output(), all_right)
        } else {
            plan(self.net.output(), all_right, eval_due(&self.train, it + 1))
        };
        let cur = self.cur_mut()?;
        cur.batch = batch;
        cur.batch_index = batch_index;
        cur.fwd = fwd;
        cur.queue.extend(plan);
        if all_right {
            // Every example right: the prompts stay (the reference skips the update).
            self.emit(Event::Warning {
                message: format!(
                    "iteration {}: every example of the batch is right; the prompts stay",
                    it + 1
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dln::trainer::testing::{examples, network};

    #[test]
    fn the_plan_updates_top_down_only_after_a_wrong_answer() {
        use StageId::*;
        assert_eq!(
            plan(1, false, true),
            vec![
                PosteriorSampling(1),
                Sharpening(1),
                Propose(1),
                Score(1),
                Select(1),
                Propose(0),
                Score(0),
                Select(0),
                Evaluate,
                Finish
            ]
        );
        assert_eq!(plan(1, true, false), vec![Finish]);
        assert_eq!(
            plan(0, false, false),
            vec![Propose(0), Score(0), Select(0), Finish]
        );
    }

    #[test]
    fn layer_requests_read_x_first_then_the_text_below_with_seeds_by_position() {
        let net = network(2);
        let shots = vec![Example {
            input: "a demonstration".into(),
            target: "(A)".into(),
        }];
        let f = Forward {
            net: &net,
            shots: &shots,
            demos: &[],
            seed: 7,
        };
        let ex = examples(2);
        let prompts = vec!["think".to_string(), "answer".to_string()];
        let at = SeedAt {
            iteration: 3,
            operation: Operation::Evaluate,
            offset: 8,
        };
        let first = f.layer_requests(0, &ex, &prompts, None, at).unwrap();
        assert_eq!(first.inputs, vec![ex[0].input.clone(), ex[1].input.clone()]);
        assert!(first.contexts[0].contains("think"));
        assert!(
            !first.contexts[0].contains(&shots[0].input),
            "demonstrations: output layer only"
        );
        assert_eq!(first.seeds[1], call_seed(7, 3, Operation::Evaluate, 0, 9));
        let hidden = vec!["h0".to_string(), "h1".to_string()];
        let top = f
            .layer_requests(1, &ex, &prompts, Some(&hidden), at)
            .unwrap();
        assert!(top.inputs[1].contains("h1"), "R(x, h) joins the text below");
        assert!(top.contexts[0].contains("answer"));
        assert!(top.contexts[0].contains(&shots[0].input));
    }

    #[test]
    fn folding_judges_the_output_layer_and_keeps_hidden_texts() {
        let ex = examples(2);
        let mut r = ForwardResult::default();
        let written = |text: &str, cut: bool| ops::Written {
            text: text.into(),
            cut,
        };
        r.fold_layer(
            vec!["x".into(); 2],
            vec![written("h0", false), written("h1", true)],
            false,
            &ex,
        );
        let answers = vec![written(&ex[0].target, false), written("nonsense", false)];
        r.fold_layer(vec!["u".into(); 2], answers, true, &ex);
        assert_eq!(r.correct, vec![true, false]);
        assert_eq!(r.accuracy(), 0.5);
        let shown = r.examples(&ex, 4);
        assert_eq!(shown[1].index, 5);
        assert_eq!(shown[1].hidden, vec!["h1".to_string()]);
        assert_eq!(
            shown[1].hidden_cut,
            vec![true],
            "a text ended by its budget says so"
        );
        assert!(
            shown[0].hidden_cut.is_empty(),
            "none cut: left out, as in the log"
        );
        assert!(!shown[1].correct);
    }
}
