//! The bench screen's state and its reducer: keys become [`Action`]s through the workbench's
//! keymap (so a person's `[keys]` apply here too), actions and what the loop reports become
//! [`Msg`]s, and [`BenchView::update`] returns what the loop must do ([`Effect`]). No I/O.

use std::path::PathBuf;

use crossterm::event::{KeyEvent, KeyEventKind};

use super::table::{self, Metric};
use crate::bench::accuracy::read::ReadReport;
use crate::bench::accuracy::{BenchReport, CellRow, Method};
use crate::tui::{Action, KeyMap, Theme};

/// Lines the detail panel moves on PgUp/PgDn.
const DETAIL_PAGE: u16 = 5;

/// The one message type of the screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// A person's request (from a key through the keymap).
    Action(Action),
    /// The selected run could not be opened (its directory is gone or unreadable).
    RunUnavailable(String),
    /// The replay opened from the table was closed: the table is shown again.
    ReplayClosed,
}

/// What the loop does for the reducer.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Open this run directory in the replay view; `what` names the cell and seed.
    OpenRun { dir: PathBuf, what: String },
}

/// Everything the screen shows and where the person is.
#[derive(Debug, Clone)]
pub struct BenchView {
    /// The benchmarks given (one per output directory, e.g. one per model), in order; cells'
    /// `run_dir`s are relative to their `out`.
    pub tables: Vec<ReadReport>,
    /// The one shown.
    pub shown: usize,
    pub theme: Theme,
    pub keymap: KeyMap,
    /// The selected task (row) and method (column).
    pub row: usize,
    pub col: usize,
    /// The selected seed, an index into `report.seeds` (the same seed across cells).
    pub seed: usize,
    pub metric: Metric,
    pub help: bool,
    /// First line of the detail panel shown.
    pub detail_scroll: u16,
    /// A one-line message for the status line (an error a person caused, what just happened).
    pub notice: Option<String>,
    pub quit: bool,
}

impl BenchView {
    pub fn new(read: ReadReport, theme: Theme, keymap: KeyMap) -> BenchView {
        BenchView::of_tables(vec![read], theme, keymap)
    }

    /// Several benchmarks' tables (at least one), the first shown; Tab and Shift-Tab go from
    /// one to the next.
    pub fn of_tables(tables: Vec<ReadReport>, theme: Theme, keymap: KeyMap) -> BenchView {
        BenchView {
            tables,
            shown: 0,
            theme,
            keymap,
            row: 0,
            col: 0,
            seed: 0,
            metric: Metric::Test,
            help: false,
            detail_scroll: 0,
            notice: None,
            quit: false,
        }
    }

    /// The report of the table shown.
    pub fn report(&self) -> &BenchReport {
        &self.tables[self.shown].report
    }

    /// The output directory of the table shown.
    pub fn out(&self) -> &std::path::Path {
        &self.tables[self.shown].out
    }

    /// Shows table `to` (wrapping), at the same task, method and seed where it has them (so one
    /// cell can be compared across models) and within its bounds otherwise.
    fn show_table(&mut self, to: usize) {
        let (task, method, seed) = (
            self.task().map(str::to_string),
            self.method(),
            self.seed_number(),
        );
        self.shown = to % self.tables.len().max(1);
        let r = &self.tables[self.shown].report;
        let find = |n: usize, i: Option<usize>, at: usize| i.unwrap_or(at.min(n.saturating_sub(1)));
        self.row = find(
            r.tasks.len(),
            task.and_then(|t| r.tasks.iter().position(|x| *x == t)),
            self.row,
        );
        self.col = find(
            r.methods.len(),
            method.and_then(|m| r.methods.iter().position(|x| *x == m)),
            self.col,
        );
        self.seed = find(
            r.seeds.len(),
            seed.and_then(|s| r.seeds.iter().position(|x| *x == s)),
            self.seed,
        );
        self.detail_scroll = 0;
    }

    pub fn task(&self) -> Option<&str> {
        self.report().tasks.get(self.row).map(String::as_str)
    }

    pub fn method(&self) -> Option<Method> {
        self.report().methods.get(self.col).copied()
    }

    pub fn seed_number(&self) -> Option<u64> {
        self.report().seeds.get(self.seed).copied()
    }

    /// The selected cell's runs, in seed order.
    pub fn runs(&self) -> Vec<&CellRow> {
        match (self.task(), self.method()) {
            (Some(t), Some(m)) => table::runs(self.report(), t, m),
            _ => Vec::new(),
        }
    }

    /// The selected seed's run of the selected cell, if it ran.
    pub fn selected_run(&self) -> Option<&CellRow> {
        let seed = self.seed_number()?;
        self.runs().into_iter().find(|c| c.seed == seed)
    }

    /// `hyperbaton · dln-1 · seed 2`.
    pub fn selection_label(&self) -> String {
        let mut s = match (self.task(), self.method()) {
            (Some(t), Some(m)) => format!("{t} · {}", table::heading(self.report(), m)),
            _ => "no cell".to_string(),
        };
        if let Some(seed) = self.seed_number() {
            s.push_str(&format!(" · seed {seed}"));
        }
        s
    }

    /// A key: the keymap's action, if any, reduced.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Effect> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let action = self.keymap.action(&key)?;
        self.update(Msg::Action(action))
    }

    /// The reducer.
    pub fn update(&mut self, msg: Msg) -> Option<Effect> {
        match msg {
            Msg::Action(a) => self.act(a),
            Msg::RunUnavailable(message) => {
                self.notice = Some(message);
                None
            }
            Msg::ReplayClosed => {
                self.notice = None;
                None
            }
        }
    }

    fn act(&mut self, action: Action) -> Option<Effect> {
        self.notice = None;
        if self.help {
            // The help overlay owns the keys; most close it.
            if matches!(action, Action::Help | Action::Cancel | Action::Quit) {
                self.help = false;
            } else if action == Action::Interrupt {
                self.quit = true;
            }
            return None;
        }
        let rows = self.report().tasks.len();
        let cols = self.report().methods.len();
        let seeds = self.report().seeds.len();
        let moved = |this: &mut BenchView, row: usize, col: usize| {
            if (row, col) != (this.row, this.col) {
                this.row = row;
                this.col = col;
                this.detail_scroll = 0;
            }
        };
        match action {
            Action::Quit | Action::Interrupt => self.quit = true,
            Action::Help => self.help = true,
            Action::Cancel => {}
            Action::Up => moved(self, self.row.saturating_sub(1), self.col),
            Action::Down => moved(self, (self.row + 1).min(rows.saturating_sub(1)), self.col),
            Action::Top => moved(self, 0, self.col),
            Action::Bottom => moved(self, rows.saturating_sub(1), self.col),
            Action::PrevLayer => moved(self, self.row, self.col.saturating_sub(1)),
            Action::NextLayer => moved(self, self.row, (self.col + 1).min(cols.saturating_sub(1))),
            Action::ScrubBack => self.seed = self.seed.saturating_sub(1),
            Action::ScrubForward => self.seed = (self.seed + 1).min(seeds.saturating_sub(1)),
            Action::FocusNext if self.tables.len() > 1 => self.show_table(self.shown + 1),
            Action::FocusPrev if self.tables.len() > 1 => {
                self.show_table(self.shown + self.tables.len() - 1)
            }
            Action::ToggleDiff => self.metric = self.metric.other(),
            Action::PageDown => self.detail_scroll = self.detail_scroll.saturating_add(DETAIL_PAGE),
            Action::PageUp => self.detail_scroll = self.detail_scroll.saturating_sub(DETAIL_PAGE),
            Action::Expand => return self.open(),
            _ => {}
        }
        None
    }

    /// Enter: the selected seed's run, or why there is none.
    fn open(&mut self) -> Option<Effect> {
        let what = self.selection_label();
        match self.selected_run() {
            Some(run) => Some(Effect::OpenRun {
                dir: self.out().join(&run.run_dir),
                what,
            }),
            None => {
                self.notice = Some(format!("{what} did not run; [ ] picks another seed"));
                None
            }
        }
    }
}
