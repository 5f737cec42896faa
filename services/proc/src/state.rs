//! The vocabulary of the supervisor: states, outcomes, actions, `ps` rows and fault lines.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use sysdesc::ComponentId;

/// What kind of fault the kernel reported; named as root's fault lines name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A virtual memory fault (an access to an unmapped or protected address).
    VmFault,
    /// A capability fault (an invocation of an empty or wrong slot).
    CapFault,
    /// A system call the kernel does not know.
    UnknownSyscall,
    /// A processor exception (divide error, general protection, ...).
    UserException,
    /// The component panicked (or failed to allocate) and said so
    /// (`rt::startinfo::ending::PANIC`).
    Panic,
    /// A fault label the caller could not decode.
    Unknown(u64),
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::VmFault => f.write_str("VmFault"),
            FaultKind::CapFault => f.write_str("CapFault"),
            FaultKind::UnknownSyscall => f.write_str("UnknownSyscall"),
            FaultKind::UserException => f.write_str("UserException"),
            FaultKind::Panic => f.write_str("Panic"),
            FaultKind::Unknown(label) => write!(f, "unknown(label {label})"),
        }
    }
}

/// How an instance ended, read from the message its fault endpoint received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It ended by itself with this status (`rt::exit`).
    Exit(u32),
    /// It faulted (or panicked) with this kind at this address.
    Fault {
        /// The fault's kind.
        kind: FaultKind,
        /// The faulting address (the instruction pointer where the kind has no data
        /// address).
        addr: u64,
    },
}

/// Decodes the message with `label` and words `words` that a component's fault endpoint
/// received: the kernel's fault kinds, and the two unknown system calls by which `rt` ends a
/// component ([`rt::startinfo::ending`]). Never panics on a short or odd message.
pub fn decode_ending(label: u64, words: &[u64]) -> Ending {
    use rt::startinfo::ending::{decode, Said};
    use sel4::fault_report::FaultReport;
    use sel4::FaultTag;
    let r = FaultReport::decode("", label, words);
    let addr = r.addr.or(r.ip).unwrap_or(0);
    let kind = match (decode(label, words), r.kind) {
        (Some(Said::Exit(status)), _) => return Ending::Exit(status),
        (Some(Said::Panic(_)), _) => FaultKind::Panic,
        (None, Some(FaultTag::VmFault)) => FaultKind::VmFault,
        (None, Some(FaultTag::CapFault)) => FaultKind::CapFault,
        (None, Some(FaultTag::UnknownSyscall)) => FaultKind::UnknownSyscall,
        (None, Some(FaultTag::UserException)) => FaultKind::UserException,
        (None, _) => FaultKind::Unknown(label),
    };
    Ending::Fault { kind, addr }
}

/// The line reported for a fault: `fault: component=NAME kind=KIND addr=0x...`.
pub fn fault_line(name: &str, kind: FaultKind, addr: u64) -> String {
    format!("fault: component={name} kind={kind} addr={addr:#x}")
}

/// A component's state in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Declared, never started.
    NotStarted,
    /// Being created; `started` moves it to `Running`.
    Starting,
    /// Running.
    Running,
    /// Down after a fault and not to be restarted (policy `Never`, or fundamental).
    Faulted {
        /// The fault's kind.
        kind: FaultKind,
        /// The faulting address.
        addr: u64,
    },
    /// Ended by itself with this status.
    Exited(u32),
    /// Down after a fault, to be restarted at `at_ms`.
    Restarting {
        /// When the restart is due.
        at_ms: u64,
    },
    /// Killed, or given up on after too many restarts in a row.
    Stopped,
}

impl State {
    /// Whether an instance exists or is about to (starting, running, restarting).
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            State::Starting | State::Running | State::Restarting { .. }
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::NotStarted => f.write_str("not-started"),
            State::Starting => f.write_str("starting"),
            State::Running => f.write_str("running"),
            State::Faulted { kind, addr } => write!(f, "faulted({kind} at {addr:#x})"),
            State::Exited(status) => write!(f, "exited({status})"),
            State::Restarting { at_ms } => write!(f, "restarting(at {at_ms} ms)"),
            State::Stopped => f.write_str("stopped"),
        }
    }
}

/// How an instance ended, as told to its waiters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this status.
    Exited(u32),
    /// It faulted (it may be restarted as a new generation).
    Faulted {
        /// The fault's kind.
        kind: FaultKind,
        /// The faulting address.
        addr: u64,
    },
    /// It was killed.
    Killed,
}

/// A component instance: its id and the generation it is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The component.
    pub id: ComponentId,
    /// Which (re)start; 0 before the first.
    pub generation: u32,
}

/// Something the binary must do, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create and start a new instance of `id` in `generation`; call
    /// [`Supervisor::started`](crate::Supervisor::started) once it runs.
    Start {
        /// The component.
        id: ComponentId,
        /// The generation of the new instance.
        generation: u32,
    },
    /// A restart of `id` is scheduled: call [`Supervisor::tick`](crate::Supervisor::tick) at
    /// or after `at_ms`.
    Restart {
        /// The component.
        id: ComponentId,
        /// When it is due.
        at_ms: u64,
    },
    /// Tear down the running instance of `id` (its threads, address space, capabilities).
    Destroy(ComponentId),
    /// Ask `memory` to take back everything `id` holds.
    ReleaseMemory(ComponentId),
    /// Ask `naming` to forget every service `id` registered.
    Unregister(ComponentId),
    /// Reply to `waiters` that the instance of `id` they waited on ended with `status`.
    WakeWaiters {
        /// The component.
        id: ComponentId,
        /// How it ended.
        status: Outcome,
        /// The caller's opaque handles given to `wait`, in the order they waited.
        waiters: Vec<u64>,
    },
    /// Print this line on the console.
    Report(String),
}

/// One line of `ps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row<'a> {
    /// The component.
    pub id: ComponentId,
    /// Its name.
    pub name: &'a str,
    /// Its state.
    pub state: State,
    /// Restarts (after faults or kills), over its whole life.
    pub restarts: u32,
    /// Its current generation.
    pub generation: u32,
}

impl fmt::Display for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>3} {:<16} gen={:<3} restarts={:<3} {}",
            self.id.0, self.name, self.generation, self.restarts, self.state
        )
    }
}
