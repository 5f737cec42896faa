//! The syscall rewriter on crafted code.

mod common;

use common::*;
use libos_linux::rewrite::{self, ElfSites, CALL_RAX, SYSCALL};

const IP: u64 = 0x401000;

#[test]
fn only_real_syscall_instructions_are_found_and_rewritten() {
    // mov $0x50f, %eax (the pair inside an immediate); syscall; ret
    let mut code = vec![0xb8, 0x0f, 0x05, 0x00, 0x00, 0x0f, 0x05, 0xc3];
    assert_eq!(rewrite::raw_pairs(&code), 2);
    let found = rewrite::rewrite(&mut code, IP, &[]);
    assert_eq!(found.sites, vec![IP + 5]);
    assert_eq!(code, vec![0xb8, 0x0f, 0x05, 0x00, 0x00, 0xff, 0xd0, 0xc3]);
    assert_eq!(rewrite::raw_pairs(&code), 1, "the immediate is untouched");
    // Sweeping again finds nothing: rewriting is idempotent.
    assert!(rewrite::sweep(&code, IP, &[]).sites.is_empty());
}

#[test]
fn a_function_start_cuts_short_a_decode_that_ran_over_it() {
    // One stray byte (0xe8, `call rel32`, swallows the next four) before a function
    // that starts with `syscall; ret`.
    let code = [0xe8, 0x0f, 0x05, 0xc3, 0x90, 0x90];
    let blind = rewrite::sweep(&code, IP, &[]);
    assert!(
        blind.sites.is_empty(),
        "without the symbol, the site hides in the call"
    );
    let found = rewrite::sweep(&code, IP, &[IP + 1]);
    assert_eq!(found.sites, vec![IP + 1]);
    assert_eq!(found.resyncs, 1);
}

#[test]
fn undecodable_bytes_are_skipped_without_losing_later_sites() {
    // 0x06 is invalid in 64-bit mode; then syscall.
    let code = [0x06, 0x06, 0x0f, 0x05];
    let found = rewrite::sweep(&code, IP, &[]);
    assert_eq!(found.sites, vec![IP + 2]);
    assert_eq!(found.invalid_bytes, 2);
}

#[test]
fn sites_near_red_zone_use_are_reported() {
    // mov %rdi, -8(%rsp); syscall; mov -8(%rsp), %rdi; ret / then a clean function.
    let mut code = vec![
        0x48, 0x89, 0x7c, 0x24, 0xf8, 0x0f, 0x05, 0x48, 0x8b, 0x7c, 0x24, 0xf8, 0xc3,
    ];
    let clean_start = IP + code.len() as u64;
    code.extend_from_slice(&[0x48, 0x89, 0x7c, 0x24, 0x08, 0x0f, 0x05, 0xc3]); // +8: above rsp
    let found = rewrite::sweep(&code, IP, &[clean_start]);
    assert_eq!(found.sites, vec![IP + 5, clean_start + 5]);
    assert_eq!(found.red_zone_sites, vec![IP + 5]);
}

#[test]
fn an_elf_files_sites_are_applied_to_the_bytes_being_loaded() {
    let code = [0xb8, 0x0f, 0x05, 0x00, 0x00, 0x0f, 0x05, 0xc3];
    let file = static_program(&code, 0);
    let sites = ElfSites::scan(&file).unwrap();
    assert_eq!(sites.count(), 1);
    let code_at = (64 + 56 * 2) as u64;
    assert_eq!(sites.offsets(), vec![code_at + 5]);
    // A copy of the whole file, and a piece of it that starts past the site.
    let mut whole = file.clone();
    assert_eq!(sites.apply(&mut whole, 0), 1);
    assert_eq!(whole[code_at as usize + 5..][..2], CALL_RAX);
    assert_eq!(whole[code_at as usize + 1..][..2], SYSCALL);
    let mut tail = file[code_at as usize + 6..].to_vec();
    assert_eq!(sites.apply(&mut tail, code_at + 6), 0);
    // Applying twice rewrites nothing more.
    assert_eq!(sites.apply(&mut whole, 0), 0);
    assert_eq!(ElfSites::scan(b"not elf"), Err(rewrite::SweepError::NotElf));
}

#[test]
fn every_system_call_number_slides_down_the_trampoline_to_the_stub() {
    use iced_x86::{Code, Decoder, DecoderOptions, Instruction};
    use libos_linux::trampoline::{self, SLED, TARGET};
    let stub = 0x20_1234_5678u64;
    let page = trampoline::page(stub);
    for number in 0..SLED as u64 {
        // Decode from where `call *%rax` lands until something that is not a nop.
        let mut decoder = Decoder::with_ip(64, &page, 0, DecoderOptions::NONE);
        decoder.set_position(number as usize).unwrap();
        decoder.set_ip(number);
        let mut i = Instruction::default();
        loop {
            decoder.decode_out(&mut i);
            if i.code() != Code::Nopd {
                break;
            }
        }
        assert_eq!(i.code(), Code::Jmp_rm64, "number {number}");
        assert!(i.is_ip_rel_memory_operand());
        assert_eq!(i.ip_rel_memory_address(), TARGET as u64);
    }
    assert_eq!(page[TARGET..], stub.to_le_bytes());
    // Numbers past the jump trap.
    assert!(page[SLED + 6..TARGET].iter().all(|&b| b == 0xcc));
}
