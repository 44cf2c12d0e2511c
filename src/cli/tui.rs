//! `dln` (no arguments), `dln tui CONFIG`, `dln replay RUN_DIR`: the workbench.
//!
//! Everything that can fail before the screen is taken over (config, theme, key bindings, the
//! run directory) fails here with a one-line message; once the workbench runs, the terminal is
//! restored on every way out.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use dln::config::Config;
use dln::dln::network::load_template;
use dln::run::{read_events, Session, SessionOptions};
use dln::tui::app::TemplateCheck;
use dln::tui::run_loop::{self, Link};
use dln::tui::settings::{config_dir, config_path, Settings};
use dln::tui::terminal::TerminalGuard;
use dln::tui::theme::no_color_env;
use dln::tui::{App, Exit, KeyMap, Theme};

/// The bundled demo: DLN-2 on a small shipped navigation task (a hidden layer writes its
/// reasoning, the output layer answers), compiled into the binary so `dln` works from any
/// directory; written to `<data dir>/demo/` each time (so it always matches this binary).
const DEMO_CONFIG: (&str, &str) = (
    "dln2-demo.toml",
    include_str!("../../examples/dln2-demo.toml"),
);
const DEMO_DATA: &[(&str, &str)] = &[(
    "data/navigate.json",
    include_str!("../../examples/data/navigate.json"),
)];

/// How long to wait for the run to write its checkpoint after the workbench closed.
const STOP_GRACE: Duration = Duration::from_secs(30);

pub fn demo(model: Option<&str>, theme: Option<&str>) -> anyhow::Result<ExitCode> {
    need_terminal()?;
    let dir = dln::llm::model::data_dir().join("demo");
    for (name, text) in std::iter::once(&DEMO_CONFIG).chain(DEMO_DATA) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| {
                format!("cannot create the demo directory {}", parent.display())
            })?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    open(&dir.join(DEMO_CONFIG.0), None, &[], model, theme)
}

pub fn open(
    config_file: &Path,
    out: Option<&Path>,
    set: &[String],
    model: Option<&str>,
    theme: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(config_file)?;
    for s in set {
        config.apply_override(s)?;
    }
    // What can fail before the run starts fails here, before the screen is taken over.
    config.validate()?;
    dln::run::load_data(&config)?;
    dln::run::check_models(&config, model)?;
    need_terminal()?;
    let opts = SessionOptions {
        out_dir: out.map(Path::to_path_buf),
        model: model.map(str::to_string),
        ..SessionOptions::default()
    };
    let shown = config.clone();
    live(&shown, (model, theme), &[], Session::start(config, opts))
}

/// `dln tui --resume RUN_DIR` / `dln resume RUN_DIR --tui`: the workbench on a stopped run,
/// showing its history, continuing where it stopped.
pub fn resume(
    run_dir: &Path,
    set: &[String],
    model: Option<&str>,
    theme: Option<&str>,
) -> anyhow::Result<ExitCode> {
    resume_opening(run_dir, set, model, theme, false)
}

/// [`resume`], `paused`: the run waits for the person (a new branch, to be looked at and edited
/// before it trains).
pub fn resume_opening(
    run_dir: &Path,
    set: &[String],
    model: Option<&str>,
    theme: Option<&str>,
    paused: bool,
) -> anyhow::Result<ExitCode> {
    let config_path = run_dir.join(dln::run::CONFIG_FILE);
    if !config_path.exists() {
        anyhow::bail!(dln::run::RunError::NotARun {
            path: run_dir.to_path_buf()
        });
    }
    let config = Config::load(&config_path)?;
    let history = read_events(run_dir).unwrap_or_default();
    need_terminal()?;
    let opts = SessionOptions {
        model: model.map(str::to_string),
        overrides: set.to_vec(),
        start_paused: paused,
        ..SessionOptions::default()
    };
    live(
        &config,
        (model, theme),
        &history,
        Session::resume(run_dir, opts),
    )
}

/// The workbench on a live session that `start` opens; `history` (a resumed run's past events)
/// is shown first.
fn live(
    config: &Config,
    (model, theme_name): (Option<&str>, Option<&str>),
    history: &[dln::dln::events::Event],
    start: impl std::future::Future<Output = Result<Session, dln::run::RunError>>,
) -> anyhow::Result<ExitCode> {
    let (theme, keymap) = look(theme_name)?;
    let mut app = App::new(theme, keymap);
    app.template_check = Some(template_check(config));
    app.apply_all(history.iter());
    let rt = runtime()?;
    let (code, run_dir, branch) = rt.block_on(async move {
        let _log = dln::tui::logging::to_file(&dln::llm::model::data_dir());
        let session = start.await?;
        let run_dir = session.run_dir.clone();
        tracing::info!(run_dir = %run_dir.display(), "workbench started");
        let link = Link {
            commands: Some(session.commands),
            events: Some(session.events),
        };
        let outcome = workbench(&mut app, link).await;
        let finished = finish(&app, session.task).await;
        outcome?;
        let code = report(&app, &run_dir, finished);
        anyhow::Ok((code, run_dir, app.branch))
    })?;
    drop(rt);
    match branch {
        Some(at) => open_branch(&run_dir, at, model, theme_name),
        None => Ok(code),
    }
}

/// After the workbench closed on a confirmed `b`: the branch is made and opened, paused.
fn open_branch(
    run_dir: &Path,
    at: usize,
    model: Option<&str>,
    theme: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let made = dln::run::branch(&dln::run::BranchRequest {
        parent: run_dir.to_path_buf(),
        at: Some(at),
        ..Default::default()
    })?;
    eprintln!(
        "branched {} after iteration {at} into {}",
        run_dir.display(),
        made.run_dir.display()
    );
    if let Some(note) = made.cache.note() {
        eprintln!("{note}");
    }
    resume_opening(&made.run_dir, &[], model, theme, true)
}

pub fn replay(
    run_dir: &Path,
    model: Option<&str>,
    theme: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let events = read_events(run_dir)?;
    if events.is_empty() {
        anyhow::bail!(
            "{} has no recorded events (events.jsonl is empty)",
            run_dir.display()
        );
    }
    need_terminal()?;
    let (look_theme, keymap) = look(theme)?;
    let mut app = App::replay(look_theme, keymap, events);
    let rt = runtime()?;
    let branch = rt.block_on(async move {
        let _log = dln::tui::logging::to_file(&dln::llm::model::data_dir());
        workbench(&mut app, Link::default()).await?;
        anyhow::Ok(app.branch)
    })?;
    drop(rt);
    match branch {
        Some(at) => open_branch(run_dir, at, model, theme),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// The workbench draws on a terminal; say so instead of writing escape codes into a pipe.
pub(super) fn need_terminal() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        Ok(())
    } else {
        anyhow::bail!(
            "the workbench needs a terminal (stdin and stdout); for a headless run use `dln train CONFIG`"
        )
    }
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The theme and key bindings from `--theme`, `NO_COLOR` and the user's config file.
pub(super) fn look(cli_theme: Option<&str>) -> anyhow::Result<(Theme, KeyMap)> {
    let path = config_path();
    let settings = Settings::load(path.as_deref())?;
    let dir = config_dir();
    let theme = Theme::choose(
        cli_theme,
        settings.theme.as_deref(),
        no_color_env(),
        dir.as_deref(),
    )?;
    let keymap = KeyMap::with_overrides(&settings.keys).with_context(|| match &path {
        Some(p) => format!("key bindings in {}", p.display()),
        None => "key bindings".to_string(),
    })?;
    Ok((theme, keymap))
}

/// The check the template editor runs before sending an edit: the same loader and role check
/// the engine applies. (What the editor opens on comes with `RunStarted`.)
fn template_check(config: &Config) -> TemplateCheck {
    let k = config.layers.len();
    let base = config.base_dir();
    Box::new(move |layer, role, source| {
        load_template(source, role, layer + 1 < k, &base)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// Take over the terminal, run the loop, give the terminal back (also on error).
async fn workbench(app: &mut App, link: Link) -> anyhow::Result<()> {
    let mut guard = TerminalGuard::enter().context("cannot take over the terminal")?;
    let result = run_loop::run(&mut guard.terminal, app, link).await;
    drop(guard);
    let stats = result.context("terminal input failed")?;
    tracing::info!(
        frames = stats.frames,
        events = stats.events,
        "workbench closed"
    );
    Ok(())
}

/// After the workbench closed: let the run finish writing its checkpoint (bounded wait).
async fn finish(
    app: &App,
    task: tokio::task::JoinHandle<Result<dln::run::RunSummary, dln::run::RunError>>,
) -> Option<Result<dln::run::RunSummary, String>> {
    let wait = if app.run.is_active() && app.exit == Exit::Now {
        Duration::from_millis(200)
    } else {
        STOP_GRACE
    };
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(r)) => Some(r.map_err(|e| e.to_string())),
        Ok(Err(join)) => Some(Err(join.to_string())),
        Err(_) => None,
    }
}

/// Says how the run ended and gives the exit code that means it (see [`super::exit`]).
fn report(
    app: &App,
    run_dir: &Path,
    finished: Option<Result<dln::run::RunSummary, String>>,
) -> ExitCode {
    let dir = run_dir.display();
    match finished {
        Some(Ok(s)) if !s.stopped_early && !app.run.is_active() => {
            println!("run finished: {dir}");
            ExitCode::SUCCESS
        }
        Some(Err(e)) => {
            eprintln!("dln: the run failed: {e} (run directory: {dir})");
            ExitCode::from(super::exit::FAILED)
        }
        _ => {
            println!("run stopped; continue it with: dln resume {dir}");
            ExitCode::from(super::exit::STOPPED)
        }
    }
}
