//! Start-up and run-time support for Tessera components on seL4.
//!
//! A component is a `#![no_std] #![no_main]` binary for the host target, linked
//! static at 0x400000 (see the `component-build` crate). One line in the binary,
//! `rt::entry!(main);`, gives it:
//! - the entry point: `_start` keeps the stack its loader mapped from its budget
//!   (or, for the root task, which seL4 starts with `rsp = 0`, loads a static one)
//!   and calls `main` with the checked start-up view ([`Start`]: the component's
//!   `&'static StartInfo`, the root task's boot info), so `main` needs no `unsafe`;
//! - a heap ([`heap`]) so `alloc` works: the region its loader mapped from its budget;
//! - a panic handler that prints the location and message, then runs the
//!   component's exit hook ([`set_exit_hook`]) or ends the component as a fault
//!   that its supervisor reports and restarts per its policy;
//! - `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp` ([`mem`]) using string
//!   instructions.
//!
//! Console output goes over the kernel's debug serial ([`print!`], [`println!`]).
//!
//! Everything that defines a language item or an exported symbol lives in the
//! expansion of [`entry!`], so this library itself links into host test binaries
//! too: component logic that uses `rt` stays testable on the host.
//!
//! Invariant: a thread that runs at a higher priority than the thread it could
//! interrupt must not allocate (the heap lock spins; see [`heap`]).

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod console;
#[allow(
    unsafe_code,
    reason = "the global allocator over the mapped heap region"
)]
pub mod heap;
#[allow(unsafe_code, reason = "the C memory functions, on raw pointers")]
pub mod mem;
pub mod slots_alloc;
#[allow(
    unsafe_code,
    reason = "start-up from the raw argument the thread starts with"
)]
mod start;
#[allow(
    unsafe_code,
    reason = "views the pages the loader mapped at fixed addresses"
)]
pub mod startinfo;

pub use start::{HeapRegion, Stack, Start, STACK_SIZE};

use core::sync::atomic::{AtomicUsize, Ordering};

static EXIT_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Reads the time-stamp counter (user mode may on x86_64 seL4).
#[allow(unsafe_code, reason = "the rdtsc intrinsic is an unsafe fn")]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc reads the time-stamp counter and has no other effect.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Registers what a panic (or [`exit`]) does after printing: e.g. the root task ends
/// QEMU with a status. Without a hook the thread stops itself.
pub fn set_exit_hook(hook: fn(u32) -> !) {
    EXIT_HOOK.store(hook as usize, Ordering::SeqCst);
}

/// Ends the component with `status` through the exit hook or, without one, by telling
/// its fault handler (`proc` reports the exit; see [`startinfo::ending`]).
pub fn exit(status: u32) -> ! {
    run_exit_hook(status);
    sel4::syscall::raise_unknown(startinfo::ending::EXIT, u64::from(status))
}

#[allow(unsafe_code, reason = "the hook is kept as an address in an atomic")]
fn run_exit_hook(status: u32) {
    let hook = EXIT_HOOK.load(Ordering::SeqCst);
    if hook != 0 {
        // SAFETY: the only non-zero value ever stored is a `fn(u32) -> !` (set_exit_hook).
        let hook: fn(u32) -> ! = unsafe { core::mem::transmute::<usize, fn(u32) -> !>(hook) };
        hook(status);
    }
}

/// Stops the component's initial thread for good: it suspends the thread whose
/// capability is in slot 1 (the root task's and every loaded component's own TCB; see
/// `startinfo::slots::TCB`). Call it only from the initial thread.
pub fn stop_thread() -> ! {
    let own = sel4::Cap::<sel4::cap_type::Tcb>::from_raw(startinfo::slots::TCB);
    loop {
        // Only returns if the capability is not a TCB: then keep yielding.
        let _ = own.tcb_suspend();
        sel4::syscall::yield_now();
    }
}

/// Status a panicking component ends with.
pub const PANIC_STATUS: u32 = 2;

/// The line a component prints when it gives up on something: `COMPONENT: cannot ACTION:
/// REASON` (see [`fail`]).
#[derive(Clone, Copy, Debug)]
pub struct Cannot<'a, A, R> {
    /// Who gives up (the component's name).
    pub component: &'a str,
    /// What it could not do, as a verb phrase (`claim com1`).
    pub action: A,
    /// Why (usually the peer's error, e.g. a `proto::retry::Failure`).
    pub reason: R,
}

impl<A: core::fmt::Display, R: core::fmt::Display> core::fmt::Display for Cannot<'_, A, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}: cannot {}: {}",
            self.component, self.action, self.reason
        )
    }
}

/// Ends the component because it cannot go on (a peer refused what it needs, even after
/// `proto::retry`): prints one [`Cannot`] line and exits with status 1 ([`exit`]). Not a
/// panic: the reason is the peer's, not a bug here.
pub fn fail(
    component: &str,
    action: impl core::fmt::Display,
    reason: impl core::fmt::Display,
) -> ! {
    println!(
        "{}",
        Cannot {
            component,
            action,
            reason
        }
    );
    exit(1)
}

/// Yields the processor `times` times: the pause between attempts in `proto::retry` for a
/// component without a timer. seL4's yield gives way to threads of the same priority only.
pub fn yield_times(times: u32) {
    for _ in 0..times {
        sel4::syscall::yield_now();
    }
}

/// What a component's panic handler (defined by [`entry!`]) does: prints where and
/// why, then runs the exit hook with [`PANIC_STATUS`] or, without one, stops the
/// component as a fault its supervisor reports and applies the restart policy to
/// ([`startinfo::ending::PANIC`]). Nothing here allocates, so an allocation failure
/// ends the same way.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(loc) => println!("panic at {}:{}: {}", loc.file(), loc.line(), info.message()),
        None => println!("panic: {}", info.message()),
    }
    run_exit_hook(PANIC_STATUS);
    sel4::syscall::raise_unknown(startinfo::ending::PANIC, u64::from(PANIC_STATUS))
}
