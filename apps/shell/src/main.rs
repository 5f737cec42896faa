//! The shell component: the `shell` library over a serial console and the proto clients.
//!
//! It finds `serial`, `proc`, `memory` and `devices` through naming (each lookup brings a
//! badged endpoint into a fresh slot). A service it cannot find at start is looked up again
//! whenever a command needs it (`shell::clients::Clients`); until then those commands answer
//! "service X is not available". Input is polled: `read`, and `yield` while there is none.
//!
//! With argument `fs_region = "REGION"` the file commands go to `fs`: the shell maps that
//! region (shared with `fs` in the description) and attaches over it on first use, and
//! again after a command was told the service restarted.
//!
//! A console call that fails with anything but `WouldBlock`/`Busy` (`ServerRestarted`, or a
//! reply that does not decode) makes the shell look `serial` up again into the same slot and
//! carry on. A plain restart of serial needs none of that: proc keeps its endpoint, so calls
//! made while serial is down wait for the new instance (system-tests/tests/serial_restart.rs).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::AtomicU32;
use libos_core::fs;
use proto::console::{self, ConsoleClient};
use proto::naming::{self, NamingClient};
use proto::sel4_transport::{EndpointTransport, ReceiveSlot};
use proto::{Bytes, Name, MAX_BYTES};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::CNode;
use sel4::Cap;
use shell::backend::FileApi;
use shell::clients::{Clients, Connect};
use shell::Shell;

rt::entry!(main);

const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);

/// How many times a write the console answers `Busy` is retried (with a yield between)
/// before the output is dropped.
const WRITE_RETRIES: u32 = 100_000;

/// Slots from here on are the file region mapping's; below, the lookups'.
const MAPPING_SLOTS: u64 = 2048;

/// Looks `service` up with naming; the badged endpoint lands in a fresh slot.
/// `Ok((slot, generation))`.
fn lookup(slots: &mut Slots, service: Name) -> Result<(u64, u64), naming::Error> {
    let slot = slots.alloc().ok_or(naming::Error::Exhausted)?;
    let mut transport = EndpointTransport::new(slots::NAMING);
    transport.receive_into(ReceiveSlot::own(slot));
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

/// Reaches services through naming: each connection is a badged endpoint in a slot of
/// the shell's own; the file service over the shared region the description gives the
/// shell with `fs` (argument `fs_region`), if any.
struct Naming {
    slots: Slots,
    files: Option<(Name, &'static [AtomicU32])>,
    /// The slot of the `fs` endpoint the current attachment uses.
    fs_slot: Option<u64>,
}

impl Connect for Naming {
    type Transport = EndpointTransport;

    fn connect(&mut self, service: &'static str) -> Option<EndpointTransport> {
        let name = Name::new(service).ok()?;
        let (slot, _) = lookup(&mut self.slots, name).ok()?;
        Some(EndpointTransport::new(slot))
    }

    fn lookup(&mut self, name: Name) -> Result<u64, naming::Error> {
        let (slot, generation) = lookup(&mut self.slots, name)?;
        // The shell only wanted to know: the endpoint goes again.
        forget(&mut self.slots, slot);
        Ok(generation)
    }

    fn attach_files(&mut self) -> Result<FileApi, fs::Error> {
        let (region, words) = self.files.ok_or(fs::Error::Unavailable)?;
        if let Some(old) = self.fs_slot.take() {
            forget(&mut self.slots, old);
        }
        let service = Name::new("fs").expect("a valid name");
        let (slot, _) = lookup(&mut self.slots, service).map_err(|_| fs::Error::Unavailable)?;
        self.fs_slot = Some(slot);
        // The nonce proves to fs that the shell can write the region; never 0.
        let nonce = rt::rdtsc().rotate_left(29) | 1;
        let remote = fs::Remote::attach(EndpointTransport::new(slot), words, region, nonce)?;
        let backend: Box<dyn fs::Backend> = Box::new(remote);
        Ok(fs::Files::new(backend))
    }
}

/// Maps shared region `region` (the shell's with `fs`) through `memory`, with slots from
/// `free`; its words.
fn map_files_region(free: Slots, region: Name) -> &'static [AtomicU32] {
    let mut slots = free;
    let memory = Name::new("memory").expect("a valid name");
    let (endpoint, _) = lookup(&mut slots, memory)
        .unwrap_or_else(|e| rt::fail("shell", "look up memory", format_args!("{e:?}")));
    let mut pool = libos_sel4::budget::pool(slots, endpoint, 2, "shell");
    let mut vspace = vspace::VSpace::own();
    libos_sel4::shared::map(&mut pool, &mut vspace, endpoint, region, "shell").words()
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
                // The provider restarted or went away: find it again, then retry.
                Err(e) if lost(e) => {
                    if relookup_console(console_slot(console)).is_none() {
                        sel4::syscall::yield_now();
                    }
                }
                // Written, or an error retrying cannot fix: either way on to the next.
                _ => break,
            }
        }
    }
}

/// Looks `serial` up again into `slot` (the console's), after a console call failed with
/// something other than "no input" / "busy": the provider restarted (`ServerRestarted`) or
/// the endpoint no longer leads to it. `Some(generation)` if naming has it.
fn relookup_console(slot: u64) -> Option<u64> {
    // Deleting an empty slot succeeds; if the delete fails the lookup below fails too.
    let _ = OWN.cnode_delete(slot, 64);
    let mut transport = EndpointTransport::new(slots::NAMING);
    transport.receive_into(ReceiveSlot::own(slot));
    let serial = Name::new("serial").expect("a valid name");
    match NamingClient::new(transport).lookup(serial) {
        Ok(binding) if binding.endpoint.0 == slot => Some(binding.generation),
        _ => None,
    }
}

/// The slot of the console's endpoint.
fn console_slot(console: &mut ConsoleClient<EndpointTransport>) -> u64 {
    console.transport().endpoint()
}

/// Whether a console error means the shell should look `serial` up again.
fn lost(e: console::Error) -> bool {
    !matches!(e, console::Error::WouldBlock | console::Error::Busy)
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

fn main(info: &'static StartInfo) {
    // The naming lookups' slots, and apart from them those of the file region's mapping.
    let mut slots = Slots::within(slots::FIRST_FREE..MAPPING_SLOTS);
    let files = info.arg("fs_region").map(|text| {
        let region = Name::new(text)
            .unwrap_or_else(|_| rt::fail("shell", "start", "fs_region: not a region name"));
        let words = map_files_region(Slots::within(MAPPING_SLOTS..u64::MAX), region);
        (region, words)
    });
    let mut console = ConsoleClient::new(EndpointTransport::new(find_console(&mut slots)));
    let mut system = Clients::new(Naming {
        slots,
        files,
        fs_slot: None,
    });
    let missing = system.connect_all();

    let mut shell = Shell::new();
    let mut out = Vec::new();
    shell.banner(&missing, &mut out);
    write_all(&mut console, &out);
    loop {
        out.clear();
        match console.read(MAX_BYTES as u32) {
            // One line at a time, each answer printed before the next line runs: type-ahead
            // can hold several commands, the last of them `halt`.
            Ok(input) => {
                let mut rest = &input[..];
                while !rest.is_empty() && !shell.halted() {
                    rest = &rest[shell.feed_line(rest, &mut system, &mut out)..];
                    write_all(&mut console, &out);
                    out.clear();
                }
            }
            // The provider restarted or went away: find it again (same slot).
            Err(e) if lost(e) => {
                if let Some(generation) = relookup_console(console_slot(&mut console)) {
                    println!(
                        "shell: console: {e:?}; serial looked up again (generation {generation})"
                    );
                } else {
                    sel4::syscall::yield_now();
                }
            }
            // No input yet: let others run and ask again.
            Err(_) => sel4::syscall::yield_now(),
        }
        write_all(&mut console, &out);
        if shell.halted() {
            rt::stop_thread();
        }
    }
}
