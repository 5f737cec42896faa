//! Start-up and run-time support for Tessera components on seL4.
//!
//! A component is a `#![no_std] #![no_main]` binary for the host target, linked
//! static at 0x400000 (see the `component-build` crate). This crate gives it:
//! - the entry point: `_start` loads a static stack (seL4 starts the root task
//!   with `rsp = 0`) and calls the component's `main` via [`entry!`];
//! - a heap ([`heap`]) so `alloc` works;
//! - console output over the kernel's debug serial ([`print!`], [`println!`]);
//! - a panic handler that prints the location and message, then runs the
//!   component's exit hook ([`set_exit_hook`]) or halts the thread;
//! - `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp` using string instructions.
//!
//! Invariant: a thread that runs at a higher priority than the thread it could
//! interrupt must not allocate (the heap lock spins; see [`heap`]).

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod console;
pub mod heap;
pub mod mem;
#[cfg(not(test))]
mod start;

#[cfg(not(test))]
pub use start::STACK_SIZE;

use core::sync::atomic::{AtomicUsize, Ordering};

static EXIT_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Registers what a panic (or [`exit`]) does after printing: e.g. the root task ends
/// QEMU with a status. Without a hook the thread stops itself.
pub fn set_exit_hook(hook: fn(u32) -> !) {
    EXIT_HOOK.store(hook as usize, Ordering::SeqCst);
}

/// Ends the component with `status` through the exit hook, or stops this thread.
pub fn exit(status: u32) -> ! {
    let hook = EXIT_HOOK.load(Ordering::SeqCst);
    if hook != 0 {
        // SAFETY: the only non-zero value ever stored is a `fn(u32) -> !` (set_exit_hook).
        let hook: fn(u32) -> ! = unsafe { core::mem::transmute::<usize, fn(u32) -> !>(hook) };
        hook(status);
    }
    stop_thread()
}

/// Stops the calling thread for good (it waits on a null capability, which never returns
/// successfully, and loops in case it does).
pub fn stop_thread() -> ! {
    loop {
        sel4::syscall::yield_now();
        let _ = sel4::syscall::recv(0);
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(loc) => println!("panic at {}:{}: {}", loc.file(), loc.line(), info.message()),
        None => println!("panic: {}", info.message()),
    }
    exit(2)
}

/// Needed by the prebuilt `liballoc`; never called (panics abort).
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
