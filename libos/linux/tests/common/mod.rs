//! Test helpers: a platform whose memory is a map of pages, and a builder of small ELF
//! files.
#![allow(dead_code, reason = "each test file uses a part")]

use libos_linux::fs::Stream;
use libos_linux::{Clock, Errno, Platform, Prot};
use std::collections::BTreeMap;

pub const PAGE: u64 = 4096;

/// A platform over a map of pages, recording what the layer asked of it.
#[derive(Default)]
pub struct FakePlatform {
    pub pages: BTreeMap<u64, (Vec<u8>, Prot)>,
    pub fs_base: Option<u64>,
    pub now_ns: u64,
    pub slept_ns: u64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub reports: Vec<String>,
    pub exit: Option<i32>,
    pub random_counter: u8,
    /// Pages the platform refuses to map beyond (simulates running out of memory).
    pub max_pages: Option<usize>,
}

impl FakePlatform {
    pub fn bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        self.read(addr, &mut out);
        out
    }
    pub fn u64_at(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.bytes(addr, 8).try_into().unwrap())
    }
    pub fn cstr_at(&self, addr: u64) -> String {
        let mut out = Vec::new();
        let mut at = addr;
        loop {
            let b = self.bytes(at, 1)[0];
            if b == 0 {
                return String::from_utf8(out).unwrap();
            }
            out.push(b);
            at += 1;
        }
    }
}

impl Platform for FakePlatform {
    fn map(&mut self, addr: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        assert_eq!(addr % PAGE, 0, "unaligned map");
        assert_eq!(len % PAGE, 0, "partial-page map");
        let fresh = (addr..addr + len)
            .step_by(PAGE as usize)
            .filter(|p| !self.pages.contains_key(p))
            .count();
        if self
            .max_pages
            .is_some_and(|max| self.pages.len() + fresh > max)
        {
            return Err(Errno::ENOMEM);
        }
        for page in (addr..addr + len).step_by(PAGE as usize) {
            self.pages.insert(page, (vec![0; PAGE as usize], prot));
        }
        Ok(())
    }
    fn unmap(&mut self, addr: u64, len: u64) {
        for page in (addr..addr + len).step_by(PAGE as usize) {
            self.pages.remove(&page);
        }
    }
    fn protect(&mut self, addr: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        for page in (addr..addr + len).step_by(PAGE as usize) {
            self.pages
                .get_mut(&page)
                .expect("protect of an unmapped page")
                .1 = prot;
        }
        Ok(())
    }
    fn read(&self, addr: u64, into: &mut [u8]) {
        let mut done = 0;
        while done < into.len() {
            let at = addr + done as u64;
            let (page, offset) = (at & !(PAGE - 1), (at % PAGE) as usize);
            let n = (PAGE as usize - offset).min(into.len() - done);
            let bytes = &self
                .pages
                .get(&page)
                .unwrap_or_else(|| panic!("the layer read unmapped memory at {at:#x}"))
                .0;
            into[done..done + n].copy_from_slice(&bytes[offset..offset + n]);
            done += n;
        }
    }
    fn write(&mut self, addr: u64, bytes: &[u8]) {
        let mut done = 0;
        while done < bytes.len() {
            let at = addr + done as u64;
            let (page, offset) = (at & !(PAGE - 1), (at % PAGE) as usize);
            let n = (PAGE as usize - offset).min(bytes.len() - done);
            let target = &mut self
                .pages
                .get_mut(&page)
                .unwrap_or_else(|| panic!("the layer wrote unmapped memory at {at:#x}"))
                .0;
            target[offset..offset + n].copy_from_slice(&bytes[done..done + n]);
            done += n;
        }
    }
    fn set_fs_base(&mut self, base: u64) {
        self.fs_base = Some(base);
    }
    fn clock_ns(&self, clock: Clock) -> u64 {
        match clock {
            Clock::Realtime => 1_700_000_000_000_000_000u64.saturating_add(self.now_ns),
            Clock::Monotonic => self.now_ns,
            Clock::ProcessCpu => self.now_ns / 2,
        }
    }
    fn sleep_ns(&mut self, ns: u64) {
        self.slept_ns = self.slept_ns.saturating_add(ns);
        self.now_ns = self.now_ns.saturating_add(ns);
    }
    fn random(&mut self, into: &mut [u8]) {
        for b in into {
            self.random_counter = self.random_counter.wrapping_add(1);
            *b = self.random_counter;
        }
    }
    fn console(&mut self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.extend_from_slice(bytes),
            Stream::Stderr => self.stderr.extend_from_slice(bytes),
        }
    }
    fn report(&mut self, line: &str) {
        self.reports.push(line.to_string());
    }
    fn exit(&mut self, status: i32) {
        self.exit = Some(status);
    }
}

/// One program header for [`elf`].
#[derive(Clone, Copy)]
pub struct Ph {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;
pub const PT_PHDR: u32 = 6;
pub const PT_TLS: u32 = 7;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

/// A minimal ELF64 x86_64 file: header, then program headers at offset 64, then `body`
/// (whose bytes start at offset `64 + 56 * headers.len()`); no section headers.
pub fn elf(kind: u16, entry: u64, headers: &[Ph], body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&kind.to_le_bytes());
    f.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(&entry.to_le_bytes());
    f.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&64u16.to_le_bytes());
    f.extend_from_slice(&56u16.to_le_bytes());
    f.extend_from_slice(&(headers.len() as u16).to_le_bytes());
    f.extend_from_slice(&64u16.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    for h in headers {
        f.extend_from_slice(&h.kind.to_le_bytes());
        f.extend_from_slice(&h.flags.to_le_bytes());
        f.extend_from_slice(&h.offset.to_le_bytes());
        f.extend_from_slice(&h.vaddr.to_le_bytes());
        f.extend_from_slice(&h.vaddr.to_le_bytes());
        f.extend_from_slice(&h.filesz.to_le_bytes());
        f.extend_from_slice(&h.memsz.to_le_bytes());
        f.extend_from_slice(&h.align.to_le_bytes());
    }
    f.extend_from_slice(body);
    f
}

/// A static fixed-address program at 0x400000: one read-execute segment holding the
/// whole file (headers included) with `code` at the entry, one read-write segment of
/// `bss` bytes at 0x600000.
pub fn static_program(code: &[u8], bss: u64) -> Vec<u8> {
    let header_len = 64 + 56 * 2;
    let file_len = (header_len + code.len()) as u64;
    elf(
        2,
        0x400000 + header_len as u64,
        &[
            Ph {
                kind: PT_LOAD,
                flags: PF_R | PF_X,
                offset: 0,
                vaddr: 0x400000,
                filesz: file_len,
                memsz: file_len,
                align: PAGE,
            },
            Ph {
                kind: PT_LOAD,
                flags: PF_R | PF_W,
                offset: 0,
                vaddr: 0x600000,
                filesz: 0,
                memsz: bss,
                align: PAGE,
            },
        ],
        code,
    )
}

/// Leaks `bytes` (test files live as long as the test).
pub fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}
