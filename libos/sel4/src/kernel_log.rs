//! The kernel's entry log (kernel variant `bench=entries`), read from user level: a
//! 2 MiB frame of the component's memory given to the kernel as its log buffer and
//! mapped here to read it, reset to open a window, finalised and summarised (by kind of
//! entry, `kernel-log`) to close it.
//!
//! Invariants: one log per system (the kernel keeps a single buffer; a second
//! [`KernelLog::new`] takes the buffer over); between [`KernelLog::finish`] and the next
//! [`KernelLog::reset`] the kernel only appends behind the records read, so reading
//! them races with nothing.

use core::cell::Cell;
use core::marker::PhantomData;

use kernel_log::{Codes, Summary, Syscalls, CAP_TAGS_X86_64, ENTRY_BYTES, IRQ_VECTOR_BASE_PC99};
use kernel_log::{LOG_BYTES, MAX_ENTRIES};
use sel4::{sysno, CPtr, Error, InvocationLabel};
use vspace::{MapError, Pool, VSpace};

/// Why the log could not be set up or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelLogError {
    /// The kernel was built without entry tracking (not the `bench=entries` variant).
    Unsupported,
    /// The frame could not be made or mapped.
    Map(MapError),
    /// A benchmark syscall failed at `step`.
    Kernel {
        /// What was being done.
        step: &'static str,
        /// The kernel's error.
        error: Error,
    },
}

impl From<MapError> for KernelLogError {
    fn from(e: MapError) -> Self {
        KernelLogError::Map(e)
    }
}

fn kernel(step: &'static str) -> impl Fn(Error) -> KernelLogError {
    move |error| KernelLogError::Kernel { step, error }
}

/// The numbers of this kernel build that tell entry kinds apart.
pub fn codes() -> Codes {
    Codes {
        syscalls: Syscalls {
            call: sysno::CALL,
            reply_recv: sysno::REPLY_RECV,
            send: sysno::SEND,
            nb_send: sysno::NB_SEND,
            recv: sysno::RECV,
            reply: sysno::REPLY,
            yield_: sysno::YIELD,
            nb_recv: sysno::NB_RECV,
        },
        caps: CAP_TAGS_X86_64,
        irq_ack_label: InvocationLabel::IRQAckIRQ as u32,
        io_port_labels: (
            InvocationLabel::X86IOPortIn8 as u32,
            InvocationLabel::X86IOPortOut32 as u32,
        ),
        irq_vector_base: IRQ_VECTOR_BASE_PC99,
    }
}

/// The kernel's entry log, mapped into this component.
pub struct KernelLog {
    base: usize,
    codes: Codes,
    /// Not `Sync`: no other thread can reset the log while `finish` reads it.
    _one_thread: PhantomData<Cell<()>>,
}

impl KernelLog {
    /// Makes a 2 MiB frame from `pool`, maps it into `vspace`, hands it to the kernel as
    /// its log buffer and starts logging (a first window opens now). Fails with
    /// `Unsupported` on a kernel without entry tracking, `Map` when memory, slots or
    /// addresses ran out, `Kernel` when the kernel refused the buffer.
    pub fn new<F: FnMut(u8) -> Option<CPtr>>(
        pool: &mut Pool<F>,
        vspace: &mut VSpace,
    ) -> Result<KernelLog, KernelLogError> {
        if !sel4::syscall::KERNEL_ENTRY_LOG {
            return Err(KernelLogError::Unsupported);
        }
        let (vaddr, _, frame) =
            vspace.map_new_large(pool, sel4::consts::X86_DEFAULT_VM_ATTRIBUTES)?;
        sel4::syscall::benchmark_set_log_buffer(frame).map_err(kernel("set the log buffer"))?;
        let log = KernelLog {
            base: vaddr as usize,
            codes: codes(),
            _one_thread: PhantomData,
        };
        log.reset()?;
        Ok(log)
    }

    /// Opens a window: the kernel logs from the buffer's start again.
    pub fn reset(&self) -> Result<(), KernelLogError> {
        sel4::syscall::benchmark_reset_log().map_err(kernel("reset the log"))
    }

    /// Closes the window: the entries logged since [`KernelLog::reset`], summarised
    /// (`full` when the buffer filled up and the window ended early).
    pub fn finish(&self) -> Result<Summary, KernelLogError> {
        let logged = sel4::syscall::benchmark_finalize_log().map_err(kernel("finalize the log"))?;
        let records = (logged as usize).min(MAX_ENTRIES);
        let bytes = records * ENTRY_BYTES;
        debug_assert!(bytes <= LOG_BYTES);
        // SAFETY: `base` maps the 2 MiB log frame (read-write, never unmapped; `new`),
        // and the first `records` records are complete: the kernel wrote them before
        // FinalizeLog and writes only records after them until the next reset, which
        // cannot happen while this slice lives (it ends with this call, and `KernelLog`
        // is not `Sync`, so no other thread resets through it meanwhile).
        let log = unsafe { core::slice::from_raw_parts(self.base as *const u8, bytes) };
        Ok(Summary::of_log(log, &self.codes))
    }
}
