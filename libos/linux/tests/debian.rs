//! The rewriter and the loader over Debian 12's own binaries: the host's libc checked
//! against `objdump -d` (binutils, which the Rust toolchain's linker needs anyway), and
//! a smoke run that loads `/usr/bin/iperf3` (which `cargo xtask test` installs, as for
//! the iperf tests) with its interpreter, then maps every shared library the way
//! `ld-linux-x86-64.so.2` does, and checks every rewritten site and every data byte.

mod common;

use common::*;
use elf::abi::{PT_LOAD, SHF_EXECINSTR};
use elf::endian::LittleEndian;
use elf::ElfBytes;
use libos_linux::fs::{Node, Tree};
use libos_linux::rewrite::{self, ElfSites, CALL_RAX, SYSCALL, UD2};
use libos_linux::sysno::*;
use libos_linux::{Config, Linux, Platform};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";
const IPERF3: &str = "/usr/bin/iperf3";
const LIBRARY_DIRS: [&str; 2] = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"];

fn read(path: &str) -> &'static [u8] {
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!("{path}: {e} (a Debian 12 host with iperf3 installed is needed)")
    });
    leak(bytes)
}

/// The addresses `objdump -d` shows a `syscall` at.
fn objdump_sites(path: &str) -> BTreeSet<u64> {
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn", path])
        .output()
        .expect("objdump (binutils) runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (addr, rest) = line.split_once(":\t")?;
            (rest.trim() == "syscall").then(|| u64::from_str_radix(addr.trim(), 16).ok())?
        })
        .collect()
}

#[test]
fn libc_sites_are_exactly_the_syscall_instructions_objdump_finds() {
    let file = read(LIBC);
    let sites = ElfSites::scan(file).unwrap();
    let ours: BTreeSet<u64> = sites
        .regions
        .iter()
        .flat_map(|r| r.sweep.sites.iter().copied())
        .collect();
    let theirs = objdump_sites(LIBC);
    let raw = rewrite::raw_pairs(file);
    println!(
        "{LIBC}: {} syscall sites (objdump: {}), {raw} raw 0f 05 pairs in the file, \
         {} sites with the return-address slot in use nearby",
        ours.len(),
        theirs.len(),
        sites.trap_count()
    );
    assert!(ours.len() > 100, "glibc has hundreds of syscall sites");
    assert_eq!(ours, theirs);
    assert!(
        raw > ours.len(),
        "the byte pattern occurs outside instructions too"
    );
}

/// The shared libraries `path` needs, found in the library folders, depth first.
fn needed(path: &str, out: &mut BTreeMap<String, &'static [u8]>) {
    let file = read(path);
    let elf = ElfBytes::<LittleEndian>::minimal_parse(file).unwrap();
    let Some(dynamic) = elf.dynamic().unwrap() else {
        return;
    };
    let strtab = elf.section_header_by_name(".dynstr").unwrap().unwrap();
    let strings = elf.section_data_as_strtab(&strtab).unwrap();
    for entry in dynamic.iter().filter(|d| d.d_tag == elf::abi::DT_NEEDED) {
        let name = strings.get(entry.d_val() as usize).unwrap();
        let found = LIBRARY_DIRS
            .iter()
            .map(|d| format!("{d}/{name}"))
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or_else(|| panic!("{name} (needed by {path}) not found"));
        if !out.contains_key(&found) {
            out.insert(found.clone(), read(&found));
            needed(&found, out);
        }
    }
}

/// Maps `file` (open as `fd`) as ld.so does: a reservation of the whole span with the
/// first segment's protection, then each segment `MAP_FIXED` over it. Returns the base.
fn map_like_ld_so(linux: &mut Linux<FakePlatform>, file: &[u8], fd: u64) -> u64 {
    let elf = ElfBytes::<LittleEndian>::minimal_parse(file).unwrap();
    let loads: Vec<_> = elf
        .segments()
        .unwrap()
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .collect();
    let first = loads[0];
    let last = loads[loads.len() - 1];
    let span = (last.p_vaddr + last.p_memsz).div_ceil(PAGE) * PAGE - (first.p_vaddr & !(PAGE - 1));
    let prot = |flags: u32| {
        (if flags & PF_R != 0 { 1 } else { 0 })
            | (if flags & PF_W != 0 { 2 } else { 0 })
            | (if flags & PF_X != 0 { 4 } else { 0 })
    };
    let base = linux.syscall(MMAP, [0, span, prot(first.p_flags), 2, fd, 0]);
    assert!(base > 0, "reservation: {base}");
    let base = base as u64;
    for p in &loads {
        let start = base + (p.p_vaddr & !(PAGE - 1));
        let offset = p.p_offset & !(PAGE - 1);
        let len = p.p_vaddr + p.p_filesz - (p.p_vaddr & !(PAGE - 1));
        let got = linux.syscall(MMAP, [start, len, prot(p.p_flags), 0x12, fd, offset]);
        assert_eq!(got as u64, start, "segment at {:#x}", p.p_vaddr);
    }
    base
}

#[test]
fn debian_iperf3_loads_and_every_syscall_site_is_rewritten_and_no_data_byte_changes() {
    let mut files: BTreeMap<String, &'static [u8]> = BTreeMap::new();
    files.insert(IPERF3.into(), read(IPERF3));
    needed(IPERF3, &mut files);
    let mut tree = Tree::new();
    for (path, bytes) in &files {
        tree.add(path, Node::File(bytes));
    }
    // The interpreter as Debian 12's libc6 installs it: a link into the library folder.
    let interp_target = "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
    let interp = read(interp_target);
    tree.add(interp_target, Node::File(interp));
    tree.add(
        "/lib64/ld-linux-x86-64.so.2",
        Node::Link(interp_target.into()),
    );
    files.insert(interp_target.into(), interp);
    let config = Config {
        budget: 256 << 20,
        ..Config::default()
    };
    let mut linux = Linux::new(FakePlatform::default(), tree, IPERF3, config);
    let start = linux
        .exec(IPERF3, &["iperf3", "-s"], &["PATH=/usr/bin"])
        .unwrap();
    assert_eq!(start.rsp % 16, 0);
    let layout = libos_linux::Layout::default();
    // Start-up bases: the program and the interpreter where the layout puts them.
    let mut bases: BTreeMap<String, u64> = BTreeMap::new();
    bases.insert(IPERF3.into(), layout.program_base);
    bases.insert(interp_target.into(), layout.interpreter_base);
    // The libraries, mapped through the system calls ld.so makes.
    for (path, bytes) in &files {
        if bases.contains_key(path) {
            continue;
        }
        let mut name = path.as_bytes().to_vec();
        name.push(0);
        let at = linux.syscall(MMAP, [0, PAGE, 3, 0x22, u64::MAX, 0]) as u64;
        linux.platform.write(at, &name);
        let fd = linux.syscall(OPENAT, [-100i64 as u64, at, 0x80000, 0, 0, 0]);
        assert!(fd >= 3, "open {path}: {fd}");
        let base = map_like_ld_so(&mut linux, bytes, fd as u64);
        linux.syscall(CLOSE, [fd as u64, 0, 0, 0, 0, 0]);
        bases.insert(path.clone(), base);
    }
    let mut total = 0;
    let mut rewritten_total = 0;
    let mut traps = 0;
    for (path, bytes) in &files {
        let checked = verify(&linux, path, bytes, bases[path]);
        total += checked.sites;
        traps += checked.traps;
        rewritten_total += checked.in_memory;
    }
    println!(
        "iperf3 and {} files: {total} syscall sites, all rewritten in memory ({traps} to \
         ud2); {} of them while loading (program + interpreter), the rest as ld.so maps",
        files.len() - 1,
        start.rewritten
    );
    assert_eq!(rewritten_total, total);
    assert!(total > 100);
    assert!(linux.unsupported().next().is_none());
}

/// What [`verify`] found for one file.
struct Checked {
    sites: usize,
    traps: usize,
    in_memory: usize,
}

/// Checks the file `path` as loaded at `base` (0 for a fixed-address file): every site
/// rewritten in memory (`ud2` where the return-address slot is in use, else `call
/// *%rax`), every byte of every loaded non-executable section as in the file, and in
/// the executable ones only the sites changed. Prints the counts.
fn verify(linux: &Linux<FakePlatform>, path: &str, bytes: &[u8], base: u64) -> Checked {
    let sites = ElfSites::scan(bytes).unwrap();
    let elf = ElfBytes::<LittleEndian>::minimal_parse(bytes).unwrap();
    let (sections, names) = elf.section_headers_with_strtab().unwrap();
    let names = names.unwrap();
    let all: BTreeSet<u64> = sites
        .regions
        .iter()
        .flat_map(|r| r.sweep.sites.iter().copied())
        .collect();
    let mut in_memory = 0;
    for region in &sites.regions {
        for &site in &region.sweep.sites {
            let got = linux.platform.bytes(base + site, 2);
            let want = if region.sweep.red_zone_sites.contains(&site) {
                UD2
            } else {
                CALL_RAX
            };
            assert_eq!(got, want, "{path}: site {site:#x} not rewritten");
            in_memory += 1;
        }
    }
    let mut data_bytes = 0u64;
    for p in elf
        .segments()
        .unwrap()
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
    {
        let mapped = linux.platform.bytes(base + p.p_vaddr, p.p_filesz as usize);
        let original = &bytes[p.p_offset as usize..][..p.p_filesz as usize];
        for s in sections.unwrap().iter() {
            let (lo, hi) = (s.sh_addr, s.sh_addr + s.sh_size);
            if s.sh_flags & SHF_EXECINSTR as u64 != 0 || s.sh_type == elf::abi::SHT_NOBITS {
                continue;
            }
            if lo < p.p_vaddr || hi > p.p_vaddr + p.p_filesz || s.sh_addr == 0 {
                continue;
            }
            let i = (lo - p.p_vaddr) as usize;
            let n = (hi - lo) as usize;
            assert!(
                mapped[i..i + n] == original[i..i + n],
                "{path}: section {} changed",
                names.get(s.sh_name as usize).unwrap_or("?")
            );
            data_bytes += n as u64;
        }
        for (i, (now, was)) in mapped.iter().zip(original).enumerate() {
            if now == was {
                continue;
            }
            let at = p.p_vaddr + i as u64;
            if all.contains(&at) {
                assert_eq!(*was, SYSCALL[0]);
            } else {
                assert!(
                    all.contains(&(at - 1)),
                    "{path}: byte at {at:#x} changed but is no site"
                );
                assert_eq!(*was, SYSCALL[1]);
            }
        }
    }
    assert!(data_bytes > 0, "{path}: some data was checked");
    println!(
        "{path}: {} syscall sites rewritten ({} to ud2: return-address slot in use \
         nearby), {} raw 0f 05 pairs in the file, {data_bytes} data bytes unchanged",
        sites.count(),
        sites.trap_count(),
        rewrite::raw_pairs(bytes)
    );
    Checked {
        sites: sites.count(),
        traps: sites.trap_count(),
        in_memory,
    }
}

/// Debian's `busybox-static` (which `cargo xtask test` installs): a fixed-address static
/// executable with a TLS segment and no symbols.
const BUSYBOX: &str = "/bin/busybox";

#[test]
fn debian_busybox_static_loads_at_its_fixed_address_with_every_site_rewritten() {
    let file = read(BUSYBOX);
    let mut tree = Tree::new();
    tree.add(BUSYBOX, Node::File(file));
    let mut linux = Linux::new(FakePlatform::default(), tree, BUSYBOX, Config::default());
    let start = linux
        .exec(BUSYBOX, &["busybox", "echo", "hi"], &[])
        .unwrap();
    let image = libos_linux::image::Image::plan(file, 0).unwrap();
    assert_eq!(image.kind, libos_linux::image::Kind::Fixed);
    assert!(image.tls.is_some(), "busybox-static has a TLS segment");
    assert_eq!(start.rip, image.entry);
    let checked = verify(&linux, BUSYBOX, file, 0);
    assert_eq!(checked.in_memory, checked.sites);
    assert_eq!(start.rewritten, checked.sites);
    let theirs = objdump_sites(BUSYBOX);
    let ours: BTreeSet<u64> = ElfSites::scan(file)
        .unwrap()
        .regions
        .iter()
        .flat_map(|r| r.sweep.sites.iter().copied())
        .collect();
    assert_eq!(ours, theirs);
    assert!(checked.sites > 100);
    // The break starts past its last segment; /proc/self/exe names it.
    assert_eq!(linux.memory.brk() % PAGE, 0);
    assert!(linux.memory.brk() >= image.span().1);
}
