//! The one loop: terminal input, the engine's events (batched with `recv_many`), SIGTERM, and a
//! frame deadline. A redraw happens only when something changed, at most ~30 times a second;
//! an idle screen sleeps in `select!` with no timer armed. The App's terminal effects are carried
//! out here: a copy is written to the terminal as OSC 52; an external edit leaves the loop (so
//! the input stream lets go of the keyboard), runs `$EDITOR`, and enters it again.

use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::{Stream, StreamExt};
use ratatui::backend::Backend;
use ratatui::{DefaultTerminal, Terminal};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::{sleep_until, Instant};

use super::app::{App, Exit, TerminalEffect};
use super::editor::EditorTarget;
use super::terminal;
use super::view;
use crate::dln::events::{Command, Event};

/// The minimum time between two frames (≈30 fps).
pub const FRAME: Duration = Duration::from_millis(33);

/// The workbench's connection to a run; both ends are absent in replay.
#[derive(Default)]
pub struct Link {
    pub commands: Option<UnboundedSender<Command>>,
    pub events: Option<UnboundedReceiver<Event>>,
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoopStats {
    /// Frames drawn.
    pub frames: u64,
    /// Engine events applied.
    pub events: u64,
}

/// Run the workbench on the real terminal until the person leaves (and, after a Stop, until the
/// engine has finished).
pub async fn run(
    term: &mut DefaultTerminal,
    app: &mut App,
    mut link: Link,
) -> std::io::Result<LoopStats> {
    let mut stats = LoopStats::default();
    let mut copy =
        |t: &mut DefaultTerminal, text: &str| terminal::copy_to_clipboard(t.backend_mut(), text);
    loop {
        let input = EventStream::new();
        let edit = serve(term, input, app, &mut link, &mut stats, &mut copy, true).await?;
        // The input stream is gone with `serve`: the editor has the keyboard to itself.
        let Some((target, text)) = edit else {
            return Ok(stats);
        };
        let result = terminal::edit_externally(term, &text);
        let commands = app.external_edit_done(target, &text, result);
        send(app, &link, commands);
    }
}

/// The loop over any backend and any stream of terminal events (tests drive it with ratatui's
/// `TestBackend` and a channel). Copies are dropped and external edits refused: both need the
/// real terminal.
pub async fn run_with<B, S>(
    terminal: &mut Terminal<B>,
    input: S,
    app: &mut App,
    mut link: Link,
) -> std::io::Result<LoopStats>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    let mut stats = LoopStats::default();
    let mut copy = |_: &mut Terminal<B>, _: &str| Ok(());
    serve(
        terminal, input, app, &mut link, &mut stats, &mut copy, false,
    )
    .await?;
    Ok(stats)
}

/// A copy written to the terminal.
type CopyFn<'a, B> = dyn FnMut(&mut Terminal<B>, &str) -> std::io::Result<()> + 'a;

/// The loop proper, until the person leaves (`None`) or asks for an external edit of a target
/// with a text (when `can_suspend`; otherwise refused with a notice).
async fn serve<B, S>(
    terminal: &mut Terminal<B>,
    mut input: S,
    app: &mut App,
    link: &mut Link,
    stats: &mut LoopStats,
    copy: &mut CopyFn<'_, B>,
    can_suspend: bool,
) -> std::io::Result<Option<(EditorTarget, String)>>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut batch: Vec<Event> = Vec::with_capacity(256);
    let size = terminal.size().map_err(std::io::Error::other)?;
    app.viewport = (size.width, size.height);
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    loop {
        if app.exit == Exit::Now {
            break;
        }
        let deadline = last_draw + FRAME;
        let mut commands: Vec<Command> = Vec::new();
        tokio::select! {
            biased;
            _ = sleep_until(deadline), if dirty => {
                crate::fault::point("tui_frame", || {});
                terminal.draw(|f| view::draw(app, f)).map_err(std::io::Error::other)?;
                stats.frames += 1;
                dirty = false;
                last_draw = Instant::now();
            }
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => {
                    commands = app.handle_key(key);
                    dirty = true;
                }
                Some(Ok(TermEvent::Mouse(m))) => {
                    app.handle_mouse(m);
                    dirty = true;
                }
                Some(Ok(TermEvent::Resize(w, h))) => {
                    app.viewport = (w, h);
                    terminal.autoresize().map_err(std::io::Error::other)?;
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                // The terminal went away: stop the run like Ctrl-C would.
                None => {
                    commands = app.interrupt();
                    if app.exit == Exit::Stopping && link.events.is_none() {
                        app.exit = Exit::Now;
                    }
                }
            },
            n = recv_many(&mut link.events, &mut batch) => {
                if n == 0 {
                    link.events = None;
                    app.events_closed();
                } else {
                    stats.events += n as u64;
                    app.apply_all(batch.iter());
                    batch.clear();
                }
                dirty = true;
            }
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: stopping the run");
                commands = app.interrupt();
                dirty = true;
            }
            _ = sighup.recv() => {
                tracing::info!("SIGHUP: stopping the run");
                commands = app.interrupt();
                dirty = true;
            }
        }
        send(app, link, commands);
        for effect in std::mem::take(&mut app.effects) {
            match effect {
                TerminalEffect::Copy(text) => {
                    if let Err(e) = copy(terminal, &text) {
                        app.notice = Some(format!("cannot write to the terminal: {e}"));
                    }
                }
                TerminalEffect::ExternalEdit { target, text } if can_suspend => {
                    return Ok(Some((target, text)));
                }
                TerminalEffect::ExternalEdit { .. } => {
                    app.notice = Some("an external editor needs the real terminal".into());
                }
            }
        }
        if app.exit == Exit::Stopping && link.events.is_none() {
            // Nothing will confirm the stop: the engine is already gone.
            app.exit = Exit::Now;
        }
    }
    Ok(None)
}

async fn recv_many(events: &mut Option<UnboundedReceiver<Event>>, batch: &mut Vec<Event>) -> usize {
    match events {
        Some(rx) => rx.recv_many(batch, 256).await,
        None => std::future::pending().await,
    }
}

fn send(app: &mut App, link: &Link, commands: Vec<Command>) {
    for c in commands {
        tracing::info!(?c, "command");
        let sent = link.commands.as_ref().is_some_and(|tx| tx.send(c).is_ok());
        if !sent {
            app.notice = Some("the run is no longer listening (it has ended)".into());
        }
    }
}
