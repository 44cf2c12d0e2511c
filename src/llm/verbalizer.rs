//! Classes and their verbalizers: what a classify request asks, the text variants every backend
//! scores a verbalizer as, and how the variants' log-probabilities fold into a class
//! distribution (one rule, whatever backend scored them).

use serde::{Deserialize, Serialize};

use super::{LlmError, LlmResult};

/// How a class's verbalizers combine into its probability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerbalizerReduce {
    #[default]
    Sum,
    Max,
}

/// A distribution over output classes at the answer position after `context`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClassifyRequest {
    pub context: String,
    /// One list of verbalizers per class; each is scored exactly (multi-token too), and each is
    /// also tried with a leading space.
    pub classes: Vec<Vec<String>>,
    pub reduce: VerbalizerReduce,
}

/// The text variants a verbalizer is scored as, by every backend: itself and, unless it has one,
/// with a leading space (how a word follows "Answer:").
pub fn verbalizer_variants(verbalizers: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in verbalizers {
        for variant in [v.clone(), format!(" {v}")] {
            if variant.starts_with("  ") || out.contains(&variant) {
                continue;
            }
            out.push(variant);
        }
    }
    out
}

/// The renormalized class distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassDistribution {
    /// Probabilities over the classes, summing to 1.
    pub probs: Vec<f64>,
    /// Natural logs of `probs`.
    pub log_probs: Vec<f64>,
}

impl ClassDistribution {
    pub fn argmax(&self) -> usize {
        let mut best = 0;
        for (i, p) in self.probs.iter().enumerate() {
            if *p > self.probs[best] {
                best = i;
            }
        }
        best
    }

    /// Renormalizes unnormalized class log-masses into a distribution.
    pub fn from_log_masses(log_masses: &[f64]) -> Self {
        let m = log_masses.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = log_masses.iter().map(|l| (l - m).exp()).sum();
        let log_z = m + z.ln();
        let log_probs: Vec<f64> = log_masses.iter().map(|l| l - log_z).collect();
        let probs = log_probs.iter().map(|l| l.exp()).collect();
        ClassDistribution { probs, log_probs }
    }
}

impl VerbalizerReduce {
    /// One class's log-mass from the log-probabilities of its verbalizer variants: their
    /// log-sum-exp or their maximum; −∞ for none.
    pub fn apply(self, logprobs: &[f64]) -> f64 {
        let max = logprobs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        match self {
            VerbalizerReduce::Max => max,
            VerbalizerReduce::Sum if !max.is_finite() => max,
            VerbalizerReduce::Sum => {
                max + logprobs.iter().map(|l| (l - max).exp()).sum::<f64>().ln()
            }
        }
    }
}

/// One text a classify batch scores: a variant of a verbalizer of class `class` of request
/// `request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerbalizerItem {
    pub request: usize,
    pub class: usize,
    pub variant: String,
}

/// Every verbalizer variant of every class of every request, in order: what a backend scores to
/// answer the batch. A request without classes, or a class without a verbalizer, is refused.
pub fn verbalizer_items(requests: &[ClassifyRequest]) -> LlmResult<Vec<VerbalizerItem>> {
    let mut items = Vec::new();
    for (request, r) in requests.iter().enumerate() {
        if r.classes.is_empty() {
            return Err(LlmError::InvalidRequest(
                "classify needs at least one class".into(),
            ));
        }
        for (class, verbalizers) in r.classes.iter().enumerate() {
            if verbalizers.is_empty() {
                return Err(LlmError::InvalidRequest(format!(
                    "class {class} has no verbalizer"
                )));
            }
            for variant in verbalizer_variants(verbalizers) {
                items.push(VerbalizerItem {
                    request,
                    class,
                    variant,
                });
            }
        }
    }
    Ok(items)
}

/// Each request's class distribution from the log-probabilities of `items` (as
/// [`verbalizer_items`] listed them, one log-probability each), reduced per class by the
/// request's rule and renormalized.
pub fn fold_classes(
    requests: &[ClassifyRequest],
    items: &[VerbalizerItem],
    logprobs: impl IntoIterator<Item = f64>,
) -> Vec<ClassDistribution> {
    let mut masses: Vec<Vec<Vec<f64>>> = requests
        .iter()
        .map(|r| vec![Vec::new(); r.classes.len()])
        .collect();
    for (item, lp) in items.iter().zip(logprobs) {
        masses[item.request][item.class].push(lp);
    }
    requests
        .iter()
        .zip(masses)
        .map(|(r, classes)| {
            let log_masses: Vec<f64> = classes.iter().map(|lps| r.reduce.apply(lps)).collect();
            ClassDistribution::from_log_masses(&log_masses)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbalizers_are_tried_with_and_without_a_leading_space() {
        let v = verbalizer_variants(&["yes".into(), " yes".into(), "Yes".into()]);
        assert_eq!(v, vec!["yes", " yes", "Yes", " Yes"]);
    }

    #[test]
    fn sum_adds_probabilities_and_max_keeps_the_largest() {
        let lps = [0.5f64.ln(), 0.25f64.ln()];
        assert!((VerbalizerReduce::Sum.apply(&lps) - 0.75f64.ln()).abs() < 1e-12);
        assert_eq!(VerbalizerReduce::Max.apply(&lps), 0.5f64.ln());
        assert_eq!(VerbalizerReduce::Sum.apply(&[]), f64::NEG_INFINITY);
    }

    fn request(classes: &[&[&str]], reduce: VerbalizerReduce) -> ClassifyRequest {
        ClassifyRequest {
            context: "Answer:".into(),
            classes: classes
                .iter()
                .map(|c| c.iter().map(|v| v.to_string()).collect())
                .collect(),
            reduce,
        }
    }

    #[test]
    fn items_fold_back_into_each_requests_classes() {
        let requests = [
            request(&[&["yes"], &["no"]], VerbalizerReduce::Sum),
            request(&[&["a"], &["b", " b"]], VerbalizerReduce::Max),
        ];
        let items = verbalizer_items(&requests).unwrap();
        let owners: Vec<(usize, usize)> = items.iter().map(|i| (i.request, i.class)).collect();
        assert_eq!(
            owners,
            [
                (0, 0),
                (0, 0),
                (0, 1),
                (0, 1),
                (1, 0),
                (1, 0),
                (1, 1),
                (1, 1)
            ]
        );
        // Request 0: "yes" + " yes" hold 0.3 + 0.3, "no" + " no" 0.2 + 0.2. Request 1 keeps each
        // class's best variant: 0.4 against 0.1.
        let lps = [0.3, 0.3, 0.2, 0.2, 0.4, 0.05, 0.1, 0.01].map(f64::ln);
        let d = fold_classes(&requests, &items, lps);
        assert!((d[0].probs[0] - 0.6).abs() < 1e-12);
        assert!((d[1].probs[0] - 0.8).abs() < 1e-12);
    }

    #[test]
    fn a_class_without_verbalizers_is_refused() {
        let err = verbalizer_items(&[request(&[&["yes"], &[]], VerbalizerReduce::Sum)]);
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("class 1 has no verbalizer"));
        let err = verbalizer_items(&[request(&[], VerbalizerReduce::Sum)]);
        assert!(err.unwrap_err().to_string().contains("at least one class"));
    }
}
