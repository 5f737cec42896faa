//! [`Effects`] over proc's peers: the instance builder, `memory`, `naming` and the root task's
//! control endpoint, with the console and the clock behind [`Platform`].
//!
//! The binary supplies the seL4 parts: an [`Instances`] builder (retypes, maps, starts
//! threads), endpoint transports to the peers, and a [`Platform`] that prints and reads the
//! TSC. What to print and what to ask whom, and what happens when a peer or the builder is
//! missing, is here.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use proto::control::ControlClient;
use proto::memory::supervise::SuperviseClient;
use proto::memory::{MemoryClient, Usage};
use proto::naming::NamingClient;
use proto::{ComponentId, Transport};

use crate::Effects;

/// Why a start is refused when proc has no builder.
pub const NO_BUILDER: &str = "proc cannot build components (no memory service or grants)";

/// The console and the clock.
pub trait Platform {
    /// Prints `line` on the console.
    fn print(&mut self, line: &str);
    /// Milliseconds since proc started.
    fn now_ms(&self) -> u64;
}

/// What builds and stops the instances proc starts (in the binary, over seL4).
pub trait Instances {
    /// Builds and starts instance `generation` of `id`.
    ///
    /// Errors: why not, for the report; what was built stays recorded until
    /// [`Instances::forget`].
    fn start(&mut self, id: ComponentId, generation: u32) -> Result<(), String>;
    /// Whether an instance of `id` that proc built may be running.
    fn is_live(&self, id: ComponentId) -> bool;
    /// Stops the running instance of `id` (its memory goes back with memory's release).
    fn suspend(&mut self, id: ComponentId);
    /// Answers the call the ended instance of `id` was serving, if it kept the caller's
    /// reply capability (`rt::startinfo::slots::CALLER`), with `ServerRestarted`: its
    /// caller gets an error instead of waiting for ever. Call before memory's release.
    /// Returns whether there was such a call.
    fn fail_pending_call(&mut self, id: ComponentId) -> bool;
    /// Forgets what was built for `id`, once memory's release took it back.
    fn forget(&mut self, id: ComponentId);
}

/// proc's [`Effects`], wired to its peers.
#[derive(Debug)]
pub struct Wiring<T: Transport, B: Instances, P: Platform> {
    /// naming (withdraw).
    pub naming: NamingClient<T>,
    /// memory's supervisor operations (release), if memory was found; the same endpoint
    /// answers proc's `usage_of` questions.
    pub memory: Option<SuperviseClient<T>>,
    /// The root task's control endpoint (`halt`), if granted.
    pub control: Option<ControlClient<T>>,
    /// Builds components; `None` without memory or the grants it needs.
    pub builder: Option<B>,
    /// Component names by id, for messages.
    pub names: Vec<String>,
    /// The console and the clock.
    pub platform: P,
}

impl<T: Transport, B: Instances, P: Platform> Wiring<T, B, P> {
    fn name(&self, id: ComponentId) -> &str {
        self.names.get(id.index()).map_or("?", String::as_str)
    }
}

impl<T: Transport, B: Instances, P: Platform> Effects for Wiring<T, B, P> {
    /// Builds the instance and prints `proc: started NAME (id N, generation G)`.
    ///
    /// Errors: [`NO_BUILDER`] without a builder, or the builder's reason.
    fn start(&mut self, id: ComponentId, generation: u32) -> Result<(), String> {
        self.builder
            .as_mut()
            .ok_or(NO_BUILDER)?
            .start(id, generation)?;
        let line = format!(
            "proc: started {} (id {}, generation {generation})",
            self.name(id),
            id.0
        );
        self.platform.print(&line);
        Ok(())
    }

    fn can_destroy(&self, id: ComponentId) -> bool {
        self.builder.as_ref().is_some_and(|b| b.is_live(id))
    }

    fn destroy(&mut self, id: ComponentId) {
        if let Some(b) = self.builder.as_mut() {
            b.suspend(id);
        }
    }

    /// Answers the call `id` was serving (if any) with `ServerRestarted` and says so
    /// (`proc: NAME ended while serving a call: its caller gets ServerRestarted`), asks
    /// memory to release `id` (a failure is printed), then has the builder forget the
    /// slots the release emptied.
    fn release_memory(&mut self, id: ComponentId) {
        if self
            .builder
            .as_mut()
            .is_some_and(|b| b.fail_pending_call(id))
        {
            let line = format!(
                "proc: {} ended while serving a call: its caller gets ServerRestarted",
                self.name(id)
            );
            self.platform.print(&line);
        }
        if let Some(memory) = self.memory.as_mut() {
            if let Err(e) = memory.release(id) {
                let line = format!("proc: memory release of component {} failed: {e:?}", id.0);
                self.platform.print(&line);
            }
        }
        if let Some(b) = self.builder.as_mut() {
            b.forget(id);
        }
    }

    fn withdraw(&mut self, id: ComponentId) {
        if let Err(e) = self.naming.withdraw(id) {
            let line = format!("proc: naming withdraw of component {} failed: {e:?}", id.0);
            self.platform.print(&line);
        }
    }

    fn report(&mut self, line: &str) {
        self.platform.print(&format!("proc: {line}"));
    }

    fn now_ms(&self) -> u64 {
        self.platform.now_ms()
    }

    /// Asks the root task to halt; if it answers (it refused), or there is no control
    /// capability, says so.
    fn halt(&mut self, status: u32) {
        let line = match self.control.as_mut() {
            Some(control) => {
                let r = control.halt(status);
                format!("proc: the root task refused to halt: {r:?}")
            }
            None => String::from("proc: cannot halt: no control capability was granted"),
        };
        self.platform.print(&line);
    }

    /// Asks memory's `usage_of` on the supervisor endpoint (memory answers proc for every
    /// component); `None` without memory or when it refuses, printed nowhere: the row says so.
    fn usage_of(&mut self, id: ComponentId) -> Option<Usage> {
        let memory = self.memory.as_mut()?;
        MemoryClient::new(memory.transport()).usage_of(id).ok()
    }
}
