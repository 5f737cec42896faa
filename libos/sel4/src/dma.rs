//! DMA memory for the drivers in `drivers/`: a bump allocator ([`DmaArena`], the e1000e
//! driver's `Dma`) over one physically contiguous, mapped block, handing out
//! [`DmaBlock`]s (its `DmaRegion`).
//!
//! Invariants: an arena is made only over memory that stays mapped for good (components
//! never unmap DMA memory) and is never given out twice, so blocks never overlap and stay
//! valid; every access checks its offset against the block's size.

use e1000e::{Dma, DmaRegion};

/// Where the next allocation of `size` bytes aligned (physically) to `align` starts and
/// ends in an arena whose byte 0 is at physical `paddr`, `used` bytes used of
/// `capacity`: `Some((start, end))` as offsets into the arena, `None` when it does not fit.
/// `align` is a power of two.
pub fn bump(
    paddr: u64,
    used: usize,
    capacity: usize,
    size: usize,
    align: usize,
) -> Option<(usize, usize)> {
    let start = (paddr as usize + used).next_multiple_of(align) - paddr as usize;
    let end = start.checked_add(size)?;
    (end <= capacity).then_some((start, end))
}

/// A bump allocator over physically contiguous, mapped memory; nothing is ever freed.
#[derive(Debug)]
pub struct DmaArena {
    vaddr: usize,
    paddr: u64,
    size: usize,
    next: usize,
}

impl DmaArena {
    /// An arena over the `size` bytes at virtual `vaddr`, physical `paddr`.
    ///
    /// # Safety
    /// The memory must be mapped at `vaddr` for good, physically contiguous from `paddr`,
    /// cache-coherent with the device, and used by nothing but this arena's blocks (and the
    /// device they are given to).
    pub unsafe fn new(vaddr: usize, paddr: u64, size: usize) -> DmaArena {
        DmaArena {
            vaddr,
            paddr,
            size,
            next: 0,
        }
    }

    /// Bytes handed out so far (alignment gaps included).
    pub fn used(&self) -> usize {
        self.next
    }
}

impl Dma for DmaArena {
    type Region = DmaBlock;

    fn allocate(&mut self, size: usize, align: usize) -> Option<DmaBlock> {
        let (start, end) = bump(self.paddr, self.next, self.size, size, align)?;
        self.next = end;
        Some(DmaBlock {
            vaddr: self.vaddr + start,
            paddr: self.paddr + start as u64,
            size,
        })
    }
}

/// A piece of a [`DmaArena`].
#[derive(Debug)]
pub struct DmaBlock {
    vaddr: usize,
    paddr: u64,
    size: usize,
}

impl DmaRegion for DmaBlock {
    #[inline]
    fn physical_address(&self) -> u64 {
        self.paddr
    }
    #[inline]
    fn size(&self) -> usize {
        self.size
    }
    #[inline]
    fn read_u32(&self, offset: usize) -> u32 {
        assert!(offset + 4 <= self.size);
        // SAFETY: inside this block of the arena's mapped, never-freed memory (the
        // arena's `new` contract); blocks never overlap.
        unsafe { core::ptr::read_volatile((self.vaddr + offset) as *const u32) }
    }
    #[inline]
    fn write_u32(&mut self, offset: usize, value: u32) {
        assert!(offset + 4 <= self.size);
        // SAFETY: as in `read_u32`.
        unsafe { core::ptr::write_volatile((self.vaddr + offset) as *mut u32, value) }
    }
    #[inline]
    fn with_bytes<T>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> T) -> T {
        assert!(offset + len <= self.size);
        // SAFETY: inside the block; the driver only asks for buffers the device does not
        // own at the moment (the `DmaRegion` contract).
        f(unsafe { core::slice::from_raw_parts((self.vaddr + offset) as *const u8, len) })
    }
    #[inline]
    fn with_bytes_mut<T>(
        &mut self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> T,
    ) -> T {
        assert!(offset + len <= self.size);
        // SAFETY: as in `with_bytes`; `&mut self` makes this the block's only view.
        f(unsafe { core::slice::from_raw_parts_mut((self.vaddr + offset) as *mut u8, len) })
    }
    #[inline]
    fn write_bytes(&mut self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.size);
        // SAFETY: as in `with_bytes`.
        let dst = unsafe {
            core::slice::from_raw_parts_mut((self.vaddr + offset) as *mut u8, data.len())
        };
        dst.copy_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn bump_aligns_physical_addresses_and_refuses_overflow() {
        // Physical 0x1010: a 128-byte aligned block starts 0x70 bytes in.
        assert_eq!(bump(0x1010, 0, 0x1000, 16, 128), Some((0x70, 0x80)));
        // Already aligned: no gap.
        assert_eq!(
            bump(0x2000, 0x100, 0x1000, 0x100, 0x100),
            Some((0x100, 0x200))
        );
        // Exactly full fits; one byte more does not.
        assert_eq!(bump(0x2000, 0, 0x1000, 0x1000, 4096), Some((0, 0x1000)));
        assert_eq!(bump(0x2000, 0, 0x1000, 0x1001, 4096), None);
        // The gap counts: 0xF00 used, 4 KiB aligned start is 0x1000 = past the end.
        assert_eq!(bump(0x2000, 0xF00, 0x1000, 1, 4096), None);
        assert_eq!(bump(0, 0, usize::MAX, usize::MAX, 1), Some((0, usize::MAX)));
        assert_eq!(bump(0, 1, usize::MAX, usize::MAX, 1), None);
    }

    #[test]
    fn blocks_do_not_overlap_and_read_back_what_was_written() {
        let mut memory = vec![0u64; 1024]; // 8 KiB, 8-byte aligned
        let vaddr = memory.as_mut_ptr() as usize;
        // SAFETY: `memory` outlives the arena and nothing else touches it meanwhile.
        let mut arena = unsafe { DmaArena::new(vaddr, 0x10_0000, 8192) };
        let mut a = arena.allocate(100, 64).unwrap();
        let mut b = arena.allocate(4096, 4096).unwrap();
        assert_eq!(a.physical_address(), 0x10_0000);
        assert_eq!(b.physical_address(), 0x10_1000);
        assert_eq!((a.size(), b.size()), (100, 4096));
        assert_eq!(arena.used(), 0x2000);
        assert!(arena.allocate(1, 1).is_none());
        a.write_u32(96, 0xDEAD_BEEF);
        b.write_bytes(0, &[1, 2, 3, 4, 5]);
        assert_eq!(a.read_u32(96), 0xDEAD_BEEF);
        assert_eq!(b.read_u32(0), u32::from_le_bytes([1, 2, 3, 4]));
        assert_eq!(b.with_bytes(2, 3, |bytes| bytes.to_vec()), [3, 4, 5]);
        b.with_bytes_mut(3, 2, |bytes| bytes.copy_from_slice(&[9, 8]));
        assert_eq!(
            b.with_bytes(0, 6, |bytes| bytes.to_vec()),
            [1, 2, 3, 9, 8, 0]
        );
        assert_eq!(a.read_u32(0), 0);
        drop(memory);
    }

    #[test]
    #[should_panic]
    fn a_read_past_the_block_panics() {
        let mut memory = vec![0u64; 8];
        // SAFETY: as above.
        let mut arena = unsafe { DmaArena::new(memory.as_mut_ptr() as usize, 0, 64) };
        let block = arena.allocate(16, 4).unwrap();
        block.read_u32(13);
    }
}
