//! A virtio-net driver (QEMU's `-device virtio-net-pci`, modern register layout; a
//! transitional device works) over `virtio-drivers` 0.13's `PciTransport` and
//! `VirtIONetRaw`, behind small traits the caller implements:
//!
//! - [`Platform`]: DMA memory and the mapping of the device's memory BARs. `virtio-drivers`
//!   asks for both through associated functions (its `Hal` has no `self`), so a platform is
//!   a type, and its state is the caller's (a component has one NIC);
//! - [`ConfigSpace`]: read-only access to the function's PCI configuration space, from which
//!   a [`ShadowConfig`] answers the transport's capability walk (see [`config`]).
//!
//! Interrupts: `virtio-drivers` never programs MSI-X vectors. Without MSI-X the device
//! raises INTx, and reading the ISR byte ([`Layout::isr`]) lowers the line (the interrupt
//! thread's job). When `devices` enabled MSI-X for the function (the description's
//! `irq = "msix"`), [`VirtioNet::use_msix`] writes the queues' vectors in the common
//! configuration ([`msix`]); no acknowledgement is needed then. No offloads are
//! negotiated: frames are at most 1514 bytes without FCS.
//!
//! Frames move in place: [`VirtioNet::receive_with`] lends a received frame in its DMA
//! buffer and [`VirtioNet::transmit_with`] lets the caller build one in a transmit buffer
//! (after the virtio header), since the driver, not `virtio-drivers`, owns the buffers
//! `VirtIONetRaw` moves; as a `netdev::NetDevice` it lends them to the stack.
//!
//! Invariants: every buffer handed to the device comes from [`Platform::dma_alloc`] and is
//! never touched by the driver while the device owns it (a token maps to exactly one
//! buffer); nothing the device reports (tokens, lengths) makes the driver panic.
#![no_std]
#![warn(missing_docs)]
#![allow(
    unsafe_code,
    reason = "virtio-drivers' Hal and queue calls are unsafe: buffers shared with the device"
)]

pub mod config;
pub mod msix;
mod netdevice;
pub mod offload;
pub mod transport;

use core::marker::PhantomData;
use core::ptr::NonNull;

pub use config::{ConfigSpace, Layout, Region, ShadowConfig};
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// virtio's PCI vendor id.
pub const VENDOR_ID: u16 = 0x1AF4;
/// Transitional virtio-net (QEMU's default on `-M pc`).
pub const DEVICE_ID_TRANSITIONAL: u16 = 0x1000;
/// Modern-only virtio-net (`disable-legacy=on`).
pub const DEVICE_ID_MODERN: u16 = 0x1041;
/// Entries per virtqueue (receive and transmit), and buffers of each.
pub const QUEUE_SIZE: usize = 256;
/// Bytes per receive or transmit buffer (virtio header + frame).
pub const BUFFER_SIZE: usize = 2048;
/// The IP MTU the driver carries.
pub const MTU: usize = 1500;
/// The largest frame [`VirtioNet::transmit`] accepts (without FCS).
pub const MAX_FRAME_LEN: usize = 1514;
/// Page size of [`Platform::dma_alloc`].
pub const PAGE_SIZE: usize = 4096;

/// What the driver needs from the system; associated functions because `virtio-drivers`'
/// `Hal` has no `self`.
pub trait Platform: 'static {
    /// Allocates `pages` zeroed, physically contiguous, cache-coherent 4 KiB pages that
    /// stay mapped for good: (physical address, virtual address); `None` when out of memory.
    fn dma_alloc(pages: usize) -> Option<(u64, NonNull<u8>)>;
    /// The physical address of `vaddr`, which lies in memory from [`Platform::dma_alloc`].
    fn virt_to_phys(vaddr: usize) -> Option<u64>;
    /// The virtual address at which the caller mapped `size` bytes of device registers at
    /// physical `paddr` (uncached); `None` when they are not mapped.
    fn mmio_phys_to_virt(paddr: u64, size: usize) -> Option<NonNull<u8>>;
}

/// `virtio-drivers`' `Hal` over a [`Platform`].
pub struct HalOf<P>(PhantomData<P>);

// SAFETY: `dma_alloc` returns zeroed, contiguous, mapped memory (the `Platform` contract),
// never freed; `share` hands out physical addresses of memory from `dma_alloc` only (and
// panics otherwise), so the device never writes outside it.
unsafe impl<P: Platform> Hal for HalOf<P> {
    fn dma_alloc(pages: usize, _: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let (paddr, vaddr) = P::dma_alloc(pages).expect("virtio-net: out of DMA memory");
        (paddr, vaddr)
    }

    unsafe fn dma_dealloc(_: PhysAddr, _: NonNull<u8>, _: usize) -> i32 {
        // A bump arena: memory is never returned (the driver lives as long as the component).
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        P::mmio_phys_to_virt(paddr, size).expect("virtio-net: BAR region not mapped")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _: BufferDirection) -> PhysAddr {
        let vaddr = buffer.as_ptr() as *mut u8 as usize;
        P::virt_to_phys(vaddr).expect("virtio-net: buffer outside DMA memory")
    }

    unsafe fn unshare(_: PhysAddr, _: NonNull<[u8]>, _: BufferDirection) {
        // Buffers live in coherent DMA memory: nothing to copy back.
    }
}

/// Why [`VirtioNet::new`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitError {
    /// Not a virtio-net function (vendor, device id).
    NotVirtioNet(u16, u16),
    /// The capability list lacks a structure, a BAR is not mapped, or `virtio-drivers`
    /// refused the transport.
    Transport,
    /// Feature negotiation or queue set-up failed.
    Device,
    /// Out of DMA memory for buffers.
    OutOfMemory,
}

/// Why a frame was not received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxError {
    /// No frame pending.
    Empty,
    /// The frame was longer than the caller's buffer; it is dropped.
    Truncated,
    /// The device reported something impossible (unknown token, bad length).
    Device,
}

/// Why a frame was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// Every transmit buffer is in flight.
    Full,
    /// Empty, or longer than [`MAX_FRAME_LEN`].
    BadLength,
    /// The device refused it.
    Device,
}

/// Frame counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames received.
    pub rx: u64,
    /// Frames sent.
    pub tx: u64,
    /// Transmits refused because the queue was full.
    pub tx_full: u64,
    /// Received frames dropped (truncated or malformed).
    pub rx_dropped: u64,
    /// Queue notifications ("kicks", each a write to the device) sent.
    pub notifications: u64,
    /// Frames sent with their TCP/UDP checksum left to the device (`NEEDS_CSUM`).
    pub tx_checksum_offloaded: u64,
}

type Buffer = &'static mut [u8];

/// The driver: one receive and one transmit queue of [`QUEUE_SIZE`] buffers each.
pub struct VirtioNet<P: Platform> {
    raw: VirtIONetRaw<HalOf<P>, transport::Negotiated<PciTransport>, QUEUE_SIZE>,
    /// Receive buffers the device owns, by token.
    rx: [Option<Buffer>; QUEUE_SIZE],
    /// Transmit buffers in flight, by token, with the length handed over.
    tx: [Option<(Buffer, usize)>; QUEUE_SIZE],
    /// Free transmit buffers.
    tx_free: [Option<Buffer>; QUEUE_SIZE],
    tx_free_len: usize,
    mac: [u8; 6],
    counters: Counters,
    /// The common configuration structure, mapped (`None` if the platform has no mapping).
    common: Option<NonNull<u8>>,
    /// `VIRTIO_NET_F_CSUM` negotiated: TCP/UDP checksums of sent frames left to the device.
    csum: bool,
    /// `VIRTIO_NET_F_GUEST_CSUM` negotiated: received headers say what was checked.
    guest_csum: bool,
}

/// The common configuration structure at a mapped address.
struct MappedCommon(NonNull<u8>);

impl msix::CommonConfig for MappedCommon {
    fn read16(&mut self, offset: usize) -> u16 {
        // SAFETY: `VirtioNet::new` got the pointer from `Platform::mmio_phys_to_virt` for
        // the whole structure (which is larger than the fields `msix` names); device
        // memory, read volatile.
        unsafe { core::ptr::read_volatile(self.0.as_ptr().add(offset) as *const u16) }
    }
    fn write16(&mut self, offset: usize, value: u16) {
        // SAFETY: as in `read16`.
        unsafe { core::ptr::write_volatile(self.0.as_ptr().add(offset) as *mut u16, value) }
    }
}

fn buffers<P: Platform>(out: &mut [Option<Buffer>]) -> Result<(), InitError> {
    let per_page = PAGE_SIZE / BUFFER_SIZE;
    for chunk in out.chunks_mut(per_page) {
        let (_, vaddr) = P::dma_alloc(1).ok_or(InitError::OutOfMemory)?;
        for (i, slot) in chunk.iter_mut().enumerate() {
            // SAFETY: the page is mapped, never freed and handed out once by `dma_alloc`;
            // each buffer is a distinct `BUFFER_SIZE` slice of it.
            *slot = Some(unsafe {
                core::slice::from_raw_parts_mut(vaddr.as_ptr().add(i * BUFFER_SIZE), BUFFER_SIZE)
            });
        }
    }
    Ok(())
}

impl<P: Platform> VirtioNet<P> {
    /// Sets the device up from `config` (the function's shadow configuration space; its
    /// virtio structures must be mapped, see [`Platform::mmio_phys_to_virt`]), negotiates
    /// features, and gives the device all receive buffers.
    pub fn new(config: ShadowConfig) -> Result<Self, InitError> {
        let (vendor, device) = config.ids();
        if vendor != VENDOR_ID || !matches!(device, DEVICE_ID_TRANSITIONAL | DEVICE_ID_MODERN) {
            return Err(InitError::NotVirtioNet(vendor, device));
        }
        let common = config.layout().common.and_then(|region| {
            let paddr = config.bar_address(region.bar)? + u64::from(region.offset);
            let size = usize::try_from(region.length).ok()?;
            (size > msix::QUEUE_MSIX_VECTOR + 1)
                .then(|| P::mmio_phys_to_virt(paddr, size))
                .flatten()
        });
        let mut root = PciRoot::new(config);
        let function = DeviceFunction {
            bus: 0,
            device: 0,
            function: 0,
        };
        let transport = PciTransport::new::<HalOf<P>, _>(&mut root, function)
            .map_err(|_| InitError::Transport)?;
        let extra = offload::CSUM | offload::GUEST_CSUM;
        let mut raw = VirtIONetRaw::<HalOf<P>, _, QUEUE_SIZE>::new(transport::Negotiated::new(
            transport, extra,
        ))
        .map_err(|_| InitError::Device)?;
        let features = transport::negotiated();
        let mac = raw.mac_address();
        let mut all_rx: [Option<Buffer>; QUEUE_SIZE] = [const { None }; QUEUE_SIZE];
        buffers::<P>(&mut all_rx)?;
        let mut tx_free: [Option<Buffer>; QUEUE_SIZE] = [const { None }; QUEUE_SIZE];
        buffers::<P>(&mut tx_free)?;
        let mut rx: [Option<Buffer>; QUEUE_SIZE] = [const { None }; QUEUE_SIZE];
        for buffer in all_rx.iter_mut() {
            let buffer = buffer.take().ok_or(InitError::OutOfMemory)?;
            // SAFETY: the buffer is DMA memory we keep in `rx` and do not touch until the
            // device hands its token back.
            let token = unsafe { raw.receive_begin(buffer) }.map_err(|_| InitError::Device)?;
            *rx.get_mut(usize::from(token)).ok_or(InitError::Device)? = Some(buffer);
        }
        Ok(Self {
            raw,
            rx,
            tx: [const { None }; QUEUE_SIZE],
            tx_free,
            tx_free_len: QUEUE_SIZE,
            mac,
            counters: Counters::default(),
            common,
            csum: features & offload::CSUM != 0,
            guest_csum: features & offload::GUEST_CSUM != 0,
        })
    }

    /// The checksum offloads negotiated: (`CSUM`: the device completes transmitted
    /// TCP/UDP checksums, `GUEST_CSUM`: received frames may come checked or partial).
    /// QEMU offers both only with a backend that has a `vnet_hdr` (TAP, not user
    /// networking).
    pub fn checksum_offloads(&self) -> (bool, bool) {
        (self.csum, self.guest_csum)
    }

    /// Sends both queues' interrupts to MSI-X table entry `vector` (the function's MSI-X
    /// table is `devices`' to program; entry 0 is the one it programs) and turns the
    /// configuration-change interrupt off; returns the vectors read back.
    ///
    /// Errors: `QueueRefused` when the device did not take a queue's vector (with MSI-X
    /// enabled that queue would never interrupt); the common configuration not mapped
    /// counts as refused by the receive queue.
    pub fn use_msix(&mut self, vector: u16) -> Result<msix::Vectors, msix::MsixError> {
        let common = self
            .common
            .ok_or(msix::MsixError::QueueRefused(msix::RECEIVE_QUEUE))?;
        msix::program(&mut MappedCommon(common), vector)
    }

    /// The device's MAC address.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// Frame counters (with the queue notifications sent so far by this component's
    /// virtio drivers, see [`transport::notifications`]).
    pub fn counters(&self) -> Counters {
        Counters {
            notifications: self.raw_notifications(),
            ..self.counters
        }
    }

    fn raw_notifications(&self) -> u64 {
        transport::notifications()
    }

    /// Asks the device for used-buffer interrupts (`on`) or not (the avail rings'
    /// `VRING_AVAIL_F_NO_INTERRUPT`), for a poll loop that is busy. The device may still
    /// interrupt (the flag is a hint); buffers used while interrupts were off raise none
    /// later, so the caller looks at [`VirtioNet::rx_pending`] after turning them on.
    pub fn set_interrupts(&mut self, on: bool) {
        if on {
            self.raw.enable_interrupts();
        } else {
            self.raw.disable_interrupts();
        }
    }

    /// Acknowledges the device's interrupt (reads the ISR byte); the interrupt thread does
    /// the same without the driver.
    pub fn ack_interrupt(&mut self) {
        let _ = self.raw.ack_interrupt();
    }

    /// Whether the device has returned a receive buffer: a frame for
    /// [`VirtioNet::receive_with`], or an entry it drops. Reads only the used ring.
    pub fn rx_pending(&self) -> bool {
        self.raw.poll_receive().is_some()
    }

    /// Calls `f` with the next received frame, in place in its DMA buffer, and returns
    /// `f`'s result; the buffer goes back to the device afterwards either way.
    ///
    /// Errors (`f` not called): `Empty` when no frame is pending, `Device` when the device
    /// reported an unknown token or a length outside the buffer (counted in `rx_dropped`).
    pub fn receive_with<T>(&mut self, f: impl FnOnce(&[u8]) -> T) -> Result<T, RxError> {
        self.receive_with_checksums(|frame, _| f(frame))
    }

    /// As [`VirtioNet::receive_with`], and tells `f` what the frame's header says was
    /// checked ([`offload::rx_checksums`]; nothing without `GUEST_CSUM`).
    pub fn receive_with_checksums<T>(
        &mut self,
        f: impl FnOnce(&[u8], netdev::RxChecksums) -> T,
    ) -> Result<T, RxError> {
        let guest_csum = self.guest_csum;
        let token = self.raw.poll_receive().ok_or(RxError::Empty)?;
        let buffer = self
            .rx
            .get_mut(usize::from(token))
            .and_then(Option::take)
            .ok_or(RxError::Device)?;
        // SAFETY: `buffer` is the one given with `token` in `receive_begin`.
        let result = match unsafe { self.raw.receive_complete(token, buffer) } {
            Ok((header, length)) => match header
                .checked_add(length)
                .and_then(|end| buffer.get(header..end))
            {
                Some(frame) => {
                    self.counters.rx += 1;
                    Ok(f(
                        frame,
                        offload::rx_checksums(&buffer[..header], guest_csum),
                    ))
                }
                None => Err(RxError::Device),
            },
            Err(_) => Err(RxError::Device),
        };
        if result.is_err() {
            self.counters.rx_dropped += 1;
        }
        // SAFETY: as in `new`: the buffer stays in `rx` until its token comes back.
        match unsafe { self.raw.receive_begin(buffer) } {
            Ok(t) => {
                if let Some(slot) = self.rx.get_mut(usize::from(t)) {
                    *slot = Some(buffer);
                }
            }
            Err(_) => return Err(RxError::Device),
        }
        result
    }

    /// Copies the next received frame into `out` and returns its length; the buffer goes
    /// back to the device either way.
    ///
    /// Errors: `Empty`, `Device` (as [`VirtioNet::receive_with`]), `Truncated` when the
    /// frame is longer than `out` (dropped, counted in `rx_dropped`).
    pub fn receive(&mut self, out: &mut [u8]) -> Result<usize, RxError> {
        let copied = self.receive_with(|frame| {
            let target = out.get_mut(..frame.len())?;
            target.copy_from_slice(frame);
            Some(frame.len())
        })?;
        copied.ok_or_else(|| {
            // Counted as received by `receive_with`; it was dropped instead.
            self.counters.rx -= 1;
            self.counters.rx_dropped += 1;
            RxError::Truncated
        })
    }

    /// Takes back transmit buffers the device has finished with.
    fn reclaim(&mut self) {
        while let Some(token) = self.raw.poll_transmit() {
            let Some((buffer, len)) = self.tx.get_mut(usize::from(token)).and_then(Option::take)
            else {
                return;
            };
            // SAFETY: `buffer[..len]` is the slice given with `token` in `transmit_begin`.
            let _ = unsafe { self.raw.transmit_complete(token, &buffer[..len]) };
            self.tx_free[self.tx_free_len] = Some(buffer);
            self.tx_free_len += 1;
        }
    }

    /// Queues `frame` (an Ethernet frame without FCS) and notifies the device.
    ///
    /// Errors: as [`VirtioNet::transmit_with`].
    pub fn transmit(&mut self, frame: &[u8]) -> Result<(), TxError> {
        self.transmit_with(frame.len(), |buffer| buffer.copy_from_slice(frame))
    }

    /// Lends `f` `len` bytes of a free transmit buffer (after the virtio header) to build a
    /// frame in place, queues it and notifies the device; returns `f`'s result.
    ///
    /// Errors (`f` not called): `BadLength` when `len` is 0 or more than
    /// [`MAX_FRAME_LEN`], `Full` when every buffer is in flight (counted in `tx_full`),
    /// `Device` when `virtio-drivers` refuses the buffer's header. A frame the queue
    /// refuses after `f` built it is dropped and reported as `Full`.
    pub fn transmit_with<T>(
        &mut self,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> T,
    ) -> Result<T, TxError> {
        if len == 0 || len > MAX_FRAME_LEN {
            return Err(TxError::BadLength);
        }
        self.reclaim();
        if self.tx_free_len == 0 {
            self.counters.tx_full += 1;
            return Err(TxError::Full);
        }
        self.tx_free_len -= 1;
        let buffer = self.tx_free[self.tx_free_len]
            .take()
            .ok_or(TxError::Device)?;
        let header = match self.raw.fill_buffer_header(buffer) {
            Ok(h) if h + len <= buffer.len() => h,
            _ => {
                self.tx_free[self.tx_free_len] = Some(buffer);
                self.tx_free_len += 1;
                return Err(TxError::Device);
            }
        };
        let end = header + len;
        let result = f(&mut buffer[header..end]);
        if self.csum && header >= offload::HEADER_LEN {
            let (head, frame) = buffer.split_at_mut(header);
            let partial = offload::tx_partial(&mut frame[..len]);
            offload::write_tx_header(head, partial);
            self.counters.tx_checksum_offloaded += u64::from(partial.is_some());
        }
        // SAFETY: the buffer (header, then the frame `f` built in place) stays in `tx`
        // untouched until its token comes back.
        match unsafe { self.raw.transmit_begin(&buffer[..end]) } {
            Ok(token) => {
                self.counters.tx += 1;
                if let Some(slot) = self.tx.get_mut(usize::from(token)) {
                    *slot = Some((buffer, end));
                }
                Ok(result)
            }
            Err(_) => {
                self.tx_free[self.tx_free_len] = Some(buffer);
                self.tx_free_len += 1;
                Err(TxError::Full)
            }
        }
    }
}
