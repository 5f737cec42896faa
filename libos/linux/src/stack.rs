//! The initial stack a Linux program finds at its first instruction: `argc`, the `argv`
//! and `envp` pointer arrays, the auxiliary vector, and the strings and random bytes they
//! point to, with `rsp` 16-byte aligned at `argc` (System V x86_64 ABI, section 3.4.1).

use crate::image::{ExecPlan, PAGE, PHENT};
use alloc::vec;
use alloc::vec::Vec;

/// Auxiliary vector keys (Linux `include/uapi/linux/auxvec.h`).
pub mod at {
    /// End of the vector.
    pub const NULL: u64 = 0;
    /// Address of the program headers.
    pub const PHDR: u64 = 3;
    /// Size of one program header.
    pub const PHENT: u64 = 4;
    /// Number of program headers.
    pub const PHNUM: u64 = 5;
    /// Page size.
    pub const PAGESZ: u64 = 6;
    /// Interpreter's load address.
    pub const BASE: u64 = 7;
    /// Flags (0).
    pub const FLAGS: u64 = 8;
    /// Program's entry point.
    pub const ENTRY: u64 = 9;
    /// Real user id.
    pub const UID: u64 = 11;
    /// Effective user id.
    pub const EUID: u64 = 12;
    /// Real group id.
    pub const GID: u64 = 13;
    /// Effective group id.
    pub const EGID: u64 = 14;
    /// CPU capability bits (CPUID leaf 1 EDX).
    pub const HWCAP: u64 = 16;
    /// Clock ticks per second (`times`).
    pub const CLKTCK: u64 = 17;
    /// Secure mode (set-uid): 0.
    pub const SECURE: u64 = 23;
    /// Address of 16 random bytes.
    pub const RANDOM: u64 = 25;
    /// Address of the executed file's name.
    pub const EXECFN: u64 = 31;
    /// Address of the vDSO's ELF header.
    pub const SYSINFO_EHDR: u64 = 33;
}

/// The process identity and platform facts the auxiliary vector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// `AT_UID` and `AT_EUID`.
    pub uid: u64,
    /// `AT_GID` and `AT_EGID`.
    pub gid: u64,
    /// `AT_HWCAP`.
    pub hwcap: u64,
    /// `AT_CLKTCK`.
    pub clock_ticks: u64,
    /// `AT_SYSINFO_EHDR`: the vDSO's address, only when one is mapped.
    pub vdso: Option<u64>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            uid: 0,
            gid: 0,
            hwcap: 0,
            clock_ticks: 100,
            vdso: None,
        }
    }
}

/// The auxiliary vector for `plan` (key, value pairs, without the closing `AT_NULL`;
/// `AT_RANDOM` and `AT_EXECFN` are added by [`build`], which places what they point to).
pub fn auxv(plan: &ExecPlan, identity: &Identity) -> Vec<(u64, u64)> {
    let program = &plan.program;
    let mut v = vec![];
    if let Some(vdso) = identity.vdso {
        v.push((at::SYSINFO_EHDR, vdso));
    }
    v.push((at::HWCAP, identity.hwcap));
    v.push((at::PAGESZ, PAGE));
    v.push((at::CLKTCK, identity.clock_ticks));
    v.push((at::PHDR, program.phdr.unwrap_or(0)));
    v.push((at::PHENT, PHENT));
    v.push((at::PHNUM, program.phnum));
    v.push((at::BASE, plan.interpreter_base()));
    v.push((at::FLAGS, 0));
    v.push((at::ENTRY, program.entry));
    v.push((at::UID, identity.uid));
    v.push((at::EUID, identity.uid));
    v.push((at::GID, identity.gid));
    v.push((at::EGID, identity.gid));
    v.push((at::SECURE, 0));
    v
}

/// Why the stack cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackError {
    /// Arguments, environment and vectors do not fit in the stack's size.
    TooBig,
    /// The stack top is not 16-byte aligned, or the stack would start below address 0.
    BadTop,
    /// A string contains a NUL byte.
    EmbeddedNul,
}

/// The built stack: `bytes` is what goes at `[rsp, top)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    /// The program's initial `rsp`: the address of `argc`, 16-byte aligned.
    pub rsp: u64,
    /// The stack's contents from `rsp` up to the top.
    pub bytes: Vec<u8>,
}

/// Builds the initial stack for a stack ending at `top` (exclusive, 16-byte aligned) of
/// at most `limit` bytes: strings and `random` at the top, then the pointer arrays and
/// `aux` (plus `AT_RANDOM`, `AT_EXECFN` and the closing `AT_NULL`), `argc` at the bottom.
pub fn build(
    top: u64,
    limit: u64,
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
    random: [u8; 16],
    aux: &[(u64, u64)],
) -> Result<InitialStack, StackError> {
    if !top.is_multiple_of(16) {
        return Err(StackError::BadTop);
    }
    if argv
        .iter()
        .chain(envp)
        .chain([&execfn])
        .any(|s| s.contains(&0))
    {
        return Err(StackError::EmbeddedNul);
    }
    // The string area, built upwards from its lowest address and placed below `top`.
    let strings: u64 = argv
        .iter()
        .chain(envp)
        .chain([&execfn])
        .map(|s| s.len() as u64 + 1)
        .sum();
    let string_area = (strings + 16).div_ceil(16) * 16;
    let words = 1 + (argv.len() + 1) + (envp.len() + 1) + 2 * (aux.len() + 3);
    let pointer_area = (words as u64 * 8).div_ceil(16) * 16;
    let total = string_area + pointer_area;
    if total > limit {
        return Err(StackError::TooBig);
    }
    let rsp = top.checked_sub(total).ok_or(StackError::BadTop)?;
    let strings_base = top - string_area;
    let mut bytes = vec![0u8; total as usize];
    let area = &mut bytes[pointer_area as usize..];
    area[..16].copy_from_slice(&random);
    let random_at = strings_base;
    let mut offset = 16usize;
    let mut place = |s: &[u8]| {
        area[offset..offset + s.len()].copy_from_slice(s);
        let at = strings_base + offset as u64;
        offset += s.len() + 1;
        at
    };
    let argv_at: Vec<u64> = argv.iter().map(|s| place(s)).collect();
    let envp_at: Vec<u64> = envp.iter().map(|s| place(s)).collect();
    let execfn_at = place(execfn);
    let mut list: Vec<u64> = Vec::with_capacity(words);
    list.push(argv.len() as u64);
    list.extend(&argv_at);
    list.push(0);
    list.extend(&envp_at);
    list.push(0);
    for &(key, value) in aux {
        list.extend([key, value]);
    }
    list.extend([at::RANDOM, random_at, at::EXECFN, execfn_at, at::NULL, 0]);
    for (i, word) in list.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    Ok(InitialStack { rsp, bytes })
}
