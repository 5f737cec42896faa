//! Tessera's portable library OS: a co-operative executor with timers and idle
//! accounting, and a BSD-like TCP socket API over smoltcp, on any platform that
//! implements the small [`Pal`] trait and offers a [`NetDevice`] (the `netdev` crate's
//! device interface, re-exported here); the same socket API works as a client of another
//! component's stack ([`Net::remote`]), and [`SocketServer`] is what such a component runs;
//! and a POSIX-like file API ([`fs::Files`]) over a host directory or the `fs` service.
//!
//! Invariants:
//! - nothing in this crate knows the platform: time, waiting, the console and idle hooks
//!   go through [`Pal`]; frames go through [`NetDevice`]; a remote stack is reached
//!   through a [`Link`];
//! - one [`Runtime`] (and the [`Net`] stacks registered with it) is driven by one thread;
//!   handles are `Rc`-based and not `Send`;
//! - no code here panics on network input: malformed frames are counted and dropped.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod error;
pub mod executor;
pub mod fs;
pub mod net;
pub mod pal;
pub mod stat;

pub use error::Error;
pub use executor::{
    select, yield_now, Either, Elapsed, IdleStats, JoinHandle, Reactor, Runtime, Sleep,
};
pub use net::device::{ChecksumOffload, DeviceError, NetCounters, NetDevice};
pub use net::link::{channel, ChannelEnd, Link, LinkError};
pub use net::remote::{ClientCounters, RemoteConfig};
pub use net::server::{ClientId, ClientLimits, ServerCounters, SocketServer};
pub use net::shmlink::{ShmLink, Side};
pub use net::tcp::{TcpListener, TcpStream};
pub use net::{
    Ipv4Config, Net, NetConfig, DEFAULT_TCP_RX_BUFFER, DEFAULT_TCP_TX_BUFFER, MAX_TCP_RX_BUFFER,
};
pub use pal::Pal;

/// Nanoseconds per millisecond.
pub const NS_PER_MS: u64 = 1_000_000;
/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;
