//! Taking over the terminal and always giving it back: on a normal exit (the guard's `Drop`), on
//! an error, and on a panic (a hook that restores before the panic message prints); handing it
//! to `$EDITOR` for a while (suspend, resume); the OSC 52 clipboard escape.

use std::io::{self, stdout, Write};
use std::path::Path;
use std::process::Command as Process;

use base64::Engine;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen,
};
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

/// The OSC 52 escape that asks the terminal (also the one the person sits at over SSH, and tmux
/// with `set-clipboard on`) to put `text` on the clipboard.
pub fn osc52(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("\x1b]52;c;{encoded}\x07")
}

/// Writes `text` to the clipboard through the terminal (OSC 52).
pub fn copy_to_clipboard(out: &mut impl Write, text: &str) -> io::Result<()> {
    out.write_all(osc52(text).as_bytes())?;
    out.flush()
}

/// The editor to run: `$VISUAL`, else `$EDITOR`, else `vi`.
pub fn editor_command() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string())
}

/// Gives the terminal back (main screen, cooked mode, no mouse), edits `text` in the editor,
/// and takes the terminal again, whatever the editor did. The text comes back as saved;
/// `Err` says why not (the editor could not start, failed, or the file could not be read).
pub fn edit_externally(terminal: &mut DefaultTerminal, text: &str) -> Result<String, String> {
    let _ = execute!(stdout(), DisableMouseCapture, LeaveAlternateScreen);
    let _ = disable_raw_mode();
    let result = run_editor(&editor_command(), text);
    let _ = enable_raw_mode();
    let _ = execute!(
        stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        Clear(ClearType::All)
    );
    // The next frame must be drawn whole. `Terminal::clear` would ask the terminal where its
    // cursor is (an answer read from the keyboard, which nothing reads now), so draw a blank
    // frame instead: the one after it differs from it everywhere there is something to show.
    let _ = terminal.draw(|f| f.render_widget(ratatui::widgets::Clear, f.area()));
    result
}

/// Runs `editor` (a command line: `code --wait` works) on a temporary file holding `text`.
fn run_editor(editor: &str, text: &str) -> Result<String, String> {
    let file = tempfile::Builder::new()
        .prefix("dln-edit-")
        .suffix(".txt")
        .tempfile()
        .map_err(|e| format!("cannot create a temporary file: {e}"))?;
    std::fs::write(file.path(), text)
        .map_err(|e| format!("cannot write {}: {e}", file.path().display()))?;
    let status = shell_run(editor, file.path())
        .map_err(|e| format!("cannot run `{editor}` (set $EDITOR): {e}"))?;
    if !status.success() {
        return Err(format!("`{editor}` exited with {status}; nothing applied"));
    }
    std::fs::read_to_string(file.path())
        .map_err(|e| format!("cannot read {}: {e}", file.path().display()))
}

/// `editor path` through the shell, so an editor given with arguments works.
fn shell_run(editor: &str, path: &Path) -> io::Result<std::process::ExitStatus> {
    Process::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_encodes_the_text_for_the_clipboard() {
        assert_eq!(osc52("hi"), "\x1b]52;c;aGk=\x07");
        let mut out = Vec::new();
        copy_to_clipboard(&mut out, "é").expect("written");
        assert_eq!(out, b"\x1b]52;c;w6k=\x07");
    }

    #[test]
    fn the_editor_edits_a_file_and_its_text_comes_back() {
        let back = run_editor("sed -i s/old/new/", "an old prompt").expect("edited");
        assert_eq!(back, "an new prompt");
        let err = run_editor("false", "x").expect_err("a failing editor");
        assert!(err.contains("exited"), "{err}");
    }
}
