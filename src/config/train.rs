//! `[train]`: the training settings, with the defaults of the reference DLN-2 settings scaled
//! down so a demo trains in minutes on a 135M-parameter model and two CPU cores (small batch,
//! few candidates, short generations).

use serde::{Deserialize, Serialize};

/// What kind of run: training, or one of the baselines run by the same code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Train the prompts (DLN-1, DLN-2, DLN-k by the number of layers).
    #[default]
    Dln,
    /// Evaluate the initial prompts without training.
    ZeroShot,
    /// In-context learning: `k_shot` training examples rendered before each input; no training.
    KShot,
}

/// Which optimizer trains the prompts under `mode = "dln"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    /// The DLN loop: `N−1` proposals per update ranked with the current prompt on the batch
    /// (posterior sampling and sharpening of the hidden texts above one layer).
    #[default]
    Dln,
    /// GEPA's loop (Agrawal et al., 2025): each iteration draws a parent from the Pareto front
    /// of a pool of candidates kept per dev example, writes one reflective mutation of the output
    /// layer's prompt from the traces of a minibatch, and keeps it (scored on all of dev) only
    /// when it beats its parent on that minibatch. Per-example scores are the exact
    /// log-likelihoods of the targets. Memory, patience, held-out ranking and `val_freq` do not
    /// apply; the output layer is the one trained.
    Gepa,
}

/// How candidate prompts of the output layer are scored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// Mean log-likelihood of the targets (class-renormalized for classification).
    #[default]
    Logprob,
    /// Batch accuracy (for backends without log-probabilities).
    Accuracy,
}

/// How an update picks the prompt that replaces the current one among its scored candidates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The best score (the method).
    #[default]
    Score,
    /// A scored candidate drawn at random (the ablation that tells what the scores are worth).
    Random,
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Training settings (`[train]`). Absent keys take their value from [`TrainConfig::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub mode: Mode,
    /// `dln` (the method) or `gepa` (GEPA's reflective evolution in the same harness).
    #[serde(skip_serializing_if = "is_default")]
    pub optimizer: Optimizer,
    /// Number of in-context examples for `mode = "k_shot"`.
    pub k_shot: usize,
    pub iterations: usize,
    /// `b`.
    pub batch_size: usize,
    /// `N`: candidate prompts per update, the current one included.
    pub num_candidates: usize,
    /// `S`: posterior samples per example and hidden text.
    pub num_hidden_samples: usize,
    /// Evaluate on dev every this many iterations (and after the last one).
    pub val_freq: usize,
    /// Evaluate the starting prompts on dev before the first iteration, so they can be the
    /// best-dev prompts (a run then never ends below its own start on dev).
    pub first_eval: bool,
    /// Evaluations without improvement before the prompts reset to the best-dev ones;
    /// negative = never.
    pub patience: i64,
    /// `M`: best-dev prompt sets that rejoin the candidates.
    pub memory: usize,
    /// Show only half of the batch to the proposer, rank on all of it.
    pub held_out_ranking: bool,
    pub class_balanced: bool,
    /// `T` of posterior sharpening.
    pub posterior_temperature: f64,
    /// Add the prior `log p(h̃ | F_h(x; π_below))` to the sharpening log-weights.
    pub include_prior: bool,
    /// `λ` of the trust-region KL on the output layer (0 = off).
    pub trust_factor: f64,
    /// Penalty on the likelihood of wrong hidden texts (0 = off).
    pub logp_penalty: f64,
    /// Decay the log-p penalty linearly over the iterations.
    pub decay_logp_penalty: bool,
    /// Nucleus (top-p) of the backward model's sampling: prompt proposals and posterior samples.
    pub backward_top_p: f32,
    /// Rounds of proposal requests per update: when some of the `N−1` proposals are rejected
    /// (empty, echo, meta, duplicate, copied), the missing ones are drawn again with new seeds,
    /// at most this many rounds in all.
    pub proposal_rounds: usize,
    /// Demonstration moves (swap, add, drop, reorder) per update of a layer with `demos > 0`,
    /// scored beside the instruction proposals.
    pub demo_moves: usize,
    /// For the examples the network got wrong, the forward pass's own hidden text takes no
    /// posterior weight and cannot be `h*` (when another sample exists): the text that led to
    /// the error is not what the hidden layer is trained toward.
    pub exclude_wrong_hidden: bool,
    /// Draw posterior samples only for the examples the network got wrong.
    pub only_wrong_posterior: bool,
    /// Show a person's written notes on a layer (`feedback` in the backward templates) to its
    /// proposals and posterior samples. Off: the notes are still recorded, not shown.
    #[serde(skip_serializing_if = "is_true")]
    pub person_feedback: bool,
    /// Show the proposer the metric's feedback: which examples were right or wrong and the
    /// correct answer (`metric_feedback` in the templates). Off: it sees the inputs and the
    /// student's answers only.
    #[serde(skip_serializing_if = "is_true")]
    pub metric_feedback: bool,
    pub scoring: Scoring,
    /// `score` (the method) or `random` (the ablation: the candidates are still scored, and
    /// one of them is picked at random).
    #[serde(skip_serializing_if = "is_default")]
    pub selection: Selection,
    /// Fraction of the first target tokens skipped in free-text scores.
    pub burn_in: f64,
    pub seed: u64,
    /// Indices of the layers to train (default: every trainable layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_layers: Option<Vec<usize>>,
    /// Stop the run cleanly (checkpoint, resumable) once it has used this many billed tokens
    /// (prompt tokens sent plus tokens generated; call-cache answers are free). Checked after
    /// every stage, so a run overshoots by at most one stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    /// Stop the run cleanly once its tokens have cost this much at the backends' prices
    /// (`prompt_price`, `generated_price` of `[backends.NAME]`), in the prices' currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_cost: Option<f64>,
    /// Train until the run has used this many billed tokens (dev evaluations included), then
    /// test: checked before each iteration, so the last one may overshoot; `iterations` stays
    /// the cap. Unlike `budget_tokens` the run ends finished, not stopped. How a benchmark
    /// gives two optimizers the same budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_tokens: Option<u64>,
}

/// The one place the training defaults are written; serde fills absent keys from it.
impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            mode: Mode::Dln,
            optimizer: Optimizer::Dln,
            k_shot: 3,
            iterations: 4,
            batch_size: 4,
            num_candidates: 3,
            num_hidden_samples: 2,
            val_freq: 2,
            first_eval: true,
            patience: 2,
            memory: 2,
            held_out_ranking: true,
            class_balanced: true,
            posterior_temperature: 1.0,
            include_prior: true,
            trust_factor: 0.0,
            logp_penalty: 0.0,
            decay_logp_penalty: true,
            backward_top_p: 0.95,
            proposal_rounds: 3,
            demo_moves: 2,
            exclude_wrong_hidden: false,
            only_wrong_posterior: false,
            person_feedback: true,
            metric_feedback: true,
            scoring: Scoring::Logprob,
            selection: Selection::Score,
            burn_in: 0.05,
            seed: 42,
            train_layers: None,
            budget_tokens: None,
            budget_cost: None,
            until_tokens: None,
        }
    }
}

impl TrainConfig {
    /// Patience as the method states it: `None` = never reset.
    pub fn gepa(&self) -> bool {
        self.mode == Mode::Dln && self.optimizer == Optimizer::Gepa
    }

    pub fn patience(&self) -> Option<usize> {
        (self.patience >= 0).then_some(self.patience as usize)
    }

    /// Checks what serde cannot: counts and ranges (`layers`: how many layers the config has).
    pub(super) fn validate(&self, layers: usize) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("`train.batch_size` must be at least 1".into());
        }
        if self.num_candidates == 0 {
            return Err("`train.num_candidates` must be at least 1 (the current prompt)".into());
        }
        if self.val_freq == 0 {
            return Err("`train.val_freq` must be at least 1".into());
        }
        use super::range::{non_negative, positive};
        positive(
            "train.posterior_temperature",
            self.posterior_temperature,
            1e12,
        )?;
        non_negative("train.trust_factor", self.trust_factor, 1e6)?;
        non_negative("train.logp_penalty", self.logp_penalty, 1e6)?;
        if self.num_hidden_samples == 0 {
            return Err("`train.num_hidden_samples` must be at least 1".into());
        }
        if !(self.backward_top_p > 0.0 && self.backward_top_p <= 1.0) {
            return Err("`train.backward_top_p` must be in (0, 1]".into());
        }
        if self.proposal_rounds == 0 {
            return Err("`train.proposal_rounds` must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.burn_in) {
            return Err("`train.burn_in` must be in [0, 1)".into());
        }
        if self.mode == Mode::KShot && self.k_shot == 0 {
            return Err("`train.k_shot` must be at least 1 with `mode = \"k_shot\"`".into());
        }
        if let Some(c) = self.budget_cost {
            if !c.is_finite() || c < 0.0 {
                return Err(format!("`train.budget_cost` must be 0 or more (got {c})"));
            }
        }
        if self.until_tokens == Some(0) {
            return Err(
                "`train.until_tokens` must be at least 1 (leave it out to train for `iterations`)"
                    .into(),
            );
        }
        if let Some(l) = self.train_layers.iter().flatten().find(|l| **l >= layers) {
            return Err(format!(
                "`train.train_layers` names layer {l} but there are {layers} layers"
            ));
        }
        Ok(())
    }
}
