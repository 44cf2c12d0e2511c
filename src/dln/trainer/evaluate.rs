//! Evaluation: the accuracy of a network's prompts on a split, as a free function over the
//! network (what `dln eval` and `dln predict` run outside a trainer), and the trainer's dev
//! evaluation (best-dev prompts, memory, patience) and final test.

use crate::data::Example;
use crate::dln::demos::Demo;
use crate::dln::error::DlnError;
use crate::dln::events::{Event, ForwardExample, Stage};
use crate::dln::math;
use crate::dln::ops::Operation;
use crate::dln::split::Split;
use crate::dln::state::DevPoint;

use super::forward::{Forward, SeedAt};
use super::usage::UsageBook;
use super::Trainer;

/// Examples per call (and per progress event) when evaluating a split.
const EVAL_CHUNK: usize = 8;

/// The seeds of chunk `c` of an evaluation: iteration 0, the chunk's first example's position.
fn chunk_seeds(operation: Operation, c: usize) -> SeedAt {
    SeedAt {
        iteration: 0,
        operation,
        offset: c * EVAL_CHUNK,
    }
}

/// The share of `examples` the network answers right with `prompts`, in chunks; after each
/// chunk `progress` is told how many examples are done. Calls are counted in `book` under
/// `operation` (`Evaluate` for dev, `Test` for the test split and `dln eval`).
pub async fn accuracy(
    forward: &Forward<'_>,
    examples: &[Example],
    prompts: &[String],
    operation: Operation,
    book: &mut UsageBook,
    mut progress: impl FnMut(usize, &UsageBook),
) -> Result<f64, DlnError> {
    if examples.is_empty() {
        return Ok(0.0);
    }
    let mut right = 0usize;
    for (c, chunk) in examples.chunks(EVAL_CHUNK).enumerate() {
        let at = chunk_seeds(operation, c);
        let r = forward.pass(chunk, prompts, at, book).await?;
        right += r.correct.iter().filter(|c| **c).count();
        progress((c * EVAL_CHUNK + chunk.len()).min(examples.len()), book);
    }
    Ok(right as f64 / examples.len() as f64)
}

/// The network's answers to `examples` with `prompts`: every layer's text and the prediction,
/// as the test split is answered (same seeds, same chunks), for `dln predict`.
pub async fn answers(
    forward: &Forward<'_>,
    examples: &[Example],
    prompts: &[String],
) -> Result<Vec<ForwardExample>, DlnError> {
    let mut out = Vec::with_capacity(examples.len());
    let mut book = UsageBook::default();
    for (c, chunk) in examples.chunks(EVAL_CHUNK).enumerate() {
        let at = chunk_seeds(Operation::Test, c);
        let r = forward.pass(chunk, prompts, at, &mut book).await?;
        out.extend(r.examples(chunk, at.offset));
    }
    Ok(out)
}

impl Trainer {
    /// [`accuracy`] of `prompts` on `examples`, with stage and progress events.
    async fn accuracy_on(
        &mut self,
        examples: &[Example],
        (prompts, demos): (&[String], &[Vec<Demo>]),
        stage: Stage,
        iteration: usize,
    ) -> Result<f64, DlnError> {
        if examples.is_empty() {
            return Ok(0.0);
        }
        let operation = if stage == Stage::Test {
            Operation::Test
        } else {
            Operation::Evaluate
        };
        let total = examples.len();
        self.emit(Event::StageStarted {
            iteration,
            stage,
            layer: None,
            total,
            usage: self.live_usage(None),
        });
        self.expect(stage, total, total * self.net.layers.len());
        let sink = self.sink.clone();
        let forward = Forward {
            net: &self.net,
            shots: &self.shots,
            demos,
            seed: self.train.seed,
        };
        let progress = |done, book: &UsageBook| {
            sink.emit(Event::StageProgress {
                iteration,
                stage,
                done,
                total,
                usage: book.live(None),
            })
        };
        accuracy(
            &forward,
            examples,
            prompts,
            operation,
            &mut self.usage,
            progress,
        )
        .await
    }

    /// Dev evaluation of the current prompts: the best-dev prompts, the memory, and a reset to
    /// the best-dev prompts when patience runs out.
    pub(super) async fn evaluate_dev(&mut self, iteration: usize) -> Result<(), DlnError> {
        if self.data.dev.is_empty() {
            return Ok(());
        }
        let prompts = self.net.prompts();
        let demos = self.net.demos();
        let dev = self.data.dev.clone();
        let acc = self
            .accuracy_on(&dev, (&prompts, &demos), Stage::Evaluate, iteration)
            .await?;
        let outcome = self.best.observe(acc, &prompts, &demos);
        // The memory keeps the M best-dev prompt sets seen so far, not only the improvements:
        // a prompt set below the best can still be among the M best.
        self.memory.add(prompts.clone(), demos.clone(), acc);
        self.dev_history.push(DevPoint {
            iteration,
            accuracy: acc,
            prompts,
            demos: math::stored_demos(demos),
        });
        self.emit(Event::Evaluated {
            iteration,
            split: Split::Dev,
            accuracy: acc,
            best_so_far: outcome.improved,
        });
        if outcome.reset {
            for (l, p) in self.best.prompts.clone().into_iter().enumerate() {
                if let Some(layer) = self.net.layers.get_mut(l) {
                    if !layer.pinned {
                        layer.prompt = p;
                    }
                }
            }
            let best_demos = self.best.demos.clone();
            self.net.set_demos(&best_demos, true);
            self.emit(Event::PatienceReset {
                iteration,
                prompts: self.net.prompts(),
                demos: math::stored_demos(self.net.demos()),
            });
        }
        Ok(())
    }

    /// The best-dev prompts on the test split, and the end of the run.
    pub(super) async fn run_test(&mut self) -> Result<(), DlnError> {
        let prompts = self.best_prompts();
        let demos = self.best_demos();
        let test = self.data.test.clone();
        let it = self.iteration;
        let acc = if test.is_empty() {
            None
        } else {
            let best = (prompts.as_slice(), demos.as_slice());
            Some(self.accuracy_on(&test, best, Stage::Test, it).await?)
        };
        if let Some(a) = acc {
            self.emit(Event::Evaluated {
                iteration: it,
                split: Split::Test,
                accuracy: a,
                best_so_far: false,
            });
        }
        self.test_accuracy = acc;
        self.emit(Event::RunFinished {
            best_prompts: prompts,
            dev_accuracy: self.best.accuracy,
            test_accuracy: acc,
            stopped_early: false,
            best_demos: math::stored_demos(demos),
            stop_reason: None,
        });
        Ok(())
    }
}
