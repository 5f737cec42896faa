//! What proc decides at start, before it serves: finding `memory`, the once-only check of the
//! memory service (`CHECK proc-memory-*` lines), whether it can build components at all, and
//! the timer thread's priority.
//!
//! The capability operations the memory check needs are behind [`Probe`]; the binary
//! implements it over two slots of its own CNode.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use proto::memory::supervise::SuperviseClient;
use proto::memory::{self as mem, MemoryClient};
use proto::naming::{self, Binding, NamingClient};
use proto::{ComponentId, Name, Transport};
use sysdesc::System;

/// Grant 0: the ASID pool, for the address spaces proc builds.
pub const ASID_POOL_GRANT: u64 = 0;
/// Grant 1: the root task's control endpoint (`halt`).
pub const CONTROL_GRANT: u64 = 1;
/// Grant 2: naming's endpoint, unbadged, which proc mints each component's `NAMING` from.
pub const NAMING_GRANT: u64 = 2;

/// Whether proc was given the root task's control endpoint, with `grants` grants.
pub fn has_control(grants: u64) -> bool {
    grants > CONTROL_GRANT
}

/// Why proc cannot build components, `None` if it can: it needs the memory service
/// (`memory_found`) and its three grants.
pub fn cannot_build(memory_found: bool, grants: u64) -> Option<&'static str> {
    if !memory_found {
        Some("no memory service")
    } else if grants <= NAMING_GRANT {
        Some("no ASID pool or naming grant")
    } else {
        None
    }
}

/// The priority of proc's timer thread: the lowest of the components proc starts (the
/// non-fundamental ones), 1 if there are none.
pub fn timer_priority(system: &System) -> u8 {
    system
        .components
        .iter()
        .filter(|c| !c.fundamental)
        .map(|c| c.priority)
        .min()
        .unwrap_or(1)
}

/// Looks `name` up at naming, calling `wait` and asking again while it is not registered
/// yet (`NotFound`), at most `attempts` times in all.
///
/// Errors: naming's last answer (`NotFound` once the attempts are used up).
pub fn lookup_patiently<T: Transport>(
    naming: &mut NamingClient<T>,
    name: Name,
    attempts: usize,
    mut wait: impl FnMut(),
) -> Result<Binding, naming::Error> {
    let mut found = naming.lookup(name);
    for _ in 1..attempts {
        if found != Err(naming::Error::NotFound) {
            break;
        }
        wait();
        found = naming.lookup(name);
    }
    found
}

/// One self-check's outcome, printed as `CHECK proc-memory-NAME: PASS (detail)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`usage`, `alloc-free-revokes`, `over-budget`, `supervise`).
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.ok { "PASS" } else { "FAIL" };
        write!(
            f,
            "CHECK proc-memory-{}: {verdict} ({})",
            self.name, self.detail
        )
    }
}

/// The capability operations of the memory check, over the slot the transport receives
/// capabilities in and a second, empty one.
pub trait Probe {
    /// The kernel's type code of the capability in the receive slot (0: empty).
    fn received(&self) -> u64;
    /// Retypes the untyped in the receive slot into one endpoint in the second slot.
    ///
    /// Errors: the kernel's.
    fn retype_received(&mut self) -> Result<(), sel4::Error>;
    /// The kernel's type code of the capability in the second slot (0: empty).
    fn made(&self) -> u64;
    /// Empties the receive slot.
    fn clear(&mut self);
}

/// Exercises the memory service once, as component `me` with `budget` bytes: its usage, an
/// allocation that a free revokes together with what was made from it, the budget limit, and
/// the supervisor operations. `memory` receives capabilities in the probe's receive slot.
/// Returns the four checks, in order.
pub fn check_memory<T: Transport>(
    mut memory: T,
    me: ComponentId,
    budget: u64,
    probe: &mut impl Probe,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut check = |name, ok, detail| checks.push(Check { name, ok, detail });
    let mut client = MemoryClient::new(&mut memory);
    let usage = client.usage();
    check(
        "usage",
        usage.is_ok_and(|u| u.budget == budget && u.used == 0),
        format!("{usage:?}"),
    );
    match client.alloc(14) {
        Ok(a) => {
            let held = probe.received();
            let retyped = probe.retype_received();
            let used = client.usage().map(|u| u.used);
            let freed = client.free(a.handle);
            let gone = (probe.received(), probe.made());
            check(
                "alloc-free-revokes",
                held != 0 && retyped.is_ok() && used == Ok(1 << 14) && freed.is_ok() && gone == (0, 0),
                format!(
                    "cap type {held}, retype {retyped:?}, used {used:?}, free {freed:?}, after free {gone:?}"
                ),
            );
        }
        Err(e) => check("alloc-free-revokes", false, format!("alloc: {e:?}")),
    }
    let over = client.alloc(30);
    check(
        "over-budget",
        over == Err(mem::Error::OverBudget),
        format!("alloc(30) -> {:?}", over.map(|a| a.handle)),
    );
    let mut supervise = SuperviseClient::new(&mut memory);
    let image = supervise.alloc_for(me, 21);
    probe.clear();
    let released = supervise.release(me);
    check(
        "supervise",
        image.is_ok() && released == Ok(1 << 21),
        format!(
            "alloc_for(2 MiB) -> {:?}, release -> {released:?}",
            image.map(|a| a.handle)
        ),
    );
    probe.clear();
    checks
}
