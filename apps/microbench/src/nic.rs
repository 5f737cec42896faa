//! Interrupt-to-driver latency with an e1000e (82574L) as the interrupt source.
//!
//! The NIC is claimed through `devices` with its MSI (the seL4 PAL's `device::Devices`,
//! as the iperf unikernel does); only the first page of BAR0 (the interrupt registers) is
//! mapped. The driver thread waits on the interrupt's notification; on waking it reads the
//! TSC, reads ICR (which clears the causes and so lets the next cause raise a new MSI),
//! acknowledges the handler and publishes the reading.
//! Each round the measuring thread reads the TSC and writes the trigger cause into ICS
//! (Interrupt Cause Set), which with the cause enabled in IMS makes the device send its MSI.
//! The device throttles its interrupts (QEMU keeps ITR at 128 us or more), so rounds start
//! at least `irq_gap_cycles` apart: each measures one interrupt that nothing holds back.

use alloc::vec::Vec;
use e1000e::regs::{ICR, ICS, IMC, IMS, INT_ALL, INT_RXO, ITR};
use libos_sel4::device::Devices;
use microbench::{collect, elapsed, Config, RoundError};
use proto::devices::IrqMode;
use proto::Name;
use rt::println;
use sel4::cap_type::Notification;
use sel4::{CPtr, Cap, ObjectType};
use vspace::{Pool, VSpace};

use crate::{rdtsc, thread, Probe};

/// The cause the benchmark raises: "receiver overrun", which nothing else raises here (the
/// receiver is never enabled) and which QEMU never delays (unlike the transmit and receive
/// timer causes, which its e1000e may hold back for the TIDV/RDTR delay timers).
const TRIGGER: u32 = INT_RXO;

/// Claims `device` from `devices`, starts its driver thread at `priority` and times
/// `config.irq_iterations` interrupts after `config.warmup`.
pub fn interrupts<F: FnMut(u8) -> Option<CPtr>>(
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    devices_ep: CPtr,
    device: &str,
    priority: u8,
    config: &Config,
) -> Result<Vec<u64>, RoundError> {
    let name = Name::new(device).expect("a valid device name");
    let mut devices = Devices::new("microbench", devices_ep);
    let info = devices.claim(name);
    assert!(
        info.pci.vendor == e1000e::pci::VENDOR_ID && info.pci.device == e1000e::pci::DEVICE_ID,
        "microbench: {device} is {:04x}:{:04x}, not an 82574L",
        info.pci.vendor,
        info.pci.device
    );
    // Only BAR0's first page: the interrupt registers.
    let (regs, paddr) = devices.map_bar(pool, vspace, name, 0, 4096);
    let handler = devices.irq(pool, name);
    let ntfn: Cap<Notification> = Cap::from_raw(
        pool.object(ObjectType::Notification, 0)
            .expect("a notification"),
    );
    handler
        .irq_handler_set_notification(ntfn)
        .expect("set the interrupt's notification");
    if info.irq != IrqMode::Msi {
        println!("microbench: {device} does not use MSI; the latency includes its controller");
    }

    // Quiet device: every cause masked, the least throttling, causes cleared, handler armed.
    regs.write32(IMC, INT_ALL);
    regs.write32(ITR, 0);
    let _ = regs.read32(ICR);
    let _ = handler.irq_handler_ack();
    println!(
        "microbench: {device} {:02x}:{:02x}.{} interrupt {:?}, BAR0 at {:#x} (physical {:#x}), ITR {} after writing 0, rounds {} cycles apart",
        info.pci.bus,
        info.pci.dev,
        info.pci.func,
        info.irq,
        regs.base(),
        paddr,
        regs.read32(ITR),
        config.irq_gap_cycles
    );

    let probe = Probe::leak();
    thread::spawn(pool, vspace, priority, "irq", move || loop {
        sel4::syscall::wait(ntfn);
        let woke = rdtsc();
        let _ = regs.read32(ICR);
        let _ = handler.irq_handler_ack();
        probe.mark(woke);
    })
    .expect("start the driver thread");

    regs.write32(IMS, TRIGGER);
    let mut last = rdtsc();
    let samples = collect(config.warmup, config.irq_iterations, |i| {
        while rdtsc().wrapping_sub(last) < config.irq_gap_cycles {
            // No `pause` (core::hint::spin_loop): under QEMU's TCG it leaves the
            // execution loop, and a vCPU doing that in a tight loop starves QEMU's main
            // loop, which runs the device timers (e.g. the NIC's interrupt throttling).
        }
        let before = probe.count();
        let start = rdtsc();
        last = start;
        regs.write32(ICS, TRIGGER);
        elapsed(i, start, probe.next(before, start, i)?)
    });
    regs.write32(IMC, INT_ALL);
    samples
}
