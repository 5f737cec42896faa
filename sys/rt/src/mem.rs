//! The memory functions the compiler calls (`memcpy` and friends).
//!
//! They sit on the network hot path later, so they move words with the string
//! instructions rather than looping over bytes, and they are written in inline
//! assembly so the compiler cannot turn them back into calls to themselves.

use core::arch::asm;

/// Copies `n` bytes from `src` to `dst` (the regions must not overlap).
///
/// # Safety
/// `src` must be readable and `dst` writable for `n` bytes; they must not overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid and disjoint; the direction
    // flag is clear per the ABI, so the copies run forwards.
    unsafe {
        asm!(
            "rep movsq",
            "mov rcx, {tail}",
            "rep movsb",
            tail = in(reg) n & 7,
            inout("rcx") n >> 3 => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
    dst
}

/// Copies `n` bytes from `src` to `dst`; the regions may overlap.
///
/// # Safety
/// `src` must be readable and `dst` writable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // dst is below src or the regions are disjoint: a forward copy is safe.
        // SAFETY: forwarded caller guarantee; a forward copy never reads a byte it wrote.
        return unsafe { memcpy(dst, src, n) };
    }
    // dst overlaps the end of src: copy backwards, from the last byte.
    // SAFETY: the caller guarantees both ranges; the direction flag is restored (cld).
    unsafe {
        asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dst.add(n).wrapping_sub(1) => _,
            inout("rsi") src.add(n).wrapping_sub(1) => _,
            options(nostack)
        );
    }
    dst
}

/// Fills `n` bytes at `dst` with the byte `c`.
///
/// # Safety
/// `dst` must be writable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    let pattern = (c as u8 as u64) * 0x0101_0101_0101_0101;
    // SAFETY: the caller guarantees `dst` is writable for `n` bytes.
    unsafe {
        asm!(
            "rep stosq",
            "mov rcx, {tail}",
            "rep stosb",
            tail = in(reg) n & 7,
            inout("rcx") n >> 3 => _,
            inout("rdi") dst => _,
            in("rax") pattern,
            options(nostack, preserves_flags)
        );
    }
    dst
}

/// Compares `n` bytes; returns <0, 0 or >0 like C's `memcmp`.
///
/// # Safety
/// `a` and `b` must be readable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    // Skip equal 8-byte words, then find the first differing byte.
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, within the caller's readable ranges.
        let (x, y) = unsafe {
            (
                core::ptr::read_unaligned(a.add(i) as *const u64),
                core::ptr::read_unaligned(b.add(i) as *const u64),
            )
        };
        if x != y {
            break;
        }
        i += 8;
    }
    while i < n {
        // SAFETY: i < n, within the caller's readable ranges.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// Compares `n` bytes for equality only (0 when equal).
///
/// # Safety
/// `a` and `b` must be readable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { memcmp(a, b, n) }
}
