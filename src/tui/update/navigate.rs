//! Moving around: rows, layers, samples, replay iterations.

use ratatui::layout::Rect;

use crate::tui::app::{App, Pane};
use crate::tui::view;

impl App {
    pub(super) fn move_by(&mut self, delta: isize) {
        let step = |v: usize| -> usize {
            if delta < 0 {
                v.saturating_sub(delta.unsigned_abs())
            } else {
                v.saturating_add(delta as usize)
            }
        };
        match self.focus {
            Pane::Layers if self.sel.demos_expanded => {
                let n = self
                    .run
                    .layers
                    .get(self.sel.layer)
                    .map_or(0, |l| l.demos.len());
                self.sel.demo = step(self.sel.demo).min(n.saturating_sub(1));
            }
            // j/k move through the list the pane shows, as in every pane: here the layers
            // (PgUp/PgDn scroll a long prompt).
            Pane::Layers => {
                let n = self.run.depth();
                if n > 0 {
                    let next = step(self.sel.layer).min(n - 1);
                    if next != self.sel.layer {
                        self.select_layer(next);
                    }
                }
            }
            Pane::Candidates => {
                let n = self.candidate_rows().len();
                self.sel.candidate = step(self.sel.candidate).min(n.saturating_sub(1));
            }
            Pane::Hidden => {
                let n = self.hidden_rows().len();
                let next = step(self.sel.example).min(n.saturating_sub(1));
                if next != self.sel.example {
                    self.sel.sample = 0;
                    self.sel.hidden_scroll = 0;
                }
                self.sel.example = next;
            }
            Pane::Metrics => {
                let area = Rect::new(0, 0, self.viewport.0, self.viewport.1);
                let max = view::screen(self, area)
                    .pane_rect(Pane::Metrics, Pane::Metrics)
                    .map(|r| view::metrics_max_scroll(self, r))
                    .unwrap_or(0);
                self.sel.metrics_scroll = step(self.sel.metrics_scroll).min(max);
            }
        }
    }

    /// PgUp/PgDn in the Hidden pane while its example is expanded: scroll the example's
    /// detail, no further than its last line.
    pub(super) fn scroll_hidden(&mut self, delta: isize) {
        let area = Rect::new(0, 0, self.viewport.0, self.viewport.1);
        let max = view::screen(self, area)
            .pane_rect(Pane::Hidden, self.focus)
            .map(|r| view::hidden_max_scroll(self, r))
            .unwrap_or(0);
        let next = (self.sel.hidden_scroll as isize + delta).max(0) as usize;
        self.sel.hidden_scroll = next.min(max);
    }

    /// PgUp/PgDn in the Layers pane: scroll the selected layer's prompt.
    pub(super) fn scroll_layer(&mut self, delta: isize) {
        self.sel.layer_scroll = if delta < 0 {
            self.sel.layer_scroll.saturating_sub(delta.unsigned_abs())
        } else {
            self.sel.layer_scroll.saturating_add(delta as usize)
        };
    }

    /// Left/right: the layer in most panes, the sample in the hidden pane.
    pub(super) fn sideways(&mut self, delta: isize) {
        if self.focus == Pane::Hidden {
            let n = self
                .hidden_layer()
                .and_then(|l| self.run.posteriors.get(&l))
                .and_then(|p| {
                    self.hidden_rows()
                        .get(self.sel.example)
                        .and_then(|i| p.examples.get(*i))
                })
                .map(|e| e.samples.len())
                .unwrap_or(0);
            if n == 0 {
                return;
            }
            self.sel.sample =
                (self.sel.sample.min(n - 1) as isize + delta).rem_euclid(n as isize) as usize;
            self.sel.hidden_scroll = 0;
            return;
        }
        let n = self.run.depth();
        if n == 0 {
            return;
        }
        self.select_layer((self.sel.layer as isize + delta).rem_euclid(n as isize) as usize);
    }

    /// Make `layer` the one the Layers and Candidates panes act on, chosen by the person.
    pub(super) fn select_layer(&mut self, layer: usize) {
        self.sel.layer = layer;
        self.sel.layer_chosen = true;
        // The hidden pane follows: it shows the hidden text the selected layer reads.
        if self.run.posteriors.contains_key(&self.sel.layer) {
            self.sel.hidden_layer = Some(self.sel.layer);
        }
        self.sel.layer_scroll = 0;
        self.sel.candidate = 0;
        self.sel.demo = 0;
    }

    /// `n`/`N` after a `/` search: the next (previous) of the rows that match it, wrapping
    /// around, in the Hidden states and Candidates panes.
    pub(super) fn search_step(&mut self, delta: isize) {
        let n = match self.focus {
            Pane::Hidden => self.hidden_rows().len(),
            Pane::Candidates => self.candidate_rows().len(),
            _ => {
                self.notice = Some("/ searches the hidden-state and candidate lists".into());
                return;
            }
        };
        if self.filter(self.focus).is_empty() {
            self.notice = Some("no search: / starts one".into());
            return;
        }
        if n == 0 {
            self.notice = Some(format!("no match for /{}", self.filter(self.focus)));
            return;
        }
        let at = match self.focus {
            Pane::Hidden => &mut self.sel.example,
            _ => &mut self.sel.candidate,
        };
        let next = ((*at).min(n - 1) as isize + delta).rem_euclid(n as isize) as usize;
        *at = next;
        if self.focus == Pane::Hidden {
            self.sel.sample = 0;
        }
        self.notice = Some(format!("match {} of {n}", next + 1));
    }

    pub(super) fn scrub(&mut self, forward: bool) {
        let Some(r) = self.replay.as_mut() else {
            self.notice = Some("[ and ] move through iterations in `dln replay`".into());
            return;
        };
        let last = r.iterations.len().saturating_sub(1);
        r.position = if forward {
            (r.position + 1).min(last)
        } else {
            r.position.saturating_sub(1)
        };
        self.rebuild_replay();
    }
}
