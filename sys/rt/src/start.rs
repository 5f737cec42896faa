//! The entry point, the initial thread's stack and the language items, all
//! expanded into the component binary by [`entry!`](crate::entry).

use crate::startinfo::{StartInfo, IPC_BUFFER_VADDR};
use sel4::bootinfo::BootInfoRef;
use sel4::BootInfo;

/// Size of a loaded component's static stack: used only if its loader gave it no stack of
/// its own (every Tessera loader does; see `StartInfo::stack_len`).
pub const STACK_SIZE: usize = 16 * 1024;

/// A static stack of `N` bytes (16-byte aligned, as the ABI wants before a call).
#[repr(C, align(16))]
pub struct Stack<const N: usize>(pub [u8; N]);

/// A static heap region of `N` bytes.
#[repr(C, align(4096))]
pub struct HeapRegion<const N: usize>(pub [u8; N]);

/// What a component's `main` receives from [`entry!`](crate::entry), made from the
/// thread's start-up argument before `main` runs: `&'static StartInfo` for a component a
/// Tessera loader started, the kernel's boot info for the root task. The type of `main`'s
/// parameter picks the implementation.
pub trait Start: Sized {
    /// Checks the start-up argument, points the `sel4` crate at the thread's IPC buffer
    /// and returns the view. Panics, naming the problem, if `arg` is not what this kind
    /// of component is started with.
    ///
    /// # Safety
    /// `arg` must be the value the initial thread was started with (`rdi` at `_start`),
    /// and this must run on that thread before anything uses its IPC buffer.
    unsafe fn begin(arg: usize) -> Self;
}

impl Start for &'static StartInfo {
    unsafe fn begin(arg: usize) -> Self {
        // SAFETY: the caller's contract: `arg` is a loader-started thread's argument.
        let info = unsafe { StartInfo::from_start_arg(arg) }
            .expect("no start info: this component must be started by Tessera's loader");
        sel4::ipc::set_user_data(IPC_BUFFER_VADDR);
        info
    }
}

impl Start for BootInfoRef<'static> {
    unsafe fn begin(arg: usize) -> Self {
        // SAFETY: the caller's contract: seL4 starts the root task with the address of
        // the boot-info frame (and the extra pages after it), mapped read-only for the
        // task's whole life; from_ptr validates what it reads.
        let info = match unsafe { BootInfo::from_ptr(arg as *const u8) } {
            Ok(info) => info,
            Err(e) => panic!("the kernel's boot info does not parse: {e:?}"),
        };
        sel4::ipc::set_user_data(info.ipc_buffer);
        info
    }
}

/// Defines the component: `entry!(main)` makes `_start` keep the stack the loader gave the
/// thread (`rsp` below `STACK_TOP`) or, when started with `rsp = 0` as seL4 starts the
/// root task, load a static stack; set up the heap (the loader's, else a static region)
/// and call `main` with what [`Start`] makes of the start-up argument (`&'static
/// StartInfo`, or `BootInfoRef<'static>` for the root task: `main`'s parameter type picks),
/// exiting with status 0 if it returns. So `main` itself needs no `unsafe` to start.
/// It also defines the panic handler, the global allocator and the exported memory
/// functions. `entry!(main, stack = S, heap = H)` sizes the static stack and heap (the
/// root task's; for a loaded component both come from its budget and these are unused).
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        $crate::entry!($main, stack = $crate::STACK_SIZE, heap = 0);
    };
    ($main:path, stack = $stack:expr, heap = $heap:expr) => {
        const __TESSERA_STACK_SIZE: usize = $stack;
        const __TESSERA_HEAP_SIZE: usize = $heap;

        #[allow(unsafe_code, reason = "the stack `_start` loads must have a symbol name")]
        #[no_mangle]
        static mut __tessera_stack: $crate::Stack<__TESSERA_STACK_SIZE> =
            $crate::Stack([0; __TESSERA_STACK_SIZE]);

        static mut __TESSERA_HEAP_REGION: $crate::HeapRegion<__TESSERA_HEAP_SIZE> =
            $crate::HeapRegion([0; __TESSERA_HEAP_SIZE]);

        ::core::arch::global_asm!(
            ".globl _start",
            "_start:",
            "    test rsp, rsp",
            "    jnz 2f",
            "    lea rsp, [rip + {stack} + {size}]",
            "2:",
            "    xor rbp, rbp",
            "    call {main}",
            "    ud2",
            stack = sym __tessera_stack,
            size = const __TESSERA_STACK_SIZE,
            main = sym __tessera_main,
        );

        #[allow(unsafe_code, reason = "heap and start-up from the thread's argument")]
        extern "C" fn __tessera_main(arg: usize) -> ! {
            // SAFETY: `arg` is this thread's start-up argument, and the static region is
            // used by nothing but the allocator.
            unsafe {
                $crate::heap::init(
                    arg,
                    ::core::ptr::addr_of_mut!(__TESSERA_HEAP_REGION) as *mut u8,
                    __TESSERA_HEAP_SIZE,
                )
            };
            // SAFETY: `arg` is what the thread was started with: `_start` passes `rdi` on
            // unchanged, and this is the thread's first code after the heap, before `main`.
            let start = unsafe { $crate::Start::begin(arg) };
            $main(start);
            $crate::exit(0)
        }

        #[global_allocator]
        static __TESSERA_HEAP: $crate::heap::Heap = $crate::heap::Heap;

        #[panic_handler]
        fn __tessera_panic(info: &::core::panic::PanicInfo) -> ! {
            $crate::panic(info)
        }

        /// Needed by the prebuilt `liballoc`; never called (panics abort).
        #[allow(unsafe_code, reason = "a symbol the prebuilt `liballoc` links against")]
        #[no_mangle]
        extern "C" fn rust_eh_personality() {}

        /// Referenced by the prebuilt `liballoc` (built with unwinding); never called,
        /// since components abort on panic.
        #[allow(unsafe_code, reason = "a symbol the prebuilt `liballoc` links against")]
        #[no_mangle]
        extern "C" fn _Unwind_Resume() -> ! {
            $crate::stop_thread()
        }

        /// See [`rt::mem::memcpy`].
        ///
        /// # Safety
        /// As C's `memcpy`.
        #[allow(unsafe_code, reason = "the C memory functions the compiler calls")]
        #[no_mangle]
        unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: forwarded caller contract.
            unsafe { $crate::mem::memcpy(d, s, n) }
        }

        /// See [`rt::mem::memmove`].
        ///
        /// # Safety
        /// As C's `memmove`.
        #[allow(unsafe_code, reason = "the C memory functions the compiler calls")]
        #[no_mangle]
        unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: forwarded caller contract.
            unsafe { $crate::mem::memmove(d, s, n) }
        }

        /// See [`rt::mem::memset`].
        ///
        /// # Safety
        /// As C's `memset`.
        #[allow(unsafe_code, reason = "the C memory functions the compiler calls")]
        #[no_mangle]
        unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
            // SAFETY: forwarded caller contract.
            unsafe { $crate::mem::memset(d, c, n) }
        }

        /// See [`rt::mem::memcmp`].
        ///
        /// # Safety
        /// As C's `memcmp`.
        #[allow(unsafe_code, reason = "the C memory functions the compiler calls")]
        #[no_mangle]
        unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: forwarded caller contract.
            unsafe { $crate::mem::memcmp(a, b, n) }
        }

        /// See [`rt::mem::bcmp`].
        ///
        /// # Safety
        /// As C's `bcmp`.
        #[allow(unsafe_code, reason = "the C memory functions the compiler calls")]
        #[no_mangle]
        unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: forwarded caller contract.
            unsafe { $crate::mem::memcmp(a, b, n) }
        }
    };
}
