//! The trampoline page mapped at virtual address 0: where every rewritten `syscall`
//! (`call *%rax`, with the system-call number in `rax`) lands.
//!
//! Layout: `nop`s from 0 to [`SLED`], so any number below it slides to the jump at
//! [`SLED`] (`jmp *TARGET(%rip)`, 6 bytes), which goes to the entry stub whose address
//! is stored at [`TARGET`]; `int3` everywhere else, so a number that is no system call
//! (from [`SLED`] + 6 up to [`TARGET`]) traps as a fault instead of running on. Numbers
//! [`SLED`]..[`SLED`] + 6 and [`TARGET`].. land inside the jump or the stored address,
//! and numbers from 4096 up in the unmapped page after: both fault too.

/// Length of the `nop` sled: every Linux x86_64 system call number is below it.
pub const SLED: usize = 512;
/// Offset of the 8-byte entry-stub address the jump reads.
pub const TARGET: usize = 4088;
/// Page size.
const PAGE: usize = 4096;

/// The page's bytes for an entry stub at `stub`.
pub fn page(stub: u64) -> [u8; PAGE] {
    let mut page = [0xcc; PAGE]; // int3
    page[..SLED].fill(0x90); // nop
                             // jmp *disp32(%rip): disp32 counts from the end of this 6-byte instruction.
    let displacement = (TARGET - (SLED + 6)) as u32;
    page[SLED..SLED + 2].copy_from_slice(&[0xff, 0x25]);
    page[SLED + 2..SLED + 6].copy_from_slice(&displacement.to_le_bytes());
    page[TARGET..].copy_from_slice(&stub.to_le_bytes());
    page
}
