//! The proc service component: starts, stops and restarts the non-fundamental components,
//! receives their faults, and serves `proto::proc` on its endpoint.
//!
//! A thin shell over the `proc` library: it reads the system description from its data blob
//! (the whole boot image), registers with naming, checks the memory service once
//! (`CHECK proc-memory-*` lines), adopts the fundamental services the root task started,
//! builds every other component in description order ([`builder`]), and serves. Faults of
//! the components it builds arrive on the same endpoint, badged
//! [`FAULT_BADGE`](proc::grants::FAULT_BADGE)` | (id + 1)`; its timer thread ([`ticker`])
//! wakes it through its bound notification when a restart is due. `exit` and faults get no
//! reply: the caller is gone for good.

#![no_std]
#![no_main]

extern crate alloc;

mod builder;
mod ticker;

use alloc::string::String;
use alloc::vec::Vec;
use builder::Builder;
use proc::grants::{fault_source, TICK_BADGE};
use proc::{decode_ending, Effects, Ending, ProcServer};
use proto::memory::supervise::SuperviseClient;
use proto::memory::{self as mem, MemoryClient};
use proto::naming::{self, NamingClient};
use proto::sel4_transport::{prepare, received, EndpointTransport, ReceiveSlot};
use proto::{CapSlot, ComponentId, Name};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::{CNode, Untyped};
use sel4::{syscall, Cap, ObjectType};
use sel4::{CapData, CapRights};
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
    // SAFETY: `rdtsc` has no preconditions; user mode may read the TSC on x86_64 seL4.
    unsafe { core::arch::x86_64::_rdtsc() / TSC_PER_MS }
}

struct Shell {
    naming: NamingClient<EndpointTransport>,
    memory: Option<EndpointTransport>,
    /// The root task's control endpoint (grant 1, see docs/SERVICES.md), if granted.
    control: Option<EndpointTransport>,
    /// Builds components; `None` without memory or the grants it needs.
    builder: Option<Builder>,
    /// Names, for messages.
    names: Vec<String>,
}

impl Effects for Shell {
    fn start(&mut self, id: ComponentId, generation: u32) -> Result<(), String> {
        let builder = self
            .builder
            .as_mut()
            .ok_or("proc cannot build components (no memory service or grants)")?;
        builder.start(id, generation)?;
        println!(
            "proc: started {} (id {}, generation {generation})",
            self.names.get(id.index()).map_or("?", String::as_str),
            id.0
        );
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

    fn release_memory(&mut self, id: ComponentId) {
        if let Some(t) = self.memory {
            if let Err(e) = SuperviseClient::new(t).release(id) {
                println!("proc: memory release of component {} failed: {e:?}", id.0);
            }
        }
        // The revoke emptied the slots that held the instance's blocks and objects.
        if let Some(b) = self.builder.as_mut() {
            b.forget(id);
        }
    }

    fn withdraw(&mut self, id: ComponentId) {
        if let Err(e) = self.naming.withdraw(id) {
            println!("proc: naming withdraw of component {} failed: {e:?}", id.0);
        }
    }

    fn report(&mut self, line: &str) {
        println!("proc: {line}");
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn halt(&mut self, status: u32) {
        match self.control {
            Some(t) => {
                let r = proto::control::ControlClient::new(t).halt(status);
                println!("proc: the root task refused to halt: {r:?}");
            }
            None => println!("proc: cannot halt: no control capability was granted"),
        }
    }
}

fn check(name: &str, ok: bool, detail: core::fmt::Arguments) {
    println!(
        "CHECK proc-memory-{name}: {} ({detail})",
        if ok { "PASS" } else { "FAIL" }
    );
}

/// Exercises the memory service once: budget, an allocation that a free revokes together
/// with what was made from it, the budget limit, and the supervisor operations.
fn check_memory(memory: EndpointTransport, me: ComponentId, budget: u64, slots: &mut Slots) {
    let Some(slot) = slots.alloc() else { return };
    let Some(made) = slots.alloc() else { return };
    let mut t = memory;
    t.receive_into(ReceiveSlot::own(slot));
    let mut client = MemoryClient::new(t);
    let usage = client.usage();
    check(
        "usage",
        usage.is_ok_and(|u| u.budget == budget && u.used == 0),
        format_args!("{usage:?}"),
    );
    match client.alloc(14) {
        Ok(a) => {
            let held = syscall::debug_cap_identify(slot);
            let retyped = Cap::<Untyped>::from_raw(slot).untyped_retype(
                ObjectType::Endpoint.word(),
                0,
                OWN,
                0,
                0,
                made,
                1,
            );
            let used = client.usage().map(|u| u.used);
            let freed = client.free(a.handle);
            let gone = (
                syscall::debug_cap_identify(slot),
                syscall::debug_cap_identify(made),
            );
            check(
                "alloc-free-revokes",
                held != 0 && retyped.is_ok() && used == Ok(1 << 14) && freed.is_ok() && gone == (0, 0),
                format_args!(
                    "cap type {held}, retype {retyped:?}, used {used:?}, free {freed:?}, after free {gone:?}"
                ),
            );
        }
        Err(e) => check("alloc-free-revokes", false, format_args!("alloc: {e:?}")),
    }
    let over = client.alloc(30);
    check(
        "over-budget",
        over == Err(mem::Error::OverBudget),
        format_args!("alloc(30) -> {:?}", over.map(|a| a.handle)),
    );
    let mut sup = SuperviseClient::new(*client.transport());
    let image = sup.alloc_for(me, 21);
    let _ = OWN.cnode_delete(slot, 64);
    let released = sup.release(me);
    check(
        "supervise",
        image.is_ok() && released == Ok(1 << 21),
        format_args!(
            "alloc_for(2 MiB) -> {:?}, release -> {released:?}",
            image.map(|a| a.handle)
        ),
    );
    let _ = OWN.cnode_delete(slot, 64);
    slots.free(slot);
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
    let Some(memory) = memory else {
        println!("proc: cannot start components: no memory service");
        return None;
    };
    if info.grants < 3 {
        println!("proc: cannot start components: no ASID pool or naming grant");
        return None;
    }
    let (mut builder, own) = match Builder::new(
        slots_left,
        memory,
        Cap::from_raw(slots::GRANTS),
        slots::GRANTS + 2,
        image,
        system.clone(),
    ) {
        Ok(b) => b,
        Err(e) => {
            println!("proc: cannot start components: {e}");
            return None;
        }
    };
    // Our notification, bound to our thread: the timer's signal ends a `Recv` on the
    // service endpoint.
    let tick = builder.slots.alloc()?;
    let bound = Cap::<sel4::cap_type::Tcb>::from_raw(slots::TCB)
        .tcb_bind_notification(Cap::from_raw(slots::NOTIFICATION));
    let minted = OWN.cnode_mint(
        tick,
        64,
        OWN,
        slots::NOTIFICATION,
        64,
        CapRights::all(),
        CapData::new_badge(TICK_BADGE),
    );
    let lowest = system
        .components
        .iter()
        .filter(|c| !c.fundamental)
        .map(|c| c.priority)
        .min()
        .unwrap_or(1);
    match (bound, minted) {
        (Ok(()), Ok(())) => match ticker::Ticker::start(own.tcb, own.wake, tick, lowest) {
            Ok(t) => Some((builder, t)),
            Err(e) => {
                println!("proc: cannot start the timer thread: {e:?}");
                None
            }
        },
        (b, m) => {
            println!("proc: cannot bind the timer notification: {b:?} {m:?}");
            None
        }
    }
}

fn main(arg: usize) {
    // SAFETY: `arg` is the start-up argument the loader gave this thread.
    let info = unsafe { StartInfo::begin(arg) };
    let image = bootimage::Image::parse(info.data()).expect("proc's data blob is a boot image");
    let system = System::decode(
        image
            .system()
            .expect("the boot image holds the system description"),
    )
    .expect("the system description decodes");
    let me = ComponentId(info.id as u16);
    let image: bootimage::Image<'static> = image;
    let budget = system.get(me).map(|c| c.memory).unwrap_or(0);
    let mut own_slots = Slots::new();

    let mut naming = NamingClient::new(EndpointTransport::new(slots::NAMING));
    if let Err(e) = naming.register(Name::new("proc").expect("valid"), CapSlot(slots::SERVICE)) {
        println!("proc: cannot register with naming: {e:?}");
    }
    // The memory service's endpoint, once it has registered.
    let memory_slot = own_slots.alloc().expect("a fresh CNode has free slots");
    let mut lookup = EndpointTransport::new(slots::NAMING);
    lookup.receive_into(ReceiveSlot::own(memory_slot));
    let mut lookup = NamingClient::new(lookup);
    let memory_name = Name::new("memory").expect("valid");
    let mut found = lookup.lookup(memory_name);
    for _ in 1..ATTEMPTS {
        if found != Err(naming::Error::NotFound) {
            break;
        }
        syscall::yield_now();
        found = lookup.lookup(memory_name);
    }
    let memory = match found {
        Ok(b) => Some(EndpointTransport::new(b.endpoint.0)),
        Err(e) => {
            println!("proc: memory not found: {e:?}");
            None
        }
    };
    if let Some(m) = memory {
        check_memory(m, me, budget, &mut own_slots);
    }

    let control = (info.grants >= 2).then(|| EndpointTransport::new(slots::GRANTS + 1));
    let prepared = prepare_builder(info, own_slots, memory, image, &system);
    let (builder, timer) = match prepared {
        Some((b, t)) => (Some(b), Some(t)),
        None => (None, None),
    };
    let names = system.components.iter().map(|c| c.name.clone()).collect();
    let mut server = ProcServer::new(
        system,
        Shell {
            naming,
            memory,
            control,
            builder,
            names,
        },
    );
    server.start_all();
    println!(
        "proc: ready, {} components",
        server.supervisor().list().len()
    );
    for row in server.supervisor().list() {
        println!("proc: {row}");
    }
    let mut deadline = server.tick();
    if let Some(t) = &timer {
        t.set(deadline);
    }

    let receive = ReceiveSlot::own(RECEIVE);
    receive.install();
    let mut mrs = [0; 4];
    let (mut info, mut badge) = syscall::recv_with_mrs(slots::SERVICE, &mut mrs);
    loop {
        let mut reply = None;
        let ticked = badge & TICK_BADGE != 0;
        if ticked {
            // The timer: a restart is due (checked below). Nobody to reply to.
        } else if let Some(id) = fault_source(badge) {
            let words: Vec<u64> = (0..info.length() as usize)
                .map(|i| if i < 4 { mrs[i] } else { sel4::ipc::get_mr(i) })
                .collect();
            // No reply: the ended thread is torn down, and maybe restarted anew.
            match decode_ending(info.label(), &words) {
                Ending::Exit(status) => server.ended(id, status),
                Ending::Fault { kind, addr } => server.fault(id, kind, addr),
            }
        } else {
            let request = received(info, &mrs, Some(receive.index));
            let answer = proto::proc::dispatch(&mut server, badge, &request);
            let _ = OWN.cnode_delete(RECEIVE, 64);
            receive.install();
            let exited = request.label == proto::proc::Op::Exit as u64 && answer.label == 0;
            // After an exit, no reply: receiving drops the caller's reply capability.
            if !exited {
                reply = Some(answer);
            }
        }
        let next = server.tick();
        // After a tick the timer has dropped its deadline: always give it the next one.
        if next != deadline || ticked {
            deadline = next;
            if let Some(t) = &timer {
                t.set(deadline);
            }
        }
        match reply {
            Some(answer) => {
                let (reply_info, reply_mrs) = prepare(&answer);
                mrs = reply_mrs;
                (info, badge) = syscall::reply_recv_with_mrs(slots::SERVICE, reply_info, &mut mrs);
            }
            None => (info, badge) = syscall::recv_with_mrs(slots::SERVICE, &mut mrs),
        }
    }
}
