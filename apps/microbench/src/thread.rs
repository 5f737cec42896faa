//! Helper threads in the component's own address space (the approach of
//! `libos_sel4::irq`): a TCB and an IPC buffer frame from the [`Pool`], a stack from the
//! heap, started at a trampoline that points the `sel4` crate at the thread's IPC buffer
//! and runs its body.
//!
//! A helper must never allocate: the heap's lock spins, and a helper runs above the
//! thread that may hold it.

use alloc::boxed::Box;
use alloc::vec;
use rt::startinfo::slots;
use sel4::cap_type::{CNode, Tcb, X86Page};
use sel4::{CPtr, Cap, CapData, CapRights, Error, ObjectType, PrioProps, UserContext, Word};
use vspace::{MapError, Pool, VSpace};

/// Bytes of each helper's stack.
const STACK_SIZE: usize = 16 * 1024;

/// Why a helper could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// Objects, slots or mappings ran out.
    Map(MapError),
    /// An invocation failed at `step`.
    Kernel {
        /// What was being done.
        step: &'static str,
        /// The kernel's error.
        error: Error,
    },
}

impl From<MapError> for SpawnError {
    fn from(e: MapError) -> Self {
        SpawnError::Map(e)
    }
}

/// What the trampoline needs: the IPC buffer's address and the body to run.
struct Start {
    ipc_buffer: Word,
    body: Option<&'static mut dyn FnMut()>,
}

/// Starts a thread at `priority` (at most the component's MCP) running `body`, named
/// `name` in the kernel's debug output. `body` is meant to run for ever: if it returns,
/// the thread panics.
pub fn spawn<F: FnMut(u8) -> Option<CPtr>>(
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    priority: u8,
    name: &str,
    body: impl FnMut() + 'static,
) -> Result<(), SpawnError> {
    let kernel = |step| move |error| SpawnError::Kernel { step, error };
    let ipc_frame = pool.object(ObjectType::X86Page, 0)?;
    let ipc_buffer = vspace.map(
        pool,
        &[ipc_frame],
        CapRights::read_write(),
        sel4::consts::X86_DEFAULT_VM_ATTRIBUTES,
    )?;
    let tcb: Cap<Tcb> = Cap::from_raw(pool.object(ObjectType::Tcb, 0)?);
    tcb.tcb_configure(
        slots::FAULT,
        // No authority over priorities of its own (MCP 0).
        PrioProps::new(0, Word::from(priority)),
        Cap::<CNode>::from_raw(slots::CNODE),
        CapData::NIL,
        Cap::from_raw(slots::VSPACE),
        CapData::NIL,
        ipc_buffer,
        Cap::<X86Page>::from_raw(ipc_frame),
    )
    .map_err(kernel("configure a helper thread"))?;
    sel4::syscall::debug_name_thread(tcb, name);

    let stack = Box::leak(vec![0u8; STACK_SIZE].into_boxed_slice());
    let stack_top = (stack.as_mut_ptr() as Word + STACK_SIZE as Word) & !15;
    let start = Box::leak(Box::new(Start {
        ipc_buffer,
        // Leaked, not boxed for the call: calling a boxed closure would free the box on
        // the helper thread (see the module docs).
        body: Some(Box::leak(Box::new(body))),
    }));
    let regs = UserContext {
        rip: trampoline as extern "C" fn(usize) -> ! as usize as Word,
        // At a function's entry the stack is 8 below a 16-byte boundary.
        rsp: stack_top - 8,
        rdi: start as *mut Start as Word,
        ..Default::default()
    };
    let count = (core::mem::size_of::<UserContext>() / core::mem::size_of::<Word>()) as Word;
    tcb.tcb_write_registers(true, 0, count, &regs)
        .map_err(kernel("start a helper thread"))
}

extern "C" fn trampoline(start: usize) -> ! {
    // SAFETY: `spawn` passes a leaked `Start` that only this thread touches from now on.
    let start = unsafe { &mut *(start as *mut Start) };
    sel4::ipc::set_user_data(start.ipc_buffer);
    let body = start.body.take().expect("a helper starts once");
    body();
    panic!("a helper thread's body returned")
}
