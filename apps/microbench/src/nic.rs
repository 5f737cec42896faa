//! Interrupt-to-driver latency with an e1000e (82574L) as the interrupt source.
//!
//! The NIC is claimed through `devices` with its MSI; only the first page of BAR0 (the
//! interrupt registers) is mapped. The driver thread waits on the interrupt's
//! notification; on waking it reads the TSC, reads ICR (which clears the causes and so
//! lets the next cause raise a new MSI), acknowledges the handler and publishes the reading.
//! Each round the measuring thread reads the TSC and writes the trigger cause into ICS
//! (Interrupt Cause Set), which with the cause enabled in IMS makes the device send its MSI.
//! The device throttles its interrupts (QEMU keeps ITR at 128 us or more), so rounds start
//! at least `irq_gap_cycles` apart: each measures one interrupt that nothing holds back.

use alloc::vec::Vec;
use e1000e::regs::{ICR, ICS, IMC, IMS, INT_ALL, INT_RXO, ITR};
use microbench::{collect, elapsed, Config, RoundError};
use proto::devices::{DevicesClient, IrqMode};
use proto::sel4_transport::EndpointTransport;
use proto::Name;
use rt::println;
use sel4::cap_type::{IrqHandler, Notification};
use sel4::{CPtr, Cap, CapRights, ObjectType};
use vspace::{Pool, VSpace};

use crate::{rdtsc, thread, Probe};

/// The cause the benchmark raises: "receiver overrun", which nothing else raises here (the
/// receiver is never enabled) and which QEMU never delays (unlike the transmit and receive
/// timer causes, which its e1000e may hold back for the TIDV/RDTR delay timers).
const TRIGGER: u32 = INT_RXO;

/// The first page of BAR0, mapped uncached.
#[derive(Clone, Copy)]
struct Registers {
    base: usize,
}

impl Registers {
    fn read(self, offset: usize) -> u32 {
        // SAFETY: `base` maps BAR0's first page uncached; every offset used here is a
        // 4-byte aligned register inside it.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }
    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }
}

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
    let mut devices = DevicesClient::new(EndpointTransport::new(devices_ep));
    let info = devices
        .claim(name)
        .unwrap_or_else(|e| panic!("microbench: claim {device}: {e:?}"));
    assert!(
        info.pci.vendor == e1000e::pci::VENDOR_ID && info.pci.device == e1000e::pci::DEVICE_ID,
        "microbench: {device} is {:04x}:{:04x}, not an 82574L",
        info.pci.vendor,
        info.pci.device
    );
    let slot = pool.slot().expect("a slot");
    devices.transport().receive_in(slot);
    let frame = devices
        .bar(name, 0, 0)
        .unwrap_or_else(|e| panic!("microbench: BAR0 of {device}: {e:?}"));
    let base = vspace
        .map(
            pool,
            &[frame.frame.0],
            CapRights::read_write(),
            sel4::consts::X86_UNCACHEABLE,
        )
        .expect("map BAR0") as usize;
    let slot = pool.slot().expect("a slot");
    devices.transport().receive_in(slot);
    let handler: Cap<IrqHandler> = Cap::from_raw(
        devices
            .irq(name)
            .unwrap_or_else(|e| panic!("microbench: interrupt of {device}: {e:?}"))
            .0,
    );
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
    let regs = Registers { base };
    regs.write(IMC, INT_ALL);
    regs.write(ITR, 0);
    let _ = regs.read(ICR);
    let _ = handler.irq_handler_ack();
    println!(
        "microbench: {device} {:02x}:{:02x}.{} interrupt {:?}, BAR0 at {:#x} (physical {:#x}), ITR {} after writing 0, rounds {} cycles apart",
        info.pci.bus,
        info.pci.dev,
        info.pci.func,
        info.irq,
        base,
        frame.paddr,
        regs.read(ITR),
        config.irq_gap_cycles
    );

    let probe = Probe::leak();
    thread::spawn(pool, vspace, priority, "irq", move || loop {
        sel4::syscall::wait(ntfn);
        let woke = rdtsc();
        let _ = regs.read(ICR);
        let _ = handler.irq_handler_ack();
        probe.mark(woke);
    })
    .expect("start the driver thread");

    regs.write(IMS, TRIGGER);
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
        regs.write(ICS, TRIGGER);
        elapsed(i, start, probe.next(before, start, i)?)
    });
    regs.write(IMC, INT_ALL);
    samples
}
