//! Command-line interface. Each subcommand lives in its own file; this one only parses and
//! dispatches, and reports errors as one clear line (never a panic).

mod after;
mod args;
mod bench;
mod bench_view;
mod branch;
mod cache;
mod config_cmd;
mod lineage;
mod logging;
mod model;
mod signals;
mod table;
mod train;
mod tui;

use std::process::ExitCode;

pub use args::{
    AccuracyArgs, BenchCommand, CacheCommand, Cli, Commands, ConfigCommand, ModelCommand,
    RunsCommand,
};

/// The exit codes of `dln` (the README lists them). 2 is left to clap's usage errors.
pub mod exit {
    /// The command failed (bad config, data, model, a run that failed): the message says why.
    pub const FAILED: u8 = 1;
    /// The run stopped early at a stage boundary (Ctrl-C, SIGTERM, SIGHUP, a stop in the
    /// workbench) after writing its checkpoint: `dln resume RUN_DIR` continues it.
    pub const STOPPED: u8 = 3;
    /// The run was stopped at once (a second Ctrl-C): resumable from its last checkpoint.
    pub const INTERRUPTED: u8 = 130;
}

/// The command line as clap sees it, with `dln --help`'s closing section; `dln man` and
/// `dln completions` are built from it too.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command().after_help(after_help())
}

/// What `dln --help` ends with: where runs go, the exit codes, examples, and the environment
/// variables from the list `dln config show` reads ([`config_cmd::ENVIRONMENT`]).
fn after_help() -> String {
    let width = config_cmd::ENVIRONMENT
        .iter()
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0);
    let env: Vec<String> = config_cmd::ENVIRONMENT
        .iter()
        .map(|(k, v)| format!("  {k:width$}  {v}"))
        .collect();
    format!(
        "Runs are written to ./runs/ when the current directory has one, else to runs/ in the \
data directory (DLN_DATA, or the platform's data directory); models are cached in its models/. \
Exit codes: 0 finished, 1 failed, 2 usage error, 3 stopped early (resumable), 130 interrupted \
(resumable).

Examples:
  dln                                     the workbench on the bundled DLN-2 demo
  dln train examples/dln1-demo.toml       train headless
  dln export runs/sentiment-dln1-…        the trained prompts as a network file

Environment:
{}",
        env.join("\n")
    )
}

pub fn main() -> ExitCode {
    let cli = match command().try_get_matches() {
        Ok(m) => match <Cli as clap::FromArgMatches>::from_arg_matches(&m) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        },
        Err(e) => e.exit(),
    };
    if matches!(
        cli.command,
        Some(
            Commands::Runs { .. }
                | Commands::Compare { .. }
                | Commands::Lineage { .. }
                | Commands::Export { .. }
                | Commands::Config { .. }
                | Commands::Cache {
                    which: CacheCommand::Stats { .. }
                }
                | Commands::Completions { .. }
                | Commands::Man
                | Commands::Model {
                    which: ModelCommand::List
                }
        )
    ) {
        quiet_broken_pipe();
    }
    // The workbench logs to a file of its own; every other command to stderr.
    let workbench = matches!(
        &cli.command,
        None | Some(
            Commands::Tui { .. }
                | Commands::Replay { .. }
                | Commands::Resume { tui: true, .. }
                | Commands::Branch { tui: true, .. }
                | Commands::Bench {
                    which: BenchCommand::View { .. },
                }
        )
    );
    if !workbench {
        logging::to_stderr(cli.verbose, cli.quiet);
    }
    let result = match cli.command {
        None => tui::demo(cli.model.as_deref(), cli.theme.as_deref()),
        Some(Commands::Tui {
            resume: Some(ref run_dir),
            ref set,
            ..
        }) => tui::resume(run_dir, set, cli.model.as_deref(), cli.theme.as_deref()),
        Some(Commands::Tui {
            config: Some(ref config),
            ref out,
            ref set,
            ..
        }) => tui::open(
            config,
            out.as_deref(),
            set,
            cli.model.as_deref(),
            cli.theme.as_deref(),
        ),
        Some(Commands::Tui { .. }) => Err(anyhow::anyhow!(
            "give a config to train on, or --resume RUN_DIR to continue a run"
        )),
        Some(Commands::Replay { ref run_dir }) => {
            tui::replay(run_dir, cli.model.as_deref(), cli.theme.as_deref())
        }
        Some(Commands::Train {
            ref config,
            ref out,
            ref set,
            ref feedback,
        }) => train::train(config, out.as_deref(), set, feedback, cli.model.as_deref()),
        Some(Commands::Resume {
            ref run_dir,
            ref set,
            tui: false,
            ref feedback,
        }) => train::resume(run_dir, set, feedback, cli.model.as_deref()),
        Some(Commands::Resume {
            ref run_dir,
            ref set,
            tui: true,
            ..
        }) => tui::resume(run_dir, set, cli.model.as_deref(), cli.theme.as_deref()),
        Some(Commands::Branch {
            ref run_dir,
            at,
            ref set,
            ref out,
            tui,
        }) => branch::branch(
            dln::run::BranchRequest {
                parent: run_dir.clone(),
                at,
                changes: set.clone(),
                out: out.clone(),
            },
            tui.then_some(branch::Open {
                model: cli.model.as_deref(),
                theme: cli.theme.as_deref(),
            }),
        ),
        Some(Commands::Export {
            ref run_dir,
            format,
            which,
            ref output,
        }) => after::export(run_dir, format, which, output.as_deref()),
        Some(Commands::Predict {
            ref network,
            ref input,
            ref output,
            explain,
            skip_bad_lines,
        }) => after::predict_cmd(after::PredictArgs {
            network,
            input: input.as_deref(),
            output: output.as_deref(),
            explain,
            skip_bad_lines,
            model: cli.model.as_deref(),
        }),
        Some(Commands::Runs {
            which: Some(RunsCommand::Show { ref run }),
            ..
        }) => after::show(run),
        Some(Commands::Runs {
            which: None,
            ref dirs,
            json,
        }) => after::runs(dirs, json),
        Some(Commands::Compare { ref runs, json }) => after::compare(runs, json),
        Some(Commands::Lineage {
            ref run_dir,
            layer,
            dot,
            json,
        }) => lineage::lineage(
            run_dir,
            layer,
            match (dot, json) {
                (true, _) => lineage::Format::Dot,
                (_, true) => lineage::Format::Json,
                _ => lineage::Format::Text,
            },
        ),
        Some(Commands::Eval {
            ref config,
            ref run,
            ref split,
        }) => train::eval(config, run, split, cli.model.as_deref()),
        Some(Commands::Bench {
            which: BenchCommand::View { ref paths },
        }) => bench_view::view(paths, cli.theme.as_deref()),
        Some(Commands::Bench {
            which:
                BenchCommand::Engine {
                    json,
                    ref llama_bench,
                    scale,
                },
        }) => bench::engine(cli.model.as_deref(), json, llama_bench.as_deref(), scale),
        Some(Commands::Bench {
            which:
                BenchCommand::Cache {
                    entries,
                    lookups,
                    max_mb,
                    ref dir,
                    json,
                    ref side,
                },
        }) => bench::cache(
            bench::CacheArgs {
                entries,
                lookups,
                max_mb,
                dir: dir.clone(),
            },
            json,
            side.as_deref(),
        ),
        Some(Commands::Bench {
            which: BenchCommand::Accuracy(ref args),
        }) => bench::accuracy(args, cli.model.as_deref()),
        Some(Commands::Bench {
            which: BenchCommand::Forecast { ref runs, json },
        }) => bench::forecast(runs, json),
        Some(Commands::Bench {
            which: BenchCommand::Keep { ref out, ref dest },
        }) => bench::keep(out, dest),
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
        Some(Commands::Config {
            which:
                ConfigCommand::Show {
                    ref config,
                    ref set,
                    json,
                },
        }) => config_cmd::show(config, set, cli.model.as_deref(), json),
        Some(Commands::Cache {
            which: CacheCommand::Stats { ref cache, json },
        }) => cache::stats(cache.path.as_deref(), json),
        Some(Commands::Cache {
            which: CacheCommand::Clear { ref cache },
        }) => cache::clear(cache.path.as_deref()),
        Some(Commands::Cache {
            which: CacheCommand::Vacuum { ref cache },
        }) => cache::vacuum(cache.path.as_deref()),
        Some(Commands::Completions { shell }) => {
            let mut cmd = command();
            clap_complete::generate(shell, &mut cmd, "dln", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Some(Commands::Man) => {
            let cmd = command();
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => Err(anyhow::Error::new(e).context("writing the man page")),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dln: {}", format_error(&e));
            ExitCode::from(exit::FAILED)
        }
    }
}

/// Commands that only print (no sockets, no terminal UI) end quietly when their reader goes
/// away (`dln runs | head`), as other Unix tools do, instead of panicking on a broken pipe.
fn quiet_broken_pipe() {
    // SAFETY: restores the default action of SIGPIPE before any thread or socket exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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
