//! The network service's front door: an application attaches to `net` over IPC once, then
//! moves socket operations and data through rings in a shared region the system description
//! gives the two of them (the messages are `libos_core::net::wire`'s, carried by `shmring`
//! rings; the region's layout comes with the `net` component, which is not built yet).
//!
//! Least authority: the region is the credential. Only its members can map it (memory's
//! `share` refuses everyone else), and the caller proves it is one by naming the `nonce` it
//! wrote into the region's header. A wrong region or nonce gets `NotFound`, the same as a
//! region that does not exist, so a client learns nothing about other clients' regions.

use crate::{CapSlot, Name};

crate::interface! {
    client NetClient;
    errors {
        /// No such region, the server is not one of its members, or the region's header does
        /// not hold `nonce` (all alike).
        NotFound = 16,
        /// The server serves as many clients as the description allows.
        Full = 17,
        /// The region is too small for the rings and buffers, or its header is not one the
        /// server understands.
        BadRegion = 18,
    }
    ops {
        /// Attaches the caller over shared region `region`, whose header holds `nonce`; `wake`
        /// (sent with the request) is a notification the server signals when it has put
        /// events in the caller's rings. Returns the notification the caller signals after
        /// putting requests in them. Attaching again over the same region (the client
        /// restarted) starts afresh: the server aborts the sockets of the old attachment.
        ///
        /// `Ok(notification)`; `Err(NotFound)`; `Err(Full)`; `Err(BadRegion)`;
        /// `Err(Malformed)` without a capability.
        Attach = 1 => fn attach(region: Name, nonce: u64, wake: CapSlot) -> CapSlot;
    }
}
