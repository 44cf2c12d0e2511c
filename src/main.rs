//! The `dln` binary: parses the command line and hands each subcommand to its module in `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
