//! `proto::proc` served over a [`Supervisor`] and the side effects of [`Effects`].
//!
//! The supervisor decides; the [`Effects`] carry its [`Action`]s out (build or tear an
//! instance down, tell `memory` and `naming`, print). [`crate::serve::Loop`] does what the
//! trait cannot: after a successful `exit` or a fault it gives no reply (the caller is gone),
//! and it calls [`ProcServer::tick`] after every message and when the timer thread wakes it.

use alloc::string::String;

use proto::memory::Usage;
use proto::proc::{self as api, CapInfo, ComponentInfo, ComponentUsage};
use proto::{ComponentId, Name};
use sysdesc::System;

use crate::{Action, Error as SupError, FaultKind, State, Supervisor};

/// What the supervisor's actions need from the outside world.
pub trait Effects {
    /// Builds and starts instance `generation` of `id` (never a fundamental component).
    ///
    /// Errors: why it could not, for the report; whatever was built is taken back by the
    /// memory release that follows.
    fn start(&mut self, id: ComponentId, generation: u32) -> Result<(), String>;
    /// Whether proc built the running instance of `id` and so can tear it down.
    fn can_destroy(&self, id: ComponentId) -> bool;
    /// Tears the running instance of `id` down (its threads, address space, capabilities).
    fn destroy(&mut self, id: ComponentId);
    /// Asks `memory` to take back everything `id` holds.
    fn release_memory(&mut self, id: ComponentId);
    /// Asks `naming` to forget every service `id` registered.
    fn withdraw(&mut self, id: ComponentId);
    /// Prints a line on the console.
    fn report(&mut self, line: &str);
    /// Milliseconds since proc started.
    fn now_ms(&self) -> u64;
    /// Stops the whole system with `status` (through the root task). Returns only if
    /// proc has no way to do that.
    fn halt(&mut self, status: u32);
    /// Component `id`'s accounting as `memory` reports it (`usage_of`), or `None` if proc
    /// has no memory service or memory refused.
    fn usage_of(&mut self, id: ComponentId) -> Option<Usage>;
}

/// The proc service: a [`Supervisor`] served as `proto::proc`.
#[derive(Debug)]
pub struct ProcServer<E: Effects> {
    supervisor: Supervisor,
    system: System,
    effects: E,
}

/// The `State` `list` reports for a supervisor state.
pub fn api_state(state: State) -> api::State {
    match state {
        State::NotStarted => api::State::Idle,
        State::Starting | State::Running => api::State::Running,
        State::Restarting { .. } => api::State::Restarting,
        State::Exited(_) | State::Stopped => api::State::Exited,
        State::Faulted { .. } => api::State::Failed,
    }
}

impl<E: Effects> ProcServer<E> {
    /// A server for `system`; every component starts not started (see [`Self::adopt_all`]).
    pub fn new(system: System, effects: E) -> ProcServer<E> {
        ProcServer {
            supervisor: Supervisor::new(&system),
            system,
            effects,
        }
    }

    /// Adopts the fundamental services (the root task started them) and starts every other
    /// component, in description order.
    pub fn start_all(&mut self) {
        let now = self.effects.now_ms();
        for i in 0..self.system.components.len() {
            let id = ComponentId(u16::try_from(i).unwrap_or(u16::MAX));
            let c = &self.system.components[i];
            if c.fundamental {
                let _ = self.supervisor.adopt(id, now);
            } else if let Ok(who) = self.supervisor.spawn(&c.name.clone()) {
                self.perform(alloc::vec![Action::Start {
                    id,
                    generation: who.generation
                }]);
            }
        }
    }

    /// Starts the restarts that are due. Returns when the next one is due, if any.
    pub fn tick(&mut self) -> Option<u64> {
        let now = self.effects.now_ms();
        let actions = self.supervisor.tick(now);
        self.perform(actions);
        self.supervisor.next_deadline()
    }

    /// Event: component `id`'s thread faulted (`kind` at `addr`): reports it in one line,
    /// tears the instance down and applies its restart policy. Faults of components proc did
    /// not build, or that are not running, are reported and otherwise ignored.
    pub fn fault(&mut self, id: ComponentId, kind: FaultKind, addr: u64) {
        let now = self.effects.now_ms();
        match self.supervisor.faulted(id, kind, addr, now) {
            Ok(actions) => {
                if self.effects.can_destroy(id) {
                    self.effects.destroy(id);
                }
                self.perform(actions);
            }
            Err(e) => {
                let name = self.system.get(id).map_or("?", |c| c.name.as_str());
                self.effects.report(&alloc::format!(
                    "{} (ignored: {e:?})",
                    crate::fault_line(name, kind, addr)
                ));
            }
        }
    }

    /// Event: the instance of `id` ended by itself with `status` (it raised
    /// `rt::startinfo::ending::EXIT`): it is torn down, reported, and not restarted. An event
    /// for a component that is not running is reported and ignored.
    pub fn ended(&mut self, id: ComponentId, status: u32) {
        if let Err(e) = self.end(id, status) {
            let name = self.system.get(id).map_or("?", |c| c.name.as_str());
            self.effects.report(&alloc::format!(
                "exit: component={name} status={status} (ignored: {e:?})"
            ));
        }
    }

    /// The exit of `id` with `status`: tear down, then the supervisor's actions.
    fn end(&mut self, id: ComponentId, status: u32) -> Result<(), api::Error> {
        if self.system.get(id).is_none_or(|c| c.fundamental) {
            return Err(api::Error::Denied);
        }
        let now = self.effects.now_ms();
        let actions = self
            .supervisor
            .exited(id, status, now)
            .map_err(|_| api::Error::Denied)?;
        self.perform(alloc::vec![Action::Destroy(id)]);
        self.perform(actions);
        Ok(())
    }

    /// Records every component as running in generation 1, as if the root task had started
    /// them all (for tests of the other operations).
    pub fn adopt_all(&mut self) {
        let now = self.effects.now_ms();
        for i in 0..self.system.components.len() {
            let id = ComponentId(u16::try_from(i).unwrap_or(u16::MAX));
            let _ = self.supervisor.adopt(id, now);
        }
    }

    /// The supervisor.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// The side effects.
    pub fn effects(&self) -> &E {
        &self.effects
    }

    /// The side effects, to change.
    pub fn effects_mut(&mut self) -> &mut E {
        &mut self.effects
    }

    /// Carries out `actions` in order, and those they lead to (a start that fails is
    /// cleaned up).
    pub fn perform(&mut self, actions: alloc::vec::Vec<Action>) {
        let mut queue: alloc::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Destroy(id) => {
                    if self.effects.can_destroy(id) {
                        self.effects.destroy(id);
                    }
                }
                Action::ReleaseMemory(id) => self.effects.release_memory(id),
                Action::Unregister(id) => self.effects.withdraw(id),
                Action::Report(line) => self.effects.report(&line),
                Action::Start { id, generation } => match self.effects.start(id, generation) {
                    Ok(()) => {
                        let now = self.effects.now_ms();
                        let _ = self.supervisor.started(id, now);
                    }
                    Err(why) => {
                        if let Ok(more) = self.supervisor.start_failed(id, &why) {
                            queue.extend(more);
                        }
                    }
                },
                // `wait` does not block, so nobody waits; the binary's loop asks
                // `tick` for the next deadline after every message.
                Action::WakeWaiters { .. } | Action::Restart { .. } => {}
            }
        }
    }

    fn known(&self, id: ComponentId) -> Result<(), api::Error> {
        self.system.get(id).map(|_| ()).ok_or(api::Error::NotFound)
    }
}

impl<E: Effects> api::Server for ProcServer<E> {
    fn spawn(&mut self, _badge: u64, name: Name) -> Result<ComponentId, api::Error> {
        let id = self
            .system
            .component_id(&name)
            .ok_or(api::Error::NotFound)?;
        if self.system.components[id.index()].fundamental {
            return Err(api::Error::Denied);
        }
        let who = self.supervisor.spawn(&name).map_err(|e| match e {
            SupError::AlreadyRunning => api::Error::AlreadyRunning,
            SupError::Fundamental => api::Error::Denied,
            _ => api::Error::NotFound,
        })?;
        self.perform(alloc::vec![Action::Start {
            id,
            generation: who.generation
        }]);
        match self.supervisor.state(id) {
            Some(State::Running) => Ok(id),
            _ => Err(api::Error::OutOfMemory),
        }
    }

    fn exit(&mut self, badge: u64, status: u64) -> Result<(), api::Error> {
        let id = proto::client(badge)
            .filter(|id| self.system.get(*id).is_some())
            .ok_or(api::Error::Denied)?;
        self.end(id, u32::try_from(status).unwrap_or(u32::MAX))
    }

    fn wait(&mut self, _badge: u64, id: ComponentId) -> Result<u64, api::Error> {
        self.known(id)?;
        match self.supervisor.state(id) {
            Some(State::Exited(status)) => Ok(u64::from(status)),
            Some(s) if s.is_live() => Err(api::Error::StillRunning),
            _ => Err(api::Error::NotRunning),
        }
    }

    fn kill(&mut self, _badge: u64, id: ComponentId) -> Result<(), api::Error> {
        self.known(id)?;
        if self.system.components[id.index()].fundamental {
            return Err(api::Error::Denied);
        }
        let live = self.supervisor.state(id).is_some_and(|s| s.is_live());
        if !live {
            return Err(api::Error::NotRunning);
        }
        if matches!(
            self.supervisor.state(id),
            Some(State::Running | State::Starting)
        ) && !self.effects.can_destroy(id)
        {
            // Built by the root task: proc holds none of its capabilities.
            return Err(api::Error::Denied);
        }
        let now = self.effects.now_ms();
        let actions = self.supervisor.kill(id, now).map_err(|e| match e {
            SupError::Fundamental => api::Error::Denied,
            SupError::NotRunning => api::Error::NotRunning,
            _ => api::Error::NotFound,
        })?;
        self.perform(actions);
        Ok(())
    }

    fn list(&mut self, _badge: u64, index: u32) -> Result<ComponentInfo, api::Error> {
        let rows = self.supervisor.list();
        let row = rows
            .get(usize::try_from(index).unwrap_or(usize::MAX))
            .ok_or(api::Error::NoEntry)?;
        Ok(ComponentInfo {
            id: row.id,
            name: Name::new(row.name).map_err(|_| api::Error::NoEntry)?,
            state: api_state(row.state),
            restarts: row.restarts,
        })
    }

    fn usage(&mut self, badge: u64, index: u32) -> Result<ComponentUsage, api::Error> {
        let info = self.list(badge, index)?;
        let c = self.system.get(info.id).ok_or(api::Error::NoEntry)?;
        let (budget, heap, stack) = (c.memory, c.heap_bytes(), c.stack_bytes());
        let usage = self.effects.usage_of(info.id);
        Ok(ComponentUsage {
            id: info.id,
            name: info.name,
            state: info.state,
            measured: usage.is_some(),
            used: usage.map_or(0, |u| u.used),
            budget,
            heap,
            stack,
        })
    }

    fn caps(&mut self, _badge: u64, id: ComponentId, index: u32) -> Result<CapInfo, api::Error> {
        self.known(id)?;
        // proc lists what it placed in the CNode of an instance it built; it holds no view
        // of the CSpaces the root task built, nor of an instance that is gone.
        if !self.effects.can_destroy(id) {
            return Err(api::Error::NoEntry);
        }
        crate::grants::granted(&self.system, id)
            .and_then(|caps| caps.get(usize::try_from(index).ok()?).cloned())
            .ok_or(api::Error::NoEntry)
    }

    fn halt(&mut self, badge: u64, status: u32) -> Result<(), api::Error> {
        let caller = proto::client(badge)
            .and_then(|id| self.system.get(id))
            .map(|c| c.name.clone());
        self.effects.report(&alloc::format!(
            "halt (status {status}) requested by {}",
            caller.as_deref().unwrap_or("?")
        ));
        self.effects.halt(status);
        Err(api::Error::Denied)
    }
}

/// A `ps` listing, one line per component.
pub fn ps(supervisor: &Supervisor) -> String {
    let mut out = String::new();
    for row in supervisor.list() {
        out.push_str(&alloc::format!("{row}\n"));
    }
    out
}
