//! Threads in the component's own address space (the interrupt thread, benchmark
//! helpers): a TCB and an IPC buffer frame from a [`Pool`], the frame mapped with
//! [`VSpace`]; the thread shares the component's CSpace, VSpace and fault endpoint and
//! starts at an entry point on a stack its creator provides.
//!
//! Priority: on seL4 5.0 a thread may only be given a priority up to its creator's
//! *maximum controlled priority* (MCP); a thread started here gets no MCP of its own.

use rt::startinfo::slots;
use sel4::cap_type::{CNode, Tcb, X86Page};
use sel4::{CPtr, Cap, CapData, CapRights, Error, ObjectType, PrioProps, UserContext, Word};
use vspace::{MapError, Pool, VSpace};

/// Why a thread could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// Objects, slots or mappings ran out.
    Map(MapError),
    /// An invocation failed at `step`.
    Kernel {
        /// What was being done.
        step: &'static str,
        /// The kernel's error.
        error: Error,
    },
    /// The request cannot be met (e.g. more interrupt sources than badge bits).
    Unsupported,
}

impl From<MapError> for StartError {
    fn from(e: MapError) -> Self {
        StartError::Map(e)
    }
}

impl StartError {
    /// Turns a kernel error at `step` into a [`StartError::Kernel`].
    pub fn kernel(step: &'static str) -> impl Fn(Error) -> StartError {
        move |error| StartError::Kernel { step, error }
    }
}

/// The entry point of a thread: `entry(argument, ipc_buffer)`, where `ipc_buffer` is the
/// address to hand to `sel4::ipc::set_user_data` before any invocation.
pub type Entry = extern "C" fn(usize, Word) -> !;

/// Starts a thread named `name` (in the kernel's debug output) running
/// `entry(argument, ..)` on the stack that ends at `stack_top` (rounded down to 16
/// bytes), at `priority` if the component's MCP allows it, else at 0. Returns the
/// priority it got.
pub fn spawn<F: FnMut(u8) -> Option<CPtr>>(
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    priority: u8,
    name: &str,
    entry: Entry,
    argument: usize,
    stack_top: Word,
) -> Result<u8, StartError> {
    let ipc_frame = pool.object(ObjectType::X86Page, 0)?;
    let ipc_buffer = vspace.map(
        pool,
        &[ipc_frame],
        CapRights::read_write(),
        sel4::consts::X86_DEFAULT_VM_ATTRIBUTES,
    )?;
    let tcb: Cap<Tcb> = Cap::from_raw(pool.object(ObjectType::Tcb, 0)?);
    let configure = |priority: u8| {
        tcb.tcb_configure(
            slots::FAULT,
            PrioProps::new(0, Word::from(priority)),
            Cap::<CNode>::from_raw(slots::CNODE),
            CapData::NIL,
            Cap::from_raw(slots::VSPACE),
            CapData::NIL,
            ipc_buffer,
            Cap::<X86Page>::from_raw(ipc_frame),
        )
    };
    let granted = match configure(priority) {
        Err(Error::RangeError) => configure(0).map(|()| 0),
        other => other.map(|()| priority),
    }
    .map_err(StartError::kernel("configure a thread"))?;
    sel4::syscall::debug_name_thread(tcb, name);
    let regs = UserContext {
        rip: entry as usize as Word,
        // At a function's entry the stack is 8 below a 16-byte boundary.
        rsp: (stack_top & !15) - 8,
        rdi: argument as Word,
        rsi: ipc_buffer,
        ..Default::default()
    };
    let count = (core::mem::size_of::<UserContext>() / core::mem::size_of::<Word>()) as Word;
    tcb.tcb_write_registers(true, 0, count, &regs)
        .map_err(StartError::kernel("start a thread"))?;
    Ok(granted)
}
