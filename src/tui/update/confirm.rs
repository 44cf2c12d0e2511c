//! Leaving: the quit confirmation's keys, and what quit, Ctrl-C and the end of the event
//! stream do (stop with a checkpoint, or leave at once).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::dln::events::{Command, RunState};
use crate::tui::app::{App, Exit, Mode, Overlay};

pub(super) fn key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    match key.code {
        KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
            app.overlay = None;
            app.stop_and_exit()
        }
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => app.interrupt(),
        _ => {
            app.overlay = None;
            Vec::new()
        }
    }
}

/// The branch confirmation: `y`/Enter branches (a live run stops first, with a checkpoint, and
/// stays resumable), any other key cancels.
pub(super) fn branch_key(app: &mut App, at: usize, key: KeyEvent) -> Vec<Command> {
    app.overlay = None;
    match key.code {
        KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
            app.branch = Some(at);
            app.stop_and_exit()
        }
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => app.interrupt(),
        _ => Vec::new(),
    }
}

impl App {
    /// `b`: asks before branching after the iterations completed so far (in a replay, those of
    /// the iteration shown).
    pub(super) fn ask_branch(&mut self) {
        if !self.run.started || self.run.run_dir.is_empty() {
            self.notice = Some("nothing to branch yet: the run has not started".into());
            return;
        }
        if self.exit != Exit::No {
            return;
        }
        let at = self.run.history.last().map_or(0, |p| p.iteration + 1);
        self.overlay = Some(Overlay::ConfirmBranch { at });
    }

    pub(super) fn quit(&mut self) -> Vec<Command> {
        if self.exit == Exit::Stopping {
            // A second q while stopping: the last checkpoint stays resumable.
            self.exit = Exit::Now;
            return Vec::new();
        }
        if self.mode == Mode::Live && self.run.is_active() && self.run.started {
            self.overlay = Some(Overlay::ConfirmQuit);
            return Vec::new();
        }
        self.exit = Exit::Now;
        Vec::new()
    }

    /// Ctrl-C, SIGTERM: stop the run (checkpoint) without asking; a second one leaves at once.
    pub fn interrupt(&mut self) -> Vec<Command> {
        if self.exit == Exit::Stopping {
            self.exit = Exit::Now;
            return Vec::new();
        }
        self.overlay = None;
        self.stop_and_exit()
    }

    fn stop_and_exit(&mut self) -> Vec<Command> {
        if self.mode == Mode::Live && self.run.is_active() && self.run.started {
            self.exit = Exit::Stopping;
            self.notice = Some("stopping: writing a checkpoint… (q again leaves at once)".into());
            vec![Command::Stop]
        } else {
            self.exit = Exit::Now;
            Vec::new()
        }
    }

    /// The engine's event stream ended (the session task finished).
    pub fn events_closed(&mut self) {
        if self.exit == Exit::Stopping {
            self.exit = Exit::Now;
        }
        if self
            .run
            .state
            .is_some_and(|s| !matches!(s, RunState::Finished | RunState::Failed))
        {
            self.notice = Some("the run ended".into());
        }
    }
}
