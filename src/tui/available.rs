//! What the person can do now: one list that the hint line shows and the key handling checks,
//! so a key hint is never offered for an action that would be refused (gitui's `commands()`).

use crate::dln::events::RunState;

use super::action::Action;
use super::app::{App, Exit, Mode, Pane};

/// An action that does something now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    pub action: Action,
    /// What it does here, for the hint line.
    pub label: &'static str,
    /// Shown in the hint line (the focused pane's actions and a few global ones); the others
    /// work from any pane but are listed only in the help.
    pub hinted: bool,
}

/// The actions that change the run (refused in replay and once the run ended).
pub const STEERING: [Action; 13] = [
    Action::TogglePause,
    Action::Step,
    Action::Pin,
    Action::Unpin,
    Action::EditPrompt,
    Action::EditTemplate,
    Action::AddHidden,
    Action::ExcludeSample,
    Action::AddDemo,
    Action::RemoveDemo,
    Action::PinDemos,
    Action::ExternalEdit,
    Action::Feedback,
];

/// The actions of the focused pane, in hint order, before checking what the run allows.
fn pane_actions(focus: Pane) -> &'static [(Action, &'static str)] {
    match focus {
        Pane::Layers => &[
            (Action::Down, "layer"),
            (Action::PageDown, "scroll"),
            (Action::ToggleDiff, "diff"),
            (Action::EditPrompt, "edit"),
            (Action::EditTemplate, "template"),
            (Action::Pin, "pin"),
            (Action::Unpin, "unpin"),
            (Action::Demos, "demos"),
            (Action::Feedback, "note"),
            (Action::Notes, "notes"),
        ],
        Pane::Hidden => &[
            (Action::Down, "example"),
            (Action::NextLayer, "sample"),
            (Action::AddHidden, "write"),
            (Action::ExcludeSample, "exclude"),
            (Action::AddDemo, "as demo"),
            (Action::Sort, "sort"),
            (Action::WrongOnly, "wrong"),
            (Action::Filter, "filter"),
            (Action::Expand, "expand"),
        ],
        Pane::Candidates => &[
            (Action::Down, "select"),
            (Action::NextLayer, "layer"),
            (Action::Pin, "pin"),
            (Action::Expand, "expand"),
            (Action::Filter, "filter"),
            (Action::Lineage, "lineage"),
        ],
        Pane::Metrics => &[(Action::Down, "scroll")],
    }
}

/// Whether the run takes steering now: a live run, still active, that the person is not
/// leaving.
fn can_steer(app: &App) -> bool {
    app.mode == Mode::Live && app.run.is_active() && app.exit == Exit::No
}

/// What the person can do now, hinted ones first in hint order: replay's scrubbing or the
/// run's pause/resume and step, the focused pane's actions, then pane, help and quit; then the
/// steering actions the focused pane does not hint but that work from it.
pub fn available_actions(app: &App) -> Vec<Available> {
    let hint = |action, label| Available {
        action,
        label,
        hinted: true,
    };
    let steer = can_steer(app);
    let mut out = Vec::new();
    if app.mode == Mode::Replay {
        out.push(hint(Action::ScrubBack, "prev it"));
        out.push(hint(Action::ScrubForward, "next it"));
        out.push(hint(Action::Branch, "branch"));
    } else if steer {
        let paused = app.shown_state() == Some(RunState::Paused);
        out.push(hint(
            Action::TogglePause,
            match app.shown_state() {
                Some(RunState::Paused) => "resume",
                Some(RunState::Pausing) => "cancel pause",
                _ => "pause",
            },
        ));
        if paused {
            out.push(hint(Action::Step, "step"));
        }
    }
    // The demonstration keys are hinted only where a layer shows or learns demonstrations.
    let demos = app
        .run
        .layers
        .iter()
        .any(|l| l.max_demos > 0 || !l.demos.is_empty());
    for &(action, label) in pane_actions(app.focus) {
        if !demos && matches!(action, Action::Demos | Action::AddDemo) {
            continue;
        }
        // The notes key is hinted only where the layer has notes to list.
        let notes = app
            .run
            .layers
            .get(app.sel.layer)
            .is_some_and(|l| !l.feedback.is_empty());
        if action == Action::Notes && !notes {
            continue;
        }
        if steer || !STEERING.contains(&action) {
            out.push(hint(action, label));
        }
    }
    out.push(hint(Action::FocusNext, "pane"));
    out.push(hint(Action::Help, "help"));
    out.push(hint(Action::Quit, "quit"));
    if app.mode == Mode::Live && app.run.started && app.exit == Exit::No {
        out.push(Available {
            action: Action::Branch,
            label: "branch",
            hinted: false,
        });
    }
    // The lineage view opens from every pane (hinted in the Candidates pane's).
    if !out.iter().any(|a| a.action == Action::Lineage) {
        out.push(Available {
            action: Action::Lineage,
            label: "lineage",
            hinted: false,
        });
    }
    if steer {
        for action in STEERING {
            let listed = out.iter().any(|a| a.action == action);
            if !listed && action != Action::Step {
                out.push(Available {
                    action,
                    label: action.name(),
                    hinted: false,
                });
            }
        }
    }
    out
}

/// Why a steering action does nothing now, or `None` when
/// [`available_actions`] offers it.
pub fn refusal(app: &App, action: Action) -> Option<&'static str> {
    if available_actions(app).iter().any(|a| a.action == action) {
        return None;
    }
    Some(if app.mode == Mode::Replay {
        "read-only replay: [ and ] move through iterations"
    } else if !can_steer(app) {
        "the run has ended"
    } else {
        // Only step waits for a state: the pause.
        "s steps one stage while paused (Space pauses)"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dln::events::{Event, LayerInfo};
    use crate::tui::{KeyMap, Theme};

    fn app(state: RunState) -> App {
        let mut app = App::new(Theme::mono(), KeyMap::default());
        app.apply(&Event::RunStarted {
            run_dir: "r".into(),
            task: "t".into(),
            model: "m".into(),
            layers: vec![LayerInfo {
                index: 0,
                prompt: "p".into(),
                pinned: false,
                trainable: true,
                model: "m".into(),
                templates: Default::default(),
                demos: Vec::new(),
                max_demos: 0,
                demos_pinned: false,
                feedback: Vec::new(),
            }],
            iterations: 2,
            start_iteration: 0,
            train_size: 1,
            dev_size: 1,
            test_size: 0,
        });
        app.apply(&Event::StateChanged { state });
        app
    }

    fn hinted(app: &App) -> Vec<Action> {
        available_actions(app)
            .into_iter()
            .filter(|a| a.hinted)
            .map(|a| a.action)
            .collect()
    }

    fn offers(app: &App, action: Action) -> bool {
        available_actions(app).iter().any(|a| a.action == action)
    }

    #[test]
    fn a_running_run_offers_pause_and_every_steering_action_but_step() {
        let app = app(RunState::Running);
        let all = available_actions(&app);
        assert_eq!(all[0].action, Action::TogglePause);
        assert_eq!(all[0].label, "pause");
        for a in STEERING {
            assert_eq!(offers(&app, a), a != Action::Step, "{a}");
        }
        assert_eq!(
            refusal(&app, Action::Step),
            Some("s steps one stage while paused (Space pauses)")
        );
        // The layers pane hints its own steering actions; the hidden pane's work but are not hinted.
        assert!(hinted(&app).contains(&Action::EditPrompt));
        assert!(!hinted(&app).contains(&Action::AddHidden));
        assert!(offers(&app, Action::AddHidden));
    }

    #[test]
    fn a_paused_run_offers_resume_and_step() {
        let app = app(RunState::Paused);
        let h = hinted(&app);
        assert_eq!(&h[..2], &[Action::TogglePause, Action::Step]);
        assert_eq!(available_actions(&app)[0].label, "resume");
        assert_eq!(refusal(&app, Action::Step), None);
    }

    #[test]
    fn a_pause_asked_for_offers_to_cancel_it() {
        let mut app = app(RunState::Running);
        app.pause_requested = true;
        assert_eq!(available_actions(&app)[0].label, "cancel pause");
        assert!(!offers(&app, Action::Step));
    }

    #[test]
    fn an_ended_run_and_a_replay_offer_no_steering() {
        let mut ended = app(RunState::Finished);
        ended.focus = Pane::Hidden;
        assert!(STEERING.iter().all(|a| !offers(&ended, *a)));
        assert_eq!(refusal(&ended, Action::Pin), Some("the run has ended"));
        assert!(hinted(&ended).contains(&Action::Sort));

        let replay = App::replay(Theme::mono(), KeyMap::default(), Vec::new());
        assert_eq!(
            &hinted(&replay)[..2],
            &[Action::ScrubBack, Action::ScrubForward]
        );
        assert!(STEERING.iter().all(|a| !offers(&replay, *a)));
        assert_eq!(
            refusal(&replay, Action::TogglePause),
            Some("read-only replay: [ and ] move through iterations")
        );
    }

    #[test]
    fn leaving_stops_steering() {
        let mut app = app(RunState::Running);
        app.exit = Exit::Stopping;
        assert!(!offers(&app, Action::Pin));
        assert_eq!(refusal(&app, Action::Pin), Some("the run has ended"));
        assert_eq!(refusal(&app, Action::Quit), None);
    }
}
