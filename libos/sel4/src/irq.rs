//! The interrupt thread (the paper's design): a second seL4 thread in the component
//! that waits on a notification its IRQ handlers signal (one badge bit per source), runs
//! each source's hook (e.g. reading the NIC's interrupt cause register, which re-arms
//! MSI), acknowledges the handler and wakes the library OS thread by signalling its
//! notification.
//!
//! Priority: the paper runs it above the library OS thread. On seL4 5.0 a thread may only
//! be given a priority up to its creator's *maximum controlled priority*, and the loader
//! starts components with an MCP of 0, so today the thread runs at priority 0 and is
//! scheduled when the library OS thread blocks in `wait_until` (which is when its wake-up
//! matters). With an MCP above the component's priority it runs at `priority`.

use core::sync::atomic::{AtomicBool, Ordering};

use alloc::boxed::Box;
use alloc::vec::Vec;
use rt::startinfo::slots;
use sel4::cap_type::{CNode, IrqHandler, Notification, Tcb, X86Page};
use sel4::{CPtr, Cap, CapData, CapRights, Error, ObjectType, PrioProps, UserContext, Word};
use vspace::{MapError, Pool, VSpace};

const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);
const STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

static mut STACK: Stack = Stack([0; STACK_SIZE]);
static STARTED: AtomicBool = AtomicBool::new(false);

/// One interrupt source.
pub struct Source {
    /// Its IRQ handler (already issued by `devices`).
    pub handler: Cap<IrqHandler>,
    /// Runs on the interrupt thread before the acknowledgement, with `context`.
    pub hook: Option<fn(usize)>,
    /// The hook's argument (e.g. the address of the device's registers).
    pub context: usize,
}

struct Shared {
    ipc_buffer: u64,
    ntfn: Cap<Notification>,
    wake: Cap<Notification>,
    sources: Vec<Source>,
}

/// Why the interrupt thread could not be started.
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
    /// More sources than badge bits, or a second interrupt thread.
    Unsupported,
}

impl From<MapError> for StartError {
    fn from(e: MapError) -> Self {
        StartError::Map(e)
    }
}

fn kernel(step: &'static str) -> impl Fn(Error) -> StartError {
    move |error| StartError::Kernel { step, error }
}

/// Starts the interrupt thread for `sources` (at most 32): each source's handler signals
/// a notification of the thread's own with badge bit `index`; the thread signals `wake`
/// (give it a badged copy, so `poll` can tell a signal from nothing) after acknowledging.
/// `priority` is clamped by the kernel's MCP rule (see the module docs): the thread is
/// started at `priority` if allowed, else at 0. Returns the priority it got.
pub fn start<F: FnMut(u8) -> Option<CPtr>>(
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    sources: Vec<Source>,
    wake: Cap<Notification>,
    priority: u8,
) -> Result<u8, StartError> {
    if sources.len() > 32 || STARTED.swap(true, Ordering::AcqRel) {
        return Err(StartError::Unsupported);
    }
    let ntfn: Cap<Notification> = Cap::from_raw(pool.object(ObjectType::Notification, 0)?);
    for (bit, source) in sources.iter().enumerate() {
        let badged = pool.slot()?;
        OWN.cnode_mint(
            badged,
            64,
            OWN,
            ntfn.raw(),
            64,
            CapRights::all(),
            CapData::new_badge(1 << bit),
        )
        .map_err(kernel("mint the IRQ notification"))?;
        source
            .handler
            .irq_handler_set_notification(Cap::from_raw(badged))
            .map_err(kernel("set the IRQ's notification"))?;
        let _ = source.handler.irq_handler_ack();
    }
    let ipc_frame = pool.object(ObjectType::X86Page, 0)?;
    let ipc_buffer = vspace.map(
        pool,
        &[ipc_frame],
        CapRights::read_write(),
        sel4::consts::X86_DEFAULT_VM_ATTRIBUTES,
    )?;
    let tcb: Cap<Tcb> = Cap::from_raw(pool.object(ObjectType::Tcb, 0)?);
    let shared = Box::leak(Box::new(Shared {
        ipc_buffer,
        ntfn,
        wake,
        sources,
    }));
    let configure = |prio: u8| {
        tcb.tcb_configure(
            slots::FAULT,
            PrioProps::new(prio as Word, prio as Word),
            OWN,
            CapData::NIL,
            Cap::from_raw(slots::VSPACE),
            CapData::NIL,
            ipc_buffer,
            Cap::<X86Page>::from_raw(ipc_frame),
        )
    };
    let granted = match configure(priority) {
        Ok(()) => priority,
        Err(Error::RangeError) => {
            configure(0).map_err(kernel("configure the interrupt thread"))?;
            0
        }
        Err(error) => {
            return Err(StartError::Kernel {
                step: "configure the interrupt thread",
                error,
            })
        }
    };
    sel4::syscall::debug_name_thread(tcb, "irq");
    let stack_top = core::ptr::addr_of_mut!(STACK) as u64 + STACK_SIZE as u64;
    let regs = UserContext {
        rip: entry as extern "C" fn(usize) -> ! as usize as u64,
        // At a function's entry the stack is 8 below a 16-byte boundary.
        rsp: stack_top - 8,
        rdi: shared as *mut Shared as u64,
        ..Default::default()
    };
    let count = (core::mem::size_of::<UserContext>() / core::mem::size_of::<Word>()) as Word;
    tcb.tcb_write_registers(true, 0, count, &regs)
        .map_err(kernel("start the interrupt thread"))?;
    Ok(granted)
}

extern "C" fn entry(shared: usize) -> ! {
    // SAFETY: `start` passes a leaked `Shared` that nothing else mutates.
    let shared = unsafe { &*(shared as *const Shared) };
    sel4::ipc::set_user_data(shared.ipc_buffer);
    loop {
        let badge = sel4::syscall::wait(shared.ntfn);
        for (bit, source) in shared.sources.iter().enumerate() {
            if badge & (1 << bit) == 0 {
                continue;
            }
            if let Some(hook) = source.hook {
                hook(source.context);
            }
            let _ = source.handler.irq_handler_ack();
        }
        sel4::syscall::signal(shared.wake);
    }
}
