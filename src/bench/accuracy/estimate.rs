//! A pre-run estimate of each cell's model calls, tokens and time, from the run's shape (splits,
//! `b`, `N`, memory, `S`, iterations, layers, output classes) and the data's mean text length.
//!
//! Tokens are counted as the report counts them (a cell's `tokens`: every prompt token a call
//! reads, computed or taken from the prefix cache, plus the generated ones), so an answer among
//! C classes reads its context once per class. Time follows the tokens the model computes and
//! generates: calls in a row that share a prompt (the template, the instruction, the
//! demonstrations) compute it once, and a context is computed once whatever the classes. The
//! throughput is the model's (`llm::model::speed`: per built-in model, the estimate's tokens per
//! second per thread fitted to finished cells of this benchmark: 100 for SmolLM2-135M, 80 for
//! Qwen2.5-Coder-0.5B, the 1.5B's scaled from the 0.5B's by llama-bench; a file of another size
//! is interpolated between them), scaled by `model.threads` (default: the cores); a network is
//! timed by its slowest forward model. The fits held cells to within about 2× (0.8× to 2.5× of
//! the measured time on the 0.5B). It stays rough: hidden texts and proposals end when the model
//! says so, the call cache answers repeated calls for nothing, and a machine shared with other
//! work runs slower.
//! A cell that has finished is shown with its measured time instead, and the cells still to run
//! of a task and method with finished seeds are timed by those.

use serde::Serialize;

use crate::config::{Config, Mode};
use crate::data::{Dataset, OutputClasses};
use crate::dln::network::layer_templates;
use crate::llm::model::Speed;
use crate::template::TemplateRole;

use super::plan::Cell;

/// Tokens of a prompt's template, instruction and chat framing before the input.
const TEMPLATE_TOKENS: f64 = 80.0;
/// Tokens of the template after the input (the answer cue, the end of a chat turn).
const SUFFIX_TOKENS: f64 = 8.0;
/// Rough characters per token of English words (digits and punctuation are a token each).
const CHARS_PER_TOKEN: f64 = 4.0;
/// What part of its token limit a proposal, or a hidden text whose template has a stop sequence,
/// uses on average (they end at the stop or an end of turn well before it).
const USED_OF_LIMIT: f64 = 0.25;
/// What part of its limit a hidden text uses when its template has no stop (the chat hidden
/// layer, which ends only at the model's end of turn): instruct models reason up to the limit.
/// Measured on navigate's dev inputs: Qwen2.5-Coder-1.5B's texts averaged 158 of 160 tokens (27 of
/// 31 cut) and 276 of 400; the 0.5B's 326 of 400.
const HIDDEN_USED_WITHOUT_STOP: f64 = 0.85;
/// Proposals drawn per proposal kept: echoes, loops and duplicates are drawn again.
const REDRAWN: f64 = 1.8;

/// One cell's estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Estimate {
    pub calls: u64,
    /// Prompt tokens read, as the report counts them (computed or reused).
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    /// Seconds on the embedded engine (0 when `on_server`).
    pub seconds: f64,
    /// Some of its calls go to an HTTP server, whose speed is the server's: not timed.
    pub on_server: bool,
}

impl Estimate {
    pub fn add(&mut self, o: &Estimate) {
        self.calls += o.calls;
        self.prompt_tokens += o.prompt_tokens;
        self.generated_tokens += o.generated_tokens;
        self.seconds += o.seconds;
        self.on_server |= o.on_server;
    }
}

/// Rough tokens of a text: a digit or a punctuation mark is one, letters and spaces come four
/// to a token.
fn tokens(text: &str) -> f64 {
    let single = |c: &char| c.is_ascii_digit() || !(c.is_alphanumeric() || c.is_whitespace());
    let singles = text.chars().filter(single).count() as f64;
    singles + (text.chars().count() as f64 - singles) / CHARS_PER_TOKEN
}

/// How many times an answer among these classes reads its context: once for the classes whose
/// words are a token each (`Yes`, `No`: their log-probabilities are all read at the context's
/// end), and once per class of several tokens (`(A)`: each is read after its own first tokens).
fn context_reads(classes: &OutputClasses) -> f64 {
    let several =
        |label: &String| label.chars().count() > 8 || label.chars().any(|c| !c.is_alphabetic());
    classes.labels.iter().filter(|l| several(l)).count().max(1) as f64
}

fn mean_tokens<'a>(texts: impl Iterator<Item = &'a str>) -> f64 {
    let (n, sum) = texts.fold((0usize, 0.0), |(n, sum), t| (n + 1, sum + tokens(t)));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Calls and tokens, added up call kind by call kind. Each call's context is `shared` tokens
/// the calls before it computed already (the prompt every example of a batch reads), then `own`
/// tokens of its own.
#[derive(Default)]
struct Tally {
    calls: f64,
    read: f64,
    computed: f64,
    generated: f64,
}

impl Tally {
    /// `n` generations of `gen` tokens each.
    fn generate(&mut self, n: f64, shared: f64, own: f64, gen: f64) {
        self.calls += n;
        self.read += n * (shared + own);
        self.computed += n * own;
        self.generated += n * gen;
    }

    /// `n` scores of a `text` each.
    fn score(&mut self, n: f64, shared: f64, own: f64, text: f64) {
        self.calls += n;
        self.read += n * (shared + own + text);
        self.computed += n * (own + text);
    }

    /// `n` answers among `classes`: the context is computed once and read `context_reads`
    /// times, then each class's few tokens.
    fn classify(&mut self, n: f64, shared: f64, own: f64, classes: &OutputClasses) {
        self.calls += n;
        self.read += n * (shared + own) * context_reads(classes);
        self.computed += n * (own + 2.0 * classes.len() as f64);
    }
}

/// The estimate of `cell` on `data` (its loaded splits), its models resolved with `model`, the
/// benchmark's `--model` (which stands for `[model].name` where a layer names none).
pub fn estimate(cell: &Cell, data: &Dataset, model: Option<&str>) -> Estimate {
    // GEPA spends DLN-1's tokens: its estimate is DLN-1's.
    if let Some(dln1) = &cell.budget {
        let as_dln1 = Cell {
            config: (**dln1).clone(),
            budget: None,
            ..cell.clone()
        };
        return estimate(&as_dln1, data, model);
    }
    let t = &cell.config.train;
    let layers = cell.config.layers.len() as f64;
    let hidden_layers = layers - 1.0;
    let input = mean_tokens(data.train.iter().map(|e| e.input.as_str()));
    let target = mean_tokens(data.train.iter().map(|e| e.target.as_str()));
    // Demonstrations read before each input: the k-shot baseline's, or those a layer learns.
    let learned = cell.config.layers.last().map_or(0, |l| l.demos);
    let shown = if t.mode == Mode::KShot {
        t.k_shot
    } else {
        learned
    };
    let limit_used = |limit: Option<f64>, default: f64| USED_OF_LIMIT * limit.unwrap_or(default);
    let hidden = hidden_used_of_limit(&cell.config)
        * cell
            .config
            .layers
            .first()
            .map_or(64.0, |l| l.forward_max_tokens(false) as f64);
    let proposal = limit_used(
        cell.config
            .layers
            .last()
            .map(|l| l.backward_max_tokens as f64),
        128.0,
    );
    // The prompt a batch's calls share (with the demonstrations), and what each reads of its
    // own: its input and the template after it, and at the output layer the hidden texts too.
    let shared = TEMPLATE_TOKENS + shown as f64 * (input + target + 4.0);
    let hidden_own = input + SUFFIX_TOKENS;
    let output_own = hidden_own + hidden_layers * hidden;
    let classes = data.classes.as_ref();
    // The output layer's answer, or its log-likelihood of the target, for `n` contexts.
    let answer = |tally: &mut Tally, n: f64| match classes {
        Some(c) => tally.classify(n, shared, output_own, c),
        None => tally.generate(n, shared, output_own, target + 2.0),
    };
    let likelihood = |tally: &mut Tally, n: f64| match classes {
        Some(c) => tally.classify(n, shared, output_own, c),
        None => tally.score(n, shared, output_own, target),
    };
    // Examples through the network: the hidden layers write, the output layer answers.
    let forward = |tally: &mut Tally, n: f64| {
        tally.generate(n * hidden_layers, shared, hidden_own, hidden);
        answer(tally, n);
    };

    let mut tally = Tally::default();
    let (dev, test) = (data.dev.len() as f64, data.test.len() as f64);
    let dev_evals = match t.mode {
        Mode::Dln => {
            let its = t.iterations as f64;
            f64::from(u8::from(t.first_eval)) + (its / t.val_freq.max(1) as f64).ceil()
        }
        Mode::ZeroShot | Mode::KShot => 1.0,
    };
    forward(&mut tally, dev * dev_evals + test);
    if t.mode == Mode::Dln {
        let moves = if learned > 0 { t.demo_moves } else { 0 };
        // Scored per update: the current prompt, the proposals, the remembered prompts and the
        // demonstration moves; per example and hidden layer, the forward's own hidden text and
        // the S posterior samples.
        let (b, n, s) = (
            t.batch_size as f64,
            (t.num_candidates + t.memory + moves) as f64,
            t.num_hidden_samples as f64,
        );
        let output_trained = cell.config.layers.last().is_some_and(|l| l.trainable);
        let trained = cell.config.layers.iter().filter(|l| l.trainable).count() as f64;
        let hidden_trained = trained - f64::from(u8::from(output_trained));
        let its = t.iterations as f64;
        // Per iteration: the batch forward; per hidden layer S posterior samples per example
        // (q reads the input and its target), each scored under the layer above (likelihood)
        // and under its own prompt (prior); per trained layer N−1 proposals reading the batch;
        // the candidates scored on the batch, the output layer's under each hidden text.
        forward(&mut tally, its * b);
        let samples = its * hidden_layers * b * s;
        tally.generate(samples, shared, hidden_own + target, hidden);
        likelihood(&mut tally, samples);
        tally.score(samples, shared, hidden_own, hidden);
        let proposals = its * trained * (t.num_candidates as f64 - 1.0) * REDRAWN;
        let batch_shown = b * (input + target + hidden_layers * hidden);
        tally.generate(
            proposals,
            0.0,
            TEMPLATE_TOKENS * 3.0 + batch_shown,
            proposal,
        );
        let scored = its * n * b;
        let per_example = if hidden_layers > 0.0 { s + 1.0 } else { 1.0 };
        likelihood(
            &mut tally,
            scored * per_example * f64::from(u8::from(output_trained)),
        );
        tally.score(
            scored * hidden_trained * (s + 1.0),
            shared,
            hidden_own,
            hidden,
        );
    }
    let threads = cell.config.model.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    // No embedded forward model: every layer is on a server, and `on_server` zeroes the time.
    let per_thread = cell_speed(cell, model).map_or(1.0, |s| s.tokens_per_second_per_thread);
    let per_second = per_thread * threads.max(1) as f64;
    // Backward models are called only by training.
    let on_server = crate::run::calls_http_backend(&cell.config, model, t.mode == Mode::Dln);
    Estimate {
        calls: tally.calls.round() as u64,
        prompt_tokens: tally.read.round() as u64,
        generated_tokens: tally.generated.round() as u64,
        seconds: if on_server {
            0.0
        } else {
            (tally.computed + tally.generated) / per_second
        },
        on_server,
    }
}

/// What part of its limit the first layer's hidden text uses: [`HIDDEN_USED_WITHOUT_STOP`] when
/// its forward template has no stop sequence, else [`USED_OF_LIMIT`] (also when the network has no
/// hidden layer, or its templates do not load: the run will say why).
fn hidden_used_of_limit(config: &Config) -> f64 {
    if config.layers.len() < 2 {
        return USED_OF_LIMIT;
    }
    let unstopped = layer_templates(config, 0, &[]).is_ok_and(|ts| {
        ts.iter()
            .any(|(role, t)| role.slot() == TemplateRole::Forward && t.stop.is_empty())
    });
    if unstopped {
        HIDDEN_USED_WITHOUT_STOP
    } else {
        USED_OF_LIMIT
    }
}

/// The embedded model a cell's time follows: the slowest of its layers' forward models (`None`
/// when every layer runs on a server), `model` standing for `[model].name` as in [`estimate`].
pub fn cell_speed(cell: &Cell, model: Option<&str>) -> Option<Speed> {
    crate::run::embedded_forward_models(&cell.config, model)
        .iter()
        .map(|spec| crate::llm::model::speed(spec.as_deref()))
        .min_by(|a, b| {
            a.tokens_per_second_per_thread
                .total_cmp(&b.tokens_per_second_per_thread)
        })
}

/// The estimate of one task and method over its seeds, with what its finished cells measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub task: String,
    pub method: String,
    /// Its cells (one per seed).
    pub cells: usize,
    /// The estimate of one cell (the mean over its seeds).
    pub per_cell: Estimate,
    /// Wall seconds of each finished cell.
    pub measured: Vec<f64>,
}

/// How long one cell of a row takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellTime {
    /// Every cell has finished: their mean time.
    Done(f64),
    /// Some have: the mean time of those, which the others are expected to take too.
    Measured(f64),
    /// None has: the estimate.
    Estimated(f64),
    /// None has, and its calls go to an HTTP server: not estimated.
    OnServer,
}

impl Row {
    pub fn time_per_cell(&self) -> CellTime {
        if self.measured.is_empty() {
            return if self.per_cell.on_server {
                CellTime::OnServer
            } else {
                CellTime::Estimated(self.per_cell.seconds)
            };
        }
        let mean = self.measured.iter().sum::<f64>() / self.measured.len() as f64;
        if self.measured.len() >= self.cells {
            CellTime::Done(mean)
        } else {
            CellTime::Measured(mean)
        }
    }

    /// Seconds its unfinished cells still need (0 for cells on a server not yet measured).
    pub fn seconds_to_run(&self) -> f64 {
        let left = self.cells.saturating_sub(self.measured.len()) as f64;
        match self.time_per_cell() {
            CellTime::Done(_) | CellTime::OnServer => 0.0,
            CellTime::Measured(s) | CellTime::Estimated(s) => left * s,
        }
    }
}

/// Rows by task and method, in the order first seen, from each cell's task, method, estimate
/// and measured time (when finished).
pub fn rows<'a>(
    cells: impl IntoIterator<Item = (&'a str, &'a str, Estimate, Option<f64>)>,
) -> Vec<Row> {
    // `per_cell` holds the sum over the row's cells until the end, then their mean.
    let mut rows: Vec<Row> = Vec::new();
    for (task, method, e, measured) in cells {
        let i = match rows
            .iter()
            .position(|r| r.task == task && r.method == method)
        {
            Some(i) => i,
            None => {
                rows.push(Row {
                    task: task.to_string(),
                    method: method.to_string(),
                    cells: 0,
                    per_cell: Estimate::default(),
                    measured: Vec::new(),
                });
                rows.len() - 1
            }
        };
        rows[i].cells += 1;
        rows[i].per_cell.add(&e);
        rows[i].measured.extend(measured);
    }
    for row in &mut rows {
        let n = row.cells.max(1) as f64;
        let mean = |x: u64| (x as f64 / n).round() as u64;
        let sum = row.per_cell;
        row.per_cell = Estimate {
            calls: mean(sum.calls),
            prompt_tokens: mean(sum.prompt_tokens),
            generated_tokens: mean(sum.generated_tokens),
            seconds: sum.seconds / n,
            on_server: sum.on_server,
        };
    }
    rows
}

#[cfg(test)]
mod tests;
