//! Host-testable planning: free virtual addresses in a window, and which 2 MiB spans
//! already have a page table.

use alloc::collections::BTreeSet;

/// Bytes in a 4 KiB page.
pub const PAGE: u64 = 4096;
/// Bytes one page table covers (2 MiB).
pub const PT_SPAN: u64 = 1 << 21;
/// Bytes one page directory covers (1 GiB).
pub const PD_SPAN: u64 = 1 << 30;
/// Bytes one PDPT covers (512 GiB).
pub const PDPT_SPAN: u64 = 1 << 39;

/// The largest shared region a component maps (512 MiB, within the default window).
pub const SHARED_MAX: u64 = 512 << 20;

/// How many pages a shared region of `size` bytes (as its provider reports it) spans:
/// `None` unless the size is a non-zero multiple of the page of at most [`SHARED_MAX`].
pub fn shared_pages(size: u64) -> Option<u64> {
    (size != 0 && size.is_multiple_of(PAGE) && size <= SHARED_MAX).then_some(size / PAGE)
}

/// A bump allocator of virtual addresses over `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    next: u64,
    end: u64,
}

impl Window {
    /// A window over `range`; `None` unless both ends are page aligned and `start < end`.
    pub fn new(range: core::ops::Range<u64>) -> Option<Window> {
        (range.start.is_multiple_of(PAGE)
            && range.end.is_multiple_of(PAGE)
            && range.start < range.end)
            .then_some(Window {
                next: range.start,
                end: range.end,
            })
    }

    /// Reserves `pages` pages aligned to `align` bytes (a power of two, at least a page);
    /// returns the first address, or `None` when the window has no room (or bad input).
    pub fn reserve(&mut self, pages: u64, align: u64) -> Option<u64> {
        if pages == 0 || !align.is_power_of_two() || align < PAGE {
            return None;
        }
        let start = self.next.checked_add(align - 1)? & !(align - 1);
        let end = start.checked_add(pages.checked_mul(PAGE)?)?;
        (end <= self.end).then(|| {
            self.next = end;
            start
        })
    }

    /// Bytes left after the last reservation.
    pub fn remaining(&self) -> u64 {
        self.end - self.next
    }
}

/// Paging levels a mapping may need, from the bottom up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A page table (covers 2 MiB).
    PageTable,
    /// A page directory (covers 1 GiB).
    PageDirectory,
    /// A page-directory-pointer table (covers 512 GiB).
    Pdpt,
}

impl Level {
    /// Bytes one structure of this level covers.
    pub fn span(self) -> u64 {
        match self {
            Level::PageTable => PT_SPAN,
            Level::PageDirectory => PD_SPAN,
            Level::Pdpt => PDPT_SPAN,
        }
    }

    /// The level above, if any below the PML4.
    pub fn up(self) -> Option<Level> {
        match self {
            Level::PageTable => Some(Level::PageDirectory),
            Level::PageDirectory => Some(Level::Pdpt),
            Level::Pdpt => None,
        }
    }
}

/// Which spans are known to have a paging structure of each level.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    present: BTreeSet<(u8, u64)>,
}

impl Paging {
    /// Nothing known yet.
    pub fn new() -> Paging {
        Paging::default()
    }

    fn key(level: Level, vaddr: u64) -> (u8, u64) {
        (level as u8, vaddr / level.span())
    }

    /// True when the structure of `level` covering `vaddr` is known to exist.
    pub fn has(&self, level: Level, vaddr: u64) -> bool {
        self.present.contains(&Self::key(level, vaddr))
    }

    /// Records that the structure of `level` covering `vaddr` exists, and so do the
    /// ones above it.
    pub fn record(&mut self, level: Level, vaddr: u64) {
        let mut at = Some(level);
        while let Some(l) = at {
            self.present.insert(Self::key(l, vaddr));
            at = l.up();
        }
    }

    /// Start addresses of the 2 MiB spans of `[vaddr, vaddr + bytes)` that have no known
    /// page table yet, in order.
    pub fn tables_needed(&self, vaddr: u64, bytes: u64) -> impl Iterator<Item = u64> + '_ {
        let first = vaddr / PT_SPAN;
        let last = (vaddr + bytes.max(1) - 1) / PT_SPAN;
        (first..=last)
            .map(|i| i * PT_SPAN)
            .filter(move |&span| !self.has(Level::PageTable, span))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shared_regions_are_whole_pages_within_the_limit() {
        assert_eq!(shared_pages(PAGE), Some(1));
        assert_eq!(shared_pages(PT_SPAN), Some(512));
        assert_eq!(shared_pages(SHARED_MAX), Some(SHARED_MAX / PAGE));
        assert_eq!(shared_pages(0), None);
        assert_eq!(shared_pages(PAGE + 1), None);
        assert_eq!(shared_pages(SHARED_MAX + PAGE), None);
        assert_eq!(shared_pages(!(PAGE - 1)), None);
    }

    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn window_hands_out_aligned_disjoint_ranges() {
        let mut w = Window::new(0x4000_0000..0x4040_0000).unwrap();
        assert_eq!(w.reserve(1, PAGE), Some(0x4000_0000));
        assert_eq!(w.reserve(2, PT_SPAN), Some(0x4020_0000));
        assert_eq!(w.reserve(1, PAGE), Some(0x4020_2000));
        assert_eq!(w.reserve(1024, PAGE), None, "no room");
        assert_eq!(w.reserve(0, PAGE), None);
        assert_eq!(w.reserve(1, 3 * PAGE), None, "alignment not a power of two");
        assert_eq!(w.remaining(), 0x4040_0000 - 0x4020_3000);
        assert!(Window::new(0x1001..0x2000).is_none());
        assert!(Window::new(0x2000..0x2000).is_none());
    }

    #[test]
    fn window_arithmetic_does_not_overflow() {
        let top = u64::MAX - (PAGE - 1);
        let mut w = Window::new(top - 4 * PAGE..top).unwrap();
        assert_eq!(w.reserve(u64::MAX / 2, PAGE), None);
        assert_eq!(w.reserve(1, 1 << 63), None);
    }

    #[test]
    fn tables_needed_skips_recorded_spans_and_recording_covers_levels_above() {
        let mut p = Paging::new();
        let need: Vec<u64> = p.tables_needed(0x401f_f000, 3 * PAGE).collect();
        assert_eq!(need, [0x4000_0000, 0x4020_0000]);
        p.record(Level::PageTable, 0x4000_0000);
        assert!(p.has(Level::PageDirectory, 0x7fff_ffff));
        assert!(p.has(Level::Pdpt, 0));
        assert!(!p.has(Level::PageDirectory, 0x8000_0000));
        let need: Vec<u64> = p.tables_needed(0x401f_f000, 3 * PAGE).collect();
        assert_eq!(need, [0x4020_0000]);
    }
}
