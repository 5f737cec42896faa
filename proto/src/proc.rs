//! The proc interface: start, stop, wait for and inspect components.
//!
//! Components are named by their [`ComponentId`] from the system description; `spawn` only
//! starts components the description lists. Listing is one entry per call, by index, so any
//! number of components, capabilities or memory rows fits.

use crate::{ComponentId, Name};

crate::word_enum! {
    /// Where a component is in its life.
    pub enum State {
        /// Described but not started.
        Idle = 0,
        /// Running.
        Running = 1,
        /// Faulted or killed; a restart is pending (after its back-off).
        Restarting = 2,
        /// Exited with a status, killed (policy `never`), or given up on after `max`
        /// restarts in a row.
        Exited = 3,
        /// Faulted and left stopped (policy `never`, or out of restarts).
        Failed = 4,
    }
}

crate::record! {
    /// One component, as `list` reports it.
    pub struct ComponentInfo {
        /// Its id.
        pub id: ComponentId,
        /// Its name.
        pub name: Name,
        /// Its state.
        pub state: State,
        /// How many times it has been restarted (after faults or kills).
        pub restarts: u32,
    }
}

crate::record! {
    /// One component's memory, as `usage` reports it: the budget, heap and stack from the
    /// system description, and what `memory` counts as used when proc asked it.
    pub struct ComponentUsage {
        /// Its id.
        pub id: ComponentId,
        /// Its name.
        pub name: Name,
        /// Its state.
        pub state: State,
        /// Whether `memory` answered for it; if not, `used` is 0 and means nothing.
        pub measured: bool,
        /// Bytes it holds within its budget, as `memory` counts them (for a component proc
        /// builds, this includes its heap and stack; 0 once it ended and was released).
        pub used: u64,
        /// Its budget from the system description, in bytes.
        pub budget: u64,
        /// Its heap, in bytes (part of the budget; mapped by its loader at start).
        pub heap: u64,
        /// Its initial stack, in bytes (part of the budget; mapped by its loader at start).
        pub stack: u64,
    }
}

crate::word_enum! {
    /// What kind of object a capability addresses.
    pub enum CapKind {
        /// An IPC endpoint (to a service, or the component's own).
        Endpoint = 0,
        /// A notification.
        Notification = 1,
        /// Untyped memory.
        Untyped = 2,
        /// A frame (own image, shared region, device memory, DMA).
        Frame = 3,
        /// An interrupt handler.
        IrqHandler = 4,
        /// I/O ports.
        IoPort = 5,
        /// A thread.
        Tcb = 6,
        /// A CNode.
        CNode = 7,
        /// An address space root or paging structure.
        VSpace = 8,
        /// A reply capability or anything else.
        Other = 9,
    }
}

crate::record! {
    /// One capability a component holds.
    pub struct CapInfo {
        /// Its slot in the component's CSpace.
        pub slot: u64,
        /// What it addresses.
        pub kind: CapKind,
        /// Its rights: bit 0 write, bit 1 read, bit 2 grant (seL4's order).
        pub rights: u8,
        /// Its badge, 0 if none.
        pub badge: u64,
        /// What the description grants it for: a service, device or region name, if any.
        pub grant: Option<Name>,
    }
}

crate::interface! {
    client ProcClient;
    errors {
        /// No component with that name or id.
        NotFound = 16,
        /// The caller may not do this to that component (only `proc`'s supervisors and the
        /// component itself may stop it).
        Denied = 17,
        /// The component is already running.
        AlreadyRunning = 18,
        /// The component has not exited yet; wait again later.
        StillRunning = 19,
        /// The component is not running.
        NotRunning = 20,
        /// The index is past the last entry.
        NoEntry = 21,
        /// The component could not be built (memory could not provide its image, or its
        /// binary is missing or refused).
        OutOfMemory = 22,
    }
    ops {
        /// Starts the described component `name` (a new generation; a manual start also
        /// ends its row of crashes).
        ///
        /// `Ok(id)` once it runs; `Err(NotFound)` if the description has no such component;
        /// `Err(AlreadyRunning)` if it runs or waits to restart; `Err(OutOfMemory)`;
        /// `Err(Denied)` for a fundamental one.
        Spawn = 1 => fn spawn(name: Name) -> ComponentId;
        /// Ends the calling component with `status`. On success no reply arrives: the caller
        /// is gone.
        ///
        /// `Err(Denied)` if the badge names no component.
        Exit = 2 => fn exit(status: u64) -> ();
        /// The exit status of component `id`, without blocking.
        ///
        /// `Ok(status)`; `Err(StillRunning)`; `Err(NotRunning)` if it never started or was
        /// killed; `Err(NotFound)`.
        Wait = 3 => fn wait(id: ComponentId) -> u64;
        /// Stops component `id` now; then its restart policy applies: under `always` it is
        /// restarted after its `backoff_ms` (counted in `restarts`), under `never` it stays
        /// stopped. Killing a component that waits to restart cancels the restart.
        ///
        /// `Ok(())`; `Err(NotFound)`; `Err(NotRunning)` if it neither runs nor waits to
        /// restart; `Err(Denied)` for a fundamental one or one proc did not build.
        Kill = 4 => fn kill(id: ComponentId) -> ();
        /// The `index`th component in description order.
        ///
        /// `Ok(info)`; `Err(NoEntry)` past the last.
        List = 5 => fn list(index: u32) -> ComponentInfo;
        /// The `index`th capability proc placed in the CNode of component `id`'s running
        /// instance, by slot.
        ///
        /// `Ok(info)`; `Err(NoEntry)` past the last, and from index 0 for a component that
        /// is not running or that proc did not build (the fundamental services);
        /// `Err(NotFound)` for an unknown id.
        Caps = 6 => fn caps(id: ComponentId, index: u32) -> CapInfo;
        /// Stops the whole system with `status` (under QEMU: QEMU exits with it), through
        /// the root task's control endpoint, which only proc holds.
        ///
        /// Does not return on success; `Err(Denied)` if proc has no control capability.
        Halt = 7 => fn halt(status: u32) -> ();
        /// The memory of the `index`th component in description order: proc asks `memory`
        /// (`usage_of`, which memory answers proc for every component) and adds what the
        /// description says. Any client may ask, as for `list`.
        ///
        /// `Ok(usage)`, with `measured` false if memory did not answer; `Err(NoEntry)` past
        /// the last.
        Usage = 8 => fn usage(index: u32) -> ComponentUsage;
    }
}
