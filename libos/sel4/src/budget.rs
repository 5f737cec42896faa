//! Kernel objects from the component's own memory budget: a [`Pool`] refilled with
//! untyped memory from the `memory` service.

use alloc::vec::Vec;

use proto::memory::MemoryClient;
use proto::sel4_transport::EndpointTransport;
use rt::slots_alloc::Slots;
use sel4::CPtr;
use vspace::Pool;

/// A pool over `free` whose untyped memory comes from `memory` (the service's endpoint)
/// in blocks of at least 64 KiB, at most `blocks` of them (each needs a slot, set aside
/// from `free` here). A refused allocation is reported as
/// `component: memory alloc of 2^N bytes failed: ERROR` and the pool's request fails.
pub fn pool(
    free: Slots,
    memory: CPtr,
    blocks: usize,
    component: &'static str,
) -> Pool<impl FnMut(u8) -> Option<CPtr>> {
    pool_of(free, memory, blocks, 16, component)
}

/// As [`pool`], in blocks of at least `2^chunk_bits` bytes: fewer, larger blocks for a
/// component that makes many objects (each full block costs a failed retype, which the
/// debug kernel reports on the console).
pub fn pool_of(
    mut free: Slots,
    memory: CPtr,
    blocks: usize,
    chunk_bits: u8,
    component: &'static str,
) -> Pool<impl FnMut(u8) -> Option<CPtr>> {
    let slots: Vec<CPtr> = (0..blocks)
        .map(|_| free.alloc().expect("a free slot"))
        .collect();
    let mut slots = slots.into_iter();
    let mut memory = MemoryClient::new(EndpointTransport::new(memory));
    let refill = move |bits: u8| -> Option<CPtr> {
        let slot = slots.next()?;
        memory.transport().receive_in(slot);
        match memory.alloc(bits) {
            Ok(a) => Some(a.untyped.0),
            Err(e) => {
                rt::println!("{component}: memory alloc of 2^{bits} bytes failed: {e:?}");
                None
            }
        }
    };
    Pool::new(free, chunk_bits, refill)
}
