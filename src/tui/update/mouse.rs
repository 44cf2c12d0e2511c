//! The mouse: clicks focus and select (a click on the selection expands it), the wheel scrolls.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::view;
use crate::tui::view::layout::{self, Hit, Screen};

impl App {
    /// Mouse: a click focuses the pane (or tab) under it and selects the row it lands on; a
    /// click on the already selected row of the focused pane (so also a double-click) acts like
    /// Enter. The wheel scrolls the focused pane.
    pub fn handle_mouse(&mut self, ev: MouseEvent) {
        let area = Rect::new(0, 0, self.viewport.0, self.viewport.1);
        let screen: Screen = view::screen(self, area);
        match ev.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if self.overlay.is_some() {
                    return;
                }
                let at = Position::new(ev.column, ev.row);
                let Some(pane) = layout::pane_at(&screen, self.focus, at) else {
                    return;
                };
                let was_focused = self.focus == pane;
                self.focus = pane;
                let hit = screen
                    .pane_rect(pane, pane)
                    .and_then(|rect| view::hit(self, pane, rect, at));
                if let Some(hit) = hit {
                    self.click(hit, was_focused);
                }
            }
            MouseEventKind::ScrollDown => self.move_by(1),
            MouseEventKind::ScrollUp => self.move_by(-1),
            _ => {}
        }
    }

    /// Select what a click hit, or expand it when it already was the selection.
    fn click(&mut self, hit: Hit, was_focused: bool) {
        let again = |current: usize, n: usize, row: usize| {
            was_focused && current.min(n.saturating_sub(1)) == row
        };
        match hit {
            Hit::Layer(layer) => {
                if was_focused && self.sel.layer == layer {
                    self.handle_action(Action::Expand);
                } else {
                    self.select_layer(layer);
                }
            }
            Hit::Candidate(row) => {
                if again(self.sel.candidate, self.candidate_rows().len(), row) {
                    self.handle_action(Action::Expand);
                } else {
                    self.sel.candidate = row;
                }
            }
            Hit::Example(row) => {
                if again(self.sel.example, self.hidden_rows().len(), row) {
                    self.handle_action(Action::Expand);
                } else {
                    self.sel.example = row;
                    self.sel.sample = 0;
                }
            }
            Hit::Sample(i) => {
                if was_focused && self.sel.sample == i {
                    self.handle_action(Action::Expand);
                } else {
                    self.sel.sample = i;
                }
            }
        }
    }
}
