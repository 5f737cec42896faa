//! The naming service's logic: which component provides which service, and who may look it up.
//!
//! [`Registry`] is the table, built from the system description: only the component the
//! description names as a service's provider may register it, and a client may look up only
//! the services it is routed to; any other lookup is `NotFound`, exactly like a lookup of a name
//! that does not exist. [`NamingServer`] serves `proto::naming` over the registry and a small
//! [`CapOps`] trait, so the seL4 binary only implements capability moves and runs the loop.
//!
//! Invariants: every registered endpoint is held by exactly one entry (a replaced or withdrawn
//! one is handed back for release); a service's generation only grows.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod registry;
mod server;

pub use registry::{Denied, Found, NotFound, Registered, Registry};
pub use server::{CapOps, NamingServer, NoRoom};
