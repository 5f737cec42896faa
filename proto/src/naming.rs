//! The naming interface: providers register services, clients look up the services the system
//! description routes them to.
//!
//! Least authority: `lookup` answers `NotFound` alike for a service that does not exist, one
//! that is not registered yet and one the client is not routed to, so a client cannot learn of
//! services it is not routed to. The endpoint a client gets is badged with its own
//! [`badge`](crate::badge), so the provider knows who calls.

use crate::{CapSlot, ComponentId, Name};

crate::record! {
    /// A service's endpoint as handed to one client.
    pub struct Binding {
        /// A copy of the provider's endpoint, badged for the client; lands in the client's
        /// receive slot.
        pub endpoint: CapSlot,
        /// How many times the service has been registered: a larger number than the client
        /// saw before means the provider restarted.
        pub generation: u64,
    }
}

crate::interface! {
    client NamingClient;
    errors {
        /// No such service, not registered (yet), or the caller is not routed to it.
        NotFound = 16,
        /// The caller is not the component the description names as the service's provider
        /// (or, for `withdraw`, not `proc`).
        Denied = 17,
        /// The naming service has no room left for another endpoint capability.
        Exhausted = 18,
    }
    ops {
        /// Registers the endpoint sent with the request as the provider of service `name`.
        /// Registering again (after a restart) replaces the old endpoint and bumps the
        /// service's generation.
        ///
        /// `Ok(())`; `Err(Denied)` if the caller does not provide `name`; `Err(Exhausted)` if
        /// naming cannot store the capability; `Err(Malformed)` without a capability.
        Register = 1 => fn register(name: Name, endpoint: CapSlot) -> ();
        /// Looks up service `name`; the client must set its receive slot first.
        ///
        /// `Ok(Binding)` with a badged endpoint; `Err(NotFound)` if the service does not
        /// exist, is not registered, or the caller is not routed to it (all three alike);
        /// `Err(Exhausted)` if naming cannot mint the copy.
        Lookup = 2 => fn lookup(name: Name) -> Binding;
        /// Withdraws the caller's registration of `name`; clients' copies keep working until
        /// the provider revokes them.
        ///
        /// `Ok(())`; `Err(NotFound)` if the caller has no registration of `name`.
        Unregister = 3 => fn unregister(name: Name) -> ();
        /// `proc` only: withdraws every service component `id` registered, because it died.
        ///
        /// `Ok(count)` with how many registrations were dropped; `Err(Denied)` if the caller
        /// is not `proc`.
        Withdraw = 4 => fn withdraw(id: ComponentId) -> u32;
    }
}
