//! Loading components: from an ELF file to a running seL4 thread in its own
//! address space and capability space.
//!
//! Two halves:
//! - [`plan`]: pure and tested on the host: checks the ELF file and works out
//!   every page to map (address, rights, bytes to copy) and the paging
//!   structures the address space needs;
//! - [`build`]: carries a plan out with seL4 invocations (retype objects, copy
//!   bytes through a scratch mapping, map pages, fill the CNode, configure and
//!   start the thread). Used by the root task for the fundamental services, and
//!   meant for proc to start everything else.
//!
//! The start-up protocol a loaded component sees is [`rt::startinfo`].

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

#[allow(
    unsafe_code,
    reason = "fills a component's frames through a scratch mapping"
)]
pub mod build;
pub mod plan;
