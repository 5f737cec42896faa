//! Unmodified Linux x86_64 programs on Tessera's library OS: the portable part.
//!
//! - [`image`]: the ELF64 load plan (fixed-address and position-independent files, the
//!   interpreter a program names);
//! - [`stack`]: the initial stack (argv, envp, the auxiliary vector);
//! - [`rewrite`]: finds the real `syscall` instructions and rewrites them into calls
//!   into the library OS (docs/LINUX.md says why); [`trampoline`]: the page at address 0
//!   those calls land in;
//! - [`Linux`]: the system-call layer: one program's files ([`fs`]), address-space map
//!   ([`memory`]), signal dispositions and identity, with a dispatcher from Linux
//!   x86_64 system-call numbers to handlers that return `-errno`.
//!
//! Invariants:
//! - nothing here knows seL4: mapping pages, copying through user pointers, time,
//!   randomness and the console go through the [`Platform`] trait;
//! - every pointer, size, index and flag a program passes is checked before use (a
//!   pointer against the address-space map); bad ones give the errno Linux would give,
//!   never a panic;
//! - every byte mapped for the program counts against its budget.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod errno;
pub mod fs;
pub mod image;
pub mod linux;
pub mod memory;
pub mod rewrite;
pub mod stack;
pub mod sysno;
pub mod trace;
pub mod trampoline;

pub use errno::Errno;
pub use image::Prot;
pub use linux::{Config, Layout, Linux, LoadError, Start};

/// What the system-call layer needs from the platform under it (the seL4 PAL, or a test).
///
/// Addresses are the program's; the layer has checked every range it passes here
/// against its address-space map, so an implementation in the program's own address
/// space may copy directly.
pub trait Platform {
    /// Maps `[addr, addr + len)` (page-aligned) as fresh zeroed pages with `prot`,
    /// replacing whatever was mapped there. `ENOMEM` when memory runs out.
    fn map(&mut self, addr: u64, len: u64, prot: Prot) -> Result<(), Errno>;
    /// Unmaps `[addr, addr + len)` (page-aligned); pages not mapped are skipped.
    fn unmap(&mut self, addr: u64, len: u64);
    /// Changes the protection of the mapped pages `[addr, addr + len)`.
    fn protect(&mut self, addr: u64, len: u64, prot: Prot) -> Result<(), Errno>;
    /// Copies the program's bytes at `addr` into `into` (a mapped range).
    fn read(&self, addr: u64, into: &mut [u8]);
    /// Copies `bytes` to the program's memory at `addr` (a mapped range), whatever the
    /// pages' protection: the library OS writes as a kernel would.
    fn write(&mut self, addr: u64, bytes: &[u8]);
    /// Sets the thread's FS base (`arch_prctl(ARCH_SET_FS)`: the program's TLS).
    fn set_fs_base(&mut self, base: u64);
    /// Nanoseconds on `clock`.
    fn clock_ns(&self, clock: Clock) -> u64;
    /// Blocks the program for `ns` nanoseconds (the library OS may serve its own work).
    fn sleep_ns(&mut self, ns: u64);
    /// Fills `into` with unpredictable bytes.
    fn random(&mut self, into: &mut [u8]);
    /// Writes the program's output on `stream` to the console.
    fn console(&mut self, stream: fs::Stream, bytes: &[u8]);
    /// Prints one line of the layer's own (an unsupported call, a trace line).
    fn report(&mut self, line: &str);
    /// The program ended with `status` (`exit_group`); a platform ends the component
    /// here, a test records it and returns.
    fn exit(&mut self, status: i32);
}

/// The clocks [`Platform::clock_ns`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Wall-clock time since the Unix epoch.
    Realtime,
    /// Monotonic time since an arbitrary start.
    Monotonic,
    /// CPU time the program has used.
    ProcessCpu,
}
