//! An iperf3-compatible server over the library OS socket API (`no_std` + `alloc`).
//!
//! Serves TCP tests (`-t`, `-n`, `-k`, `-l`, `-P`, `-R`; client-side `-b` needs nothing here),
//! exchanges results so the stock client prints its report with the server's CPU use
//! from the library OS's idle accounting, and refuses what it does not implement
//! (UDP, SCTP, `--bidir`) with the "not implemented" error.
//!
//! Invariants: one test runs at a time; every peer input is parsed through
//! [`protocol`] before use; no peer input makes the server panic or stop serving.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod protocol;
pub mod server;
/// The `STAT` line a guest prints its CPU accounting in (defined by the library OS).
pub use libos_core::stat;

pub use server::{serve, Server, ServerConfig, ServerStats};
