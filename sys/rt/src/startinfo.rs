//! What a component finds when it starts: the start-up protocol between the
//! loader (root, later proc) and every component other than the root task.
//!
//! The loader maps one [`StartInfo`] page at [`START_INFO_VADDR`] and the thread's
//! IPC buffer at [`IPC_BUFFER_VADDR`], fills the component's CNode with the
//! capabilities its system description grants at the [`slots`] below, and starts
//! the thread with `rdi` = [`START_INFO_VADDR`].

/// Where the start-info page is mapped in every component.
pub const START_INFO_VADDR: u64 = 0x3000_0000;
/// Where the initial thread's IPC buffer is mapped in every component.
pub const IPC_BUFFER_VADDR: u64 = 0x3000_1000;
/// First byte above the loader-managed area; ELF segments must stay below it.
pub const IMAGE_LIMIT: u64 = START_INFO_VADDR;
/// Where the component's data blob (if any) is mapped, read-only: a boot image
/// (`bootimage` format) with what its role needs (the system description, ...).
pub const DATA_VADDR: u64 = 0x3100_0000;
/// Largest data blob.
pub const DATA_MAX: u64 = 0x0f00_0000;
/// Where the component's heap is mapped (writable, zeroed; [`StartInfo::heap_len`] bytes,
/// taken from its budget). Far above the image, the data blob and the window that
/// `sys/vspace` maps run-time frames in (`0x4000_0000..0x7000_0000`), and apart from
/// proc's scratch page (`0x10_0000_0000`).
pub const HEAP_VADDR: u64 = 0x20_0000_0000;
/// Largest heap.
pub const HEAP_MAX: u64 = 0x40_0000_0000;
/// The first byte above the initial thread's stack ([`StartInfo::stack_len`] bytes below it,
/// taken from its budget). The page below the stack stays unmapped, so an overflow is a VM
/// fault there, not a write into something else.
pub const STACK_TOP: u64 = 0x80_0000_0000;
/// Largest stack.
pub const STACK_MAX: u64 = 0x10_0000_0000;
/// log2 of the slot count of every component's CNode.
pub const CNODE_SIZE_BITS: u64 = 12;
/// `StartInfo::magic`.
pub const START_MAGIC: u64 = 0x5445_5353_5354_5254; // "TRTSSSET" little-endian-ish tag
/// Bytes of `key=value` lines a component's arguments may take.
pub const ARGS_LEN: usize = 1024;
/// Longest component name.
pub const NAME_LEN: usize = 32;

/// Well-known slots of a component's CNode. Slots from [`slots::FIRST_FREE`] on
/// are the component's own to allocate.
pub mod slots {
    /// The component's initial thread.
    pub const TCB: u64 = 1;
    /// The component's own CNode (with the guard that makes 64-bit addresses resolve).
    pub const CNODE: u64 = 2;
    /// The component's address space (PML4).
    pub const VSPACE: u64 = 3;
    /// The endpoint the kernel sends this component's faults to (badged with its id).
    pub const FAULT: u64 = 4;
    /// A badged endpoint to the naming service (every component may look up).
    pub const NAMING: u64 = 5;
    /// The endpoint this component serves, if it provides a service.
    pub const SERVICE: u64 = 6;
    /// A notification for this component's own use (interrupts, wake-ups).
    pub const NOTIFICATION: u64 = 7;
    /// First slot of role-specific grants (what a fundamental service needs).
    pub const GRANTS: u64 = 8;
    /// Where a restartable server keeps the reply capability of the call it is serving
    /// (`proto::sel4_transport::Reply::Saved`), so that `proc` can answer the caller when
    /// the server dies. Empty at start: components `proc` starts have no role grants, and
    /// the fundamental services (whose grants may reach this far) never use it. (The slot
    /// after it, `FIRST_FREE - 1`, is where servers usually receive capabilities.)
    pub const CALLER: u64 = FIRST_FREE - 2;
    /// The first slot the component allocates itself.
    pub const FIRST_FREE: u64 = 64;
}

/// The badge bit `proc` signals a component's [`slots::NOTIFICATION`] with when a service
/// the component routes to has been restarted (a new instance is starting): what it held
/// from the old instance (sessions, shared-memory links, capabilities) is gone, and it may
/// attach again. Other bits of that notification are the component's own.
pub const SERVICE_RESTARTED_BADGE: u64 = 1 << 20;

/// How a component that a loader started tells its fault handler (`proc`) that it ends:
/// it raises an unknown system call with one of these numbers and the status in `rdi`, so
/// the report travels the same way as every other fault (and needs neither heap, nor IPC
/// buffer contents, nor a route), and the thread is stopped by the kernel at once.
pub mod ending {
    /// The component ended by itself (`rt::exit`); `rdi` holds the status.
    pub const EXIT: i64 = 0x7e55_e0e0;
    /// The component panicked (an allocation failure included); `rdi` holds the status.
    pub const PANIC: i64 = 0x7e55_e0e1;

    /// How a component said it ends.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Said {
        /// [`EXIT`] with this status.
        Exit(u32),
        /// [`PANIC`] with this status.
        Panic(u32),
    }

    /// Reads a fault message (`label`, `words`) for one of the two ends above: `None` for
    /// any other fault, another syscall number, or a message too short to hold the layout.
    pub fn decode(label: u64, words: &[u64]) -> Option<Said> {
        use sel4::fault::unknown_syscall as u;
        if sel4::FaultTag::from_word(label) != Some(sel4::FaultTag::UnknownSyscall)
            || words.len() < u::LENGTH
        {
            return None;
        }
        let status = u32::try_from(words[u::RDI]).unwrap_or(u32::MAX);
        match words[u::SYSCALL] as i64 {
            EXIT => Some(Said::Exit(status)),
            PANIC => Some(Said::Panic(status)),
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use sel4::fault::unknown_syscall as u;

        fn message(number: i64, rdi: u64) -> [u64; u::LENGTH] {
            let mut w = [0; u::LENGTH];
            w[u::SYSCALL] = number as u64;
            w[u::RDI] = rdi;
            w
        }

        #[test]
        fn ends_are_read_from_unknown_syscall_faults_only() {
            let label = sel4::FaultTag::UnknownSyscall as u64;
            assert_eq!(decode(label, &message(EXIT, 3)), Some(Said::Exit(3)));
            assert_eq!(decode(label, &message(PANIC, 2)), Some(Said::Panic(2)));
            assert_eq!(
                decode(label, &message(EXIT, u64::MAX)),
                Some(Said::Exit(u32::MAX))
            );
            assert_eq!(decode(label, &message(-9, 0)), None);
            assert_eq!(decode(label, &message(EXIT, 0)[..5]), None);
            assert_eq!(
                decode(sel4::FaultTag::VmFault as u64, &message(EXIT, 0)),
                None
            );
        }
    }
}

/// The start-info page's contents.
#[repr(C)]
#[derive(Clone)]
pub struct StartInfo {
    /// [`START_MAGIC`], so a component can tell it was started by our loader.
    pub magic: u64,
    /// The component's id (its index in the system description).
    pub id: u64,
    /// How many times it was (re)started before; 0 on the first start.
    pub generation: u64,
    /// The initial thread's scheduling priority.
    pub priority: u64,
    /// Its maximum controlled priority: the highest priority it may give its own
    /// threads (the loader sets it to `priority` for non-fundamental components).
    pub mcp: u64,
    /// Bytes used in `name`.
    pub name_len: u64,
    /// The component's name.
    pub name: [u8; NAME_LEN],
    /// Number of role-specific grants at [`slots::GRANTS`] onwards.
    pub grants: u64,
    /// Bytes of the data blob at [`DATA_VADDR`] (0: none).
    pub data_len: u64,
    /// Bytes used in `args`.
    pub args_len: u64,
    /// The component's arguments as `key=value` lines.
    pub args: [u8; ARGS_LEN],
    /// Bytes of heap mapped at [`HEAP_VADDR`] (0: none; the component's own static heap).
    pub heap_len: u64,
    /// Bytes of stack mapped below [`STACK_TOP`], where the thread's `rsp` starts (0: none;
    /// the component's own static stack).
    pub stack_len: u64,
    /// The TSC's frequency in MHz as the kernel measured it at boot (its boot info's
    /// `arch_info`); 0 if unknown. Lets a component without a timer device keep time.
    pub tsc_mhz: u64,
}

impl StartInfo {
    /// An empty start-info for component `id` named `name` (truncated to [`NAME_LEN`]).
    pub fn new(id: u64, generation: u64, name: &str) -> StartInfo {
        let mut s = StartInfo {
            magic: START_MAGIC,
            id,
            generation,
            priority: 0,
            mcp: 0,
            name_len: 0,
            name: [0; NAME_LEN],
            grants: 0,
            data_len: 0,
            args_len: 0,
            args: [0; ARGS_LEN],
            heap_len: 0,
            stack_len: 0,
            tsc_mhz: 0,
        };
        let n = name.len().min(NAME_LEN);
        s.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        s.name_len = n as u64;
        s
    }

    /// Appends one `key=value` argument; false when it does not fit.
    pub fn push_arg(&mut self, key: &str, value: &str) -> bool {
        let line_len = key.len() + 1 + value.len() + 1;
        let at = self.args_len as usize;
        if at + line_len > ARGS_LEN || key.contains(['=', '\n']) || value.contains('\n') {
            return false;
        }
        let line = &mut self.args[at..at + line_len];
        line[..key.len()].copy_from_slice(key.as_bytes());
        line[key.len()] = b'=';
        line[key.len() + 1..line_len - 1].copy_from_slice(value.as_bytes());
        line[line_len - 1] = b'\n';
        self.args_len += line_len as u64;
        true
    }

    /// The component's name ("?" if the loader wrote something that is not UTF-8).
    pub fn name(&self) -> &str {
        let n = (self.name_len as usize).min(NAME_LEN);
        core::str::from_utf8(&self.name[..n]).unwrap_or("?")
    }

    /// The value of argument `key`.
    pub fn arg(&self, key: &str) -> Option<&str> {
        let n = (self.args_len as usize).min(ARGS_LEN);
        let text = core::str::from_utf8(&self.args[..n]).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }

    /// The start info the loader mapped for this component, checked.
    ///
    /// # Safety
    /// `addr` must be the start-up argument a loader-started component received
    /// (so [`START_INFO_VADDR`], mapped read-only for the component's life).
    pub unsafe fn from_start_arg(addr: usize) -> Option<&'static StartInfo> {
        if addr as u64 != START_INFO_VADDR {
            return None;
        }
        // SAFETY: per the caller's contract the page is mapped and holds a StartInfo.
        let info = unsafe { &*(addr as *const StartInfo) };
        (info.magic == START_MAGIC).then_some(info)
    }

    /// The heap the loader mapped at [`HEAP_VADDR`], if any.
    pub fn heap(&self) -> Option<(*mut u8, usize)> {
        (self.magic == START_MAGIC && self.heap_len > 0 && self.heap_len <= HEAP_MAX)
            .then_some((HEAP_VADDR as *mut u8, self.heap_len as usize))
    }

    /// The data blob the loader mapped at [`DATA_VADDR`] (empty when there is none).
    pub fn data(&self) -> &'static [u8] {
        if self.data_len == 0 || self.data_len > DATA_MAX || self.magic != START_MAGIC {
            return &[];
        }
        // SAFETY: a StartInfo with the right magic only exists in a loader-started
        // component (from_start_arg), whose loader mapped `data_len` bytes (at most
        // DATA_MAX) read-only at DATA_VADDR for the component's whole life.
        unsafe { core::slice::from_raw_parts(DATA_VADDR as *const u8, self.data_len as usize) }
    }

    /// The page's bytes, as the loader writes them.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: StartInfo is repr(C), made of integers and byte arrays with no
        // padding (every field is 8-byte sized or a multiple of 8), so all of its
        // bytes are initialised.
        unsafe {
            core::slice::from_raw_parts(
                self as *const StartInfo as *const u8,
                core::mem::size_of::<StartInfo>(),
            )
        }
    }
}

const _: () = assert!(core::mem::size_of::<StartInfo>() <= 4096);
const _: () = assert!(HEAP_VADDR + HEAP_MAX <= STACK_TOP - STACK_MAX - 4096);
const _: () = assert!(core::mem::size_of::<StartInfo>().is_multiple_of(8));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arguments() {
        let mut s = StartInfo::new(3, 1, "hello");
        assert_eq!(s.name(), "hello");
        assert!(s.push_arg("greeting", "hi there"));
        assert!(s.push_arg("n", "5"));
        assert!(!s.push_arg("bad=key", "x"));
        assert!(!s.push_arg("k", "two\nlines"));
        assert_eq!(s.arg("greeting"), Some("hi there"));
        assert_eq!(s.arg("n"), Some("5"));
        assert_eq!(s.arg("g"), None);
        let long = "x".repeat(ARGS_LEN);
        assert!(!s.push_arg("big", &long));
        assert_eq!(s.as_bytes().len(), core::mem::size_of::<StartInfo>());
        assert_eq!(StartInfo::new(0, 0, &"n".repeat(40)).name().len(), NAME_LEN);
    }
}
