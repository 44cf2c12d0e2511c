//! A pre-run estimate of each cell's model calls, tokens and time, from the run's shape (splits,
//! `b`, `N`, `S`, iterations, layers) and the data's mean text length. Time is rough: it assumes
//! the embedded default model's effective throughput on 2 cores in DLN runs (prompt tokens ≈ 900/s
//! counted before prefix reuse, which computes each shared prefix once; generated tokens ≈ 80/s,
//! batched), fitted to measured DLN-1 and DLN-2 iterations; a cell that has finished is shown
//! with its measured time instead.

use serde::Serialize;

use crate::config::Mode;
use crate::data::Dataset;

use super::plan::Cell;

/// Effective throughput behind the time estimate (see the module's note).
pub const PREFILL_TOKENS_PER_SECOND: f64 = 900.0;
pub const GENERATED_TOKENS_PER_SECOND: f64 = 80.0;
/// Tokens of a prompt's instruction and template text around the input.
const TEMPLATE_TOKENS: f64 = 60.0;
/// Rough characters per token of English text.
const CHARS_PER_TOKEN: f64 = 4.0;

/// One cell's estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Estimate {
    pub calls: u64,
    /// Prompt tokens before prefix reuse.
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    pub seconds: f64,
}

impl Estimate {
    pub fn add(&mut self, o: &Estimate) {
        self.calls += o.calls;
        self.prompt_tokens += o.prompt_tokens;
        self.generated_tokens += o.generated_tokens;
        self.seconds += o.seconds;
    }
}

fn mean_tokens<'a>(texts: impl Iterator<Item = &'a str>) -> f64 {
    let (n, chars) = texts.fold((0usize, 0usize), |(n, c), t| (n + 1, c + t.chars().count()));
    if n == 0 {
        0.0
    } else {
        chars as f64 / n as f64 / CHARS_PER_TOKEN
    }
}

/// The estimate of `cell` on `data` (its loaded splits).
pub fn estimate(cell: &Cell, data: &Dataset) -> Estimate {
    let t = &cell.config.train;
    let layers = cell.config.layers.len() as f64;
    let input = mean_tokens(data.train.iter().map(|e| e.input.as_str()));
    let target = mean_tokens(data.train.iter().map(|e| e.target.as_str()));
    // Demonstrations read before each input: the k-shot baseline's, or those a layer learns.
    let learned = cell.config.layers.last().map_or(0, |l| l.demos);
    let shown = if t.mode == Mode::KShot {
        t.k_shot
    } else {
        learned
    };
    let shots = shown as f64 * (input + target + 4.0);
    let hidden_layers = layers - 1.0;
    let hidden_len = cell
        .config
        .layers
        .first()
        .map_or(64.0, |l| l.forward_max_tokens(false) as f64);
    let proposal_len = cell
        .config
        .layers
        .last()
        .map_or(128.0, |l| l.backward_max_tokens as f64);
    // One example through the network: every layer reads its input (and the hidden text).
    let per_example_prompt =
        layers * (TEMPLATE_TOKENS + input + shots) + hidden_layers * hidden_len;
    let per_example_gen = hidden_layers * hidden_len + 2.0;
    let (dev, test) = (data.dev.len() as f64, data.test.len() as f64);
    let dev_evals = match t.mode {
        Mode::Dln => {
            let its = t.iterations as f64;
            f64::from(u8::from(t.first_eval)) + (its / t.val_freq.max(1) as f64).ceil()
        }
        Mode::ZeroShot | Mode::KShot => 1.0,
    };
    let eval_examples = dev * dev_evals + test;
    let mut calls = eval_examples * layers;
    let mut prompt = eval_examples * per_example_prompt;
    let mut generated = eval_examples * per_example_gen;
    if t.mode == Mode::Dln {
        let moves = if learned > 0 { t.demo_moves } else { 0 };
        let (b, n, s) = (
            t.batch_size as f64,
            (t.num_candidates + moves) as f64,
            t.num_hidden_samples as f64,
        );
        let trained = cell.config.layers.iter().filter(|l| l.trainable).count() as f64;
        // Forward on the batch; per trained layer N−1 proposals (a third redrawn) reading the
        // batch, and N candidates scored on it; per hidden layer S posterior samples per
        // example, each scored under the prompt above (likelihood) and its own (prior).
        let proposals = trained * (t.num_candidates as f64 - 1.0) * 1.33;
        let scores = trained * n * b * (1.0 + hidden_layers * s);
        let posterior = hidden_layers * b * s;
        let per_it_calls = b * layers + proposals + scores + posterior * 3.0;
        let hidden_read = if hidden_layers > 0.0 { hidden_len } else { 0.0 };
        let per_it_prompt = b * per_example_prompt
            + proposals * (TEMPLATE_TOKENS * 3.0 + b * (input + target))
            + scores * (TEMPLATE_TOKENS + input + hidden_read)
            + posterior * 3.0 * (TEMPLATE_TOKENS + input + hidden_len);
        let per_it_gen = b * per_example_gen + proposals * proposal_len + posterior * hidden_len;
        let its = t.iterations as f64;
        calls += its * per_it_calls;
        prompt += its * per_it_prompt;
        generated += its * per_it_gen;
    }
    Estimate {
        calls: calls.round() as u64,
        prompt_tokens: prompt.round() as u64,
        generated_tokens: generated.round() as u64,
        seconds: prompt / PREFILL_TOKENS_PER_SECOND + generated / GENERATED_TOKENS_PER_SECOND,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::accuracy::plan::{apply_method, Method};
    use crate::config::Config;
    use crate::data::{Dataset, Example};

    fn data(n: usize) -> Dataset {
        let ex = |i: usize| Example {
            input: format!("input number {i} with some words"),
            target: "yes".into(),
        };
        Dataset {
            name: "t".into(),
            train: (0..n).map(ex).collect(),
            dev: (0..n / 2).map(ex).collect(),
            test: (0..n).map(ex).collect(),
            classes: None,
        }
    }

    fn cell(m: Method) -> Cell {
        let mut config = Config::parse(
            "[task]\nname = \"t\"\n[data]\npath = \"x.jsonl\"\n[train]\niterations = 4\n[[layers]]\n",
            std::path::Path::new("t.toml"),
        )
        .expect("config");
        apply_method(&mut config, m, 1, 3);
        Cell {
            task: "t".into(),
            method: m,
            seed: 1,
            dir: "d".into(),
            config,
        }
    }

    #[test]
    fn training_costs_more_than_baselines_and_depth_more_than_one_layer() {
        let d = data(40);
        let e = |m| estimate(&cell(m), &d);
        let (z, k, d1, d2) = (
            e(Method::ZeroShot),
            e(Method::KShot),
            e(Method::Dln1),
            e(Method::Dln2),
        );
        assert_eq!(z.calls, 60, "20 dev + 40 test, one layer");
        assert_eq!(k.calls, z.calls);
        assert!(k.prompt_tokens > z.prompt_tokens, "demonstrations are read");
        assert!(d1.calls > z.calls && d2.calls > d1.calls);
        assert!(d2.generated_tokens > d1.generated_tokens);
        assert!(d2.seconds > d1.seconds && d1.seconds > 0.0);
        let demos = e(Method::Dln1Demos);
        assert!(demos.calls > d1.calls, "demonstration moves are scored too");
        assert!(
            demos.prompt_tokens > d1.prompt_tokens,
            "demonstrations are read"
        );
    }
}
