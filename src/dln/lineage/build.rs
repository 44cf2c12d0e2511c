//! The reducer: one event at a time into the [`Lineage`].

use crate::dln::demos::{indices, Demo};
use crate::dln::events::{Candidate, CandidateOrigin, Event};

use super::{Entry, LayerLineage, Lineage, Mark, MarkKind, Node, NodeKind, Update};

impl Lineage {
    /// Apply one event (events that say nothing about prompts change nothing).
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                layers,
                start_iteration,
                ..
            } => {
                self.at = *start_iteration;
                for info in layers {
                    let demos = indices(&info.demos);
                    match self.layers.get_mut(info.index) {
                        // A resumed run: its prompts are where the log left them, or were
                        // changed outside it.
                        Some(l) => {
                            if !l.is_current(&info.prompt, &demos) {
                                let branching = self.branching;
                                let to = l.find(&info.prompt, &demos).unwrap_or_else(|| {
                                    let parent = Some(l.current);
                                    let kind = if branching {
                                        NodeKind::Edited
                                    } else {
                                        NodeKind::Unknown
                                    };
                                    let mut n = l.new_node(kind, &info.prompt, parent);
                                    n.iteration = Some(*start_iteration);
                                    n.demos = demos.clone();
                                    n.edited = branching;
                                    l.push(n)
                                });
                                l.current = to;
                            }
                            l.pinned = info.pinned;
                        }
                        None => {
                            while self.layers.len() <= info.index {
                                let layer = self.layers.len();
                                self.layers.push(LayerLineage {
                                    layer,
                                    ..LayerLineage::default()
                                });
                            }
                            let l = &mut self.layers[info.index];
                            let mut n = l.new_node(NodeKind::Start, &info.prompt, None);
                            n.demos = demos;
                            n.pinned = info.pinned;
                            l.current = l.push(n);
                            l.pinned = info.pinned;
                        }
                    }
                }
                self.branching = false;
            }
            Event::CandidatesProposed {
                iteration,
                layer,
                candidates,
                ..
            } => {
                self.at = *iteration;
                if let Some(l) = self.layers.get_mut(*layer) {
                    l.propose(*iteration, candidates);
                }
            }
            Event::CandidatesScored {
                iteration,
                layer,
                candidates,
                winner,
            } => {
                self.at = *iteration;
                if let Some(l) = self.layers.get_mut(*layer) {
                    l.score(*iteration, candidates, *winner);
                }
            }
            Event::PromptSelected {
                iteration,
                layer,
                prompt,
                demos,
                ..
            } => {
                self.at = *iteration;
                if let Some(l) = self.layers.get_mut(*layer) {
                    l.select(*iteration, prompt, demos);
                }
            }
            Event::PromptReplaced { layer, prompt } => {
                let at = self.at;
                if let Some(l) = self.layers.get_mut(*layer) {
                    let demos = l.current_demos();
                    if !l.is_current(prompt, &demos) {
                        l.edit(at, prompt, demos, None);
                    }
                }
            }
            Event::DemosReplaced { layer, demos } => {
                let at = self.at;
                if let Some(l) = self.layers.get_mut(*layer) {
                    let prompt = l.nodes[l.current].prompt.clone();
                    let demos = indices(demos);
                    if !l.is_current(&prompt, &demos) {
                        l.edit(at, &prompt, demos, Some("demonstrations edited".into()));
                    }
                }
            }
            Event::PromptPinned { layer, prompt } => {
                let at = self.at;
                if let Some(l) = self.layers.get_mut(*layer) {
                    l.pin(at, prompt);
                }
            }
            Event::Branched { iteration, .. } => {
                self.at = *iteration;
                self.branching = true;
                for l in &mut self.layers {
                    let node = l.current;
                    l.marks.push(Mark {
                        after: l.updates.len(),
                        iteration: *iteration,
                        node,
                        what: MarkKind::Branched,
                    });
                }
            }
            Event::PromptUnpinned { layer } => {
                let at = self.at;
                if let Some(l) = self.layers.get_mut(*layer) {
                    l.pinned = false;
                    let node = l.current;
                    l.marks.push(Mark {
                        after: l.updates.len(),
                        iteration: at,
                        node,
                        what: MarkKind::Unpinned,
                    });
                }
            }
            // Patience ran out, or GEPA drew the parent its iteration mutates: the layers go
            // back to a prompt they had.
            Event::PatienceReset {
                iteration,
                prompts,
                demos,
            }
            | Event::ParentSelected {
                iteration,
                prompts,
                demos,
                ..
            } => {
                let what = if matches!(event, Event::ParentSelected { .. }) {
                    MarkKind::Parent
                } else {
                    MarkKind::Reset
                };
                self.at = *iteration;
                for (i, prompt) in prompts.iter().enumerate() {
                    if let Some(l) = self.layers.get_mut(i) {
                        let demos = demos
                            .get(i)
                            .map(|d| indices(d))
                            .unwrap_or_else(|| l.current_demos());
                        l.reset(*iteration, prompt, demos, what);
                    }
                }
            }
            Event::StageStarted { iteration, .. } | Event::ForwardDone { iteration, .. } => {
                self.at = *iteration;
            }
            // Edits after an iteration ended count towards the next one.
            Event::IterationDone { iteration, .. } => self.at = iteration + 1,
            _ => {}
        }
    }
}

impl LayerLineage {
    fn new_node(&self, kind: NodeKind, prompt: &str, parent: Option<usize>) -> Node {
        Node {
            id: self.nodes.len(),
            layer: self.layer,
            iteration: None,
            kind,
            prompt: prompt.to_string(),
            demos: Vec::new(),
            demo_move: None,
            parent,
            score: None,
            rank: None,
            margin: None,
            won: false,
            lost: false,
            pinned: false,
            edited: false,
            source: None,
            feedback: Vec::new(),
        }
    }

    fn push(&mut self, node: Node) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node { id, ..node });
        id
    }

    fn current_demos(&self) -> Vec<usize> {
        self.nodes
            .get(self.current)
            .map(|n| n.demos.clone())
            .unwrap_or_default()
    }

    fn is_current(&self, prompt: &str, demos: &[usize]) -> bool {
        self.nodes
            .get(self.current)
            .is_some_and(|n| n.prompt == prompt && n.demos == demos)
    }

    /// The node where a prompt with these demonstrations first appeared.
    fn find(&self, prompt: &str, demos: &[usize]) -> Option<usize> {
        self.nodes
            .iter()
            .find(|n| n.prompt == prompt && n.demos == demos)
            .map(|n| n.id)
    }

    fn propose(&mut self, iteration: usize, candidates: &[Candidate]) {
        // The same update proposed again (a resumed run reruns the iteration it stopped in):
        // the new proposal replaces the old one and the nodes it made.
        if let Some(u) = self.updates.last() {
            let rerun = u.iteration == iteration && u.parent == self.current;
            if rerun && self.marks.iter().all(|m| m.node < u.first_new) {
                self.nodes.truncate(u.first_new);
                self.updates.pop();
            }
        }
        let parent = self.current;
        let first_new = self.nodes.len();
        let mut entries = Vec::with_capacity(candidates.len());
        for c in candidates {
            let demos = indices(&c.demos);
            let node = match c.origin {
                CandidateOrigin::Current if self.is_current(&c.prompt, &demos) => parent,
                CandidateOrigin::Memory | CandidateOrigin::Current => {
                    let first = self.find(&c.prompt, &demos);
                    let kind = if first.is_some() {
                        NodeKind::Memory
                    } else {
                        NodeKind::Unknown
                    };
                    let mut n = self.new_node(kind, &c.prompt, first.or(Some(parent)));
                    n.iteration = Some(iteration);
                    n.demos = demos;
                    self.push(n)
                }
                CandidateOrigin::Proposed => {
                    let kind = if c.demo_move.is_some() {
                        NodeKind::DemoMove
                    } else {
                        NodeKind::Proposed
                    };
                    let mut n = self.new_node(kind, &c.prompt, Some(parent));
                    n.iteration = Some(iteration);
                    n.demos = demos;
                    n.demo_move = c.demo_move.as_ref().map(|m| m.describe());
                    n.source = c.proposal.clone();
                    n.feedback = c
                        .proposal
                        .as_ref()
                        .map(|p| p.feedback.clone())
                        .unwrap_or_default();
                    self.push(n)
                }
            };
            entries.push(Entry {
                node,
                origin: c.origin,
                score: None,
            });
        }
        self.updates.push(Update {
            iteration,
            parent,
            entries,
            winner: None,
            first_new,
        });
    }

    fn score(&mut self, iteration: usize, candidates: &[Candidate], winner: usize) {
        let fresh = self
            .updates
            .last()
            .is_some_and(|u| u.iteration == iteration && u.winner.is_none());
        if !fresh {
            // Scored without a recorded proposal: propose first.
            self.propose(iteration, candidates);
        }
        let Some(u) = self.updates.last_mut() else {
            return;
        };
        let same_order = u.entries.len() == candidates.len();
        for (k, c) in candidates.iter().enumerate() {
            let slot = if same_order {
                Some(k)
            } else {
                let demos = indices(&c.demos);
                u.entries.iter().position(|e| {
                    self.nodes[e.node].prompt == c.prompt && self.nodes[e.node].demos == demos
                })
            };
            if let Some(e) = slot.and_then(|s| u.entries.get_mut(s)) {
                e.score = c.score;
            }
        }
        let win_node = if same_order {
            u.entries.get(winner).map(|e| e.node)
        } else {
            candidates.get(winner).and_then(|c| {
                let demos = indices(&c.demos);
                u.entries
                    .iter()
                    .find(|e| {
                        self.nodes[e.node].prompt == c.prompt && self.nodes[e.node].demos == demos
                    })
                    .map(|e| e.node)
            })
        };
        u.winner = win_node;
        let n = u.entries.len();
        let win_score = win_node.and_then(|w| u.entries.iter().find(|e| e.node == w)?.score);
        let best_other = u
            .entries
            .iter()
            .filter(|e| Some(e.node) != win_node)
            .filter_map(|e| e.score)
            .max_by(f64::total_cmp);
        let scores: Vec<Option<f64>> = u.entries.iter().map(|e| e.score).collect();
        let parent = u.parent;
        let entries = u.entries.clone();
        for (k, e) in entries.iter().enumerate() {
            // The current prompt keeps what it was given when it first appeared.
            if e.node == parent {
                continue;
            }
            let node = &mut self.nodes[e.node];
            node.score = e.score;
            node.rank = e.score.map(|s| {
                let better = scores
                    .iter()
                    .enumerate()
                    .filter(|(j, o)| o.is_some_and(|o| o > s || (o == s && *j < k)))
                    .count();
                (better + 1, n)
            });
            if Some(e.node) == win_node {
                node.margin = e.score.zip(best_other).map(|(s, b)| s - b);
            } else {
                node.lost = true;
                node.margin = e.score.zip(win_score).map(|(s, w)| s - w);
            }
        }
    }

    fn select(&mut self, iteration: usize, prompt: &str, demos: &[Demo]) {
        let demos = indices(demos);
        let in_update = self.updates.last().and_then(|u| {
            (u.iteration == iteration).then_some(())?;
            let by_winner = u.winner.filter(|w| {
                let n = &self.nodes[*w];
                n.prompt == prompt && n.demos == demos
            });
            by_winner.or_else(|| {
                u.entries
                    .iter()
                    .map(|e| e.node)
                    .find(|id| self.nodes[*id].prompt == prompt && self.nodes[*id].demos == demos)
            })
        });
        let node = match in_update {
            Some(n) => n,
            None if self.is_current(prompt, &demos) => self.current,
            None => {
                let parent = Some(self.current);
                let mut n = self.new_node(NodeKind::Unknown, prompt, parent);
                n.iteration = Some(iteration);
                n.demos = demos;
                self.push(n)
            }
        };
        if let Some(u) = self.updates.last_mut().filter(|u| u.iteration == iteration) {
            u.winner = Some(node);
        }
        let n = &mut self.nodes[node];
        n.won = true;
        n.lost = false;
        self.current = node;
    }

    fn edit(&mut self, at: usize, prompt: &str, demos: Vec<usize>, what: Option<String>) {
        let parent = Some(self.current);
        let mut n = self.new_node(NodeKind::Edited, prompt, parent);
        n.iteration = Some(at);
        n.demos = demos;
        n.demo_move = what;
        n.edited = true;
        n.won = true;
        n.pinned = self.pinned;
        let id = self.push(n);
        self.current = id;
        self.marks.push(Mark {
            after: self.updates.len(),
            iteration: at,
            node: id,
            what: MarkKind::Edited,
        });
    }

    fn pin(&mut self, at: usize, prompt: &str) {
        let demos = self.current_demos();
        if !self.is_current(prompt, &demos) {
            // Pinning a candidate of the update in progress makes it the prompt; other text is
            // a person's own.
            let candidate = self.updates.last().and_then(|u| {
                u.entries
                    .iter()
                    .map(|e| e.node)
                    .find(|id| self.nodes[*id].prompt == prompt)
            });
            match candidate {
                Some(id) => {
                    self.nodes[id].won = true;
                    self.nodes[id].lost = false;
                    self.current = id;
                }
                None => {
                    self.edit(at, prompt, demos, None);
                }
            }
        }
        self.pinned = true;
        let node = self.current;
        self.nodes[node].pinned = true;
        self.marks.push(Mark {
            after: self.updates.len(),
            iteration: at,
            node,
            what: MarkKind::Pinned,
        });
    }

    fn reset(&mut self, iteration: usize, prompt: &str, demos: Vec<usize>, what: MarkKind) {
        if self.is_current(prompt, &demos) {
            return;
        }
        let to = match self.find_latest(prompt, &demos) {
            Some(id) => id,
            None => {
                let parent = Some(self.current);
                let mut n = self.new_node(NodeKind::Unknown, prompt, parent);
                n.iteration = Some(iteration);
                n.demos = demos;
                self.push(n)
            }
        };
        self.current = to;
        self.marks.push(Mark {
            after: self.updates.len(),
            iteration,
            node: to,
            what,
        });
    }

    /// The newest node that won with this text (a reset goes back to a prompt that was the
    /// layer's), else the first node with it.
    fn find_latest(&self, prompt: &str, demos: &[usize]) -> Option<usize> {
        self.nodes
            .iter()
            .rev()
            .find(|n| n.won && n.prompt == prompt && n.demos == demos)
            .map(|n| n.id)
            .or_else(|| self.find(prompt, demos))
    }
}
