//! The component table and the transitions between states.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use sysdesc::{ComponentId, RestartPolicy, System};

use crate::state::{fault_line, Action, FaultKind, Identity, Outcome, Row, State};
use crate::{Error, MAX_BACKOFF_MS, STABLE_MS};

#[derive(Debug)]
struct Entry {
    name: String,
    fundamental: bool,
    policy: RestartPolicy,
    state: State,
    restarts: u32,
    /// Restarts in the current row of crashes.
    streak: u32,
    generation: u32,
    started_at: Option<u64>,
    waiters: Vec<u64>,
    last: Option<Outcome>,
}

/// The supervisor: one entry per component of the system description.
#[derive(Debug)]
pub struct Supervisor {
    entries: Vec<Entry>,
}

impl Supervisor {
    /// A table with every component of `system`, all [`State::NotStarted`] in generation 0.
    pub fn new(system: &System) -> Supervisor {
        let entries = system
            .components
            .iter()
            .map(|c| Entry {
                name: c.name.clone(),
                fundamental: c.fundamental,
                policy: c.restart,
                state: State::NotStarted,
                restarts: 0,
                streak: 0,
                generation: 0,
                started_at: None,
                waiters: Vec::new(),
                last: None,
            })
            .collect();
        Supervisor { entries }
    }

    /// Records that `id` was started outside proc (root starts the fundamental components) and
    /// runs now, in generation 1.
    ///
    /// Errors: [`Error::UnknownComponent`]; [`Error::BadState`] unless it is not started.
    pub fn adopt(&mut self, id: ComponentId, now_ms: u64) -> Result<Identity, Error> {
        let e = self.entry_mut(id)?;
        if e.state != State::NotStarted {
            return Err(Error::BadState);
        }
        e.generation += 1;
        e.state = State::Running;
        e.started_at = Some(now_ms);
        Ok(Identity {
            id,
            generation: e.generation,
        })
    }

    /// Starts the component called `name`: it moves to [`State::Starting`] in a new
    /// generation, which the binary creates and then reports with [`Supervisor::started`].
    /// A manual start also clears the row of crashes.
    ///
    /// Errors: [`Error::UnknownComponent`] if the description has no such component;
    /// [`Error::Fundamental`] for a fundamental component; [`Error::AlreadyRunning`] if it is
    /// starting, running or waiting to restart.
    pub fn spawn(&mut self, name: &str) -> Result<Identity, Error> {
        let index = self
            .entries
            .iter()
            .position(|e| e.name == name)
            .ok_or(Error::UnknownComponent)?;
        let id = ComponentId(u16::try_from(index).map_err(|_| Error::UnknownComponent)?);
        let e = &mut self.entries[index];
        if e.fundamental {
            return Err(Error::Fundamental);
        }
        if e.state.is_live() {
            return Err(Error::AlreadyRunning);
        }
        e.streak = 0;
        Ok(e.begin(id))
    }

    /// Event: the instance of `id` being started now runs.
    ///
    /// Errors: [`Error::UnknownComponent`]; [`Error::BadState`] unless it is starting.
    pub fn started(&mut self, id: ComponentId, now_ms: u64) -> Result<(), Error> {
        let e = self.entry_mut(id)?;
        if e.state != State::Starting {
            return Err(Error::BadState);
        }
        e.state = State::Running;
        e.started_at = Some(now_ms);
        Ok(())
    }

    /// Event: `id` exited with `status`. It is not restarted. Returns the memory release,
    /// naming clean-up, waiter wake-up and report.
    ///
    /// Errors: [`Error::UnknownComponent`]; [`Error::NotRunning`] unless it is starting or
    /// running.
    pub fn exited(
        &mut self,
        id: ComponentId,
        status: u32,
        _now_ms: u64,
    ) -> Result<Vec<Action>, Error> {
        let e = self.entry_mut(id)?;
        if !matches!(e.state, State::Starting | State::Running) {
            return Err(Error::NotRunning);
        }
        e.state = State::Exited(status);
        let mut actions = vec![Action::Report(format!(
            "exit: component={} status={status}",
            e.name
        ))];
        e.end(id, Outcome::Exited(status), &mut actions);
        Ok(actions)
    }

    /// Event: `id` faulted with `kind` at `addr`. Returns the fault report, the clean-up of
    /// the dead instance, and what its policy says: [`Action::Restart`] after the back-off,
    /// or a report that it stays down ([`State::Faulted`] for policy `Never` and fundamental
    /// components, [`State::Stopped`] once `max` restarts in a row are used up).
    ///
    /// Errors: [`Error::UnknownComponent`]; [`Error::NotRunning`] unless it is starting or
    /// running.
    pub fn faulted(
        &mut self,
        id: ComponentId,
        kind: FaultKind,
        addr: u64,
        now_ms: u64,
    ) -> Result<Vec<Action>, Error> {
        let e = self.entry_mut(id)?;
        if !matches!(e.state, State::Starting | State::Running) {
            return Err(Error::NotRunning);
        }
        if e.started_at
            .is_some_and(|t| now_ms.saturating_sub(t) >= STABLE_MS)
        {
            e.streak = 0;
        }
        let mut actions = vec![Action::Report(fault_line(&e.name, kind, addr))];
        e.end(id, Outcome::Faulted { kind, addr }, &mut actions);
        e.state = State::Faulted { kind, addr };
        match e.policy {
            _ if e.fundamental => actions.push(Action::Report(format!(
                "stopped: component={} is fundamental and is not restarted",
                e.name
            ))),
            RestartPolicy::Never => {}
            RestartPolicy::Always { max, backoff_ms } if e.streak < max => {
                let base = u64::from(backoff_ms);
                let delay = base
                    .saturating_mul(1u64 << e.streak.min(32))
                    .min(MAX_BACKOFF_MS.max(base));
                let at_ms = now_ms.saturating_add(delay);
                e.streak += 1;
                e.restarts += 1;
                e.state = State::Restarting { at_ms };
                actions.push(Action::Restart { id, at_ms });
            }
            RestartPolicy::Always { max, .. } => {
                e.state = State::Stopped;
                actions.push(Action::Report(format!(
                    "stopped: component={} after {max} restarts in a row",
                    e.name
                )));
            }
        }
        Ok(actions)
    }

    /// Event: `id` was killed (its instance is already gone, or it was waiting to restart and
    /// the restart is cancelled). It is [`State::Stopped`] and not restarted.
    ///
    /// Errors: [`Error::UnknownComponent`]; [`Error::NotRunning`] unless it is starting,
    /// running or waiting to restart.
    pub fn killed(&mut self, id: ComponentId, _now_ms: u64) -> Result<Vec<Action>, Error> {
        let e = self.entry_mut(id)?;
        let mut actions = Vec::new();
        match e.state {
            State::Starting | State::Running => e.end(id, Outcome::Killed, &mut actions),
            // The faulted instance was already cleaned up; only waiters for the next one wait.
            State::Restarting { .. } => e.wake(id, Outcome::Killed, &mut actions),
            _ => return Err(Error::NotRunning),
        }
        e.last = Some(Outcome::Killed);
        e.state = State::Stopped;
        actions.push(Action::Report(format!("killed: component={}", e.name)));
        Ok(actions)
    }

    /// Kills `id` on request: stop now, then its policy applies. A starting or running
    /// instance is destroyed ([`Action::Destroy`], then the clean-up of an ended instance);
    /// under policy `Always` it is restarted after its base `backoff_ms` (the restart counts
    /// in `restarts` but not in the row of crashes: a kill is not a crash), under `Never` it
    /// stays [`State::Stopped`]. Killing a component that waits to restart cancels the
    /// restart ([`Supervisor::killed`]): kill it twice to stop it for good.
    ///
    /// Errors: [`Error::UnknownComponent`]; [`Error::Fundamental`] for a fundamental
    /// component; [`Error::NotRunning`] unless it is starting, running or waiting to restart.
    pub fn kill(&mut self, id: ComponentId, now_ms: u64) -> Result<Vec<Action>, Error> {
        let e = self.entry_mut(id)?;
        if e.fundamental {
            return Err(Error::Fundamental);
        }
        if !matches!(e.state, State::Starting | State::Running) {
            return self.killed(id, now_ms);
        }
        let mut actions = vec![Action::Destroy(id)];
        e.end(id, Outcome::Killed, &mut actions);
        e.last = Some(Outcome::Killed);
        match e.policy {
            RestartPolicy::Always { backoff_ms, .. } => {
                let at_ms = now_ms.saturating_add(u64::from(backoff_ms));
                e.restarts += 1;
                e.state = State::Restarting { at_ms };
                actions.push(Action::Report(format!(
                    "killed: component={} (restart in {backoff_ms} ms)",
                    e.name
                )));
                actions.push(Action::Restart { id, at_ms });
            }
            RestartPolicy::Never => {
                e.state = State::Stopped;
                actions.push(Action::Report(format!("killed: component={}", e.name)));
            }
        }
        Ok(actions)
    }

    /// Event: the instance of `id` being started could not be built (no memory, a bad
    /// binary). It is [`State::Stopped`]; what it was given is cleaned up.
    ///
    /// Errors: [`Error::UnknownComponent`]; [`Error::BadState`] unless it is starting.
    pub fn start_failed(&mut self, id: ComponentId, why: &str) -> Result<Vec<Action>, Error> {
        let e = self.entry_mut(id)?;
        if e.state != State::Starting {
            return Err(Error::BadState);
        }
        let mut actions = vec![Action::Report(format!(
            "cannot start: component={} ({why})",
            e.name
        ))];
        e.end(id, Outcome::Killed, &mut actions);
        e.state = State::Stopped;
        Ok(actions)
    }

    /// Registers `waiter` (an opaque handle, say a reply capability) to be woken with
    /// [`Action::WakeWaiters`] when the current or next instance of `id` ends. Returns
    /// `Some(outcome)` at once, registering nothing, if it has already ended.
    ///
    /// Errors: [`Error::UnknownComponent`]; [`Error::NotRunning`] if it was never started.
    pub fn wait(&mut self, id: ComponentId, waiter: u64) -> Result<Option<Outcome>, Error> {
        let e = self.entry_mut(id)?;
        if e.state.is_live() {
            e.waiters.push(waiter);
            return Ok(None);
        }
        e.last.map(Some).ok_or(Error::NotRunning)
    }

    /// Starts every restart due at `now_ms`: each moves to [`State::Starting`] in a new
    /// generation, with one [`Action::Start`].
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        for (index, e) in self.entries.iter_mut().enumerate() {
            if matches!(e.state, State::Restarting { at_ms } if at_ms <= now_ms) {
                let id = ComponentId(u16::try_from(index).unwrap_or(u16::MAX));
                let who = e.begin(id);
                actions.push(Action::Start {
                    id,
                    generation: who.generation,
                });
            }
        }
        actions
    }

    /// When the earliest scheduled restart is due, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter_map(|e| match e.state {
                State::Restarting { at_ms } => Some(at_ms),
                _ => None,
            })
            .min()
    }

    /// The current identity of `id`.
    ///
    /// Errors: [`Error::UnknownComponent`].
    pub fn identity(&self, id: ComponentId) -> Result<Identity, Error> {
        let e = self.entry(id)?;
        Ok(Identity {
            id,
            generation: e.generation,
        })
    }

    /// Whether `who` still names the running instance.
    ///
    /// Errors: [`Error::UnknownComponent`]; [`Error::ServerRestarted`] if the component has
    /// been (re)started since `who` was taken; [`Error::NotRunning`] if that instance is not
    /// running.
    pub fn check_identity(&self, who: Identity) -> Result<(), Error> {
        let e = self.entry(who.id)?;
        if e.generation != who.generation {
            return Err(Error::ServerRestarted);
        }
        if e.state != State::Running {
            return Err(Error::NotRunning);
        }
        Ok(())
    }

    /// The state of `id`, `None` for an unknown id.
    pub fn state(&self, id: ComponentId) -> Option<State> {
        self.entry(id).ok().map(|e| e.state)
    }

    /// One row per component, in description order, for `ps`.
    pub fn list(&self) -> Vec<Row<'_>> {
        self.entries
            .iter()
            .enumerate()
            .map(|(index, e)| Row {
                id: ComponentId(u16::try_from(index).unwrap_or(u16::MAX)),
                name: &e.name,
                state: e.state,
                restarts: e.restarts,
                generation: e.generation,
            })
            .collect()
    }

    /// Checks the table's invariants: only live components hold waiters, a restart is pending
    /// only under policy `Always` and within `max`, fundamental components never restart, and
    /// a component that has run has a generation. For tests and debugging.
    ///
    /// Errors: a description of the first broken invariant.
    pub fn check(&self) -> Result<(), &'static str> {
        for e in &self.entries {
            if !e.state.is_live() && !e.waiters.is_empty() {
                return Err("an ended component holds waiters");
            }
            if (e.state == State::NotStarted) != (e.generation == 0) {
                return Err("generation disagrees with having started");
            }
            if e.fundamental && e.restarts != 0 {
                return Err("a fundamental component was restarted");
            }
            match e.policy {
                RestartPolicy::Never if e.restarts != 0 => {
                    return Err("a never-restart component was restarted")
                }
                RestartPolicy::Always { max, .. } if e.streak > max => {
                    return Err("more restarts in a row than allowed")
                }
                _ => {}
            }
            if e.restarts > e.generation {
                return Err("more restarts than starts");
            }
        }
        Ok(())
    }

    fn entry(&self, id: ComponentId) -> Result<&Entry, Error> {
        self.entries.get(id.index()).ok_or(Error::UnknownComponent)
    }

    fn entry_mut(&mut self, id: ComponentId) -> Result<&mut Entry, Error> {
        self.entries
            .get_mut(id.index())
            .ok_or(Error::UnknownComponent)
    }
}

impl Entry {
    /// Moves to `Starting` in a new generation.
    fn begin(&mut self, id: ComponentId) -> Identity {
        self.generation = self.generation.wrapping_add(1).max(1);
        self.state = State::Starting;
        self.started_at = None;
        Identity {
            id,
            generation: self.generation,
        }
    }

    /// The clean-up after an instance ends: memory, naming, waiters.
    fn end(&mut self, id: ComponentId, outcome: Outcome, actions: &mut Vec<Action>) {
        self.started_at = None;
        actions.push(Action::ReleaseMemory(id));
        actions.push(Action::Unregister(id));
        self.wake(id, outcome, actions);
    }

    fn wake(&mut self, id: ComponentId, outcome: Outcome, actions: &mut Vec<Action>) {
        self.last = Some(outcome);
        if !self.waiters.is_empty() {
            actions.push(Action::WakeWaiters {
                id,
                status: outcome,
                waiters: core::mem::take(&mut self.waiters),
            });
        }
    }
}
