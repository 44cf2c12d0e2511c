//! Output classes: the finite answer set of a classification task and the words for each.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{DataConfig, DataError, Located};
use crate::loss::{exact_match, normalize_answer};

/// The classes of a classification task. `labels[i]` is how class `i` appears in the targets;
/// `verbalizers[i]` are the words the model may answer with for it (each also tried with a
/// leading space by the backend). With classes known, a forward pass is an argmax over classes and
/// `log p(y | ..)` is the target class's renormalized log-probability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputClasses {
    pub labels: Vec<String>,
    pub verbalizers: Vec<Vec<String>>,
}

impl OutputClasses {
    /// Classes with the default verbalizers of each label (see [`default_verbalizers`]).
    pub fn from_labels<I, S>(labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let labels: Vec<String> = labels.into_iter().map(Into::into).collect();
        let verbalizers = labels.iter().map(|l| default_verbalizers(l)).collect();
        OutputClasses {
            labels,
            verbalizers,
        }
    }

    /// The class a target (or a prediction) names: the first class whose label or one of whose
    /// verbalizers matches it after answer normalization.
    pub fn index_of(&self, target: &str) -> Option<usize> {
        let by_label = self.labels.iter().position(|l| exact_match(target, l));
        by_label.or_else(|| {
            self.verbalizers
                .iter()
                .position(|vs| vs.iter().any(|v| exact_match(target, v)))
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The words a model may use for a label: the label itself, the letter inside a BBH choice
/// `(A)`, and the lower-case or capitalized spelling where it differs.
pub fn default_verbalizers(label: &str) -> Vec<String> {
    let label = label.trim();
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    push(label.to_string());
    if let Some(inner) = label.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        push(inner.to_string());
    } else if label.chars().any(char::is_alphabetic) {
        push(label.to_lowercase());
        let mut chars = label.chars();
        if let Some(first) = chars.next() {
            push(first.to_uppercase().chain(chars).collect());
        }
    }
    out
}

/// A class list, when given, is not empty.
pub(crate) fn check_specs(cfg: &DataConfig) -> Result<(), DataError> {
    match &cfg.classes {
        Some(specs) if specs.is_empty() => Err(DataError::Config(
            "`data.classes` is empty; remove it or list at least two classes".to_string(),
        )),
        _ => Ok(()),
    }
}

/// The task's classes: from the config, else from the label map, else inferred from the targets
/// when there are few distinct ones, else none (free-text targets).
pub(crate) fn resolve(
    cfg: &DataConfig,
    records: &[&Located],
) -> Result<Option<OutputClasses>, DataError> {
    check_specs(cfg)?;
    if let Some(specs) = &cfg.classes {
        let labels = specs.iter().map(|s| s.label.clone()).collect();
        let verbalizers = specs
            .iter()
            .map(|s| {
                if s.verbalizers.is_empty() {
                    vec![s.label.clone()]
                } else {
                    s.verbalizers.clone()
                }
            })
            .collect();
        return Ok(Some(OutputClasses {
            labels,
            verbalizers,
        }));
    }
    if !cfg.infer_classes {
        return Ok(None);
    }
    if let Some(map) = &cfg.label_map {
        let mut keys: Vec<&String> = map.keys().collect();
        // Numeric raw labels in numeric order ("2" before "10").
        keys.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        });
        let mut labels: Vec<String> = Vec::new();
        for k in keys {
            if !labels.contains(&map[k]) {
                labels.push(map[k].clone());
            }
        }
        return Ok(Some(OutputClasses::from_labels(labels)));
    }
    let distinct: BTreeSet<&str> = records.iter().map(|r| r.example.target.trim()).collect();
    let few = distinct.len() >= 2
        && distinct.len() <= cfg.max_inferred_classes
        && records.len() >= 2 * distinct.len();
    // Distinct targets must stay distinct after normalization, or classes would be ambiguous.
    let normalized: BTreeSet<String> = distinct.iter().map(|t| normalize_answer(t)).collect();
    if few && normalized.len() == distinct.len() && !normalized.contains("") {
        Ok(Some(OutputClasses::from_labels(distinct)))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbh_choice_verbalizers() {
        assert_eq!(default_verbalizers("(A)"), vec!["(A)", "A"]);
        assert_eq!(default_verbalizers("Yes"), vec!["Yes", "yes"]);
        assert_eq!(
            default_verbalizers("positive"),
            vec!["positive", "Positive"]
        );
        assert_eq!(default_verbalizers("7"), vec!["7"]);
    }

    #[test]
    fn index_of_matches_labels_and_verbalizers() {
        let c = OutputClasses::from_labels(["(A)", "(B)"]);
        assert_eq!(c.index_of("B"), Some(1));
        assert_eq!(c.index_of("(a)"), Some(0));
        assert_eq!(c.index_of("(C)"), None);
        assert_eq!(c.index_of(""), None);
    }
}
