//! A layer's demonstrations from the workbench: list them in full (`D`), add the selected batch
//! example as one (`A`), remove the selected one (`X`), pin or unpin them (`P`). Each becomes a
//! [`Command`] the engine applies at the next stage boundary and records in the run.

use crate::dln::events::Command;
use crate::tui::app::{App, Pane};

impl App {
    /// `D`: the selected layer's demonstrations in full in the Layers pane (↑↓ then select
    /// one), or back to their one line.
    pub(super) fn toggle_demos(&mut self) {
        if let Some(why) = self.without_demos(self.sel.layer) {
            self.notice = Some(why);
            return;
        }
        self.sel.demos_expanded = !self.sel.demos_expanded;
        self.sel.demo = 0;
        self.focus = Pane::Layers;
    }

    /// `A` in the Hidden pane: the selected example of the batch joins the selected layer's
    /// demonstrations (by its index in the training split).
    pub(super) fn add_demo(&mut self) -> Vec<Command> {
        let layer = self.sel.layer;
        if let Some(why) = self.without_demos(layer) {
            self.notice = Some(why);
            return Vec::new();
        }
        let rows = self.hidden_rows();
        let Some((_, examples)) = &self.run.forward else {
            self.notice = Some("no batch yet: wait for the forward pass".into());
            return Vec::new();
        };
        // The hidden pane's rows index the posterior's examples when it shows one; both are the
        // batch in order.
        let Some(ex) = rows.get(self.sel.example).and_then(|i| examples.get(*i)) else {
            self.notice = Some("select an example of the batch in the Hidden states pane".into());
            return Vec::new();
        };
        let Some(example) = ex.train_index else {
            self.notice = Some("this run's log does not say which training example that is".into());
            return Vec::new();
        };
        self.notice = Some(format!(
            "adding ex {example} as a demonstration of layer {}",
            layer + 1
        ));
        vec![Command::AddDemo { layer, example }]
    }

    /// `X`: the demonstration selected in the Layers pane's list (`D`) is no longer shown.
    pub(super) fn remove_demo(&mut self) -> Vec<Command> {
        let layer = self.sel.layer;
        let Some(l) = self.run.layers.get(layer) else {
            return Vec::new();
        };
        if l.demos.is_empty() {
            self.notice = Some(format!("layer {} shows no demonstrations", layer + 1));
            return Vec::new();
        }
        if !self.sel.demos_expanded {
            self.notice = Some("D lists the demonstrations; select one, then X removes it".into());
            return Vec::new();
        }
        let slot = self.sel.demo.min(l.demos.len() - 1);
        let example = l.demos[slot].index;
        self.notice = Some(format!(
            "removing demonstration ex {example} from layer {}",
            layer + 1
        ));
        vec![Command::RemoveDemo { layer, example }]
    }

    /// `P`: pins the selected layer's demonstrations, or unpins them.
    pub(super) fn pin_demos(&mut self) -> Vec<Command> {
        let layer = self.sel.layer;
        let Some(l) = self.run.layers.get(layer) else {
            return Vec::new();
        };
        if let Some(why) = self.without_demos(layer) {
            self.notice = Some(why);
            return Vec::new();
        }
        if l.demos_pinned {
            self.notice = Some(format!("unpinning layer {} demonstrations", layer + 1));
            vec![Command::UnpinDemos { layer }]
        } else {
            self.notice = Some(format!("pinning layer {} demonstrations", layer + 1));
            vec![Command::PinDemos { layer }]
        }
    }

    /// Why layer `layer` has no demonstrations to act on, if it has none and learns none.
    fn without_demos(&self, layer: usize) -> Option<String> {
        let l = self.run.layers.get(layer)?;
        (l.max_demos == 0 && l.demos.is_empty()).then(|| {
            format!(
                "layer {} shows no demonstrations (demos = 0 in its config)",
                layer + 1
            )
        })
    }
}
