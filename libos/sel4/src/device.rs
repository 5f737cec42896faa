//! Device access for drivers in `drivers/`: claiming a device from the `devices` service
//! ([`Devices`]), its memory BAR mapped uncached ([`Registers`], the e1000e driver's
//! `Mmio`), its interrupt handler, the HPET and PIT for the PAL's timer, and a busy-wait
//! [`TscDelay`] for drivers' reset sequences.
//!
//! Set-up requests are asked again while `devices` restarts (`proto::retry`'s start-up
//! back-off); a request that still fails ends the component with
//! `COMPONENT: cannot ACTION: REASON` (`rt::fail`): a driver without its device has
//! nothing to do. The HPET and PIT are optional and come back as `None` instead.
//!
//! Invariants: a [`Registers`] is made only over device memory mapped uncached for good
//! (components never unmap device registers).

use alloc::format;
use alloc::vec::Vec;

use proto::devices::message::MessageClient;
use proto::devices::ports::PortsClient;
use proto::devices::{DeviceInfo, DevicesClient};
use proto::retry::{retry, Backoff, Transient};
use proto::sel4_transport::EndpointTransport;
use proto::Name;
use sel4::cap_type::{IoPort, IrqHandler};
use sel4::{CPtr, Cap, CapRights};
use vspace::{Pool, VSpace};

use crate::{rdtsc, Hpet, HpetRegisters, TscClock};

/// Bytes per mapped page of a BAR.
pub const PAGE_SIZE: u64 = 4096;

/// Device registers mapped uncached: 8- and 32-bit volatile access by byte offset.
#[derive(Clone, Copy, Debug)]
pub struct Registers {
    base: usize,
    size: usize,
}

impl Registers {
    /// The `size` bytes of registers mapped at virtual `base`.
    ///
    /// # Safety
    /// `size` bytes at `base` must be a device's registers mapped uncached for as long as
    /// any copy of the value lives, and every offset a driver passes to the accessors must
    /// lie inside them (debug builds check; release builds trust the driver, as its
    /// register offsets are constants).
    pub unsafe fn new(base: usize, size: usize) -> Registers {
        Registers { base, size }
    }

    /// The virtual address of byte 0.
    pub fn base(&self) -> usize {
        self.base
    }

    /// The mapped size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Reads the 32-bit register at byte `offset` (4-byte aligned).
    #[inline]
    pub fn read32(&self, offset: usize) -> u32 {
        debug_assert!(offset + 4 <= self.size && offset.is_multiple_of(4));
        // SAFETY: `new`'s contract: the registers are mapped uncached at `base` and the
        // offset is inside them.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    /// Writes `value` to the 32-bit register at byte `offset` (4-byte aligned).
    #[inline]
    pub fn write32(&self, offset: usize, value: u32) {
        debug_assert!(offset + 4 <= self.size && offset.is_multiple_of(4));
        // SAFETY: as in `read32`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// Reads the 8-bit register at byte `offset`.
    #[inline]
    pub fn read8(&self, offset: usize) -> u8 {
        debug_assert!(offset < self.size);
        // SAFETY: as in `read32`.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u8) }
    }
}

impl e1000e::Mmio for Registers {
    #[inline]
    fn read32(&mut self, offset: usize) -> u32 {
        Registers::read32(self, offset)
    }
    #[inline]
    fn write32(&mut self, offset: usize, value: u32) {
        Registers::write32(self, offset, value)
    }
}

/// A busy wait on the TSC, for drivers' reset and link sequences (the e1000e's `Delay`).
#[derive(Clone, Copy, Debug)]
pub struct TscDelay(pub TscClock);

impl e1000e::Delay for TscDelay {
    fn delay_us(&mut self, micros: u32) {
        let end = self.0.ns(rdtsc()) + u64::from(micros) * 1_000;
        while self.0.ns(rdtsc()) < end {
            core::hint::spin_loop();
        }
    }
}

/// A set-up request: asked again while the peer restarts, else the component ends with
/// `COMPONENT: cannot ACTION: REASON`.
pub fn setup<T, E: Transient + core::fmt::Display>(
    component: &str,
    action: impl core::fmt::Display,
    request: impl FnMut() -> Result<T, E>,
) -> T {
    retry(&Backoff::STARTUP, rt::yield_times, request)
        .unwrap_or_else(|e| rt::fail(component, action, e))
}

/// A component's client of the `devices` service, with the slot handling and mapping its
/// answers need.
pub struct Devices {
    component: &'static str,
    endpoint: CPtr,
    client: DevicesClient<EndpointTransport>,
}

impl Devices {
    /// A client of `devices` at `endpoint`; `component` names the caller in failure lines.
    pub fn new(component: &'static str, endpoint: CPtr) -> Devices {
        Devices {
            component,
            endpoint,
            client: DevicesClient::new(EndpointTransport::new(endpoint)),
        }
    }

    /// The component's name, as given to [`Devices::new`].
    pub fn component(&self) -> &'static str {
        self.component
    }

    /// The `devices` endpoint.
    pub fn endpoint(&self) -> CPtr {
        self.endpoint
    }

    /// Claims `device`; ends the component if it cannot.
    pub fn claim(&mut self, device: Name) -> DeviceInfo {
        let client = &mut self.client;
        setup(self.component, format_args!("claim {device}"), || {
            client.claim(device)
        })
    }

    /// Maps the first `size` bytes (whole pages) of memory BAR `bar` of the claimed
    /// `device` uncached: the registers and the physical address of their first page.
    /// Ends the component if it cannot.
    pub fn map_bar<F: FnMut(u8) -> Option<CPtr>>(
        &mut self,
        pool: &mut Pool<F>,
        vspace: &mut VSpace,
        device: Name,
        bar: u8,
        size: u64,
    ) -> (Registers, u64) {
        let action = format!("map {device}'s BAR{bar}");
        let (mut frames, mut paddr) = (Vec::new(), 0);
        for page in 0..size.div_ceil(PAGE_SIZE) {
            let slot = pool
                .slot()
                .unwrap_or_else(|e| rt::fail(self.component, &action, format_args!("{e:?}")));
            self.client.transport().receive_in(slot);
            let client = &mut self.client;
            let frame = setup(self.component, &action, || client.bar(device, bar, page));
            if page == 0 {
                paddr = frame.paddr;
            }
            frames.push(frame.frame.0);
        }
        let base = vspace
            .map(
                pool,
                &frames,
                CapRights::read_write(),
                sel4::consts::X86_UNCACHEABLE,
            )
            .unwrap_or_else(|e| rt::fail(self.component, &action, format_args!("{e:?}")));
        let size = (frames.len() as u64 * PAGE_SIZE) as usize;
        // SAFETY: `base` maps the BAR's first `size` bytes (whole pages) uncached, never
        // unmapped; the caller's driver addresses registers inside its own device's BAR.
        let registers = unsafe { Registers::new(base as usize, size) };
        (registers, paddr)
    }

    /// The interrupt handler of the claimed `device`; ends the component if it cannot.
    pub fn irq<F: FnMut(u8) -> Option<CPtr>>(
        &mut self,
        pool: &mut Pool<F>,
        device: Name,
    ) -> Cap<IrqHandler> {
        let action = format!("take {device}'s interrupt");
        let slot = pool
            .slot()
            .unwrap_or_else(|e| rt::fail(self.component, &action, format_args!("{e:?}")));
        self.client.transport().receive_in(slot);
        let client = &mut self.client;
        Cap::from_raw(setup(self.component, &action, || client.irq(device)).0)
    }

    /// The interrupt handler of the claimed `device`, asked once, received in `slot`.
    pub fn try_irq(
        &mut self,
        slot: CPtr,
        device: Name,
    ) -> Result<Cap<IrqHandler>, proto::devices::Error> {
        self.client.transport().receive_in(slot);
        Ok(Cap::from_raw(self.client.irq(device)?.0))
    }

    /// The 32-bit word at `offset` of the claimed PCI `device`'s configuration space
    /// (read-only, through `devices`); ends the component if it cannot.
    pub fn read_config(&mut self, device: Name, offset: u8) -> u32 {
        let mut client =
            proto::devices::config::ConfigClient::new(EndpointTransport::new(self.endpoint));
        setup(
            self.component,
            format_args!("read {device}'s configuration space"),
            || client.read_config(device, offset),
        )
    }

    /// The HPET `device` as a deadline timer: claimed, its register page mapped, its
    /// interrupt handler taken and its message programmed into the timer's FSB route.
    /// `None` when any step fails (the caller falls back to another timer; an HPET that
    /// answers but is unusable is reported on the console).
    pub fn hpet<F: FnMut(u8) -> Option<CPtr>>(
        &mut self,
        pool: &mut Pool<F>,
        vspace: &mut VSpace,
        device: Name,
    ) -> Option<(Hpet<HpetRegisters>, Cap<IrqHandler>)> {
        self.client.claim(device).ok()?;
        let slot = pool.slot().ok()?;
        self.client.transport().receive_in(slot);
        let page = self.client.bar(device, 0, 0).ok()?;
        let base = vspace
            .map(
                pool,
                &[page.frame.0],
                CapRights::read_write(),
                sel4::consts::X86_UNCACHEABLE,
            )
            .ok()? as usize;
        let handler = self.try_irq(pool.slot().ok()?, device).ok()?;
        let message = MessageClient::new(EndpointTransport::new(self.endpoint))
            .msi_message(device)
            .ok()?;
        // SAFETY: `base` maps the HPET's register page uncached, never unmapped.
        let regs = unsafe { HpetRegisters::new(base) };
        match Hpet::new(regs) {
            Ok(mut timer) => {
                timer.route_message(message.address as u32, message.data);
                Some((timer, handler))
            }
            Err(e) => {
                rt::println!(
                    "{}: the HPET is unusable ({e:?}); falling back",
                    self.component
                );
                None
            }
        }
    }

    /// The I/O port capability of the PIT `device` (claimed here): for the TSC's
    /// calibration and the PIT tick. `None` when the description gives no such device.
    pub fn pit_ports<F: FnMut(u8) -> Option<CPtr>>(
        &mut self,
        pool: &mut Pool<F>,
        device: Name,
    ) -> Option<Cap<IoPort>> {
        self.client.claim(device).ok()?;
        let ports = pool.slot().ok()?;
        let mut client = PortsClient::new(EndpointTransport::new(self.endpoint));
        client.transport().receive_in(ports);
        client.ioport(device).ok()?;
        Some(Cap::from_raw(ports))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use e1000e::{Delay, Mmio};
    use std::vec;

    #[test]
    fn registers_read_and_write_the_mapped_words() {
        let mut memory = vec![0u32; 64];
        let base = memory.as_mut_ptr() as usize;
        // SAFETY: `memory` stands in for 256 bytes of registers and outlives `regs`.
        let mut regs = unsafe { Registers::new(base, 256) };
        regs.write32(e1000e::regs::ICR, 0x8000_0001);
        assert_eq!(Mmio::read32(&mut regs, e1000e::regs::ICR), 0x8000_0001);
        Mmio::write32(&mut regs, 4, 0x0403_0201);
        assert_eq!(regs.read8(5), 0x02);
        assert_eq!((regs.base(), regs.size()), (base, 256));
        assert_eq!(memory[e1000e::regs::ICR / 4], 0x8000_0001);
        assert_eq!(memory[1], 0x0403_0201);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic]
    fn a_register_past_the_mapping_panics_in_debug_builds() {
        let mut memory = vec![0u32; 4];
        // SAFETY: as above; the read below is refused before it happens.
        let regs = unsafe { Registers::new(memory.as_mut_ptr() as usize, 16) };
        regs.read32(16);
    }

    #[test]
    fn the_delay_waits_at_least_as_long_as_asked() {
        // A 1 GHz clock: 1 us is 1000 TSC ticks, whatever the host's real frequency.
        let mut delay = TscDelay(TscClock::new(1_000_000_000, rdtsc()));
        let start = rdtsc();
        delay.delay_us(200);
        assert!(rdtsc() - start >= 200_000);
    }
}
