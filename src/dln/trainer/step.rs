//! The stage loop: [`Trainer::step`] runs the next stage of the iteration (starting one, or
//! finishing it with its events), watched so that its progress is reported as it runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::eval_due;
use super::{progress, IterState, Phase, StageId, StepOutcome, Trainer};
use crate::config::{Mode, Scoring};
use crate::dln::error::DlnError;
use crate::dln::events::{Event, Stage};
use crate::llm::Usage;

impl Trainer {
    /// Runs the next stage, its progress events emitted as its model requests are answered.
    pub async fn step(&mut self) -> Result<StepOutcome, DlnError> {
        let backends = progress::backends(&self.net);
        let expected = Arc::clone(&self.expected);
        let sink = Arc::clone(&self.sink);
        let out = progress::watched(self.next_stage(), backends, expected, sink).await;
        if let Ok(mut e) = self.expected.lock() {
            *e = None;
        }
        out
    }

    /// The running stage will make `requests` model requests, after which its counter reads
    /// `total` (set once its requests are known; `StageProgress` follows their answers).
    pub(super) fn expect(&self, stage: Stage, total: usize, requests: usize) {
        let answered_before = progress::answered(&progress::backends(&self.net));
        if let Ok(mut e) = self.expected.lock() {
            *e = Some(progress::Expected {
                iteration: self.iteration,
                stage,
                total,
                requests,
                answered_before,
            });
        }
    }

    /// The running stage's requests are answered: the watcher stops counting them (the stage
    /// emits its own last progress).
    pub(super) fn expected_done(&self) {
        if let Ok(mut e) = self.expected.lock() {
            *e = None;
        }
    }

    async fn next_stage(&mut self) -> Result<StepOutcome, DlnError> {
        match self.phase {
            Phase::Start => {
                self.start().await?;
                Ok(StepOutcome::Continue)
            }
            Phase::Iterating => {
                if self.current.is_none() {
                    if self.iteration >= self.train.iterations || self.until_tokens_spent() {
                        self.phase = Phase::Test;
                        return Ok(StepOutcome::Continue);
                    }
                    // A resumed iteration keeps its recorded edits until it completes again.
                    self.snapshot = self.state();
                    let held = self.pauses.total();
                    self.current =
                        Some(IterState::new(self.iteration, self.net.layers.len(), held));
                    self.usage.begin_iteration();
                    if self.train.gepa() {
                        self.select_parent()?;
                    }
                }
                self.replay_edits();
                let next = self
                    .current
                    .as_mut()
                    .and_then(|c| c.queue.pop_front())
                    .unwrap_or(StageId::Finish);
                if let Some(c) = self.current.as_mut() {
                    c.done.push(next);
                }
                self.forecast(next);
                let clock = self.stage_clock();
                let out = self.run_stage(next).await;
                self.keep_time(next, clock);
                out
            }
            Phase::Test => {
                self.run_test().await?;
                self.phase = Phase::Done;
                Ok(StepOutcome::Finished)
            }
            Phase::Done => Ok(StepOutcome::Finished),
        }
    }

    /// Before the first iteration: a warning if scoring falls back to accuracy, and the
    /// baseline dev evaluation.
    async fn start(&mut self) -> Result<(), DlnError> {
        let o = self.net.output();
        if self.train.scoring == Scoring::Logprob && self.accuracy_scoring(o) {
            self.emit(Event::Warning {
                message: format!(
                    "the backend of layer {o} gives no log-probabilities: candidates are \
                     ranked by batch accuracy (train.scoring = \"accuracy\")"
                ),
            });
        }
        let baseline = self.train.mode != Mode::Dln;
        // GEPA's pool starts from the starting prompts' dev scores.
        if baseline || self.train.first_eval || self.train.gepa() {
            let clock = self.stage_clock();
            self.evaluate_dev(0).await?;
            self.keep_time(StageId::Evaluate, clock);
        }
        self.phase = if baseline {
            Phase::Test
        } else {
            Phase::Iterating
        };
        Ok(())
    }

    async fn run_stage(&mut self, stage: StageId) -> Result<StepOutcome, DlnError> {
        match stage {
            StageId::Forward => self.stage_forward().await?,
            StageId::PosteriorSampling(l) => self.stage_posterior(l).await?,
            StageId::Sharpening(l) => self.stage_sharpen(l).await?,
            StageId::Rescore(l) => self.stage_rescore(l).await?,
            StageId::Propose(l) => self.stage_propose(l).await?,
            StageId::Score(l) => self.stage_score(l).await?,
            StageId::Select(l) => self.stage_select(l),
            StageId::Evaluate => {
                let it = self.iteration;
                self.evaluate_dev(it).await?;
            }
            StageId::Finish => return Ok(self.finish_iteration()),
        }
        Ok(StepOutcome::Continue)
    }

    pub(super) fn cur(&self) -> Result<&IterState, DlnError> {
        self.current
            .as_ref()
            .ok_or_else(|| DlnError::Command("no iteration in progress".into()))
    }

    pub(super) fn cur_mut(&mut self) -> Result<&mut IterState, DlnError> {
        self.current
            .as_mut()
            .ok_or_else(|| DlnError::Command("no iteration in progress".into()))
    }

    fn finish_iteration(&mut self) -> StepOutcome {
        let Some(cur) = self.current.take() else {
            return StepOutcome::Continue;
        };
        let usage = self.usage.end_iteration();
        self.replay.clear();
        let it = cur.iteration;
        let acc = cur.fwd.accuracy();
        let elbo = if cur.elbo.iter().any(|e| e.is_some()) {
            let total = cur.elbo.iter().flatten().sum();
            self.emit(Event::Elbo {
                iteration: it,
                terms: cur.elbo.clone(),
                total,
            });
            Some(total)
        } else {
            None
        };
        self.train_accuracy.push(acc);
        self.iteration += 1;
        self.emit(Event::IterationDone {
            iteration: it,
            train_accuracy: acc,
            elbo,
            usage,
            elapsed_ms: cur.started.elapsed().as_millis() as u64,
            paused_ms: self
                .pauses
                .total()
                .saturating_sub(cur.held_before)
                .as_millis() as u64,
        });
        StepOutcome::IterationDone
    }

    /// When a stage starts: the time, the time held so far and the backends' counters.
    fn stage_clock(&self) -> (Instant, Duration, Usage) {
        (Instant::now(), self.pauses.total(), self.meter())
    }

    /// A stage started at `clock` ended: its time, held time left out, is a sample of its kind.
    fn keep_time(&mut self, stage: StageId, (started, held, before): (Instant, Duration, Usage)) {
        let ran = started
            .elapsed()
            .saturating_sub(self.pauses.total().saturating_sub(held));
        let usage = self.meter().since(&before);
        self.pace.observe(stage, ran.as_millis() as u64, &usage);
    }

    /// Before `next` runs: what the rest of the iteration and of the run will take, from the
    /// stages still planned. At an iteration's first stage its plan is not known yet (a batch
    /// all right skips the updates): the forecast is that of a full iteration. Iterations to
    /// come are weighted by how often past batches were all right.
    fn forecast(&self, next: StageId) {
        if self.train.gepa() {
            return;
        }
        let output = self.net.output();
        let plan_of = |it: usize, all_right: bool| {
            let mut p = vec![StageId::Forward];
            p.extend(super::forward::plan(
                output,
                all_right,
                eval_due(&self.train, it + 1),
            ));
            p
        };
        let iteration_plan = |it: usize| plan_of(it, false);
        // An iteration to come is expected to be all right as often as the past ones were
        // (its forward pass then skips every update): its forecast is the mean of the two plans
        // weighted so. The iteration starting now is forecast in full, and again once its
        // forward pass knows.
        let right = past_all_right(&self.train_accuracy);
        let expected = |it: usize| -> Option<u64> {
            let full = self.pace.plan_ms(&iteration_plan(it))?;
            let quick = self.pace.plan_ms(&plan_of(it, true))?;
            Some(((1.0 - right) * full as f64 + right * quick as f64).round() as u64)
        };
        let it = self.iteration;
        let this = match next {
            StageId::Forward => self.pace.plan_ms(&iteration_plan(it)),
            _ => {
                let queued: Vec<StageId> = self
                    .current
                    .iter()
                    .flat_map(|c| c.queue.iter().copied())
                    .collect();
                self.pace
                    .plan_ms(&queued)
                    .zip(self.pace.stage_ms(next))
                    .map(|(a, b)| a + b)
            }
        };
        let later: Option<u64> = (it + 1..self.train.iterations).map(expected).sum();
        // The test: a dev evaluation's time per example, over the test split.
        let test = match (self.data.test.len(), self.data.dev.len()) {
            (0, _) => Some(0),
            (_, 0) => None,
            (t, d) => self
                .pace
                .stage_ms(StageId::Evaluate)
                .map(|ms| ms * t as u64 / d as u64),
        };
        let run = this.zip(later).zip(test).map(|((a, b), c)| a + b + c);
        // Emitted even when nothing can be forecast yet: an iteration's first forecast is the
        // one made at its start.
        self.emit(Event::Forecast {
            iteration: it,
            iteration_left_ms: this,
            stage_ms: self.pace.stage_ms(next),
            run_left_ms: run,
        });
    }
}

/// The share of past iterations whose batch the network answered all right.
fn past_all_right(train_accuracy: &[f64]) -> f64 {
    if train_accuracy.is_empty() {
        return 0.0;
    }
    let right = train_accuracy.iter().filter(|a| **a >= 1.0).count();
    right as f64 / train_accuracy.len() as f64
}

#[cfg(test)]
mod tests {
    use super::past_all_right;

    #[test]
    fn the_share_of_batches_all_right_counts_only_perfect_ones() {
        assert_eq!(past_all_right(&[]), 0.0);
        assert_eq!(past_all_right(&[1.0, 0.9, 1.0, 0.5]), 0.5);
        assert_eq!(past_all_right(&[0.99]), 0.0);
    }
}
