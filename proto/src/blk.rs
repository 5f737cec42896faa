//! The block service's front door (`blk`, a virtio-blk driver component): a client attaches
//! over IPC once, then moves requests and responses through `shmring` rings in a shared
//! region the system description gives the two of them; the data moves by DMA straight
//! between the disk and that region. The region's layout and the ring entries are
//! `blkring`'s.
//!
//! Least authority: the region is the credential, as for [`crate::net`]. Only its members
//! can map it, and the caller proves it is one by naming the `nonce` it wrote into the
//! region's header. A wrong region or nonce gets `NotFound`, the same as a region that does
//! not exist.

use crate::{CapSlot, Name};

crate::record! {
    /// What a client may address: the sectors of its window of the disk and the largest
    /// request.
    pub struct Geometry {
        /// Sectors (512 bytes each) the caller may address, from 0.
        pub sectors: u64,
        /// The most sectors one request may cover.
        pub max_sectors: u32,
        /// The device refuses writes.
        pub read_only: bool,
    }
}

crate::interface! {
    client BlkClient;
    errors {
        /// No such region, the server is not one of its members, or the region's header does
        /// not hold `nonce` (all alike).
        NotFound = 16,
        /// The server serves as many clients as it can.
        Full = 17,
        /// The region is too small for the rings and one request's data, or its header is
        /// not one the server understands.
        BadRegion = 18,
        /// The caller has not attached.
        NotAttached = 19,
    }
    ops {
        /// Attaches the caller over shared region `region`, whose header holds `nonce`; `wake`
        /// (sent with the request) is a notification the server signals when it has put
        /// responses in the caller's ring. Returns the notification the caller signals after
        /// putting requests in its ring. Attaching again over the same region (the client
        /// restarted) starts afresh: responses to the old attachment's requests are not
        /// delivered.
        ///
        /// `Ok(notification)`; `Err(NotFound)`; `Err(Full)`; `Err(BadRegion)`;
        /// `Err(Malformed)` without a capability.
        Attach = 1 => fn attach(region: Name, nonce: u64, wake: CapSlot) -> CapSlot;
        /// The caller's geometry.
        ///
        /// `Ok(geometry)`; `Err(NotAttached)`.
        Geometry = 2 => fn geometry() -> Geometry;
    }
}
