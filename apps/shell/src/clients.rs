//! [`Backend`] over the proto client stubs: [`Clients`] asks `proc`, `memory` and `devices`
//! (and `fs` for the file commands, attached through [`Connect::attach_files`])
//! through whatever transports a [`Connect`] gives it (seL4 endpoints from naming in the
//! component, `Loopback`s into proto servers in the tests).

use crate::backend::{list_all, Backend, Failure, FileApi};
use alloc::vec::Vec;
use proto::devices::{DevicesClient, PciFunction};
use proto::memory::{MemoryClient, Usage};
use proto::proc::{CapInfo, ComponentInfo, ComponentUsage, ProcClient};
use proto::{naming, ComponentId, Name, Transport};

/// How the shell reaches services: through naming.
pub trait Connect {
    /// A connection to one service.
    type Transport: Transport;
    /// A transport to `service`, or `None` if naming does not give the shell one (not routed,
    /// or not registered yet).
    fn connect(&mut self, service: &'static str) -> Option<Self::Transport>;
    /// Looks `name` up only to tell whether the shell can reach it: `Ok(generation)`.
    /// Whatever the lookup brought (an endpoint) is released again.
    fn lookup(&mut self, name: Name) -> Result<u64, naming::Error>;
    /// Attaches to the file service and returns the file API over it. The default: the
    /// shell has no file service (`Unavailable`).
    fn attach_files(&mut self) -> Result<FileApi, libos_core::fs::Error> {
        Err(libos_core::fs::Error::Unavailable)
    }
}

/// The services the shell's commands use, connected on first use: a service that is not
/// there yet is asked for again by the next command that needs it.
pub struct Clients<C: Connect> {
    connect: C,
    proc: Option<C::Transport>,
    memory: Option<C::Transport>,
    devices: Option<C::Transport>,
    files: Option<FileApi>,
}

/// The transport in `slot`, connecting it first if needed.
fn get<'a, C: Connect>(
    connect: &mut C,
    slot: &'a mut Option<C::Transport>,
    service: &'static str,
) -> Result<&'a mut C::Transport, Failure> {
    if slot.is_none() {
        *slot = connect.connect(service);
    }
    slot.as_mut().ok_or(Failure::Unavailable(service))
}

impl<C: Connect> Clients<C> {
    /// Nothing connected yet.
    pub fn new(connect: C) -> Clients<C> {
        Clients {
            connect,
            proc: None,
            memory: None,
            devices: None,
            files: None,
        }
    }

    /// Connects every service; returns those that are not available.
    pub fn connect_all(&mut self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        for (slot, service) in [
            (&mut self.proc, "proc"),
            (&mut self.memory, "memory"),
            (&mut self.devices, "devices"),
        ] {
            if get(&mut self.connect, slot, service).is_err() {
                missing.push(service);
            }
        }
        missing
    }

    fn proc(&mut self) -> Result<ProcClient<&mut C::Transport>, Failure> {
        get(&mut self.connect, &mut self.proc, "proc").map(ProcClient::new)
    }

    fn memory(&mut self) -> Result<MemoryClient<&mut C::Transport>, Failure> {
        get(&mut self.connect, &mut self.memory, "memory").map(MemoryClient::new)
    }

    fn devices(&mut self) -> Result<DevicesClient<&mut C::Transport>, Failure> {
        get(&mut self.connect, &mut self.devices, "devices").map(DevicesClient::new)
    }
}

impl<C: Connect> Backend for Clients<C> {
    fn components(&mut self) -> Result<Vec<ComponentInfo>, Failure> {
        let mut proc = self.proc()?;
        list_all(|i| proc.list(i), proto::proc::Error::NoEntry).map_err(Failure::Proc)
    }

    fn caps(&mut self, id: ComponentId) -> Result<Vec<CapInfo>, Failure> {
        let mut proc = self.proc()?;
        list_all(|i| proc.caps(id, i), proto::proc::Error::NoEntry).map_err(Failure::Proc)
    }

    fn lookup(&mut self, name: Name) -> Result<u64, Failure> {
        self.connect.lookup(name).map_err(Failure::Naming)
    }

    fn spawn(&mut self, name: Name) -> Result<ComponentId, Failure> {
        self.proc()?.spawn(name).map_err(Failure::Proc)
    }

    fn kill(&mut self, id: ComponentId) -> Result<(), Failure> {
        self.proc()?.kill(id).map_err(Failure::Proc)
    }

    fn usage(&mut self) -> Result<Usage, Failure> {
        self.memory()?.usage().map_err(Failure::Memory)
    }

    fn component_usage(&mut self) -> Result<Vec<ComponentUsage>, Failure> {
        let mut proc = self.proc()?;
        list_all(|i| proc.usage(i), proto::proc::Error::NoEntry).map_err(Failure::Proc)
    }

    fn devices(&mut self) -> Result<Vec<PciFunction>, Failure> {
        let mut devices = self.devices()?;
        list_all(|i| devices.list(i), proto::devices::Error::NoEntry).map_err(Failure::Devices)
    }

    fn files(&mut self) -> Result<&mut FileApi, Failure> {
        if self.files.is_none() {
            self.files = Some(self.connect.attach_files().map_err(|e| match e {
                libos_core::fs::Error::Unavailable => Failure::Unavailable("fs"),
                e => Failure::Files(e),
            })?);
        }
        self.files.as_mut().ok_or(Failure::Unavailable("fs"))
    }

    fn files_lost(&mut self) {
        self.files = None;
    }

    fn halt(&mut self) -> Result<(), Failure> {
        // proc halts the system through the root task; on success no reply comes back.
        self.proc()?.halt(0).map_err(Failure::Proc)
    }
}
