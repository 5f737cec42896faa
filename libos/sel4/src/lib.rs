//! The seL4 platform adaptation layer (PAL) of the library OS: everything
//! `libos_core::Pal` needs, on seL4 5.0 x86_64.
//!
//! - **Clock**: the TSC, converted with a frequency given as a start argument or
//!   calibrated against the PIT ([`clock`]).
//! - **Waiting**: `wait_until` blocks on the library OS thread's notification. It is
//!   signalled by the interrupt thread ([`irq`]) for device interrupts and for the timer
//!   ([`Timer`]): an HPET one-shot armed for the deadline and delivered as a message (the
//!   paper's timer), or as a fallback the PIT ticking every millisecond. Without a timer
//!   it polls the notification and yields until the deadline (burns the CPU while
//!   waiting; the idle figures then mean nothing).
//! - **Console**: `rt::print!` (the kernel's debug console).
//! - **Threads**: [`thread`] starts a second thread in the component's own address
//!   space (the interrupt thread; also used by the microbenchmarks' helpers).
//! - **Devices**: [`device`] claims a device from `devices` and maps its registers
//!   uncached ([`device::Registers`], the drivers' MMIO), [`dma`] hands out physically
//!   contiguous DMA memory ([`dma::DmaArena`]), and [`nic`] puts them together so a
//!   component drives an e1000e or virtio-net NIC in a few lines (the interrupt thread's
//!   acknowledgement hook included).
//! - **Disks**: [`blk`] claims a virtio-blk device and maps its virtqueue memory for the
//!   `virtio-blk` driver (the `blk` component).
//! - **Shared regions**: [`shared`] maps a region the description shares between this
//!   component and others, from the frames `memory` hands its members.
//! - **Idle accounting**: the executor counts the time spent in `wait_until`; the PAL
//!   keeps its own total and wake-up counts too ([`Sel4Pal::stats`]).
//!
//! Invariants: only the library OS thread calls the [`Pal`] methods; the interrupt thread
//! touches nothing but its notification, the IRQ handlers, its hooks and the wake-up
//! notification, and never allocates (the heap's lock spins).
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

#[allow(
    unsafe_code,
    reason = "the block driver's queue memory and virtio-drivers' Hal for its transport"
)]
pub mod blk;
pub mod budget;
pub mod clock;
pub mod cpu;
#[allow(
    unsafe_code,
    reason = "maps a device's BARs and accesses its registers"
)]
pub mod device;
#[allow(
    unsafe_code,
    reason = "DMA memory: mapped frames the device also writes"
)]
pub mod dma;
#[allow(
    unsafe_code,
    reason = "the interrupt thread's start, from a raw argument"
)]
pub mod irq;
#[allow(unsafe_code, reason = "reads the kernel's log frame it mapped")]
pub mod kernel_log;
#[allow(
    unsafe_code,
    reason = "the way in for Linux programs: the entry stub, the jump to the program, its memory"
)]
pub mod linux;
pub mod netclient;
#[allow(
    unsafe_code,
    reason = "the NIC's platform statics for the driver's DMA and BARs"
)]
pub mod nic;
pub mod nicclient;
pub mod restart;
pub mod shared;
pub mod stack;
pub mod thread;
pub mod timer;

use core::cell::{Cell, RefCell};

use libos_core::Pal;
use sel4::cap_type::{IoPort, Notification};

pub use hpet::Hpet;
use sel4::Cap;

pub use clock::TscClock;

pub use rt::rdtsc;

/// The PIT's ports through seL4's I/O port capability.
pub struct PitPorts(pub Cap<IoPort>);

impl clock::Ports for PitPorts {
    fn inb(&mut self, port: u16) -> u8 {
        self.0.x86_io_port_in8(port).unwrap_or(0)
    }
    fn outb(&mut self, port: u16, value: u8) {
        let _ = self.0.x86_io_port_out8(port.into(), value.into());
    }
}

/// The HPET's registers, mapped uncached at a virtual address.
pub struct HpetRegisters {
    base: usize,
}

#[allow(unsafe_code, reason = "whoever maps the HPET's page vouches for it")]
impl HpetRegisters {
    /// The registers mapped at `base`.
    ///
    /// # Safety
    /// `base` must map the HPET's 1 KiB register block, uncached, for as long as the
    /// value lives.
    pub unsafe fn new(base: usize) -> HpetRegisters {
        HpetRegisters { base }
    }
}

#[allow(
    unsafe_code,
    reason = "the HPET's registers, volatile reads and writes"
)]
impl hpet::Registers for HpetRegisters {
    fn read32(&mut self, offset: usize) -> u32 {
        assert!(offset < 0x400 && offset.is_multiple_of(4));
        // SAFETY: `new`'s contract: the block is mapped at `base`; the offset is inside it
        // and aligned.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }
    fn write32(&mut self, offset: usize, value: u32) {
        assert!(offset < 0x400 && offset.is_multiple_of(4));
        // SAFETY: as in `read32`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }
}

/// The timer that ends `wait_until`'s blocking at the deadline.
pub enum Timer {
    /// HPET one-shots at each deadline, delivered as a message (its handler is one of the
    /// interrupt thread's sources).
    Hpet(Hpet<HpetRegisters>),
    /// The PIT ticking every [`TICK_NS`] (its IRQ is one of the interrupt thread's sources).
    Pit(PitPorts),
    /// No timer device of our own: a peer signals the notification at least every
    /// `period_ns` (the `net` service's tick to its clients), so a deadline is noticed at
    /// most that late.
    Tick {
        /// The longest time between two signals, in nanoseconds.
        period_ns: u64,
    },
}

/// Period of the PIT tick that bounds how late a deadline can be noticed.
pub const TICK_NS: u64 = 1_000_000;

/// Longest single poll+yield spin before the executor polls the devices again.
pub const POLL_SLICE_NS: u64 = 20_000;

/// Counters of the PAL's waiting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PalStats {
    /// Nanoseconds spent in `wait_until`.
    pub idle_ns: u64,
    /// Calls of `wait_until` that blocked or polled.
    pub waits: u64,
    /// Wake-ups that came from the interrupt thread (device or timer) before the deadline.
    pub wakeups: u64,
    /// Timer deadlines armed (HPET) or waits on the tick (PIT).
    pub timers: u64,
    /// Deadlines found already due while arming the HPET (no wait).
    pub late: u64,
}

/// The seL4 PAL. Create it on the library OS thread, then give it to `libos_core::Runtime::new`.
pub struct Sel4Pal {
    clock: TscClock,
    wake: Cap<Notification>,
    timer: Option<RefCell<Timer>>,
    stats: Cell<PalStats>,
    /// Badge bits the notification delivered since [`Sel4Pal::take_badges`].
    badges: Cell<u64>,
}

impl Sel4Pal {
    /// A PAL over `clock`, waiting on `wake` (a notification the interrupt thread signals
    /// with a non-zero badge), with `timer` for deadlines (a PIT starts ticking here).
    pub fn new(clock: TscClock, wake: Cap<Notification>, timer: Option<Timer>) -> Sel4Pal {
        let timer = timer.map(|mut timer| {
            if let Timer::Pit(ports) = &mut timer {
                clock::periodic(ports, clock::pit_ticks(TICK_NS));
            }
            timer
        });
        Sel4Pal {
            clock,
            wake,
            timer: timer.map(RefCell::new),
            stats: Cell::new(PalStats::default()),
            badges: Cell::new(0),
        }
    }

    /// The PAL's counters.
    pub fn stats(&self) -> PalStats {
        self.stats.get()
    }

    /// The clock.
    pub fn clock(&self) -> TscClock {
        self.clock
    }

    /// The badge bits the notification delivered since the last call (which signallers
    /// woke the thread: the interrupt thread, a peer, `proc`), cleared.
    pub fn take_badges(&self) -> u64 {
        self.badges.replace(0)
    }

    /// Waits on the notification, recording the badge.
    fn wait(&self) {
        let badge = sel4::syscall::wait(self.wake);
        self.badges.set(self.badges.get() | badge);
    }

    fn count(&self, f: impl FnOnce(&mut PalStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }
}

impl Pal for Sel4Pal {
    fn now_ns(&self) -> u64 {
        self.clock.ns(rdtsc())
    }

    fn wait_until(&self, deadline_ns: Option<u64>) {
        self.count(|s| s.waits += 1);
        let Some(deadline) = deadline_ns else {
            self.wait();
            self.count(|s| s.wakeups += 1);
            return;
        };
        let now = self.now_ns();
        if deadline <= now {
            return;
        }
        match self.timer.as_ref().map(|t| t.borrow_mut()).as_deref_mut() {
            Some(Timer::Hpet(hpet)) => {
                if !hpet.arm_in(deadline - now) {
                    self.count(|s| s.late += 1);
                    return;
                }
                self.count(|s| s.timers += 1);
                self.wait();
                if self.now_ns() < deadline {
                    self.count(|s| s.wakeups += 1);
                }
            }
            Some(Timer::Pit(_) | Timer::Tick { .. }) => {
                // The PIT (see `new`) or the peer ticks periodically: any tick, device or
                // peer's signal wakes us.
                self.count(|s| s.timers += 1);
                self.wait();
            }
            // Temporary: no timer, so poll the notification and yield until the deadline.
            // The interrupt thread cannot run while this thread spins (it has a lower
            // priority today), so return after a short slice and let the executor poll
            // the devices again: a busy poll, counted as idle.
            None => {
                let until = deadline.min(now + POLL_SLICE_NS);
                loop {
                    let badge = sel4::syscall::poll(self.wake);
                    if badge != 0 {
                        self.badges.set(self.badges.get() | badge);
                        self.count(|s| s.wakeups += 1);
                        return;
                    }
                    if self.now_ns() >= until {
                        return;
                    }
                    sel4::syscall::yield_now();
                }
            }
        }
    }

    fn console_write(&self, text: &str) {
        rt::print!("{text}");
    }

    fn idle_exit(&self, idle_ns: u64) {
        self.count(|s| s.idle_ns += idle_ns);
    }
}
