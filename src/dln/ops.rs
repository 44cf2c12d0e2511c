//! The LLM operations of a language layer, batched: render templates, generate hidden texts,
//! predict answers, and score targets (`log p(y | F(x; π))` over classes or per token).

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::data::{Example, OutputClasses};
use crate::dln::error::DlnError;
use crate::dln::network::{chat_forward_refused, Layer};
pub use crate::dln::stage::Operation;
use crate::llm::{
    ClassifyRequest, GenerateRequest, Generation, LlmResult, Prompt, ScoreRequest, VerbalizerReduce,
};
use crate::loss;

/// Log-probability given to an empty text (nothing to score): far below any real text, yet
/// finite so a batch's weighted sums stay comparable across candidates.
pub const EMPTY_TEXT_LOGPROB: f64 = -50.0;

/// A purpose of random draws with a stream of its own ([`stream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    /// The minibatch of an iteration.
    Batch,
    /// The half of the batch a proposal request is shown (held-out ranking).
    HeldOut,
    /// The order of the examples a proposal request is shown.
    Shuffle,
    /// The k-shot demonstrations.
    KShot,
    /// The demonstration moves of an update.
    DemoMoves,
    /// The candidate an update keeps under `selection = "random"`.
    Pick,
    /// GEPA's parent of an iteration, drawn from the pool's Pareto front.
    Parent,
}

impl Draw {
    /// The name the stream's seed is derived from (never changes, like [`Operation::name`]).
    pub fn name(self) -> &'static str {
        match self {
            Draw::Batch => "batch",
            Draw::HeldOut => "held_out",
            Draw::Shuffle => "shuffle",
            Draw::KShot => "k_shot",
            Draw::DemoMoves => "demo_moves",
            Draw::Pick => "pick",
            Draw::Parent => "gepa_parent",
        }
    }
}

/// A stable seed for one LLM call, from the run seed and where the call happens, so a resumed
/// run asks exactly what the uninterrupted one asked (and hits the call cache).
pub fn call_seed(
    run_seed: u64,
    iteration: usize,
    operation: Operation,
    layer: usize,
    index: usize,
) -> u64 {
    seed_of(run_seed, iteration, operation.name(), layer, index)
}

fn seed_of(run_seed: u64, iteration: usize, name: &str, layer: usize, index: usize) -> u64 {
    let mut h = Sha256::new();
    h.update(format!("{run_seed}|{iteration}|{name}|{layer}|{index}").as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b) >> 1
}

/// An RNG stream of its own for one purpose at one place of the run, derived from the run seed
/// like [`call_seed`]: what one purpose draws never shifts what another draws, so two runs with
/// one seed see the same batches whatever their `N`, held-out ranking or pins.
pub fn stream(
    run_seed: u64,
    iteration: usize,
    purpose: Draw,
    layer: usize,
    index: usize,
) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(seed_of(
        run_seed,
        iteration,
        purpose.name(),
        layer,
        index,
    ))
}

fn llm<T>(layer: usize, operation: &'static str, r: LlmResult<T>) -> Result<T, DlnError> {
    r.map_err(|source| DlnError::Llm {
        layer,
        operation,
        source,
    })
}

/// Raw text of a scoring context: a chat forward template's conversation as the layer's forward
/// model sees it (its own chat format, rendered to text), so it is scored and continued exactly.
fn raw(prompt: Prompt, layer: &Layer) -> Result<String, DlnError> {
    match prompt {
        Prompt::Raw { text } => Ok(text),
        Prompt::Chat {
            messages,
            assistant_prefix,
        } => (layer.backends.forward)
            .chat_text(&messages, &assistant_prefix)
            .map_err(|e| chat_forward_refused(layer.index, &layer.forward, e)),
    }
}

/// `F(u; π)` of a layer: its forward template with the prompt and the layer's input text
/// (`shots` are k-shot demonstrations, output layer only).
pub fn forward_context(
    layer: &Layer,
    input: &str,
    prompt: &str,
    shots: &[Example],
) -> Result<String, DlnError> {
    let examples: Vec<_> = shots
        .iter()
        .map(|e| json!({"input": e.input, "target": e.target}))
        .collect();
    let text = layer
        .forward
        .render(&json!({"prompt": prompt, "input": input, "examples": examples}))?;
    raw(layer.forward.prompt(text), layer)
}

/// The input of layer `layer`: `x` itself for the first layer, `R(x, h)` above it.
pub fn layer_input(layer: &Layer, x: &str, below: Option<&str>) -> Result<String, DlnError> {
    match (&layer.residual, below) {
        (Some(r), Some(h)) => Ok(r.render(&json!({"input": x, "h": h}))?),
        _ => Ok(x.to_string()),
    }
}

/// What follows a context when scoring a target: a space joins them unless one side has it.
fn continuation(context: &str, target: &str) -> String {
    if context.ends_with(char::is_whitespace) || target.starts_with(char::is_whitespace) {
        target.to_string()
    } else {
        format!(" {target}")
    }
}

/// A text a layer wrote, and whether its token budget (`forward_max_tokens`) ended it rather
/// than a stop string or the model's end of turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub text: String,
    pub cut: bool,
}

/// Generates one text per context with the layer's forward settings (hidden texts), trimmed.
pub async fn generate_forward(
    layer: &Layer,
    contexts: Vec<String>,
    seeds: Vec<u64>,
) -> Result<Vec<Written>, DlnError> {
    let requests: Vec<GenerateRequest> = contexts
        .into_iter()
        .zip(seeds)
        .map(|(c, seed)| GenerateRequest {
            prompt: Prompt::raw(c),
            temperature: layer.forward_temperature,
            top_p: 1.0,
            max_tokens: layer.forward_max_tokens,
            stop: layer.forward.stop.clone(),
            seed,
            n: 1,
        })
        .collect();
    let out = llm(
        layer.index,
        "forward",
        layer.backends.forward.generate(requests).await,
    )?;
    Ok(out
        .into_iter()
        .map(|g| {
            g.into_iter()
                .next()
                .map(|g| Written {
                    text: g.text.trim().to_string(),
                    cut: g.cut,
                })
                .unwrap_or_default()
        })
        .collect())
}

/// Runs requests on the layer's backward backend (posterior samples, prompt proposals); with no
/// requests there is no call.
pub async fn generate_backward(
    layer: &Layer,
    operation: Operation,
    requests: Vec<GenerateRequest>,
) -> Result<Vec<Vec<Generation>>, DlnError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    llm(
        layer.index,
        operation.name(),
        layer.backends.backward.generate(requests).await,
    )
}

/// The output layer's answers: the argmax class when classes are known, else a generation.
pub async fn predict(
    layer: &Layer,
    classes: Option<&OutputClasses>,
    contexts: Vec<String>,
    seeds: Vec<u64>,
) -> Result<Vec<String>, DlnError> {
    match classes {
        Some(c) => {
            let d = classify(layer, c, contexts).await?;
            Ok(d.iter().map(|d| c.labels[d.argmax()].clone()).collect())
        }
        None => Ok(generate_forward(layer, contexts, seeds)
            .await?
            .into_iter()
            .map(|w| w.text)
            .collect()),
    }
}

/// [`accuracy_of`] the layer's prediction for each (context, target): the likelihood used in
/// place of log-probabilities under accuracy scoring.
pub async fn prediction_accuracies(
    layer: &Layer,
    classes: Option<&OutputClasses>,
    pairs: Vec<(String, String)>,
    seeds: Vec<u64>,
) -> Result<Vec<f64>, DlnError> {
    let (contexts, targets): (Vec<String>, Vec<String>) = pairs.into_iter().unzip();
    let p = predict(layer, classes, contexts, seeds).await?;
    Ok(p.iter()
        .zip(&targets)
        .map(|(p, t)| accuracy_of(p, t))
        .collect())
}

/// Class distributions at the answer position of each context.
pub async fn classify(
    layer: &Layer,
    classes: &OutputClasses,
    contexts: Vec<String>,
) -> Result<Vec<crate::llm::ClassDistribution>, DlnError> {
    let requests = contexts
        .into_iter()
        .map(|context| ClassifyRequest {
            context,
            classes: classes.verbalizers.clone(),
            reduce: VerbalizerReduce::Sum,
        })
        .collect();
    llm(
        layer.index,
        "classify",
        layer.backends.forward.classify(requests).await,
    )
}

/// The class index of a target, or an error naming it.
pub fn class_of(classes: &OutputClasses, target: &str) -> Result<usize, DlnError> {
    classes.index_of(target).ok_or_else(|| {
        DlnError::Data(format!(
            "target `{target}` is none of the output classes ({}); fix `data.classes` or the label map",
            classes.labels.join(", ")
        ))
    })
}

/// Mean per-token `log p(target | context)` after the burn-in, for free text (hidden texts,
/// multi-token answers). Empty targets get [`EMPTY_TEXT_LOGPROB`] without a call.
pub async fn text_logprobs(
    layer: &Layer,
    operation: Operation,
    pairs: Vec<(String, String)>,
    burn_in: f64,
) -> Result<Vec<f64>, DlnError> {
    let mut out = vec![EMPTY_TEXT_LOGPROB; pairs.len()];
    let mut idx = Vec::new();
    let mut requests = Vec::new();
    for (i, (context, target)) in pairs.into_iter().enumerate() {
        if target.trim().is_empty() {
            continue;
        }
        let target = continuation(&context, &target);
        idx.push(i);
        requests.push(ScoreRequest { context, target });
    }
    if !requests.is_empty() {
        let scores = llm(
            layer.index,
            operation.name(),
            layer.backends.forward.score(requests).await,
        )?;
        for (i, s) in idx.into_iter().zip(scores) {
            out[i] = if s.token_logprobs.is_empty() {
                EMPTY_TEXT_LOGPROB
            } else {
                s.mean_logprob(burn_in)
            };
        }
    }
    Ok(out)
}

/// The output layer's `log p(y | context)` for each (context, target): the target class's
/// renormalized log-probability with classes, else the mean token log-prob. Also returns the
/// class distributions (for the trust region) when there are classes.
pub async fn output_logprobs(
    layer: &Layer,
    classes: Option<&OutputClasses>,
    operation: Operation,
    pairs: Vec<(String, String)>,
    burn_in: f64,
) -> Result<(Vec<f64>, Option<Vec<Vec<f64>>>), DlnError> {
    match classes {
        Some(c) => {
            let targets: Vec<usize> = pairs
                .iter()
                .map(|(_, t)| class_of(c, t))
                .collect::<Result<_, _>>()?;
            let requests = pairs
                .into_iter()
                .map(|(context, _)| ClassifyRequest {
                    context,
                    classes: c.verbalizers.clone(),
                    reduce: VerbalizerReduce::Sum,
                })
                .collect();
            let d = llm(
                layer.index,
                operation.name(),
                layer.backends.forward.classify(requests).await,
            )?;
            let lps = d
                .iter()
                .zip(&targets)
                .map(|(d, t)| d.log_probs[*t])
                .collect();
            Ok((lps, Some(d.into_iter().map(|d| d.probs).collect())))
        }
        None => Ok((text_logprobs(layer, operation, pairs, burn_in).await?, None)),
    }
}

/// 1.0 when the prediction matches the target (0/1 loss after normalization), else 0.0.
pub fn accuracy_of(prediction: &str, target: &str) -> f64 {
    if loss::exact_match(prediction, target) {
        1.0
    } else {
        0.0
    }
}
