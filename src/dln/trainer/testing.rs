//! Plain data for the unit tests of the stages' pure halves: a network on a scripted backend
//! that is never called, examples, and an iteration after its forward pass.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::data::{Dataset, Example};
use crate::dln::network::{LayerBackends, Network};
use crate::llm::scripted::ScriptedBackend;
use crate::llm::SharedBackend;

use super::forward::ForwardResult;
use super::IterState;

/// A network of `k` layers with the built-in templates.
pub fn network(k: usize) -> Network {
    network_on(k, ScriptedBackend::new())
}

/// [`network`] on a given scripted backend (whose call log a test reads).
pub fn network_on(k: usize, scripted: ScriptedBackend) -> Network {
    let mut text = String::from(
        "[task]\nname = \"t\"\ndescription = \"Answer with the letter.\"\n[data]\npath = \"d.json\"\n",
    );
    for l in 0..k {
        text.push_str("\n[[layers]]\n");
        if l + 1 < k {
            text.push_str("prompt = \"Think it through.\"\n");
        }
    }
    let config = Config::parse(&text, Path::new("t.toml")).expect("the test config parses");
    let backend: SharedBackend = Arc::new(scripted);
    let backends = (0..k)
        .map(|_| LayerBackends {
            forward: backend.clone(),
            backward: backend.clone(),
        })
        .collect();
    Network::from_config(&config, None, backends).expect("the test network builds")
}

/// `n` examples `question i` → `(A)` or `(B)`.
pub fn examples(n: usize) -> Vec<Example> {
    (0..n)
        .map(|i| Example {
            input: format!("question {i}"),
            target: if i % 2 == 0 { "(A)" } else { "(B)" }.to_string(),
        })
        .collect()
}

/// A task of `n` training examples (and two each for dev and test).
pub fn dataset(n: usize) -> Dataset {
    Dataset {
        name: "t".into(),
        train: examples(n),
        dev: examples(2),
        test: examples(2),
        classes: None,
    }
}

/// Iteration 4 of `net` after a forward pass over `b` examples, example `i` answered right
/// exactly when `correct[i]`: each hidden layer wrote `h{l}-{i}`.
pub fn iteration(net: &Network, b: usize, correct: &[bool]) -> IterState {
    let k = net.layers.len();
    let batch = examples(b);
    let mut cur = IterState::new(4, k, Default::default());
    cur.fwd = ForwardResult {
        inputs: (0..k)
            .map(|l| {
                batch
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        if l == 0 {
                            e.input.clone()
                        } else {
                            format!("{} h{}-{i}", e.input, l - 1)
                        }
                    })
                    .collect()
            })
            .collect(),
        hidden: (0..k - 1)
            .map(|l| (0..b).map(|i| format!("h{l}-{i}")).collect())
            .collect(),
        predictions: batch
            .iter()
            .zip(correct)
            .map(|(e, c)| {
                if *c {
                    e.target.clone()
                } else {
                    "(C)".to_string()
                }
            })
            .collect(),
        correct: correct.to_vec(),
        ..ForwardResult::default()
    };
    cur.batch = batch;
    cur
}
