//! The candidates of one update as its proposals arrive: distinct by prompt and shown
//! demonstrations, each proposed one with where it came from ([`ProposalSource`]); the
//! memory's prompts and the demonstration moves join them.

use crate::dln::demos::{self, Demo, DemoMove};
use crate::dln::events::{
    Candidate, CandidateOrigin, LayerIndex, ProposalSource, RejectedProposal,
};
use crate::llm::Generation;
use crate::template::{copies_examples, proposal_key, read_proposal, Rejection};

use super::score::candidate;

/// The candidates of one update as proposals arrive: distinct by [`proposal_key`] of the prompt
/// and the demonstrations' examples.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::dln::trainer) struct Proposals {
    /// The current prompt's text, which a proposal must not echo.
    current: String,
    /// The current demonstrations, which instruction proposals keep.
    demos: Vec<Demo>,
    pub candidates: Vec<Candidate>,
    keys: Vec<String>,
    pub rejected: Vec<RejectedProposal>,
    /// The batch's inputs, which a proposal must not copy.
    inputs: Vec<String>,
}

/// What makes two candidates the same: the prompt's key, and the examples shown in order.
fn candidate_key(prompt: &str, demos: &[Demo]) -> String {
    let key = proposal_key(prompt);
    if demos.is_empty() {
        return key;
    }
    format!("{key}|{:?}", demos::indices(demos))
}

impl Proposals {
    /// The current prompt with its demonstrations alone.
    pub fn new(current: String, demos: Vec<Demo>, inputs: Vec<String>) -> Proposals {
        let mut now = candidate(current.clone(), CandidateOrigin::Current);
        now.demos = demos.clone();
        Proposals {
            candidates: vec![now],
            keys: vec![candidate_key(&current, &demos)],
            current,
            demos,
            rejected: Vec::new(),
            inputs,
        }
    }

    /// Adds a candidate unless one like it is there; whether it was new.
    fn push(&mut self, c: Candidate) -> bool {
        let key = candidate_key(&c.prompt, &c.demos);
        if self.keys.contains(&key) {
            return false;
        }
        self.keys.push(key);
        self.candidates.push(c);
        true
    }

    /// Parses generated proposals: each becomes a candidate (with the current demonstrations)
    /// or a rejection (empty, echo, meta, duplicate, copied). `sources[k]` is where the answers
    /// of request `k` of the call came from (what its candidates record as their provenance).
    pub fn fold(&mut self, answers: Vec<Vec<Generation>>, sources: &[ProposalSource]) {
        let answered = answers.into_iter().enumerate().flat_map(|(k, gs)| {
            let source = sources.get(k).cloned();
            gs.into_iter().map(move |g| (g, source.clone()))
        });
        for (g, source) in answered {
            let read = read_proposal(&g.text, &self.current).and_then(|p| {
                if copies_examples(&p, &self.current, &self.inputs) {
                    Err(Rejection::Copied)
                } else {
                    Ok(p)
                }
            });
            match read {
                Ok(p) => {
                    let mut c = candidate(p, CandidateOrigin::Proposed);
                    c.demos = self.demos.clone();
                    c.proposal = source;
                    if !self.push(c) {
                        self.rejected.push(RejectedProposal {
                            text: g.text,
                            reason: Rejection::Duplicate,
                        });
                    }
                }
                Err(reason) => self.rejected.push(RejectedProposal {
                    text: g.text,
                    reason,
                }),
            }
        }
    }

    /// The memory's prompts (with their demonstrations) for this layer not already among the
    /// candidates.
    pub fn add_memory(&mut self, prompts: Vec<(String, Vec<Demo>)>) {
        for (p, demos) in prompts {
            let mut c = candidate(p, CandidateOrigin::Memory);
            c.demos = demos;
            self.push(c);
        }
    }

    /// Demonstration moves: the current prompt with each new set of demonstrations.
    pub fn add_moves(&mut self, moves: Vec<(Vec<Demo>, DemoMove)>) {
        for (demos, m) in moves {
            let mut c = candidate(self.current.clone(), CandidateOrigin::Proposed);
            c.demos = demos;
            c.demo_move = Some(m);
            self.push(c);
        }
    }

    /// What the rejections were, as a warning: "`r` of `drawn` … rejected (reasons); `p` of
    /// `n` candidates proposed".
    pub fn rejection_warning(
        &self,
        it: usize,
        l: LayerIndex,
        drawn: usize,
        n: usize,
    ) -> Option<String> {
        if self.rejected.is_empty() {
            return None;
        }
        let reasons: Vec<String> = [
            Rejection::Empty,
            Rejection::Echo,
            Rejection::Meta,
            Rejection::Duplicate,
            Rejection::Copied,
            Rejection::Looping,
        ]
        .into_iter()
        .filter_map(|r| {
            let c = self.rejected.iter().filter(|x| x.reason == r).count();
            (c > 0).then(|| format!("{c} {}", r.name()))
        })
        .collect();
        let proposed = self
            .candidates
            .iter()
            .filter(|c| c.origin == CandidateOrigin::Proposed && c.demo_move.is_none())
            .count();
        Some(format!(
            "iteration {}, layer {}: {} of {drawn} proposals drawn were rejected ({}); {proposed} of {n} \
             candidates proposed",
            it + 1,
            l + 1,
            self.rejected.len(),
            reasons.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(text: &str) -> Vec<Generation> {
        vec![Generation {
            text: text.to_string(),
            tokens: 1,
            token_logprobs: None,
            cut: false,
        }]
    }

    #[test]
    fn proposals_become_distinct_candidates_or_rejections() {
        let mut p = Proposals::new("Answer the question.".into(), Vec::new(), Vec::new());
        let sources: Vec<ProposalSource> = (0..3)
            .map(|j| ProposalSource {
                request: j,
                shown: vec![10 + j, 20 + j],
                message: format!("message {j}"),
                template: "propose".into(),
                feedback: Vec::new(),
            })
            .collect();
        p.fold(
            vec![
                gen("Think step by step, then answer with the letter."),
                gen("Think step by step, then answer with the letter."),
                gen(""),
            ],
            &sources,
        );
        let origins: Vec<_> = p.candidates.iter().map(|c| c.origin).collect();
        assert_eq!(
            origins,
            vec![CandidateOrigin::Current, CandidateOrigin::Proposed]
        );
        assert_eq!(
            p.candidates[0].proposal, None,
            "the current prompt was not proposed"
        );
        assert_eq!(
            p.candidates[1].proposal.as_ref(),
            Some(&sources[0]),
            "a proposal records the request that wrote it"
        );
        let reasons: Vec<_> = p.rejected.iter().map(|r| r.reason).collect();
        assert_eq!(reasons, vec![Rejection::Duplicate, Rejection::Empty]);
        p.add_memory(vec![
            ("Answer the question.".into(), Vec::new()),
            ("Pick the larger option.".into(), Vec::new()),
        ]);
        assert_eq!(p.candidates.len(), 3, "the memory adds only what is new");
        assert_eq!(p.candidates[2].origin, CandidateOrigin::Memory);
        let w = p.rejection_warning(2, 0, 3, 4).unwrap();
        assert!(w.contains("2 of 3 proposals drawn were rejected"), "{w}");
        assert!(w.contains("1 of 4 candidates proposed"), "{w}");
        assert_eq!(
            Proposals::new("x".into(), Vec::new(), Vec::new()).rejection_warning(0, 0, 0, 0),
            None
        );
    }
}
