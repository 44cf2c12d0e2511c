//! GEPA's events as the workbench reduces them (`train.optimizer = "gepa"`): the parent an
//! iteration mutates becomes the layers' prompts, and the activity log says which candidate
//! it is and how much of the Pareto front it holds, and which mutations joined the pool.

use crate::dln::events::Event;

use super::RunView;

impl RunView {
    /// Applies `ParentSelected` and `PoolAdded`; other events are left alone.
    pub(super) fn apply_gepa(&mut self, event: &Event) {
        self.gepa = true;
        match event {
            Event::ParentSelected {
                iteration,
                member,
                prompts,
                demos,
                front,
                ..
            } => {
                self.return_to(prompts, demos);
                let wins = front
                    .iter()
                    .find(|e| e.member == *member)
                    .map_or(0, |e| e.wins);
                let examples: usize = front.iter().map(|e| e.wins).sum();
                self.note(
                    *iteration,
                    &format!(
                        "GEPA: mutating candidate #{member}, best on {wins} of {examples} dev examples \
                         ({} candidates on the Pareto front)",
                        front.len()
                    ),
                );
            }
            Event::PoolAdded {
                iteration,
                member,
                parent,
                dev_accuracy,
                mean_score,
                best,
                ..
            } => {
                let from = parent.map_or_else(String::new, |p| format!(" (from #{p})"));
                self.note(
                    *iteration,
                    &format!(
                        "GEPA: candidate #{member}{from} joins the pool: dev {:.1} %, mean log-likelihood \
                         {mean_score:.3}; best #{best}",
                        dev_accuracy * 100.0
                    ),
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::dln::events::{Event, FrontEntry};
    use crate::tui::model::{LayerView, RunView};

    #[test]
    fn a_draw_puts_the_parent_in_the_layers_and_the_log_says_which_and_why() {
        let mut run = RunView {
            layers: vec![LayerView {
                prompt: "child".into(),
                ..LayerView::default()
            }],
            ..RunView::default()
        };
        let front = vec![
            FrontEntry { member: 0, wins: 7 },
            FrontEntry { member: 2, wins: 3 },
        ];
        run.apply(&Event::ParentSelected {
            iteration: 4,
            member: 2,
            layer: 0,
            prompts: vec!["parent".into()],
            demos: Vec::new(),
            front: front.clone(),
        });
        assert!(run.gepa);
        assert_eq!(run.layers[0].prompt, "parent");
        assert_eq!(run.layers[0].previous_prompt.as_deref(), Some("child"));
        let last = &run.interventions.last().expect("a line").text;
        assert!(
            last.contains("#2") && last.contains("3 of 10") && last.contains("2 candidates"),
            "{last}"
        );
        run.apply(&Event::PoolAdded {
            iteration: 4,
            member: 3,
            parent: Some(2),
            prompts: vec!["new".into()],
            dev_accuracy: 0.625,
            mean_score: -0.5,
            front,
            best: 3,
        });
        let last = &run.interventions.last().expect("a line").text;
        assert!(
            last.contains("#3 (from #2)") && last.contains("62.5") && last.contains("best #3"),
            "{last}"
        );
        assert_eq!(run.eta_ms(), None, "a token budget, not a count, ends GEPA");
    }
}
