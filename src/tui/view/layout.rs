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

/// Lay out the screen as the person asked: every pane, or (`zoomed`) the focused one alone over
/// the whole body, with no tab bar.
pub fn screen_for(area: Rect, zoomed: bool) -> Screen {
    if !zoomed {
        return screen(area);
    }
    let [body, status, hints] = Layout::vertical([
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
        hints,
    }
}

/// Lay out the screen.
pub fn screen(area: Rect) -> Screen {
    let grid = area.width >= GRID_MIN.0 && area.height >= GRID_MIN.1;
    if grid {
        let [body, status, hints] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(body);
        let [layers, candidates] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(left);
        let [hidden, metrics] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(right);
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
            hints,
        }
    } else {
        let [tabs, body, status, hints] = Layout::vertical([
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
            hints,
        }
    }
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
    let w = (area.width * percent_x / 100).max(min.0).min(area.width);
    let h = (area.height * percent_y / 100).max(min.1).min(area.height);
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
        let s = screen(Rect::new(0, 0, 80, 24));
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
        let g = screen(Rect::new(0, 0, 160, 48));
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
}
