//! The syscall rewriter: finds the real `syscall` instructions (`0f 05`) in x86_64 code
//! and replaces each by `call *%rax` (`ff d0`), which jumps into the trampoline page at
//! address 0 (docs/LINUX.md). A site whose neighbours use the 8 bytes below `rsp`, where
//! `call` would put its return address over the program's data, becomes `ud2` (`0f 0b`)
//! instead: a fault the library OS handles on the slow path, with no stack write.
//!
//! Only instructions the decoder (iced-x86) reaches are rewritten, never a `0f 05` pair
//! inside another instruction or in data: a linear sweep per executable section that
//! restarts at every function symbol, dropping an instruction that would straddle one.

use alloc::string::String;
use alloc::vec::Vec;
use elf::abi::{PF_X, PT_LOAD, SHF_EXECINSTR, SHT_NOBITS, STT_FUNC};
use elf::endian::LittleEndian;
use elf::ElfBytes;
use iced_x86::{Code, Decoder, DecoderOptions, Instruction, OpKind, Register};

/// The `syscall` instruction.
pub const SYSCALL: [u8; 2] = [0x0f, 0x05];
/// What it becomes: `call *%rax`.
pub const CALL_RAX: [u8; 2] = [0xff, 0xd0];
/// What it becomes where the return-address slot is in use: `ud2` (an invalid-opcode
/// fault, which enters the kernel through the exception path that saves every register).
pub const UD2: [u8; 2] = [0x0f, 0x0b];
/// How many instructions either side of a site are looked at for red-zone use.
pub const RED_ZONE_WINDOW: usize = 16;

/// The result of sweeping one run of code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Addresses of the real `syscall` instructions, ascending.
    pub sites: Vec<u64>,
    /// Of those, the sites with an access to the 8 bytes below `rsp` (the part of the red
    /// zone that `call` writes its return address into) within [`RED_ZONE_WINDOW`]
    /// instructions (no function start or undecodable byte between).
    pub red_zone_sites: Vec<u64>,
    /// Bytes the decoder could not decode (skipped one at a time).
    pub invalid_bytes: usize,
    /// Instructions dropped because they straddled a function start.
    pub resyncs: usize,
}

/// Whether `instruction` accesses memory overlapping the 8 bytes below `rsp`, the slot
/// `call *%rax` writes its return address into.
fn touches_return_slot(instruction: &Instruction) -> bool {
    (0..instruction.op_count()).any(|i| {
        let displacement = instruction.memory_displacement64() as i64;
        let size = instruction.memory_size().size().max(1) as i64;
        instruction.op_kind(i) == OpKind::Memory
            && instruction.memory_base() == Register::RSP
            && displacement < 0
            && displacement + size > -8
    })
}

/// Sweeps `code` (which starts at address `ip`), restarting at each address in
/// `starts` (function starts; unsorted and out-of-range ones are fine).
pub fn sweep(code: &[u8], ip: u64, starts: &[u64]) -> Sweep {
    let end = ip + code.len() as u64;
    let mut starts: Vec<u64> = starts
        .iter()
        .copied()
        .filter(|&s| s > ip && s < end)
        .collect();
    starts.sort_unstable();
    starts.dedup();
    let mut next_start = starts.iter().copied().peekable();
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut instruction = Instruction::default();
    let mut result = Sweep::default();
    // (address, is a site, touches the red zone, first after a restart).
    let mut seen: Vec<(u64, bool, bool, bool)> = Vec::new();
    let mut restarted = true;
    while decoder.can_decode() {
        let at = decoder.ip();
        while next_start.peek().is_some_and(|&s| s <= at) {
            if next_start.peek() == Some(&at) {
                restarted = true;
            }
            next_start.next();
        }
        decoder.decode_out(&mut instruction);
        let after = at + instruction.len() as u64;
        if let Some(&s) = next_start.peek() {
            if s < after {
                // This instruction runs over a function start: decode from the start.
                result.resyncs += 1;
                let position = (s - ip) as usize;
                if decoder.set_position(position).is_err() {
                    break;
                }
                decoder.set_ip(s);
                continue;
            }
        }
        if instruction.is_invalid() {
            result.invalid_bytes += instruction.len().max(1);
            restarted = true;
            continue;
        }
        let site = instruction.code() == Code::Syscall;
        seen.push((at, site, touches_return_slot(&instruction), restarted));
        restarted = false;
    }
    for (i, &(at, site, _, _)) in seen.iter().enumerate() {
        if !site {
            continue;
        }
        result.sites.push(at);
        // The window stops at a restart (another function, or after undecodable bytes).
        let mut near = false;
        let mut j = i;
        while j > 0 && i - j < RED_ZONE_WINDOW && !seen[j].3 {
            j -= 1;
            near |= seen[j].2;
        }
        for entry in seen.iter().skip(i + 1).take(RED_ZONE_WINDOW) {
            if entry.3 {
                break;
            }
            near |= entry.2;
        }
        if near {
            result.red_zone_sites.push(at);
        }
    }
    result
}

impl Sweep {
    /// What the site at `address` is rewritten to: [`UD2`] for a red-zone site, else
    /// [`CALL_RAX`].
    pub fn replacement(&self, address: u64) -> [u8; 2] {
        if self.red_zone_sites.binary_search(&address).is_ok() {
            UD2
        } else {
            CALL_RAX
        }
    }
}

/// Rewrites every real `syscall` in `code` (at address `ip`) to `call *%rax` (`ud2` at
/// red-zone sites); returns the sweep, whose `sites` are the rewritten addresses.
pub fn rewrite(code: &mut [u8], ip: u64, starts: &[u64]) -> Sweep {
    let found = sweep(code, ip, starts);
    for &site in &found.sites {
        let at = (site - ip) as usize;
        code[at..at + 2].copy_from_slice(&found.replacement(site));
    }
    found
}

/// How many `0f 05` byte pairs occur in `bytes` at all (real instructions or not).
pub fn raw_pairs(bytes: &[u8]) -> usize {
    bytes.windows(2).filter(|w| *w == SYSCALL).count()
}

/// One swept run of code in an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Section name (`.text`), or `PT_LOAD` when the file has no section headers.
    pub name: String,
    /// Link-time address of the first byte.
    pub vaddr: u64,
    /// File offset of the first byte.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
    /// What the sweep found.
    pub sweep: Sweep,
}

/// Every real `syscall` in an ELF file's executable code, by file offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfSites {
    /// The executable regions swept.
    pub regions: Vec<Region>,
}

/// Why an ELF file could not be swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepError {
    /// Not an ELF file the parser accepts.
    NotElf,
    /// An executable section or segment lies outside the file.
    BadRegion,
}

impl ElfSites {
    /// Sweeps `file`'s executable sections (`SHF_EXECINSTR`), restarting at its function
    /// symbols; without section headers, its executable `PT_LOAD` segments.
    pub fn scan(file: &[u8]) -> Result<ElfSites, SweepError> {
        let elf = ElfBytes::<LittleEndian>::minimal_parse(file).map_err(|_| SweepError::NotElf)?;
        let mut starts: Vec<u64> = Vec::new();
        for table in [
            elf.symbol_table().ok().flatten(),
            elf.dynamic_symbol_table().ok().flatten(),
        ]
        .into_iter()
        .flatten()
        {
            starts.extend(
                table
                    .0
                    .iter()
                    .filter(|s| s.st_symtype() == STT_FUNC && !s.is_undefined())
                    .map(|s| s.st_value),
            );
        }
        let mut runs: Vec<(String, u64, u64, u64)> = Vec::new();
        let (headers, names) = elf
            .section_headers_with_strtab()
            .map_err(|_| SweepError::NotElf)?;
        if let Some(headers) = headers {
            for h in headers.iter() {
                if h.sh_flags & SHF_EXECINSTR as u64 == 0 || h.sh_type == SHT_NOBITS {
                    continue;
                }
                let name = names
                    .as_ref()
                    .and_then(|n| n.get(h.sh_name as usize).ok())
                    .unwrap_or("?");
                runs.push((String::from(name), h.sh_addr, h.sh_offset, h.sh_size));
            }
        }
        if runs.is_empty() {
            for p in elf.segments().iter().flat_map(|t| t.iter()) {
                if p.p_type == PT_LOAD && p.p_flags & PF_X != 0 {
                    runs.push((String::from("PT_LOAD"), p.p_vaddr, p.p_offset, p.p_filesz));
                }
            }
        }
        let mut regions = Vec::with_capacity(runs.len());
        for (name, vaddr, offset, len) in runs {
            let end = offset.checked_add(len).ok_or(SweepError::BadRegion)?;
            if end > file.len() as u64 || vaddr.checked_add(len).is_none() {
                return Err(SweepError::BadRegion);
            }
            let code = &file[offset as usize..end as usize];
            regions.push(Region {
                name,
                vaddr,
                offset,
                len,
                sweep: sweep(code, vaddr, &starts),
            });
        }
        Ok(ElfSites { regions })
    }

    /// File offsets of every site, ascending.
    pub fn offsets(&self) -> Vec<u64> {
        self.replacements().into_iter().map(|(at, _)| at).collect()
    }

    /// Every site's file offset and what it is rewritten to, ascending.
    pub fn replacements(&self) -> Vec<(u64, [u8; 2])> {
        let mut all: Vec<(u64, [u8; 2])> = self
            .regions
            .iter()
            .flat_map(|r| {
                r.sweep
                    .sites
                    .iter()
                    .map(move |&s| (s - r.vaddr + r.offset, r.sweep.replacement(s)))
            })
            .collect();
        all.sort_unstable();
        all
    }

    /// Sites that become `ud2` (the slow path) in all regions.
    pub fn trap_count(&self) -> usize {
        self.regions
            .iter()
            .map(|r| r.sweep.red_zone_sites.len())
            .sum()
    }

    /// Sites in all regions.
    pub fn count(&self) -> usize {
        self.regions.iter().map(|r| r.sweep.sites.len()).sum()
    }

    /// Rewrites the sites that fall inside `bytes`, a copy of the file's bytes from
    /// `file_offset` on (a segment or a file-backed mapping being loaded); returns how
    /// many were rewritten. A site whose bytes are not `syscall` any more (already
    /// rewritten, or a different file) is left alone and not counted.
    pub fn apply(&self, bytes: &mut [u8], file_offset: u64) -> usize {
        let end = file_offset + bytes.len() as u64;
        let mut done = 0;
        for (site, replacement) in self.replacements() {
            if site < file_offset || site + 2 > end {
                continue;
            }
            let at = (site - file_offset) as usize;
            if bytes[at..at + 2] == SYSCALL {
                bytes[at..at + 2].copy_from_slice(&replacement);
                done += 1;
            }
        }
        done
    }
}
