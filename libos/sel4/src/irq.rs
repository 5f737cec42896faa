//! The interrupt thread (the paper's design): a second seL4 thread in the component
//! that waits on a notification its IRQ handlers signal (one badge bit per source), runs
//! each source's hook (e.g. reading the NIC's interrupt cause register, which re-arms
//! MSI), acknowledges the handler and wakes the library OS thread by signalling its
//! notification.
//!
//! Priority: the paper runs it above the library OS thread. On seL4 5.0 a thread may only
//! be given a priority up to its creator's *maximum controlled priority* (MCP). The loader
//! (root and proc alike) starts every component with an MCP equal to its priority from the
//! description (`StartInfo::mcp`), so [`start_above_caller`] runs the interrupt thread at
//! the component's priority and steps the library OS thread one below it. Should the MCP be
//! lower than the asked priority, the thread runs at 0 instead and is scheduled when the
//! library OS thread blocks in `wait_until`, which is when its wake-up matters.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use alloc::boxed::Box;
use alloc::vec::Vec;
use rt::startinfo::slots;
use sel4::cap_type::{CNode, IrqHandler, Notification};
use sel4::{CPtr, Cap, CapData, CapRights, ObjectType};
use vspace::{Pool, VSpace};

use crate::thread;

const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);
const STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

static mut STACK: Stack = Stack([0; STACK_SIZE]);
static STARTED: AtomicBool = AtomicBool::new(false);
/// Interrupts delivered per source index (the interrupt thread's wake-ups with its bit).
static DELIVERED: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];

/// How many interrupts source `index` (its place in [`start`]'s `sources`) has delivered
/// to the interrupt thread so far; 0 for an index past the sources.
pub fn delivered(index: usize) -> u64 {
    DELIVERED
        .get(index)
        .map_or(0, |count| count.load(Ordering::Relaxed))
}

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
    ntfn: Cap<Notification>,
    wake: Cap<Notification>,
    sources: Vec<Source>,
}

pub use crate::thread::StartError;

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
        .map_err(StartError::kernel("mint the IRQ notification"))?;
        source
            .handler
            .irq_handler_set_notification(Cap::from_raw(badged))
            .map_err(StartError::kernel("set the IRQ's notification"))?;
        let _ = source.handler.irq_handler_ack();
    }
    let shared = Box::leak(Box::new(Shared {
        ntfn,
        wake,
        sources,
    }));
    let stack_top = core::ptr::addr_of_mut!(STACK) as u64 + STACK_SIZE as u64;
    let argument = shared as *mut Shared as usize;
    thread::spawn(pool, vspace, priority, "irq", entry, argument, stack_top)
}

extern "C" fn entry(shared: usize, ipc_buffer: u64) -> ! {
    // SAFETY: `start` passes a leaked `Shared` that nothing else mutates.
    let shared = unsafe { &*(shared as *const Shared) };
    sel4::ipc::set_user_data(ipc_buffer);
    loop {
        let badge = sel4::syscall::wait(shared.ntfn);
        for (bit, source) in shared.sources.iter().enumerate() {
            if badge & (1 << bit) == 0 {
                continue;
            }
            DELIVERED[bit].fetch_add(1, Ordering::Relaxed);
            if let Some(hook) = source.hook {
                hook(source.context);
            }
            let _ = source.handler.irq_handler_ack();
        }
        sel4::syscall::signal(shared.wake);
    }
}

/// The badge the interrupt thread's signals carry on the caller's notification (above the
/// badges of IPC clients, so a thread whose notification is bound can tell the two apart:
/// `proto::sel4_transport::SIGNAL_BADGES`).
pub const IRQ_BADGE: u64 = 1 << 16;

/// The paper's arrangement for the calling thread (the library OS thread): mints a copy of
/// its notification (`slots::NOTIFICATION`, the one [`crate::Sel4Pal`] waits on) with
/// badge [`IRQ_BADGE`] for the interrupt thread to signal, starts the interrupt thread for `sources`
/// at `priority` (the component's MCP; see [`start`]) and steps the caller one below it.
/// A caller that cannot step down keeps running (`component: cannot step below the
/// interrupt thread` on the console). Returns the interrupt thread's priority.
pub fn start_above_caller<F: FnMut(u8) -> Option<CPtr>>(
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    sources: Vec<Source>,
    priority: u8,
    component: &str,
) -> Result<u8, StartError> {
    let wake = pool.slot()?;
    OWN.cnode_mint(
        wake,
        64,
        OWN,
        slots::NOTIFICATION,
        64,
        CapRights::all(),
        CapData::new_badge(IRQ_BADGE),
    )
    .map_err(StartError::kernel("mint the wake-up notification"))?;
    let got = start(pool, vspace, sources, Cap::from_raw(wake), priority)?;
    if got > 0 {
        let own = Cap::<sel4::cap_type::Tcb>::from_raw(slots::TCB);
        if let Err(e) = own.tcb_set_priority(got - 1) {
            rt::println!("{component}: cannot step below the interrupt thread: {e:?}");
        }
    }
    Ok(got)
}
