//! Where the log of a headless command goes: stderr, one line per record, warnings and retries
//! by default. The workbench logs to a file instead (`tui::logging`), never to its screen.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Routes `tracing` to stderr. `DLN_LOG` (a filter such as `debug` or `dln=trace`) wins over
/// the flags; else `-q` keeps errors only, nothing keeps warnings (a retry, a torn line cut),
/// `-v` adds dln's progress notes and `-vv` its debugging detail.
pub fn to_stderr(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,dln=info",
        (false, _) => "info,dln=debug",
    };
    let filter = EnvFilter::try_from_env("DLN_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .without_time()
        .with_target(false)
        .compact()
        .try_init();
}
