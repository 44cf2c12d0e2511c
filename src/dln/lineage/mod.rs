//! Prompt lineage: where every candidate prompt came from, as a tree per layer over the
//! iterations, reduced from the run's [`Event`]s alone (pure: the same events give the same
//! tree; `dln lineage`, the workbench's lineage view and `dln replay` share it).
//!
//! A layer's tree starts at its start prompt (`RunStarted`). Each update adds its proposed
//! candidates (parent: the layer's prompt current at that update, with the request, the shown
//! examples and the message that wrote them, when the log records them) and its demonstration
//! moves; a memory candidate is a node whose parent is the node where its text first appeared
//! (a memory link); the current prompt is the existing node. Scores, the winner and the
//! rejected (rank, margin to the winner) come with `CandidatesScored`, the new current prompt
//! with `PromptSelected`. A person's edit (`PromptReplaced`, `DemosReplaced`) is a node whose
//! parent is the prompt it replaced; pins mark nodes; a patience reset returns the layer to an
//! earlier node. Following parents from any node reaches the start ([`LayerLineage::ancestry`]).

mod build;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::dln::events::{CandidateOrigin, Event, LayerIndex, ProposalSource};

/// Every layer's tree.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Lineage {
    pub layers: Vec<LayerLineage>,
    /// The iteration a person's edit counts towards (the one in progress, or the next after
    /// one ended).
    #[serde(skip)]
    at: usize,
    /// A `Branched` event was read and the branch's own `RunStarted` has not come yet: a prompt
    /// it starts from that differs is a person's change, made at the branch.
    #[serde(skip)]
    branching: bool,
}

/// One layer's tree: its nodes (ids are positions), its updates in order, and the marks of
/// pins, unpins and resets.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LayerLineage {
    pub layer: LayerIndex,
    pub nodes: Vec<Node>,
    pub updates: Vec<Update>,
    pub marks: Vec<Mark>,
    /// The node of the layer's prompt now.
    pub current: usize,
    /// The layer is pinned now.
    pub pinned: bool,
}

/// What made a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The layer's prompt when the run started.
    Start,
    /// Written by the layer's proposer.
    Proposed,
    /// The current instruction with a new set of demonstrations.
    DemoMove,
    /// A prompt of the memory, back as a candidate (its parent: where it first appeared).
    Memory,
    /// Written (or pinned as new text) by a person.
    Edited,
    /// A prompt the log names without having recorded where it came from (a resumed run's
    /// start, a reset to an unknown prompt).
    Unknown,
}

impl NodeKind {
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Start => "start",
            NodeKind::Proposed => "proposed",
            NodeKind::DemoMove => "demo move",
            NodeKind::Memory => "memory",
            NodeKind::Edited => "edited",
            NodeKind::Unknown => "not recorded",
        }
    }
}

/// A prompt in the tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub id: usize,
    pub layer: LayerIndex,
    /// The iteration it appeared in (0-based; `None`: the start).
    pub iteration: Option<usize>,
    pub kind: NodeKind,
    pub prompt: String,
    /// The training-split positions of its demonstrations, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub demos: Vec<usize>,
    /// The demonstration move that made it ("swap ex 12 → ex 87").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo_move: Option<String>,
    pub parent: Option<usize>,
    /// Its score in the update that proposed it.
    pub score: Option<f64>,
    /// Its rank among that update's candidates (1: the best score) and how many there were.
    pub rank: Option<(usize, usize)>,
    /// Its score minus the winner's (a loser, ≤ 0), or the winner's lead over the best of the
    /// others (a winner, ≥ 0).
    pub margin: Option<f64>,
    /// It became the layer's prompt (selected, edited, pinned or reset to).
    pub won: bool,
    /// Scored and not selected.
    pub lost: bool,
    pub pinned: bool,
    pub edited: bool,
    /// Where a proposed prompt came from; `None` for other kinds, and for proposals in logs
    /// written before it was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ProposalSource>,
    /// The written feedback the proposer was shown (none recorded yet).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub feedback: Vec<String>,
}

/// One update of a layer: the candidates in the order proposed (the current prompt first),
/// their scores once scored, and the winner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Update {
    pub iteration: usize,
    /// The layer's prompt when it was proposed.
    pub parent: usize,
    pub entries: Vec<Entry>,
    /// The winning node, once scored.
    pub winner: Option<usize>,
    /// The first node the update made (what a rerun of it drops).
    #[serde(skip)]
    first_new: usize,
}

/// A candidate of an update.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub node: usize,
    pub origin: CandidateOrigin,
    pub score: Option<f64>,
}

/// Something that happened to a layer besides an update.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    pub iteration: usize,
    /// How many of the layer's updates came before it (where it goes in the story).
    pub after: usize,
    pub node: usize,
    pub what: MarkKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    Pinned,
    Unpinned,
    Edited,
    /// Patience ran out: the layer went back to the node (its best-dev prompt).
    Reset,
    /// GEPA drew the node from its pool's Pareto front as the parent of the iteration's mutation.
    Parent,
    /// The run is a branch of another (`dln branch`) from here: what came before is its
    /// parent's story, what follows its own.
    Branched,
}

impl MarkKind {
    pub fn name(self) -> &'static str {
        match self {
            MarkKind::Pinned => "pinned",
            MarkKind::Unpinned => "unpinned",
            MarkKind::Edited => "edited",
            MarkKind::Reset => "reset (patience)",
            MarkKind::Parent => "parent drawn (GEPA)",
            MarkKind::Branched => "branch point",
        }
    }
}

impl Lineage {
    /// The lineage of a whole event log.
    pub fn from_events(events: &[Event]) -> Lineage {
        let mut lineage = Lineage::default();
        for e in events {
            lineage.apply(e);
        }
        lineage
    }

    /// A layer's tree.
    pub fn layer(&self, layer: LayerIndex) -> Option<&LayerLineage> {
        self.layers.get(layer)
    }
}

impl LayerLineage {
    pub fn node(&self, id: usize) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// The node and its parents, back to the start: `[node, parent, …, start]`.
    pub fn ancestry(&self, id: usize) -> Vec<&Node> {
        let mut out: Vec<&Node> = Vec::new();
        let mut at = self.nodes.get(id);
        while let Some(n) = at {
            // Parents are always older nodes, so this ends; the check guards a malformed tree.
            if out.iter().any(|o| o.id == n.id) {
                break;
            }
            out.push(n);
            at = n.parent.and_then(|p| self.nodes.get(p));
        }
        out
    }

    /// The nodes that became the layer's prompt, oldest first.
    pub fn winners(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.won)
    }

    /// The update a node was a candidate of first (where it was proposed).
    pub fn update_of(&self, id: usize) -> Option<&Update> {
        self.updates
            .iter()
            .find(|u| u.entries.iter().any(|e| e.node == id))
    }

    /// The parent's text a node is compared with (its own for a memory link: the same text).
    pub fn parent_prompt(&self, id: usize) -> Option<&str> {
        let n = self.nodes.get(id)?;
        self.nodes.get(n.parent?).map(|p| p.prompt.as_str())
    }
}

impl Node {
    /// Why the node won or lost, in a few words: "won at it 3 · -1.02 · rank 1 of 4 · 0.35
    /// ahead", "lost at it 3 · -1.37 · rank 3 of 4 · 0.35 behind the winner", "edited by you".
    pub fn why(&self) -> String {
        let at = self
            .iteration
            .map(|i| format!(" at it {}", i + 1))
            .unwrap_or_default();
        let mut parts: Vec<String> = Vec::new();
        let verdict = if self.edited {
            format!("edited by you{at}")
        } else if self.kind == NodeKind::Start {
            "the start prompt".to_string()
        } else if self.lost {
            format!("lost{at}")
        } else if self.won && self.score.is_some() {
            format!("won{at}")
        } else if self.won {
            format!("selected{at}")
        } else {
            format!("not scored{at}")
        };
        parts.push(verdict);
        if let Some(s) = self.score {
            parts.push(format!("score {s:.2}"));
        }
        if let Some((r, of)) = self.rank {
            parts.push(format!("rank {r} of {of}"));
        }
        match self.margin {
            Some(m) if self.lost => parts.push(format!("{:.2} behind the winner", -m)),
            Some(m) if self.won => parts.push(format!("{m:.2} ahead of the next")),
            _ => {}
        }
        if self.pinned {
            parts.push("pinned".into());
        }
        parts.join(" · ")
    }

    /// Where it came from, in a few words: the request and shown examples of a proposal, or
    /// what made it.
    pub fn origin(&self) -> String {
        match (&self.kind, &self.source) {
            (NodeKind::Proposed, Some(s)) => {
                let shown: Vec<String> = s.shown.iter().map(|i| i.to_string()).collect();
                let mut out = format!("request {} · shown ex {}", s.request + 1, shown.join(" "));
                if !s.template.is_empty() {
                    out.push_str(&format!(" · template {}", s.template));
                }
                out
            }
            (NodeKind::Proposed, None) => "proposed · provenance not recorded".into(),
            (NodeKind::DemoMove, _) => self.demo_move.clone().unwrap_or_default(),
            (NodeKind::Memory, _) => match self.parent {
                Some(p) => format!("from the memory (first seen as #{p})"),
                None => "from the memory".into(),
            },
            (kind, _) => kind.name().to_string(),
        }
    }
}
