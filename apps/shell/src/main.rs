//! The shell component: the `shell` library over a serial console and the proto clients.
//!
//! It finds `serial`, `proc`, `memory` and `devices` through naming (each lookup brings a
//! badged endpoint into a fresh slot). A service it cannot find at start is looked up again
//! whenever a command needs it; until then those commands answer "service X is not
//! available". Input is polled: `read`, and `yield` while there is none.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use proto::console::{self, ConsoleClient};
use proto::devices::{self, DevicesClient, PciFunction};
use proto::memory::{MemoryClient, Usage};
use proto::naming::{self, NamingClient};
use proto::proc::{self, CapInfo, ComponentInfo, ProcClient};
use proto::sel4_transport::{EndpointTransport, ReceiveSlot};
use proto::{Bytes, ComponentId, Name, MAX_BYTES};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo, IPC_BUFFER_VADDR};
use sel4::cap_type::CNode;
use sel4::Cap;
use shell::backend::list_all;
use shell::{Backend, Failure, Shell};

rt::entry!(main);

const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);

/// How many times a write the console answers `Busy` is retried (with a yield between)
/// before the output is dropped.
const WRITE_RETRIES: u32 = 100_000;

/// Looks `service` up with naming; the badged endpoint lands in a fresh slot.
/// `Ok((slot, generation))`.
fn lookup(slots: &mut Slots, service: Name) -> Result<(u64, u64), naming::Error> {
    let slot = slots.alloc().ok_or(naming::Error::Exhausted)?;
    let mut transport = EndpointTransport::new(slots::NAMING);
    transport.receive_into(ReceiveSlot {
        cnode: slots::CNODE,
        index: slot,
        depth: 64,
    });
    match NamingClient::new(transport).lookup(service) {
        Ok(binding) if binding.endpoint.0 == slot => Ok((slot, binding.generation)),
        Ok(_) => {
            forget(slots, slot);
            Err(naming::Error::InvalidReply)
        }
        Err(e) => {
            forget(slots, slot);
            Err(e)
        }
    }
}

/// Deletes whatever `slot` holds and gives it back.
fn forget(slots: &mut Slots, slot: u64) {
    // Deleting an empty slot succeeds; a failure leaves the slot unusable, so keep it.
    if OWN.cnode_delete(slot, 64).is_ok() {
        slots.free(slot);
    }
}

/// A service the shell talks to: its endpoint once naming has given it.
struct Service {
    name: &'static str,
    endpoint: Option<u64>,
}

impl Service {
    const fn new(name: &'static str) -> Service {
        Service {
            name,
            endpoint: None,
        }
    }

    /// A transport to the service, looking it up first if the shell has none yet.
    fn transport(&mut self, slots: &mut Slots) -> Result<EndpointTransport, Failure> {
        if self.endpoint.is_none() {
            let name = Name::new(self.name).map_err(|_| Failure::Unavailable(self.name))?;
            self.endpoint = lookup(slots, name).ok().map(|(slot, _)| slot);
        }
        self.endpoint
            .map(EndpointTransport::new)
            .ok_or(Failure::Unavailable(self.name))
    }
}

/// The system as the shell's commands see it.
struct System {
    slots: Slots,
    proc: Service,
    memory: Service,
    devices: Service,
}

impl System {
    fn proc(&mut self) -> Result<ProcClient<EndpointTransport>, Failure> {
        self.proc.transport(&mut self.slots).map(ProcClient::new)
    }

    fn memory(&mut self) -> Result<MemoryClient<EndpointTransport>, Failure> {
        self.memory
            .transport(&mut self.slots)
            .map(MemoryClient::new)
    }

    fn devices(&mut self) -> Result<DevicesClient<EndpointTransport>, Failure> {
        self.devices
            .transport(&mut self.slots)
            .map(DevicesClient::new)
    }
}

impl Backend for System {
    fn components(&mut self) -> Result<Vec<ComponentInfo>, Failure> {
        let mut proc = self.proc()?;
        list_all(|i| proc.list(i), proc::Error::NoEntry).map_err(Failure::Proc)
    }

    fn caps(&mut self, id: ComponentId) -> Result<Vec<CapInfo>, Failure> {
        let mut proc = self.proc()?;
        list_all(|i| proc.caps(id, i), proc::Error::NoEntry).map_err(Failure::Proc)
    }

    fn lookup(&mut self, name: Name) -> Result<u64, Failure> {
        let (slot, generation) = lookup(&mut self.slots, name).map_err(Failure::Naming)?;
        // The shell only wanted to know: the endpoint goes again.
        forget(&mut self.slots, slot);
        Ok(generation)
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

    fn usage_of(&mut self, id: ComponentId) -> Result<Usage, Failure> {
        self.memory()?.usage_of(id).map_err(Failure::Memory)
    }

    fn devices(&mut self) -> Result<Vec<PciFunction>, Failure> {
        let mut devices = self.devices()?;
        list_all(|i| devices.list(i), devices::Error::NoEntry).map_err(Failure::Devices)
    }

    fn halt(&mut self) -> Result<(), Failure> {
        // proto::proc has no operation that stops the system; nothing else may.
        Err(Failure::NotSupported(
            "halting is not available yet (proc has no halt operation)",
        ))
    }
}

/// Writes `bytes` to the console, one message at a time; retries while it is busy.
fn write_all(console: &mut ConsoleClient<EndpointTransport>, bytes: &[u8]) {
    for chunk in bytes.chunks(MAX_BYTES) {
        let Some(data) = Bytes::new(chunk) else {
            return;
        };
        for _ in 0..WRITE_RETRIES {
            match console.write(data) {
                Err(console::Error::Busy) => sel4::syscall::yield_now(),
                // Written, or an error retrying cannot fix: either way on to the next.
                _ => break,
            }
        }
    }
}

/// The console's endpoint: looks `serial` up until naming has it.
fn find_console(slots: &mut Slots) -> u64 {
    let serial = Name::new("serial").expect("a valid name");
    let mut told = false;
    loop {
        if let Ok((slot, _)) = lookup(slots, serial) {
            return slot;
        }
        if !told {
            println!("shell: waiting for service serial");
            told = true;
        }
        sel4::syscall::yield_now();
    }
}

fn main(arg: usize) {
    // SAFETY: `arg` is the start-up argument the loader gave this thread.
    let _info = unsafe { StartInfo::from_start_arg(arg) }.expect("shell is started by the loader");
    sel4::ipc::set_user_data(IPC_BUFFER_VADDR);

    let mut slots = Slots::new();
    let mut console = ConsoleClient::new(EndpointTransport::new(find_console(&mut slots)));
    let mut system = System {
        slots,
        proc: Service::new("proc"),
        memory: Service::new("memory"),
        devices: Service::new("devices"),
    };
    let mut missing = Vec::new();
    for service in [&mut system.proc, &mut system.memory, &mut system.devices] {
        if service.transport(&mut system.slots).is_err() {
            missing.push(service.name);
        }
    }

    let mut shell = Shell::new();
    let mut out = Vec::new();
    shell.banner(&missing, &mut out);
    write_all(&mut console, &out);
    loop {
        out.clear();
        match console.read(MAX_BYTES as u32) {
            Ok(input) => shell.feed(&input, &mut system, &mut out),
            // No input yet (or a console error): let others run and ask again.
            Err(_) => sel4::syscall::yield_now(),
        }
        write_all(&mut console, &out);
        if shell.halted() {
            rt::stop_thread();
        }
    }
}
