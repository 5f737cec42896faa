//! A virtio-blk driver (QEMU's `-device virtio-blk-pci,disable-legacy=on`, PCI id
//! 1af4:1042) that moves data by DMA straight between the disk and physical pages the caller
//! names, with many requests in flight.
//!
//! Why not `virtio-drivers`' `VirtIOBlk`: it takes each data buffer as one virtual slice and
//! asks its `Hal` for one physical address, so a buffer must be physically contiguous; a
//! client's shared region is a set of separate 4 KiB frames. Its queue is also fixed at 16
//! entries with a request header in the caller's memory. Here a request is a scatter list of
//! physical pages ([`Segment`]s), one descriptor each, on our own split virtqueue
//! ([`queue`]) of up to [`queue::MAX_SIZE`] descriptors. `virtio-drivers` still provides the
//! PCI transport (capability walk, common configuration, notifications), behind the small
//! [`BlkTransport`] trait.
//!
//! Checks before anything reaches the device ([`Geometry::check`]): the data length is a
//! whole number of 512-byte sectors and not zero (reads, writes), every segment is 512-byte
//! aligned in physical memory and a multiple of 512 bytes long, the range lies inside the
//! device's capacity, there are no more segments than the device accepts, writes go to a
//! writable device and flushes to one that has a cache to flush.
//!
//! Invariants: every descriptor chain the driver hands out is recorded by its first
//! descriptor; a completion that names anything else is counted and skipped (see
//! [`queue::Queue::pop`]); nothing the device reports makes the driver panic.
#![no_std]
#![warn(missing_docs)]

pub mod queue;
pub mod transport;

pub use queue::{Layout, Part, QueueMemory};
pub use transport::{Adapter, BlkTransport};

use queue::Queue;

/// virtio's PCI vendor id.
pub const VENDOR_ID: u16 = 0x1AF4;
/// Modern-only virtio-blk.
pub const DEVICE_ID_MODERN: u16 = 0x1042;
/// Bytes per sector: the unit of virtio-blk addresses, whatever the device's block size.
pub const SECTOR: u64 = 512;
/// Segments per request this driver accepts at most (256 KiB of 4 KiB pages).
pub const MAX_SEGMENTS: usize = 64;

/// Feature bits (virtio 1.2, sections 5.2.3 and 6).
pub mod feature {
    /// The device gives the largest number of segments per request.
    pub const SEG_MAX: u64 = 1 << 2;
    /// The device is read-only.
    pub const RO: u64 = 1 << 5;
    /// The device gives its block size.
    pub const BLK_SIZE: u64 = 1 << 6;
    /// The device has a write cache and accepts flushes.
    pub const FLUSH: u64 = 1 << 9;
    /// The virtio 1.x interface (required: no legacy devices).
    pub const VERSION_1: u64 = 1 << 32;
}

const STATUS_ACKNOWLEDGE: u8 = 1;
const STATUS_DRIVER: u8 = 2;
const STATUS_DRIVER_OK: u8 = 4;
const STATUS_FEATURES_OK: u8 = 8;
const STATUS_FAILED: u8 = 128;

const TYPE_IN: u32 = 0;
const TYPE_OUT: u32 = 1;
const TYPE_FLUSH: u32 = 4;

/// What a request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Disk to memory.
    Read,
    /// Memory to disk.
    Write,
    /// Makes every completed write durable.
    Flush,
}

/// A piece of a request's data: `len` bytes at physical `paddr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Physical address (512-byte aligned).
    pub paddr: u64,
    /// Length in bytes (a multiple of 512).
    pub len: u32,
}

/// Why a request was refused before it reached the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The sectors lie (partly) past the device's capacity.
    OutOfRange,
    /// A segment's address or length is not a multiple of 512 bytes.
    Misaligned,
    /// No data for a read or write, data with a flush, or more segments than allowed.
    Malformed,
    /// A write to a read-only device.
    ReadOnly,
    /// A flush to a device without a write cache to flush.
    Unsupported,
    /// Too few free descriptors now; try again after completions.
    Full,
}

/// Why the device set-up failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The device does not offer the virtio 1.x interface.
    Legacy,
    /// The device refused the features (FEATURES_OK did not stick).
    Features,
    /// Queue 0 is missing or smaller than 2 entries.
    NoQueue,
    /// The queue memory is too small for the queue.
    Memory,
    /// The configuration space could not be read.
    Config,
}

/// How a request ended on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Done.
    Ok,
    /// The device reported an I/O error.
    IoError,
    /// The device does not support the request.
    Unsupported,
    /// The device wrote a status byte virtio does not define.
    Invalid(u8),
}

/// A finished request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The caller's id, as given to [`VirtioBlk::submit`].
    pub id: u32,
    /// What the device said.
    pub status: Status,
}

/// The device's size and rules: what [`Geometry::check`] enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Capacity in 512-byte sectors.
    pub sectors: u64,
    /// Segments per request the device and the driver accept.
    pub max_segments: usize,
    /// The device refuses writes.
    pub read_only: bool,
    /// The device accepts flushes.
    pub flush: bool,
}

impl Geometry {
    /// Checks a request of `op` at `sector` over `segments`; the number of sectors it
    /// covers.
    ///
    /// Errors: `Malformed` (no data for a read or write, data or a sector for a flush, more
    /// than `max_segments` segments, a zero-length segment), `Misaligned`, `OutOfRange`,
    /// `ReadOnly`, `Unsupported`.
    pub fn check(&self, op: Op, sector: u64, segments: &[Segment]) -> Result<u64, RequestError> {
        if op == Op::Flush {
            if !segments.is_empty() || sector != 0 {
                return Err(RequestError::Malformed);
            }
            return if self.flush {
                Ok(0)
            } else {
                Err(RequestError::Unsupported)
            };
        }
        if segments.is_empty() || segments.len() > self.max_segments {
            return Err(RequestError::Malformed);
        }
        let mut bytes = 0u64;
        for s in segments {
            if s.len == 0 {
                return Err(RequestError::Malformed);
            }
            if s.paddr % SECTOR != 0 || u64::from(s.len) % SECTOR != 0 {
                return Err(RequestError::Misaligned);
            }
            bytes += u64::from(s.len);
        }
        let count = bytes / SECTOR;
        match sector.checked_add(count) {
            Some(end) if end <= self.sectors => {}
            _ => return Err(RequestError::OutOfRange),
        }
        if op == Op::Write && self.read_only {
            return Err(RequestError::ReadOnly);
        }
        Ok(count)
    }
}

/// Counters of what the device did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests handed to the device.
    pub submitted: u64,
    /// Requests the device finished.
    pub completed: u64,
    /// Used-ring entries that named no request in flight (skipped).
    pub bogus: u64,
}

/// The driver: one request queue.
pub struct VirtioBlk<T: BlkTransport, M: QueueMemory> {
    transport: T,
    queue: Queue<M>,
    geometry: Geometry,
    /// The caller's id by first descriptor.
    ids: [u32; queue::MAX_SIZE],
    counters: Counters,
}

impl<T: BlkTransport, M: QueueMemory> VirtioBlk<T, M> {
    /// Resets and sets up the device over `transport`, with its queue of up to `size`
    /// entries (a power of two, at most [`queue::MAX_SIZE`]; less if the device allows
    /// less) in `memory`, zeroed, which the device sees at physical `paddr` and which must
    /// hold [`Layout::new`]`(size).bytes`.
    ///
    /// Errors: `Legacy`, `Features`, `NoQueue`, `Memory`, `Config`; the device is marked
    /// FAILED.
    pub fn new(
        mut transport: T,
        memory: M,
        memory_len: usize,
        paddr: u64,
        size: u16,
    ) -> Result<Self, InitError> {
        let result = Self::init(&mut transport, memory_len, size);
        let (layout, geometry) = match result {
            Ok(v) => v,
            Err(e) => {
                transport.set_status(STATUS_FAILED);
                return Err(e);
            }
        };
        let queue = Queue::new(memory, paddr, layout).ok_or(InitError::Memory)?;
        let (descriptors, driver, device) = queue.areas();
        transport.queue_set(0, u32::from(layout.size), descriptors, driver, device);
        transport
            .set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
        Ok(VirtioBlk {
            transport,
            queue,
            geometry,
            ids: [0; queue::MAX_SIZE],
            counters: Counters::default(),
        })
    }

    fn init(
        transport: &mut T,
        memory_len: usize,
        size: u16,
    ) -> Result<(Layout, Geometry), InitError> {
        transport.set_status(0);
        transport.set_status(STATUS_ACKNOWLEDGE);
        transport.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        let offered = transport.device_features();
        if offered & feature::VERSION_1 == 0 {
            return Err(InitError::Legacy);
        }
        let wanted = feature::VERSION_1
            | feature::SEG_MAX
            | feature::RO
            | feature::BLK_SIZE
            | feature::FLUSH;
        let features = offered & wanted;
        transport.set_driver_features(features);
        transport.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        if transport.status() & STATUS_FEATURES_OK == 0 {
            return Err(InitError::Features);
        }
        let max = transport.max_queue_size(0);
        let size = u32::from(size.min(queue::MAX_SIZE as u16)).min(max);
        // The largest power of two that fits.
        let size = if size < 2 {
            0
        } else {
            1u32 << (31 - size.leading_zeros())
        };
        let layout = Layout::new(size as u16).ok_or(InitError::NoQueue)?;
        if memory_len < layout.bytes {
            return Err(InitError::Memory);
        }
        let low = transport.config32(0).ok_or(InitError::Config)?;
        let high = transport.config32(4).ok_or(InitError::Config)?;
        let sectors = u64::from(high) << 32 | u64::from(low);
        // Header and status take two descriptors of every chain.
        let mut max_segments = MAX_SEGMENTS.min(usize::from(layout.size) - 2);
        if features & feature::SEG_MAX != 0 {
            let device = transport.config32(12).ok_or(InitError::Config)?;
            if device > 0 {
                max_segments = max_segments.min(device as usize);
            }
        }
        Ok((
            layout,
            Geometry {
                sectors,
                max_segments,
                read_only: features & feature::RO != 0,
                flush: features & feature::FLUSH != 0,
            },
        ))
    }

    /// The device's size and rules.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The queue's entries.
    pub fn queue_size(&self) -> u16 {
        self.queue.layout().size
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Checks a request ([`Geometry::check`]) and queues it with the caller's `id`; the
    /// device is not told until [`VirtioBlk::notify`]. The data moves between the disk and
    /// `segments` by DMA: the caller must keep them untouched until the completion.
    ///
    /// Errors: those of [`Geometry::check`], and `Full` when too few descriptors are free.
    pub fn submit(
        &mut self,
        id: u32,
        op: Op,
        sector: u64,
        segments: &[Segment],
    ) -> Result<(), RequestError> {
        self.geometry.check(op, sector, segments)?;
        let count = segments.len() as u16 + 2;
        let head = self.queue.take(count).ok_or(RequestError::Full)?;
        let slot = self.queue.slot_offset(head);
        let kind = match op {
            Op::Read => TYPE_IN,
            Op::Write => TYPE_OUT,
            Op::Flush => TYPE_FLUSH,
        };
        let memory = self.queue.memory();
        memory.write32(slot, kind);
        memory.write32(slot + 4, 0);
        memory.write64(slot + 8, sector);
        // Not a status virtio defines: a completion the device never wrote shows up.
        memory.write8(slot + 16, 0xFF);
        let header = self.queue.slot_paddr(head);
        let mut parts = [Part {
            paddr: 0,
            len: 0,
            device_writes: false,
        }; MAX_SEGMENTS + 2];
        parts[0] = Part {
            paddr: header,
            len: 16,
            device_writes: false,
        };
        for (part, s) in parts[1..].iter_mut().zip(segments) {
            *part = Part {
                paddr: s.paddr,
                len: s.len,
                device_writes: op == Op::Read,
            };
        }
        parts[usize::from(count) - 1] = Part {
            paddr: header + 16,
            len: 1,
            device_writes: true,
        };
        self.queue.set(head, &parts[..usize::from(count)]);
        self.ids[usize::from(head)] = id;
        self.queue.push(head);
        self.counters.submitted += 1;
        Ok(())
    }

    /// Tells the device about the requests queued since the last call.
    pub fn notify(&mut self) {
        self.transport.notify(0);
    }

    /// Acknowledges the device's interrupt (reads the ISR byte, lowering INTx).
    pub fn ack_interrupt(&mut self) -> bool {
        self.transport.ack_interrupt()
    }

    /// The next finished request, if any. Used-ring entries that name no request in flight
    /// are skipped and counted (`bogus`).
    pub fn complete(&mut self) -> Option<Completion> {
        loop {
            match self.queue.pop() {
                Ok(None) => return None,
                Err(queue::Bogus) => self.counters.bogus += 1,
                Ok(Some((head, _written))) => {
                    let slot = self.queue.slot_offset(head);
                    let status = match self.queue.memory().read8(slot + 16) {
                        0 => Status::Ok,
                        1 => Status::IoError,
                        2 => Status::Unsupported,
                        other => Status::Invalid(other),
                    };
                    self.counters.completed += 1;
                    return Some(Completion {
                        id: self.ids[usize::from(head)],
                        status,
                    });
                }
            }
        }
    }

    /// Requests in flight could use this many more descriptors.
    pub fn free_descriptors(&self) -> u16 {
        self.queue.free()
    }
}
