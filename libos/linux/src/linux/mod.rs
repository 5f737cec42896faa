//! The Linux system-call layer for one program: its state (files, address-space map,
//! signal dispositions, limits, identity), loading it ([`Linux::exec`]) and the
//! dispatcher ([`Linux::syscall`]) from Linux x86_64 numbers to handlers.

mod files;
mod mm;
mod process;
mod wait;

use crate::errno::{Errno, SysResult};
use crate::fs::{Entry, Files, Tree, PATH_MAX};
use crate::image::{ExecPlan, Image, Prot, PAGE};
use crate::memory::{page_round, Access, AddressSpace, Use};
use crate::rewrite::ElfSites;
use crate::stack::{self, Identity};
use crate::{sysno, trace, Platform};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Where things go in the program's address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Load address of a position-independent program.
    pub program_base: u64,
    /// Load address of the interpreter.
    pub interpreter_base: u64,
    /// Lowest address `mmap` picks by itself.
    pub mmap_low: u64,
    /// `mmap` picks addresses below this, highest first.
    pub mmap_high: u64,
    /// First address past the initial stack.
    pub stack_top: u64,
    /// Bytes of initial stack (mapped at once, from the budget).
    pub stack_len: u64,
}

impl Default for Layout {
    /// Addresses clear of a Tessera component's own (image at 4 MiB, heap at 128 GiB,
    /// stack below 512 GiB): the program above 1 TiB, like Linux's PIE layout but lower.
    fn default() -> Self {
        Layout {
            program_base: 0x0000_5555_5555_4000,
            interpreter_base: 0x0000_7fff_f7f0_0000,
            mmap_low: 0x0000_0100_0000_0000,
            mmap_high: 0x0000_7fff_f000_0000,
            stack_top: 0x0000_7fff_ffff_0000,
            stack_len: 256 << 10,
        }
    }
}

/// How the layer is set up for one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Print every call with its result (strace-style) through [`Platform::report`].
    pub trace: bool,
    /// Bytes of memory the program may have mapped (image, stack, heap, mappings).
    pub budget: u64,
    /// Bytes `/tmp` may hold.
    pub tmp_budget: usize,
    /// Process (and thread) id the program sees.
    pub pid: u32,
    /// User and group id the program sees.
    pub uid: u32,
    /// Host name (`uname`).
    pub nodename: String,
    /// Address-space layout.
    pub layout: Layout,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            trace: false,
            budget: 64 << 20,
            tmp_budget: 4 << 20,
            pid: 1,
            uid: 0,
            nodename: String::from("tessera"),
            layout: Layout::default(),
        }
    }
}

/// Where the program starts: the first instruction and the initial stack pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// The interpreter's entry, or the program's without one.
    pub rip: u64,
    /// The initial stack pointer (at `argc`, 16-byte aligned).
    pub rsp: u64,
    /// `syscall` instructions rewritten while loading.
    pub rewritten: usize,
}

/// A refusal to load: the file and the reason, printable as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file refused.
    pub path: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "linux: cannot exec {}: {}", self.path, self.reason)
    }
}

/// A signal's recorded disposition (the kernel's `struct sigaction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigAction {
    /// Handler address, or 0 (`SIG_DFL`) / 1 (`SIG_IGN`).
    pub handler: u64,
    /// `SA_*` flags.
    pub flags: u64,
    /// The restorer (`SA_RESTORER`).
    pub restorer: u64,
    /// Signals blocked while the handler runs.
    pub mask: u64,
}

/// The system-call layer of one program.
pub struct Linux<P: Platform> {
    /// The platform under the layer.
    pub platform: P,
    /// Files and descriptors.
    pub files: Files,
    /// The address-space map.
    pub memory: AddressSpace,
    config: Config,
    actions: [SigAction; 64],
    mask: u64,
    tid_address: u64,
    fs_base: u64,
    limits: [(u64, u64); 16],
    reported: BTreeSet<u64>,
    exited: Option<i32>,
    sites: BTreeMap<String, ElfSites>,
    /// The thread's name (`prctl(PR_SET_NAME)`), NUL-padded.
    name: [u8; 16],
}

/// The initial thread name: the program file's name, at most 15 bytes (as Linux's
/// `comm`).
fn thread_name(exe: &str) -> [u8; 16] {
    let base = exe.rsplit('/').next().unwrap_or(exe).as_bytes();
    let mut name = [0u8; 16];
    let n = base.len().min(15);
    name[..n].copy_from_slice(&base[..n]);
    name
}

/// A handler: the program's arguments in, a value or an errno out.
type Handler<P> = fn(&mut Linux<P>, &[u64; 6]) -> SysResult;

/// The dispatch table: the handler of Linux x86_64 system call `number`, if supported.
fn handler<P: Platform>(number: u64) -> Option<Handler<P>> {
    use sysno::*;
    let h: Handler<P> = match number {
        READ => Linux::sys_read,
        WRITE => Linux::sys_write,
        OPEN => Linux::sys_open,
        CLOSE => Linux::sys_close,
        STAT => Linux::sys_stat,
        FSTAT => Linux::sys_fstat,
        LSTAT => Linux::sys_lstat,
        LSEEK => Linux::sys_lseek,
        MMAP => Linux::sys_mmap,
        MPROTECT => Linux::sys_mprotect,
        MUNMAP => Linux::sys_munmap,
        BRK => Linux::sys_brk,
        RT_SIGACTION => Linux::sys_rt_sigaction,
        RT_SIGPROCMASK => Linux::sys_rt_sigprocmask,
        IOCTL => Linux::sys_ioctl,
        PREAD64 => Linux::sys_pread64,
        PWRITE64 => Linux::sys_pwrite64,
        READV => Linux::sys_readv,
        WRITEV => Linux::sys_writev,
        ACCESS => Linux::sys_access,
        SCHED_YIELD => Linux::sys_sched_yield,
        MADVISE => Linux::sys_madvise,
        DUP => Linux::sys_dup,
        DUP2 => Linux::sys_dup2,
        NANOSLEEP => Linux::sys_nanosleep,
        GETPID | GETTID => Linux::sys_getpid,
        EXIT | EXIT_GROUP => Linux::sys_exit_group,
        UNAME => Linux::sys_uname,
        FCNTL => Linux::sys_fcntl,
        FTRUNCATE => Linux::sys_ftruncate,
        GETCWD => Linux::sys_getcwd,
        UNLINK => Linux::sys_unlink,
        READLINK => Linux::sys_readlink,
        GETTIMEOFDAY => Linux::sys_gettimeofday,
        GETRLIMIT => Linux::sys_getrlimit,
        GETRUSAGE => Linux::sys_getrusage,
        PRCTL => Linux::sys_prctl,
        POLL => Linux::sys_poll,
        PPOLL => Linux::sys_ppoll,
        SELECT => Linux::sys_select,
        PSELECT6 => Linux::sys_pselect6,
        GETUID | GETEUID | GETGID | GETEGID => Linux::sys_getuid,
        GETPPID => Linux::sys_getppid,
        ARCH_PRCTL => Linux::sys_arch_prctl,
        TIME => Linux::sys_time,
        GETDENTS64 => Linux::sys_getdents64,
        SET_TID_ADDRESS => Linux::sys_set_tid_address,
        CLOCK_GETTIME => Linux::sys_clock_gettime,
        CLOCK_GETRES => Linux::sys_clock_getres,
        CLOCK_NANOSLEEP => Linux::sys_clock_nanosleep,
        OPENAT => Linux::sys_openat,
        NEWFSTATAT => Linux::sys_newfstatat,
        UNLINKAT => Linux::sys_unlinkat,
        READLINKAT => Linux::sys_readlinkat,
        FACCESSAT | FACCESSAT2 => Linux::sys_faccessat,
        DUP3 => Linux::sys_dup3,
        PRLIMIT64 => Linux::sys_prlimit64,
        GETRANDOM => Linux::sys_getrandom,
        _ => return None,
    };
    Some(h)
}

/// Whether the layer handles system call `number` (else it answers `ENOSYS`).
pub fn supported(number: u64) -> bool {
    handler::<NoPlatform>(number).is_some()
}

/// Only for [`supported`]: a platform type to instantiate the table with.
struct NoPlatform;

impl Platform for NoPlatform {
    fn map(&mut self, _: u64, _: u64, _: Prot) -> Result<(), Errno> {
        Err(Errno::ENOMEM)
    }
    fn unmap(&mut self, _: u64, _: u64) {}
    fn protect(&mut self, _: u64, _: u64, _: Prot) -> Result<(), Errno> {
        Err(Errno::ENOMEM)
    }
    fn read(&self, _: u64, _: &mut [u8]) {}
    fn write(&mut self, _: u64, _: &[u8]) {}
    fn set_fs_base(&mut self, _: u64) {}
    fn clock_ns(&self, _: crate::Clock) -> u64 {
        0
    }
    fn sleep_ns(&mut self, _: u64) {}
    fn random(&mut self, _: &mut [u8]) {}
    fn console(&mut self, _: crate::fs::Stream, _: &[u8]) {}
    fn report(&mut self, _: &str) {}
    fn exit(&mut self, _: i32) {}
}

impl<P: Platform> Linux<P> {
    /// The layer for a program whose files are `tree` (the program at `exe`), before it
    /// is loaded.
    pub fn new(platform: P, tree: Tree, exe: &str, config: Config) -> Linux<P> {
        let layout = config.layout;
        let infinity = u64::MAX;
        let mut limits = [(infinity, infinity); 16];
        limits[3] = (layout.stack_len, infinity); // RLIMIT_STACK
        limits[4] = (0, infinity); // RLIMIT_CORE
        limits[7] = (crate::fs::MAX_FDS as u64, crate::fs::MAX_FDS as u64); // RLIMIT_NOFILE
        limits[9] = (config.budget, config.budget); // RLIMIT_AS
        Linux {
            platform,
            files: Files::new(tree, exe, config.tmp_budget),
            memory: AddressSpace::new(config.budget, layout.mmap_low, layout.mmap_high),
            config,
            actions: [SigAction::default(); 64],
            mask: 0,
            tid_address: 0,
            fs_base: 0,
            limits,
            reported: BTreeSet::new(),
            exited: None,
            sites: BTreeMap::new(),
            name: thread_name(exe),
        }
    }

    /// The exit status, once the program called `exit_group` (or `exit`).
    pub fn exited(&self) -> Option<i32> {
        self.exited
    }

    /// The FS base the program last set (`arch_prctl`).
    pub fn fs_base(&self) -> u64 {
        self.fs_base
    }

    /// The recorded disposition of signal `signal` (1..=64).
    pub fn sigaction(&self, signal: usize) -> Option<SigAction> {
        signal
            .checked_sub(1)
            .and_then(|i| self.actions.get(i))
            .copied()
    }

    /// The blocked-signal mask.
    pub fn sigmask(&self) -> u64 {
        self.mask
    }

    /// The numbers answered with `ENOSYS` so far.
    pub fn unsupported(&self) -> impl Iterator<Item = u64> + '_ {
        self.reported.iter().copied()
    }

    /// Runs system call `number` with `args` and returns what `rax` gets: the result, or
    /// `-errno`. An unsupported number gets `-ENOSYS` and one report line per number;
    /// with `trace` on, every call is reported.
    pub fn syscall(&mut self, number: u64, args: [u64; 6]) -> i64 {
        let result = match handler::<P>(number) {
            Some(h) => h(self, &args),
            None => {
                if self.reported.insert(number) {
                    let name = sysno::name(number).unwrap_or("?");
                    let line = format!("linux: unsupported syscall {number} ({name}): ENOSYS");
                    self.platform.report(&line);
                }
                Err(Errno::ENOSYS)
            }
        };
        if self.config.trace {
            let path = trace::path_argument(number).and_then(|i| self.read_path(args[i]).ok());
            let line = trace::line(number, &args, path.as_deref(), &result);
            self.platform.report(&line);
        }
        match result {
            Ok(value) => value as i64,
            Err(e) => -(e.0 as i64),
        }
    }

    /// Copies `len` bytes of the program's memory at `addr`; `EFAULT` unless all of it
    /// is mapped readable.
    pub fn read_user(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        self.memory.check(addr, len as u64, Access::Read)?;
        let mut bytes = vec![0u8; len];
        self.platform.read(addr, &mut bytes);
        Ok(bytes)
    }

    /// Copies `bytes` into the program's memory at `addr`; `EFAULT` unless all of it is
    /// mapped writable.
    pub fn write_user(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.memory.check(addr, bytes.len() as u64, Access::Write)?;
        self.platform.write(addr, bytes);
        Ok(())
    }

    fn read_u64(&self, addr: u64) -> Result<u64, Errno> {
        let b = self.read_user(addr, 8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    /// Reads a NUL-terminated path from the program's memory: `EFAULT` for unmapped
    /// memory, `ENAMETOOLONG` past [`PATH_MAX`], `ENOENT` for bytes that are not UTF-8
    /// (no such name exists in the tree).
    pub fn read_path(&self, addr: u64) -> Result<String, Errno> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < PATH_MAX {
            let to_page_end = PAGE - at % PAGE;
            let chunk = (to_page_end as usize).min(PATH_MAX - out.len());
            let bytes = self.read_user(at, chunk)?;
            if let Some(end) = bytes.iter().position(|&b| b == 0) {
                out.extend_from_slice(&bytes[..end]);
                return String::from_utf8(out).map_err(|_| Errno::ENOENT);
            }
            out.extend_from_slice(&bytes);
            at = at.checked_add(chunk as u64).ok_or(Errno::EFAULT)?;
        }
        Err(Errno::ENAMETOOLONG)
    }

    /// The `syscall` sites of the tree file at `path` (whole file `bytes`), found once.
    fn sites_of(&mut self, path: &str, bytes: &[u8]) -> Option<&ElfSites> {
        if !self.sites.contains_key(path) {
            let sites = ElfSites::scan(bytes).ok()?;
            self.sites.insert(String::from(path), sites);
        }
        self.sites.get(path)
    }

    /// Maps one image's segments, copying (and rewriting) their bytes; returns the
    /// number of sites rewritten.
    fn load_image(&mut self, path: &str, file: &[u8], image: &Image) -> Result<usize, String> {
        let mut rewritten = 0;
        for segment in &image.segments {
            let (start, end) = segment.pages();
            self.memory
                .insert(start, end - start, segment.prot, Use::Image)
                .map_err(|e| format!("{} mapping its segments", e.text()))?;
            self.platform
                .map(start, end - start, segment.prot)
                .map_err(|e| format!("{} mapping its segments", e.text()))?;
            // As an mmap of the file would: the page's head comes from the file too.
            let head = segment.vaddr - start;
            let Some(offset) = segment.file_offset.checked_sub(head) else {
                return Err(String::from("a segment not congruent with its file offset"));
            };
            let len = (head + segment.file_len) as usize;
            let mut bytes = file[offset as usize..][..len].to_vec();
            if segment.prot.exec() {
                if let Some(sites) = self.sites_of(path, file) {
                    rewritten += sites.apply(&mut bytes, offset);
                }
            }
            self.platform.write(start, &bytes);
        }
        Ok(rewritten)
    }

    /// Loads the tree's program at `path` (as given to [`Linux::new`]) and its
    /// interpreter, builds the initial stack with `argv` and `envp`, reserves the
    /// trampoline page at address 0, and returns where to start.
    ///
    /// A file that is missing, not an x86_64 ELF, truncated or hostile, or a missing
    /// interpreter, gives a [`LoadError`] naming the file and the reason.
    pub fn exec(&mut self, path: &str, argv: &[&str], envp: &[&str]) -> Result<Start, LoadError> {
        let refuse = |path: &str, reason: String| LoadError {
            path: String::from(path),
            reason,
        };
        let program = match self.files.resolve("/", path, true) {
            Ok((_, Some(Entry::Ro(bytes)))) => bytes,
            Ok((_, Some(_))) => return Err(refuse(path, String::from("not a regular file"))),
            Ok((_, None)) => return Err(refuse(path, String::from("no such file"))),
            Err(e) => return Err(refuse(path, String::from(e.text()))),
        };
        let layout = self.config.layout;
        let mut interpreter_file: Option<(String, &'static [u8])> = None;
        let plan = ExecPlan::plan(
            program,
            layout.program_base,
            layout.interpreter_base,
            |name| match self.files.resolve("/", name, true) {
                Ok((_, Some(Entry::Ro(bytes)))) => {
                    interpreter_file = Some((String::from(name), bytes));
                    Some(bytes)
                }
                _ => None,
            },
        );
        let plan = plan.map_err(|e| match &e {
            crate::image::ExecError::Interpreter(name, why) => {
                refuse(name, format!("{why} (the interpreter of {path})"))
            }
            _ => refuse(path, format!("{e}")),
        })?;
        let spans = [Some(&plan.program), plan.interpreter.as_ref()];
        if spans.iter().flatten().any(|image| image.span().0 < PAGE) {
            let why = "needs page 0, which holds the syscall trampoline";
            return Err(refuse(path, String::from(why)));
        }
        let mut rewritten = self
            .load_image(path, program, &plan.program)
            .map_err(|e| refuse(path, e))?;
        if let (Some(image), Some((name, bytes))) = (&plan.interpreter, &interpreter_file) {
            rewritten += self
                .load_image(name, bytes, image)
                .map_err(|e| refuse(name, e))?;
        }
        self.memory.set_brk_start(plan.program.span().1);
        // Page 0: the trampoline, mapped by the platform; reserved here so that no
        // mapping lands on it and no pointer into it is accepted.
        self.memory
            .insert(0, PAGE, Prot(Prot::READ | Prot::EXEC), Use::Trampoline)
            .map_err(|e| refuse(path, String::from(e.text())))?;
        let stack_len = page_round(layout.stack_len).unwrap_or(PAGE).max(PAGE);
        let stack_base = layout.stack_top - stack_len;
        let rw = Prot(Prot::READ | Prot::WRITE);
        self.memory
            .insert(stack_base, stack_len, rw, Use::Stack)
            .map_err(|e| refuse(path, format!("{} mapping the stack", e.text())))?;
        self.platform
            .map(stack_base, stack_len, rw)
            .map_err(|e| refuse(path, format!("{} mapping the stack", e.text())))?;
        let identity = Identity {
            uid: self.config.uid as u64,
            gid: self.config.uid as u64,
            ..Identity::default()
        };
        let aux = stack::auxv(&plan, &identity);
        let mut random = [0u8; 16];
        self.platform.random(&mut random);
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        let envp: Vec<&[u8]> = envp.iter().map(|a| a.as_bytes()).collect();
        let built = stack::build(
            layout.stack_top,
            stack_len / 2,
            &argv,
            &envp,
            path.as_bytes(),
            random,
            &aux,
        )
        .map_err(|e| refuse(path, format!("initial stack: {e:?}")))?;
        self.platform.write(built.rsp, &built.bytes);
        Ok(Start {
            rip: plan.start(),
            rsp: built.rsp,
            rewritten,
        })
    }
}
