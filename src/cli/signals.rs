//! The signals that stop a headless command (`dln train`, `resume`, `bench accuracy`).
//!
//! The first SIGINT, SIGTERM or SIGHUP asks for a stop at the next stage boundary; a second
//! SIGINT or SIGTERM asks to leave at once. One exception: a SIGTERM that follows the first stop
//! request within [`DUPLICATE_SIGTERM`] is the same request delivered twice, not a second one —
//! `timeout` (without `--foreground`) signals the process and then its whole process group, so
//! `timeout 20s dln train …` receives SIGTERM twice, microseconds apart, and must still stop at a
//! boundary with exit 3. A person's second Ctrl-C is never ignored, however quick.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// How close behind the first stop request a SIGTERM counts as its duplicate.
pub(crate) const DUPLICATE_SIGTERM: Duration = Duration::from_millis(500);

/// What a signal asks of the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    /// Stop at the next stage boundary; the name of the signal, for the note.
    Stop(&'static str),
    /// Leave at once: everything written so far is on disk.
    Leave,
}

/// SIGINT, SIGTERM and SIGHUP, watched from the moment this is made.
pub(crate) struct StopSignals {
    int: Signal,
    term: Signal,
    hup: Signal,
    /// When the first stop request came, if one did.
    first: Option<Instant>,
}

impl StopSignals {
    /// Starts watching (inside a tokio runtime).
    pub(crate) fn watch() -> anyhow::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("cannot watch SIGHUP")?,
            first: None,
        })
    }

    /// Waits for the next signal that asks something. `stopping`: a stop was already asked
    /// (by a signal or by the command itself), so SIGINT or SIGTERM now means leave.
    /// Cancel-safe: dropping the future loses no signal.
    pub(crate) async fn next(&mut self, stopping: bool) -> Ask {
        loop {
            let (kind, name) = tokio::select! {
                _ = self.int.recv() => (Kind::Int, "interrupt"),
                _ = self.term.recv() => (Kind::Term, "SIGTERM"),
                _ = self.hup.recv() => (Kind::Hup, "SIGHUP"),
            };
            let now = Instant::now();
            match decide(kind, stopping, self.first, now) {
                Verdict::Stop => {
                    self.first.get_or_insert(now);
                    return Ask::Stop(name);
                }
                Verdict::Leave => return Ask::Leave,
                Verdict::Nothing => {}
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Term,
    Hup,
}

/// What one signal means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Stop,
    Leave,
    /// A repeated SIGHUP, or a SIGTERM's duplicate.
    Nothing,
}

/// What one signal means, given whether a stop was already asked and when the first signal's
/// stop request came.
fn decide(kind: Kind, stopping: bool, first: Option<Instant>, now: Instant) -> Verdict {
    if !stopping {
        return Verdict::Stop;
    }
    match kind {
        Kind::Hup => Verdict::Nothing,
        Kind::Term if first.is_some_and(|t| now.duration_since(t) < DUPLICATE_SIGTERM) => {
            Verdict::Nothing
        }
        Kind::Int | Kind::Term => Verdict::Leave,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sigterm_right_behind_the_first_is_its_duplicate_but_a_second_ctrl_c_leaves() {
        let t0 = Instant::now();
        let soon = t0 + Duration::from_millis(1);
        let later = t0 + DUPLICATE_SIGTERM + Duration::from_millis(1);
        assert_eq!(decide(Kind::Term, false, None, t0), Verdict::Stop);
        assert_eq!(decide(Kind::Term, true, Some(t0), soon), Verdict::Nothing);
        assert_eq!(decide(Kind::Term, true, Some(t0), later), Verdict::Leave);
        assert_eq!(decide(Kind::Int, true, Some(t0), soon), Verdict::Leave);
        assert_eq!(decide(Kind::Hup, true, Some(t0), later), Verdict::Nothing);
        // A stop the command asked itself (no signal yet): any SIGTERM leaves.
        assert_eq!(decide(Kind::Term, true, None, soon), Verdict::Leave);
    }
}
