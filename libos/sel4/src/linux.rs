//! Unmodified Linux programs on seL4: the platform the portable system-call layer
//! (`libos_linux`) runs over, and the way in (docs/LINUX.md).
//!
//! The way in: the loader rewrote every `syscall` into `call *%rax`, which lands in the
//! trampoline page at address 0 and slides into [`tessera_linux_entry`]. The stub takes
//! the return address (what a real `syscall` leaves in `rcx`), moves to a stack of the
//! library OS's own, saves the registers a Linux system call preserves (the argument
//! registers, the flags and the whole FPU/SSE state, which Rust code may use), calls the
//! layer's dispatcher, restores them and returns with the result in `rax`. No kernel entry.
//!
//! The platform: pages come from the component's budget and are mapped read-write (seL4
//! 5.0 maps every x86 page executable; `mprotect` is recorded by the layer but not
//! enforced); the FS base (the program's TLS) is a register only another thread can
//! write on this kernel (`TCB_WriteRegisters`), so a helper thread does it while the
//! program waits in a call to it.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use core::sync::atomic::{AtomicUsize, Ordering};

use libos_linux::{Clock, Errno, Linux, Platform, Prot, Start};
use rt::startinfo::slots;
use sel4::cap_type::{CNode, Tcb, X86Page};
use sel4::{CPtr, Cap, CapRights, MessageInfo, ObjectType, Word};
use vspace::{Pool, VSpace};

const PAGE: u64 = 4096;
/// Bytes of the library OS's own stack, on which system calls run.
const STACK_BYTES: usize = 256 * 1024;

/// The library OS's stack for system calls (one program thread at a time).
#[repr(C, align(16))]
struct Stack([u8; STACK_BYTES]);

#[allow(unsafe_code, reason = "the entry stub's stack, named by symbol")]
#[no_mangle]
static mut TESSERA_LINUX_STACK: Stack = Stack([0; STACK_BYTES]);

/// The running program's system-call layer (a leaked `Box<Linux<P>>`) and the function
/// that dispatches into it, set once by [`run`].
static STATE: AtomicUsize = AtomicUsize::new(0);
static HANDLER: AtomicUsize = AtomicUsize::new(0);

core::arch::global_asm!(
    ".globl tessera_linux_entry",
    "tessera_linux_entry:",
    // The return address, as `syscall` leaves it in rcx; rsp is the program's again.
    "    pop rcx",
    "    mov r11, rsp",
    "    lea rsp, [rip + TESSERA_LINUX_STACK + {size}]",
    "    push r11",
    "    push rcx",
    "    pushfq",
    "    push r9",
    "    push r8",
    "    push r10",
    "    push rdx",
    "    push rsi",
    "    push rdi",
    "    push rax",
    // Eight words pushed: rsp is 16-byte aligned again for fxsave.
    "    sub rsp, 512",
    "    fxsave64 [rsp]",
    "    cld",
    "    mov rdi, rax",
    "    lea rsi, [rsp + 520]",
    "    call {dispatch}",
    "    fxrstor64 [rsp]",
    "    add rsp, 520",
    "    pop rdi",
    "    pop rsi",
    "    pop rdx",
    "    pop r10",
    "    pop r8",
    "    pop r9",
    "    popfq",
    "    pop rcx",
    "    pop r11",
    "    mov rsp, r11",
    "    jmp rcx",
    size = const STACK_BYTES,
    dispatch = sym dispatch,
);

extern "C" {
    /// The entry stub above; its address goes into the trampoline page.
    fn tessera_linux_entry();
}

/// Called by the stub: system call `number` with its six arguments (rdi, rsi, rdx, r10,
/// r8, r9 in memory, in that order).
#[allow(
    unsafe_code,
    reason = "the arguments the stub saved, and the layer run set up"
)]
extern "C" fn dispatch(number: u64, args: *const [u64; 6]) -> i64 {
    // SAFETY: the stub passes the address of the six words it just pushed.
    let args = unsafe { *args };
    let handler = HANDLER.load(Ordering::Acquire);
    if handler == 0 {
        return -i64::from(Errno::ENOSYS.0);
    }
    // SAFETY: HANDLER only ever holds a `fn(usize, u64, [u64; 6]) -> i64` (set in `run`).
    let handler: fn(usize, u64, [u64; 6]) -> i64 = unsafe { core::mem::transmute(handler) };
    handler(STATE.load(Ordering::Acquire), number, args)
}

/// Dispatches into the leaked `Linux<P>` at `state`.
#[allow(unsafe_code, reason = "the layer run leaked, used by its one thread")]
fn dispatch_into<P: Platform>(state: usize, number: u64, args: [u64; 6]) -> i64 {
    // SAFETY: `state` is the `Box<Linux<P>>` that `run` leaked for this `P`; only the
    // program's thread calls in, one call at a time.
    let linux = unsafe { &mut *(state as *mut Linux<P>) };
    linux.syscall(number, args)
}

/// Makes `linux` the layer that system calls through the trampoline reach (for good: it
/// is leaked, as the program runs until the component ends).
pub fn install<P: Platform + 'static>(linux: Linux<P>) {
    let state = Box::into_raw(Box::new(linux)) as usize;
    STATE.store(state, Ordering::Release);
    HANDLER.store(
        dispatch_into::<P> as fn(usize, u64, [u64; 6]) -> i64 as usize,
        Ordering::Release,
    );
}

/// Times `samples.len()` rewritten null system calls (`getpid`: `mov $39, %eax; call
/// *%rax` through the trampoline, the stub and the layer [`install`]ed), one TSC reading
/// pair each, into `samples` (cycles).
#[allow(
    unsafe_code,
    reason = "a call through the trampoline, as a rewritten program makes"
)]
pub fn time_null_syscalls(samples: &mut [u64]) {
    for sample in samples {
        let start = rt::rdtsc();
        // SAFETY: page 0 holds the trampoline (Sel4Platform::new) and a layer is installed;
        // the stub preserves every register but rax, rcx and r11, which are declared.
        unsafe {
            core::arch::asm!(
                "mov eax, 39",
                "call rax",
                out("rax") _,
                out("rcx") _,
                out("r11") _,
            )
        };
        *sample = rt::rdtsc().saturating_sub(start);
    }
}

/// Starts the program `linux` loaded (`start` from `Linux::exec`) on this thread: its
/// system calls come back into `linux` through the trampoline. Never returns: the program
/// ends the component with `exit_group`.
pub fn run<P: Platform + 'static>(linux: Linux<P>, start: Start) -> ! {
    install(linux);
    enter(start)
}

/// Jumps to the program [`install`]ed at `start`.
#[allow(unsafe_code, reason = "jumps to the loaded program")]
pub fn enter(start: Start) -> ! {
    // SAFETY: `start` is where `Linux::exec` put the program and its initial stack; the
    // ELF ABI wants rdx (a function for atexit) zero.
    unsafe {
        core::arch::asm!(
            "mov rsp, {sp}",
            "xor edx, edx",
            "xor ebp, ebp",
            "jmp {ip}",
            sp = in(reg) start.rsp,
            ip = in(reg) start.rip,
            options(noreturn)
        )
    }
}

/// The FS-base helper: a thread that writes the program thread's `TLS_BASE` register
/// while the program waits in a call to it (seL4 5.0 has no call to set one's own).
struct FsHelper {
    endpoint: CPtr,
}

/// The program thread whose FS base the helper sets (its TCB: slot 1).
extern "C" fn fs_helper(endpoint: usize, ipc_buffer: Word) -> ! {
    sel4::ipc::set_user_data(ipc_buffer);
    let program = Cap::<Tcb>::from_raw(slots::TCB);
    let mut mrs = [0; 4];
    let (mut _info, mut _badge) = sel4::syscall::recv_with_mrs(endpoint as CPtr, &mut mrs);
    loop {
        let base = mrs[0];
        let ok = match program.tcb_read_registers(false, 0, 19) {
            Ok(mut regs) => {
                // The program waits in its call: FaultIP is the `syscall` instruction, and
                // a write makes NextIP = FaultIP, so move it past the instruction.
                regs.rip += 2;
                regs.tls_base = base;
                program.tcb_write_registers(false, 0, 19, &regs).is_ok()
            }
            Err(_) => false,
        };
        mrs = [Word::from(ok), 0, 0, 0];
        (_info, _badge) = sel4::syscall::reply_recv_with_mrs(
            endpoint as CPtr,
            MessageInfo::new(0, 0, 0, 1),
            &mut mrs,
        );
    }
}

/// The platform under `libos_linux` for a program in this component.
pub struct Sel4Platform<F: FnMut(u8) -> Option<CPtr>> {
    pool: Pool<F>,
    vspace: VSpace,
    /// The frame mapped at each program page.
    frames: BTreeMap<u64, CPtr>,
    tsc_mhz: u64,
    fs: FsHelper,
    seed: u64,
}

/// Why the platform could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupError {
    /// The trampoline page could not be mapped.
    Trampoline,
    /// The FS-base helper could not be started.
    Helper(crate::thread::StartError),
}

impl<F: FnMut(u8) -> Option<CPtr>> Sel4Platform<F> {
    /// Maps the trampoline page at address 0 and starts the FS-base helper thread at
    /// `priority` (the component's own; its stack: `helper_stack`). Memory comes from
    /// `pool`.
    #[allow(unsafe_code, reason = "writes the trampoline page it just mapped")]
    pub fn new(
        mut pool: Pool<F>,
        mut vspace: VSpace,
        tsc_mhz: u64,
        priority: u8,
        helper_stack: &'static mut [u8],
    ) -> Result<Self, SetupError> {
        let frame = pool
            .object(ObjectType::X86Page, 0)
            .map_err(|_| SetupError::Trampoline)?;
        vspace
            .map_at(
                &mut pool,
                0,
                &[frame],
                CapRights::read_write(),
                sel4::consts::X86_DEFAULT_VM_ATTRIBUTES,
            )
            .map_err(|_| SetupError::Trampoline)?;
        let page = libos_linux::trampoline::page(tessera_linux_entry as *const () as usize as u64);
        write_at(0, &page);
        let endpoint = pool
            .object(ObjectType::Endpoint, 0)
            .map_err(|e| SetupError::Helper(e.into()))?;
        let top = helper_stack.as_ptr() as Word + helper_stack.len() as Word;
        crate::thread::spawn(
            &mut pool,
            &mut vspace,
            priority,
            "linux-fs-base",
            fs_helper,
            endpoint as usize,
            top,
        )
        .map_err(SetupError::Helper)?;
        Ok(Sel4Platform {
            pool,
            vspace,
            frames: BTreeMap::new(),
            tsc_mhz: tsc_mhz.max(1),
            fs: FsHelper { endpoint },
            seed: rt::rdtsc() | 1,
        })
    }

    fn drop_page(&mut self, page: u64) {
        if let Some(frame) = self.frames.remove(&page) {
            let _ = Cap::<X86Page>::from_raw(frame).x86_page_unmap();
            let _ = Cap::<CNode>::from_raw(slots::CNODE).cnode_delete(frame, 64);
        }
    }
}

/// Copies `bytes` to address `addr` of this address space (with `rep movsb`: address 0,
/// the trampoline page, is a valid address here but a null pointer to Rust).
#[allow(unsafe_code, reason = "the program's memory is this component's")]
fn write_at(addr: u64, bytes: &[u8]) {
    // SAFETY: the layer checked `[addr, addr + len)` against its map of the program's
    // pages, which this platform mapped read-write (page 0: mapped in `new`); the two
    // ranges do not overlap (the source is the layer's own buffer).
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rdi") addr => _,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(nostack, preserves_flags)
        )
    }
}

impl<F: FnMut(u8) -> Option<CPtr>> Platform for Sel4Platform<F> {
    fn map(&mut self, addr: u64, len: u64, _prot: Prot) -> Result<(), Errno> {
        let mut page = addr & !(PAGE - 1);
        while page < addr + len {
            self.drop_page(page);
            let frame = self
                .pool
                .object(ObjectType::X86Page, 0)
                .map_err(|_| Errno::ENOMEM)?;
            self.vspace
                .map_at(
                    &mut self.pool,
                    page,
                    &[frame],
                    CapRights::read_write(),
                    sel4::consts::X86_DEFAULT_VM_ATTRIBUTES,
                )
                .map_err(|_| Errno::ENOMEM)?;
            self.frames.insert(page, frame);
            page += PAGE;
        }
        Ok(())
    }

    fn unmap(&mut self, addr: u64, len: u64) {
        let mut page = addr & !(PAGE - 1);
        while page < addr + len {
            self.drop_page(page);
            page += PAGE;
        }
    }

    fn protect(&mut self, _addr: u64, _len: u64, _prot: Prot) -> Result<(), Errno> {
        Ok(())
    }

    #[allow(unsafe_code, reason = "the program's memory is this component's")]
    fn read(&self, addr: u64, into: &mut [u8]) {
        // SAFETY: as in `write_at`: a range the layer checked is mapped.
        unsafe {
            core::arch::asm!(
                "rep movsb",
                inout("rdi") into.as_mut_ptr() => _,
                inout("rsi") addr => _,
                inout("rcx") into.len() => _,
                options(nostack, preserves_flags)
            )
        }
    }

    fn write(&mut self, addr: u64, bytes: &[u8]) {
        write_at(addr, bytes);
    }

    fn set_fs_base(&mut self, base: u64) {
        let mut mrs = [base, 0, 0, 0];
        let _ =
            sel4::syscall::call_with_mrs(self.fs.endpoint, MessageInfo::new(0, 0, 0, 1), &mut mrs);
    }

    fn clock_ns(&self, _clock: Clock) -> u64 {
        (u128::from(rt::rdtsc()) * 1000 / u128::from(self.tsc_mhz)) as u64
    }

    fn sleep_ns(&mut self, ns: u64) {
        let until = self.clock_ns(Clock::Monotonic).saturating_add(ns);
        while self.clock_ns(Clock::Monotonic) < until {
            sel4::syscall::yield_now();
        }
    }

    fn random(&mut self, into: &mut [u8]) {
        // Not cryptographic: xorshift64* seeded from the TSC (QEMU's CPU model has no
        // RDRAND).
        for b in into {
            self.seed ^= self.seed >> 12;
            self.seed ^= self.seed << 25;
            self.seed ^= self.seed >> 27;
            *b = (self.seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
        }
    }

    fn console(&mut self, _stream: libos_linux::fs::Stream, bytes: &[u8]) {
        rt::print!("{}", alloc::string::String::from_utf8_lossy(bytes));
    }

    fn report(&mut self, line: &str) {
        rt::println!("{line}");
    }

    fn exit(&mut self, status: i32) {
        rt::exit(status as u32)
    }
}
