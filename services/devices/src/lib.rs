//! The device access service's logic: the only component that touches PCI configuration space.
//!
//! It enumerates PCI ([`enumerate`]) through a [`ConfigSpace`] (on the PC,
//! [`PortConfigSpace`] over the kernel's I/O port invocations), resolves each `[[device]]` of
//! the system description to hardware ([`Assignments::resolve`]), answers what a driver may
//! have ([`Assignments::grant_for`]: BAR regions, I/O ports, an interrupt), prepares the
//! function for its driver ([`enable`], [`program_msi`] with [`plan_msi`] giving seL4's
//! `IRQControl_GetMSI` arguments), and plans the untyped retypes that yield frames for exactly
//! a BAR ([`Carver`]). [`DevicesServer`] holds the service's state and serves the four
//! interfaces on its endpoint ([`server::dispatch`]) over the seL4 operations of a [`Kernel`].
//!
//! # Invariants
//! - A grant goes only to the component the description names as the device's driver; for
//!   any other component, or a device name that does not exist, the answer is the same
//!   [`GrantError::NotAssigned`].
//! - No grant includes the configuration ports `0xCF8..=0xCFF`, and no two devices resolve to
//!   the same PCI function.
//! - Probing restores every BAR and the command register; BARs are sized with decoding off.
//! - A carving plan's frames cover exactly the requested range; watermarks only move up.
//!
//! Everything here is `no_std` + `alloc` and free of seL4 types: capabilities are slot
//! numbers the [`Kernel`] hands out. The seL4 binary implements [`Kernel`] with real
//! invocations and runs the receive loop.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod assign;
mod carve;
mod config;
mod enumerate;
mod program;
pub mod server;

pub use assign::{
    AssignError, Assignments, Grant, GrantError, Hardware, InterruptController, IrqGrant,
    MemoryRegion, Polarity, PortRange, Resolved, Trigger,
};
pub use carve::{
    frames, CarveError, Carver, DeviceUntyped, Object, RetypeStep, FRAME_BITS, FRAME_SIZE,
    MAX_UNTYPED_BITS, RETYPE_FAN_OUT,
};
pub use config::{
    reg, ConfigSpace, PciAddress, PortConfigSpace, PortIo, CONFIG_ADDRESS_PORT, CONFIG_DATA_PORT,
    CONFIG_LAST_PORT,
};
pub use enumerate::{
    enumerate, probe, Bar, Capabilities, PciDevice, HEADER_BRIDGE, HEADER_GENERAL,
};
pub use program::{
    disable, driver_command_bits, enable, msix_begin, msix_finish, msix_layout, msix_table_writes,
    plan_msi, plan_msix, program_msi, GetIoApicArgs, GetMsiArgs, MsiError, MsiMessage, MsiSetup,
    MsixError, MsixLayout, FIRST_USER_VECTOR, MAX_USER_IRQ, MSIX_ENTRY_BYTES, MSI_ADDRESS_BASE,
};
pub use server::{DevicesServer, IrqIssue, Kernel, KernelError};
