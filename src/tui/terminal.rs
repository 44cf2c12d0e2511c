//! Taking over the terminal and always giving it back: on a normal exit (the guard's `Drop`), on
//! an error, and on a panic (a hook that restores before the panic message prints).

use std::io::{self, stdout};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use ratatui::DefaultTerminal;

/// Owns the terminal while the workbench runs; dropping it restores the terminal.
pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
}

impl TerminalGuard {
    /// Raw mode, the alternate screen, mouse capture, and a panic hook that undoes them.
    pub fn enter() -> io::Result<TerminalGuard> {
        // ratatui installs a hook that restores raw mode and the alternate screen on panic;
        // ours, wrapped around it, also releases the mouse.
        let terminal = ratatui::try_init()?;
        let ratatui_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = execute!(stdout(), DisableMouseCapture);
            ratatui_hook(info);
        }));
        if let Err(e) = execute!(stdout(), EnableMouseCapture) {
            restore();
            return Err(e);
        }
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leave the alternate screen, raw mode and mouse capture (safe to call more than once).
pub fn restore() {
    let _ = execute!(stdout(), DisableMouseCapture);
    ratatui::restore();
}
