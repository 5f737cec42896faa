//! The program's address-space map: which page ranges are mapped, with what protection
//! and for what (the image, the stack, the `brk` heap, `mmap` areas), and how many bytes
//! of the component's budget they take.
//!
//! The map is bookkeeping only: the caller maps and unmaps the pages (the
//! [`crate::Platform`] trait) after the map says yes. Every range the program passes is
//! checked here (alignment, wrap-around, the user half, the budget) before anything
//! happens, and every pointer argument of a system call is checked against the map
//! ([`AddressSpace::check`]) before the library OS reads or writes through it.

use crate::errno::Errno;
use crate::image::{Prot, PAGE, USER_LIMIT};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// What an area holds (for `/proc`-style reports and for `brk`'s bookkeeping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Loaded from an ELF file (the program or its interpreter).
    Image,
    /// The initial stack.
    Stack,
    /// The `brk` heap.
    Brk,
    /// Anonymous `mmap`.
    Anonymous,
    /// File-backed `MAP_PRIVATE` `mmap` (a private copy of the file's bytes).
    File,
    /// The syscall trampoline page at address 0.
    Trampoline,
}

/// One mapped range `[start, end)`, page-aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    /// First address past the area.
    pub end: u64,
    /// Current protection.
    pub prot: Prot,
    /// What it holds.
    pub kind: Use,
}

/// What a pointer argument must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The library OS reads it (a path, a `write` buffer).
    Read,
    /// The library OS writes it (a `read` buffer, a `struct stat`).
    Write,
}

/// Rounds `len` up to whole pages; `None` when that wraps.
pub fn page_round(len: u64) -> Option<u64> {
    len.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

/// The address-space map.
#[derive(Debug, Clone)]
pub struct AddressSpace {
    areas: BTreeMap<u64, Area>,
    budget: u64,
    used: u64,
    brk_start: u64,
    brk: u64,
    mmap_low: u64,
    mmap_high: u64,
}

impl AddressSpace {
    /// An empty map that may use `budget` bytes, placing `mmap` areas the program does not
    /// place itself between `mmap_low` and `mmap_high` (highest first, as Linux does).
    pub fn new(budget: u64, mmap_low: u64, mmap_high: u64) -> AddressSpace {
        AddressSpace {
            areas: BTreeMap::new(),
            budget,
            used: 0,
            brk_start: 0,
            brk: 0,
            mmap_low,
            mmap_high: mmap_high.min(USER_LIMIT),
        }
    }

    /// Bytes mapped now.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Bytes the budget allows.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// The areas in address order, as (start, area).
    pub fn areas(&self) -> impl Iterator<Item = (u64, &Area)> {
        self.areas.iter().map(|(&s, a)| (s, a))
    }

    fn valid_range(addr: u64, len: u64) -> Result<u64, Errno> {
        if !addr.is_multiple_of(PAGE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_round(len).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > USER_LIMIT {
            return Err(Errno::ENOMEM);
        }
        Ok(end)
    }

    /// Bytes of `[start, end)` already mapped.
    fn mapped_in(&self, start: u64, end: u64) -> u64 {
        self.overlapping(start, end)
            .map(|(s, a)| a.end.min(end) - s.max(start))
            .sum()
    }

    fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, &Area)> {
        let first = self
            .areas
            .range(..=start)
            .next_back()
            .filter(|(_, a)| a.end > start)
            .map(|(&s, _)| s)
            .unwrap_or(start);
        self.areas
            .range(first..end)
            .map(|(&s, a)| (s, a))
            .filter(move |(_, a)| a.end > start)
    }

    /// Splits areas so that `at` is an area boundary (if it lies inside one).
    fn split_at(&mut self, at: u64) {
        let found = self
            .areas
            .range(..at)
            .next_back()
            .filter(|(_, a)| a.end > at)
            .map(|(&s, a)| (s, *a));
        if let Some((start, area)) = found {
            self.areas.insert(start, Area { end: at, ..area });
            self.areas.insert(at, area);
        }
    }

    /// Removes `[start, end)` from the map (whatever is there); returns the ranges that
    /// were mapped, in address order.
    fn remove(&mut self, start: u64, end: u64) -> Vec<(u64, u64)> {
        self.split_at(start);
        self.split_at(end);
        let starts: Vec<u64> = self.areas.range(start..end).map(|(&s, _)| s).collect();
        let mut removed = Vec::with_capacity(starts.len());
        for s in starts {
            if let Some(area) = self.areas.remove(&s) {
                self.used -= area.end - s;
                removed.push((s, area.end));
            }
        }
        removed
    }

    /// The mapped ranges inside `[addr, addr + len)`, in address order (what a
    /// replacing `MAP_FIXED` must unmap first).
    pub fn mapped_ranges(&self, addr: u64, len: u64) -> Vec<(u64, u64)> {
        let end = addr.saturating_add(len);
        self.overlapping(addr, end)
            .map(|(s, a)| (s.max(addr), a.end.min(end)))
            .collect()
    }

    /// Records `[addr, addr + len)` (page-aligned) as mapped for `kind`, replacing what was
    /// there. Fails with `ENOMEM` past the budget or the user half, `EINVAL` for an
    /// unaligned or empty range.
    pub fn insert(&mut self, addr: u64, len: u64, prot: Prot, kind: Use) -> Result<(), Errno> {
        let end = Self::valid_range(addr, len)?;
        let replaced = self.mapped_in(addr, end);
        if self.used - replaced + (end - addr) > self.budget {
            return Err(Errno::ENOMEM);
        }
        let _ = self.remove(addr, end);
        self.areas.insert(addr, Area { end, prot, kind });
        self.used += end - addr;
        Ok(())
    }

    /// A free, page-aligned range of `len` bytes for `mmap` without `MAP_FIXED`: the
    /// highest gap below the `mmap` window's top, or `hint` when that range is free.
    pub fn find_free(&self, hint: u64, len: u64) -> Result<u64, Errno> {
        let len = page_round(len).filter(|&l| l > 0).ok_or(Errno::ENOMEM)?;
        if hint != 0 && hint.is_multiple_of(PAGE) {
            if let Some(end) = hint.checked_add(len) {
                if end <= USER_LIMIT && self.mapped_in(hint, end) == 0 {
                    return Ok(hint);
                }
            }
        }
        let mut top = self.mmap_high;
        for (&start, area) in self.areas.range(..self.mmap_high).rev() {
            if area.end <= top && top - area.end >= len && top - len >= self.mmap_low {
                // (top - area.end >= len, so top - len does not wrap.)
                return Ok(top - len);
            }
            top = top.min(start);
            if top < self.mmap_low {
                break;
            }
        }
        if self
            .mmap_low
            .checked_add(len)
            .is_some_and(|need| top >= need)
        {
            return Ok(top - len);
        }
        Err(Errno::ENOMEM)
    }

    /// Whether any of `[addr, addr + len)` is the trampoline page (which no call may
    /// map over, unmap or re-protect).
    pub fn touches_trampoline(&self, addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len.max(1));
        self.overlapping(addr, end)
            .any(|(_, area)| area.kind == Use::Trampoline)
    }

    /// Forgets `[addr, addr + len)`; returns the ranges that were mapped there (the
    /// caller unmaps exactly those, so the work is bounded by what exists, not by what
    /// the program asked). Unmapping nothing is not an error, as in Linux.
    pub fn unmap(&mut self, addr: u64, len: u64) -> Result<Vec<(u64, u64)>, Errno> {
        let end = Self::valid_range(addr, len)?;
        Ok(self.remove(addr, end))
    }

    /// Changes the protection of `[addr, addr + len)`; `ENOMEM` if any page of it is not
    /// mapped. Returns the areas that became executable (they need rewriting).
    pub fn protect(&mut self, addr: u64, len: u64, prot: Prot) -> Result<Vec<(u64, u64)>, Errno> {
        let end = Self::valid_range(addr, len)?;
        if self.mapped_in(addr, end) != end - addr {
            return Err(Errno::ENOMEM);
        }
        self.split_at(addr);
        self.split_at(end);
        let mut now_exec = Vec::new();
        for (&start, area) in self.areas.range_mut(addr..end) {
            if prot.exec() && !area.prot.exec() {
                now_exec.push((start, area.end));
            }
            area.prot = prot;
        }
        Ok(now_exec)
    }

    /// Checks that the program may let the library OS `access` `[addr, addr + len)`:
    /// every byte mapped, readable (and writable for [`Access::Write`]). `EFAULT` if not.
    pub fn check(&self, addr: u64, len: u64, access: Access) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).ok_or(Errno::EFAULT)?;
        let mut at = addr;
        for (start, area) in self.overlapping(addr, end) {
            let allowed = match access {
                Access::Read => area.prot.read(),
                Access::Write => area.prot.write(),
            };
            if start > at || !allowed || area.kind == Use::Trampoline {
                return Err(Errno::EFAULT);
            }
            at = area.end;
            if at >= end {
                return Ok(());
            }
        }
        Err(Errno::EFAULT)
    }

    /// Sets where the `brk` heap starts (just past the program's last segment).
    pub fn set_brk_start(&mut self, at: u64) {
        let at = page_round(at).unwrap_or(at);
        self.brk_start = at;
        self.brk = at;
    }

    /// The current program break.
    pub fn brk(&self) -> u64 {
        self.brk
    }

    /// Moves the break to `to` if it can; returns the pages the caller must map (growing
    /// into new pages) or unmap (shrinking below a page boundary).
    ///
    /// Like Linux, a request that cannot be met (below the start, over another mapping,
    /// over the budget) leaves the break where it is; the caller returns [`Self::brk`].
    pub fn move_brk(&mut self, to: u64) -> BrkChange {
        if to < self.brk_start || to >= USER_LIMIT {
            return BrkChange::None;
        }
        let old_end = page_round(self.brk).unwrap_or(self.brk);
        let Some(new_end) = page_round(to) else {
            return BrkChange::None;
        };
        let change = if new_end > old_end {
            if self.mapped_in(old_end, new_end) != 0 {
                return BrkChange::None;
            }
            let prot = Prot(Prot::READ | Prot::WRITE);
            if self
                .insert(old_end, new_end - old_end, prot, Use::Brk)
                .is_err()
            {
                return BrkChange::None;
            }
            BrkChange::Map(old_end, new_end)
        } else if new_end < old_end {
            let _ = self.remove(new_end, old_end);
            BrkChange::Unmap(new_end, old_end)
        } else {
            BrkChange::None
        };
        self.brk = to;
        change
    }
}

/// What a `brk` call asks of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrkChange {
    /// Nothing to map or unmap.
    None,
    /// Map `[start, end)` zeroed, read-write.
    Map(u64, u64),
    /// Unmap `[start, end)`.
    Unmap(u64, u64),
}
