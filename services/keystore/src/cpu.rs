//! The processor's own sources of unpredictability: the time-stamp counter and, where the CPU
//! has it, the RDRAND instruction. On other architectures (the host's tests on one) both are
//! absent.
#![allow(
    unsafe_code,
    reason = "the RDTSC and RDRAND instructions (intrinsics), the only sources of unpredictability"
)]

/// The time-stamp counter.
#[cfg(target_arch = "x86_64")]
pub fn tsc() -> u64 {
    // SAFETY: RDTSC reads a counter; it has no memory effects, and every x86_64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The time-stamp counter (none on this architecture: 0).
#[cfg(not(target_arch = "x86_64"))]
pub fn tsc() -> u64 {
    0
}

/// Whether the CPU has RDRAND (CPUID leaf 1, ECX bit 30).
#[cfg(target_arch = "x86_64")]
pub fn has_rdrand() -> bool {
    let leaf = core::arch::x86_64::__cpuid(1);
    leaf.ecx & (1 << 30) != 0
}

/// Whether the CPU has RDRAND (never on this architecture).
#[cfg(not(target_arch = "x86_64"))]
pub fn has_rdrand() -> bool {
    false
}

/// 64 bits from RDRAND, or `None` if the CPU has no RDRAND or it failed ten times in a row
/// (Intel's advice for a transient underflow).
#[cfg(target_arch = "x86_64")]
pub fn rdrand() -> Option<u64> {
    if !has_rdrand() {
        return None;
    }
    for _ in 0..10 {
        let mut value = 0u64;
        // SAFETY: CPUID said the instruction exists; it writes only `value`.
        if unsafe { rdrand_step(&mut value) } == 1 {
            return Some(value);
        }
    }
    None
}

/// 64 bits from RDRAND (never on this architecture).
#[cfg(not(target_arch = "x86_64"))]
pub fn rdrand() -> Option<u64> {
    None
}

/// One RDRAND attempt: 1 and the value, or 0. Calling it needs `unsafe` and a CPU with
/// RDRAND ([`has_rdrand`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "rdrand")]
fn rdrand_step(value: &mut u64) -> i32 {
    core::arch::x86_64::_rdrand64_step(value)
}
