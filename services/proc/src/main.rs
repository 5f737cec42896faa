//! The proc service component: serves `proto::proc` on its endpoint.
//!
//! A thin shell over the `proc` library: it reads the system description from its
//! data blob (the whole boot image), adopts the components the root task started,
//! registers with naming, checks the memory service once (`CHECK proc-memory-*`
//! lines), and serves. `exit` gets no reply: the caller is gone for good.

#![no_std]
#![no_main]

extern crate alloc;

use proc::{Effects, ProcServer};
use proto::memory::supervise::SuperviseClient;
use proto::memory::{self as mem, MemoryClient};
use proto::naming::{self, NamingClient};
use proto::sel4_transport::{prepare, received, EndpointTransport, ReceiveSlot};
use proto::{CapSlot, ComponentId, Name};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo, IPC_BUFFER_VADDR};
use sel4::cap_type::{CNode, Untyped};
use sel4::{syscall, Cap, ObjectType};
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
}

impl Effects for Shell {
    fn can_destroy(&self, _id: ComponentId) -> bool {
        // Every component is built by the root task today.
        false
    }

    fn destroy(&mut self, _id: ComponentId) {}

    fn release_memory(&mut self, id: ComponentId) {
        if let Some(t) = self.memory {
            if let Err(e) = SuperviseClient::new(t).release(id) {
                println!("proc: memory release of component {} failed: {e:?}", id.0);
            }
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
    t.receive_into(ReceiveSlot {
        cnode: slots::CNODE,
        index: slot,
        depth: 64,
    });
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

fn main(arg: usize) {
    // SAFETY: `arg` is the start-up argument the loader gave this thread.
    let info = unsafe { StartInfo::from_start_arg(arg) }.expect("proc is started by the loader");
    sel4::ipc::set_user_data(IPC_BUFFER_VADDR);
    let image = bootimage::Image::parse(info.data()).expect("proc's data blob is a boot image");
    let system = System::decode(
        image
            .system()
            .expect("the boot image holds the system description"),
    )
    .expect("the system description decodes");
    let me = ComponentId(info.id as u16);
    let budget = system.get(me).map(|c| c.memory).unwrap_or(0);
    let mut own_slots = Slots::new();

    let mut naming = NamingClient::new(EndpointTransport::new(slots::NAMING));
    if let Err(e) = naming.register(Name::new("proc").expect("valid"), CapSlot(slots::SERVICE)) {
        println!("proc: cannot register with naming: {e:?}");
    }
    // The memory service's endpoint, once it has registered.
    let memory_slot = own_slots.alloc().expect("a fresh CNode has free slots");
    let mut lookup = EndpointTransport::new(slots::NAMING);
    lookup.receive_into(ReceiveSlot {
        cnode: slots::CNODE,
        index: memory_slot,
        depth: 64,
    });
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
    let mut server = ProcServer::new(
        system,
        Shell {
            naming,
            memory,
            control,
        },
    );
    server.adopt_all();
    println!(
        "proc: ready, {} components",
        server.supervisor().list().len()
    );
    for row in server.supervisor().list() {
        println!("proc: {row}");
    }

    let receive = ReceiveSlot {
        cnode: slots::CNODE,
        index: RECEIVE,
        depth: 64,
    };
    receive.install();
    let mut mrs = [0; 4];
    let (mut info, mut badge) = syscall::recv_with_mrs(slots::SERVICE, &mut mrs);
    loop {
        let request = received(info, &mrs, Some(receive.index));
        let reply = proto::proc::dispatch(&mut server, badge, &request);
        let _ = OWN.cnode_delete(RECEIVE, 64);
        receive.install();
        let exited = request.label == proto::proc::Op::Exit as u64 && reply.label == 0;
        if exited {
            // No reply: receiving drops the caller's reply capability, so it stays blocked.
            (info, badge) = syscall::recv_with_mrs(slots::SERVICE, &mut mrs);
        } else {
            let (reply_info, reply_mrs) = prepare(&reply);
            mrs = reply_mrs;
            (info, badge) = syscall::reply_recv_with_mrs(slots::SERVICE, reply_info, &mut mrs);
        }
    }
}
