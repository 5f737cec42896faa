//! The entry point, the initial thread's stack and the language items, all
//! expanded into the component binary by [`entry!`](crate::entry).

/// Size of the initial thread's stack.
pub const STACK_SIZE: usize = 256 * 1024;

/// The initial thread's stack (16-byte aligned, as the ABI wants before a call).
#[repr(C, align(16))]
pub struct Stack(pub [u8; STACK_SIZE]);

/// Defines the component: `entry!(main)` makes `_start` (seL4 starts a thread with
/// `rsp = 0` and the start-up argument in `rdi`) load a static stack, set up the
/// heap and call `main(arg)`, exiting with status 0 if it returns. It also defines
/// the panic handler, the global allocator and the exported memory functions.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        static mut __tessera_stack: $crate::Stack = $crate::Stack([0; $crate::STACK_SIZE]);

        ::core::arch::global_asm!(
            ".globl _start",
            "_start:",
            "    lea rsp, [rip + {stack} + {size}]",
            "    xor rbp, rbp",
            "    call {main}",
            "    ud2",
            stack = sym __tessera_stack,
            size = const $crate::STACK_SIZE,
            main = sym __tessera_main,
        );

        extern "C" fn __tessera_main(arg: usize) -> ! {
            $crate::heap::init();
            $main(arg);
            $crate::exit(0)
        }

        #[global_allocator]
        static __TESSERA_HEAP: $crate::heap::Heap = $crate::heap::Heap;

        #[panic_handler]
        fn __tessera_panic(info: &::core::panic::PanicInfo) -> ! {
            $crate::panic(info)
        }

        /// Needed by the prebuilt `liballoc`; never called (panics abort).
        #[no_mangle]
        extern "C" fn rust_eh_personality() {}

        /// Referenced by the prebuilt `liballoc` (built with unwinding); never called,
        /// since components abort on panic.
        #[no_mangle]
        extern "C" fn _Unwind_Resume() -> ! {
            $crate::stop_thread()
        }

        /// See [`rt::mem::memcpy`].
        ///
        /// # Safety
        /// As C's `memcpy`.
        #[no_mangle]
        unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: forwarded caller contract.
            unsafe { $crate::mem::memcpy(d, s, n) }
        }

        /// See [`rt::mem::memmove`].
        ///
        /// # Safety
        /// As C's `memmove`.
        #[no_mangle]
        unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: forwarded caller contract.
            unsafe { $crate::mem::memmove(d, s, n) }
        }

        /// See [`rt::mem::memset`].
        ///
        /// # Safety
        /// As C's `memset`.
        #[no_mangle]
        unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
            // SAFETY: forwarded caller contract.
            unsafe { $crate::mem::memset(d, c, n) }
        }

        /// See [`rt::mem::memcmp`].
        ///
        /// # Safety
        /// As C's `memcmp`.
        #[no_mangle]
        unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: forwarded caller contract.
            unsafe { $crate::mem::memcmp(a, b, n) }
        }

        /// See [`rt::mem::bcmp`].
        ///
        /// # Safety
        /// As C's `bcmp`.
        #[no_mangle]
        unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: forwarded caller contract.
            unsafe { $crate::mem::memcmp(a, b, n) }
        }
    };
}
