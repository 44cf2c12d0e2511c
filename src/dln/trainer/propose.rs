//! Propose: layer `l`'s backward model, shown the examples the layer got right and wrong,
//! writes `N−1` candidate prompts `π̃`; the current prompt and the memory's join them.

use rand::seq::SliceRandom;
use serde_json::json;

use crate::config::TrainConfig;
use crate::dln::error::DlnError;
use crate::dln::events::{Event, LayerIndex, ProposalSource, Stage};
use crate::dln::math;
use crate::dln::network::Network;
use crate::dln::ops::{self, call_seed, Draw, Operation};
use crate::llm::{Backend, GenerateRequest, Prompt};

use super::feedback;
use super::proposals::Proposals;
use super::{IterState, Trainer};

impl IterState {
    /// What the proposer of layer `l` is shown about example `i`: for the output layer its
    /// answer `ŷ_i` and the target `y_i`, right or wrong by the loss; for a hidden layer its
    /// own text `h_i` as its output and `h*_i` as the correct output (ALGORITHM.md §3 step 5),
    /// right exactly when `h*_i` is `h_i`.
    fn backward_info(&self, output: LayerIndex, l: LayerIndex, i: usize) -> serde_json::Value {
        let h = if l > 0 {
            self.fwd.hidden[l - 1][i].clone()
        } else {
            String::new()
        };
        let (prediction, target, correct) = if l == output {
            (
                self.fwd.predictions[i].clone(),
                self.batch[i].target.clone(),
                self.fwd.correct[i],
            )
        } else {
            let own = self.fwd.hidden[l][i].clone();
            let best = self.best_hidden(l + 1, i);
            let same = best.trim() == own.trim();
            (own, best, same)
        };
        // The input is `x` itself and the hidden text below is `h` (rather than `R(x, h)`, which
        // would show the proposer the same thoughts twice).
        json!({
            "input": self.batch[i].input,
            "h": h,
            "prediction": prediction,
            "output": prediction,
            "target": target,
            "loss": if correct { 0.0 } else { 1.0 },
            "correct": correct,
        })
    }

    /// The batch positions layer `l`'s proposer may be shown. A hidden layer's examples whose
    /// final answer was wrong but whose best hidden text is the layer's own (`h*_i = h_i`)
    /// teach nothing (no better text is known, and calling the text that led to an error
    /// "right" would mislead): they are left out.
    pub(super) fn proposable(&self, output: LayerIndex, l: LayerIndex) -> Vec<usize> {
        let b = self.batch.len();
        if l == output {
            return (0..b).collect();
        }
        (0..b)
            .filter(|&i| {
                self.fwd.correct[i]
                    || self.best_hidden(l + 1, i).trim() != self.fwd.hidden[l][i].trim()
            })
            .collect()
    }
}

/// What proposal request `j` of layer `l` shows: its own held-out half of the eligible
/// examples in its own order (streams derived from the seed, the iteration, the layer and `j`).
pub(super) fn shown_examples(
    train: &TrainConfig,
    iteration: usize,
    l: LayerIndex,
    j: usize,
    eligible: &[usize],
) -> Vec<usize> {
    let mut held = ops::stream(train.seed, iteration, Draw::HeldOut, l, j);
    let mut shown: Vec<usize> = math::proposer_subset(
        eligible.len(),
        train.held_out_ranking && !train.gepa(),
        &mut held,
    )
    .into_iter()
    .map(|k| eligible[k])
    .collect();
    shown.shuffle(&mut ops::stream(train.seed, iteration, Draw::Shuffle, l, j));
    shown
}

/// The length of the opening sentences every input shares (`0` when there are fewer than two
/// inputs or none is shared): the text up to the last sentence end (`.`, `?` or `!` followed
/// by white space) inside the inputs' common start, provided every input goes on after it.
///
/// The built-in proposal template shows it once (`shared_opening`, and not at all when it is
/// the prompt itself) and each input without it (`info.rest`). Where a task's question opens
/// every input (BBH navigate: "If you follow these instructions, do you return to the
/// starting point? …"), a small proposer that reads it once per example writes it back as its
/// instruction — an echo of the starting prompt or a copied input, rejected again and again
/// (docs/RESULTS.md). The student still reads whole inputs.
pub(super) fn shared_opening(inputs: &[impl AsRef<str>]) -> usize {
    let Some((first, rest)) = inputs.split_first() else {
        return 0;
    };
    if rest.is_empty() {
        return 0;
    }
    let first = first.as_ref();
    let common = rest
        .iter()
        .map(AsRef::as_ref)
        .fold(first.len(), |n, other| {
            first[..n]
                .char_indices()
                .zip(other.chars())
                .find(|((_, a), b)| a != b)
                .map_or(n.min(other.len()), |((i, _), _)| i)
        });
    let shared = &first[..common];
    let mut end = 0;
    for (i, c) in shared.char_indices() {
        let next = shared[i + c.len_utf8()..].chars().next();
        if matches!(c, '.' | '?' | '!') && next.is_some_and(char::is_whitespace) {
            end = i + c.len_utf8();
        }
    }
    if inputs.iter().all(|s| !s.as_ref()[end..].trim().is_empty()) {
        end
    } else {
        0
    }
}

/// Layer `l`'s prompt-proposal template `B_π` with the shown examples' infos, the opening
/// every input shares ([`shared_opening`], empty when none) and message alternative `j mod len`;
/// a person's notes (`feedback`) and the metric's right/wrong (`metric_feedback`) as `train` says.
pub(super) fn proposal_prompt(
    net: &Network,
    train: &TrainConfig,
    l: LayerIndex,
    j: usize,
    opening: &str,
    infos: &[serde_json::Value],
) -> Result<Prompt, DlnError> {
    let layer = &net.layers[l];
    let next_prompt = net
        .layers
        .get(l + 1)
        .map(|n| n.prompt.clone())
        .unwrap_or_default();
    let t = &layer.propose_prompt;
    let text = t.render(&json!({
        "prompt": layer.prompt,
        "backward_infos": infos,
        "shared_opening": opening,
        "message": t.message(j),
        "next_prompt": next_prompt,
        "feedback": feedback::prompt_feedback(layer, train),
        "metric_feedback": train.metric_feedback,
    }))?;
    Ok(t.prompt(text))
}

/// Proposal request `j` of layer `l` with its prompt.
pub(super) fn proposal_request(
    net: &Network,
    train: &TrainConfig,
    iteration: usize,
    l: LayerIndex,
    j: usize,
    prompt: Prompt,
) -> GenerateRequest {
    let layer = &net.layers[l];
    GenerateRequest {
        prompt,
        temperature: layer.backward_temperature,
        top_p: train.backward_top_p,
        max_tokens: layer.backward_max_tokens,
        stop: layer.propose_prompt.stop.clone(),
        seed: call_seed(train.seed, iteration, Operation::Propose, l, j),
        n: 1,
    }
}

impl Trainer {
    /// Proposal request `j` of layer `l`, its shown examples dropped from the end until the
    /// prompt and the answer fit the backward model's context; returns how many were dropped
    /// and what the request showed (its provenance: the training-split positions of the
    /// examples kept, the message, the template).
    /// `cut` is the length of the opening the batch's inputs share ([`shared_opening`]).
    async fn fitted_proposal(
        &self,
        l: LayerIndex,
        j: usize,
        eligible: &[usize],
        cut: usize,
    ) -> Result<(GenerateRequest, usize, ProposalSource), DlnError> {
        let it = self.iteration;
        let cur = self.cur()?;
        let opening = cur.batch.first().map_or("", |e| e.input[..cut].trim());
        let shown = shown_examples(&self.train, it, l, j, eligible);
        let infos: Vec<serde_json::Value> = shown
            .iter()
            .map(|&i| {
                let mut info = cur.backward_info(self.net.output(), l, i);
                info["rest"] = json!(cur.batch[i].input[cut..].trim_start());
                info
            })
            .collect();
        let layer = &self.net.layers[l];
        let backend = &layer.backends.backward;
        let room = backend.context_size();
        let mut keep = infos.len();
        loop {
            let prompt = proposal_prompt(&self.net, &self.train, l, j, opening, &infos[..keep])?;
            let fits = room == 0 || {
                let needed = prompt_tokens(backend.as_ref(), &prompt).await
                    + layer.backward_max_tokens as usize;
                needed <= room
            };
            if fits || keep == 0 {
                let request = proposal_request(&self.net, &self.train, it, l, j, prompt);
                let source = ProposalSource {
                    request: j,
                    shown: shown[..keep]
                        .iter()
                        .map(|&i| cur.batch_index.get(i).copied().unwrap_or(i))
                        .collect(),
                    message: layer.propose_prompt.message(j).to_string(),
                    template: layer.propose_prompt.name.clone(),
                    feedback: feedback::notes_shown(layer, &self.train),
                };
                return Ok((request, infos.len() - keep, source));
            }
            keep -= 1;
        }
    }

    pub(super) async fn stage_propose(&mut self, l: LayerIndex) -> Result<(), DlnError> {
        if !self.net.layers[l].updatable() {
            return Ok(());
        }
        let before = self.meter();
        let it = self.iteration;
        // GEPA: one reflective mutation per iteration.
        let n = if self.train.gepa() {
            1
        } else {
            self.train.num_candidates.saturating_sub(1)
        };
        let rounds = self.train.proposal_rounds.max(1);
        self.emit(Event::StageStarted {
            iteration: it,
            stage: Stage::Propose,
            layer: Some(l),
            total: n,
            usage: self.live_usage(None),
        });
        let layer = &self.net.layers[l];
        let inputs: Vec<String> = self.cur()?.batch.iter().map(|e| e.input.clone()).collect();
        let cut = shared_opening(&inputs);
        let mut proposals = Proposals::new(layer.prompt.clone(), layer.demos.clone(), inputs);
        let mut drawn = 0;
        let mut dropped = 0;
        let eligible = self.cur()?.proposable(self.net.output(), l);
        if eligible.is_empty() && n > 0 {
            self.emit(Event::Warning {
                message: format!(
                    "iteration {}, layer {}: no example has a better hidden text than the layer's own, so there is \
                     nothing to show the proposer; no proposals this update",
                    it + 1,
                    l + 1
                ),
            });
        }
        // One request per proposal of the first round (redraws only finish the count).
        self.expect(Stage::Propose, n, n);
        // Rejected proposals are replaced by new draws (new seeds, new held-out halves), for at
        // most `rounds` rounds, until N−1 distinct proposals parse.
        for _ in 0..rounds {
            let need = n + 1 - proposals.candidates.len();
            if need == 0 || eligible.is_empty() {
                break;
            }
            let mut requests = Vec::with_capacity(need);
            let mut sources = Vec::with_capacity(need);
            for j in drawn..drawn + need {
                let (r, d, source) = self.fitted_proposal(l, j, &eligible, cut).await?;
                dropped = dropped.max(d);
                requests.push(r);
                sources.push(source);
            }
            drawn += need;
            let layer = &self.net.layers[l];
            let answers = ops::generate_backward(layer, Operation::Propose, requests).await?;
            proposals.fold(answers, &sources);
        }
        let mut remembered = if self.train.gepa() {
            Vec::new()
        } else {
            self.memory.layer_prompts(l)
        };
        let layer = &self.net.layers[l];
        if layer.demos_pinned {
            // Pinned demonstrations: a remembered instruction comes back with today's set.
            for (_, demos) in &mut remembered {
                demos.clone_from(&layer.demos);
            }
        }
        proposals.add_memory(remembered);
        proposals.add_moves(self.demo_moves(l)?);
        if dropped > 0 {
            self.emit(Event::Warning {
                message: format!(
                    "iteration {}, layer {}: up to {dropped} shown examples were left out of proposal prompts so \
                     that they fit the backward model's context",
                    it + 1,
                    l + 1
                ),
            });
        }
        if let Some(message) = proposals.rejection_warning(it, l, drawn, n) {
            self.emit(Event::Warning { message });
        }
        self.emit(Event::CandidatesProposed {
            iteration: it,
            layer: l,
            candidates: proposals.candidates.clone(),
            drawn,
            rejected: proposals.rejected,
            examples_dropped: dropped,
        });
        self.cur_mut()?.candidates[l] = proposals.candidates;
        self.account(l, Operation::Propose, before);
        Ok(())
    }
}

/// Tokens of a generation prompt as the backward model will read it: raw text as is; a chat as
/// its messages and answer start plus a margin for the chat template's markup.
async fn prompt_tokens(backend: &dyn Backend, prompt: &Prompt) -> usize {
    /// Tokens the chat markup of a system and a user turn and an assistant start may take.
    const CHAT_MARKUP: usize = 32;
    let count = |t: String| async move { backend.count_tokens(&t).await.unwrap_or(0) };
    match prompt {
        Prompt::Raw { text } => count(text.clone()).await,
        Prompt::Chat {
            messages,
            assistant_prefix,
        } => {
            let mut text: String = messages
                .iter()
                .map(|m| format!("{}\n", m.content))
                .collect();
            text.push_str(assistant_prefix);
            count(text).await + CHAT_MARKUP
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dln::trainer::testing::{iteration, network};

    #[test]
    fn the_opening_every_input_shares_is_found_at_a_sentence_end() {
        // BBH navigate: the task's question opens every input.
        let nav = [
            "If you follow these instructions, do you return to the starting point? Always face forward. Take 1 step left.",
            "If you follow these instructions, do you return to the starting point? Take 7 steps. Turn around.",
            "If you follow these instructions, do you return to the starting point? Always face forward. Take 2 steps right.",
        ];
        let n = shared_opening(&nav);
        assert_eq!(
            &nav[0][..n],
            "If you follow these instructions, do you return to the starting point?"
        );
        assert_eq!(nav[1][n..].trim_start(), "Take 7 steps. Turn around.");
        // A shared start that ends mid-sentence (BBH hyperbaton) is not an opening.
        let hyp = [
            "Which sentence has the correct adjective order:\nOptions:\n(A) big old car\n(B) old big car",
            "Which sentence has the correct adjective order:\nOptions:\n(A) red new ball\n(B) new red ball",
        ];
        assert_eq!(shared_opening(&hyp), 0);
        // Nothing shared, one input, or an input that is only the shared sentence: nothing.
        assert_eq!(shared_opening(&["a film. ok", "the plot. no"]), 0);
        assert_eq!(shared_opening(&["Is it? Yes. Sure."]), 0);
        assert_eq!(shared_opening(&["Is it? Yes", "Is it? "]), 0);
        // Several shared sentences, and a multi-byte character inside them.
        let two = ["Ça va. Read it. Go left.", "Ça va. Read it. Go right."];
        assert_eq!(&two[0][..shared_opening(&two)], "Ça va. Read it.");
    }

    #[test]
    fn a_request_shows_its_own_half_of_the_eligible_examples() {
        let train = TrainConfig::default();
        let eligible = vec![0, 2, 3, 5];
        let a = shown_examples(&train, 1, 0, 0, &eligible);
        assert_eq!(
            a,
            shown_examples(&train, 1, 0, 0, &eligible),
            "the same streams"
        );
        assert_eq!(a.len(), 2, "held-out ranking shows half");
        assert!(a.iter().all(|i| eligible.contains(i)));
        let all = TrainConfig {
            held_out_ranking: false,
            ..TrainConfig::default()
        };
        assert_eq!(shown_examples(&all, 1, 0, 0, &eligible).len(), 4);
    }

    #[test]
    fn a_hidden_layer_is_shown_only_examples_with_a_better_text_known() {
        let net = network(2);
        let cur = iteration(&net, 3, &[true, false, false]);
        // No posterior yet: h* is the layer's own text, so only the right example teaches.
        assert_eq!(cur.proposable(1, 0), vec![0]);
        assert_eq!(cur.proposable(1, 1), vec![0, 1, 2]);
        let info = cur.backward_info(1, 1, 1);
        assert_eq!(info["correct"], false);
        assert_eq!(info["target"], cur.batch[1].target.as_str());
        let prompt = proposal_prompt(&net, &TrainConfig::default(), 1, 0, "", &[info]).unwrap();
        let request = proposal_request(&net, &TrainConfig::default(), 4, 1, 2, prompt);
        assert_eq!(
            request.seed,
            call_seed(TrainConfig::default().seed, 4, Operation::Propose, 1, 2)
        );
    }
}
