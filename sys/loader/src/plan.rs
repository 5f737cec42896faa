//! Checking a component's ELF file and planning its address space.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PT_LOAD};
use elf::endian::LittleEndian;
use elf::ElfBytes;
use rt::startinfo::{
    DATA_MAX, DATA_VADDR, HEAP_MAX, HEAP_VADDR, IMAGE_LIMIT, IPC_BUFFER_VADDR, STACK_MAX,
    STACK_TOP, START_INFO_VADDR,
};

/// Page size.
pub const PAGE: u64 = 4096;

/// Why an ELF file cannot be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanError {
    /// Not an ELF file the parser accepts.
    NotElf,
    /// Not a 64-bit x86 executable (`ET_EXEC`, `EM_X86_64`).
    WrongKind,
    /// A loadable segment's file bytes lie outside the file, or `filesz > memsz`.
    BadSegment,
    /// A segment reaches the loader-managed area at [`IMAGE_LIMIT`] or wraps around.
    OutOfRange,
    /// The file has no loadable segment, or its entry point is outside them.
    NoEntry,
    /// The data blob is larger than [`DATA_MAX`].
    DataTooLarge,
    /// The heap or stack is larger than its area, or not in whole pages.
    BadBudget,
}

/// A run of zeroed, writable pages taken from the component's budget (its heap or stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Zeroed {
    /// Page-aligned virtual address of the first page.
    pub vaddr: u64,
    /// Bytes, a whole number of pages (0: none).
    pub len: u64,
}

/// A large (2 MiB) page: what a run maps wherever it covers a whole aligned one.
pub const LARGE_PAGE: u64 = 2 << 20;

impl Zeroed {
    /// The frames that map the run, in address order: (virtual address, large). A 2 MiB
    /// frame wherever the run covers a whole aligned 2 MiB, else 4 KiB pages, so a big heap
    /// takes few frames and no page tables.
    pub fn frames(&self) -> impl Iterator<Item = (u64, bool)> {
        let end = self.vaddr + self.len;
        let mut at = self.vaddr;
        core::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let large = at.is_multiple_of(LARGE_PAGE) && end - at >= LARGE_PAGE;
            let frame = (at, large);
            at += if large { LARGE_PAGE } else { PAGE };
            Some(frame)
        })
    }

    /// Frames in the run (see [`Zeroed::frames`]).
    pub fn frame_count(&self) -> u64 {
        self.frames().count() as u64
    }
}

/// A byte range of the ELF file copied into a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copy {
    /// Offset in the page.
    pub page_offset: usize,
    /// Offset in the file.
    pub file_offset: usize,
    /// Bytes.
    pub len: usize,
}

/// One page of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Page-aligned virtual address.
    pub vaddr: u64,
    /// Mapped writable (else read-only).
    pub writable: bool,
    /// What to copy in; the rest of the page is zero.
    pub copies: Vec<Copy>,
}

/// Everything needed to build a component's address space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Entry point.
    pub entry: u64,
    /// The image's pages in address order, then the start-info and IPC-buffer pages,
    /// then the data blob's pages (read-only, copied from the blob, not the file).
    pub pages: Vec<Page>,
    /// The heap's pages at [`HEAP_VADDR`] (from the budget, not listed in `pages`).
    pub heap: Zeroed,
    /// The stack's pages, ending at [`STACK_TOP`] (from the budget, not listed in `pages`).
    pub stack: Zeroed,
    /// Virtual bases of the page-directory-pointer tables needed (one per 512 GiB).
    pub pdpts: Vec<u64>,
    /// Virtual bases of the page directories needed (one per 1 GiB).
    pub pds: Vec<u64>,
    /// Virtual bases of the page tables needed (one per 2 MiB).
    pub pts: Vec<u64>,
}

impl Plan {
    /// Bytes of memory the plan's image pages take (without paging structures, heap and
    /// stack).
    pub fn page_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }

    /// Bytes of heap and stack: what the component's budget pays.
    pub fn budget_bytes(&self) -> u64 {
        self.heap.len + self.stack.len
    }
}

/// As [`plan`], plus `heap` bytes of heap at [`HEAP_VADDR`] and `stack` bytes of stack
/// below [`STACK_TOP`] (zeroed, writable; the page below the stack stays unmapped).
///
/// Errors as [`plan`], and [`PlanError::BadBudget`] if the heap or stack is not in whole
/// pages or larger than [`HEAP_MAX`] or [`STACK_MAX`].
pub fn plan_component(
    file: &[u8],
    data_len: usize,
    heap: u64,
    stack: u64,
) -> Result<Plan, PlanError> {
    if !heap.is_multiple_of(PAGE)
        || !stack.is_multiple_of(PAGE)
        || heap > HEAP_MAX
        || stack > STACK_MAX
    {
        return Err(PlanError::BadBudget);
    }
    let mut p = plan(file, data_len)?;
    p.heap = Zeroed {
        vaddr: HEAP_VADDR,
        len: heap,
    };
    p.stack = Zeroed {
        vaddr: STACK_TOP - stack,
        len: stack,
    };
    let (pdpts, pds, pts) = tables(&p.pages, &[p.heap, p.stack]);
    (p.pdpts, p.pds, p.pts) = (pdpts, pds, pts);
    Ok(p)
}

/// The bases of the paging structures that map `pages` and the `runs`: (PDPTs, page
/// directories, page tables). A large frame needs no page table.
fn tables(pages: &[Page], runs: &[Zeroed]) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
    // 4 KiB mappings need every level; large ones all but the page table.
    let mut small: Vec<u64> = pages.iter().map(|p| p.vaddr).collect();
    let mut large = Vec::new();
    for (vaddr, is_large) in runs.iter().flat_map(Zeroed::frames) {
        if is_large {
            large.push(vaddr);
        } else {
            small.push(vaddr);
        }
    }
    let bases = |addrs: &mut dyn Iterator<Item = &u64>, shift: u32| {
        let mut v: Vec<u64> = addrs.map(|a| a >> shift << shift).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    (
        bases(&mut small.iter().chain(&large), 39),
        bases(&mut small.iter().chain(&large), 30),
        bases(&mut small.iter(), 21),
    )
}

/// Checks `file` and plans its pages, plus the start-info page (read-only), the
/// IPC buffer page (writable) and `data_len` bytes of data blob (read-only) at their
/// fixed addresses. Data pages' copies have offsets into the blob.
pub fn plan(file: &[u8], data_len: usize) -> Result<Plan, PlanError> {
    if data_len as u64 > DATA_MAX {
        return Err(PlanError::DataTooLarge);
    }
    let elf = ElfBytes::<LittleEndian>::minimal_parse(file).map_err(|_| PlanError::NotElf)?;
    if elf.ehdr.e_type != ET_EXEC || elf.ehdr.e_machine != EM_X86_64 {
        return Err(PlanError::WrongKind);
    }
    let segments = elf.segments().ok_or(PlanError::NoEntry)?;
    let mut pages: BTreeMap<u64, Page> = BTreeMap::new();
    let mut entry_ok = false;
    for ph in segments.iter().filter(|p| p.p_type == PT_LOAD) {
        let (vaddr, memsz, filesz, offset) = (ph.p_vaddr, ph.p_memsz, ph.p_filesz, ph.p_offset);
        if filesz > memsz
            || offset
                .checked_add(filesz)
                .is_none_or(|end| end > file.len() as u64)
        {
            return Err(PlanError::BadSegment);
        }
        let end = vaddr.checked_add(memsz).ok_or(PlanError::OutOfRange)?;
        if end > IMAGE_LIMIT || vaddr < PAGE {
            return Err(PlanError::OutOfRange);
        }
        if (vaddr..end).contains(&elf.ehdr.e_entry) {
            entry_ok = true;
        }
        let writable = ph.p_flags & PF_W != 0;
        let mut page = vaddr & !(PAGE - 1);
        while page < end {
            let entry = pages.entry(page).or_insert(Page {
                vaddr: page,
                writable: false,
                copies: Vec::new(),
            });
            entry.writable |= writable;
            // The part of the segment's file bytes that falls in this page.
            let from = page.max(vaddr);
            let to = (page + PAGE).min(vaddr + filesz);
            if from < to {
                entry.copies.push(Copy {
                    page_offset: (from - page) as usize,
                    file_offset: (offset + (from - vaddr)) as usize,
                    len: (to - from) as usize,
                });
            }
            page += PAGE;
        }
    }
    if pages.is_empty() || !entry_ok {
        return Err(PlanError::NoEntry);
    }
    let mut pages: Vec<Page> = pages.into_values().collect();
    pages.push(Page {
        vaddr: START_INFO_VADDR,
        writable: false,
        copies: Vec::new(),
    });
    pages.push(Page {
        vaddr: IPC_BUFFER_VADDR,
        writable: true,
        copies: Vec::new(),
    });
    for (i, at) in (0..data_len).step_by(PAGE as usize).enumerate() {
        let len = (data_len - at).min(PAGE as usize);
        let copy = Copy {
            page_offset: 0,
            file_offset: at,
            len,
        };
        pages.push(Page {
            vaddr: DATA_VADDR + i as u64 * PAGE,
            writable: false,
            copies: alloc::vec![copy],
        });
    }
    let (pdpts, pds, pts) = tables(&pages, &[]);
    Ok(Plan {
        entry: elf.ehdr.e_entry,
        heap: Zeroed::default(),
        stack: Zeroed::default(),
        pdpts,
        pds,
        pts,
        pages,
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    /// A minimal ELF64 executable with the given (vaddr, memsz, file bytes, writable) segments.
    fn elf_file(entry: u64, segs: &[(u64, u64, &[u8], bool)]) -> Vec<u8> {
        let phoff = 64u64;
        let data_start = phoff + 56 * segs.len() as u64;
        let mut out = vec![0u8; data_start as usize];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2; // 64-bit
        out[5] = 1; // little endian
        out[6] = 1; // version
        out[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[24..32].copy_from_slice(&entry.to_le_bytes());
        out[32..40].copy_from_slice(&phoff.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        out[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        out[56..58].copy_from_slice(&(segs.len() as u16).to_le_bytes());
        let mut file_off = data_start;
        let mut bodies = Vec::new();
        for (i, (vaddr, memsz, bytes, writable)) in segs.iter().enumerate() {
            let ph = (phoff + 56 * i as u64) as usize;
            out[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            let flags: u32 = if *writable { 6 } else { 5 };
            out[ph + 4..ph + 8].copy_from_slice(&flags.to_le_bytes());
            out[ph + 8..ph + 16].copy_from_slice(&file_off.to_le_bytes());
            out[ph + 16..ph + 24].copy_from_slice(&vaddr.to_le_bytes());
            out[ph + 24..ph + 32].copy_from_slice(&vaddr.to_le_bytes());
            out[ph + 32..ph + 40].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            out[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes());
            out[ph + 48..ph + 56].copy_from_slice(&4096u64.to_le_bytes());
            bodies.extend_from_slice(bytes);
            file_off += bytes.len() as u64;
        }
        out.extend_from_slice(&bodies);
        out
    }

    #[test]
    fn pages_copies_and_tables() {
        let text = vec![0x90u8; 5000];
        let data = vec![7u8; 10];
        let f = elf_file(
            0x400010,
            &[
                (0x400000, 5000, &text, false),
                (0x402ff8, 0x2000, &data, true),
            ],
        );
        let p = plan(&f, 0).unwrap();
        assert_eq!(p.entry, 0x400010);
        let vaddrs: Vec<u64> = p.pages.iter().map(|p| p.vaddr).collect();
        assert_eq!(
            vaddrs,
            vec![
                0x400000,
                0x401000,
                0x402000,
                0x403000,
                0x404000,
                START_INFO_VADDR,
                IPC_BUFFER_VADDR
            ]
        );
        assert!(!p.pages[0].writable && p.pages[2].writable);
        assert_eq!(
            p.pages[0].copies,
            vec![Copy {
                page_offset: 0,
                file_offset: 176,
                len: 4096
            }]
        );
        assert_eq!(
            p.pages[1].copies,
            vec![Copy {
                page_offset: 0,
                file_offset: 176 + 4096,
                len: 904
            }]
        );
        // The data segment starts 8 bytes before a page boundary: its 10 bytes straddle it.
        assert_eq!(
            p.pages[2].copies,
            vec![Copy {
                page_offset: 0xff8,
                file_offset: 5176,
                len: 8
            }]
        );
        assert_eq!(
            p.pages[3].copies,
            vec![Copy {
                page_offset: 0,
                file_offset: 5184,
                len: 2
            }]
        );
        assert!(p.pages[4].copies.is_empty(), "bss only");
        assert_eq!(p.pdpts, vec![0]);
        assert_eq!(p.pds, vec![0]);
        assert_eq!(p.pts, vec![0x400000, START_INFO_VADDR & !0x1fffff]);
    }

    #[test]
    fn data_blob_pages() {
        let f = elf_file(0x400000, &[(0x400000, 16, &[1; 16], false)]);
        let p = plan(&f, 5000).unwrap();
        let data: Vec<&Page> = p.pages.iter().filter(|p| p.vaddr >= DATA_VADDR).collect();
        assert_eq!(data.len(), 2);
        assert_eq!(data[1].vaddr, DATA_VADDR + PAGE);
        assert!(!data[0].writable);
        assert_eq!(
            data[1].copies,
            vec![Copy {
                page_offset: 0,
                file_offset: 4096,
                len: 904
            }]
        );
        assert!(p.pts.contains(&DATA_VADDR));
        assert_eq!(
            plan(&f, DATA_MAX as usize + 1),
            Err(PlanError::DataTooLarge)
        );
    }

    #[test]
    fn bad_files_are_refused() {
        assert_eq!(plan(b"not an elf", 0), Err(PlanError::NotElf));
        let ok = elf_file(0x400000, &[(0x400000, 16, &[1; 16], false)]);
        assert!(plan(&ok, 0).is_ok());
        let mut dynamic = ok.clone();
        dynamic[16] = 3; // ET_DYN
        assert_eq!(plan(&dynamic, 0), Err(PlanError::WrongKind));
        assert_eq!(
            plan(&elf_file(0x900000, &[(0x400000, 16, &[1; 16], false)]), 0),
            Err(PlanError::NoEntry)
        );
        assert_eq!(
            plan(&elf_file(0x400000, &[(0x400000, 8, &[1; 16], false)]), 0),
            Err(PlanError::BadSegment),
            "filesz > memsz"
        );
        assert_eq!(
            plan(
                &elf_file(IMAGE_LIMIT - 8, &[(IMAGE_LIMIT - 8, 16, &[1; 16], false)]),
                0
            ),
            Err(PlanError::OutOfRange)
        );
        assert_eq!(
            plan(&elf_file(0, &[(0, 16, &[1; 16], false)]), 0),
            Err(PlanError::OutOfRange)
        );
        let mut truncated = ok.clone();
        truncated.truncate(ok.len() - 4);
        assert_eq!(plan(&truncated, 0), Err(PlanError::BadSegment));
        // No input panics: every prefix of a good file.
        for n in 0..ok.len() {
            let _ = plan(&ok[..n], 0);
        }
    }

    #[test]
    fn heap_and_stack_come_as_runs_with_their_tables() {
        let text = vec![0x90u8; 100];
        let f = elf_file(0x400000, &[(0x400000, 100, &text, false)]);
        let p = plan_component(&f, 0, 5 << 20, 64 << 10).unwrap();
        assert_eq!(p.heap.vaddr, HEAP_VADDR);
        // 5 MiB from a 2 MiB boundary: two large frames, then 256 pages.
        let heap: Vec<(u64, bool)> = p.heap.frames().collect();
        assert_eq!(heap.len(), 2 + 256);
        assert_eq!(
            &heap[..3],
            &[
                (HEAP_VADDR, true),
                (HEAP_VADDR + LARGE_PAGE, true),
                (HEAP_VADDR + 2 * LARGE_PAGE, false)
            ]
        );
        assert_eq!(p.heap.frame_count(), 258);
        assert_eq!(p.stack.vaddr + p.stack.len, STACK_TOP);
        assert!(p.stack.frames().all(|(_, large)| !large));
        assert_eq!(p.stack.frame_count(), 16);
        assert_eq!(p.budget_bytes(), (5 << 20) + (64 << 10));
        // Heap and stack frames are not in the page list; their paging structures are
        // planned, page tables only where 4 KiB pages go.
        assert_eq!(p.pages.len(), 3);
        for (a, large) in p.heap.frames().chain(p.stack.frames()) {
            assert_eq!(p.pts.contains(&(a >> 21 << 21)), !large, "{a:#x}");
            assert!(p.pds.contains(&(a >> 30 << 30)), "{a:#x}");
            assert!(p.pdpts.contains(&(a >> 39 << 39)), "{a:#x}");
        }
        // The heap's 1 MiB tail takes one page table, the stack one more.
        let plain = plan(&f, 0).unwrap();
        assert_eq!(p.pts.len(), plain.pts.len() + 2);
        // The guard page below the stack is mapped by nothing.
        let guard = p.stack.vaddr - PAGE;
        assert!(!p.pages.iter().any(|pg| pg.vaddr == guard));
        assert!(!p.heap.frames().any(|(a, _)| a == guard));
        assert_eq!(plan_component(&f, 0, 100, 0), Err(PlanError::BadBudget));
        assert_eq!(
            plan_component(&f, 0, 0, STACK_MAX + PAGE),
            Err(PlanError::BadBudget)
        );
    }
}
