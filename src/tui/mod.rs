//! The workbench: a live terminal client of a DLN run. It only subscribes to [`Event`]s and sends
//! [`Command`]s (see `dln::events`); its state is a reducer over those events ([`App::apply`]),
//! which `dln replay` also uses, and drawing is a pure function of that state ([`view::draw`]).
//!
//! [`Event`]: crate::dln::events::Event
//! [`Command`]: crate::dln::events::Command

pub mod action;
pub mod app;
pub mod available;
pub mod bench;
pub mod editor;
pub mod keymap;
pub mod logging;
pub mod model;
pub mod run_loop;
pub mod settings;
pub mod terminal;
pub mod theme;
mod update;
pub mod view;

pub use action::Action;
pub use app::{App, Exit, Mode, Overlay, Pane, TerminalEffect};
pub use keymap::KeyMap;
pub use model::RunView;
pub use theme::Theme;
