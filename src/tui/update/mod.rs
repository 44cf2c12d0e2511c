//! Keys and mouse → state changes and [`Command`]s. Each overlay owns its keys (`editor`,
//! `picker`, `filter`, `confirm`, `notes`, `lineage`); everything else goes through the keymap to an [`Action`]:
//! navigation (`navigate`), steering (`steer`, gated by [`available_actions`]), the mouse
//! (`mouse`).
//!
//! [`available_actions`]: super::available::available_actions

mod confirm;
mod demos;
mod editor;
mod filter;
mod lineage;
mod mouse;
mod navigate;
mod notes;
mod outside;
mod picker;
mod steer;

use crossterm::event::{KeyEvent, KeyEventKind};

use crate::dln::events::Command;

use super::action::Action;
use super::app::{App, Overlay, Pane};
use super::available::{refusal, STEERING};

impl App {
    /// Handle one key press; returns the commands to send to the engine.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        match self.overlay {
            Some(Overlay::Editor(target)) => return editor::key(self, target, key),
            Some(Overlay::FilterInput) => {
                filter::key(self, key);
                return Vec::new();
            }
            Some(Overlay::ConfirmQuit) => return confirm::key(self, key),
            Some(Overlay::ConfirmBranch { at }) => return confirm::branch_key(self, at, key),
            Some(Overlay::TemplatePicker { layer, selected }) => {
                picker::key(self, layer, selected, key);
                return Vec::new();
            }
            Some(Overlay::Notes { layer, selected }) => {
                return notes::key(self, layer, selected, key)
            }
            Some(Overlay::Lineage { layer }) => return lineage::key(self, layer, key),
            Some(Overlay::Help) | None => {}
        }
        match self.keymap.action(&key) {
            Some(action) => self.handle_action(action),
            None => Vec::new(),
        }
    }

    /// Handle one action; returns the commands to send.
    pub fn handle_action(&mut self, action: Action) -> Vec<Command> {
        self.notice = None;
        if self.overlay == Some(Overlay::Help) {
            return self.help_action(action);
        }
        let page = usize::from(self.viewport.1.saturating_sub(8)).max(1);
        match action {
            Action::Quit => return self.quit(),
            Action::Interrupt => return self.interrupt(),
            Action::Help => {
                self.overlay = Some(Overlay::Help);
                self.sel.help_scroll = 0;
            }
            Action::FocusNext => self.focus_next(true),
            Action::FocusPrev => self.focus_next(false),
            Action::FocusLayers => self.focus = Pane::Layers,
            Action::FocusHidden => self.focus = Pane::Hidden,
            Action::FocusCandidates => self.focus = Pane::Candidates,
            Action::FocusMetrics => self.focus = Pane::Metrics,
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp if self.focus == Pane::Layers => self.scroll_layer(-(page as isize)),
            Action::PageUp if self.focus == Pane::Hidden && self.sel.hidden_expanded => {
                self.scroll_hidden(-(page as isize))
            }
            Action::PageDown if self.focus == Pane::Hidden && self.sel.hidden_expanded => {
                self.scroll_hidden(page as isize)
            }
            Action::PageDown if self.focus == Pane::Layers => self.scroll_layer(page as isize),
            Action::PageUp => self.move_by(-(page as isize)),
            Action::PageDown => self.move_by(page as isize),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::PrevLayer => self.sideways(-1),
            Action::NextLayer => self.sideways(1),
            Action::Expand => match self.focus {
                Pane::Candidates => self.sel.candidate_expanded = !self.sel.candidate_expanded,
                Pane::Hidden => {
                    self.sel.hidden_expanded = !self.sel.hidden_expanded;
                    self.sel.hidden_scroll = 0;
                }
                Pane::Layers => self.sel.show_diff = !self.sel.show_diff,
                Pane::Metrics => {}
            },
            Action::Filter => match self.focus {
                Pane::Hidden | Pane::Candidates => self.overlay = Some(Overlay::FilterInput),
                _ => self.notice = Some("/ filters the hidden-state and candidate lists".into()),
            },
            Action::Cancel if !self.filter(self.focus).is_empty() => {
                self.filters.remove(self.focus.title());
                self.notice = Some("filter cleared".into());
            }
            Action::ToggleDiff => {
                self.sel.show_diff = !self.sel.show_diff;
                self.focus = Pane::Layers;
            }
            Action::Sort => {
                self.sel.hidden_sort = self.sel.hidden_sort.next();
                self.sel.example = 0;
                self.notice = Some(format!(
                    "examples sorted by {}",
                    self.sel.hidden_sort.label()
                ));
            }
            Action::WrongOnly => {
                self.sel.wrong_only = !self.sel.wrong_only;
                self.sel.example = 0;
                self.notice = Some(
                    if self.sel.wrong_only {
                        "wrong examples only"
                    } else {
                        "all examples"
                    }
                    .into(),
                );
            }
            Action::ScrubBack | Action::ScrubForward => self.scrub(action == Action::ScrubForward),
            Action::Demos => self.toggle_demos(),
            Action::Notes => self.open_notes(),
            Action::Copy => self.copy_selected(),
            Action::Zoom => {
                self.zoomed = !self.zoomed;
                self.notice = Some(
                    if self.zoomed {
                        "zoomed: z shows every pane again"
                    } else {
                        "every pane"
                    }
                    .into(),
                );
            }
            Action::Lineage => self.open_lineage(),
            Action::SearchNext => self.search_step(1),
            Action::SearchPrev => self.search_step(-1),
            Action::Branch => self.ask_branch(),
            _ if STEERING.contains(&action) => match refusal(self, action) {
                Some(why) => self.notice = Some(why.into()),
                None => return self.steer(action),
            },
            _ => {}
        }
        Vec::new()
    }

    /// The help overlay: scrolls, closes, and lets Ctrl-C through.
    fn help_action(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Help | Action::Cancel | Action::Quit => self.overlay = None,
            Action::Down | Action::PageDown => {
                self.sel.help_scroll += if action == Action::Down { 1 } else { 10 }
            }
            Action::Up | Action::PageUp => {
                self.sel.help_scroll = self
                    .sel
                    .help_scroll
                    .saturating_sub(if action == Action::Up { 1 } else { 10 })
            }
            Action::Interrupt => return self.interrupt(),
            _ => {}
        }
        Vec::new()
    }
}
