//! The file service's logic: one FAT volume (`libos-fat`) on any block device, shared by
//! the clients the system description names, each confined to its own directory, served
//! over `proto::fs`.
//!
//! # Invariants
//!
//! - **Confinement.** A client is identified by the badge it attached with, and attaching
//!   needs the nonce in a region only its members can map; the region decides the client's
//!   root ([`Config`]'s `roots`). The first badge that attaches over a region owns it for
//!   the life of the service (a client's badge survives its restarts), so a component that
//!   learnt another's nonce still cannot attach over its region. Every path a client names is copied out of its region
//!   once, parsed into a `libos_fat::Path` (no `.`, `..`, empty components, separators in
//!   names, control or reserved characters; 255 UTF-16 units a name, 4,096 bytes a path)
//!   and joined under the root, so no request can name anything outside it. The root itself
//!   cannot be removed or renamed (`Busy`).
//! - **Nothing a client says is trusted.** Extents are checked against the client's data
//!   area (shmring's `Region::check`) before any byte moves; handles are checked against
//!   the caller's own table (another client's handle, a closed one, or a forged one is
//!   `NotFound`; one from an earlier instance `ServerRestarted`); flags are checked here
//!   again. Each refusal is an error reply, counted in [`Counters`]; the service goes on
//!   serving everyone else.
//! - **Handles** name a file by its path from the volume's root. FAT has no inodes, so,
//!   like Windows, a file that any client holds open cannot be removed or renamed, nor can
//!   a directory above it (`Busy`); a handle therefore always names the file it opened.
//!   Each client may hold `max_open` handles.
//! - **Concurrent writers.** Requests are served one at a time in the order they arrive,
//!   and each `write` is applied whole before the next request is looked at (a write is
//!   at most one data area, so a library OS client splits a longer write into
//!   data-area-sized requests). Two clients writing the same bytes: the later request's
//!   bytes are what stays; an `APPEND` write goes at the end as it is when it arrives, so
//!   appended records never interleave or overwrite each other. A read sees every write
//!   that arrived before it, from any client.
//! - **Durability** is the volume's: writes sit in its write-back cache, ordered so that a
//!   crash leaves nothing worse than lost clusters (`libos-fat`'s rules); `fsync` writes
//!   out everything cached, whoever wrote it.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod blkdev;
pub mod config;
pub mod service;
pub mod start;

pub use blkdev::{Attach, BlkDevice};
pub use config::{Config, ConfigError, Root};
pub use service::{wire_error, Counters, FileService};
pub use start::mount;
