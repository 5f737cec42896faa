//! Tessera's one IPC convention and every service interface.
//!
//! A [`Message`] is a label, up to [`MAX_WORDS`] words and at most one capability. A request's
//! label is the operation, its words the arguments; a reply's label is 0 for `Ok` (the words
//! are the results) or the interface's error code. The badge of the endpoint a request came
//! through identifies the client: [`badge`] of its [`ComponentId`] (badge 0 is never handed
//! out, since an unbadged endpoint capability could be re-minted with any badge).
//!
//! Each interface ([`blk`], [`naming`], [`proc`], [`memory`], [`devices`], [`console`], [`keystore`], [`net`], [`fs`]) is one
//! [`interface!`] declaration, which generates its `Op`, `Error`, checked `Request::decode`,
//! `Server` trait, `dispatch` and client stub. Client stubs run over any [`Transport`]:
//! [`sel4_transport::EndpointTransport`] in a component, [`Loopback`] in host tests.
//!
//! A client never trusts a reply to be `Ok`: [`retry`] is the one policy for what to do
//! with an error (retry with back-off, or give up with a one-line reason).
//!
//! Invariants: decoding never panics and accepts exactly one encoding of each request (no
//! spare words, no stray capability, zero padding); every reply is `Ok` or a declared error.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod codec;
mod interface;
mod message;
pub mod retry;
pub mod sel4_transport;
mod transport;
mod types;

pub mod blk;
pub mod console;
pub mod control;
pub mod devices;
pub mod fs;
pub mod keystore;
pub mod memory;
pub mod naming;
pub mod net;
pub mod proc;

pub use codec::CapSlot;
pub use message::{Message, Overflow, MAX_WORDS, OVERSIZED, SERVER_RESTARTED};
pub use transport::{Loopback, Transport};
pub use types::{Bytes, Name, NameError, MAX_BYTES};

pub use sysdesc::ComponentId;

/// The badge of the endpoint capabilities handed to component `id`: its index plus one.
pub fn badge(id: ComponentId) -> u64 {
    u64::from(id.0) + 1
}

/// The component a badge identifies, or `None` for badge 0 (unbadged) or one out of range.
pub fn client(badge: u64) -> Option<ComponentId> {
    let index = badge.checked_sub(1)?;
    u16::try_from(index).ok().map(ComponentId)
}
