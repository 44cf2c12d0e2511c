//! Keys of the lineage view (`L`): ↑↓ (j k, g G) move through the layer's prompts, ←→ (h l)
//! change layer, PgUp/PgDn scroll the selected prompt's details, `[` `]` scrub a replay, `y`
//! copies the selected prompt, Esc (or `L`, `q`) closes.

use crossterm::event::KeyEvent;

use crate::dln::events::{Command, LayerIndex};
use crate::tui::action::Action;
use crate::tui::app::{App, Overlay, TerminalEffect};

impl App {
    /// Opens the lineage view on the selected layer, at its prompt now.
    pub(super) fn open_lineage(&mut self) {
        let layer = self.sel.layer.min(self.run.depth().saturating_sub(1));
        self.overlay = Some(Overlay::Lineage { layer });
        self.sel.lineage_node = self.run.lineage.layer(layer).map_or(0, |l| l.current);
        self.sel.lineage_scroll = 0;
    }

    /// The number of nodes in a layer's tree.
    fn lineage_len(&self, layer: LayerIndex) -> usize {
        self.run.lineage.layer(layer).map_or(0, |l| l.nodes.len())
    }
}

pub(super) fn key(app: &mut App, layer: LayerIndex, key: KeyEvent) -> Vec<Command> {
    let Some(action) = app.keymap.action(&key) else {
        return Vec::new();
    };
    app.notice = None;
    let n = app.lineage_len(layer);
    let last = n.saturating_sub(1);
    let select = |app: &mut App, node: usize| {
        app.sel.lineage_node = node.min(last);
        app.sel.lineage_scroll = 0;
    };
    let node = app.sel.lineage_node.min(last);
    let page = usize::from(app.viewport.1.saturating_sub(10)).max(1);
    match action {
        Action::Cancel | Action::Lineage | Action::Quit => app.overlay = None,
        Action::Interrupt => return app.interrupt(),
        Action::Up => select(app, node.saturating_sub(1)),
        Action::Down => select(app, node + 1),
        Action::Top => select(app, 0),
        Action::Bottom => select(app, last),
        Action::PageDown => app.sel.lineage_scroll += page,
        Action::PageUp => app.sel.lineage_scroll = app.sel.lineage_scroll.saturating_sub(page),
        Action::PrevLayer | Action::NextLayer => {
            let depth = app.run.depth().max(1);
            let to = if action == Action::NextLayer {
                (layer + 1) % depth
            } else {
                (layer + depth - 1) % depth
            };
            app.sel.layer = to;
            app.sel.layer_chosen = true;
            app.open_lineage();
        }
        Action::ScrubBack | Action::ScrubForward => {
            app.scrub(action == Action::ScrubForward);
            app.open_lineage();
        }
        Action::Copy => {
            if let Some(text) = app
                .run
                .lineage
                .layer(layer)
                .and_then(|l| l.node(node))
                .map(|n| n.prompt.clone())
            {
                app.effects.push(TerminalEffect::Copy(text));
                app.notice = Some(format!("copied prompt #{node}"));
            }
        }
        _ => {}
    }
    Vec::new()
}
