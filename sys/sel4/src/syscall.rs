//! Raw seL4 system calls for x86_64 (`SYSCALL` entry).
//!
//! Registers: syscall number in `rdx`, destination/source cap in `rdi`, message
//! info in `rsi`, message registers 0..3 in `r10, r8, r9, r15`. The kernel
//! clobbers `rcx`, `r11` and `rbx`; user code keeps `rsp` in `rbx` across the
//! instruction. `rbx` cannot be an asm operand in Rust, so it is saved in a
//! scratch register around the sequence.
//!
//! The plain calls move MR0..3 between the IPC buffer and the registers, as
//! libsel4 does; the `_with_mrs` variants take and return them in an array.

use crate::cap::{cap_type, Cap};
use crate::{sysno, Badge, CPtr, MessageInfo, Word};
use core::arch::asm;

/// One syscall: returns (`rdi`, `rsi`) and updates `mrs` with `r10, r8, r9, r15`.
#[inline(always)]
fn raw(sys: i64, rdi: Word, rsi: Word, mrs: &mut [Word; 4]) -> (Word, Word) {
    let (out_di, out_si);
    // SAFETY: the sequence follows the kernel's convention: rbx is saved in a
    // scratch register (an early-clobber output, so it overlaps no input) and
    // holds rsp across `syscall`; rcx and r11 are declared clobbered. Memory is
    // not marked unused, as the kernel reads and writes the IPC buffer.
    unsafe {
        asm!(
            "mov {save}, rbx",
            "mov rbx, rsp",
            "syscall",
            "mov rsp, rbx",
            "mov rbx, {save}",
            save = out(reg) _,
            in("rdx") sys,
            inout("rdi") rdi => out_di,
            inout("rsi") rsi => out_si,
            inout("r10") mrs[0],
            inout("r8") mrs[1],
            inout("r9") mrs[2],
            inout("r15") mrs[3],
            out("rcx") _,
            out("r11") _,
        );
    }
    (out_di, out_si)
}

/// Makes the kernel see an unknown system call `number` with `rdi` = `arg`: the thread
/// stops and its fault handler gets an `UnknownSyscall` fault carrying both (the way a
/// component tells its supervisor that it ends, see `rt::startinfo::ending`). Should the
/// handler reply, the call is raised again.
pub fn raise_unknown(number: i64, arg: Word) -> ! {
    loop {
        let mut mrs = [0; 4];
        raw(number, arg, 0, &mut mrs);
    }
}

fn load_mrs() -> [Word; 4] {
    [
        crate::ipc::get_mr(0),
        crate::ipc::get_mr(1),
        crate::ipc::get_mr(2),
        crate::ipc::get_mr(3),
    ]
}

fn store_mrs(mrs: &[Word; 4]) {
    for (i, w) in mrs.iter().enumerate() {
        crate::ipc::set_mr(i, *w);
    }
}

/// `seL4_Send`: blocking send of the message in the IPC buffer.
#[inline]
pub fn send(dest: CPtr, info: MessageInfo) {
    send_with_mrs(dest, info, &load_mrs());
}

/// `seL4_SendWithMRs`: blocking send, MR0..3 from `mrs`.
#[inline]
pub fn send_with_mrs(dest: CPtr, info: MessageInfo, mrs: &[Word; 4]) {
    raw(sysno::SEND, dest, info.0, &mut mrs.clone());
}

/// `seL4_NBSend`: send if the receiver is waiting, else drop the message.
#[inline]
pub fn nb_send(dest: CPtr, info: MessageInfo) {
    raw(sysno::NB_SEND, dest, info.0, &mut load_mrs());
}

/// `seL4_NBSend` with MR0..3 from `mrs`. Unlike a blocking send, it raises no fault when
/// `dest` is empty or invalid (the message is dropped): the way to answer a saved reply
/// capability whose caller may be gone.
#[inline]
pub fn nb_send_with_mrs(dest: CPtr, info: MessageInfo, mrs: &[Word; 4]) {
    raw(sysno::NB_SEND, dest, info.0, &mut mrs.clone());
}

/// `seL4_Call`: send and wait for the reply; the reply lands in the IPC buffer.
#[inline]
pub fn call(dest: CPtr, info: MessageInfo) -> MessageInfo {
    let mut mrs = load_mrs();
    let reply = call_with_mrs(dest, info, &mut mrs);
    store_mrs(&mrs);
    reply
}

/// `seL4_CallWithMRs`: MR0..3 go out from and come back in `mrs`.
#[inline]
pub fn call_with_mrs(dest: CPtr, info: MessageInfo, mrs: &mut [Word; 4]) -> MessageInfo {
    let (_, info) = raw(sysno::CALL, dest, info.0, mrs);
    MessageInfo(info)
}

/// `seL4_Reply`: reply to the last caller with the message in the IPC buffer.
#[inline]
pub fn reply(info: MessageInfo) {
    reply_with_mrs(info, &load_mrs());
}

/// `seL4_ReplyWithMRs`: reply, MR0..3 from `mrs`.
#[inline]
pub fn reply_with_mrs(info: MessageInfo, mrs: &[Word; 4]) {
    raw(sysno::REPLY, 0, info.0, &mut mrs.clone());
}

/// `seL4_Recv`: wait for a message on `src`; returns its info and the sender's badge.
#[inline]
pub fn recv(src: CPtr) -> (MessageInfo, Badge) {
    let mut mrs = [0; 4];
    let r = recv_with_mrs(src, &mut mrs);
    store_mrs(&mrs);
    r
}

/// `seL4_RecvWithMRs`: MR0..3 of the message come back in `mrs`.
#[inline]
pub fn recv_with_mrs(src: CPtr, mrs: &mut [Word; 4]) -> (MessageInfo, Badge) {
    let (badge, info) = raw(sysno::RECV, src, 0, mrs);
    (MessageInfo(info), badge)
}

/// `seL4_NBRecv`: receive if a message is waiting; else returns at once (label 0, badge 0).
#[inline]
pub fn nb_recv(src: CPtr) -> (MessageInfo, Badge) {
    let mut mrs = [0; 4];
    let (badge, info) = raw(sysno::NB_RECV, src, 0, &mut mrs);
    store_mrs(&mrs);
    (MessageInfo(info), badge)
}

/// `seL4_ReplyRecv`: reply to the caller, then wait on `src`.
#[inline]
pub fn reply_recv(src: CPtr, info: MessageInfo) -> (MessageInfo, Badge) {
    let mut mrs = load_mrs();
    let r = reply_recv_with_mrs(src, info, &mut mrs);
    store_mrs(&mrs);
    r
}

/// `seL4_ReplyRecvWithMRs`: MR0..3 go out from and come back in `mrs`.
#[inline]
pub fn reply_recv_with_mrs(
    src: CPtr,
    info: MessageInfo,
    mrs: &mut [Word; 4],
) -> (MessageInfo, Badge) {
    let (badge, info) = raw(sysno::REPLY_RECV, src, info.0, mrs);
    (MessageInfo(info), badge)
}

/// `seL4_Yield`: give up the rest of the time slice.
#[inline]
pub fn yield_now() {
    raw(sysno::YIELD, 0, 0, &mut [0; 4]);
}

/// `seL4_Signal`: signal a notification (a send with an empty-but-one-word message).
#[inline]
pub fn signal(ntfn: Cap<cap_type::Notification>) {
    raw(
        sysno::SEND,
        ntfn.raw(),
        MessageInfo::new(0, 0, 0, 1).0,
        &mut [0; 4],
    );
}

/// Signals a notification with `seL4_NBSend`: as [`signal`], except that a capability that
/// is gone (the peer that granted it was torn down and its objects revoked) is ignored
/// instead of faulting the caller. For signalling peers that may restart.
#[inline]
pub fn nb_signal(ntfn: Cap<cap_type::Notification>) {
    raw(
        sysno::NB_SEND,
        ntfn.raw(),
        MessageInfo::new(0, 0, 0, 1).0,
        &mut [0; 4],
    );
}

/// Whether slot `cap` may hold a capability: in debug builds (whose kernel prints a line for
/// every invocation of an empty slot) whether it does, by `seL4_DebugCapIdentify`; in other
/// builds always true (invoking an empty slot there costs nothing but the call). For
/// periodic signals to peers that may have gone.
#[inline]
pub fn cap_present(cap: CPtr) -> bool {
    #[cfg(sel4_config = "DEBUG_BUILD")]
    {
        debug_cap_identify(cap) != 0
    }
    #[cfg(not(sel4_config = "DEBUG_BUILD"))]
    {
        let _ = cap;
        true
    }
}

/// `seL4_Wait`: block until the notification is signalled; returns the accumulated badge.
#[inline]
pub fn wait(ntfn: Cap<cap_type::Notification>) -> Badge {
    raw(sysno::RECV, ntfn.raw(), 0, &mut [0; 4]).0
}

/// `seL4_Poll`: the notification's badge if signalled, else 0, without blocking.
#[inline]
pub fn poll(ntfn: Cap<cap_type::Notification>) -> Badge {
    raw(sysno::NB_RECV, ntfn.raw(), 0, &mut [0; 4]).0
}

/// `seL4_DebugPutChar`: print one byte on the kernel console.
#[cfg(sel4_config = "DEBUG_BUILD")]
#[inline]
pub fn debug_put_char(c: u8) {
    raw(sysno::DEBUG_PUT_CHAR, c as Word, 0, &mut [0; 4]);
}

/// `seL4_DebugHalt`: stop the system.
#[cfg(sel4_config = "DEBUG_BUILD")]
#[inline]
pub fn debug_halt() {
    raw(sysno::DEBUG_HALT, 0, 0, &mut [0; 4]);
}

/// `seL4_DebugSnapshot`: ask the kernel to dump its capability state.
#[cfg(sel4_config = "DEBUG_BUILD")]
#[inline]
pub fn debug_snapshot() {
    raw(sysno::DEBUG_SNAPSHOT, 0, 0, &mut [0; 4]);
}

/// `seL4_DebugCapIdentify`: the kernel's cap type number of `cap` (0 for a null cap).
#[cfg(sel4_config = "DEBUG_BUILD")]
#[inline]
pub fn debug_cap_identify(cap: CPtr) -> Word {
    raw(sysno::DEBUG_CAP_IDENTIFY, cap, 0, &mut [0; 4]).0 as u32 as Word
}

/// `seL4_DebugNameThread`: name a thread in kernel debug output. The name is
/// copied NUL-terminated into the IPC buffer's message words (as libsel4 does),
/// truncated to fit.
#[cfg(sel4_config = "DEBUG_BUILD")]
pub fn debug_name_thread(tcb: Cap<cap_type::Tcb>, name: &str) {
    let max = crate::consts::MSG_MAX_LENGTH as usize * 8 - 1;
    let bytes = &name.as_bytes()[..name.len().min(max)];
    // Little-endian words: byte k of the string is byte k of the message area.
    let words = (bytes.len() + 1).div_ceil(8);
    for i in 0..words {
        let mut w = [0u8; 8];
        for (k, b) in w.iter_mut().enumerate() {
            *b = bytes.get(i * 8 + k).copied().unwrap_or(0);
        }
        crate::ipc::set_mr(i, Word::from_le_bytes(w));
    }
    raw(sysno::DEBUG_NAME_THREAD, tcb.raw(), 0, &mut [0; 4]);
}

/// The error a benchmark syscall left in `rdi` (`seL4_NoError` is 0).
#[cfg(sel4_config = "ENABLE_BENCHMARKS")]
fn status(word: Word) -> Result<(), crate::Error> {
    match word {
        0 => Ok(()),
        e => Err(crate::Error::from_word(e).unwrap_or(crate::Error::IllegalOperation)),
    }
}

/// Whether this kernel logs every kernel entry into a buffer user level provides
/// (`BENCHMARK_USE_KERNEL_LOG_BUFFER`, kernel variant `bench=entries`).
pub const KERNEL_ENTRY_LOG: bool = cfg!(sel4_config = "BENCHMARK_USE_KERNEL_LOG_BUFFER");

/// `seL4_BenchmarkResetLog`: restart kernel-entry logging at the buffer's start (and
/// utilisation tracking, where configured). Fails with `IllegalOperation` when no log
/// buffer was set, and without entering the kernel when it has no benchmark support.
pub fn benchmark_reset_log() -> Result<(), crate::Error> {
    #[cfg(sel4_config = "ENABLE_BENCHMARKS")]
    let result = status(raw(sysno::BENCHMARK_RESET_LOG, 0, 0, &mut [0; 4]).0);
    #[cfg(not(sel4_config = "ENABLE_BENCHMARKS"))]
    let result = Err(crate::Error::IllegalOperation);
    result
}

/// `seL4_BenchmarkFinalizeLog`: the number of entries logged since the last reset (the
/// kernel keeps appending after this, until the buffer is full). 0 on a kernel without
/// the log buffer; `IllegalOperation`, without entering the kernel, on one without
/// benchmark support.
pub fn benchmark_finalize_log() -> Result<Word, crate::Error> {
    #[cfg(sel4_config = "ENABLE_BENCHMARKS")]
    let result = Ok(raw(sysno::BENCHMARK_FINALIZE_LOG, 0, 0, &mut [0; 4]).0);
    #[cfg(not(sel4_config = "ENABLE_BENCHMARKS"))]
    let result = Err(crate::Error::IllegalOperation);
    result
}

/// `seL4_BenchmarkSetLogBuffer`: give the kernel a 2 MiB frame to log its entries into.
/// Fails with `IllegalOperation` for a capability that is not a 2 MiB frame, and without
/// entering the kernel when it has no log buffer ([`KERNEL_ENTRY_LOG`]: there the
/// syscall would be an unknown-syscall fault).
pub fn benchmark_set_log_buffer(frame: Cap<cap_type::X86LargePage>) -> Result<(), crate::Error> {
    #[cfg(sel4_config = "BENCHMARK_USE_KERNEL_LOG_BUFFER")]
    let result = status(raw(sysno::BENCHMARK_SET_LOG_BUFFER, frame.raw(), 0, &mut [0; 4]).0);
    #[cfg(not(sel4_config = "BENCHMARK_USE_KERNEL_LOG_BUFFER"))]
    let result = {
        let _ = frame;
        Err(crate::Error::IllegalOperation)
    };
    result
}

/// `seL4_BenchmarkNullSyscall`: a syscall that does nothing, to time kernel entry.
#[cfg(sel4_config = "ENABLE_BENCHMARKS")]
pub fn benchmark_null_syscall() {
    raw(sysno::BENCHMARK_NULL_SYSCALL, 0, 0, &mut [0; 4]);
}

/// `seL4_BenchmarkGetThreadUtilisation`: the thread's utilisation lands in the IPC buffer.
#[cfg(sel4_config = "BENCHMARK_TRACK_UTILISATION")]
pub fn benchmark_get_thread_utilisation(tcb: Cap<cap_type::Tcb>) {
    raw(
        sysno::BENCHMARK_GET_THREAD_UTILISATION,
        tcb.raw(),
        0,
        &mut [0; 4],
    );
}

/// Whether the kernel tracks CPU utilisation (`BENCHMARK_TRACK_UTILISATION`).
pub const TRACK_UTILISATION: bool = cfg!(sel4_config = "BENCHMARK_TRACK_UTILISATION");

/// The idle thread's cycles and all cycles of the kernel's last tracking period (from
/// [`benchmark_reset_log`] to [`benchmark_finalize_log`]), as
/// `seL4_BenchmarkGetThreadUtilisation` on `tcb` reports them; `None`, without entering
/// the kernel, when it does not track utilisation ([`TRACK_UTILISATION`]).
pub fn benchmark_idle_and_total(tcb: Cap<cap_type::Tcb>) -> Option<(Word, Word)> {
    #[cfg(sel4_config = "BENCHMARK_TRACK_UTILISATION")]
    let result = {
        benchmark_get_thread_utilisation(tcb);
        // seL4 5.0.0's benchmark_track_util_ipc_index: 0 the thread, 1 idle, 2 total.
        Some((crate::ipc::get_mr(1), crate::ipc::get_mr(2)))
    };
    #[cfg(not(sel4_config = "BENCHMARK_TRACK_UTILISATION"))]
    let result = {
        let _ = tcb;
        None
    };
    result
}

/// `seL4_BenchmarkResetThreadUtilisation`: zero the thread's utilisation counters.
#[cfg(sel4_config = "BENCHMARK_TRACK_UTILISATION")]
pub fn benchmark_reset_thread_utilisation(tcb: Cap<cap_type::Tcb>) {
    raw(
        sysno::BENCHMARK_RESET_THREAD_UTILISATION,
        tcb.raw(),
        0,
        &mut [0; 4],
    );
}
