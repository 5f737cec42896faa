//! The memory service's logic: physical memory as power-of-two untyped blocks, handed to
//! components within their budgets and shared between exactly the components the system
//! description names.
//!
//! seL4 gives user level its RAM as untyped capabilities, retypes an untyped sequentially and
//! frees only by revoking. So the pool is a tree of blocks rooted at the boot untypeds
//! ([`Memory::add_untyped`]): each split is one retype of a parent into its two halves, each
//! merge one revoke of the parent. Every call that changes the tree returns the [`Step`]s the
//! binary performs, in order, to keep its capabilities in step; the library itself never
//! touches a capability and knows them only as opaque `u64` handles.
//!
//! # Invariants
//! - The blocks of each boot untyped tile it exactly: every byte is in one free or used block.
//! - Free buddies are always merged (a parent is split only while something below it is used).
//! - Every used block has one holder: a component or a shared region.
//! - A component never holds more than its budget (`Component::memory`); shared regions are
//!   charged to no component.
//! - `free + clients + shared == total` ([`Totals`]).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod buddy;
mod ledger;
pub mod server;

pub use buddy::{Block, BlockId, Step, Untyped};
pub use ledger::{Allocation, Attachment, Memory, Totals, Usage};
pub use server::{Kernel, KernelError, MemoryServer};

/// The smallest block: one 4 KiB frame.
pub const MIN_BLOCK_BITS: u8 = 12;

/// The largest block, seL4's largest untyped on x86_64.
pub const MAX_BLOCK_BITS: u8 = 47;

/// Why a memory request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Error {
    /// The client is not a component of the system.
    UnknownClient = 1,
    /// A size outside [`MIN_BLOCK_BITS`]..=[`MAX_BLOCK_BITS`] (or a zero-sized region).
    BadSize = 2,
    /// The allocation would take the client over its budget.
    OverBudget = 3,
    /// No free block is large enough.
    OutOfMemory = 4,
    /// The client does not hold that block.
    NotOwner = 5,
    /// No shared region has that name.
    UnknownRegion = 6,
    /// The client is not a member of that shared region.
    Denied = 7,
    /// An untyped's address is not a multiple of its size.
    Misaligned = 8,
    /// An untyped overlaps one added before.
    Overlap = 9,
}
