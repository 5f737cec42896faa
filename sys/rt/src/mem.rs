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
#[inline]
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
#[inline]
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
#[inline]
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
#[inline]
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
#[inline]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { memcmp(a, b, n) }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// A small deterministic generator, so failures reproduce.
    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn copy_and_fill_every_length_and_alignment() {
        for len in 0..200 {
            for (so, d) in [(0, 0), (1, 3), (7, 0), (3, 5), (8, 8)] {
                let src = bytes(len as u64 + 1, len + 16);
                let mut dst = std::vec![0xAAu8; len + 32];
                // SAFETY: both buffers have room for `len` bytes at these offsets.
                unsafe { memcpy(dst.as_mut_ptr().add(d), src.as_ptr().add(so), len) };
                assert_eq!(&dst[d..d + len], &src[so..so + len], "memcpy len {len}");
                assert!(dst[..d].iter().chain(&dst[d + len..]).all(|&b| b == 0xAA));

                // SAFETY: `dst` has room for `len` bytes at offset `d`.
                unsafe { memset(dst.as_mut_ptr().add(d), 0x5C, len) };
                assert!(
                    dst[d..d + len].iter().all(|&b| b == 0x5C),
                    "memset len {len}"
                );
                assert!(dst[..d].iter().chain(&dst[d + len..]).all(|&b| b == 0xAA));
            }
        }
    }

    #[test]
    fn move_handles_overlap_in_both_directions() {
        for len in 0..150 {
            for shift in [1usize, 2, 7, 8, 9, 33] {
                let orig = bytes(len as u64 * 31 + shift as u64, len + 64);
                // Forward overlap: dst below src.
                let mut buf = orig.clone();
                let mut expect = orig.clone();
                expect.copy_within(shift..shift + len, 0);
                // SAFETY: both ranges lie inside `buf`.
                unsafe { memmove(buf.as_mut_ptr(), buf.as_ptr().add(shift), len) };
                assert_eq!(buf, expect, "memmove down len {len} shift {shift}");
                // Backward overlap: dst above src.
                let mut buf = orig.clone();
                let mut expect = orig.clone();
                expect.copy_within(0..len, shift);
                // SAFETY: both ranges lie inside `buf`.
                unsafe { memmove(buf.as_mut_ptr().add(shift), buf.as_ptr(), len) };
                assert_eq!(buf, expect, "memmove up len {len} shift {shift}");
            }
        }
    }

    #[test]
    fn compare_orders_like_c() {
        for len in 0..100 {
            let a = bytes(len as u64 + 7, len);
            // SAFETY: both slices are `len` bytes.
            assert_eq!(unsafe { memcmp(a.as_ptr(), a.as_ptr(), len) }, 0);
            for i in 0..len {
                let mut b = a.clone();
                b[i] = b[i].wrapping_add(1);
                // SAFETY: both slices are `len` bytes.
                let (ab, ba, eq) = unsafe {
                    (
                        memcmp(a.as_ptr(), b.as_ptr(), len),
                        memcmp(b.as_ptr(), a.as_ptr(), len),
                        bcmp(a.as_ptr(), b.as_ptr(), len),
                    )
                };
                assert_eq!(ab.signum(), a[i].cmp(&b[i]) as i32, "len {len} at {i}");
                assert_eq!(ba, -ab);
                assert_ne!(eq, 0);
            }
        }
    }
}
