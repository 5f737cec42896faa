//! The component heap: a linked-list allocator over the region the loader mapped from the
//! component's budget ([`StartInfo::heap`](crate::startinfo::StartInfo::heap)), or, for the
//! root task (which no loader starts), over a static region in its image.
//!
//! The lock spins, so on a uniprocessor a higher-priority thread must never allocate
//! while a lower-priority one might hold it (interrupt threads don't allocate).

use linked_list_allocator::LockedHeap;

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

/// Hands the allocator its region: the loader-mapped heap if the start-up argument `arg`
/// points at a start info that has one, else `fallback` (`len` bytes at `base`, the
/// binary's static region). Start-up calls it once before `main`.
///
/// # Safety
/// `arg` is the thread's start-up argument, and `base..base + len` is memory that nothing
/// else uses for the component's life.
pub unsafe fn init(arg: usize, base: *mut u8, len: usize) {
    // SAFETY: `arg` is the start-up argument (caller's contract).
    let mapped = unsafe { crate::startinfo::StartInfo::from_start_arg(arg) }.and_then(|i| i.heap());
    let (base, len) = mapped.unwrap_or((base, len));
    let mut heap = HEAP.lock();
    if heap.size() == 0 && len > 0 {
        // SAFETY: the region is the loader's heap mapping or the caller's static region,
        // used by nothing else, and this runs once (size() is zero only before the first
        // init, and we hold the allocator's lock).
        unsafe { heap.init(base, len) };
    }
}

/// Bytes the heap manages in all (0 before start-up).
pub fn size() -> usize {
    HEAP.lock().size()
}

/// Bytes of heap in use and free.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}
