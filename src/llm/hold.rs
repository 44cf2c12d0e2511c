//! A backend held by a pause: no new decode step or request starts until it is released.
//!
//! A stage of a run is minutes of calls on a small machine; a person who pauses should not wait
//! for its end. The driver holds the run's backends when a pause arrives inside a stage
//! ([`Backend::hold`](super::Backend::hold)): the embedded engine stops before its next decode
//! call, a server backend before its next HTTP request, and the stage carries on from there
//! when released, with nothing redone. Waiting is a short poll, so a hold costs nothing when it
//! is not set and takes effect within one decode step. The hold also counts the calls at work
//! ([`Hold::working`]), so that the driver can tell a person the run is paused only once
//! nothing computes any more ([`Hold::is_quiet`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// How often a held backend looks whether it was released.
const POLL: Duration = Duration::from_millis(25);

/// Whether a backend is held; shared between the backend's handle and where it does its work.
#[derive(Debug, Default)]
pub struct Hold {
    held: AtomicBool,
    /// Calls at work: between [`Hold::working`] and the end of its guard, less those waiting in
    /// [`Hold::wait_blocking`].
    working: AtomicUsize,
}

/// A call at work, counted by its [`Hold`] until dropped.
#[must_use]
pub struct Working<'a>(&'a Hold);

impl Drop for Working<'_> {
    fn drop(&mut self) {
        self.0.working.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hold {
    pub fn set(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }

    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    /// Counts a call at work (a job on the model's thread, a request in flight) until the
    /// guard is dropped.
    pub fn working(&self) -> Working<'_> {
        self.working.fetch_add(1, Ordering::SeqCst);
        Working(self)
    }

    /// No call is at work, or every one waits for the release: a held backend computes
    /// nothing.
    pub fn is_quiet(&self) -> bool {
        self.working.load(Ordering::SeqCst) == 0
    }

    /// Blocks the calling thread (the model's, at work under [`Hold::working`]) while held,
    /// not counted as at work meanwhile, or until `give_up` says to stop waiting (the backend
    /// is shutting down).
    pub fn wait_blocking(&self, give_up: impl Fn() -> bool) {
        if !self.is_held() || give_up() {
            return;
        }
        self.working.fetch_sub(1, Ordering::SeqCst);
        while self.is_held() && !give_up() {
            std::thread::sleep(POLL);
        }
        self.working.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits while held, from async code.
    pub async fn wait(&self) {
        while self.is_held() {
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_held_wait_returns_once_released() {
        let hold = Arc::new(Hold::default());
        hold.wait().await;
        hold.set(true);
        let h = Arc::clone(&hold);
        let waiter = tokio::spawn(async move { h.wait().await });
        tokio::time::sleep(POLL * 4).await;
        assert!(!waiter.is_finished(), "still held");
        hold.set(false);
        waiter.await.expect("released");
    }

    #[test]
    fn a_blocking_wait_gives_up_when_told() {
        let hold = Hold::default();
        let _work = hold.working();
        hold.set(true);
        hold.wait_blocking(|| true);
        hold.set(false);
        hold.wait_blocking(|| false);
        assert!(!hold.is_quiet(), "still at work after the waits");
    }

    #[test]
    fn a_held_backend_is_quiet_once_its_calls_wait_or_end() {
        let hold = Arc::new(Hold::default());
        assert!(hold.is_quiet(), "nothing at work");
        let work = hold.working();
        assert!(!hold.is_quiet());
        drop(work);
        assert!(hold.is_quiet());
        hold.set(true);
        let h = Arc::clone(&hold);
        let (started, ready) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            let _work = h.working();
            started.send(()).unwrap();
            std::thread::sleep(POLL * 2); // finishing its decode step
            h.wait_blocking(|| false);
        });
        ready.recv().unwrap();
        assert!(!hold.is_quiet(), "still finishing its step");
        while !hold.is_quiet() {
            std::thread::sleep(POLL / 5);
        }
        assert!(!worker.is_finished(), "quiet because it waits");
        hold.set(false);
        worker.join().unwrap();
        assert!(hold.is_quiet(), "quiet because it ended");
    }
}
