//! A split virtqueue (virtio 1.2, section 2.7) in memory the caller provides: the
//! descriptor table, the available ring and the used ring, plus one request header and
//! status byte per descriptor (indexed by the chain's first descriptor).
//!
//! The driver keeps its own copy of every chain it hands out (first descriptor, length, a
//! private free list): nothing it reads back from the used ring is trusted beyond an index
//! that is checked against the chains in flight, so a confused device cannot make the
//! driver free a descriptor twice or index past the table.

use core::sync::atomic::{fence, Ordering};

/// Memory shared with the device, accessed by byte offset (little-endian, the layout
/// virtio 1.x fixes). Implementations use volatile accesses; offsets are always inside
/// [`Layout::bytes`] and naturally aligned.
pub trait QueueMemory {
    /// The 16-bit value at `offset`.
    fn read16(&self, offset: usize) -> u16;
    /// The 32-bit value at `offset`.
    fn read32(&self, offset: usize) -> u32;
    /// The byte at `offset`.
    fn read8(&self, offset: usize) -> u8;
    /// Stores a byte at `offset`.
    fn write8(&mut self, offset: usize, value: u8);
    /// Stores a 16-bit value at `offset`.
    fn write16(&mut self, offset: usize, value: u16);
    /// Stores a 32-bit value at `offset`.
    fn write32(&mut self, offset: usize, value: u32);
    /// Stores a 64-bit value at `offset`.
    fn write64(&mut self, offset: usize, value: u64);
}

/// The descriptor is followed by another (`next` valid).
const DESC_NEXT: u16 = 1;
/// The device writes the buffer (for the driver: device-to-memory).
const DESC_WRITE: u16 = 2;

/// Bytes of request header plus status kept per descriptor (header 16, status at 16).
pub const SLOT_BYTES: usize = 32;

/// Where a queue of `size` entries puts its parts, in bytes from the start of its memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Entries (a power of two, 2..=32768).
    pub size: u16,
    /// The descriptor table (16 bytes an entry).
    pub descriptors: usize,
    /// The available ring (driver area).
    pub available: usize,
    /// The used ring (device area), 4-byte aligned.
    pub used: usize,
    /// The request headers and status bytes, [`SLOT_BYTES`] per descriptor.
    pub slots: usize,
    /// Total bytes.
    pub bytes: usize,
}

impl Layout {
    /// The layout of a queue of `size` entries; `None` unless `size` is a power of two
    /// between 2 and 32768.
    pub fn new(size: u16) -> Option<Layout> {
        if size < 2 || !size.is_power_of_two() {
            return None;
        }
        let n = usize::from(size);
        let descriptors = 0;
        let available = descriptors + 16 * n;
        let used = (available + 6 + 2 * n).next_multiple_of(64);
        let slots = (used + 6 + 8 * n).next_multiple_of(64);
        let bytes = slots + SLOT_BYTES * n;
        Some(Layout {
            size,
            descriptors,
            available,
            used,
            slots,
            bytes,
        })
    }
}

/// One buffer of a chain: a physical address, a length, whether the device writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Physical address.
    pub paddr: u64,
    /// Length in bytes.
    pub len: u32,
    /// The device writes it (data read from disk, the status byte).
    pub device_writes: bool,
}

/// A split virtqueue's driver side.
pub struct Queue<M: QueueMemory> {
    memory: M,
    paddr: u64,
    layout: Layout,
    /// Private free list: `next[i]` is the descriptor after `i` in the free list or chain.
    next: [u16; MAX_SIZE],
    free_head: u16,
    free: u16,
    /// Chain length by first descriptor; 0 when no chain starts there.
    chain: [u16; MAX_SIZE],
    available_index: u16,
    used_index: u16,
}

/// The largest queue this driver sets up.
pub const MAX_SIZE: usize = 256;

/// What the used ring returned that did not match a chain in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bogus;

impl<M: QueueMemory> Queue<M> {
    /// A queue of `layout.size` entries (at most [`MAX_SIZE`]) in `memory`, which the device
    /// sees at physical `paddr`; the memory must be zeroed and at least `layout.bytes` long.
    pub fn new(memory: M, paddr: u64, layout: Layout) -> Option<Self> {
        if usize::from(layout.size) > MAX_SIZE {
            return None;
        }
        let mut next = [0; MAX_SIZE];
        for (i, n) in next.iter_mut().enumerate() {
            *n = (i + 1) as u16;
        }
        Some(Queue {
            memory,
            paddr,
            layout,
            next,
            free_head: 0,
            free: layout.size,
            chain: [0; MAX_SIZE],
            available_index: 0,
            used_index: 0,
        })
    }

    /// The physical addresses of the descriptor table, driver area and device area.
    pub fn areas(&self) -> (u64, u64, u64) {
        let at = |offset: usize| self.paddr + offset as u64;
        (
            at(self.layout.descriptors),
            at(self.layout.available),
            at(self.layout.used),
        )
    }

    /// Descriptors not in any chain.
    pub fn free(&self) -> u16 {
        self.free
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The offset of the header and status slot of chain `head`.
    pub fn slot_offset(&self, head: u16) -> usize {
        self.layout.slots + SLOT_BYTES * usize::from(head)
    }

    /// The physical address of the header and status slot of chain `head`.
    pub fn slot_paddr(&self, head: u16) -> u64 {
        self.paddr + self.slot_offset(head) as u64
    }

    /// Mutable access to the memory (the request header and status slots).
    pub fn memory(&mut self) -> &mut M {
        &mut self.memory
    }

    /// Takes `count` descriptors for a chain and returns its first; `None` when fewer are
    /// free. Fill them with [`Queue::set`] and publish with [`Queue::push`].
    pub fn take(&mut self, count: u16) -> Option<u16> {
        if count == 0 || count > self.free {
            return None;
        }
        let head = self.free_head;
        let mut last = head;
        for _ in 1..count {
            last = self.next[usize::from(last)];
        }
        self.free_head = self.next[usize::from(last)];
        self.free -= count;
        self.chain[usize::from(head)] = count;
        Some(head)
    }

    /// Writes `parts` (exactly the chain's length) into chain `head`'s descriptors.
    pub fn set(&mut self, head: u16, parts: &[Part]) {
        debug_assert_eq!(parts.len(), usize::from(self.chain[usize::from(head)]));
        let mut index = head;
        for (i, part) in parts.iter().enumerate() {
            let at = self.layout.descriptors + 16 * usize::from(index);
            let last = i + 1 == parts.len();
            let next = self.next[usize::from(index)];
            let mut flags = if part.device_writes { DESC_WRITE } else { 0 };
            if !last {
                flags |= DESC_NEXT;
            }
            self.memory.write64(at, part.paddr);
            self.memory.write32(at + 8, part.len);
            self.memory.write16(at + 12, flags);
            self.memory.write16(at + 14, if last { 0 } else { next });
            index = next;
        }
    }

    /// Makes chain `head` available to the device (the caller notifies it).
    pub fn push(&mut self, head: u16) {
        let size = usize::from(self.layout.size);
        let slot = usize::from(self.available_index) % size;
        self.memory
            .write16(self.layout.available + 4 + 2 * slot, head);
        self.available_index = self.available_index.wrapping_add(1);
        // The descriptors and ring entry before the index that publishes them.
        fence(Ordering::SeqCst);
        self.memory
            .write16(self.layout.available + 2, self.available_index);
        fence(Ordering::SeqCst);
    }

    /// The next chain the device has finished: its first descriptor and the length the
    /// device wrote. `Ok(None)` when there is none; `Err(Bogus)` when the device named a
    /// descriptor that starts no chain in flight (the entry is skipped).
    pub fn pop(&mut self) -> Result<Option<(u16, u32)>, Bogus> {
        fence(Ordering::SeqCst);
        let device_index = self.memory.read16(self.layout.used + 2);
        if device_index == self.used_index {
            return Ok(None);
        }
        // Entries after the index, not before it.
        fence(Ordering::SeqCst);
        let size = usize::from(self.layout.size);
        let at = self.layout.used + 4 + 8 * (usize::from(self.used_index) % size);
        let id = self.memory.read32(at);
        let written = self.memory.read32(at + 4);
        self.used_index = self.used_index.wrapping_add(1);
        let head = u16::try_from(id).map_err(|_| Bogus)?;
        let count = *self.chain.get(usize::from(head)).ok_or(Bogus)?;
        if usize::from(head) >= size || count == 0 {
            return Err(Bogus);
        }
        self.release(head, count);
        Ok(Some((head, written)))
    }

    fn release(&mut self, head: u16, count: u16) {
        let mut last = head;
        for _ in 1..count {
            last = self.next[usize::from(last)];
        }
        self.next[usize::from(last)] = self.free_head;
        self.free_head = head;
        self.free += count;
        self.chain[usize::from(head)] = 0;
    }
}
