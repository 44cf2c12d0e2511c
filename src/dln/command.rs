//! What a person (or a script) asks of a running loop: [`Command`], one JSON object each when
//! recorded (`CommandRejected`, a checkpoint's replayed posterior edits). Re-exported by
//! [`events`](crate::dln::events), beside the [`Event`](crate::dln::events::Event)s that answer it.

use serde::{Deserialize, Serialize};

use crate::template::TemplateRole;

/// Layers are numbered from 0 (the input side) to k-1 (the output layer).
pub type LayerIndex = usize;

/// What a person (or script) asks of a running loop. Applied at the next stage boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Pause,
    Resume,
    /// Run one stage, then pause again.
    Step,
    /// Fix a layer's prompt to `prompt`; the layer is excluded from updates until unpinned.
    Pin {
        layer: LayerIndex,
        prompt: String,
    },
    Unpin {
        layer: LayerIndex,
    },
    /// Replace a layer's current prompt (it stays trainable).
    SetPrompt {
        layer: LayerIndex,
        prompt: String,
    },
    /// Replace one of a layer's templates (`role` names the slot); validated first, an invalid
    /// one is refused with a `CommandRejected` event and the old one kept.
    SetTemplate {
        layer: LayerIndex,
        role: TemplateRole,
        source: String,
    },
    /// A person-written hidden text for example `example` of the current batch; it joins the
    /// posterior samples of the hidden text below `layer`.
    AddHidden {
        layer: LayerIndex,
        example: usize,
        text: String,
    },
    /// Exclude posterior sample `sample` of example `example`.
    ExcludeSample {
        layer: LayerIndex,
        example: usize,
        sample: usize,
    },
    /// Count an excluded posterior sample again (undoes `ExcludeSample`).
    IncludeSample {
        layer: LayerIndex,
        example: usize,
        sample: usize,
    },
    /// Show training example `example` (its index in the training split) as the layer's last
    /// demonstration: with its target on the output layer; on a hidden layer with the best
    /// hidden text `h*` of the batch in progress (so only an example of that batch).
    AddDemo {
        layer: LayerIndex,
        example: usize,
    },
    /// Stop showing training example `example` as a demonstration of the layer.
    RemoveDemo {
        layer: LayerIndex,
        example: usize,
    },
    /// Keep the layer's demonstrations as they are: no demonstration moves (its instruction
    /// still trains) until unpinned.
    PinDemos {
        layer: LayerIndex,
    },
    UnpinDemos {
        layer: LayerIndex,
    },
    /// A person's note on a layer, or on training example `example` (its index in the training
    /// split): shown to the layer's proposals until removed.
    AddFeedback {
        layer: LayerIndex,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        example: Option<usize>,
        text: String,
    },
    /// Remove note `index` of the layer's notes in force.
    RemoveFeedback {
        layer: LayerIndex,
        index: usize,
    },
    /// Write a checkpoint and end.
    Stop,
}
