//! The component heap: a linked-list allocator over a static region.
//!
//! The lock spins, so on a uniprocessor a higher-priority thread must never allocate
//! while a lower-priority one might hold it (interrupt threads don't allocate).

use linked_list_allocator::LockedHeap;

/// Size of the static heap region.
pub const HEAP_SIZE: usize = 8 * 1024 * 1024;

#[repr(C, align(4096))]
struct Region([u8; HEAP_SIZE]);

static mut REGION: Region = Region([0; HEAP_SIZE]);

static HEAP: LockedHeap = LockedHeap::empty();

/// The global allocator a component installs (through [`entry!`](crate::entry)):
/// the linked-list heap over the static region.
pub struct Heap;

// SAFETY: forwards to LockedHeap, whose GlobalAlloc implementation upholds the
// contract; the region it manages is handed over once by `init`.
unsafe impl core::alloc::GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded caller contract.
        unsafe { HEAP.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: core::alloc::Layout) {
        // SAFETY: forwarded caller contract.
        unsafe { HEAP.dealloc(ptr, layout) }
    }
}

/// Hands the static region to the allocator; start-up calls it once before `main`.
pub fn init() {
    let mut heap = HEAP.lock();
    if heap.size() == 0 {
        // SAFETY: REGION is used by nothing else, and this runs once (size() is zero
        // only before the first init, and we hold the allocator's lock).
        unsafe { heap.init(core::ptr::addr_of_mut!(REGION) as *mut u8, HEAP_SIZE) };
    }
}

/// Bytes of heap in use and free.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}
