//! Command-line interface. Each subcommand lives in its own file; this one only parses and
//! dispatches, and reports errors as one clear line (never a panic).

mod bench;
mod model;
mod train;
mod tui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dln",
    version,
    about = "A terminal workbench for Deep Language Networks"
)]
pub struct Cli {
    /// A GGUF model file, or a built-in model name (smollm2-135m, gemma3-270m).
    #[arg(long, global = true, env = "DLN_MODEL")]
    pub model: Option<String>,
    /// Colour theme of the workbench (dark, light, mono, or a file in the config directory).
    #[arg(long, global = true)]
    pub theme: Option<String>,
    #[command(subcommand)]
    pub command: Option<Commands>,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Open the workbench on a config and start training.
    Tui {
        config: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Train headless: progress on stderr, a one-line JSON summary on stdout.
    Train {
        config: PathBuf,
        /// Run directory (default: runs/<task>-<timestamp> in the data directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a config value, e.g. `--set train.iterations=3`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Continue a stopped or interrupted run where it stopped.
    Resume { run_dir: PathBuf },
    /// Evaluate a run's best prompts on a split.
    Eval {
        config: PathBuf,
        #[arg(long)]
        run: PathBuf,
        #[arg(long, default_value = "test")]
        split: String,
    },
    /// Open a finished or interrupted run read-only, with an iteration scrubber.
    Replay { run_dir: PathBuf },
    /// Benchmarks that print ratios against a baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// Manage local GGUF models.
    Model {
        #[command(subcommand)]
        which: ModelCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Naive vs prefix-reused scoring and batched vs sequential generation on the embedded model.
    Engine {
        /// One JSON object on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// An OpenAI-compatible server: throughput at 1 vs 8 requests in flight, and its scores
    /// against the embedded engine's on the same texts.
    Http {
        /// Base URL ending in /v1 (default: OPENAI_BASE_URL).
        #[arg(long, env = "OPENAI_BASE_URL")]
        url: String,
        /// The model name the server knows.
        #[arg(long = "server-model", default_value = "smollm2-135m")]
        server_model: String,
        /// Scoring requests per concurrency level.
        #[arg(long, default_value_t = 16)]
        requests: usize,
        /// Skip the comparison with the embedded engine (no local model needed).
        #[arg(long)]
        no_compare: bool,
        /// One JSON object on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Fetch a built-in model into the cache (default: smollm2-135m).
    Pull { name: Option<String> },
    /// List the built-in models and whether each is cached.
    List,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => tui::demo(cli.model.as_deref(), cli.theme.as_deref()),
        Some(Commands::Tui {
            ref config,
            ref out,
            ref set,
        }) => tui::open(
            config,
            out.as_deref(),
            set,
            cli.model.as_deref(),
            cli.theme.as_deref(),
        ),
        Some(Commands::Replay { ref run_dir }) => tui::replay(run_dir, cli.theme.as_deref()),
        Some(Commands::Train {
            ref config,
            ref out,
            ref set,
        }) => train::train(config, out.as_deref(), set, cli.model.as_deref()),
        Some(Commands::Resume { ref run_dir }) => train::resume(run_dir, cli.model.as_deref()),
        Some(Commands::Eval {
            ref config,
            ref run,
            ref split,
        }) => train::eval(config, run, split, cli.model.as_deref()),
        Some(Commands::Bench {
            which: BenchCommand::Engine { json },
        }) => bench::engine(cli.model.as_deref(), json),
        Some(Commands::Bench {
            which:
                BenchCommand::Http {
                    ref url,
                    ref server_model,
                    requests,
                    no_compare,
                    json,
                },
        }) => bench::http(
            url,
            server_model,
            requests,
            (!no_compare).then_some(cli.model.as_deref()),
            json,
        ),
        Some(Commands::Model {
            which: ModelCommand::Pull { ref name },
        }) => model::pull(name.as_deref()),
        Some(Commands::Model {
            which: ModelCommand::List,
        }) => model::list(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dln: {}", format_error(&e));
            ExitCode::from(1)
        }
    }
}

/// One line: the error and its causes, joined.
fn format_error(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
