//! Pause, step and stop: the driver's own state between stages, as a pure state machine.
//!
//! Commands are received as soon as they arrive, even while a stage runs, but take effect only
//! at stage boundaries: during a stage a pause shows as `Pausing` (and becomes `Paused` at the
//! boundary), a stop as `Stopping`, and every other command waits in a queue. Each transition
//! returns its effects as data ([`Effect`]): a state to announce, a command for the trainer.

use crate::dln::events::{Command, RunState};

/// Where the driver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlState {
    Running,
    /// A pause asked during a stage, effective at its boundary.
    Pausing,
    /// Waiting for a person between stages.
    Paused,
    /// Running one stage, then pausing.
    Stepping,
    /// The run ends at the next boundary (absorbing: pause, resume and step no longer apply).
    Stopping,
}

/// What a transition asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Tell the clients the run's state (`StateChanged`).
    Announce(RunState),
    /// A command for the trainer (pin, edit, ...), applied now.
    Apply(Command),
}

/// The driver's control state and the commands waiting for the next boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    state: ControlState,
    queued: Vec<Command>,
}

impl Control {
    /// The control at the start of a run, and the state to announce.
    pub fn start(paused: bool) -> (Control, Effect) {
        let (state, shown) = if paused {
            (ControlState::Paused, RunState::Paused)
        } else {
            (ControlState::Running, RunState::Running)
        };
        let control = Control {
            state,
            queued: Vec::new(),
        };
        (control, Effect::Announce(shown))
    }

    pub fn state(&self) -> ControlState {
        self.state
    }

    /// The driver waits for a command before the next stage.
    pub fn is_paused(&self) -> bool {
        self.state == ControlState::Paused
    }

    /// The run ends before the next stage.
    pub fn is_stopping(&self) -> bool {
        self.state == ControlState::Stopping
    }

    fn to(&mut self, state: ControlState, shown: RunState) -> Vec<Effect> {
        self.state = state;
        vec![Effect::Announce(shown)]
    }

    /// A command received at a stage boundary: applied now.
    pub fn at_boundary(&mut self, cmd: Command) -> Vec<Effect> {
        use ControlState::*;
        match (cmd, self.state) {
            (Command::Pause | Command::Resume | Command::Step, Stopping) => vec![],
            (Command::Pause, Paused) => vec![],
            (Command::Pause, _) => self.to(Paused, RunState::Paused),
            (Command::Resume, Paused | Pausing) => self.to(Running, RunState::Running),
            (Command::Resume, _) => {
                self.state = Running;
                vec![]
            }
            (Command::Step, _) => self.to(Stepping, RunState::Running),
            (Command::Stop, Stopping) => vec![],
            (Command::Stop, _) => self.to(Stopping, RunState::Stopping),
            (other, _) => vec![Effect::Apply(other)],
        }
    }

    /// A command received while a stage runs: a pause, a resume cancelling a pause or a step,
    /// and a stop are acknowledged now; the rest waits for [`Control::reach_boundary`].
    pub fn during_stage(&mut self, cmd: Command) -> Vec<Effect> {
        use ControlState::*;
        match (cmd, self.state) {
            (Command::Pause, Running | Stepping) => self.to(Pausing, RunState::Pausing),
            (Command::Pause, _) => vec![],
            (Command::Resume, Pausing | Stepping) => self.to(Running, RunState::Running),
            (Command::Resume, _) => vec![],
            (Command::Stop, Stopping) => vec![],
            (Command::Stop, _) => self.to(Stopping, RunState::Stopping),
            (other, _) => {
                self.queued.push(other);
                vec![]
            }
        }
    }

    /// At a stage boundary: applies what arrived during the stage, in order, then a pending
    /// pause.
    pub fn reach_boundary(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        for cmd in std::mem::take(&mut self.queued) {
            effects.extend(self.at_boundary(cmd));
        }
        if self.state == ControlState::Pausing {
            effects.extend(self.to(ControlState::Paused, RunState::Paused));
        }
        effects
    }

    /// A stage ended (after its boundary): a step pauses.
    pub fn stage_done(&mut self) -> Vec<Effect> {
        if self.state == ControlState::Stepping {
            return self.to(ControlState::Paused, RunState::Paused);
        }
        vec![]
    }

    /// A stage failed in a way worth retrying (its server is down): what arrived during it
    /// applies, and the run pauses, unless a stop was asked, until a person resumes it.
    pub fn stage_failed(&mut self) -> Vec<Effect> {
        let mut effects = self.reach_boundary();
        if !matches!(self.state, ControlState::Stopping | ControlState::Paused) {
            effects.extend(self.to(ControlState::Paused, RunState::Paused));
        }
        effects
    }

    /// Nobody can send commands any more: a paused run carries on.
    pub fn commands_closed(&mut self) {
        if self.state == ControlState::Paused {
            self.state = ControlState::Running;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ControlState::*;

    fn announce(s: RunState) -> Vec<Effect> {
        vec![Effect::Announce(s)]
    }

    fn pin() -> Command {
        Command::Pin {
            layer: 0,
            prompt: "p".into(),
        }
    }

    fn at(state: ControlState) -> Control {
        Control {
            state,
            queued: Vec::new(),
        }
    }

    #[test]
    fn a_failed_stage_pauses_after_applying_what_arrived_unless_stopping() {
        let mut c = at(Running);
        assert_eq!(c.during_stage(pin()), vec![]);
        assert_eq!(
            c.stage_failed(),
            vec![Effect::Apply(pin()), Effect::Announce(RunState::Paused)]
        );
        assert!(c.is_paused());
        let mut c = at(Pausing);
        assert_eq!(c.stage_failed(), announce(RunState::Paused), "paused once");
        let mut c = at(Stepping);
        assert_eq!(c.stage_failed(), announce(RunState::Paused));
        let mut c = at(Stopping);
        assert_eq!(
            c.stage_failed(),
            vec![],
            "a stop asked during the stage still stops"
        );
        assert!(c.is_stopping());
    }

    #[test]
    fn a_run_starts_running_or_paused() {
        let (c, e) = Control::start(true);
        assert!(c.is_paused());
        assert_eq!(e, Effect::Announce(RunState::Paused));
        let (c, e) = Control::start(false);
        assert_eq!(c.state(), Running);
        assert_eq!(e, Effect::Announce(RunState::Running));
    }

    #[test]
    fn at_a_boundary_pause_resume_and_step_apply_at_once() {
        let mut c = at(Running);
        assert_eq!(c.at_boundary(Command::Pause), announce(RunState::Paused));
        assert_eq!(c.at_boundary(Command::Pause), vec![], "already paused");
        assert_eq!(c.at_boundary(Command::Resume), announce(RunState::Running));
        assert_eq!(c.at_boundary(Command::Resume), vec![], "already running");
        assert_eq!(c.at_boundary(Command::Step), announce(RunState::Running));
        assert_eq!(c.state(), Stepping);
        assert_eq!(
            c.at_boundary(Command::Resume),
            vec![],
            "a resume cancels the step quietly"
        );
        assert_eq!(c.state(), Running);
        assert_eq!(c.at_boundary(pin()), vec![Effect::Apply(pin())]);
    }

    #[test]
    fn a_step_runs_one_stage_then_pauses() {
        let mut c = at(Paused);
        assert_eq!(c.at_boundary(Command::Step), announce(RunState::Running));
        assert!(!c.is_paused());
        assert_eq!(c.reach_boundary(), vec![]);
        assert_eq!(c.stage_done(), announce(RunState::Paused));
        assert!(c.is_paused());
        assert_eq!(c.stage_done(), vec![], "only once");
    }

    #[test]
    fn a_pause_during_a_stage_is_pausing_until_the_boundary() {
        let mut c = at(Running);
        assert_eq!(c.during_stage(Command::Pause), announce(RunState::Pausing));
        assert_eq!(c.during_stage(Command::Pause), vec![], "asked once");
        assert!(!c.is_paused());
        assert_eq!(c.reach_boundary(), announce(RunState::Paused));
        assert!(c.is_paused());
        assert_eq!(c.stage_done(), vec![]);
    }

    #[test]
    fn a_resume_before_the_boundary_cancels_a_pause_or_a_step() {
        for from in [Pausing, Stepping] {
            let mut c = at(from);
            assert_eq!(c.during_stage(Command::Resume), announce(RunState::Running));
            assert_eq!(c.reach_boundary(), vec![]);
            assert_eq!(c.stage_done(), vec![]);
            assert_eq!(c.state(), Running);
        }
        let mut c = at(Running);
        assert_eq!(c.during_stage(Command::Resume), vec![]);
    }

    #[test]
    fn other_commands_wait_for_the_boundary_in_order() {
        let mut c = at(Running);
        let unpin = Command::Unpin { layer: 0 };
        assert_eq!(c.during_stage(pin()), vec![]);
        assert_eq!(c.during_stage(unpin.clone()), vec![]);
        assert_eq!(
            c.reach_boundary(),
            vec![Effect::Apply(pin()), Effect::Apply(unpin)]
        );
        assert_eq!(c.reach_boundary(), vec![], "applied once");
    }

    #[test]
    fn a_step_asked_during_a_stage_pauses_after_it() {
        let mut c = at(Running);
        assert_eq!(c.during_stage(Command::Step), vec![]);
        assert_eq!(c.reach_boundary(), announce(RunState::Running));
        assert_eq!(c.stage_done(), announce(RunState::Paused));
        // While pausing, a step still ends paused (its stage is the one running).
        let mut c = at(Pausing);
        c.during_stage(Command::Step);
        assert_eq!(c.reach_boundary(), announce(RunState::Running));
        assert_eq!(c.stage_done(), announce(RunState::Paused));
    }

    #[test]
    fn stopping_absorbs_pause_resume_and_step_but_not_edits() {
        for from in [Running, Pausing, Stepping] {
            let mut c = at(from);
            assert_eq!(c.during_stage(Command::Stop), announce(RunState::Stopping));
            assert_eq!(c.during_stage(Command::Stop), vec![]);
            for cmd in [Command::Pause, Command::Resume, Command::Step] {
                assert_eq!(c.during_stage(cmd.clone()), vec![]);
                assert_eq!(c.at_boundary(cmd), vec![]);
            }
            c.during_stage(pin());
            assert_eq!(c.reach_boundary(), vec![Effect::Apply(pin())]);
            assert_eq!(c.stage_done(), vec![]);
            assert!(c.is_stopping());
        }
        let mut c = at(Paused);
        assert_eq!(c.at_boundary(Command::Stop), announce(RunState::Stopping));
        assert!(!c.is_paused());
    }

    #[test]
    fn a_paused_run_without_anyone_to_resume_it_carries_on() {
        let mut c = at(Paused);
        c.commands_closed();
        assert_eq!(c.state(), Running);
        let mut c = at(Stopping);
        c.commands_closed();
        assert!(c.is_stopping());
    }
}
