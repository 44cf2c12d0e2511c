//! Drawing: a pure function of [`App`]. No I/O and no mutation here; scroll positions are
//! clamped while drawing, never written back.

pub mod candidates;
pub mod hidden;
pub mod layers;
pub mod layout;
pub mod metrics;
pub mod overlays;
pub mod status;
pub mod text;

use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;
use ratatui::Frame;

use super::app::{App, Pane};

/// Draw the whole workbench.
pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let screen = layout::screen(area);
    if let Some((bar, tabs)) = &screen.tabs {
        status::tabs(app, frame, *bar, tabs);
    }
    for pane in Pane::ALL {
        if let Some(rect) = screen.pane_rect(pane, app.focus) {
            draw_pane(app, frame, pane, rect);
        }
    }
    status::status_line(app, frame, screen.status);
    status::hints_line(app, frame, screen.hints);
    overlays::draw(app, frame, area);
}

/// Draw one pane into `area` (also used by snapshot tests of single panes).
pub fn draw_pane(app: &App, frame: &mut Frame, pane: Pane, area: Rect) {
    match pane {
        Pane::Layers => layers::draw(app, frame, area),
        Pane::Hidden => hidden::draw(app, frame, area),
        Pane::Candidates => candidates::draw(app, frame, area),
        Pane::Metrics => metrics::draw(app, frame, area),
    }
}

/// The row of `pane` (drawn in `area`) at `at`: the same pure layout the pane draws with, so the
/// mouse needs no record of the last frame beyond its size.
pub fn hit(app: &App, pane: Pane, area: Rect, at: Position) -> Option<layout::Hit> {
    match pane {
        Pane::Layers => layers::hit(app, area, at).map(layout::Hit::Layer),
        Pane::Hidden => hidden::hit(app, area, at),
        Pane::Candidates => candidates::hit(app, area, at).map(layout::Hit::Candidate),
        Pane::Metrics => None,
    }
}

/// The bordered block of a pane: highlighted when focused, with a right-aligned `info`.
pub fn pane_block<'a>(app: &App, pane: Pane, info: String) -> Block<'a> {
    let focused = app.focus == pane;
    let t = &app.theme;
    let border = if focused { t.border_focused } else { t.border };
    let mut title = vec![Span::styled(format!(" {} ", pane.title()), t.title)];
    if focused {
        title.insert(0, Span::styled("▌", t.border_focused));
    }
    let mut block = Block::bordered()
        .border_style(border)
        .title(Line::from(title));
    if !info.is_empty() {
        block = block.title(Line::from(Span::styled(format!(" {info} "), t.muted)).right_aligned());
    }
    block
}

/// A one-line message in the muted style, for empty states.
pub fn muted_line<'a>(app: &App, s: impl Into<String>) -> Line<'a> {
    Line::from(Span::styled(s.into(), app.theme.muted))
}

/// Keep `selected` visible in a window of `height` rows: the first row to show.
pub fn window_start(selected: usize, height: usize, total: usize) -> usize {
    if height == 0 || total <= height {
        return 0;
    }
    let half = height / 2;
    selected.saturating_sub(half).min(total - height)
}

/// Patch `style` onto every span of a line (selection highlight).
pub fn highlight(line: Line<'static>, style: Style) -> Line<'static> {
    let spans: Vec<Span<'static>> = line
        .spans
        .into_iter()
        .map(|s| Span::styled(s.content, s.style.patch(style)))
        .collect();
    Line::from(spans)
}
