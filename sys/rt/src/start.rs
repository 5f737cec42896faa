//! The entry point and the initial thread's stack.

/// Size of the initial thread's stack.
pub const STACK_SIZE: usize = 256 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

#[no_mangle]
static mut __tessera_stack: Stack = Stack([0; STACK_SIZE]);

// seL4 starts the root task with rsp = 0 and the boot-info pointer in rdi.
// Load the static stack (16-byte aligned, as the ABI wants before a call) and
// call the component's `__tessera_main(rdi)`, which `entry!` defines.
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "    lea rsp, [rip + {stack} + {size}]",
    "    xor rbp, rbp",
    "    call __tessera_main",
    "    ud2",
    stack = sym __tessera_stack,
    size = const STACK_SIZE,
);

/// Defines the component's entry: `entry!(main)` calls `main(arg)` with the start-up
/// argument (the boot-info address for the root task) after start-up, and exits with
/// status 0 if `main` returns.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        extern "C" fn __tessera_main(arg: usize) -> ! {
            $crate::heap::init();
            $main(arg);
            $crate::exit(0)
        }
    };
}
