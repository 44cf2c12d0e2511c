//! The stage loop: [`Trainer::step`] runs the next stage of the iteration (starting one, or
//! finishing it with its events), watched so that its progress is reported as it runs.

use std::sync::Arc;

use super::{progress, IterState, Phase, StageId, StepOutcome, Trainer};
use crate::config::{Mode, Scoring};
use crate::dln::error::DlnError;
use crate::dln::events::{Event, Stage};

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
                    self.current = Some(IterState::new(self.iteration, self.net.layers.len()));
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
                self.run_stage(next).await
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
            self.evaluate_dev(0).await?;
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
        });
        StepOutcome::IterationDone
    }
}
