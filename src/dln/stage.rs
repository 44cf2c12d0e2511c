//! What an iteration is made of: its stages (the granularity of pause and step) and the
//! operations, the model calls each stage makes, under the names runs record.

use serde::{Deserialize, Serialize};

/// A stage of one iteration, the granularity of pause and step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Forward,
    PosteriorSampling,
    Sharpening,
    Propose,
    Score,
    Select,
    Evaluate,
    Test,
}

impl Stage {
    /// The stage's name as the paper says it, for progress lines and the status bar.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Forward => "forward",
            Stage::PosteriorSampling => "posterior sampling",
            Stage::Sharpening => "sharpening",
            Stage::Propose => "propose",
            Stage::Score => "score",
            Stage::Select => "select",
            Stage::Evaluate => "evaluate",
            Stage::Test => "test",
        }
    }
}

/// What a model call is for, named after the [`Stage`] that asks it. Its [`name`](Self::name)
/// is written into call seeds (the persistent call cache is keyed by them) and usage entries
/// (`events.jsonl`, `checkpoint.json`, `result.json`): those strings never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Forward,
    #[serde(rename = "posterior")]
    PosteriorSampling,
    #[serde(rename = "sharpen")]
    Sharpening,
    Propose,
    Score,
    Evaluate,
    Test,
}

impl Operation {
    /// The name in seeds and usage entries, as runs recorded before this enum wrote it.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Forward => "forward",
            Operation::PosteriorSampling => "posterior",
            Operation::Sharpening => "sharpen",
            Operation::Propose => "propose",
            Operation::Score => "score",
            Operation::Evaluate => "evaluate",
            Operation::Test => "test",
        }
    }

    /// The stage whose calls these are.
    pub fn stage(self) -> Stage {
        match self {
            Operation::Forward => Stage::Forward,
            Operation::PosteriorSampling => Stage::PosteriorSampling,
            Operation::Sharpening => Stage::Sharpening,
            Operation::Propose => Stage::Propose,
            Operation::Score => Stage::Score,
            Operation::Evaluate => Stage::Evaluate,
            Operation::Test => Stage::Test,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_is_written_under_its_recorded_name() {
        for op in [
            Operation::Forward,
            Operation::PosteriorSampling,
            Operation::Sharpening,
            Operation::Propose,
            Operation::Score,
            Operation::Evaluate,
            Operation::Test,
        ] {
            let written = serde_json::to_string(&op).unwrap();
            assert_eq!(written, format!("\"{}\"", op.name()));
            assert_eq!(serde_json::from_str::<Operation>(&written).unwrap(), op);
        }
    }
}
