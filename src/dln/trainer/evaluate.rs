//! Evaluation: the accuracy of a network's prompts on a split, as a free function over the
//! network (what `dln eval` and `dln predict` run outside a trainer), and the trainer's dev
//! evaluation (best-dev prompts, memory, patience) and final test.

use std::collections::BTreeMap;

use tokio_util::sync::CancellationToken;

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

/// How a split was answered: the share answered right, and how many times each answer (the
/// output layer's prediction, trimmed) was given. A network that gives one answer to nearly
/// every example scores that answer's share of the split, whatever its prompts say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SplitScore {
    pub accuracy: f64,
    pub answers: BTreeMap<String, usize>,
}

/// The most common answer of `answers` with its share of all answers (ties: the first in
/// order), or `None` when there are none.
pub fn top_answer(answers: &BTreeMap<String, usize>) -> Option<(&str, f64)> {
    let total: usize = answers.values().sum();
    let (answer, n) = answers
        .iter()
        .fold(None, |best: Option<(&String, usize)>, (a, &n)| match best {
            Some((_, m)) if m >= n => best,
            _ => Some((a, n)),
        })?;
    (total > 0).then(|| (answer.as_str(), n as f64 / total as f64))
}

/// From this share of one answer on, a split counts as answered the same way throughout.
pub const ONE_ANSWER_SHARE: f64 = 0.9;

/// `answers "No" to 28 of 30` when one answer was given to at least [`ONE_ANSWER_SHARE`] of
/// five or more examples: the accuracy then measures that answer's share of the split.
pub fn one_answer(answers: &BTreeMap<String, usize>) -> Option<String> {
    let total: usize = answers.values().sum();
    let (answer, share) = top_answer(answers)?;
    (total >= 5 && share >= ONE_ANSWER_SHARE).then(|| {
        let n = answers[answer];
        format!("answers {answer:?} to {n} of {total}")
    })
}

/// The share of `examples` the network answers right with `prompts`, and its answers, in
/// chunks; after each chunk `progress` is told how many examples are done. Calls are counted
/// in `book` under `operation` (`Evaluate` for dev, `Test` for the test split and `dln eval`).
/// Once `stop` is cancelled no further chunk is asked ([`DlnError::Interrupted`]): a split
/// of hundreds of examples is left within one chunk, and the chunks answered stay in the call
/// cache for the rerun.
pub async fn accuracy(
    forward: &Forward<'_>,
    examples: &[Example],
    prompts: &[String],
    operation: Operation,
    book: &mut UsageBook,
    stop: &CancellationToken,
    mut progress: impl FnMut(usize, &UsageBook),
) -> Result<SplitScore, DlnError> {
    let mut score = SplitScore::default();
    if examples.is_empty() {
        return Ok(score);
    }
    let mut right = 0usize;
    for (c, chunk) in examples.chunks(EVAL_CHUNK).enumerate() {
        if stop.is_cancelled() {
            return Err(DlnError::Interrupted);
        }
        let at = chunk_seeds(operation, c);
        let r = forward.pass(chunk, prompts, at, book).await?;
        right += r.correct.iter().filter(|c| **c).count();
        for p in &r.predictions {
            *score.answers.entry(p.trim().to_string()).or_default() += 1;
        }
        progress((c * EVAL_CHUNK + chunk.len()).min(examples.len()), book);
    }
    score.accuracy = right as f64 / examples.len() as f64;
    Ok(score)
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
    ) -> Result<SplitScore, DlnError> {
        if examples.is_empty() {
            return Ok(SplitScore::default());
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
            &self.stop,
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
        let SplitScore {
            accuracy: acc,
            answers,
        } = self
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
            answers,
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
        let score = if test.is_empty() {
            None
        } else {
            let best = (prompts.as_slice(), demos.as_slice());
            Some(self.accuracy_on(&test, best, Stage::Test, it).await?)
        };
        let acc = score.as_ref().map(|s| s.accuracy);
        if let Some(SplitScore { accuracy, answers }) = score {
            self.test_answers.clone_from(&answers);
            self.emit(Event::Evaluated {
                iteration: it,
                split: Split::Test,
                accuracy,
                best_so_far: false,
                answers,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_answer_is_the_most_common_with_its_share() {
        let answers: BTreeMap<String, usize> =
            [("No".to_string(), 27), ("Yes".to_string(), 3)].into();
        assert_eq!(top_answer(&answers), Some(("No", 0.9)));
        let tie: BTreeMap<String, usize> = [("A".to_string(), 2), ("B".to_string(), 2)].into();
        assert_eq!(top_answer(&tie), Some(("A", 0.5)));
        assert_eq!(top_answer(&BTreeMap::new()), None);
        assert_eq!(
            one_answer(&answers).as_deref(),
            Some("answers \"No\" to 27 of 30")
        );
        assert_eq!(one_answer(&tie), None);
        let few: BTreeMap<String, usize> = [("No".to_string(), 4)].into();
        assert_eq!(one_answer(&few), None, "too few examples to say");
    }
}
