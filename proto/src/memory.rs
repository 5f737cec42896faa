//! The memory interface: untyped memory within each component's budget, and the frames of
//! shared regions for their members.
//!
//! Every allocation has a handle; handles carry the server's instance, so a handle from before
//! a restart gets `ServerRestarted`.

use crate::{CapSlot, ComponentId, Name};

crate::record! {
    /// Memory handed out by `alloc`.
    pub struct Allocation {
        /// Names the allocation in `free`.
        pub handle: u64,
        /// An untyped capability of the requested size; lands in the receive slot.
        pub untyped: CapSlot,
    }
}

crate::record! {
    /// A component's memory accounting, in bytes.
    pub struct Usage {
        /// Allocated and not freed.
        pub used: u64,
        /// The component's budget from the system description.
        pub budget: u64,
        /// Free memory left in the whole system.
        pub free_total: u64,
    }
}

crate::record! {
    /// One page of a shared region.
    pub struct SharedPage {
        /// The page's frame (the same frame every member gets); lands in the receive slot.
        pub frame: CapSlot,
        /// The region's size in bytes.
        pub region_size: u64,
    }
}

crate::interface! {
    client MemoryClient;
    errors {
        /// The allocation would take the caller past its budget.
        OverBudget = 16,
        /// The budget allows it but no free block of that size is left.
        OutOfMemory = 17,
        /// The size is outside 12..=`MAX_SIZE_BITS` bits.
        InvalidSize = 18,
        /// No such handle, component, or shared region the caller is a member of.
        NotFound = 19,
        /// The caller may not ask this (`usage_of` is for `proc` and the component itself).
        Denied = 20,
        /// The page index is past the region's end.
        OutOfRange = 21,
    }
    ops {
        /// Untyped memory of 2^`size_bits` bytes, charged to the caller's budget.
        ///
        /// `Ok(allocation)`; `Err(OverBudget)`; `Err(OutOfMemory)`; `Err(InvalidSize)`.
        Alloc = 1 => fn alloc(size_bits: u8) -> Allocation;
        /// Revokes and returns the allocation `handle` to the pool.
        ///
        /// `Ok(())`; `Err(NotFound)` for a handle the caller does not hold;
        /// `Err(ServerRestarted)` for one from an earlier instance.
        Free = 2 => fn free(handle: u64) -> ();
        /// The caller's own accounting.
        ///
        /// `Ok(usage)`.
        Usage = 3 => fn usage() -> Usage;
        /// Component `id`'s accounting.
        ///
        /// `Ok(usage)`; `Err(NotFound)`; `Err(Denied)` unless the caller is `proc` or `id`.
        UsageOf = 4 => fn usage_of(id: ComponentId) -> Usage;
        /// Page `page` of shared region `region`, if the caller is one of its members.
        ///
        /// `Ok(page)`; `Err(NotFound)` if there is no such region or the caller is not a
        /// member (alike); `Err(OutOfRange)` past the region's end.
        Share = 5 => fn share(region: Name, page: u64) -> SharedPage;
    }
}

/// The largest allocation, in bits of size (1 GiB).
pub const MAX_SIZE_BITS: u8 = 30;

/// The operations only `proc` may use, served on the memory endpoint next to the ones above
/// (their labels start at 16, so one server tells the two apart by label). They are a separate
/// declaration so that clients of the public interface never see them.
///
/// A component's image (the frames, paging structures, CNode and thread `proc` builds it
/// from) is charged to that component but outside its budget: the budget is what the
/// description grants it at run time, while the image's size follows from its ELF file.
/// Releasing the component revokes both, so everything built from its memory goes at once.
pub mod supervise {
    use crate::ComponentId;

    pub use super::Allocation;

    crate::interface! {
        client SuperviseClient;
        errors {
            /// No free block of that size is left.
            OutOfMemory = 17,
            /// The size is outside 12..=`MAX_SIZE_BITS` bits.
            InvalidSize = 18,
            /// No such component.
            NotFound = 19,
            /// The caller is not `proc`.
            Denied = 20,
            /// The component's budget does not cover it.
            OverBudget = 21,
        }
        ops {
            /// Untyped memory of 2^`size_bits` bytes for building component `id`: charged to
            /// `id` as image memory, outside its budget, and taken back by `release(id)`.
            ///
            /// `Ok(allocation)`; `Err(OutOfMemory)`; `Err(InvalidSize)`; `Err(NotFound)`;
            /// `Err(Denied)` unless the caller is `proc`.
            AllocFor = 16 => fn alloc_for(id: ComponentId, size_bits: u8) -> Allocation;
            /// Untyped memory of 2^`size_bits` bytes for component `id`'s heap and stack:
            /// charged to `id` within its budget, as if it had allocated it, and taken back by
            /// `release(id)`.
            ///
            /// `Ok(allocation)`; `Err(OverBudget)` if it would exceed the budget;
            /// `Err(OutOfMemory)`; `Err(InvalidSize)`; `Err(NotFound)`; `Err(Denied)` unless
            /// the caller is `proc`.
            AllocWithin = 18 => fn alloc_within(id: ComponentId, size_bits: u8) -> Allocation;
            /// Takes back everything component `id` holds (it exited, faulted or was killed):
            /// every allocation and image block is revoked, and it leaves its shared regions.
            /// Returns how many bytes went back to the pool.
            ///
            /// `Ok(bytes)`; `Err(NotFound)`; `Err(Denied)` unless the caller is `proc`.
            Release = 17 => fn release(id: ComponentId) -> u64;
        }
    }
}
