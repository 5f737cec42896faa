//! How much memory a component's image takes, and in which blocks `proc` asks `memory` for
//! it (`alloc_for`, charged to the component as image memory).
//!
//! Every object of an instance comes from blocks allocated for that component: its frames,
//! paging structures, CNode, thread, notification, and the CNode proc keeps its mapped
//! frames' capabilities in. `memory`'s `release` revokes those blocks, so tearing an instance
//! down is one call and leaves nothing behind.

/// Sizes in bits of the objects an image needs.
const PAGE_BITS: u32 = 12;
/// A CNode slot.
pub const SLOT_BITS: u32 = 5;
/// A thread control block (x86_64).
const TCB_BITS: u32 = 11;
/// A notification.
const NOTIFICATION_BITS: u32 = 5;

/// The largest block proc asks for at once: a component's image is allocated in blocks of
/// at most 2 MiB, so rounding up wastes less than one block.
pub const MAX_BLOCK_BITS: u32 = 21;
/// The smallest block `memory` hands out.
pub const MIN_BLOCK_BITS: u32 = 12;

/// What one image is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Frames (ELF, start info, IPC buffer, data blob).
    pub pages: u64,
    /// Paging structures below the PML4 (PDPTs, page directories, page tables).
    pub tables: u64,
    /// The component's CNode, in bits of slots.
    pub cnode_bits: u32,
    /// Heap and stack frames (of either size): paid by the budget (not in
    /// [`Shape::bytes`]), but their capabilities are parked in the holding CNode too.
    pub budget_pages: u64,
}

impl Shape {
    /// Slots (in bits) of the CNode proc keeps the image's frame and paging structure
    /// capabilities in: room for every one of them and a few more.
    pub fn holding_bits(&self) -> u32 {
        ceil_log2(self.pages + self.budget_pages + self.tables + 8).max(4)
    }

    /// Bytes of every object of the image, the holding CNode included.
    pub fn bytes(&self) -> u64 {
        ((self.pages + self.tables + 1) << PAGE_BITS)
            + (1u64 << (self.cnode_bits + SLOT_BITS))
            + (1u64 << (self.holding_bits() + SLOT_BITS))
            + (1u64 << TCB_BITS)
            + (1u64 << NOTIFICATION_BITS)
    }
}

/// The smallest `b` with `2^b >= n` (0 for `n <= 1`).
pub fn ceil_log2(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros()
    }
}

/// The size in bits of the next block to ask for, when `remaining` bytes of the image are
/// still to come and the object that did not fit needs `object_bits`: the remainder rounded
/// up to a power of two, at most [`MAX_BLOCK_BITS`], never smaller than the object or a page.
pub fn block_bits(remaining: u64, object_bits: u32) -> u32 {
    ceil_log2(remaining)
        .min(MAX_BLOCK_BITS)
        .max(object_bits)
        .max(MIN_BLOCK_BITS)
}

/// The size in bits of the next block of a budget's heap and stack, `remaining` bytes (whole
/// pages) still to come: the largest power of two not above it, at most [`MAX_BLOCK_BITS`],
/// so the blocks add up to exactly what is used; never smaller than the object or a page.
pub fn floor_block_bits(remaining: u64, object_bits: u32) -> u32 {
    let floor = if remaining == 0 {
        0
    } else {
        63 - remaining.leading_zeros()
    };
    floor
        .min(MAX_BLOCK_BITS)
        .max(object_bits)
        .max(MIN_BLOCK_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_and_blocks() {
        assert_eq!(ceil_log2(0), 0);
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(2), 1);
        assert_eq!(ceil_log2(4097), 13);
        assert_eq!(block_bits(8 << 20, 12), 21);
        assert_eq!(block_bits(300 << 10, 12), 19);
        assert_eq!(block_bits(0, 12), 12);
        assert_eq!(block_bits(0, 17), 17);
        assert_eq!(block_bits(5000, 5), 13);
        assert_eq!(floor_block_bits(160 << 10, 12), 17);
        assert_eq!(floor_block_bits(32 << 10, 12), 15);
        assert_eq!(floor_block_bits(64 << 20, 12), 21);
        assert_eq!(floor_block_bits(0, 12), 12);
        // A heap and stack of 128 KiB + 32 KiB come in exactly two blocks.
        let (mut left, mut blocks) = (160u64 << 10, 0);
        while left > 0 {
            left -= 1 << floor_block_bits(left, 12);
            blocks += 1;
        }
        assert_eq!(blocks, 2);
    }

    #[test]
    fn an_image_of_2200_pages() {
        let s = Shape {
            pages: 2200,
            tables: 8,
            cnode_bits: 12,
            budget_pages: 0,
        };
        assert_eq!(s.holding_bits(), 12);
        let bytes = s.bytes();
        assert!(
            bytes > 2200 * 4096 && bytes < 2200 * 4096 + (1 << 20),
            "{bytes}"
        );
    }
}
