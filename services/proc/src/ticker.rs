//! proc's timer thread (part of the seL4 binary): wakes proc's main thread when the next
//! restart is due.
//!
//! seL4 5.0 (without MCS) has no timeout on `Recv` and gives user level no timer, so proc
//! keeps its loop blocked in `Recv` on its endpoint (a request, a fault or this thread's
//! signal wakes it) and runs a second thread at the lowest priority any component of the
//! description has. While no restart is pending it sleeps on a notification; while one is,
//! it reads the TSC and yields until the deadline, then signals proc's bound notification
//! (badge [`TICK_BADGE`]). At the lowest priority it only runs
//! when nothing more important is runnable, round-robin with the components at that
//! priority (the shell, which polls its console, is one).

use core::sync::atomic::{AtomicU64, Ordering};

use alloc::format;
use alloc::string::String;

use proc::grants::TICK_BADGE;
use rt::startinfo::{slots, CNODE_SIZE_BITS};
use sel4::cap_type::{CNode, Notification, Tcb};
use sel4::{CPtr, Cap, CapData, CapRights, PrioProps, UserContext, Word};

/// When the next restart is due (ms, as `now_ms` counts), `u64::MAX` for none.
static DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);

const STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

static mut STACK: Stack = Stack([0; STACK_SIZE]);

/// proc's handle on its timer thread.
pub struct Ticker {
    wake: Cap<Notification>,
}

impl Ticker {
    /// Starts the timer thread on `tcb` at `priority`: it waits on `wake` while idle and
    /// signals `tick` (a badged copy of proc's bound notification) at a deadline.
    ///
    /// Errors: the kernel's, configuring or starting the thread.
    pub fn start(tcb: CPtr, wake: CPtr, tick: CPtr, priority: u8) -> Result<Ticker, sel4::Error> {
        let tcb = Cap::<Tcb>::from_raw(tcb);
        // No IPC buffer: the thread only signals, waits and yields (registers only).
        tcb.tcb_configure(
            0,
            PrioProps::new(0, Word::from(priority)),
            Cap::<CNode>::from_raw(slots::CNODE),
            CapData::new_guard(0, 64 - CNODE_SIZE_BITS),
            Cap::from_raw(slots::VSPACE),
            CapData::NIL,
            0,
            Cap::from_raw(0),
        )?;
        sel4::syscall::debug_name_thread(tcb, "proc.timer");
        let stack_top = core::ptr::addr_of!(STACK) as Word + STACK_SIZE as Word;
        let regs = UserContext {
            rip: timer_main as *const () as usize as Word,
            // As if `call` had pushed a return address: rsp = 8 (mod 16) at entry.
            rsp: stack_top - 8,
            rdi: wake,
            rsi: tick,
            ..Default::default()
        };
        let count = (core::mem::size_of::<UserContext>() / core::mem::size_of::<Word>()) as Word;
        tcb.tcb_write_registers(true, 0, count, &regs)?;
        Ok(Ticker {
            wake: Cap::from_raw(wake),
        })
    }

    /// Binds proc's notification to its thread, mints the timer's badged copy of it
    /// (badge [`TICK_BADGE`]) into the empty slot `tick`, and starts the timer thread on
    /// `tcb` ([`Ticker::start`]).
    ///
    /// Errors: what failed, with the kernel's errors, for the report.
    pub fn start_bound(tcb: CPtr, wake: CPtr, tick: CPtr, priority: u8) -> Result<Ticker, String> {
        let own = Cap::<CNode>::from_raw(slots::CNODE);
        let bound = Cap::<Tcb>::from_raw(slots::TCB)
            .tcb_bind_notification(Cap::from_raw(slots::NOTIFICATION));
        let rights = CapRights::all();
        let badge = CapData::new_badge(TICK_BADGE);
        let minted = own.cnode_mint(tick, 64, own, slots::NOTIFICATION, 64, rights, badge);
        if bound.is_err() || minted.is_err() {
            return Err(format!(
                "cannot bind the timer notification: {bound:?} {minted:?}"
            ));
        }
        Ticker::start(tcb, wake, tick, priority)
            .map_err(|e| format!("cannot start the timer thread: {e:?}"))
    }

    /// Sets the next deadline (`None`: nothing due) and wakes the thread if it sleeps.
    pub fn set(&self, deadline: Option<u64>) {
        let d = deadline.unwrap_or(u64::MAX);
        if DEADLINE.swap(d, Ordering::SeqCst) != d && d != u64::MAX {
            sel4::syscall::signal(self.wake);
        }
    }
}

extern "C" fn timer_main(wake: CPtr, tick: CPtr) -> ! {
    let (wake, tick) = (
        Cap::<Notification>::from_raw(wake),
        Cap::<Notification>::from_raw(tick),
    );
    loop {
        let due = DEADLINE.load(Ordering::SeqCst);
        if due == u64::MAX {
            sel4::syscall::wait(wake);
        } else if crate::now_ms() >= due {
            // Taken: proc sets the next one after it handled this one.
            let _ = DEADLINE.compare_exchange(due, u64::MAX, Ordering::SeqCst, Ordering::SeqCst);
            sel4::syscall::signal(tick);
        } else {
            sel4::syscall::yield_now();
        }
    }
}
