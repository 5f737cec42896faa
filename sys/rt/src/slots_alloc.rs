//! The component's own capability slots: a free-slot allocator over its CNode.

use crate::startinfo::{slots, CNODE_SIZE_BITS};
use alloc::vec::Vec;

/// Hands out free slots of the component's CNode, from [`slots::FIRST_FREE`] up.
#[derive(Debug, Clone)]
pub struct Slots {
    next: u64,
    end: u64,
    freed: Vec<u64>,
}

impl Default for Slots {
    fn default() -> Self {
        Slots::new()
    }
}

impl Slots {
    /// Every slot from [`slots::FIRST_FREE`] to the end of the CNode is free.
    pub fn new() -> Slots {
        Slots {
            next: slots::FIRST_FREE,
            end: 1 << CNODE_SIZE_BITS,
            freed: Vec::new(),
        }
    }

    /// Only slots `range` (clamped to the CNode), for a user that keeps its own part of the
    /// CNode apart from another allocator's.
    pub fn within(range: core::ops::Range<u64>) -> Slots {
        let end = range.end.min(1 << CNODE_SIZE_BITS);
        Slots {
            next: range.start.max(slots::FIRST_FREE).min(end),
            end,
            freed: Vec::new(),
        }
    }

    /// A free slot, or `None` when the CNode is full.
    pub fn alloc(&mut self) -> Option<u64> {
        if let Some(s) = self.freed.pop() {
            return Some(s);
        }
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// Gives `slot` back (its capability must have been deleted or moved).
    pub fn free(&mut self, slot: u64) {
        debug_assert!(slot >= slots::FIRST_FREE && slot < self.end && !self.freed.contains(&slot));
        self.freed.push(slot);
    }

    /// Free slots left.
    pub fn available(&self) -> u64 {
        self.end - self.next + self.freed.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_hands_out_only_its_own_slots() {
        let mut s = Slots::within(4000..4003);
        assert_eq!(s.available(), 3);
        assert_eq!(
            (s.alloc(), s.alloc(), s.alloc(), s.alloc()),
            (Some(4000), Some(4001), Some(4002), None)
        );
        let mut empty = Slots::within(5000..6000);
        assert_eq!((empty.available(), empty.alloc()), (0, None));
        assert_eq!(Slots::within(0..70).alloc(), Some(slots::FIRST_FREE));
    }

    #[test]
    fn allocates_every_slot_once_and_reuses_freed_ones() {
        let mut s = Slots::new();
        let total = s.available();
        assert_eq!(total, (1 << CNODE_SIZE_BITS) - slots::FIRST_FREE);
        let mut got = Vec::new();
        while let Some(x) = s.alloc() {
            got.push(x);
        }
        assert_eq!(got.len() as u64, total);
        assert_eq!(s.alloc(), None);
        s.free(got[5]);
        assert_eq!(s.alloc(), Some(got[5]));
        assert!(got.iter().all(|&x| x >= slots::FIRST_FREE));
    }
}
