//! The columns of `dln bench accuracy`'s table: what each method is called, means and runs.

use serde::Serialize;

/// One column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// The output layer's starting prompt, not trained.
    ZeroShot,
    /// `k` random training examples before each input, not trained.
    KShot,
    Dln1,
    Dln2,
    Dln3,
    /// DLN-2 with sharpening off: every posterior sample weighs the same.
    Dln2Uniform,
    /// DLN-2 without the prior term in the sharpening weights.
    Dln2NoPrior,
    /// DLN-2 with π1 fixed to "Let's think step by step." (only the output layer trains).
    Dln2FixedHidden,
    /// DLN-1 whose output layer also learns `k` demonstrations (`demos = k`).
    Dln1Demos,
    /// DLN-1 keeping a scored candidate drawn at random instead of the best one.
    Dln1Random,
    /// GEPA's reflective prompt evolution on the output layer, with DLN-1's token budget.
    Gepa,
}

impl Method {
    pub const ALL: [Method; 11] = [
        Method::ZeroShot,
        Method::KShot,
        Method::Dln1,
        Method::Dln2,
        Method::Dln3,
        Method::Dln2Uniform,
        Method::Dln2NoPrior,
        Method::Dln2FixedHidden,
        Method::Dln1Demos,
        Method::Dln1Random,
        Method::Gepa,
    ];
    /// What runs when no `--methods` is given.
    pub const DEFAULT: [Method; 4] = [Method::ZeroShot, Method::KShot, Method::Dln1, Method::Dln2];

    pub fn name(self) -> &'static str {
        match self {
            Method::ZeroShot => "0-shot",
            Method::KShot => "k-shot",
            Method::Dln1 => "dln-1",
            Method::Dln2 => "dln-2",
            Method::Dln3 => "dln-3",
            Method::Dln2Uniform => "dln-2-uniform",
            Method::Dln2NoPrior => "dln-2-no-prior",
            Method::Dln2FixedHidden => "dln-2-fixed-h",
            Method::Dln1Demos => "dln-1-demos",
            Method::Dln1Random => "dln-1-random",
            Method::Gepa => "gepa",
        }
    }

    /// What the column means, for the table's legend.
    pub fn describe(self) -> &'static str {
        match self {
            Method::ZeroShot => "the starting prompt, untrained",
            Method::KShot => "k random training examples before each input, untrained",
            Method::Dln1 => "one layer, prompt trained",
            Method::Dln1Demos => "one layer, prompt and k demonstrations trained",
            Method::Dln1Random => {
                "DLN-1 keeping a random scored candidate instead of the best (what the scores are worth)"
            }
            Method::Dln2 => "two layers (hidden text, then answer), both prompts trained",
            Method::Dln3 => "three layers, all prompts trained",
            Method::Dln2Uniform => "DLN-2 with sharpening off (uniform posterior weights)",
            Method::Dln2NoPrior => "DLN-2 without the prior in the sharpening weights",
            Method::Dln2FixedHidden => {
                "DLN-2 with π1 fixed to \"Let's think step by step.\" (layer 1 not trained)"
            }
            Method::Gepa => {
                "GEPA: reflective mutation, Pareto pool per dev example, exact log-likelihood scores, DLN-1's tokens"
            }
        }
    }

    pub fn trains(self) -> bool {
        !matches!(self, Method::ZeroShot | Method::KShot)
    }
}

impl Serialize for Method {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The name it serializes as (`results.json`, read back by `dln bench view`).
impl<'de> serde::Deserialize<'de> for Method {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        let alias = match s.as_str() {
            "0shot" | "zero-shot" | "zero_shot" => "0-shot",
            "kshot" | "k_shot" | "icl" => "k-shot",
            "dln1" => "dln-1",
            "dln1-demos" | "dln-1+demos" => "dln-1-demos",
            "dln1-random" => "dln-1-random",
            "dln2" => "dln-2",
            "dln3" => "dln-3",
            other => other,
        };
        Method::ALL
            .into_iter()
            .find(|m| m.name() == alias)
            .ok_or_else(|| {
                format!(
                    "unknown method `{s}`; one of: {}",
                    Method::ALL.map(Method::name).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_by_name_and_alias() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        assert_eq!("dln2".parse::<Method>(), Ok(Method::Dln2));
        assert_eq!(
            serde_json::to_string(&Method::Dln2NoPrior).unwrap(),
            "\"dln-2-no-prior\""
        );
        assert_eq!("ICL".parse::<Method>(), Ok(Method::KShot));
        let err = "dln-9".parse::<Method>().unwrap_err();
        assert!(err.contains("dln-2-no-prior"), "{err}");
    }
}
