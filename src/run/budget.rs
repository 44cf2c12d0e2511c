//! The run's budget (`train.budget_tokens`, `train.budget_cost`): pure arithmetic over the
//! usage the trainer has accounted, checked by the drive loop before every stage.

use crate::config::TrainConfig;
use crate::dln::events::Event;
use crate::llm::Usage;

/// The limits a run stops at; both absent = no budget.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    pub tokens: Option<u64>,
    pub cost: Option<f64>,
}

impl Budget {
    pub fn of(train: &TrainConfig) -> Budget {
        Budget {
            tokens: train.budget_tokens,
            cost: train.budget_cost,
        }
    }

    /// The `BudgetReached` event when `used` has reached either limit, else `None`.
    pub fn reached(&self, used: &Usage) -> Option<Event> {
        let tokens = used.billed_tokens();
        let by_tokens = self.tokens.is_some_and(|b| tokens >= b);
        let by_cost = self.cost.is_some_and(|b| used.cost >= b);
        (by_tokens || by_cost).then_some(Event::BudgetReached {
            tokens,
            cost: used.cost,
            budget_tokens: self.tokens,
            budget_cost: self.cost,
        })
    }
}

/// One line saying why a `BudgetReached` stopped the run and how to go on (progress lines, the
/// workbench's messages); `None` for any other event.
pub fn describe(e: &Event) -> Option<String> {
    let Event::BudgetReached {
        tokens,
        cost,
        budget_tokens,
        budget_cost,
    } = e
    else {
        return None;
    };
    let mut limits = Vec::new();
    if let Some(b) = budget_tokens {
        limits.push(format!("{tokens} of train.budget_tokens = {b} tokens"));
    }
    if let Some(b) = budget_cost {
        limits.push(format!("cost {cost:.4} of train.budget_cost = {b}"));
    }
    Some(format!(
        "budget reached ({}): stopping with a checkpoint; raise it with `dln resume RUN_DIR --set \
         train.budget_…=…`",
        limits.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(computed: u64, reused: u64, generated: u64, cost: f64) -> Usage {
        Usage {
            tokens_computed: computed,
            tokens_reused: reused,
            tokens_generated: generated,
            calls: 7,
            cache_hits: 3,
            cost,
        }
    }

    #[test]
    fn no_budget_is_never_reached() {
        assert_eq!(
            Budget::default().reached(&used(u64::MAX / 4, 0, 0, 1e9)),
            None
        );
    }

    #[test]
    fn tokens_count_prompt_reused_and_generated_and_reach_at_the_limit() {
        let b = Budget {
            tokens: Some(100),
            cost: None,
        };
        assert_eq!(b.reached(&used(60, 20, 19, 0.0)), None, "99 tokens");
        let e = b
            .reached(&used(60, 20, 20, 0.0))
            .expect("100 tokens reach 100");
        assert_eq!(
            e,
            Event::BudgetReached {
                tokens: 100,
                cost: 0.0,
                budget_tokens: Some(100),
                budget_cost: None
            }
        );
        assert!(describe(&e)
            .unwrap()
            .contains("100 of train.budget_tokens = 100"));
    }

    #[test]
    fn cost_is_compared_with_its_own_limit_whichever_comes_first() {
        let b = Budget {
            tokens: Some(1_000_000),
            cost: Some(0.5),
        };
        assert_eq!(b.reached(&used(1000, 0, 10, 0.49)), None);
        match b.reached(&used(1000, 0, 10, 0.5)) {
            Some(Event::BudgetReached { tokens, cost, .. }) => {
                assert_eq!(tokens, 1010);
                assert_eq!(cost, 0.5);
            }
            other => panic!("expected the cost to reach its budget, got {other:?}"),
        }
        assert_eq!(
            describe(&Event::Warning {
                message: "x".into()
            }),
            None
        );
    }
}
