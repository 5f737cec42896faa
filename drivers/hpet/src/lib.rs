//! A driver for the HPET (IA-PC High Precision Event Timers, revision 1.0a): reads the
//! main counter and times one-shot deadlines on one comparator whose interrupt is
//! delivered as a message (the timer's FSB route), so no interrupt controller pin is
//! involved. The registers are reached through [`Registers`] (32-bit accesses only, which
//! every implementation supports), so the logic runs on the host against a model.
//!
//! QEMU offers FSB delivery when started with `-global hpet.msi=on`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

/// 32-bit access to the HPET's register block (1 KiB).
pub trait Registers {
    /// Reads the 32-bit register at byte `offset`.
    fn read32(&mut self, offset: usize) -> u32;
    /// Writes the 32-bit register at byte `offset`.
    fn write32(&mut self, offset: usize, value: u32);
}

/// Register offsets and bits (HPET specification 1.0a, section 2.3).
pub mod regs {
    /// General capabilities and ID (64 bits).
    pub const CAPABILITIES: usize = 0x000;
    /// General configuration.
    pub const CONFIG: usize = 0x010;
    /// Main counter value (64 bits).
    pub const COUNTER: usize = 0x0F0;
    /// Timer `n`'s configuration and capabilities (64 bits).
    pub const fn timer_config(n: u8) -> usize {
        0x100 + 0x20 * n as usize
    }
    /// Timer `n`'s comparator (64 bits).
    pub const fn timer_comparator(n: u8) -> usize {
        0x108 + 0x20 * n as usize
    }
    /// Timer `n`'s FSB route: value (low 32 bits), address (high 32 bits).
    pub const fn timer_fsb_route(n: u8) -> usize {
        0x110 + 0x20 * n as usize
    }
    /// CONFIG: the main counter runs and timers may interrupt.
    pub const ENABLE: u32 = 1 << 0;
    /// CONFIG: legacy replacement routing (timers 0 and 1 take over the PIT's and RTC's lines).
    pub const LEGACY_ROUTE: u32 = 1 << 1;
    /// Timer config: level-triggered (else edge).
    pub const TN_LEVEL: u32 = 1 << 1;
    /// Timer config: interrupts enabled.
    pub const TN_INT_ENABLE: u32 = 1 << 2;
    /// Timer config: periodic (else one-shot).
    pub const TN_PERIODIC: u32 = 1 << 3;
    /// Timer capability: a 64-bit comparator.
    pub const TN_SIZE_64: u32 = 1 << 5;
    /// Timer config: force 32-bit mode.
    pub const TN_32BIT: u32 = 1 << 8;
    /// Timer config: the IOAPIC route field (bits 13:9).
    pub const TN_ROUTE_MASK: u32 = 0x1F << 9;
    /// Timer config: deliver through the FSB route (a message) instead of a pin.
    pub const TN_FSB_ENABLE: u32 = 1 << 14;
    /// Timer capability: FSB delivery is available.
    pub const TN_FSB_CAPABLE: u32 = 1 << 15;
    /// The longest counter period the specification allows, in femtoseconds (100 ns).
    pub const MAX_PERIOD_FS: u32 = 100_000_000;
}

use regs::*;

/// Why the HPET cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpetError {
    /// The counter period is zero or above the specification's 100 ns: not an HPET.
    BadPeriod(u32),
    /// No timer can deliver its interrupt as a message (on QEMU: `-global hpet.msi=on`).
    NoFsbTimer,
}

/// An enabled HPET with one timer routed to a message for one-shot deadlines.
pub struct Hpet<R> {
    regs: R,
    period_fs: u64,
    timer: u8,
    timers: u8,
}

impl<R: Registers> Hpet<R> {
    /// Checks the block, picks the first timer able to deliver by FSB, disables every
    /// timer's interrupt, turns legacy routing off and starts the main counter.
    pub fn new(mut regs: R) -> Result<Hpet<R>, HpetError> {
        let period = regs.read32(CAPABILITIES + 4);
        if period == 0 || period > MAX_PERIOD_FS {
            return Err(HpetError::BadPeriod(period));
        }
        let timers = ((regs.read32(CAPABILITIES) >> 8) & 0x1F) as u8 + 1;
        let mut fsb = None;
        for n in 0..timers {
            let config = regs.read32(timer_config(n));
            regs.write32(timer_config(n), config & !(TN_INT_ENABLE | TN_FSB_ENABLE));
            if fsb.is_none() && config & TN_FSB_CAPABLE != 0 && config & TN_SIZE_64 != 0 {
                fsb = Some(n);
            }
        }
        let timer = fsb.ok_or(HpetError::NoFsbTimer)?;
        let config = regs.read32(CONFIG);
        regs.write32(CONFIG, (config & !LEGACY_ROUTE) | ENABLE);
        Ok(Hpet {
            regs,
            period_fs: u64::from(period),
            timer,
            timers,
        })
    }

    /// The timer used for deadlines.
    pub fn timer(&self) -> u8 {
        self.timer
    }

    /// How many timers the block has.
    pub fn timers(&self) -> u8 {
        self.timers
    }

    /// The counter's frequency in Hz.
    pub fn hz(&self) -> u64 {
        1_000_000_000_000_000 / self.period_fs
    }

    /// Routes the deadline timer's interrupt to the message `data` at `address`
    /// (one-shot, edge, 64-bit comparator) and enables it.
    pub fn route_message(&mut self, address: u32, data: u32) {
        let t = self.timer;
        self.regs.write32(timer_fsb_route(t), data);
        self.regs.write32(timer_fsb_route(t) + 4, address);
        let config = self.regs.read32(timer_config(t));
        let config = (config & !(TN_LEVEL | TN_PERIODIC | TN_32BIT | TN_ROUTE_MASK))
            | TN_FSB_ENABLE
            | TN_INT_ENABLE;
        self.regs.write32(timer_config(t), config);
    }

    /// The main counter (read high, low, high until the halves agree).
    pub fn counter(&mut self) -> u64 {
        loop {
            let high = self.regs.read32(COUNTER + 4);
            let low = self.regs.read32(COUNTER);
            if self.regs.read32(COUNTER + 4) == high {
                return u64::from(high) << 32 | u64::from(low);
            }
        }
    }

    /// Counter ticks in `ns` nanoseconds, rounded up.
    pub fn ticks(&self, ns: u64) -> u64 {
        let t = (u128::from(ns) * 1_000_000).div_ceil(u128::from(self.period_fs));
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    /// Arms the deadline timer to fire `ns` nanoseconds from now. Returns `false` if the
    /// counter had already passed the comparator once it was written (the deadline is
    /// due: do not wait for the interrupt, which may or may not come).
    pub fn arm_in(&mut self, ns: u64) -> bool {
        let target = self.counter().wrapping_add(self.ticks(ns).max(1));
        let t = self.timer;
        // Written in two halves: the value in between can at worst fire early, a spurious
        // wake-up the caller tolerates; the final value is the target.
        self.regs
            .write32(timer_comparator(t) + 4, (target >> 32) as u32);
        self.regs.write32(timer_comparator(t), target as u32);
        (self.counter().wrapping_sub(target) as i64) < 0
    }
}

#[cfg(test)]
mod tests;
