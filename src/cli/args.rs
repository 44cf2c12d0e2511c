//! The command line's grammar: every subcommand, its arguments and their help, as clap derives
//! them. `mod.rs` dispatches what is parsed here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dln",
    version,
    about = "A terminal workbench for Deep Language Networks",
    long_about = "A terminal workbench for Deep Language Networks: stacked LLM prompts trained like the \
weights of a network (DLN-1, DLN-2). With no command, `dln` opens the workbench on a bundled \
DLN-2 demo with the embedded model."
)]
pub struct Cli {
    /// A GGUF model file, or a built-in model name (qwen2.5-coder-0.5b, the default;
    /// smollm2-135m, gemma3-270m, qwen2.5-coder-1.5b; `dln model list` shows them).
    #[arg(long, global = true, env = "DLN_MODEL")]
    pub model: Option<String>,
    /// Colour theme of the workbench (dark, light, mono, or a file in the config directory).
    #[arg(long, global = true)]
    pub theme: Option<String>,
    /// More of the log on stderr (headless commands): -v dln's notes, -vv its debugging detail.
    /// `DLN_LOG` (e.g. `debug`) overrides both flags.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors from the log on stderr (headless commands); warnings and retries are shown
    /// otherwise.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Option<Commands>,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Open the workbench on a config and start training.
    #[command(after_help = "Example: dln tui examples/dln2-demo.toml --set train.iterations=5")]
    Tui {
        /// The run configuration (TOML), or a network file from `dln export`.
        #[arg(required_unless_present = "resume")]
        config: Option<PathBuf>,
        /// Continue a stopped run in the workbench instead of starting one.
        #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "out"])]
        resume: Option<PathBuf>,
        /// Run directory (default: runs/<task>-<timestamp>, in ./runs or the data directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a config value, e.g. `--set train.iterations=3`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Train headless: progress on stderr, a one-line JSON summary on stdout.
    #[command(
        after_help = "Example: dln train examples/dln1-demo.toml --set train.seed=7 --out runs/try-7"
    )]
    Train {
        config: PathBuf,
        /// Run directory (default: runs/<task>-<timestamp> in the data directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a config value, e.g. `--set train.iterations=3`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// A note on a layer (numbered from 1, as the workbench shows them), shown to its
        /// proposals from the start until removed, e.g. `--feedback '1:the hidden layer forgets
        /// the turns'`. Repeatable.
        #[arg(long = "feedback", value_name = "LAYER:TEXT", value_parser = parse_feedback)]
        feedback: Vec<FeedbackArg>,
    },
    /// Continue a stopped or interrupted run where it stopped.
    #[command(after_help = "Example: dln resume runs/try-7 --set train.iterations=8")]
    Resume {
        run_dir: PathBuf,
        /// Change a training setting first, e.g. `--set train.iterations=10` to train longer
        /// than planned (also a finished run); only `train.*` keys.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Continue in the workbench instead of headless.
        #[arg(long)]
        tui: bool,
        /// A note on a layer (numbered from 1), shown to its proposals from now on until
        /// removed, e.g. `--feedback '2:answer with the letter only'`. Repeatable; headless only.
        #[arg(long = "feedback", value_name = "LAYER:TEXT", value_parser = parse_feedback, conflicts_with = "tui")]
        feedback: Vec<FeedbackArg>,
    },
    /// Start a new run from a past iteration of another, with changed settings; the original
    /// run is left as it is. Continue the branch with `dln resume` (or `--tui`).
    #[command(
        after_help = "Example: dln branch runs/try-7 --at 2 --set 'layers.0.prompt=Answer yes or no.' --set train.iterations=6"
    )]
    Branch {
        run_dir: PathBuf,
        /// Iterations completed at the branch point (0: after the start evaluation; default:
        /// the latest the run kept).
        #[arg(long, value_name = "IT")]
        at: Option<usize>,
        /// Change a setting in the branch: `train.*`, `layers.N.*` (`layers.N.prompt` also
        /// replaces the prompt the run had reached), the model; not `data.*`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// The branch's directory (default: beside the run, `<run>-b<IT>-<timestamp>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Open the branch in the workbench, paused, instead of only creating it.
        #[arg(long)]
        tui: bool,
    },
    /// Write a run's trained network (prompts with their templates) as a self-contained file
    /// that `dln predict` and `dln tui` read.
    #[command(after_help = "Example: dln export runs/try-7 --format yaml -o network.yaml")]
    Export {
        run_dir: PathBuf,
        #[arg(long, value_enum, default_value = "toml")]
        format: dln::run::export::Format,
        /// `best` (best on dev), `final`, or an iteration number.
        #[arg(long, default_value = "best", value_parser = parse_which)]
        which: dln::run::export::Which,
        /// Write to this file (atomically) instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Run a trained network (an exported file or a run directory) on new inputs: JSON Lines
    /// (`{"input": ...}`, optionally with a target) or plain lines; JSON Lines out.
    #[command(
        after_help = "Example: echo 'A wonderful film.' | dln predict network.yaml --explain"
    )]
    Predict {
        network: PathBuf,
        /// Inputs (default or `-`: stdin).
        #[arg(long, short)]
        input: Option<PathBuf>,
        /// Predictions (default: stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Add the text each hidden layer wrote.
        #[arg(long)]
        explain: bool,
        /// Skip malformed input lines (reported on stderr) instead of stopping at the first.
        #[arg(long)]
        skip_bad_lines: bool,
    },
    /// List your runs, newest first (./runs, the data directory's runs/, or the given dirs).
    #[command(after_help = "Example: dln runs --json")]
    Runs {
        #[command(subcommand)]
        which: Option<RunsCommand>,
        /// Directories to look in (run directories or directories of runs).
        dirs: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Compare runs: accuracy, tokens, time, and their best prompts with a word diff.
    #[command(after_help = "Example: dln compare runs/try-7 runs/try-8")]
    Compare {
        #[arg(required = true, num_args = 1..)]
        runs: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a run's best prompts on a split.
    #[command(
        after_help = "Example: dln eval examples/dln1-demo.toml --run runs/try-7 --split dev"
    )]
    Eval {
        /// The run configuration whose data the split is read from.
        config: PathBuf,
        /// The run directory whose best prompts are evaluated.
        #[arg(long)]
        run: PathBuf,
        /// Which split: train, dev or test.
        #[arg(long, default_value = "test")]
        split: String,
    },
    /// Open a finished or interrupted run read-only, with an iteration scrubber.
    #[command(after_help = "Example: dln replay runs/try-7")]
    Replay {
        /// The run's directory (it holds events.jsonl); `dln runs` lists yours. `--model` is not
        /// used: a replay reads the recorded events and calls no model.
        run_dir: PathBuf,
    },
    /// Where a run's prompts came from: per layer, each winner's ancestry back to the start
    /// (its parent, the examples its proposer was shown, the message), the rejected, pins,
    /// edits and resets.
    #[command(after_help = "Example: dln lineage runs/try-7 --dot | dot -Tsvg > lineage.svg")]
    Lineage {
        run_dir: PathBuf,
        /// Only this layer (counted from 1).
        #[arg(long)]
        layer: Option<usize>,
        /// Graphviz DOT instead of text.
        #[arg(long, conflicts_with = "json")]
        dot: bool,
        /// The lineage model as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks that print ratios against a baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// Manage local GGUF models.
    #[command(after_help = "Example: dln model pull qwen2.5-coder-0.5b")]
    Model {
        #[command(subcommand)]
        which: ModelCommand,
    },
    /// Inspect a run configuration.
    Config {
        #[command(subcommand)]
        which: ConfigCommand,
    },
    /// A call cache: its counts, emptying it, compacting its file.
    #[command(after_help = "Example: dln cache stats runs/try-7")]
    Cache {
        #[command(subcommand)]
        which: CacheCommand,
    },
    /// Shell completions on stdout (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example: dln completions bash > ~/.local/share/bash-completion/completions/dln"
    )]
    Completions { shell: clap_complete::Shell },
    /// The man page (roff) on stdout.
    #[command(after_help = "Example: dln man > ~/.local/share/man/man1/dln.1")]
    Man,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The effective settings of a config, each with where it came from (--set, file, default).
    #[command(
        after_help = "Example: dln config show examples/dln1-demo.toml --set train.iterations=2"
    )]
    Show {
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

/// The cache a `dln cache` command works on.
#[derive(Debug, clap::Args)]
pub struct CachePath {
    /// A run directory (its cache/), a cache directory, or its calls.sqlite (default: the cache
    /// `dln predict` keeps for network files, cache/predict in the data directory). An old
    /// calls.jsonl there is imported first.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries, bytes on disk, and entries, hits and answer bytes per model and operation.
    #[command(after_help = "Example: dln cache stats runs/try-7")]
    Stats {
        #[command(flatten)]
        cache: CachePath,
        /// One JSON object on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove every stored answer (the next run asks the model again).
    #[command(after_help = "Example: dln cache clear runs/try-7")]
    Clear {
        #[command(flatten)]
        cache: CachePath,
    },
    /// Rebuild the cache file to its smallest size.
    #[command(after_help = "Example: dln cache vacuum")]
    Vacuum {
        #[command(flatten)]
        cache: CachePath,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The comparison table: for each task, 0-shot, k-shot, DLN-1, DLN-2 (and ablations) over
    /// several seeds on the same splits and batches; writes results.md/.csv/.json and SVG plots.
    ///
    /// Example: dln bench accuracy hyperbaton subj examples/dln1-demo.toml --seeds 3
    /// --set train.iterations=4 --out bench-accuracy
    ///
    /// Every cell is a run directory under OUT/runs (open it with `dln replay`). Run the same
    /// command again to resume: finished cells are read back, stopped ones continue.
    Accuracy(AccuracyArgs),
    /// The table of `dln bench accuracy` in the workbench: tasks × methods, each cell's seeds,
    /// prompts and dev curve; Enter opens a run in the replay, quitting it comes back. Given
    /// several benchmarks (one per model, say), Tab goes from one table to the next.
    #[command(after_help = "Example: dln bench view bench-qwen05 bench-qwen15")]
    View {
        /// The benchmark's output directory (its --out), or its results.json; several for
        /// several tables.
        #[arg(required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
    },
    /// Naive vs prefix-reused scoring and batched vs sequential generation on the embedded model,
    /// optionally against llama.cpp's own benchmarks on the same file.
    #[command(after_help = "Example: dln bench engine --scale 0.25 --llama-bench ../llama-limit")]
    Engine {
        /// One JSON object on stdout instead of a table.
        #[arg(long)]
        json: bool,
        /// Also run llama.cpp's llama-bench and llama-batched-bench from DIR (or DIR/bin) on the
        /// same GGUF and threads, and report dln's throughput as a share of theirs (build them
        /// with ../shared/tools/llama-limit DIR).
        #[arg(long = "llama-bench", value_name = "DIR")]
        llama_bench: Option<PathBuf>,
        /// Share of the scoring workloads' inputs to run, in (0, 1]; `auto` aims at about three
        /// minutes of naive scoring at the model's measured prefill throughput.
        #[arg(long, value_name = "auto|F", default_value = "auto")]
        scale: dln::bench::Scale,
    },
    /// The SQLite call cache against the in-memory store it replaced, on the same synthetic
    /// entries in one run: memory, time of a hit (alone and in batches), and the file kept within
    /// a bound by eviction; each store is measured in its own process.
    #[command(after_help = "Example: dln bench cache --entries 100000 --max-mb 32")]
    Cache {
        /// Entries stored (shaped like a run's: 70 % class distributions, 20 % generations, 10 %
        /// scores).
        #[arg(long, default_value_t = 100_000)]
        entries: usize,
        /// Hits timed on each side, of random entries.
        #[arg(long, default_value_t = 20_000)]
        lookups: usize,
        /// The bound (MiB) of the eviction run, which stores every entry.
        #[arg(long = "max-mb", default_value_t = 32.0)]
        max_mb: f64,
        /// Where the temporary files go (default: the system's temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// One JSON object on stdout instead of a table.
        #[arg(long)]
        json: bool,
        /// Internal: measure one side (old or new) on the workload in DIR and print it as JSON.
        #[arg(long, hide = true, value_names = ["SIDE", "DIR"], num_args = 2)]
        side: Option<Vec<String>>,
    },
    /// Copies a benchmark's finished cells to DEST without their call caches (the few small
    /// files the report and the replay read), its stopped cells with their checkpoints and
    /// caches, and its reports: a table spread over several sittings and machines keeps what is
    /// done. The same command given --out DEST reads the finished cells back, resumes the stopped
    /// ones and runs the rest; `dln replay` and `dln runs` open them there.
    #[command(
        after_help = "Example: dln bench keep bench-qwen05 docs/results/qwen05\n\nA running cell, or one stopped before its first checkpoint, is left where it is; a cell already in DEST is written over."
    )]
    Keep {
        /// The benchmark's output directory (its --out).
        out: PathBuf,
        /// Where to keep it (created when missing).
        dest: PathBuf,
    },
    /// Did the ETA hold? For each iteration of recorded runs, the forecast made as it started
    /// against the time it took (pauses left out), and how many were within 25 %.
    #[command(after_help = "Example: dln bench forecast runs/*")]
    Forecast {
        /// Run directories.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// One JSON object on stdout instead of tables.
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

#[derive(Debug, clap::Args)]
pub struct AccuracyArgs {
    /// Tasks: paper task names (hyperbaton, navigate, date_understanding,
    /// logical_deduction_seven_objects, subj, mpqa, trec; data read under --data) or config files.
    #[arg(required = true)]
    pub tasks: Vec<String>,
    /// Methods, comma-separated: 0-shot, k-shot, dln-1, dln-1-demos (prompt and k
    /// demonstrations trained), dln-1-random (a random scored candidate kept instead of the
    /// best), dln-2, dln-3, dln-2-uniform (sharpening off), dln-2-no-prior, dln-2-fixed-h (π1
    /// fixed, not trained), gepa (GEPA's reflective evolution with a Pareto pool, given the
    /// tokens DLN-1 spent on the same task and seed; runs after dln-1).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0-shot,k-shot,dln-1,dln-2"
    )]
    pub methods: Vec<String>,
    /// Seeds per cell: N (1 to N), A-B, or A,B,… — the training seed (batches, proposals,
    /// demonstrations). Processes given disjoint seeds may share one --out.
    #[arg(long, default_value = "3", value_parser = parse_seeds)]
    pub seeds: Seeds,
    /// Demonstrations of the k-shot method.
    #[arg(long, default_value_t = 3)]
    pub k: usize,
    /// Where the paper's data is (bbh/, nlu/).
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Output directory: runs/, results.md, results.csv, results.json, accuracy.svg, curves.svg.
    #[arg(long, default_value = "bench-accuracy")]
    pub out: PathBuf,
    /// The settings every cell runs in: `paper` (the shipped task configs as they are), `laptop`
    /// (cut so that a DLN-2 cell on a 0.5B model fits a sitting on 2 cores:
    /// examples/bench/laptop.toml), `reasoning` (DLN-2 on the reasoning tasks with hidden texts
    /// up to 400 tokens, cut further elsewhere: examples/bench/reasoning.toml), or a TOML file
    /// of the same form. `--set` applies after it.
    #[arg(long, default_value = "paper", value_name = "NAME|FILE")]
    pub shape: String,
    /// `KEY=VALUE` applied to every cell (e.g. train.iterations=4, data.max_test=50); `hidden.KEY`
    /// reaches the hidden layers DLN-2 and DLN-3 add (e.g. hidden.forward_max_tokens=160).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the estimate of calls, tokens and time per cell, and run nothing.
    #[arg(long)]
    pub estimate: bool,
    /// Write the report from the cells already run, and run nothing.
    #[arg(long)]
    pub report_only: bool,
    /// Keep each cell in DEST at each of its checkpoints and as it ends, and the reports at the
    /// end, as `dln bench keep OUT DEST` does: a sitting that ends abruptly loses at most what
    /// the running cell did since its last checkpoint.
    #[arg(long, value_name = "DEST")]
    pub keep: Option<PathBuf>,
    /// The report as one JSON object on stdout instead of the Markdown table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run's summary and best prompts.
    Show { run: PathBuf },
}

/// A `--feedback LAYER:TEXT` note: the layer as the config counts it (from 0) and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackArg {
    pub layer: usize,
    pub text: String,
}

fn parse_feedback(s: &str) -> Result<FeedbackArg, String> {
    let usage = "give LAYER:TEXT with LAYER a layer number from 1, e.g. --feedback '1:the hidden layer forgets the turns'";
    let (layer, text) = s
        .split_once(':')
        .ok_or_else(|| format!("no `:` after the layer: {usage}"))?;
    let layer: usize = match layer.trim().parse() {
        Ok(n) if n >= 1 => n,
        _ => return Err(format!("`{}` is not a layer number: {usage}", layer.trim())),
    };
    if text.trim().is_empty() {
        return Err(format!("the note is empty: {usage}"));
    }
    Ok(FeedbackArg {
        layer: layer - 1,
        text: text.trim().to_string(),
    })
}

fn parse_which(s: &str) -> Result<dln::run::export::Which, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Fetch a built-in model into the cache (default: qwen2.5-coder-0.5b); an interrupted pull
    /// resumes from the parts it verified.
    Pull { name: Option<String> },
    /// List the built-in models: parameters, size, licence, whether each is cached, its path.
    List,
}

/// The seeds of `dln bench accuracy --seeds`.
#[derive(Debug, Clone)]
pub struct Seeds(pub Vec<u64>);

fn parse_seeds(s: &str) -> Result<Seeds, String> {
    dln::bench::accuracy::plan::parse_seeds(s).map(Seeds)
}
