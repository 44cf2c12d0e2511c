//! The bench screen's loop: keys in, frames out; Enter's run is read from disk here and shown
//! in the replay view (the run workbench's own loop, on the same terminal); when the person
//! quits the replay, the table is back as they left it.

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::{Stream, StreamExt};
use ratatui::backend::Backend;
use ratatui::{DefaultTerminal, Terminal};

use super::state::{BenchView, Effect, Msg};
use super::view;
use crate::dln::events::Event;
use crate::tui::run_loop::{self as workbench, Link};
use crate::tui::App;

/// The screen on the real terminal until the person quits. Each replay gets the keyboard to
/// itself: this loop's input stream is dropped while it runs.
pub async fn run(term: &mut DefaultTerminal, v: &mut BenchView) -> std::io::Result<()> {
    loop {
        let mut input = EventStream::new();
        let Some(mut app) = serve(term, &mut input, v).await? else {
            return Ok(());
        };
        drop(input);
        workbench::run(term, &mut app, Link::default()).await?;
        v.update(Msg::ReplayClosed);
    }
}

/// The same over any backend and stream of terminal events (tests use `TestBackend` and a
/// channel): replays share the stream.
pub async fn run_with<B, S>(
    terminal: &mut Terminal<B>,
    mut input: S,
    v: &mut BenchView,
) -> std::io::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    loop {
        let Some(mut app) = serve(terminal, &mut input, v).await? else {
            return Ok(());
        };
        workbench::run_with(terminal, &mut input, &mut app, Link::default()).await?;
        v.update(Msg::ReplayClosed);
    }
}

/// Until the person quits (`None`) or opens a run that can be replayed (its workbench).
async fn serve<B, S>(
    terminal: &mut Terminal<B>,
    input: &mut S,
    v: &mut BenchView,
) -> std::io::Result<Option<App>>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    loop {
        if v.quit {
            return Ok(None);
        }
        terminal
            .draw(|f| view::draw(v, f))
            .map_err(std::io::Error::other)?;
        let effect = tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => {
                    v.handle_key(key)
                }
                Some(Ok(TermEvent::Resize(..))) => {
                    terminal.autoresize().map_err(std::io::Error::other)?;
                    None
                }
                Some(Ok(_)) => None,
                Some(Err(e)) => return Err(e),
                None => return Ok(None),
            },
            _ = sigterm.recv() => return Ok(None),
            _ = sighup.recv() => return Ok(None),
        };
        if let Some(Effect::OpenRun { dir, what }) = effect {
            match replayable(&dir) {
                Ok(events) => {
                    tracing::info!(run_dir = %dir.display(), "replay from the bench table");
                    return Ok(Some(App::replay(v.theme.clone(), v.keymap.clone(), events)));
                }
                Err(why) => {
                    v.update(Msg::RunUnavailable(format!("cannot open {what}: {why}")));
                }
            }
        }
    }
}

/// A run directory's events, or why it cannot be replayed (gone, unreadable, empty).
pub fn replayable(dir: &std::path::Path) -> Result<Vec<Event>, String> {
    if !dir.is_dir() {
        return Err(format!("its run directory {} is gone", dir.display()));
    }
    let events = crate::run::read_events(dir).map_err(|e| e.to_string())?;
    if events.is_empty() {
        return Err(format!("{} has no recorded events", dir.display()));
    }
    Ok(events)
}
