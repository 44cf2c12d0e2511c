//! GEPA's loop on the trainer's stages (`train.optimizer = "gepa"`): the same run, events,
//! checkpoints and workbench as the DLN loop, with GEPA's choices where the two differ.
//!
//! One iteration: draw a parent from the Pareto front of the pool ([`Trainer::select_parent`],
//! its own random stream, so a rerun draws the same); the forward pass of the parent on the
//! minibatch (its traces: inputs, hidden texts, answers, right or wrong with the target); one
//! reflective mutation of the output layer's prompt (Propose with one request, shown the whole
//! minibatch; the `propose_reflective` template unless the layer names another); the parent and
//! the mutation scored on the minibatch by the log-likelihood of the targets (Score); the
//! mutation kept only when it scores strictly better (Select), and then evaluated on every dev
//! example, joining the pool ([`Trainer::evaluate_member`]). The run ends with the member of
//! the best dev accuracy ([`Pool::best`]).

use crate::dln::error::DlnError;
use crate::dln::events::{Event, LayerIndex, Stage};
use crate::dln::gepa::{Member, Pool};
use crate::dln::math;
use crate::dln::ops::{self, Draw};
use crate::dln::split::Split;
use crate::dln::state::DevPoint;

use super::{StageId, Trainer};

/// The stages after GEPA's forward pass: the mutation of the output layer, its score against
/// the parent's and the selection (a dev evaluation follows only when the mutation is kept);
/// nothing when every example of the minibatch is right (GEPA skips a perfect minibatch).
pub(super) fn plan(output: LayerIndex, all_right: bool) -> Vec<StageId> {
    let mut plan = Vec::new();
    if !all_right {
        plan.extend([
            StageId::Propose(output),
            StageId::Score(output),
            StageId::Select(output),
        ]);
    }
    plan.push(StageId::Finish);
    plan
}

impl Trainer {
    /// At the start of a GEPA iteration: the parent drawn from the pool's front becomes the
    /// network's prompts (a pinned layer keeps its own).
    pub(super) fn select_parent(&mut self) -> Result<(), DlnError> {
        let Some(pool) = self.pool.as_ref() else {
            return Ok(());
        };
        let mut rng = ops::stream(self.train.seed, self.iteration, Draw::Parent, 0, 0);
        let front = pool.front();
        let Some(k) = pool.draw(&front, &mut rng) else {
            return Ok(());
        };
        let parent = pool.members[k].clone();
        self.net.set_unpinned_prompts(&parent.prompts);
        self.net.set_demos(&parent.demos, true);
        self.cur_mut()?.parent = Some(k);
        self.emit(Event::ParentSelected {
            iteration: self.iteration,
            member: k,
            layer: self.net.output(),
            prompts: self.net.prompts(),
            demos: math::stored_demos(self.net.demos()),
            front,
        });
        Ok(())
    }

    /// GEPA's dev evaluation: the network's prompts (the starting ones, or a mutation just
    /// kept) scored on every dev example, joining the pool; the run's best-dev prompts become
    /// the pool's best member.
    pub(super) async fn evaluate_member(&mut self, iteration: usize) -> Result<(), DlnError> {
        if self.data.dev.is_empty() {
            return Err(DlnError::Config(
                "`train.optimizer = \"gepa\"` keeps its candidates per dev example, and the dev split is \
                 empty: give the task dev examples (`data.dev` or `data.max_dev`)"
                    .into(),
            ));
        }
        let prompts = self.net.prompts();
        let demos = self.net.demos();
        let dev = self.data.dev.clone();
        let (score, scores) = self
            .scored_on(&dev, (&prompts, &demos), Stage::Evaluate, iteration, true)
            .await?;
        let (parent, made) = match self.current.as_ref() {
            Some(cur) => (cur.parent, iteration + 1),
            None => (None, 0),
        };
        let pool = self.pool.get_or_insert_with(Pool::default);
        let member = pool.add(Member {
            prompts: prompts.clone(),
            demos: math::stored_demos(demos.clone()),
            parent,
            iteration: made,
            dev_accuracy: score.accuracy,
            scores,
        });
        let best = pool.best().unwrap_or(member);
        let front = pool.front();
        let mean_score = pool.members[member].mean_score();
        let top = pool.members[best].clone();
        self.best.accuracy = Some(top.dev_accuracy);
        self.best.prompts = top.prompts;
        self.best.demos = top.demos;
        self.dev_history.push(DevPoint {
            iteration,
            accuracy: score.accuracy,
            prompts: prompts.clone(),
            demos: math::stored_demos(demos),
        });
        self.emit(Event::Evaluated {
            iteration,
            split: Split::Dev,
            accuracy: score.accuracy,
            best_so_far: best == member,
            answers: score.answers,
        });
        self.emit(Event::PoolAdded {
            iteration,
            member,
            parent,
            prompts,
            dev_accuracy: score.accuracy,
            mean_score,
            front,
            best,
        });
        Ok(())
    }

    /// Whether the run has used `train.until_tokens` (training then ends with the test).
    pub(super) fn until_tokens_spent(&self) -> bool {
        self.train
            .until_tokens
            .is_some_and(|n| self.total_usage().billed_tokens() >= n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gepa_iteration_mutates_the_output_layer_and_evaluates_only_what_it_keeps() {
        use StageId::*;
        assert_eq!(
            plan(1, false),
            vec![Propose(1), Score(1), Select(1), Finish]
        );
        assert_eq!(plan(0, true), vec![Finish]);
    }
}
