//! A driver for the Intel 82574L gigabit Ethernet controller (QEMU's `-device e1000e`),
//! over small traits the caller implements: [`Mmio`] (BAR0 registers), [`Dma`] and
//! [`DmaRegion`] (device-visible memory) and [`Delay`] (reset waits).
//!
//! The driver itself has no `unsafe`: mapping BAR0, allocating physically contiguous,
//! cache-coherent memory and turning on PCI memory decoding and bus mastering
//! ([`pci::COMMAND_BITS`]) are the caller's. On Tessera the net component implements the
//! traits with the frames and interrupt `devices` grants it; host tests implement them
//! with a simulated 82574L.
//!
//! What it does: [`E1000e::new`] resets and programs the device (legacy descriptors, one
//! receive and one transmit ring, 2 KiB buffers, CRC stripped, broadcast accepted,
//! interrupt throttling), [`E1000e::transmit`] / [`E1000e::queue`] + [`E1000e::flush`]
//! send frames ([`E1000e::transmit_with`] / [`E1000e::queue_with`] build them in place),
//! [`E1000e::receive`] / [`E1000e::receive_with`] take received frames,
//! [`E1000e::handle_interrupt`] reads and decodes the interrupt causes.
//!
//! Invariants:
//! - every register the driver relies on is written after reset (QEMU 7.2's reset
//!   reloads only the MAC address), and `RCTL` is written after the receive ring;
//! - the driver never trusts what the device writes back: descriptor lengths, status
//!   bits and ring registers are checked, and nothing the device does makes it panic or
//!   loop without bound; it reads neither `RDH` nor `TDH`;
//! - frames are whole Ethernet frames without FCS (the device strips and appends it).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod desc;
mod driver;
mod netdevice;
pub mod regs;

pub use driver::{Counters, DeviceStatistics, E1000e, Interrupt, Verified};

/// PCI identity and configuration of the 82574L.
pub mod pci {
    /// Intel's PCI vendor id.
    pub const VENDOR_ID: u16 = 0x8086;
    /// The 82574L's PCI device id.
    pub const DEVICE_ID: u16 = 0x10D3;
    /// Size of BAR0, the memory-mapped registers.
    pub const BAR0_SIZE: usize = 128 * 1024;
    /// PCI command bits the caller must set before [`crate::E1000e::new`]: memory space
    /// and bus master (without bus mastering the device moves no data).
    pub const COMMAND_BITS: u16 = (1 << 1) | (1 << 2);
}

/// Size of every receive and transmit buffer in bytes.
pub const BUFFER_SIZE: usize = 2048;
/// The largest frame [`E1000e::transmit`] accepts (without FCS, with one VLAN tag).
pub const MAX_FRAME_LEN: usize = 1518;
/// The IP MTU the driver carries.
pub const MTU: usize = 1500;
/// Bytes the driver asks [`Dma::allocate`] for per chunk of buffers (two buffers each).
pub const BUFFER_CHUNK_SIZE: usize = 4096;
/// Alignment the driver asks for descriptor rings.
pub const RING_ALIGN: usize = 128;

/// 32-bit access to the device's registers in BAR0 (offsets in [`regs`]).
///
/// Implementations use volatile accesses to uncached memory.
pub trait Mmio {
    /// Reads the register at byte `offset` of BAR0.
    fn read32(&mut self, offset: usize) -> u32;
    /// Writes `value` to the register at byte `offset` of BAR0.
    fn write32(&mut self, offset: usize, value: u32);
}

impl<M: Mmio + ?Sized> Mmio for &mut M {
    fn read32(&mut self, offset: usize) -> u32 {
        (**self).read32(offset)
    }
    fn write32(&mut self, offset: usize, value: u32) {
        (**self).write32(offset, value)
    }
}

/// A block of physically contiguous, cache-coherent memory the device reads and writes.
///
/// The driver only asks for offsets within `0..size()`; implementations may panic
/// otherwise. Word accesses must be volatile (the device changes the memory behind the
/// program's back). The driver only asks for byte views ([`DmaRegion::with_bytes`],
/// [`DmaRegion::with_bytes_mut`], [`DmaRegion::write_bytes`]) of buffers the device does
/// not own at that moment.
pub trait DmaRegion {
    /// The physical (bus) address of byte 0.
    fn physical_address(&self) -> u64;
    /// The size in bytes.
    fn size(&self) -> usize;
    /// Reads the 32-bit little-endian word at byte `offset` (a multiple of 4).
    fn read_u32(&self, offset: usize) -> u32;
    /// Writes the 32-bit little-endian word at byte `offset` (a multiple of 4).
    fn write_u32(&mut self, offset: usize, value: u32);
    /// Calls `f` with the `len` bytes at `offset` and returns its result.
    fn with_bytes<T>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> T) -> T;
    /// Calls `f` with the `len` bytes at `offset`, writable, and returns its result.
    fn with_bytes_mut<T>(&mut self, offset: usize, len: usize, f: impl FnOnce(&mut [u8]) -> T)
        -> T;
    /// Copies `data` to byte `offset`.
    fn write_bytes(&mut self, offset: usize, data: &[u8]);
}

/// An allocator of device-visible memory.
pub trait Dma {
    /// The memory blocks it hands out.
    type Region: DmaRegion;
    /// Allocates `size` bytes, physically contiguous, aligned to `align` (a power of two)
    /// in physical memory, zeroed or not; `None` when out of memory.
    fn allocate(&mut self, size: usize, align: usize) -> Option<Self::Region>;
}

/// Busy or sleeping waits, for the reset sequence.
pub trait Delay {
    /// Waits at least `micros` microseconds.
    fn delay_us(&mut self, micros: u32);
}

/// How [`E1000e::new`] sets the device up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Receive descriptors (and 2 KiB buffers): a multiple of 8, 8..=4096.
    pub rx_descriptors: usize,
    /// Transmit descriptors (and 2 KiB buffers): a multiple of 8, 8..=4096.
    pub tx_descriptors: usize,
    /// Minimum interval between interrupts in 256 ns units (`ITR`); 0 turns throttling off
    /// (QEMU still enforces at least 500, i.e. 128 us).
    pub interrupt_throttle: u32,
    /// Interrupt causes to enable (`IMS`), see [`regs`]`::INT_*`; 0 for polling. In MSI-X
    /// mode the causes the device raises there ([`regs::MSIX_INTERRUPTS`]) are enabled
    /// instead of any receive/transmit/link cause named here.
    pub interrupt_mask: u32,
    /// Adaptive interrupt moderation: when a poll loop turns interrupts back on
    /// ([`E1000e::set_interrupts`]) after a busy stretch that received at least
    /// [`BULK_FRAMES`] frames, the gap between interrupts becomes [`BULK_THROTTLE_FACTOR`]
    /// times `interrupt_throttle` (few interrupts under load); after a shorter stretch it
    /// goes back to `interrupt_throttle` (low latency when traffic is light).
    pub adaptive_moderation: bool,
    /// Receive checksum offload (`RXCSUM` IPOFLD and TUOFLD): the device verifies IPv4,
    /// TCP and UDP checksums, frames it found bad are dropped and counted, and
    /// [`E1000e::receive_with_checksums`] says which checksums of a frame it verified.
    pub rx_checksum_offload: bool,
    /// The function's MSI-X table is programmed (entry 0, by `devices`): route every
    /// cause to vector 0 (`IVAR`), set `CTRL_EXT`'s PBA support, throttle with `EITR0`.
    pub msix: bool,
}

/// The interrupt causes enabled by default: frame received, transmit descriptor written
/// back, link status change.
pub const DEFAULT_INTERRUPTS: u32 = regs::INT_RXT0 | regs::INT_TXDW | regs::INT_LSC;

impl Default for Config {
    fn default() -> Self {
        Self {
            rx_descriptors: 256,
            tx_descriptors: 256,
            interrupt_throttle: 500,
            interrupt_mask: DEFAULT_INTERRUPTS,
            adaptive_moderation: true,
            rx_checksum_offload: true,
            msix: false,
        }
    }
}

/// Frames received in one busy stretch from which adaptive moderation counts the load as
/// bulk (see [`Config::adaptive_moderation`]).
pub const BULK_FRAMES: u64 = 64;
/// How much longer the gap between interrupts is under bulk load.
pub const BULK_THROTTLE_FACTOR: u32 = 4;

/// Largest ring the driver sets up.
pub const MAX_DESCRIPTORS: usize = 4096;

impl Config {
    /// Whether the ring sizes are acceptable (multiples of 8 within 8..=4096: the device
    /// needs ring lengths in multiples of 128 bytes).
    pub fn is_valid(&self) -> bool {
        let ok = |n: usize| (8..=MAX_DESCRIPTORS).contains(&n) && n.is_multiple_of(8);
        ok(self.rx_descriptors) && ok(self.tx_descriptors)
    }
}

/// Why [`E1000e::new`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The [`Config`] is invalid (ring sizes); the device was not touched.
    BadConfig,
    /// [`Dma::allocate`] returned `None`; the device was not touched.
    OutOfMemory,
    /// [`Dma::allocate`] returned a region that is too small or misaligned.
    BadDmaRegion,
    /// `CTRL.RST` did not clear after the reset.
    ResetTimeout,
}

/// Why [`E1000e::transmit`], [`E1000e::transmit_with`], [`E1000e::queue`] or
/// [`E1000e::queue_with`] refused a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// Every transmit descriptor is in use; try again after the device sends some.
    Full,
    /// The frame is empty or longer than [`MAX_FRAME_LEN`].
    BadLength,
}

/// Why [`E1000e::receive`] or [`E1000e::receive_with`] returned no frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxError {
    /// No received frame is pending.
    Empty,
    /// The next frame (of `length` bytes) was longer than the caller's buffer; it is dropped.
    Truncated {
        /// The frame's length.
        length: usize,
    },
}
