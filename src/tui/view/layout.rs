//! Where each part of the screen goes. One pure function used by drawing and by mouse hits, so a
//! click lands on what was drawn there.

use ratatui::layout::{Constraint, Layout, Position, Rect};

use crate::tui::app::Pane;

/// Below this size the panes are shown one at a time behind a tab bar.
pub const GRID_MIN: (u16, u16) = (120, 32);

/// The screen's regions for a terminal area.
#[derive(Debug, Clone, PartialEq)]
pub struct Screen {
    /// Tab bar (one-pane mode only) and each tab's title rect.
    pub tabs: Option<(Rect, Vec<(Pane, Rect)>)>,
    /// Each visible pane's rect; in one-pane mode the single rect is the focused pane's.
    pub panes: Vec<(Pane, Rect)>,
    pub grid: bool,
    /// Run state line and key-hint line.
    pub status: Rect,
    pub hints: Rect,
}

impl Screen {
    /// The rect of `pane`, given the focused one (one-pane mode shows only that).
    pub fn pane_rect(&self, pane: Pane, focus: Pane) -> Option<Rect> {
        if self.grid {
            self.panes.iter().find(|(p, _)| *p == pane).map(|(_, r)| *r)
        } else if pane == focus {
            self.panes.first().map(|(_, r)| *r)
        } else {
            None
        }
    }
}

/// What the panes' contents need, so the grid gives space where the text is rather than a
/// fixed share to each pane. Built from the state by `view::hints`; the default (nothing known)
/// gives the narrow panes their smallest share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hints<'a> {
    /// Rows the Metrics pane shows without scrolling, borders included.
    pub metrics_rows: u16,
    /// Columns the Metrics pane's widest text line takes, borders included.
    pub metrics_cols: u16,
    /// Rows the Candidates pane would like (heading, list, past winners), borders included.
    pub candidates_rows: u16,
    /// The Layers pane's rows that do not wrap (headers, blank lines, demonstrations, …).
    pub layers_fixed_rows: u16,
    /// Columns the Layers pane's widest line that does not wrap takes, borders included.
    pub layers_cols: u16,
    /// Each layer's prompt, which wraps to the pane's width.
    pub layer_prompts: Vec<&'a str>,
}

impl Hints<'_> {
    /// Rows the Layers pane needs at `width` columns (borders included).
    fn layers_rows(&self, width: u16) -> usize {
        // The prompt is indented by two columns inside the borders.
        let text_w = usize::from(width.saturating_sub(4)).max(1);
        let prompts: usize = self
            .layer_prompts
            .iter()
            .map(|p| super::text::wrap(p, text_w).len())
            .sum();
        usize::from(self.layers_fixed_rows) + prompts + 2
    }
}

/// The share of the width the narrow panes (Layers, Metrics) take at least and at most, in
/// percent.
const NARROW_PERCENT: (u16, u16) = (30, 45);
/// Rows the top row (Layers, Hidden) keeps at least, and the Candidates/Metrics row.
const TOP_MIN_ROWS: u16 = 12;
const BOTTOM_MIN_ROWS: u16 = 8;

/// Lay out the screen as the person asked: every pane, or (`zoomed`) the focused one alone over
/// the whole body, with no tab bar.
pub fn screen_for(area: Rect, zoomed: bool, hints: &Hints) -> Screen {
    if !zoomed {
        return screen(area, hints);
    }
    let [body, status, hints_r] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Screen {
        tabs: None,
        panes: vec![(Pane::Layers, body)],
        grid: false,
        status,
        hints: hints_r,
    }
}

/// Lay out the screen. On a large terminal, a grid of two rows: Layers beside Hidden above,
/// Candidates beside Metrics below. The wide panes (Hidden, Candidates) hold the long texts;
/// the narrow ones (Layers, Metrics) get the width their content asks for, between 30% and 45%
/// of the screen. The lower row is as tall as Metrics needs to show every row (or the candidate
/// list, when that is taller), leaving the upper row at least 40%.
pub fn screen(area: Rect, hints: &Hints) -> Screen {
    let grid = area.width >= GRID_MIN.0 && area.height >= GRID_MIN.1;
    if grid {
        let [body, status, hints_r] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let (top_r, bottom_r) = rows(body, hints);
        let lo = percent(body.width, NARROW_PERCENT.0);
        let hi = percent(body.width, NARROW_PERCENT.1);
        // Layers: the narrowest width at which its headers are whole and every prompt fits the
        // row's height.
        let layers_w = (hints.layers_cols.clamp(lo, hi)..=hi)
            .find(|w| hints.layers_rows(*w) <= usize::from(top_r.height))
            .unwrap_or(hi);
        let metrics_w = hints.metrics_cols.clamp(lo, hi);
        let [layers, hidden] =
            Layout::horizontal([Constraint::Length(layers_w), Constraint::Min(0)]).areas(top_r);
        let [candidates, metrics] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(metrics_w)]).areas(bottom_r);
        Screen {
            tabs: None,
            panes: vec![
                (Pane::Layers, layers),
                (Pane::Hidden, hidden),
                (Pane::Candidates, candidates),
                (Pane::Metrics, metrics),
            ],
            grid,
            status,
            hints: hints_r,
        }
    } else {
        let [tabs, body, status, hints_r] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let mut x = tabs.x;
        let mut tab_rects = Vec::new();
        for pane in Pane::ALL {
            // " N Title " with a separator after it.
            let w = (pane.title().chars().count() + 4) as u16;
            let r = Rect::new(x, tabs.y, w.min(tabs.right().saturating_sub(x)), 1);
            tab_rects.push((pane, r));
            x = x.saturating_add(w + 1).min(tabs.right());
        }
        Screen {
            tabs: Some((tabs, tab_rects)),
            panes: vec![(Pane::Layers, body)],
            grid,
            status,
            hints: hints_r,
        }
    }
}

/// `p`% of `v`, rounded down (no overflow on any terminal size).
fn percent(v: u16, p: u16) -> u16 {
    u16::try_from(u32::from(v) * u32::from(p) / 100).unwrap_or(u16::MAX)
}

/// The grid's two rows: the lower one as tall as Metrics needs (or the candidate list, up to
/// half the body), within what leaves the upper row its minimum.
fn rows(body: Rect, hints: &Hints) -> (Rect, Rect) {
    let top_min = TOP_MIN_ROWS.max(percent(body.height, 40));
    let bottom_max = body.height.saturating_sub(top_min);
    let bottom_min = BOTTOM_MIN_ROWS.min(bottom_max);
    let want = hints
        .metrics_rows
        .max(hints.candidates_rows.min(body.height / 2));
    let bottom = want.clamp(bottom_min, bottom_max);
    let [top, bottom] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(bottom)]).areas(body);
    (top, bottom)
}

/// The pane a click at `at` selects: a tab, or the pane drawn there (in one-pane mode, the
/// focused one).
pub fn pane_at(screen: &Screen, focus: Pane, at: Position) -> Option<Pane> {
    if let Some((_, tabs)) = &screen.tabs {
        if let Some((p, _)) = tabs.iter().find(|(_, r)| r.contains(at)) {
            return Some(*p);
        }
        return screen
            .pane_rect(focus, focus)
            .filter(|r| r.contains(at))
            .map(|_| focus);
    }
    screen
        .panes
        .iter()
        .find(|(_, r)| r.contains(at))
        .map(|(p, _)| *p)
}

/// The row a click lands on inside a pane, in the terms the selection uses. Each pane computes
/// it with the same pure layout function its drawing uses, so a click hits what was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// A layer's header or prompt in the Layers pane.
    Layer(usize),
    /// A row among the visible (filtered) candidates.
    Candidate(usize),
    /// A row among the visible (sorted, filtered) hidden-state examples.
    Example(usize),
    /// A posterior sample of the selected example.
    Sample(usize),
}

/// The area of a large overlay (help, editor): centred on big screens; on small ones everything
/// but the status and hint lines, so no cell is wasted.
pub fn overlay_area(area: Rect, percent_x: u16, percent_y: u16) -> Rect {
    if area.width < GRID_MIN.0 || area.height < GRID_MIN.1 {
        Rect::new(
            area.x,
            area.y,
            area.width,
            area.height.saturating_sub(2).max(area.height.min(3)),
        )
    } else {
        centered(area, percent_x, percent_y, (60, 14))
    }
}

/// A rect just large enough for `content` (columns × rows, borders excluded), centred and
/// bounded by `area`.
pub fn fitted(area: Rect, content: (usize, usize)) -> Rect {
    let w = u16::try_from(content.0 + 2)
        .unwrap_or(u16::MAX)
        .min(area.width);
    let h = u16::try_from(content.1 + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// A rect of `percent_x` × `percent_y` of `area`, centred, at least `min` cells.
pub fn centered(area: Rect, percent_x: u16, percent_y: u16, min: (u16, u16)) -> Rect {
    let w = percent(area.width, percent_x).max(min.0).min(area.width);
    let h = percent(area.height, percent_y).max(min.1).min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_screens_use_tabs_and_clicks_hit_them() {
        let s = screen(Rect::new(0, 0, 80, 24), &Hints::default());
        assert!(!s.grid);
        assert_eq!(
            s.pane_rect(Pane::Hidden, Pane::Hidden),
            Some(Rect::new(0, 1, 80, 21))
        );
        let (_, tabs) = s.tabs.clone().expect("tabs");
        let candidates = tabs[2].1;
        assert_eq!(
            pane_at(&s, Pane::Layers, Position::new(candidates.x + 1, 0)),
            Some(Pane::Candidates)
        );
        let g = screen(Rect::new(0, 0, 160, 48), &Hints::default());
        assert!(g.grid);
        // One-pane mode: a click in the body lands on the focused pane.
        assert_eq!(
            pane_at(&s, Pane::Hidden, Position::new(10, 10)),
            Some(Pane::Hidden)
        );
        assert_eq!(pane_at(&s, Pane::Hidden, Position::new(10, 23)), None);
        assert_eq!(
            pane_at(&g, Pane::Layers, Position::new(150, 40)),
            Some(Pane::Metrics)
        );
    }

    fn rect(s: &Screen, pane: Pane) -> Rect {
        s.pane_rect(pane, pane).expect("pane shown")
    }

    /// Metrics gets the rows it needs; the text panes get the width the narrow ones leave.
    #[test]
    fn the_grid_gives_metrics_its_rows_and_the_text_panes_the_width() {
        let hints = Hints {
            metrics_rows: 18,
            metrics_cols: 52,
            candidates_rows: 9,
            layers_fixed_rows: 5,
            layers_cols: 40,
            layer_prompts: vec!["Think step by step.", "Answer with the final answer only."],
        };
        let s = screen(Rect::new(0, 0, 120, 40), &hints);
        assert_eq!(rect(&s, Pane::Metrics).height, 18);
        let s = screen(Rect::new(0, 0, 160, 50), &hints);
        let (layers, hidden) = (rect(&s, Pane::Layers), rect(&s, Pane::Hidden));
        let (candidates, metrics) = (rect(&s, Pane::Candidates), rect(&s, Pane::Metrics));
        assert_eq!((layers.width, metrics.width), (48, 52));
        assert_eq!((hidden.width, candidates.width), (112, 108));
        assert_eq!(metrics.height, 18);
        assert_eq!(layers.height + metrics.height, 48);

        // A long prompt widens Layers, up to 45%.
        let long = "word ".repeat(400);
        let hints = Hints {
            layer_prompts: vec![&long],
            ..hints
        };
        let s = screen(Rect::new(0, 0, 160, 50), &hints);
        assert_eq!(rect(&s, Pane::Layers).width, 72);
    }

    /// However large the content's needs, the upper row keeps 40% of the body, and every pane
    /// stays inside the screen.
    #[test]
    fn the_grid_stays_inside_the_screen_whatever_the_hints() {
        let huge = Hints {
            metrics_rows: u16::MAX,
            metrics_cols: u16::MAX,
            candidates_rows: u16::MAX,
            layers_fixed_rows: u16::MAX,
            layers_cols: u16::MAX,
            layer_prompts: vec!["x"],
        };
        for hints in [Hints::default(), huge] {
            for (w, h) in [
                (120, 32),
                (120, 40),
                (160, 50),
                (400, 120),
                (u16::MAX, u16::MAX),
            ] {
                let area = Rect::new(0, 0, w, h);
                let s = screen(area, &hints);
                assert!(s.grid);
                let body = h - 2;
                assert!(rect(&s, Pane::Layers).height >= percent(body, 40).max(12));
                for (_, r) in &s.panes {
                    assert_eq!(r.intersection(area), *r, "{w}×{h}");
                }
            }
        }
    }
}
