//! Pause, step and stop: the driver's own state between stages, as a pure state machine.
//!
//! Commands are received as soon as they arrive, even while a stage runs. A pause inside a
//! stage takes effect at once: its backends are held ([`Effect::Hold`]), so no new decode step
//! or request starts until a resume releases them and the stage carries on where it was. The
//! run is `Pausing` until the backends have finished the step or request they were in
//! ([`Control::settled`]), then `Paused`: a paused run computes nothing. A stop is
//! acknowledged as `Stopping` and ends the run at the stage's boundary; every other command
//! (pin, edit, ...) waits in a queue for that boundary, where the trainer is between stages.
//! Each transition returns its effects as data ([`Effect`]): a state to announce, a command for
//! the trainer, a hold to set or release.

use crate::dln::events::{Command, RunState};

/// Where the driver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlState {
    Running,
    /// Pausing inside a stage: its backends are held but still finishing the decode step or
    /// request they were in.
    Holding,
    /// Paused inside a stage: the stage's backends are held, and quiet, until a resume, a step
    /// or a stop.
    Held,
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
    /// Hold the running stage's backends (`true`) or release them.
    Hold(bool),
    /// Leave the held stage now: a person's command (pin, edit, ...) arrived while it was held,
    /// and waiting for its boundary would mean running it. The iteration starts again with the
    /// command applied (its answered calls come from the call cache).
    Interrupt,
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
            (Command::Resume, Paused | Holding | Held) => self.to(Running, RunState::Running),
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

    /// A command received while a stage runs: a pause holds the stage's backends at once and is
    /// `Pausing` until they are quiet ([`Control::settled`]); a resume or a step releases them
    /// (a step then pauses at the boundary); a stop releases them and is `Stopping`; the rest
    /// waits for [`Control::reach_boundary`], which a held stage reaches at once by being left
    /// ([`Effect::Interrupt`]).
    pub fn during_stage(&mut self, cmd: Command) -> Vec<Effect> {
        use ControlState::*;
        match (cmd, self.state) {
            (Command::Pause, Running | Stepping) => {
                self.state = Holding;
                vec![Effect::Hold(true), Effect::Announce(RunState::Pausing)]
            }
            (Command::Pause, _) => vec![],
            (Command::Resume, Holding | Held) => {
                self.state = Running;
                vec![Effect::Hold(false), Effect::Announce(RunState::Running)]
            }
            (Command::Resume, Stepping) => self.to(Running, RunState::Running),
            (Command::Resume, _) => vec![],
            (Command::Step, Holding | Held) => {
                self.state = Stepping;
                vec![Effect::Hold(false), Effect::Announce(RunState::Running)]
            }
            (Command::Stop, Stopping) => vec![],
            (Command::Stop, Holding | Held) => {
                self.state = Stopping;
                vec![Effect::Hold(false), Effect::Announce(RunState::Stopping)]
            }
            (Command::Stop, _) => self.to(Stopping, RunState::Stopping),
            (other, Holding | Held) => {
                self.queued.push(other);
                vec![Effect::Interrupt]
            }
            (other, _) => {
                self.queued.push(other);
                vec![]
            }
        }
    }

    /// The held stage's backends are quiet: the pause is complete.
    pub fn settled(&mut self) -> Vec<Effect> {
        if self.state == ControlState::Holding {
            return self.to(ControlState::Held, RunState::Paused);
        }
        vec![]
    }

    /// Whether the driver waits for the held backends to be quiet ([`Control::settled`]).
    pub fn is_settling(&self) -> bool {
        self.state == ControlState::Holding
    }

    /// At a stage boundary: applies what arrived during the stage, in order; a stage that ended
    /// while held (it needed no backend) leaves the run paused.
    pub fn reach_boundary(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        match self.state {
            ControlState::Holding => {
                effects.extend(self.to(ControlState::Paused, RunState::Paused))
            }
            ControlState::Held => self.state = ControlState::Paused,
            _ => {}
        }
        for cmd in std::mem::take(&mut self.queued) {
            effects.extend(self.at_boundary(cmd));
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
        let mut c = at(Held);
        assert_eq!(c.stage_failed(), vec![], "already announced paused");
        assert!(c.is_paused());
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
    fn a_pause_during_a_stage_holds_its_backends_at_once_and_is_paused_once_they_are_quiet() {
        for from in [Running, Stepping] {
            let mut c = at(from);
            assert_eq!(
                c.during_stage(Command::Pause),
                vec![Effect::Hold(true), Effect::Announce(RunState::Pausing)]
            );
            assert_eq!(c.during_stage(Command::Pause), vec![], "asked once");
            assert!(c.is_settling());
            assert_eq!(c.settled(), announce(RunState::Paused));
            assert_eq!(c.settled(), vec![], "announced once");
            assert_eq!(c.state(), Held);
            assert_eq!(c.reach_boundary(), vec![], "announced already");
            assert!(c.is_paused());
            assert_eq!(c.stage_done(), vec![]);
        }
        // A stage that ends before its backends were seen quiet is paused at its boundary.
        let mut c = at(Running);
        c.during_stage(Command::Pause);
        assert_eq!(c.reach_boundary(), announce(RunState::Paused));
        assert!(c.is_paused());
        assert_eq!(c.settled(), vec![]);
    }

    #[test]
    fn a_resume_a_step_or_a_stop_releases_a_held_stage() {
        let release = |then: RunState| vec![Effect::Hold(false), Effect::Announce(then)];
        let mut c = at(Holding);
        assert_eq!(c.during_stage(Command::Resume), release(RunState::Running));
        assert_eq!(c.settled(), vec![], "no longer pausing");
        let mut c = at(Held);
        assert_eq!(c.during_stage(Command::Resume), release(RunState::Running));
        assert_eq!(c.reach_boundary(), vec![]);
        assert_eq!(c.stage_done(), vec![]);
        assert_eq!(c.state(), Running);
        let mut c = at(Held);
        assert_eq!(c.during_stage(Command::Step), release(RunState::Running));
        assert_eq!(c.reach_boundary(), vec![]);
        assert_eq!(
            c.stage_done(),
            announce(RunState::Paused),
            "the step ends paused"
        );
        let mut c = at(Held);
        assert_eq!(c.during_stage(Command::Stop), release(RunState::Stopping));
        assert!(c.is_stopping());
    }

    #[test]
    fn a_resume_before_the_boundary_cancels_a_step() {
        let mut c = at(Stepping);
        assert_eq!(c.during_stage(Command::Resume), announce(RunState::Running));
        assert_eq!(c.reach_boundary(), vec![]);
        assert_eq!(c.stage_done(), vec![]);
        assert_eq!(c.state(), Running);
        let mut c = at(Running);
        assert_eq!(c.during_stage(Command::Resume), vec![]);
    }

    #[test]
    fn a_command_while_held_leaves_the_stage_and_applies_at_once_still_paused() {
        let mut c = at(Held);
        assert_eq!(c.during_stage(pin()), vec![Effect::Interrupt]);
        assert_eq!(c.reach_boundary(), vec![Effect::Apply(pin())]);
        assert!(c.is_paused(), "still paused, nothing announced again");
        let mut c = at(Holding);
        assert_eq!(c.during_stage(pin()), vec![Effect::Interrupt]);
        assert_eq!(
            c.reach_boundary(),
            vec![Effect::Announce(RunState::Paused), Effect::Apply(pin())]
        );
        assert!(c.is_paused());
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
        // Held, a step releases the stage and ends paused after it.
        let mut c = at(Held);
        c.during_stage(Command::Step);
        assert_eq!(c.reach_boundary(), vec![]);
        assert_eq!(c.stage_done(), announce(RunState::Paused));
    }

    #[test]
    fn stopping_absorbs_pause_resume_and_step_but_not_edits() {
        for from in [Running, Holding, Held, Stepping] {
            let mut c = at(from);
            let released = matches!(from, Holding | Held);
            let stop = c.during_stage(Command::Stop);
            assert_eq!(stop.contains(&Effect::Hold(false)), released);
            assert_eq!(stop.last(), Some(&Effect::Announce(RunState::Stopping)));
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
