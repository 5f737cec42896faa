//! Typed bindings to the seL4 5.0.0 kernel (x86_64) for Tessera's components.
//!
//! Most of this crate is generated at build time by `sel4-gen` from the kernel's
//! own interface files and `kernel/config.toml`, so it always matches the kernel
//! that is built: invocation labels, one method per invocation on a typed
//! [`Cap`], syscall numbers ([`sysno`]), the [`Error`] enum, [`ObjectType`],
//! bitfield newtypes ([`MessageInfo`], [`CapRights`], [`CapData`]), fault
//! layouts ([`fault`]), constants ([`consts`]) and the IPC-buffer and boot-info
//! layouts. Hand-written here: capabilities, the raw syscalls ([`syscall`]),
//! IPC-buffer access ([`ipc`]) and the checked boot-info parser ([`bootinfo`]).
//!
//! Invariant: every thread that invokes a capability has an IPC buffer and its
//! GS base points at it (the kernel sets this up on x86_64 when the thread's
//! IPC buffer is configured).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

#[cfg(test)]
extern crate std;

#[allow(unsafe_code, reason = "views the boot-info frame the kernel mapped")]
pub mod bootinfo;
pub mod fault_report;
#[allow(
    unsafe_code,
    reason = "reads and writes the IPC buffer through the GS base"
)]
pub mod ipc;
#[allow(unsafe_code, reason = "the syscall instruction itself")]
pub mod syscall;

mod cap;
pub use cap::{cap_type, Cap};

/// A machine word.
pub type Word = u64;
/// A capability address in the caller's CSpace.
pub type CPtr = u64;
/// The badge delivered with a message or signal.
pub type Badge = u64;

#[allow(
    unused_parens,
    clippy::too_many_arguments,
    clippy::identity_op,
    clippy::unnecessary_cast,
    clippy::eq_op
)]
mod generated {
    use super::{cap_type, Cap, Word};
    include!(concat!(env!("OUT_DIR"), "/generated.rs"));
}
pub use generated::*;

impl MessageInfo {
    /// An empty message with this label.
    pub const fn with_label_only(label: Word) -> Self {
        MessageInfo::new(label, 0, 0, 0)
    }
}

impl CapRights {
    /// Read, write and grant.
    pub const fn all() -> Self {
        CapRights::new(1, 1, 1)
    }
    /// Read and write, no grant.
    pub const fn read_write() -> Self {
        CapRights::new(0, 1, 1)
    }
    /// Read only.
    pub const fn read() -> Self {
        CapRights::new(0, 1, 0)
    }
    /// Write only.
    pub const fn write() -> Self {
        CapRights::new(0, 0, 1)
    }
    /// No rights.
    pub const fn none() -> Self {
        CapRights::new(0, 0, 0)
    }
}

impl CapData {
    /// No badge (`seL4_NilData`).
    pub const NIL: CapData = CapData::new_badge(0);
}

/// Turns the reply of an invocation into `Ok` or the kernel's error.
///
/// On error the four register message words are written back to the IPC
/// buffer (as libsel4 does) so the caller can read the error details there.
/// A label that is not a kernel error (the cap was not what its type claims,
/// e.g. an endpoint to a user server) reads as [`Error::InvalidCapability`].
#[inline]
pub(crate) fn invocation_result(reply: MessageInfo, mrs: &[Word; 4]) -> Result<(), Error> {
    let label = reply.label();
    if label == 0 {
        return Ok(());
    }
    for (i, w) in mrs.iter().enumerate() {
        ipc::set_mr(i, *w);
    }
    Err(Error::from_word(label).unwrap_or(Error::InvalidCapability))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_info_round_trips() {
        let m = MessageInfo::new(0xabcde, 5, 3, 120);
        assert_eq!(
            (m.label(), m.caps_unwrapped(), m.extra_caps(), m.length()),
            (0xabcde, 5, 3, 120)
        );
        assert_eq!(MessageInfo::from_word(m.0), m);
        assert_eq!(MessageInfo::new(1, 0, 0, 2).0, (1 << 12) | 2);
        assert_eq!(m.with_length(1).length(), 1);
    }

    #[test]
    fn rights_and_cap_data() {
        assert_eq!(CapRights::all().0, 0b111);
        assert_eq!(CapRights::read_write().0, 0b011);
        assert_eq!(CapRights::read().0, 0b010);
        let g = CNodeCapData::new_guard(0, 64 - 16);
        assert!(g.is_guard() && !g.is_badge());
        assert_eq!(g.guard_size(), 48);
        assert_eq!(CapData::new_badge(7).badge(), 7);
        assert_eq!(CapData::NIL.0, 0);
    }

    #[test]
    fn errors_and_labels() {
        assert_eq!(Error::from_word(0), None);
        assert_eq!(Error::from_word(10), Some(Error::NotEnoughMemory));
        assert_eq!(Error::from_word(11), None);
        assert_eq!(InvocationLabel::UntypedRetype as Word, 1);
        assert_eq!(sysno::CALL, -1);
        assert_eq!(sysno::DEBUG_PUT_CHAR, -9);
        assert_eq!(ObjectType::Untyped.word(), 0);
        assert_eq!(consts::MSG_MAX_LENGTH, 120);
        assert_eq!(init_caps::IO_PORT.raw(), 7);
        assert_eq!(FaultTag::from_word(5), Some(FaultTag::VmFault));
    }
}
