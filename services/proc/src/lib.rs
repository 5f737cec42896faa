//! The proc service's logic: the component table, what to do when a component starts, exits,
//! faults or is killed, restart with back-off, waiters, the `ps` listing and each component's
//! memory (`usage`: the description's budget with what `memory` counts as used).
//!
//! Everything is an event in and a list of [`Action`]s out, with the time passed in
//! (`now_ms`): the supervisor never blocks on a component it watches. [`ProcServer`] performs
//! the actions through [`Effects`] ([`effects::Wiring`] carries them to the builder, `memory`,
//! `naming` and the console) and calls [`Supervisor::tick`] when the earliest restart is due
//! ([`Supervisor::next_deadline`]). [`serve::Loop`] is the receive loop's logic (which badge is
//! what, which message gets a reply, the timer's deadline), [`startup`] what proc decides before
//! it serves, and [`arena`] the builder's block bookkeeping: the binary (`main.rs`,
//! `builder.rs`) keeps only the seL4 calls.
//!
//! # Invariants
//! - A component's generation grows by one each time it is (re)started, so an [`Identity`]
//!   taken before a restart is detected ([`Error::ServerRestarted`]).
//! - Fundamental components are never restarted, spawned or killed here.
//! - A component with `RestartPolicy::Always { max, .. }` is restarted at most `max` times in
//!   a row; a run of at least [`STABLE_MS`] ends the row. The wait doubles with each restart in
//!   the row, up to [`MAX_BACKOFF_MS`] (or `backoff_ms` if that is larger).
//! - Waiters are woken whenever the instance they waited on ends, and no component that has
//!   ended holds waiters.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod arena;
pub mod effects;
pub mod grants;
pub mod image;
pub mod serve;
pub mod server;
pub mod startup;
mod state;
mod supervisor;

pub use server::{Effects, ProcServer};
pub use state::{
    decode_ending, fault_line, Action, Ending, FaultKind, Identity, Outcome, Row, State,
};
pub use supervisor::Supervisor;

/// A run at least this long (from `started` to the fault) ends a row of crashes.
pub const STABLE_MS: u64 = 10_000;

/// The longest wait before a restart, unless the description's `backoff_ms` is longer.
pub const MAX_BACKOFF_MS: u64 = 60_000;

/// Why a request or event was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Error {
    /// No component has that name or id.
    UnknownComponent = 1,
    /// The component is starting, running or waiting to restart.
    AlreadyRunning = 2,
    /// The component is not running (never started, or ended).
    NotRunning = 3,
    /// Fundamental components are started by root and never spawned, killed or restarted.
    Fundamental = 4,
    /// The identity is from an earlier generation: the component restarted since.
    ServerRestarted = 5,
    /// The event does not fit the component's state (for example `started` twice).
    BadState = 6,
}
