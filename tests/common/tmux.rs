//! The workbench in a real terminal: a tmux server of the test's own running a shell line (most
//! often [`dln_line`], the `dln` binary), driven with keys and read back screen by screen.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A tmux server of the test's own (its own socket) holding one 120×40 session `wb`; the server
/// is killed when this is dropped.
pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Starts the server with a session running the shell line `command`; `name` tells the
    /// tests' servers apart.
    pub fn start(name: &str, command: &str) -> Tmux {
        let t = Tmux {
            socket: format!("dln-e2e-{name}-{}", std::process::id()),
            session: "wb".into(),
        };
        let ok = t
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                &t.session,
                "-x",
                "120",
                "-y",
                "40",
                command,
            ])
            .status
            .success();
        assert!(
            ok,
            "tmux new-session failed (is tmux installed? scripts/setup installs it)"
        );
        t
    }

    /// A tmux command on this server.
    pub fn cmd(&self, args: &[&str]) -> Output {
        let mut all = vec!["-L", self.socket.as_str()];
        all.extend_from_slice(args);
        match Command::new("tmux").args(&all).output() {
            Ok(o) => o,
            Err(e) => panic!("cannot run tmux ({e}); scripts/setup installs it"),
        }
    }

    /// Keys by tmux's names (`Space`, `C-s`, `M-<`, or a character).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success(), "send-keys {keys:?}");
    }

    /// Literal text (no key-name interpretation).
    pub fn text(&self, text: &str) {
        assert!(self
            .cmd(&["send-keys", "-t", &self.session, "-l", text])
            .status
            .success());
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["capture-pane", "-p", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }

    /// A tmux format expanded for the session (`#{alternate_on}`, `#{pane_pid}`).
    pub fn display(&self, format: &str) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["display", "-p", "-t", &self.session, format])
                .stdout,
        )
        .trim()
        .to_string()
    }

    /// Polls the screen until `pred` holds; returns the screen and how long it took. Fails the
    /// test, showing the screen, after `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> (String, Duration) {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return (s, start.elapsed());
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// A value quoted for the shell, single quotes and all.
pub fn quote(value: impl AsRef<OsStr>) -> String {
    let text = value.as_ref().to_string_lossy();
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The shell line that runs the `dln` binary in a pane, every value quoted: `env VAR=… dln ARG…;
/// echo EXIT=$?`, then what [`DlnLine::then`] adds (the exit code stays on the screen for the
/// test to read, as long as the pane is kept open after it).
pub struct DlnLine {
    env: Vec<String>,
    args: Vec<String>,
}

/// `dln` with a terminal type that has colours, and no arguments yet.
pub fn dln_line() -> DlnLine {
    DlnLine {
        env: vec!["TERM=xterm-256color".into()],
        args: Vec::new(),
    }
}

impl DlnLine {
    /// One more variable in the binary's environment.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> DlnLine {
        self.env.push(format!("{key}={}", quote(value)));
        self
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> DlnLine {
        self.args.push(quote(arg));
        self
    }

    /// More arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> DlnLine {
        self.args.extend(args.into_iter().map(quote));
        self
    }

    /// The line, with the shell commands `rest` after the exit code (`sleep 120` keeps the pane).
    pub fn then(&self, rest: &str) -> String {
        format!(
            "env {} {} {}; echo EXIT=$?; {rest}",
            self.env.join(" "),
            quote(Path::new(env!("CARGO_BIN_EXE_dln"))),
            self.args.join(" "),
        )
    }
}
