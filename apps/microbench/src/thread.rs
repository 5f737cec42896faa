//! Helper threads in the component's own address space ([`libos_sel4::thread`]): a
//! stack from the heap, started at a trampoline that points the `sel4` crate at the
//! thread's IPC buffer and runs its body.
//!
//! A helper must never allocate: the heap's lock spins, and a helper runs above the
//! thread that may hold it.

use alloc::boxed::Box;
use alloc::vec;
use libos_sel4::thread::{self, StartError};
use sel4::{CPtr, Error, Word};
use vspace::{Pool, VSpace};

/// Bytes of each helper's stack.
const STACK_SIZE: usize = 16 * 1024;

/// A helper's body, taken by the trampoline.
type Body = Option<&'static mut dyn FnMut()>;

/// Starts a thread at `priority` (at most the component's MCP) running `body`, named
/// `name` in the kernel's debug output. `body` is meant to run for ever: if it returns,
/// the thread panics.
pub fn spawn<F: FnMut(u8) -> Option<CPtr>>(
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    priority: u8,
    name: &str,
    body: impl FnMut() + 'static,
) -> Result<(), StartError> {
    let stack = Box::leak(vec![0u8; STACK_SIZE].into_boxed_slice());
    let stack_top = stack.as_mut_ptr() as Word + STACK_SIZE as Word;
    // Leaked, not boxed for the call: calling a boxed closure would free the box on the
    // helper thread (see the module docs).
    let body: &'static mut Body = Box::leak(Box::new(Some(Box::leak(Box::new(body)))));
    let argument = body as *mut Body as usize;
    match thread::spawn(
        pool, vspace, priority, name, trampoline, argument, stack_top,
    )? {
        granted if granted == priority => Ok(()),
        _ => Err(StartError::kernel("give a helper its priority")(
            Error::RangeError,
        )),
    }
}

extern "C" fn trampoline(body: usize, ipc_buffer: Word) -> ! {
    // SAFETY: `spawn` passes a leaked `Body` that only this thread touches from now on.
    let body = unsafe { &mut *(body as *mut Body) };
    sel4::ipc::set_user_data(ipc_buffer);
    let body = body.take().expect("a helper starts once");
    body();
    panic!("a helper thread's body returned")
}
