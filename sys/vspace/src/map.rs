//! Carrying mappings out with seL4 invocations in the component's own address space.
//!
//! Capability pointers are in the component's own CNode (`rt::startinfo::slots::CNODE`),
//! resolved with all 64 bits.

use crate::plan::{Level, Paging, Window, PAGE, PT_SPAN};
use alloc::vec::Vec;
use rt::slots_alloc::Slots;
use rt::startinfo::slots;
use sel4::cap_type::{
    CNode, Untyped, X86LargePage, X86Page, X86PageDirectory, X86PageTable, X86Pdpt, X86Pml4,
};
use sel4::{CPtr, Cap, CapRights, Error, ObjectType, Word};

const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);
/// Most objects one `untyped_retype` makes on seL4 5.0.
const RETYPE_FAN_OUT: u64 = 256;

/// Why a mapping failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// The window has no room for the request.
    NoAddressSpace,
    /// No free capability slot (or no run of free slots) was left.
    NoSlots,
    /// No untyped memory was left for a paging structure.
    NoMemory,
    /// An invocation failed at `step`.
    Kernel {
        /// What was being done.
        step: &'static str,
        /// The kernel's error.
        error: Error,
    },
}

fn kernel(step: &'static str) -> impl Fn(Error) -> MapError {
    move |error| MapError::Kernel { step, error }
}

/// Free slots and untyped memory to make kernel objects from.
///
/// Objects are retyped from the newest untyped; when it is full, `refill(size_bits)` is
/// asked for another (e.g. a `proto::memory` `alloc`), at least `chunk_bits` large.
pub struct Pool<F: FnMut(u8) -> Option<CPtr>> {
    slots: Slots,
    untyped: Option<CPtr>,
    chunk_bits: u8,
    refill: F,
}

impl<F: FnMut(u8) -> Option<CPtr>> Pool<F> {
    /// A pool over the component's free slots, refilled in blocks of `2^chunk_bits` bytes.
    pub fn new(slots: Slots, chunk_bits: u8, refill: F) -> Pool<F> {
        Pool {
            slots,
            untyped: None,
            chunk_bits,
            refill,
        }
    }

    /// Gives back the slot allocator (for a pool made for one job over slots kept apart).
    pub fn into_slots(self) -> Slots {
        self.slots
    }

    /// A free slot.
    pub fn slot(&mut self) -> Result<CPtr, MapError> {
        self.slots.alloc().ok_or(MapError::NoSlots)
    }

    /// `count` consecutive free slots; returns the first.
    pub fn slot_run(&mut self, count: u64) -> Result<CPtr, MapError> {
        let first = self.slot()?;
        for i in 1..count {
            if self.slot()? != first + i {
                return Err(MapError::NoSlots);
            }
        }
        Ok(first)
    }

    /// Untyped memory of `2^size_bits` bytes of its own (not shared with other objects),
    /// straight from `refill`.
    pub fn untyped(&mut self, size_bits: u8) -> Result<Cap<Untyped>, MapError> {
        (self.refill)(size_bits)
            .map(Cap::from_raw)
            .ok_or(MapError::NoMemory)
    }

    /// A new kernel object of type `ty` (`size_bits` for sized types) in a fresh slot.
    pub fn object(&mut self, ty: ObjectType, size_bits: Word) -> Result<CPtr, MapError> {
        let slot = self.slot()?;
        for _ in 0..2 {
            if let Some(untyped) = self.untyped {
                match Cap::<Untyped>::from_raw(untyped).untyped_retype(
                    ty.word(),
                    size_bits,
                    OWN,
                    0,
                    0,
                    slot,
                    1,
                ) {
                    Ok(()) => return Ok(slot),
                    Err(Error::NotEnoughMemory) => {}
                    Err(error) => {
                        return Err(MapError::Kernel {
                            step: "retype",
                            error,
                        })
                    }
                }
            }
            self.untyped = Some((self.refill)(self.chunk_bits).ok_or(MapError::NoMemory)?);
        }
        Err(MapError::NoMemory)
    }
}

/// The component's own address space: a window of free addresses and the paging
/// structures made so far.
pub struct VSpace {
    root: Cap<X86Pml4>,
    window: Window,
    paging: Paging,
}

impl VSpace {
    /// The address space `root` (usually `slots::VSPACE`), handing out addresses in `window`.
    pub fn new(root: Cap<X86Pml4>, window: Window) -> VSpace {
        VSpace {
            root,
            window,
            paging: Paging::new(),
        }
    }

    /// The component's own address space with [`crate::DEFAULT_WINDOW`].
    pub fn own() -> VSpace {
        VSpace::new(
            Cap::from_raw(slots::VSPACE),
            Window::new(crate::DEFAULT_WINDOW).expect("the default window is valid"),
        )
    }

    /// Maps `frames` (4 KiB frame capabilities, in order) at consecutive free addresses
    /// with `rights` and the caching attributes `attr` (`sel4::consts::X86_*`); returns
    /// the first address. Fails with `NoAddressSpace`, `NoSlots`/`NoMemory` (no paging
    /// structure could be made) or `Kernel` (e.g. a frame that is already mapped).
    pub fn map<F: FnMut(u8) -> Option<CPtr>>(
        &mut self,
        pool: &mut Pool<F>,
        frames: &[CPtr],
        rights: CapRights,
        attr: Word,
    ) -> Result<u64, MapError> {
        let start = self
            .window
            .reserve(frames.len() as u64, PAGE)
            .ok_or(MapError::NoAddressSpace)?;
        self.map_at(pool, start, frames, rights, attr)?;
        Ok(start)
    }

    /// Maps `frames` (4 KiB frame capabilities, in order) at `start` and up, outside the
    /// window (the caller owns that range: a Linux program's fixed addresses), making the
    /// paging structures that are missing. Fails as [`VSpace::map`] does.
    pub fn map_at<F: FnMut(u8) -> Option<CPtr>>(
        &mut self,
        pool: &mut Pool<F>,
        start: u64,
        frames: &[CPtr],
        rights: CapRights,
        attr: Word,
    ) -> Result<(), MapError> {
        let pages = frames.len() as u64;
        let needed: Vec<u64> = self.paging.tables_needed(start, pages * PAGE).collect();
        for span in needed {
            self.page_table(pool, span)?;
        }
        for (i, &frame) in frames.iter().enumerate() {
            Cap::<X86Page>::from_raw(frame)
                .x86_page_map(self.root, start + i as u64 * PAGE, rights, attr)
                .map_err(kernel("map frame"))?;
        }
        Ok(())
    }

    /// Makes `count` new 4 KiB frames from an untyped of their own (physically
    /// contiguous) and maps them read-write with `attr`; returns the address, the
    /// physical address of the first frame and the frames' first slot.
    pub fn map_new<F: FnMut(u8) -> Option<CPtr>>(
        &mut self,
        pool: &mut Pool<F>,
        size_bits: u8,
        attr: Word,
    ) -> Result<(u64, u64, CPtr), MapError> {
        let count = 1u64 << (size_bits.max(12) - 12);
        let untyped = pool.untyped(size_bits.max(12))?;
        let first = pool.slot_run(count)?;
        // seL4 5.0 retypes at most 256 objects per call (`RETYPE_FAN_OUT_LIMIT`); the
        // untyped's watermark keeps successive batches physically contiguous.
        let mut done = 0;
        while done < count {
            let batch = (count - done).min(RETYPE_FAN_OUT);
            untyped
                .untyped_retype(
                    ObjectType::X86Page.word(),
                    0,
                    OWN,
                    0,
                    0,
                    first + done,
                    batch,
                )
                .map_err(kernel("retype frames"))?;
            done += batch;
        }
        let frames: Vec<CPtr> = (first..first + count).collect();
        let vaddr = self.map(pool, &frames, CapRights::read_write(), attr)?;
        let paddr = Cap::<X86Page>::from_raw(first)
            .x86_page_get_address()
            .map_err(kernel("frame address"))?;
        Ok((vaddr, paddr, first))
    }

    /// Makes a new 2 MiB frame (a large page) from an untyped of its own and maps it
    /// read-write with `attr` at a free 2 MiB-aligned address; returns the address, its
    /// physical address and the frame's capability (e.g. for `seL4_BenchmarkSetLogBuffer`).
    /// Fails as [`VSpace::map`] does.
    pub fn map_new_large<F: FnMut(u8) -> Option<CPtr>>(
        &mut self,
        pool: &mut Pool<F>,
        attr: Word,
    ) -> Result<(u64, u64, Cap<X86LargePage>), MapError> {
        let bits = sel4::consts::LARGE_PAGE_BITS as u8;
        let vaddr = self
            .window
            .reserve(PT_SPAN / PAGE, PT_SPAN)
            .ok_or(MapError::NoAddressSpace)?;
        let untyped = pool.untyped(bits)?;
        let slot = pool.slot()?;
        untyped
            .untyped_retype(ObjectType::X86LargePage.word(), 0, OWN, 0, 0, slot, 1)
            .map_err(kernel("retype a large page"))?;
        let frame = Cap::<X86LargePage>::from_raw(slot);
        let map = |root| frame.x86_page_map(root, vaddr, CapRights::read_write(), attr);
        match map(self.root) {
            Ok(()) => {}
            // A large page sits in a page directory: make one when it is missing.
            Err(Error::FailedLookup) => {
                self.structure(pool, Level::PageDirectory, vaddr)?;
                map(self.root).map_err(kernel("map large page"))?;
            }
            Err(error) => {
                return Err(MapError::Kernel {
                    step: "map large page",
                    error,
                })
            }
        }
        let paddr = frame
            .x86_page_get_address()
            .map_err(kernel("frame address"))?;
        Ok((vaddr, paddr, frame))
    }

    /// Makes sure a page table covers `vaddr`; see [`VSpace::structure`].
    fn page_table<F: FnMut(u8) -> Option<CPtr>>(
        &mut self,
        pool: &mut Pool<F>,
        vaddr: u64,
    ) -> Result<(), MapError> {
        self.structure(pool, Level::PageTable, vaddr)
    }

    /// Makes sure a paging structure of level `lowest` covers `vaddr`, making it (and
    /// the levels above it) when the kernel reports the level missing.
    fn structure<F: FnMut(u8) -> Option<CPtr>>(
        &mut self,
        pool: &mut Pool<F>,
        lowest: Level,
        vaddr: u64,
    ) -> Result<(), MapError> {
        let attr = sel4::consts::X86_DEFAULT_VM_ATTRIBUTES;
        let root = self.root;
        // Maps the paging structure `object` of `level` at `vaddr`.
        let map_level = |level: Level, object: CPtr| match level {
            Level::PageTable => {
                Cap::<X86PageTable>::from_raw(object).x86_page_table_map(root, vaddr, attr)
            }
            Level::PageDirectory => {
                Cap::<X86PageDirectory>::from_raw(object).x86_page_directory_map(root, vaddr, attr)
            }
            Level::Pdpt => Cap::<X86Pdpt>::from_raw(object).x86_pdpt_map(root, vaddr, attr),
        };
        // Bottom up: try the lowest missing level; on FailedLookup make the one above.
        let mut pending: Vec<(Level, CPtr)> = Vec::new();
        let mut level = lowest;
        loop {
            let object = match level {
                Level::PageTable => pool.object(ObjectType::X86PageTable, 0)?,
                Level::PageDirectory => pool.object(ObjectType::X86PageDirectory, 0)?,
                Level::Pdpt => pool.object(ObjectType::X86Pdpt, 0)?,
            };
            let result = map_level(level, object);
            match result {
                // A table someone else made (the loader) covers it already.
                Ok(()) | Err(Error::DeleteFirst) if pending.is_empty() => break,
                Ok(()) => break,
                Err(Error::FailedLookup) if level != Level::Pdpt => {
                    pending.push((level, object));
                    level = level.up().expect("below the PDPT");
                }
                Err(error) => {
                    return Err(MapError::Kernel {
                        step: "map paging structure",
                        error,
                    })
                }
            }
        }
        // Map the structures that waited for the one above, top down.
        while let Some((level, object)) = pending.pop() {
            map_level(level, object).map_err(kernel("map paging structure"))?;
        }
        self.paging.record(lowest, vaddr);
        Ok(())
    }
}
