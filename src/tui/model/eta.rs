//! What the workbench says of time and work left: the running stage's tokens and the run's ETA,
//! from the trainer's forecasts ([`Event::Forecast`]).

#[cfg(doc)]
use super::layer::ForecastView;
use super::run_view::RunView;
#[cfg(doc)]
use crate::dln::events::Event;

impl RunView {
    /// Tokens the running stage has computed and generated so far, from the iteration's live
    /// usage (its layer's entries of the stage's operation); `None` when no stage event
    /// reported usage.
    pub fn stage_tokens(&self) -> Option<u64> {
        let s = self.stage.as_ref()?;
        let (it, live) = self.live_usage.as_ref()?;
        if *it != s.iteration {
            return None;
        }
        Some(
            live.iter()
                .filter(|e| e.operation.stage() == s.stage && s.layer.is_none_or(|l| l == e.layer))
                .map(|e| e.usage.tokens_computed + e.usage.tokens_generated)
                .sum(),
        )
    }

    /// Estimated time left: the run's last forecast, less the share of its stage done since;
    /// for logs written before forecasts, mean iteration time × iterations still to run.
    pub fn eta_ms(&self) -> Option<u64> {
        // GEPA trains to a token budget: its iterations are only a cap.
        if self.finished || self.gepa {
            return None;
        }
        if let Some(f) = &self.forecast {
            let into = match (f.stage_ms, &self.stage) {
                (Some(ms), Some(s)) if f.stage_started && s.iteration == f.iteration => {
                    ms * s.done.min(s.total) as u64 / s.total.max(1) as u64
                }
                _ => 0,
            };
            return f.run_left_ms.map(|left| left.saturating_sub(into));
        }
        if self.history.is_empty() {
            return None;
        }
        let mean =
            self.history.iter().map(|p| p.elapsed_ms).sum::<u64>() / self.history.len() as u64;
        let done = self
            .history
            .last()
            .map(|p| p.iteration + 1)
            .unwrap_or(self.start_iteration);
        let left = self.iterations.saturating_sub(done) as u64;
        Some(mean * left)
    }
}
