//! The three parts of a task's data, by name: what an evaluation ran on.

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Example};

/// A split of the task's data. Serialized as `"train"`, `"dev"`, `"test"` (what event logs and
/// `dln eval` reports recorded before this type existed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }

    /// The split's examples in `data`.
    pub fn of(self, data: &Dataset) -> &[Example] {
        match self {
            Split::Train => &data.train,
            Split::Dev => &data.dev,
            Split::Test => &data.test,
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> Result<Split, String> {
        match s {
            "train" => Ok(Split::Train),
            "dev" => Ok(Split::Dev),
            "test" => Ok(Split::Test),
            other => Err(format!("`{other}` is not a split (train, dev, test)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_keeps_the_recorded_names() {
        for s in [Split::Train, Split::Dev, Split::Test] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<Split>(&json).unwrap(), s);
            assert_eq!(s.name().parse::<Split>(), Ok(s));
        }
        assert!("validation".parse::<Split>().is_err());
    }
}
