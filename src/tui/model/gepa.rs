//! GEPA's events as the workbench reduces them (`train.optimizer = "gepa"`): the parent an
//! iteration mutates becomes the layers' prompts, and the activity log says which candidate
//! it is and how much of the Pareto front it holds, and which mutations joined the pool.

use crate::dln::events::Event;

use super::RunView;

impl RunView {
    /// Applies `ParentSelected` and `PoolAdded`; other events are left alone.
    pub(super) fn apply_gepa(&mut self, event: &Event) {
        match event {
            Event::ParentSelected {
                iteration,
                member,
                prompts,
                demos,
                front,
                ..
            } => {
                for (l, p) in self.layers.iter_mut().zip(prompts) {
                    l.replace_prompt(p);
                }
                for (l, d) in self.layers.iter_mut().zip(demos) {
                    l.demos = d.clone();
                }
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
