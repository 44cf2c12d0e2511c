//! Every thing a person can ask of the workbench, as one enum. Keys map to these through the
//! [`KeyMap`](super::keymap::KeyMap); the App interprets them against the focused pane.

use std::fmt;
use std::str::FromStr;

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal : $help:literal),* $(,)?) => {
        /// A person's request, independent of the key that produced it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $($(#[$doc])* $variant,)*
        }

        impl Action {
            /// Every action, in help order.
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            /// The name used in the config file's `[keys]` table.
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name,)* }
            }

            /// One line for the help overlay.
            pub fn help(self) -> &'static str {
                match self { $(Action::$variant => $help,)* }
            }
        }

        impl FromStr for Action {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Action::$variant),)*
                    other => Err(format!(
                        "unknown action `{other}` (known: {})",
                        [$($name),*].join(", ")
                    )),
                }
            }
        }
    };
}

actions! {
    Quit = "quit": "quit (asks first while a run is active; writes a checkpoint)",
    Interrupt = "interrupt": "checkpoint after this stage and leave; twice: now",
    Help = "help": "show or hide this help",
    FocusNext = "focus_next": "focus the next pane",
    FocusPrev = "focus_prev": "focus the previous pane",
    FocusLayers = "focus_layers": "show the Layers pane (tab or grid cell 1)",
    FocusHidden = "focus_hidden": "show the Hidden states pane (tab or grid cell 2)",
    FocusCandidates = "focus_candidates": "show the Candidates pane (tab or grid cell 3)",
    FocusMetrics = "focus_metrics": "show the Metrics pane (tab or grid cell 4)",
    Up = "up": "move up / scroll up",
    Down = "down": "move down / scroll down",
    PageUp = "page_up": "scroll a page up",
    PageDown = "page_down": "scroll a page down",
    Top = "top": "go to the first item",
    Bottom = "bottom": "go to the last item",
    PrevLayer = "prev_layer": "previous layer (or sample in the hidden pane)",
    NextLayer = "next_layer": "next layer (or sample in the hidden pane)",
    Expand = "expand": "expand / collapse the selected item",
    Filter = "filter": "filter the list by text",
    TogglePause = "toggle_pause": "pause / resume (pause waits for the stage to end)",
    Step = "step": "run one stage while paused",
    Pin = "pin": "pin the selected candidate or the current prompt to its layer",
    Unpin = "unpin": "unpin the layer",
    EditPrompt = "edit_prompt": "edit the layer's prompt (Ctrl-S applies)",
    EditTemplate = "edit_template": "edit one of the layer's templates (Ctrl-S validates and applies)",
    AddHidden = "add_hidden": "write a hidden text for the selected example",
    ExcludeSample = "exclude_sample": "exclude the selected posterior sample, or include it again",
    ToggleDiff = "toggle_diff": "show the change since the previous prompt",
    Sort = "sort": "change the sort order of the hidden-state examples",
    WrongOnly = "wrong_only": "show only wrongly predicted examples",
    ScrubBack = "scrub_back": "replay: one iteration back",
    ScrubForward = "scrub_forward": "replay: one iteration forward",
    Cancel = "cancel": "close the overlay / clear the filter",
    Demos = "demos": "list the layer's demonstrations in full (↑↓ selects one) / back to one line",
    AddDemo = "add_demo": "show the selected batch example as a demonstration of the layer",
    RemoveDemo = "remove_demo": "stop showing the selected demonstration (D lists them)",
    Feedback = "feedback": "write a note on the layer (in the Hidden pane: on the selected example) that its proposals are shown until removed",
    Notes = "notes": "list the layer's notes in force (x removes the selected one)",
    PinDemos = "pin_demos": "pin / unpin the layer's demonstrations (the instruction still trains)",
    Copy = "copy": "copy the selected prompt or hidden text to the clipboard (OSC 52, works over SSH)",
    ExternalEdit = "external_edit": "edit the selected prompt (or the picked template) in $EDITOR",
    Zoom = "zoom": "show the focused pane full-screen / back",
    SearchNext = "search_next": "after a / search: the next match",
    SearchPrev = "search_prev": "after a / search: the previous match",
    Branch = "branch": "branch: a new run from this iteration (replay: the one shown), opened paused to edit",
    Lineage = "lineage": "where the layer's prompts came from: the tree over iterations (↑↓ a prompt: its text, diff and why it won or lost)",
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(a.name().parse::<Action>(), Ok(*a));
        }
        assert!("frobnicate"
            .parse::<Action>()
            .unwrap_err()
            .contains("toggle_pause"));
    }
}
