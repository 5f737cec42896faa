//! The microbench component: IPC, notification and interrupt latencies in TSC cycles
//! (the benchmarks, their order and their report line are in the library).
//!
//! Role `bench`: looks up `memory`, `devices`, `proc` and the peer's service; starts helper
//! threads at its maximum controlled priority (MCP). For the IPC round trips its own thread
//! runs at the MCP too: seL4 5.0 takes its fastpath for a reply only to a caller of at
//! least the replier's priority, so client and server share one priority (the peer
//! component's must equal the MCP). For the notifications and the interrupt it steps one
//! below, so a signalled or interrupted thread (a helper, or the peer) runs at once. It
//! runs the benchmarks, prints one `BENCH` line each, then
//! [`microbench::DONE`], and halts the system through `proc` with status 0 (1 when a
//! benchmark failed, 2 on a panic).
//!
//! Role `peer` ([`peer`]): registers its service and serves the far end of the
//! cross-address-space benchmarks.

#![no_std]
#![no_main]

extern crate alloc;

mod nic;
mod peer;
#[allow(
    unsafe_code,
    reason = "a helper thread takes its body from a raw argument"
)]
mod thread;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use microbench::protocol::{OK, PING, REPORT, WAKE_SERIES};
use microbench::{collect, elapsed, names, Config, Report, Role, RoundError, Summary};
use proto::memory::MemoryClient;
use proto::naming::{Error as NamingError, NamingClient};
use proto::proc::ProcClient;
use proto::sel4_transport::EndpointTransport;
use proto::Name;
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::{Endpoint, Notification, Tcb};
use sel4::{CPtr, Cap, MessageInfo, ObjectType};
use vspace::{Pool, VSpace};

rt::entry!(main);

/// Times a lookup is retried while its provider starts.
const LOOKUP_ATTEMPTS: usize = 500;
/// The endpoint of `proc`, once looked up (0: not yet), for the exit hook.
static PROC: AtomicU64 = AtomicU64::new(0);

use rt::rdtsc;

/// The exit hook of the bench role: halts the whole system with `status` through proc.
fn halt(status: u32) -> ! {
    let ep = PROC.load(Ordering::Acquire);
    if ep != 0 {
        let r = ProcClient::new(EndpointTransport::new(ep)).halt(status);
        println!("microbench: proc refused to halt: {r:?}");
    }
    rt::stop_thread()
}

/// The endpoint of service `service`, received into `slot`; retried while its provider
/// starts (naming says `NotFound` until it registers).
fn lookup(naming: &mut NamingClient<EndpointTransport>, service: &str, slot: CPtr) -> CPtr {
    let name = Name::new(service).expect("a valid service name");
    let mut result = Err(NamingError::NotFound);
    for _ in 0..LOOKUP_ATTEMPTS {
        naming.transport().receive_in(slot);
        result = naming.lookup(name);
        if result != Err(NamingError::NotFound) {
            break;
        }
        sel4::syscall::yield_now();
    }
    match result {
        Ok(binding) => binding.endpoint.0,
        Err(e) => panic!("microbench: lookup of {service}: {e:?}"),
    }
}

/// The last reading a helper took, and how many it has taken: the helper stores the
/// reading, then bumps the count; the measuring thread waits for the count to move.
pub struct Probe {
    reading: AtomicU64,
    count: AtomicU64,
}

impl Probe {
    /// A probe in static memory (helpers outlive every stack frame).
    pub fn leak() -> &'static Probe {
        alloc::boxed::Box::leak(alloc::boxed::Box::new(Probe {
            reading: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }))
    }

    /// Publishes `reading` (on the helper).
    pub fn mark(&self, reading: u64) {
        self.reading.store(reading, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Release);
    }

    /// How many readings were published so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Spins until a reading after the `before`th is published and returns it; started at
    /// TSC `start`, round `round` is lost after `microbench::SPIN_LIMIT_CYCLES`.
    pub fn next(&self, before: u64, start: u64, round: usize) -> Result<u64, RoundError> {
        while self.count() == before {
            if rdtsc().wrapping_sub(start) > microbench::SPIN_LIMIT_CYCLES {
                return Err(RoundError::Lost(round));
            }
            // No `pause` (core::hint::spin_loop): under QEMU's TCG it leaves the
            // execution loop, and a vCPU doing that in a tight loop starves QEMU's main
            // loop, which runs the device timers (e.g. the NIC's interrupt throttling).
        }
        Ok(self.reading.load(Ordering::Relaxed))
    }
}

/// The results so far; a failed benchmark prints an error line and is counted.
struct Results {
    failed: u32,
}

impl Results {
    fn report(&mut self, name: &str, samples: Result<Vec<u64>, RoundError>) {
        match samples.map(|mut s| Summary::of(&mut s)) {
            Ok(Some(summary)) => println!("{}", Report { name, summary }),
            Ok(None) => {
                self.failed += 1;
                println!("BENCH-ERROR {name}: no samples");
            }
            Err(e) => {
                self.failed += 1;
                println!("BENCH-ERROR {name}: {e}");
            }
        }
    }
}

fn main(info: &'static StartInfo) {
    let config = Config::parse(|k| info.arg(k)).unwrap_or_else(|e| panic!("{}: {e}", info.name()));
    match config.role {
        Role::Peer => peer::serve(info, &config),
        Role::Bench => bench(info, &config),
    }
}

fn bench(info: &StartInfo, config: &Config) {
    let mut free = Slots::new();
    let mut slot = || free.alloc().expect("a free slot");

    let mut naming = NamingClient::new(EndpointTransport::new(slots::NAMING));
    let proc_ep = lookup(&mut naming, "proc", slot());
    PROC.store(proc_ep, Ordering::Release);
    rt::set_exit_hook(halt);
    let memory_ep = lookup(&mut naming, "memory", slot());
    let devices_ep = lookup(&mut naming, "devices", slot());
    let peer_ep = lookup(&mut naming, config.service, slot());

    // Untyped memory from our own budget, into slots kept for it.
    let mut memory_slots: Vec<CPtr> = (0..16).map(|_| slot()).collect();
    let mut memory = MemoryClient::new(EndpointTransport::new(memory_ep));
    let refill = move |bits: u8| -> Option<CPtr> {
        let s = memory_slots.pop()?;
        memory.transport().receive_in(s);
        match memory.alloc(bits) {
            Ok(a) => Some(a.untyped.0),
            Err(e) => {
                println!("microbench: memory alloc of 2^{bits} bytes failed: {e:?}");
                None
            }
        }
    };
    let mut pool = Pool::new(free, 16, refill);
    let mut vspace = VSpace::own();

    // Helpers run at the MCP. The IPC benchmarks run this thread there too (seL4 5.0
    // takes its fastpath for a reply only to a caller of at least the replier's priority);
    // the notification and interrupt benchmarks one below, so a signal switches at once.
    let top = info.mcp as u8;
    assert!(top >= 1, "microbench: needs a priority of at least 1");
    let own = Cap::<Tcb>::from_raw(slots::TCB);
    own.tcb_set_priority(top).expect("run at the MCP");
    println!(
        "microbench: helpers at priority {top}, measuring at {top} (IPC) and {} (notifications, interrupt); {} rounds ({} for the interrupt) after {} warm-up rounds",
        top - 1,
        config.iterations,
        config.irq_iterations,
        config.warmup
    );

    let mut results = Results { failed: 0 };
    let object = |pool: &mut Pool<_>, ty| pool.object(ty, 0).expect("a kernel object");

    // IPC round trip, same address space: an echo server thread.
    let endpoint: Cap<Endpoint> = Cap::from_raw(object(&mut pool, ObjectType::Endpoint));
    thread::spawn(&mut pool, &mut vspace, top, "echo", move || {
        peer::echo(endpoint.raw())
    })
    .expect("start the echo thread");
    results.report(names::IPC_SAME_AS, round_trips(endpoint.raw(), config));

    // IPC round trip to the peer component.
    results.report(names::IPC_CROSS_AS, round_trips(peer_ep, config));

    own.tcb_set_priority(top - 1)
        .expect("step below the helpers");

    // Notification, same address space: a waiter thread.
    let ntfn: Cap<Notification> = Cap::from_raw(object(&mut pool, ObjectType::Notification));
    let probe = Probe::leak();
    thread::spawn(&mut pool, &mut vspace, top, "waiter", move || loop {
        sel4::syscall::wait(ntfn);
        probe.mark(rdtsc());
    })
    .expect("start the waiter thread");
    let samples = collect(config.warmup, config.iterations, |i| {
        let before = probe.count();
        let start = rdtsc();
        sel4::syscall::signal(ntfn);
        elapsed(i, start, probe.next(before, start, i)?)
    });
    results.report(names::NOTIFY_SAME_AS, samples);

    // Notification to the peer component's thread.
    let far: Cap<Notification> = Cap::from_raw(object(&mut pool, ObjectType::Notification));
    results.report(names::NOTIFY_CROSS_AS, wake_series(peer_ep, far, config));

    // Interrupt to driver thread.
    match config.nic {
        Some(device) => {
            let samples = nic::interrupts(&mut pool, &mut vspace, devices_ep, device, top, config);
            results.report(names::IRQ_TO_DRIVER, samples);
        }
        None => println!("microbench: no nic: {} skipped", names::IRQ_TO_DRIVER),
    }

    println!("{}", microbench::DONE);
    rt::exit(if results.failed == 0 { 0 } else { 1 })
}

/// Times Call + ReplyRecv round trips of one word each way to `endpoint`.
fn round_trips(endpoint: CPtr, config: &Config) -> Result<Vec<u64>, RoundError> {
    let info = MessageInfo::new(PING, 0, 0, 1);
    collect(config.warmup, config.iterations, |i| {
        let mut mrs = [i as u64, 0, 0, 0];
        let start = rdtsc();
        let reply = sel4::syscall::call_with_mrs(endpoint, info, &mut mrs);
        let end = rdtsc();
        if reply.label() != OK || mrs[0] != i as u64 {
            return Err(RoundError::Refused(i, reply.label()));
        }
        elapsed(i, start, end)
    })
}

/// Times signals of `ntfn` to the return from Wait in the peer: hands the peer the
/// notification for a series of rounds, then per round signals it and asks the peer for the
/// reading it took on waking.
fn wake_series(
    peer: CPtr,
    ntfn: Cap<Notification>,
    config: &Config,
) -> Result<Vec<u64>, RoundError> {
    let rounds = config.warmup + config.iterations;
    sel4::ipc::set_cap(0, ntfn.raw());
    let mut mrs = [rounds as u64, 0, 0, 0];
    let reply =
        sel4::syscall::call_with_mrs(peer, MessageInfo::new(WAKE_SERIES, 0, 1, 1), &mut mrs);
    if reply.label() != OK {
        return Err(RoundError::Refused(0, reply.label()));
    }
    let report = MessageInfo::new(REPORT, 0, 0, 0);
    collect(config.warmup, config.iterations, |i| {
        let start = rdtsc();
        sel4::syscall::signal(ntfn);
        let mut mrs = [0; 4];
        let reply = sel4::syscall::call_with_mrs(peer, report, &mut mrs);
        if reply.label() != OK {
            return Err(RoundError::Refused(i, reply.label()));
        }
        elapsed(i, start, mrs[0])
    })
}
