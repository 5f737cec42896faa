//! The root task's control interface: what the root task still does after boot.
//! Only `proc` holds a capability to it (badged [`CONTROL_BADGE`]), and offers
//! `halt` to the components routed to it.

/// The badge of `proc`'s capability to the root task's control endpoint (above every
/// component badge, which is a component index + 1).
pub const CONTROL_BADGE: u64 = 0x0fff_0000;

crate::interface! {
    client ControlClient;
    errors {
        /// The caller is not `proc`.
        Denied = 16,
    }
    ops {
        /// Stops the whole system with `status` (under QEMU: QEMU exits with it).
        ///
        /// Does not return on success; `Err(Denied)` for any caller but `proc`.
        Halt = 1 => fn halt(status: u32) -> ();
    }
}
