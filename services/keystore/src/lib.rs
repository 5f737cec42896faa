//! The key store's logic: Ed25519 keys that never leave it, each owned by the client (badge)
//! that generated it, behind the [`proto::keystore`] interface.
//!
//! Invariants: no reply carries secret material (there is no export); a client sees only its
//! own keys, and another client's handle gets the same `NotFound` as one that never existed;
//! secrets are erased when a key is deleted or the store dropped ([`zeroize`]); the limits of
//! [`Limits`] hold for every client, and a client at its limit gets `Full` or `TooLarge`
//! without affecting anyone else.
//!
//! Randomness comes from [`entropy`]: a ChaCha20 generator seeded from a SHA-512 of what the
//! component can gather (RDRAND where the CPU has it, the TSC, a seed from the description).
//! Keys live in memory and, through a [`Backing`], outside it: [`persist::Sealed`] seals each
//! key ([`seal`]: ChaCha20-Poly1305 under a key derived from the build-time seed) into a
//! directory of the library OS's file API, so keys survive a restart.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod backing;
pub mod config;
pub mod cpu;
pub mod entropy;
pub mod persist;
pub mod seal;
mod store;

pub use backing::{Backing, BackingError, Volatile};
pub use config::{Config, ConfigError, Limits, Planted};
pub use store::Store;
