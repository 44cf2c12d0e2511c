//! Drawing: a pure function of [`App`]. No I/O and no mutation here; scroll positions are
//! clamped while drawing, never written back.
//!
//! Each pane draws from its own narrow input (`layers::Input`, `hidden::Input`, …: the data it
//! shows and the selection within it, plus a [`Chrome`]); this module is the one place that
//! builds those inputs from the [`App`]. A new pane: a module with an `Input`, a `draw` (and a
//! `hit` if it is clickable), a [`Pane`] variant, and its line in `draw_pane`/`hit` here.

pub mod candidates;
pub mod hidden;
pub mod layers;
pub mod layout;
pub mod lineage;
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
use super::theme::Theme;

/// Draw the whole workbench.
pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let screen = screen(app, area);
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

/// The screen's layout for `app` in `area`: what drawing, mouse hits and scrolling share.
pub fn screen(app: &App, area: Rect) -> layout::Screen {
    layout::screen_for(area, app.zoomed, &hints(app))
}

/// What the panes' contents need, for the grid to give space where the text is.
pub fn hints(app: &App) -> layout::Hints<'_> {
    let metrics = metrics_input(app);
    let layers = layers_input(app);
    layout::Hints {
        metrics_rows: metrics::content_height(&metrics).saturating_add(2),
        metrics_cols: metrics::content_width(&metrics).saturating_add(2),
        candidates_rows: candidates::wanted_rows(&candidates_input(app)),
        layers_fixed_rows: layers::fixed_rows(&layers),
        layers_cols: layers::header_width(&layers).saturating_add(2),
        layer_prompts: app.run.layers.iter().map(|l| l.prompt.as_str()).collect(),
    }
}

/// What every pane draws with besides its data: the colours and whether it has the focus.
#[derive(Clone, Copy)]
pub struct Chrome<'a> {
    pub theme: &'a Theme,
    pub focused: bool,
}

impl<'a> Chrome<'a> {
    fn of(app: &'a App, pane: Pane) -> Chrome<'a> {
        Chrome {
            theme: &app.theme,
            focused: app.focus == pane,
        }
    }
}

fn layers_input(app: &App) -> layers::Input<'_> {
    layers::Input {
        chrome: Chrome::of(app, Pane::Layers),
        layers: &app.run.layers,
        last_intervention: app.run.interventions.last(),
        backends: &app.run.backends,
        selected: app.sel.layer,
        scroll: app.sel.layer_scroll,
        show_diff: app.sel.show_diff,
        demos_expanded: app.sel.demos_expanded,
        demo: app.sel.demo,
    }
}

fn hidden_input(app: &App) -> hidden::Input<'_> {
    hidden::Input {
        chrome: Chrome::of(app, Pane::Hidden),
        posterior: app.hidden_layer().and_then(|l| app.run.posteriors.get(&l)),
        several_posteriors: app.run.posteriors.len() > 1,
        forward: app.run.forward.as_ref(),
        depth: app.run.depth(),
        rows: app.hidden_rows(),
        sort: app.sel.hidden_sort,
        wrong_only: app.sel.wrong_only,
        filter: app.filter(Pane::Hidden),
        example: app.sel.example,
        sample: app.sel.sample,
        expanded: app.sel.hidden_expanded,
        detail_scroll: app.sel.hidden_scroll,
    }
}

fn candidates_input(app: &App) -> candidates::Input<'_> {
    candidates::Input {
        chrome: Chrome::of(app, Pane::Candidates),
        layer: app.run.layers.get(app.sel.layer),
        depth: app.run.depth(),
        rows: app.candidate_rows(),
        filter: app.filter(Pane::Candidates),
        selected: app.sel.candidate,
        expanded: app.sel.candidate_expanded,
        now: stage_now(app),
    }
}

/// What a live run is doing now, as the status line says it (`sharpening L2 3/9`).
pub fn stage_now(app: &App) -> Option<String> {
    if app.mode != super::app::Mode::Live || !app.run.is_active() {
        return None;
    }
    app.run.stage.as_ref().map(|s| {
        let layer = s.layer.map(|l| format!(" L{}", l + 1)).unwrap_or_default();
        let of = if s.total > 0 {
            format!(" {}/{}", s.done, s.total)
        } else {
            String::new()
        };
        format!("{}{layer}{of}", metrics::stage_name(s.stage))
    })
}

fn metrics_input(app: &App) -> metrics::Input<'_> {
    metrics::Input {
        chrome: Chrome::of(app, Pane::Metrics),
        run: &app.run,
        scroll: app.sel.metrics_scroll,
        replay: app
            .replay_position()
            .zip(app.recorded_end())
            .map(|((pos, n, _), end)| (pos + 1, n, end)),
    }
}

/// Draw one pane into `area` (also used by snapshot tests of single panes).
pub fn draw_pane(app: &App, frame: &mut Frame, pane: Pane, area: Rect) {
    match pane {
        Pane::Layers => layers::draw(&layers_input(app), frame, area),
        Pane::Hidden => hidden::draw(&hidden_input(app), frame, area),
        Pane::Candidates => candidates::draw(&candidates_input(app), frame, area),
        Pane::Metrics => metrics::draw(&metrics_input(app), frame, area),
    }
}

/// The row of `pane` (drawn in `area`) at `at`: the same pure layout the pane draws with, so the
/// mouse needs no record of the last frame beyond its size.
pub fn hit(app: &App, pane: Pane, area: Rect, at: Position) -> Option<layout::Hit> {
    match pane {
        Pane::Layers => layers::hit(&layers_input(app), area, at).map(layout::Hit::Layer),
        Pane::Hidden => hidden::hit(&hidden_input(app), area, at),
        Pane::Candidates => {
            candidates::hit(&candidates_input(app), area, at).map(layout::Hit::Candidate)
        }
        Pane::Metrics => None,
    }
}

/// How far the Metrics pane drawn in `area` can scroll.
pub fn metrics_max_scroll(app: &App, area: Rect) -> usize {
    metrics::max_scroll(&metrics_input(app), area)
}

/// How far PgDn scrolls the expanded example of the Hidden pane drawn in `area`.
pub fn hidden_max_scroll(app: &App, area: Rect) -> usize {
    hidden::max_detail_scroll(&hidden_input(app), area)
}

/// The bordered block of a pane: highlighted when focused, with a right-aligned `info`.
pub fn pane_block<'a>(chrome: Chrome<'_>, pane: Pane, info: String) -> Block<'a> {
    let focused = chrome.focused;
    let t = chrome.theme;
    let border = if focused { t.border_focused } else { t.border };
    // The number key that shows the pane (1–4), as on the tabs.
    let number = Pane::ALL.iter().position(|p| *p == pane).unwrap_or(0) + 1;
    let mut title = vec![
        Span::styled(format!(" {number}"), t.key),
        Span::styled(format!(" {} ", pane.title()), t.title),
    ];
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
pub fn muted_line<'a>(theme: &Theme, s: impl Into<String>) -> Line<'a> {
    Line::from(Span::styled(s.into(), theme.muted))
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
