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
use crate::dln::ops::{self, Operation};
use crate::dln::split::Split;
use crate::dln::state::DevPoint;

use super::forward::{Forward, ForwardResult, SeedAt};
use super::usage::{backend_usage, UsageBook};
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
    progress: impl FnMut(usize, &UsageBook),
) -> Result<SplitScore, DlnError> {
    let at = (operation, None);
    let (score, _) = scored_accuracy(forward, examples, prompts, at, book, stop, progress).await?;
    Ok(score)
}

/// [`accuracy`], and with a burn-in given (`at.1`), each example's score: the output layer's
/// log-likelihood of its target on the context the pass answered it from (GEPA's per-example
/// scores; `ops::output_logprobs`, so the class-renormalized log-probability with classes).
pub(super) async fn scored_accuracy(
    forward: &Forward<'_>,
    examples: &[Example],
    prompts: &[String],
    (operation, burn_in): (Operation, Option<f64>),
    book: &mut UsageBook,
    stop: &CancellationToken,
    mut progress: impl FnMut(usize, &UsageBook),
) -> Result<(SplitScore, Vec<f64>), DlnError> {
    let mut score = SplitScore::default();
    let mut scores = Vec::new();
    if examples.is_empty() {
        return Ok((score, scores));
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
        if let Some(burn_in) = burn_in {
            scores.extend(target_scores(forward, chunk, prompts, &r, at, book, burn_in).await?);
        }
        progress((c * EVAL_CHUNK + chunk.len()).min(examples.len()), book);
    }
    score.accuracy = right as f64 / examples.len() as f64;
    Ok((score, scores))
}

/// The output layer's log-likelihood of each example's target after the pass `r` over them.
async fn target_scores(
    forward: &Forward<'_>,
    examples: &[Example],
    prompts: &[String],
    r: &ForwardResult,
    at: SeedAt,
    book: &mut UsageBook,
    burn_in: f64,
) -> Result<Vec<f64>, DlnError> {
    let net = forward.net;
    let out = net.output();
    let below = out.checked_sub(1).map(|b| r.hidden[b].as_slice());
    let req = forward.layer_requests(out, examples, prompts, below, at)?;
    let pairs = req
        .contexts
        .into_iter()
        .zip(examples.iter().map(|e| e.target.clone()))
        .collect();
    let before = backend_usage(net);
    let layer = &net.layers[out];
    let (lps, _) =
        ops::output_logprobs(layer, net.classes.as_ref(), at.operation, pairs, burn_in).await?;
    book.add(out, at.operation, backend_usage(net).since(&before));
    Ok(lps)
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
        prompts: (&[String], &[Vec<Demo>]),
        stage: Stage,
        iteration: usize,
    ) -> Result<SplitScore, DlnError> {
        let (score, _) = self
            .scored_on(examples, prompts, stage, iteration, false)
            .await?;
        Ok(score)
    }

    /// [`accuracy_on`](Self::accuracy_on), and with `with_scores` each example's score
    /// ([`scored_accuracy`]).
    pub(super) async fn scored_on(
        &mut self,
        examples: &[Example],
        (prompts, demos): (&[String], &[Vec<Demo>]),
        stage: Stage,
        iteration: usize,
        with_scores: bool,
    ) -> Result<(SplitScore, Vec<f64>), DlnError> {
        if examples.is_empty() {
            return Ok(Default::default());
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
        // One request per example and layer, and one more per example for its score.
        let requests = total * (self.net.layers.len() + usize::from(with_scores));
        self.expect(stage, total, requests);
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
        let burn_in = with_scores.then_some(self.train.burn_in);
        scored_accuracy(
            &forward,
            examples,
            prompts,
            (operation, burn_in),
            &mut self.usage,
            &self.stop,
            progress,
        )
        .await
    }

    /// Dev evaluation of the current prompts: the best-dev prompts, the memory, and a reset to
    /// the best-dev prompts when patience runs out.
    pub(super) async fn evaluate_dev(&mut self, iteration: usize) -> Result<(), DlnError> {
        if self.train.gepa() {
            return self.evaluate_member(iteration).await;
        }
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
            self.net.set_unpinned_prompts(&self.best.prompts);
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
