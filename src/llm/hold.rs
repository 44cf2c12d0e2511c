//! A backend held by a pause: no new decode step or request starts until it is released.
//!
//! A stage of a run is minutes of calls on a small machine; a person who pauses should not wait
//! for its end. The driver holds the run's backends when a pause arrives inside a stage
//! ([`Backend::hold`](super::Backend::hold)): the embedded engine stops before its next decode
//! call, a server backend before its next HTTP request, and the stage carries on from there
//! when released, with nothing redone. Waiting is a short poll, so a hold costs nothing when it
//! is not set and takes effect within one decode step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often a held backend looks whether it was released.
const POLL: Duration = Duration::from_millis(25);

/// Whether a backend is held; shared between the backend's handle and where it does its work.
#[derive(Debug, Default)]
pub struct Hold(AtomicBool);

impl Hold {
    pub fn set(&self, held: bool) {
        self.0.store(held, Ordering::SeqCst);
    }

    pub fn is_held(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Blocks the calling thread (the model's) while held, or until `give_up` says to stop
    /// waiting (the backend is shutting down).
    pub fn wait_blocking(&self, give_up: impl Fn() -> bool) {
        while self.is_held() && !give_up() {
            std::thread::sleep(POLL);
        }
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
        hold.set(true);
        hold.wait_blocking(|| true);
        hold.set(false);
        hold.wait_blocking(|| false);
    }
}
