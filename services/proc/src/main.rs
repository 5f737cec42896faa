//! The proc service component: starts, stops and restarts the non-fundamental components,
//! receives their faults, and serves `proto::proc` on its endpoint.
//!
//! A thin shell over the `proc` library: it reads the system description from its data blob
//! (the whole boot image), registers with naming, finds memory and checks it once
//! (`proc::startup`, `CHECK proc-memory-*` lines), prepares the builder ([`builder`]) and the
//! timer thread ([`ticker`]), wires them to `proc::effects::Wiring`, and runs the receive loop
//! whose decisions are `proc::serve::Loop`'s: which badge is a request, a component's end
//! (badged [`FAULT_BADGE`](proc::grants::FAULT_BADGE)` | (id + 1)`) or the timer's tick, what
//! gets a reply, and when the timer needs a new deadline. Only the seL4 calls are here.

#![no_std]
#![no_main]

extern crate alloc;

mod builder;
mod ticker;

use builder::Builder;
use proc::effects::{Platform, Wiring};
use proc::serve::{message_words, Event, Loop, Source, TimerUpdate};
use proc::startup::{self, Probe, CONTROL_GRANT};
use proc::ProcServer;
use proto::control::ControlClient;
use proto::memory::supervise::SuperviseClient;
use proto::naming::NamingClient;
use proto::sel4_transport::{prepare, received, EndpointTransport, ReceiveSlot};
use proto::{CapSlot, ComponentId, Name};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::{CNode, Untyped};
use sel4::syscall::{self, yield_now};
use sel4::{Cap, ObjectType};
use sysdesc::System;

rt::entry!(main);

/// The slot requests' capabilities arrive in (just below the allocatable ones).
const RECEIVE: u64 = slots::FIRST_FREE - 1;
const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);
/// Times a lookup of `memory` is retried while it starts.
const ATTEMPTS: usize = 1000;
/// TSC ticks per millisecond, roughly (QEMU's TSC runs at the host's rate, a few GHz); only
/// the restart back-off and the "stable run" rule use time.
const TSC_PER_MS: u64 = 2_000_000;

fn now_ms() -> u64 {
    rt::rdtsc() / TSC_PER_MS
}

/// The console and the TSC.
struct Console;

impl Platform for Console {
    fn print(&mut self, line: &str) {
        println!("{line}");
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

/// The memory check's two slots in proc's own CNode: where the allocation lands and where
/// an endpoint is retyped from it.
struct CheckSlots {
    received: u64,
    made: u64,
}

impl Probe for CheckSlots {
    fn received(&self) -> u64 {
        syscall::debug_cap_identify(self.received)
    }

    fn retype_received(&mut self) -> Result<(), sel4::Error> {
        let untyped = Cap::<Untyped>::from_raw(self.received);
        untyped.untyped_retype(ObjectType::Endpoint.word(), 0, OWN, 0, 0, self.made, 1)
    }

    fn made(&self) -> u64 {
        syscall::debug_cap_identify(self.made)
    }

    fn clear(&mut self) {
        let _ = OWN.cnode_delete(self.received, 64);
    }
}

/// Runs the memory check (`CHECK proc-memory-*`) with two of proc's slots.
fn check_memory(memory: u64, me: ComponentId, budget: u64, slots: &mut Slots) {
    let Some(received) = slots.alloc() else {
        return;
    };
    let Some(made) = slots.alloc() else {
        return slots.free(received);
    };
    let mut probe = CheckSlots { received, made };
    let transport = EndpointTransport::receiving(memory, received);
    for check in startup::check_memory(transport, me, budget, &mut probe) {
        println!("{check}");
    }
    slots.free(received);
    slots.free(made);
}

/// Builds what proc needs to start components (grants 0 and 2, memory) and starts its timer
/// thread; `None`, reported, if something is missing.
fn prepare_builder(
    info: &StartInfo,
    slots_left: Slots,
    memory: Option<EndpointTransport>,
    image: bootimage::Image<'static>,
    system: &System,
) -> Option<(Builder, ticker::Ticker)> {
    if let Some(why) = startup::cannot_build(memory.is_some(), info.grants) {
        println!("proc: cannot start components: {why}");
        return None;
    }
    let asid_pool = Cap::from_raw(slots::GRANTS + startup::ASID_POOL_GRANT);
    let naming = slots::GRANTS + startup::NAMING_GRANT;
    let made = Builder::new(
        slots_left,
        memory?,
        asid_pool,
        naming,
        image,
        system.clone(),
    );
    let (mut builder, own) = made
        .map_err(|e| println!("proc: cannot start components: {e}"))
        .ok()?;
    builder.tsc_mhz = info.tsc_mhz;
    let tick = builder.slots.alloc()?;
    let priority = startup::timer_priority(system);
    match ticker::Ticker::start_bound(own.tcb, own.wake, tick, priority) {
        Ok(t) => Some((builder, t)),
        Err(e) => {
            println!("proc: {e}");
            None
        }
    }
}

fn main(info: &'static StartInfo) {
    let image = bootimage::Image::parse(info.data()).expect("proc's data blob is a boot image");
    let described = image
        .system()
        .expect("the boot image holds the system description");
    let system = System::decode(described).expect("the system description decodes");
    let me = ComponentId(info.id as u16);
    let budget = system.get(me).map(|c| c.memory).unwrap_or(0);
    let mut own_slots = Slots::new();

    let mut naming = NamingClient::new(EndpointTransport::new(slots::NAMING));
    if let Err(e) = naming.register(Name::new("proc").expect("valid"), CapSlot(slots::SERVICE)) {
        println!("proc: cannot register with naming: {e:?}");
    }
    // The memory service's endpoint, once it has registered.
    let memory_slot = own_slots.alloc().expect("a fresh CNode has free slots");
    let mut lookup = NamingClient::new(EndpointTransport::receiving(slots::NAMING, memory_slot));
    let memory_name = Name::new("memory").expect("valid");
    let memory = match startup::lookup_patiently(&mut lookup, memory_name, ATTEMPTS, yield_now) {
        Ok(b) => Some(EndpointTransport::new(b.endpoint.0)),
        Err(e) => {
            println!("proc: memory not found: {e:?}");
            None
        }
    };
    if let Some(m) = memory {
        check_memory(m.endpoint(), me, budget, &mut own_slots);
    }

    let control = startup::has_control(info.grants)
        .then(|| ControlClient::new(EndpointTransport::new(slots::GRANTS + CONTROL_GRANT)));
    let prepared = prepare_builder(info, own_slots, memory, image, &system);
    let (builder, timer) = prepared.unzip();
    let effects = Wiring {
        naming,
        memory: memory.map(SuperviseClient::new),
        control,
        builder,
        names: system.components.iter().map(|c| c.name.clone()).collect(),
        platform: Console,
    };
    let (mut server, deadline) = Loop::start(ProcServer::new(system, effects));
    if let Some(t) = &timer {
        t.set(deadline);
    }

    let receive = ReceiveSlot::own(RECEIVE);
    receive.install();
    let mut mrs = [0; 4];
    let (mut info, mut badge) = syscall::recv_with_mrs(slots::SERVICE, &mut mrs);
    loop {
        let (words, request);
        let event = match Source::of(badge) {
            Source::Tick => Event::Tick,
            Source::Ending(id) => {
                words = message_words(info.length() as usize, &mrs, sel4::ipc::get_mr);
                let label = info.label();
                Event::Ending {
                    id,
                    label,
                    words: &words,
                }
            }
            Source::Client => {
                request = received(info, &mrs, Some(receive.index));
                Event::Request {
                    badge,
                    message: &request,
                }
            }
        };
        let step = server.handle(event);
        // Drop a capability the request brought, and receive the next one in the same slot
        // (the builder's calls to memory moved the receive path).
        let _ = OWN.cnode_delete(RECEIVE, 64);
        receive.install();
        if let (TimerUpdate::Set(deadline), Some(t)) = (step.timer, &timer) {
            t.set(deadline);
        }
        (info, badge) = match step.reply {
            Some(answer) => {
                let (reply_info, reply_mrs) = prepare(&answer);
                mrs = reply_mrs;
                syscall::reply_recv_with_mrs(slots::SERVICE, reply_info, &mut mrs)
            }
            None => syscall::recv_with_mrs(slots::SERVICE, &mut mrs),
        };
    }
}
