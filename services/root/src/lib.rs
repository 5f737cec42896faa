//! The root task's logic that does not need a running kernel: the boot summary,
//! the statistics of the IPC measurement and the one-line fault report. The
//! binary (`main.rs`) wires these to seL4; these modules are tested on the host.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod fault;
pub mod stats;
pub mod summary;
