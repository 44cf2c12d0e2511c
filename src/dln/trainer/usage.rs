//! Token usage bookkeeping: the run's totals and the iteration in progress, per layer and
//! [`Operation`], in one [`UsageBook`].

use crate::dln::events::{LayerIndex, UsageEntry};
use crate::dln::network::Network;
use crate::dln::ops::Operation;
use crate::llm::{engines_usage, Usage};

/// Usage per (layer, operation): the run's total and, while an iteration runs, the iteration's
/// own (what `IterationDone` and the live stage events carry).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageBook {
    run: Vec<UsageEntry>,
    iteration: Option<Vec<UsageEntry>>,
}

impl UsageBook {
    /// A book continuing a checkpoint's totals.
    pub fn restored(run: Vec<UsageEntry>) -> UsageBook {
        UsageBook {
            run,
            iteration: None,
        }
    }

    /// An iteration starts: its own counts start at zero.
    pub fn begin_iteration(&mut self) {
        self.iteration = Some(Vec::new());
    }

    /// The iteration ends: its counts, handed to its `IterationDone`.
    pub fn end_iteration(&mut self) -> Vec<UsageEntry> {
        self.iteration.take().unwrap_or_default()
    }

    /// Counts `usage` for `layer` and `operation` in the run and in the iteration in progress.
    pub fn add(&mut self, layer: LayerIndex, operation: Operation, usage: Usage) {
        add_to(&mut self.run, layer, operation, usage);
        if let Some(it) = self.iteration.as_mut() {
            add_to(it, layer, operation, usage);
        }
    }

    /// The run's usage so far.
    pub fn run(&self) -> &[UsageEntry] {
        &self.run
    }

    /// The run's usage summed over layers and operations.
    pub fn total(&self) -> Usage {
        let mut total = Usage::default();
        for e in &self.run {
            total.add(&e.usage);
        }
        total
    }

    /// The iteration's usage plus `pending` (a running stage's calls not yet accounted), for
    /// stage events; `None` outside an iteration (the baseline evaluation, the test).
    pub fn live(&self, pending: Option<(LayerIndex, Operation, Usage)>) -> Option<Vec<UsageEntry>> {
        let mut usage = self.iteration.clone()?;
        if let Some((layer, operation, u)) = pending {
            add_to(&mut usage, layer, operation, u);
        }
        Some(usage)
    }
}

fn add_to(entries: &mut Vec<UsageEntry>, layer: LayerIndex, operation: Operation, u: Usage) {
    if u == Usage::default() {
        return;
    }
    match entries
        .iter_mut()
        .find(|e| e.layer == layer && e.operation == operation)
    {
        Some(e) => e.usage.add(&u),
        None => entries.push(UsageEntry {
            layer,
            operation,
            usage: u,
        }),
    }
}

/// The sum of the counters of every engine of the network, each counted once
/// ([`engines_usage`]): read before and after a stage's calls, the difference is the stage's
/// usage.
pub fn backend_usage(net: &Network) -> Usage {
    engines_usage(
        net.layers
            .iter()
            .flat_map(|l| [&l.backends.forward, &l.backends.backward]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(n: u64) -> Usage {
        Usage {
            calls: n,
            ..Usage::default()
        }
    }

    #[test]
    fn entries_sum_per_layer_and_operation_under_the_recorded_names() {
        let mut book = UsageBook::default();
        book.add(0, Operation::Sharpening, calls(2));
        book.add(0, Operation::Sharpening, calls(3));
        book.add(1, Operation::Sharpening, calls(1));
        book.add(0, Operation::Score, Usage::default());
        let run = book.run();
        assert_eq!(run.len(), 2, "an empty usage adds no entry");
        assert_eq!(run[0].operation, Operation::Sharpening);
        assert_eq!(run[0].usage.calls, 5);
        assert_eq!(book.total().calls, 6);
    }

    #[test]
    fn the_iteration_counts_from_its_start_and_live_adds_the_pending_calls() {
        let mut book = UsageBook::restored(vec![]);
        book.add(0, Operation::Evaluate, calls(4));
        assert_eq!(book.live(None), None, "no iteration in progress");
        book.begin_iteration();
        book.add(0, Operation::Forward, calls(1));
        let live = book.live(Some((0, Operation::Score, calls(2)))).unwrap();
        assert_eq!(live.len(), 2);
        assert_eq!(live[1].operation, Operation::Score);
        let it = book.end_iteration();
        assert_eq!(it.len(), 1);
        assert_eq!(it[0].operation, Operation::Forward);
        assert_eq!(book.total().calls, 5);
        assert_eq!(book.live(None), None);
    }
}
