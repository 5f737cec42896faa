//! The driver proper: initialisation, the transmit and receive rings, interrupts.

use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use crate::desc::{
    self, RX_ERRORS_ANY, RX_ERROR_IPE, RX_ERROR_TCPE, RX_STATUS_EOP, RX_STATUS_IPCS,
    RX_STATUS_IXSM, RX_STATUS_TCPCS, TX_CMD_EOP, TX_CMD_IFCS, TX_CMD_RS,
};
use crate::regs::*;
use crate::{
    Config, Delay, Dma, DmaRegion, InitError, Mmio, RxError, TxError, BUFFER_CHUNK_SIZE,
    BUFFER_SIZE, MAX_FRAME_LEN, RING_ALIGN,
};

/// Receive errors that are checksum verdicts (IPv4 header, TCP/UDP).
const CHECKSUM_ERRORS: u8 = RX_ERROR_IPE | RX_ERROR_TCPE;
/// Buffers per DMA chunk.
const BUFFERS_PER_CHUNK: usize = BUFFER_CHUNK_SIZE / BUFFER_SIZE;
/// Microseconds to wait after setting `CTRL.RST` before looking at it.
const RESET_WAIT_US: u32 = 1_000;
/// Further polls of `CTRL.RST`, [`RESET_POLL_US`] apart, before giving up.
const RESET_POLLS: usize = 100;
/// Microseconds between polls of `CTRL.RST`.
const RESET_POLL_US: u32 = 100;
/// Recycled receive descriptors handed back with one `RDT` write (at most; fewer for
/// small rings). Each register write is a costly exit to QEMU.
const RX_TAIL_BATCH: usize = 16;

/// What one [`E1000e::handle_interrupt`] found in `ICR`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interrupt {
    /// The raw `ICR` value.
    pub raw: u32,
    /// Frames were received (`RXT0`, or `RXQ0` with MSI-X).
    pub rx: bool,
    /// Transmit descriptors were written back (`TXDW`, or `TXQ0` with MSI-X).
    pub tx_done: bool,
    /// The link went up or down (`LSC`); see [`E1000e::link_up`].
    pub link_changed: bool,
    /// The receiver ran out of descriptors (`RXO`) or is close to (`RXDMT0`).
    pub rx_overrun: bool,
}

impl Interrupt {
    /// Decodes an `ICR` value.
    pub fn decode(icr: u32) -> Self {
        Self {
            raw: icr,
            rx: icr & (INT_RXT0 | INT_RXQ0) != 0,
            tx_done: icr & (INT_TXDW | INT_TXQ0) != 0,
            link_changed: icr & INT_LSC != 0,
            rx_overrun: icr & (INT_RXO | INT_RXDMT0) != 0,
        }
    }

    /// Whether any cause was pending (false: spurious, or a shared line).
    pub fn pending(&self) -> bool {
        self.raw & !INT_ASSERTED != 0
    }
}

/// Which checksums of a received frame the device verified (with receive checksum
/// offload on; a bad one is never delivered).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    /// The IPv4 header checksum.
    pub ipv4: bool,
    /// The TCP or UDP checksum.
    pub l4: bool,
}

impl Verified {
    /// What the status byte of a receive descriptor says was verified.
    pub fn from_status(status: u8) -> Verified {
        if status & RX_STATUS_IXSM != 0 {
            return Verified::default();
        }
        Verified {
            ipv4: status & RX_STATUS_IPCS != 0,
            l4: status & RX_STATUS_TCPCS != 0,
        }
    }
}

/// The driver's own counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames delivered to the caller.
    pub rx_frames: u64,
    /// Bytes delivered to the caller.
    pub rx_bytes: u64,
    /// Frames dropped because the device flagged an error in their descriptor (other than
    /// a checksum error).
    pub rx_errors: u64,
    /// Frames whose IPv4, TCP or UDP checksum the device found wrong: delivered as not
    /// verified, for the caller's own check to drop.
    pub rx_checksum_errors: u64,
    /// Frames delivered whose TCP/UDP checksum the device verified.
    pub rx_checksum_verified: u64,
    /// Times adaptive moderation changed the gap between interrupts.
    pub moderation_changes: u64,
    /// Descriptors dropped as malformed: no end-of-packet, length 0 or above the buffer.
    pub rx_malformed: u64,
    /// Frames dropped because the caller's buffer was too small.
    pub rx_truncated: u64,
    /// Frames queued for transmission.
    pub tx_frames: u64,
    /// Bytes queued for transmission.
    pub tx_bytes: u64,
    /// Frames refused because the transmit ring was full.
    pub tx_ring_full: u64,
    /// Frames refused because of their length.
    pub tx_bad_length: u64,
}

/// The device's statistics registers, accumulated by [`E1000e::update_statistics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceStatistics {
    /// Frames received with a bad CRC (`CRCERRS`).
    pub crc_errors: u64,
    /// Frames missed for lack of room in the receive FIFO (`MPC`).
    pub missed: u64,
    /// Times a frame arrived and no receive descriptor was free (`RNBC`).
    pub no_buffers: u64,
    /// Good frames received (`GPRC`).
    pub rx_packets: u64,
    /// Good frames transmitted (`GPTC`).
    pub tx_packets: u64,
    /// Good octets received (`GORC`).
    pub rx_octets: u64,
    /// Good octets transmitted (`GOTC`).
    pub tx_octets: u64,
}

/// One ring: descriptors and the buffers they point to.
struct Ring<R> {
    descriptors: R,
    chunks: Vec<R>,
    count: usize,
}

impl<R: DmaRegion> Ring<R> {
    fn allocate<D: Dma<Region = R>>(dma: &mut D, count: usize) -> Result<Self, InitError> {
        let bytes = count * desc::DESCRIPTOR_SIZE;
        let descriptors = allocate(dma, bytes, RING_ALIGN)?;
        let chunks = (0..count.div_ceil(BUFFERS_PER_CHUNK))
            .map(|_| allocate(dma, BUFFER_CHUNK_SIZE, BUFFER_CHUNK_SIZE))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            descriptors,
            chunks,
            count,
        })
    }

    /// The chunk holding buffer `index` and the buffer's offset in it.
    fn buffer(&self, index: usize) -> (&R, usize) {
        (
            &self.chunks[index / BUFFERS_PER_CHUNK],
            (index % BUFFERS_PER_CHUNK) * BUFFER_SIZE,
        )
    }

    fn buffer_mut(&mut self, index: usize) -> (&mut R, usize) {
        (
            &mut self.chunks[index / BUFFERS_PER_CHUNK],
            (index % BUFFERS_PER_CHUNK) * BUFFER_SIZE,
        )
    }

    fn buffer_address(&self, index: usize) -> u64 {
        let (chunk, offset) = self.buffer(index);
        chunk.physical_address() + offset as u64
    }

    fn next(&self, index: usize) -> usize {
        if index + 1 == self.count {
            0
        } else {
            index + 1
        }
    }

    fn program(&self, mmio: &mut impl Mmio, base_low: usize) {
        // Offsets relative to RDBAL/TDBAL: BAH +4, LEN +8, H +0x10, T +0x18.
        let address = self.descriptors.physical_address();
        mmio.write32(base_low, address as u32);
        mmio.write32(base_low + 4, (address >> 32) as u32);
        mmio.write32(base_low + 8, (self.count * desc::DESCRIPTOR_SIZE) as u32);
    }
}

fn allocate<D: Dma>(dma: &mut D, size: usize, align: usize) -> Result<D::Region, InitError> {
    let region = dma.allocate(size, align).ok_or(InitError::OutOfMemory)?;
    if region.size() < size || region.physical_address() % align as u64 != 0 {
        return Err(InitError::BadDmaRegion);
    }
    Ok(region)
}

/// An initialised 82574L.
pub struct E1000e<M, R> {
    mmio: M,
    mac: [u8; 6],
    rx: Ring<R>,
    /// The next receive descriptor the device fills.
    rx_next: usize,
    /// Descriptors recycled since the last `RDT` write.
    rx_unreported: usize,
    /// The last recycled descriptor (the value for `RDT`).
    rx_last: usize,
    /// Dropping the rest of a frame that spans descriptors.
    rx_discarding: bool,
    rx_tail_batch: usize,
    tx: Ring<R>,
    /// The next transmit descriptor to fill (`TDT` once flushed).
    tx_next: usize,
    /// The oldest transmit descriptor not yet reclaimed.
    tx_clean: usize,
    /// Frames queued since the last `TDT` write.
    tx_unflushed: usize,
    counters: Counters,
    statistics: DeviceStatistics,
    /// MSI-X mode: `ICR` is cleared by writing it back, not by reading it.
    msix: bool,
    /// Receive checksum offload is on.
    rx_checksum_offload: bool,
    /// The causes enabled at initialisation (re-armed by [`E1000e::set_interrupts`]).
    armed_mask: u32,
    /// Adaptive moderation's state: the throttle in force (256 ns units), the base one
    /// (`None`: not adaptive), and `rx_frames` when interrupts were last turned off.
    throttle: u32,
    adaptive_base: Option<u32>,
    frames_at_off: u64,
}

impl<M: Mmio, R: DmaRegion> E1000e<M, R> {
    /// Allocates the rings and buffers from `dma`, resets the device and programs it per
    /// `config`; the caller has enabled PCI memory decoding and bus mastering.
    ///
    /// Errors: `BadConfig` and `OutOfMemory` (the device is untouched), `BadDmaRegion`,
    /// `ResetTimeout`.
    pub fn new<D: Dma<Region = R>>(
        mut mmio: M,
        dma: &mut D,
        delay: &mut impl Delay,
        config: Config,
    ) -> Result<Self, InitError> {
        if !config.is_valid() {
            return Err(InitError::BadConfig);
        }
        let rx = Ring::allocate(dma, config.rx_descriptors)?;
        let tx = Ring::allocate(dma, config.tx_descriptors)?;

        mmio.write32(IMC, INT_ALL);
        let ctrl = mmio.read32(CTRL);
        mmio.write32(CTRL, ctrl | CTRL_RST);
        delay.delay_us(RESET_WAIT_US);
        let mut polls = 0;
        while mmio.read32(CTRL) & CTRL_RST != 0 {
            if polls == RESET_POLLS {
                return Err(InitError::ResetTimeout);
            }
            polls += 1;
            delay.delay_us(RESET_POLL_US);
        }
        mmio.write32(IMC, INT_ALL);
        let _ = mmio.read32(ICR);

        let ctrl = mmio.read32(CTRL) & !CTRL_CLEAR_AT_INIT;
        mmio.write32(CTRL, ctrl | CTRL_SLU | CTRL_ASDE);

        let low = mmio.read32(RAL0);
        let high = mmio.read32(RAH0);
        let mut mac = [0; 6];
        mac[..4].copy_from_slice(&low.to_le_bytes());
        mac[4..].copy_from_slice(&high.to_le_bytes()[..2]);
        mmio.write32(RAL0, low);
        mmio.write32(RAH0, (high & 0xFFFF) | RAH_AV);
        for entry in 0..MTA_ENTRIES {
            mmio.write32(MTA + 4 * entry, 0);
        }

        let mut driver = Self {
            mmio,
            mac,
            rx_next: 0,
            rx_unreported: 0,
            rx_last: rx.count - 1,
            rx_discarding: false,
            rx_tail_batch: RX_TAIL_BATCH.min(rx.count / 4),
            rx,
            tx_next: 0,
            tx_clean: 0,
            tx_unflushed: 0,
            tx,
            counters: Counters::default(),
            statistics: DeviceStatistics::default(),
            msix: false,
            rx_checksum_offload: config.rx_checksum_offload,
            armed_mask: 0,
            throttle: config.interrupt_throttle & 0xFFFF,
            adaptive_base: config
                .adaptive_moderation
                .then_some(config.interrupt_throttle & 0xFFFF),
            frames_at_off: 0,
        };
        driver.setup_tx();
        driver.setup_rx();
        let throttle = config.interrupt_throttle & 0xFFFF;
        driver.mmio.write32(ITR, throttle);
        let mut mask = config.interrupt_mask;
        if config.msix {
            driver.msix = true;
            driver.mmio.write32(IVAR, ivar_all_to(0));
            driver.mmio.write32(EIAC, 0);
            driver.mmio.write32(EITR0, throttle);
            let ctrl_ext = driver.mmio.read32(CTRL_EXT);
            driver
                .mmio
                .write32(CTRL_EXT, ctrl_ext | CTRL_EXT_PBA_SUPPORT);
            if mask != 0 {
                mask = MSIX_INTERRUPTS;
            }
        }
        driver.armed_mask = mask;
        let _ = driver.mmio.read32(ICR);
        driver.mmio.write32(ICR, INT_ALL);
        driver.mmio.write32(IMS, mask);
        Ok(driver)
    }

    fn setup_tx(&mut self) {
        for index in 0..self.tx.count {
            let address = self.tx.buffer_address(index);
            desc::tx_write(&mut self.tx.descriptors, index, address, 0, 0);
        }
        fence(Ordering::Release);
        self.tx.program(&mut self.mmio, TDBAL);
        self.mmio.write32(TDH, 0);
        self.mmio.write32(TDT, 0);
        self.mmio.write32(TIDV, 0);
        self.mmio.write32(TADV, 0);
        self.mmio.write32(TIPG, TIPG_DEFAULT);
        self.mmio
            .write32(TCTL, TCTL_EN | TCTL_PSP | TCTL_CT | TCTL_COLD);
    }

    fn setup_rx(&mut self) {
        for index in 0..self.rx.count {
            let address = self.rx.buffer_address(index);
            desc::rx_arm(&mut self.rx.descriptors, index, address);
        }
        fence(Ordering::Release);
        self.rx.program(&mut self.mmio, RDBAL);
        self.mmio.write32(RDH, 0);
        self.mmio.write32(RDT, (self.rx.count - 1) as u32);
        self.mmio.write32(RDTR, 0);
        self.mmio.write32(RADV, 0);
        let rxcsum = if self.rx_checksum_offload {
            RXCSUM_IPOFLD | RXCSUM_TUOFLD
        } else {
            0
        };
        self.mmio.write32(RXCSUM, rxcsum);
        self.mmio.write32(RFCTL, 0);
        self.mmio
            .write32(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC | RCTL_BSIZE_2048);
    }

    /// The MAC address read from the device at initialisation.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// Whether the link is up (`STATUS.LU`).
    pub fn link_up(&mut self) -> bool {
        self.mmio.read32(STATUS) & STATUS_LU != 0
    }

    /// The driver's counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The register access, e.g. for diagnostics.
    pub fn registers(&mut self) -> &mut M {
        &mut self.mmio
    }

    /// Reads the interrupt causes and clears them (reading clears them without MSI-X; in
    /// MSI-X mode the driver writes them back), and decodes them. Call it for every
    /// interrupt: MSI and MSI-X only fire for newly raised causes. The caller then drains
    /// [`E1000e::receive`] and acknowledges the interrupt at its controller.
    pub fn handle_interrupt(&mut self) -> Interrupt {
        let icr = self.mmio.read32(ICR);
        if self.msix && icr != 0 {
            self.mmio.write32(ICR, icr);
        }
        Interrupt::decode(icr)
    }

    /// Whether the device was set up for MSI-X ([`crate::Config::msix`]).
    pub fn msix(&self) -> bool {
        self.msix
    }

    /// Turns the causes enabled at initialisation on (`IMS`) or off (`IMC`): a poll loop
    /// turns them off while it finds work and back on when idle. A cause raised while
    /// they were off fires when they come back on.
    ///
    /// With adaptive moderation ([`crate::Config::adaptive_moderation`]) turning them on
    /// also picks the gap between interrupts from the frames received since they were
    /// turned off (written only when it changes).
    pub fn set_interrupts(&mut self, on: bool) {
        if self.armed_mask == 0 {
            return;
        }
        if !on {
            self.frames_at_off = self.counters.rx_frames;
            self.mmio.write32(IMC, self.armed_mask);
            return;
        }
        if let Some(base) = self.adaptive_base {
            let stretch = self.counters.rx_frames - self.frames_at_off;
            let throttle = if stretch >= crate::BULK_FRAMES {
                (base * crate::BULK_THROTTLE_FACTOR).min(0xFFFF)
            } else {
                base
            };
            if throttle != self.throttle {
                self.throttle = throttle;
                self.mmio.write32(ITR, throttle);
                if self.msix {
                    self.mmio.write32(EITR0, throttle);
                }
                self.counters.moderation_changes += 1;
            }
        }
        self.mmio.write32(IMS, self.armed_mask);
    }

    /// The gap between interrupts in force, in 256 ns units (`ITR`).
    pub fn interrupt_throttle(&self) -> u32 {
        self.throttle
    }

    /// Enables the interrupt causes in `mask` (`IMS`).
    pub fn enable_interrupts(&mut self, mask: u32) {
        self.mmio.write32(IMS, mask);
    }

    /// Disables the interrupt causes in `mask` (`IMC`).
    pub fn disable_interrupts(&mut self, mask: u32) {
        self.mmio.write32(IMC, mask);
    }

    /// Reads the device's statistics registers (which clears them), adds them to the
    /// running totals and returns the totals.
    pub fn update_statistics(&mut self) -> DeviceStatistics {
        let mut read = |offset| u64::from(self.mmio.read32(offset));
        let s = &mut self.statistics;
        s.crc_errors += read(CRCERRS);
        s.missed += read(MPC);
        s.no_buffers += read(RNBC);
        s.rx_packets += read(GPRC);
        s.tx_packets += read(GPTC);
        s.rx_octets += read(GORCL) | (read(GORCH) << 32);
        s.tx_octets += read(GOTCL) | (read(GOTCH) << 32);
        *s
    }

    /// Stops the device: masks its interrupts, turns the receiver and transmitter off and
    /// resets it, so it no longer touches the driver's memory.
    pub fn shutdown(mut self, delay: &mut impl Delay) -> M {
        self.mmio.write32(IMC, INT_ALL);
        self.mmio.write32(RCTL, 0);
        self.mmio.write32(TCTL, 0);
        let ctrl = self.mmio.read32(CTRL);
        self.mmio.write32(CTRL, ctrl | CTRL_RST);
        delay.delay_us(RESET_WAIT_US);
        self.mmio.write32(IMC, INT_ALL);
        self.mmio
    }

    // ---- transmit ----

    /// Reclaims transmit descriptors the device has written back; returns how many.
    pub fn reclaim(&mut self) -> usize {
        let mut reclaimed = 0;
        while self.tx_clean != self.tx_next && desc::tx_done(&self.tx.descriptors, self.tx_clean) {
            desc::tx_clear(&mut self.tx.descriptors, self.tx_clean);
            self.tx_clean = self.tx.next(self.tx_clean);
            reclaimed += 1;
        }
        reclaimed
    }

    /// Transmit descriptors free for [`E1000e::queue`] (after reclaiming).
    pub fn tx_free(&mut self) -> usize {
        self.reclaim();
        let used = (self.tx_next + self.tx.count - self.tx_clean) % self.tx.count;
        self.tx.count - 1 - used
    }

    /// Copies `frame` into the next transmit buffer and queues it, without telling the
    /// device; [`E1000e::flush`] does. Lets a caller send a batch with one register write.
    ///
    /// Errors: `Full` (counted in `tx_ring_full`), `BadLength`.
    pub fn queue(&mut self, frame: &[u8]) -> Result<(), TxError> {
        self.queue_with(frame.len(), |buffer| buffer.copy_from_slice(frame))
    }

    /// Lends `f` the next transmit buffer, `len` bytes of it, to build a frame in place,
    /// and queues that frame without telling the device ([`E1000e::flush`] does); returns
    /// `f`'s result.
    ///
    /// Errors (`f` not called): `Full` (counted in `tx_ring_full`), `BadLength` when `len`
    /// is 0 or more than [`MAX_FRAME_LEN`].
    pub fn queue_with<T>(
        &mut self,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> T,
    ) -> Result<T, TxError> {
        if len == 0 || len > MAX_FRAME_LEN {
            self.counters.tx_bad_length += 1;
            return Err(TxError::BadLength);
        }
        let index = self.tx_next;
        let next = self.tx.next(index);
        if next == self.tx_clean {
            self.reclaim();
            if next == self.tx_clean {
                self.counters.tx_ring_full += 1;
                return Err(TxError::Full);
            }
        }
        let (chunk, offset) = self.tx.buffer_mut(index);
        let result = chunk.with_bytes_mut(offset, len, f);
        let address = self.tx.buffer_address(index);
        desc::tx_write(
            &mut self.tx.descriptors,
            index,
            address,
            len as u16,
            TX_CMD_EOP | TX_CMD_IFCS | TX_CMD_RS,
        );
        self.tx_next = next;
        self.tx_unflushed += 1;
        self.counters.tx_frames += 1;
        self.counters.tx_bytes += len as u64;
        Ok(result)
    }

    /// Hands the frames queued since the last flush to the device (one `TDT` write).
    pub fn flush(&mut self) {
        if self.tx_unflushed != 0 {
            fence(Ordering::Release);
            self.mmio.write32(TDT, self.tx_next as u32);
            self.tx_unflushed = 0;
        }
    }

    /// Queues `frame` and hands it to the device at once.
    ///
    /// Errors: `Full` (the frame is not sent), `BadLength`.
    pub fn transmit(&mut self, frame: &[u8]) -> Result<(), TxError> {
        self.queue(frame)?;
        self.flush();
        Ok(())
    }

    /// Builds a frame of `len` bytes in place with `f` (as [`E1000e::queue_with`]) and
    /// hands it to the device at once; returns `f`'s result.
    ///
    /// Errors (`f` not called): `Full` (nothing is sent), `BadLength`.
    pub fn transmit_with<T>(
        &mut self,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> T,
    ) -> Result<T, TxError> {
        let result = self.queue_with(len, f)?;
        self.flush();
        Ok(result)
    }

    // ---- receive ----

    /// Whether the next receive descriptor has been written back: a frame for
    /// [`E1000e::receive_with`], or an entry it drops and counts. Reads only memory.
    pub fn rx_pending(&self) -> bool {
        desc::rx_done(&self.rx.descriptors, self.rx_next)
    }

    /// Calls `f` with the next received frame, still in the device's buffer, and returns
    /// its result; the buffer goes back to the device afterwards. Descriptors with errors
    /// or bad lengths are dropped and counted on the way.
    ///
    /// Errors: `Empty` when no frame is pending.
    pub fn receive_with<T>(&mut self, f: impl FnOnce(&[u8]) -> T) -> Result<T, RxError> {
        self.receive_with_checksums(|frame, _| f(frame))
    }

    /// As [`E1000e::receive_with`], and tells `f` which checksums of the frame the device
    /// verified (none without receive checksum offload). A frame with a checksum the
    /// device found wrong is delivered as verified by nobody (and counted in
    /// `rx_checksum_errors`), so the caller's own verification drops it.
    ///
    /// Errors: `Empty` when no frame is pending.
    pub fn receive_with_checksums<T>(
        &mut self,
        f: impl FnOnce(&[u8], Verified) -> T,
    ) -> Result<T, RxError> {
        // Bounded: a device that keeps setting DD cannot keep us here.
        for _ in 0..self.rx.count {
            let index = self.rx_next;
            if !desc::rx_done(&self.rx.descriptors, index) {
                break;
            }
            let status = desc::rx_status(&self.rx.descriptors, index);
            let length = usize::from(status.length);
            let end = status.status & RX_STATUS_EOP != 0;
            if self.rx_discarding || !end {
                // A frame spanning descriptors (cannot happen with 2 KiB buffers and
                // long frames off): drop every part up to and including the last.
                if !self.rx_discarding {
                    self.counters.rx_malformed += 1;
                }
                self.rx_discarding = !end;
            } else if status.errors & RX_ERRORS_ANY & !CHECKSUM_ERRORS != 0 {
                self.counters.rx_errors += 1;
            } else if length == 0 || length > BUFFER_SIZE {
                self.counters.rx_malformed += 1;
            } else {
                // A checksum the device found wrong: delivered as verified by nobody, so
                // the caller's own check drops and counts it with the rest.
                let flagged = status.errors & CHECKSUM_ERRORS != 0;
                self.counters.rx_checksum_errors += u64::from(flagged);
                let verified = if self.rx_checksum_offload && !flagged {
                    Verified::from_status(status.status)
                } else {
                    Verified::default()
                };
                self.counters.rx_checksum_verified += u64::from(verified.l4);
                let (chunk, offset) = self.rx.buffer(index);
                let result = chunk.with_bytes(offset, length, |frame| f(frame, verified));
                self.counters.rx_frames += 1;
                self.counters.rx_bytes += length as u64;
                self.recycle(index);
                return Ok(result);
            }
            self.recycle(index);
        }
        self.report_rx_tail();
        Err(RxError::Empty)
    }

    /// Copies the next received frame into `buffer` and returns its length.
    ///
    /// Errors: `Empty` when no frame is pending, `Truncated` when the frame is longer
    /// than `buffer` (it is dropped and counted).
    pub fn receive(&mut self, buffer: &mut [u8]) -> Result<usize, RxError> {
        let copied = self.receive_with(|frame| {
            let target = buffer.get_mut(..frame.len()).ok_or(frame.len())?;
            target.copy_from_slice(frame);
            Ok(frame.len())
        })?;
        copied.map_err(|length| {
            // Counted as delivered by `receive_with`; it was dropped instead.
            self.counters.rx_frames -= 1;
            self.counters.rx_bytes -= length as u64;
            self.counters.rx_truncated += 1;
            RxError::Truncated { length }
        })
    }

    /// Returns receive descriptor `index` to the device (`RDT` is written in batches).
    fn recycle(&mut self, index: usize) {
        let address = self.rx.buffer_address(index);
        desc::rx_arm(&mut self.rx.descriptors, index, address);
        self.rx_last = index;
        self.rx_next = self.rx.next(index);
        self.rx_unreported += 1;
        if self.rx_unreported >= self.rx_tail_batch {
            self.report_rx_tail();
        }
    }

    /// Tells the device about every recycled receive descriptor (one `RDT` write).
    fn report_rx_tail(&mut self) {
        if self.rx_unreported != 0 {
            fence(Ordering::Release);
            self.mmio.write32(RDT, self.rx_last as u32);
            self.rx_unreported = 0;
        }
    }
}
