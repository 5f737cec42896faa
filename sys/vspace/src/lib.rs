//! Maps frames into a component's *own* address space at free virtual addresses.
//!
//! Two halves, like `sys/loader`: [`plan`] is pure bookkeeping (a bump allocator of
//! virtual addresses over a window, and which paging structures the component already made),
//! tested on the host; [`map`] carries it out with seL4 invocations, making page tables,
//! page directories and PDPTs from untyped memory (e.g. what `proto::memory` `alloc` gave)
//! through [`map::Pool`].
//!
//! Invariants:
//! - every virtual address handed out lies inside the window and is handed out once;
//! - a paging structure is made only when the kernel says the level is missing
//!   (`FailedLookup`), so structures the loader made (image, start info) are reused.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;

pub mod map;
pub mod plan;

pub use map::{MapError, Pool, VSpace};
pub use plan::{shared_pages, Paging, Window, PAGE, SHARED_MAX};

/// The default window for run-time mappings: above start info and data (0x3000_0000..),
/// below 0x7000_0000. 768 MiB.
pub const DEFAULT_WINDOW: core::ops::Range<u64> = 0x4000_0000..0x7000_0000;
