//! The ELF load plan and the initial stack.

mod common;

use common::*;
use libos_linux::image::{ExecError, ExecPlan, Image, ImageError, Kind};
use libos_linux::stack::{self, at, Identity};

fn pie_with_interp(interp: &[u8]) -> Vec<u8> {
    let headers_end = 64 + 56 * 3;
    let interp_at = headers_end as u64;
    elf(
        3,
        0x1000,
        &[
            Ph {
                kind: PT_PHDR,
                flags: PF_R,
                offset: 64,
                vaddr: 64,
                filesz: 56 * 3,
                memsz: 56 * 3,
                align: 8,
            },
            Ph {
                kind: PT_INTERP,
                flags: PF_R,
                offset: interp_at,
                vaddr: interp_at,
                filesz: interp.len() as u64,
                memsz: interp.len() as u64,
                align: 1,
            },
            Ph {
                kind: PT_LOAD,
                flags: PF_R | PF_X,
                offset: 0,
                vaddr: 0,
                filesz: headers_end as u64 + interp.len() as u64,
                memsz: 0x2000,
                align: PAGE,
            },
        ],
        interp,
    )
}

#[test]
fn a_fixed_address_program_loads_where_it_says() {
    let file = static_program(&[0x0f, 0x05], 0x3000);
    let image = Image::plan(&file, 0x5555_0000_0000).unwrap();
    assert_eq!(image.kind, Kind::Fixed);
    assert_eq!(image.bias, 0);
    assert_eq!(image.entry, 0x400000 + 64 + 112);
    assert_eq!(image.segments.len(), 2);
    assert_eq!(image.segments[1].pages(), (0x600000, 0x603000));
    assert_eq!(
        image.phdr,
        Some(0x400040),
        "found in the first segment's bytes"
    );
    assert_eq!(image.phnum, 2);
    assert_eq!(image.interpreter, None);
}

#[test]
fn a_position_independent_program_moves_by_its_base_and_names_its_interpreter() {
    let file = pie_with_interp(b"/lib64/ld-linux-x86-64.so.2\0");
    let image = Image::plan(&file, 0x5555_5555_4000).unwrap();
    assert_eq!(image.kind, Kind::PositionIndependent);
    assert_eq!(image.entry, 0x5555_5555_5000);
    assert_eq!(image.phdr, Some(0x5555_5555_4040), "PT_PHDR, biased");
    assert_eq!(
        image.interpreter.as_deref(),
        Some("/lib64/ld-linux-x86-64.so.2")
    );
    assert_eq!(image.span(), (0x5555_5555_4000, 0x5555_5555_6000));
}

#[test]
fn an_exec_plan_loads_the_interpreter_and_starts_there() {
    let program = pie_with_interp(b"/lib/ld.so\0");
    let interp = static_program(&[0xc3], 0); // ET_EXEC stands in: loads at 0x400000
    let plan = ExecPlan::plan(&program, 0x5555_5555_4000, 0x7f00_0000_0000, |p| {
        assert_eq!(p, "/lib/ld.so");
        Some(&interp)
    })
    .unwrap();
    assert_eq!(plan.start(), plan.interpreter.as_ref().unwrap().entry);
    assert_eq!(plan.interpreter_base(), 0x400000);
    let missing = ExecPlan::plan(&program, 0x5555_5555_4000, 0, |_| None);
    assert_eq!(
        missing,
        Err(ExecError::MissingInterpreter("/lib/ld.so".into()))
    );
    assert_eq!(
        missing.unwrap_err().to_string(),
        "interpreter /lib/ld.so not found"
    );
    let bad = ExecPlan::plan(&program, 0x5555_5555_4000, 0, |_| Some(b"#!/bin/sh\n"));
    assert_eq!(
        bad,
        Err(ExecError::Interpreter(
            "/lib/ld.so".into(),
            ImageError::NotElf
        ))
    );
}

#[test]
fn hostile_and_foreign_files_are_refused_with_a_reason() {
    let good = static_program(&[0x90], 0);
    assert_eq!(Image::plan(b"hello", 0), Err(ImageError::NotElf));
    assert_eq!(Image::plan(&good[..40], 0), Err(ImageError::NotElf));
    let mut arm = good.clone();
    arm[18] = 183; // EM_AARCH64
    assert_eq!(Image::plan(&arm, 0), Err(ImageError::NotX86_64));
    let mut elf32 = good.clone();
    elf32[4] = 1;
    assert_eq!(Image::plan(&elf32, 0), Err(ImageError::NotX86_64));
    let mut object = good.clone();
    object[16] = 1; // ET_REL
    assert_eq!(Image::plan(&object, 0), Err(ImageError::NotExecutable));
    // A segment whose bytes run past the end of the file.
    let mut long = good.clone();
    long[64 + 32..64 + 40].copy_from_slice(&0x10_0000u64.to_le_bytes()); // p_filesz
    assert_eq!(Image::plan(&long, 0), Err(ImageError::BadSegment));
    // filesz > memsz.
    let mut short = good.clone();
    short[64 + 40..64 + 48].copy_from_slice(&1u64.to_le_bytes());
    assert_eq!(Image::plan(&short, 0), Err(ImageError::BadSegment));
    // An address that wraps.
    let mut wrap = good.clone();
    wrap[64 + 56 + 16..64 + 56 + 24].copy_from_slice(&(u64::MAX - 10).to_le_bytes());
    assert!(Image::plan(&wrap, 0).is_err());
    // Segments out of order (the second placed inside the first).
    let mut overlap = good.clone();
    overlap[64 + 56 + 16..64 + 56 + 24].copy_from_slice(&0x400000u64.to_le_bytes());
    assert_eq!(Image::plan(&overlap, 0), Err(ImageError::OutOfRange));
    // The entry point in the non-executable segment.
    let mut entry = good.clone();
    entry[24..32].copy_from_slice(&0x600000u64.to_le_bytes());
    assert_eq!(Image::plan(&entry, 0), Err(ImageError::NoEntry));
    // An interpreter path without its NUL.
    let unterminated = pie_with_interp(b"/lib/ld.so");
    assert_eq!(
        Image::plan(&unterminated, 0),
        Err(ImageError::BadInterpreter)
    );
    // Every truncation of a good file is refused or planned, never a panic.
    let pie = pie_with_interp(b"/lib/ld.so\0");
    for len in 0..pie.len() {
        let _ = Image::plan(&pie[..len], 0x1000);
    }
    // And every single-byte corruption of the headers.
    for i in 0..64 + 56 * 3 {
        let mut bad = pie.clone();
        bad[i] ^= 0xa5;
        let _ = Image::plan(&bad, 0x1000);
    }
}

/// Reads back what `stack::build` laid out.
fn parse(bytes: &[u8], rsp: u64) -> (Vec<u64>, Vec<u64>, Vec<(u64, u64)>) {
    let word = |addr: u64| {
        let i = (addr - rsp) as usize;
        u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap())
    };
    let argc = word(rsp);
    let mut at = rsp + 8;
    let argv: Vec<u64> = (0..argc).map(|i| word(at + 8 * i)).collect();
    at += 8 * argc;
    assert_eq!(word(at), 0, "argv ends with NULL");
    at += 8;
    let mut envp = Vec::new();
    while word(at) != 0 {
        envp.push(word(at));
        at += 8;
    }
    at += 8;
    let mut aux = Vec::new();
    loop {
        let (k, v) = (word(at), word(at + 8));
        aux.push((k, v));
        at += 16;
        if k == at::NULL {
            return (argv, envp, aux);
        }
    }
}

fn string_at(bytes: &[u8], rsp: u64, addr: u64) -> String {
    let i = (addr - rsp) as usize;
    let end = bytes[i..].iter().position(|&b| b == 0).unwrap();
    String::from_utf8(bytes[i..i + end].to_vec()).unwrap()
}

#[test]
fn the_initial_stack_holds_argv_envp_and_the_auxiliary_vector_aligned() {
    let program = pie_with_interp(b"/lib/ld.so\0");
    let interp = static_program(&[0xc3], 0);
    let plan = ExecPlan::plan(&program, 0x5555_5555_4000, 0, |_| Some(&interp)).unwrap();
    let aux = stack::auxv(&plan, &Identity::default());
    let top = 0x7fff_ffff_0000;
    for argv in [
        &["/usr/bin/iperf3", "-s"][..],
        &["a"][..],
        &["x", "yy", "zzz"][..],
    ] {
        let argv: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
        let envp: [&[u8]; 1] = [b"PATH=/usr/bin"];
        let random = [7u8; 16];
        let built = stack::build(
            top,
            64 << 10,
            &argv,
            &envp,
            b"/usr/bin/iperf3",
            random,
            &aux,
        )
        .unwrap();
        assert_eq!(built.rsp % 16, 0, "rsp is 16-byte aligned at argc");
        assert_eq!(built.rsp + built.bytes.len() as u64, top);
        let (argv_at, envp_at, auxv) = parse(&built.bytes, built.rsp);
        let got: Vec<String> = argv_at
            .iter()
            .map(|&a| string_at(&built.bytes, built.rsp, a))
            .collect();
        let want: Vec<String> = argv
            .iter()
            .map(|a| String::from_utf8(a.to_vec()).unwrap())
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            string_at(&built.bytes, built.rsp, envp_at[0]),
            "PATH=/usr/bin"
        );
        let get = |key| auxv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        assert_eq!(get(at::PAGESZ), Some(4096));
        assert_eq!(get(at::PHDR), Some(0x5555_5555_4040));
        assert_eq!(get(at::PHENT), Some(56));
        assert_eq!(get(at::PHNUM), Some(3));
        assert_eq!(get(at::ENTRY), Some(0x5555_5555_5000));
        assert_eq!(get(at::BASE), Some(0x400000));
        assert_eq!(get(at::UID), Some(0));
        assert_eq!(
            get(at::SYSINFO_EHDR),
            None,
            "no vDSO, so no AT_SYSINFO_EHDR"
        );
        let random_at = get(at::RANDOM).unwrap();
        let i = (random_at - built.rsp) as usize;
        assert_eq!(built.bytes[i..i + 16], random);
        let execfn = get(at::EXECFN).unwrap();
        assert_eq!(
            string_at(&built.bytes, built.rsp, execfn),
            "/usr/bin/iperf3"
        );
        assert_eq!(auxv.last(), Some(&(at::NULL, 0)));
    }
}

#[test]
fn a_stack_that_does_not_fit_or_a_string_with_nul_is_refused() {
    let big = vec![b'x'; 10_000];
    let argv: [&[u8]; 1] = [&big];
    assert_eq!(
        stack::build(0x10000, 4096, &argv, &[], b"/p", [0; 16], &[]),
        Err(stack::StackError::TooBig)
    );
    let nul: [&[u8]; 1] = [b"a\0b"];
    assert_eq!(
        stack::build(0x10000, 4096, &nul, &[], b"/p", [0; 16], &[]),
        Err(stack::StackError::EmbeddedNul)
    );
    assert_eq!(
        stack::build(0x10008, 4096, &[], &[], b"/p", [0; 16], &[]),
        Err(stack::StackError::BadTop)
    );
    assert_eq!(
        stack::build(0x40, 4096, &[], &[], b"/p", [0; 16], &[]),
        Err(stack::StackError::BadTop),
        "a stack that would start below address 0"
    );
}
