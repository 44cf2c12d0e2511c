//! `dln bench view OUT`: the benchmark's table (tasks × methods, mean ± std over seeds) in the
//! workbench, a detail panel for the selected cell, and its runs opened in the replay view.
//!
//! The same split as the run workbench: [`table`] derives what is shown from the report (pure),
//! [`state`] is the screen's state and its reducer over one message type, [`view`] draws it
//! (pure), and [`run_loop`] is the only part that touches the terminal and the disk.

pub mod run_loop;
pub mod state;
pub mod table;
pub mod view;

pub use state::{BenchView, Effect, Msg};
pub use table::Metric;
