//! Tessera's root task: the first component seL4 starts.
//!
//! It first proves the foundation: it prints a boot summary, builds a second
//! thread from untyped memory, exchanges messages and a notification with it,
//! measures the IPC round trip, checks that an invalid invocation returns the
//! kernel's error, and reports the second thread's fault. Each check prints
//! `CHECK <name>: PASS|FAIL ...`. Then, with a system in its boot image, it
//! starts the fundamental services (see `system`); without one, QEMU ends with
//! status 0 when all checks pass.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

mod objects;
mod system;
mod worker;

use alloc::vec::Vec;
use objects::Allocator;
use root::fault::FaultReport;
use root::stats::Stats;
use root::summary::{BootSummary, Untyped};
use rt::{println, rdtsc};
use sel4::bootinfo::BootInfoRef;
use sel4::cap_type::{Endpoint, IoPort};
use sel4::{init_caps, Cap, CapRights, Error, MessageInfo};

// The kernel starts the root task with `rsp = 0` and no loader maps it a heap: both are
// static regions in its image.
rt::entry!(main, stack = 256 * 1024, heap = 8 * 1024 * 1024);

/// The boot image `xtask` packed (system description + component ELFs); empty when the
/// root task was built without a system, and then it runs its foundation checks.
static IMAGE: &[u8] = include_bytes!(env!("TESSERA_IMAGE_PATH"));

/// Round trips timed for the IPC measurement.
const IPC_ITERATIONS: usize = 10_000;

/// Ends QEMU through the isa-debug-exit device with `status`.
fn exit_qemu(status: u32) -> ! {
    let port: Cap<IoPort> = init_caps::IO_PORT;
    let _ = port.x86_io_port_out32(0xf4, status as sel4::Word);
    // Without the device QEMU keeps running: stop here.
    rt::stop_thread()
}

/// Counts failed checks; printed per check as `CHECK name: PASS|FAIL`.
struct Checks {
    failed: u32,
}

impl Checks {
    fn report(&mut self, name: &str, ok: bool, detail: core::fmt::Arguments) {
        if !ok {
            self.failed += 1;
        }
        println!(
            "CHECK {name}: {} {detail}",
            if ok { "PASS" } else { "FAIL" }
        );
    }
}

/// The root task's start: `rt::entry!` has checked the kernel's boot info and pointed the
/// `sel4` crate at the IPC buffer it names, so invocations (and so exit_qemu) work.
fn main(bi: BootInfoRef<'static>) {
    rt::set_exit_hook(exit_qemu);

    println!("Tessera root task");
    #[cfg(feature = "dump-bootinfo")]
    dump_bootinfo(&bi);
    print_summary(&bi);

    let mut checks = Checks { failed: 0 };
    let mut alloc = Allocator::new(&bi);
    let w = worker::start(&mut alloc, &bi);

    // The worker signals the notification first thing.
    let badge = sel4::syscall::wait(w.ready);
    checks.report(
        "second-thread",
        badge != 0,
        format_args!("(worker started, badge {badge:#x})"),
    );
    checks.report(
        "notification",
        badge == worker::READY_BADGE,
        format_args!("(badge {badge:#x})"),
    );

    // One call with arguments: the worker adds them.
    let mut mrs = [20, 22, 0, 0];
    let reply = sel4::syscall::call_with_mrs(
        w.endpoint.raw(),
        MessageInfo::new(worker::OP_ADD, 0, 0, 2),
        &mut mrs,
    );
    checks.report(
        "call-reply",
        reply.label() == 0 && mrs[0] == 42,
        format_args!("(20 + 22 = {} from the worker)", mrs[0]),
    );

    measure_round_trip(w.endpoint);
    check_invalid_invocations(&mut checks, &mut alloc);

    // Tell the worker to fault, then take its fault message.
    let mut mrs = [0; 4];
    let _ = sel4::syscall::call_with_mrs(
        w.endpoint.raw(),
        MessageInfo::new(worker::OP_FAULT, 0, 0, 0),
        &mut mrs,
    );
    let (info, badge) = sel4::syscall::recv_with_mrs(w.fault_endpoint.raw(), &mut mrs);
    let words: Vec<sel4::Word> = (0..info.length() as usize)
        .map(|i| if i < 4 { mrs[i] } else { sel4::ipc::get_mr(i) })
        .collect();
    let report = FaultReport::decode("root.worker", info.label(), &words);
    println!("{report}");
    checks.report(
        "fault-report",
        badge == worker::FAULT_BADGE && report.is_vm_fault_at(worker::FAULT_ADDRESS),
        format_args!("(fault endpoint badge {badge:#x})"),
    );

    if checks.failed != 0 {
        println!("root: {} checks failed", checks.failed);
        rt::exit(1)
    }
    println!("root: all checks passed");
    // With a system in the boot image, go on and start it (same allocator: the
    // checks' objects keep their slots); without one, the checks were the job.
    if !IMAGE.is_empty() {
        system::boot(&bi, IMAGE, alloc);
    }
    rt::exit(0)
}

fn print_summary(bi: &BootInfoRef) {
    let untypeds = bi
        .untypeds()
        .map(|(_, u)| Untyped {
            paddr: u.paddr(),
            size_bits: u.size_bits(),
            is_device: u.is_device(),
        })
        .collect();
    let empty = bi.empty();
    let summary = BootSummary {
        node: (bi.node_id, bi.num_nodes),
        cnode_size_bits: bi.init_thread_cnode_size_bits,
        free_slots: (empty.start, empty.end),
        untypeds,
        tsc_mhz: bi.arch_info,
        extra_len: bi.extra_len,
    };
    rt::print!("{summary}");
}

#[cfg(feature = "dump-bootinfo")]
fn dump_bootinfo(bi: &BootInfoRef) {
    for chunk in bi.as_bytes().chunks(32) {
        rt::print!("bootinfo-hex: ");
        for b in chunk {
            rt::print!("{b:02x}");
        }
        println!();
    }
}

/// Times `IPC_ITERATIONS` Call + ReplyRecv round trips to the worker with the TSC.
fn measure_round_trip(ep: Cap<Endpoint>) {
    let mut samples = Vec::with_capacity(IPC_ITERATIONS);
    let info = MessageInfo::new(worker::OP_PING, 0, 0, 1);
    for i in 0..IPC_ITERATIONS + 100 {
        let mut mrs = [i as sel4::Word, 0, 0, 0];
        let start = rdtsc();
        sel4::syscall::call_with_mrs(ep.raw(), info, &mut mrs);
        let end = rdtsc();
        // The first hundred warm the caches and the TLB.
        if i >= 100 {
            samples.push(end.wrapping_sub(start));
        }
    }
    let s = Stats::of(&mut samples).expect("samples");
    println!(
        "ipc round trip: median {} cycles ({} iterations, min {}, p90 {}, max {})",
        s.median, s.count, s.min, s.p90, s.max
    );
}

/// Deliberately invalid invocations must come back as the kernel's error, not a crash.
fn check_invalid_invocations(checks: &mut Checks, alloc: &mut Allocator) {
    let (untyped, _) = alloc.some_untyped();
    let slot = alloc.slot();
    // Object type 9999 does not exist.
    let r = untyped.untyped_retype(9999, 0, init_caps::CNODE, 0, 0, slot, 1);
    checks.report(
        "invalid-invocation",
        r == Err(Error::InvalidArgument),
        format_args!("(untyped_retype with object type 9999 -> {r:?})"),
    );
    // Copying from an empty slot fails the source lookup.
    let empty = alloc.slot();
    let r = init_caps::CNODE.cnode_copy(slot, 64, init_caps::CNODE, empty, 64, CapRights::all());
    checks.report(
        "empty-slot-lookup",
        r == Err(Error::FailedLookup),
        format_args!("(cnode_copy from an empty slot -> {r:?})"),
    );
}
