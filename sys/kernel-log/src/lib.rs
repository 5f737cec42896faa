//! seL4 5.0's kernel-entry log, summarised: how much of a time window the kernel spent
//! on each kind of entry (the paper's Figure 5).
//!
//! With `CONFIG_BENCHMARK_TRACK_KERNEL_ENTRIES` (our kernel variant `bench=entries`) the
//! kernel appends one record per kernel entry to a buffer user level provides
//! (`seL4_BenchmarkSetLogBuffer`): when the entry started (TSC), how long it took, and
//! what caused it. This crate is the pure half, tested on the host:
//!
//! - [`entry`]: the record layout ([`Entry`]), decoded from the buffer's bytes;
//! - [`kind`]: the entry kinds we report ([`Kind`]) and how a record maps to one, given
//!   the kernel's numbers ([`Codes`]);
//! - [`summary`]: cycles and counts per kind and per IRQ over a window ([`Summary`]), and
//!   the one-line text form both ends share (`KERNEL-SHARE window_cycles=... ...`).
//!
//! Invariants: decoding never fails (every bit pattern is some entry; unknown paths
//! are kept as such); a summary's window runs from the earliest entry's start to the
//! latest entry's end, so kernel time never exceeds it for entries that do not overlap
//! (seL4 runs one entry at a time on one core).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod entry;
pub mod kind;
pub mod summary;

pub use entry::{Entry, Path, ENTRY_BYTES, LOG_BYTES, MAX_ENTRIES};
pub use kind::{CapTags, Codes, Kind, Syscalls, CAP_TAGS_X86_64, IRQ_VECTOR_BASE_PC99};
pub use summary::{ParseError, Summary, Tally, LINE_PREFIX};
