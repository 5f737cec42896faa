//! What proc decides before it serves: waiting for `memory` at naming, the memory self-check
//! (each of its four checks passing against a faithful memory and failing against a faulty
//! one), whether it can build components, and the timer thread's priority.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use proc::startup::{
    cannot_build, check_memory, has_control, lookup_patiently, timer_priority, Check, Probe,
};
use proto::memory::{self as mem, supervise, Allocation, SharedPage, Usage};
use proto::naming::{self, Binding, NamingClient};
use proto::{CapSlot, ComponentId, Loopback, Message, Name};
use sysdesc::{Component, RestartPolicy, System};

/// The capabilities the check sees: the receive slot and the slot retyped from it.
#[derive(Default)]
struct Caps {
    /// The receive slot holds an untyped (memory handed one out and has not revoked it).
    received: bool,
    /// An endpoint was retyped from it.
    made: bool,
}

/// How a memory service may be wrong.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// `free` does not revoke what was made from the allocation.
    free_keeps_caps: bool,
    /// `alloc` ignores the budget.
    no_budget: bool,
    /// `release` reports nothing released.
    release_forgets: bool,
    /// `usage` reports a budget this much larger than the description's.
    budget_off: u64,
}

/// A memory service over the shared [`Caps`]: a budget, allocations, image memory.
struct Memory {
    caps: Rc<RefCell<Caps>>,
    budget: u64,
    used: u64,
    image: u64,
    faults: Faults,
}

impl Memory {
    fn hand_out(&mut self) -> CapSlot {
        self.caps.borrow_mut().received = true;
        CapSlot(63)
    }

    fn revoke(&mut self) {
        let mut caps = self.caps.borrow_mut();
        caps.received = false;
        caps.made = false;
    }
}

impl mem::Server for Memory {
    fn alloc(&mut self, _: u64, size_bits: u8) -> Result<Allocation, mem::Error> {
        let size = 1u64 << size_bits;
        if !self.faults.no_budget && self.used + size > self.budget {
            return Err(mem::Error::OverBudget);
        }
        self.used += size;
        Ok(Allocation {
            handle: size,
            untyped: self.hand_out(),
        })
    }
    fn free(&mut self, _: u64, handle: u64) -> Result<(), mem::Error> {
        self.used -= handle;
        if !self.faults.free_keeps_caps {
            self.revoke();
        }
        Ok(())
    }
    fn usage(&mut self, _: u64) -> Result<Usage, mem::Error> {
        Ok(Usage {
            used: self.used,
            budget: self.budget + self.faults.budget_off,
            free_total: 1 << 30,
        })
    }
    fn usage_of(&mut self, _: u64, _: ComponentId) -> Result<Usage, mem::Error> {
        unreachable!("the check does not ask")
    }
    fn share(&mut self, _: u64, _: Name, _: u64) -> Result<SharedPage, mem::Error> {
        unreachable!("the check does not ask")
    }
}

impl supervise::Server for Memory {
    fn alloc_for(
        &mut self,
        _: u64,
        id: ComponentId,
        size_bits: u8,
    ) -> Result<Allocation, supervise::Error> {
        assert_eq!(id, ME, "image memory for proc itself");
        self.image += 1 << size_bits;
        Ok(Allocation {
            handle: 1,
            untyped: self.hand_out(),
        })
    }
    fn alloc_within(
        &mut self,
        _: u64,
        _: ComponentId,
        _: u8,
    ) -> Result<Allocation, supervise::Error> {
        unreachable!("the check does not ask")
    }
    fn release(&mut self, _: u64, id: ComponentId) -> Result<u64, supervise::Error> {
        assert_eq!(id, ME);
        let bytes = std::mem::take(&mut self.image) + std::mem::take(&mut self.used);
        self.revoke();
        Ok(if self.faults.release_forgets {
            0
        } else {
            bytes
        })
    }
}

/// The probe over the shared [`Caps`], with the kernel's type codes (2 untyped, 4 endpoint).
struct Slots(Rc<RefCell<Caps>>);

impl Probe for Slots {
    fn received(&self) -> u64 {
        if self.0.borrow().received {
            2
        } else {
            0
        }
    }
    fn retype_received(&mut self) -> Result<(), sel4::Error> {
        let mut caps = self.0.borrow_mut();
        if !caps.received {
            return Err(sel4::Error::FailedLookup);
        }
        caps.made = true;
        Ok(())
    }
    fn made(&self) -> u64 {
        if self.0.borrow().made {
            4
        } else {
            0
        }
    }
    fn clear(&mut self) {
        self.0.borrow_mut().received = false;
    }
}

const ME: ComponentId = ComponentId(1);
const BUDGET: u64 = 1 << 20;

/// Runs the check against a memory with `faults`; returns the checks and whether the
/// receive slot was left empty.
fn run(faults: Faults) -> (Vec<Check>, bool) {
    let caps = Rc::new(RefCell::new(Caps::default()));
    let mut memory = Memory {
        caps: caps.clone(),
        budget: BUDGET,
        used: 0,
        image: 0,
        faults,
    };
    let transport = Loopback(move |m: &Message| {
        if m.label >= supervise::Op::AllocFor as u64 {
            supervise::dispatch(&mut memory, 2, m)
        } else {
            mem::dispatch(&mut memory, 2, m)
        }
    });
    let mut probe = Slots(caps.clone());
    let checks = check_memory(transport, ME, BUDGET, &mut probe);
    let empty = !caps.borrow().received;
    (checks, empty)
}

fn verdicts(checks: &[Check]) -> Vec<(&'static str, bool)> {
    checks.iter().map(|c| (c.name, c.ok)).collect()
}

#[test]
fn a_faithful_memory_passes_every_check() {
    let (checks, empty) = run(Faults::default());
    assert_eq!(
        verdicts(&checks),
        vec![
            ("usage", true),
            ("alloc-free-revokes", true),
            ("over-budget", true),
            ("supervise", true)
        ]
    );
    assert!(empty, "the receive slot is left empty");
    assert_eq!(
        checks[1].to_string(),
        "CHECK proc-memory-alloc-free-revokes: PASS (cap type 2, retype Ok(()), used Ok(16384), \
         free Ok(()), after free (0, 0))"
    );
    assert_eq!(
        checks[2].to_string(),
        "CHECK proc-memory-over-budget: PASS (alloc(30) -> Err(OverBudget))"
    );
    assert!(checks[0]
        .to_string()
        .starts_with("CHECK proc-memory-usage: PASS (Ok(Usage"));
}

#[test]
fn each_fault_of_memory_fails_its_own_check() {
    let cases = [
        (
            Faults {
                budget_off: 4096,
                ..Faults::default()
            },
            &["usage"][..],
        ),
        (
            Faults {
                free_keeps_caps: true,
                ..Faults::default()
            },
            &["alloc-free-revokes"][..],
        ),
        (
            Faults {
                no_budget: true,
                ..Faults::default()
            },
            // The gigabyte it handed out is released too.
            &["over-budget", "supervise"][..],
        ),
        (
            Faults {
                release_forgets: true,
                ..Faults::default()
            },
            &["supervise"][..],
        ),
    ];
    for (faults, failing) in cases {
        let (checks, _) = run(faults);
        assert_eq!(checks.len(), 4);
        for c in &checks {
            assert_eq!(c.ok, !failing.contains(&c.name), "{c}");
            if !c.ok {
                let line = c.to_string();
                let start = format!("CHECK proc-memory-{}: FAIL (", c.name);
                assert!(line.starts_with(&start), "{line}");
            }
        }
    }
}

#[test]
fn an_alloc_refused_fails_the_revoke_check_with_the_error() {
    // A budget too small for the 16 KiB allocation.
    let caps = Rc::new(RefCell::new(Caps::default()));
    let mut memory = Memory {
        caps: caps.clone(),
        budget: 4096,
        used: 0,
        image: 0,
        faults: Faults::default(),
    };
    let transport = Loopback(move |m: &Message| {
        if m.label >= supervise::Op::AllocFor as u64 {
            supervise::dispatch(&mut memory, 2, m)
        } else {
            mem::dispatch(&mut memory, 2, m)
        }
    });
    let checks = check_memory(transport, ME, 4096, &mut Slots(caps));
    assert_eq!(
        checks[1].to_string(),
        "CHECK proc-memory-alloc-free-revokes: FAIL (alloc: OverBudget)"
    );
    assert!(checks[0].ok && checks[2].ok && checks[3].ok);
}

/// naming that answers `NotFound` to the first `missing` lookups, then a binding; or
/// `Denied` for good.
struct Naming {
    missing: usize,
    lookups: usize,
    deny: bool,
}

impl naming::Server for Naming {
    fn register(&mut self, _: u64, _: Name, _: CapSlot) -> Result<(), naming::Error> {
        unreachable!()
    }
    fn lookup(&mut self, _: u64, name: Name) -> Result<Binding, naming::Error> {
        assert_eq!(name, "memory");
        self.lookups += 1;
        if self.deny {
            Err(naming::Error::Denied)
        } else if self.lookups <= self.missing {
            Err(naming::Error::NotFound)
        } else {
            Ok(Binding {
                endpoint: CapSlot(63),
                generation: 1,
            })
        }
    }
    fn unregister(&mut self, _: u64, _: Name) -> Result<(), naming::Error> {
        unreachable!()
    }
    fn withdraw(&mut self, _: u64, _: ComponentId) -> Result<u32, naming::Error> {
        unreachable!()
    }
}

/// Looks `memory` up against `naming` with `attempts`; returns the answer, the lookups made
/// and the waits between them.
fn lookup(mut naming: Naming, attempts: usize) -> (Result<Binding, naming::Error>, usize, usize) {
    let mut waits = 0;
    let found = {
        let mut client =
            NamingClient::new(Loopback(|m: &Message| naming::dispatch(&mut naming, 2, m)));
        lookup_patiently(&mut client, Name::new("memory").unwrap(), attempts, || {
            waits += 1
        })
    };
    (found, naming.lookups, waits)
}

#[test]
fn memory_is_looked_up_until_it_registers_within_the_attempts() {
    let naming = |missing, deny| Naming {
        missing,
        lookups: 0,
        deny,
    };
    let (found, lookups, waits) = lookup(naming(0, false), 1000);
    assert_eq!(
        (found.map(|b| b.endpoint), lookups, waits),
        (Ok(CapSlot(63)), 1, 0)
    );
    let (found, lookups, waits) = lookup(naming(5, false), 1000);
    assert_eq!(
        (found.map(|b| b.endpoint), lookups, waits),
        (Ok(CapSlot(63)), 6, 5)
    );
    // Never registered within the attempts: NotFound after exactly that many lookups.
    let (found, lookups, waits) = lookup(naming(5, false), 3);
    assert_eq!(
        (found, lookups, waits),
        (Err(naming::Error::NotFound), 3, 2)
    );
    // Any other answer ends the wait at once.
    let (found, lookups, waits) = lookup(naming(0, true), 1000);
    assert_eq!((found, lookups, waits), (Err(naming::Error::Denied), 1, 0));
}

#[test]
fn building_needs_memory_and_three_grants_and_halt_needs_two() {
    assert_eq!(cannot_build(false, 3), Some("no memory service"));
    assert_eq!(cannot_build(false, 0), Some("no memory service"));
    assert_eq!(cannot_build(true, 2), Some("no ASID pool or naming grant"));
    assert_eq!(cannot_build(true, 0), Some("no ASID pool or naming grant"));
    assert_eq!(cannot_build(true, 3), None);
    assert_eq!(cannot_build(true, 4), None);
    assert!(!has_control(0));
    assert!(!has_control(1));
    assert!(has_control(2));
    assert!(has_control(3));
}

fn system(priorities: &[(&str, u8)]) -> System {
    let component = |name: &str, priority: u8| Component {
        name: name.into(),
        binary: name.into(),
        priority,
        memory: 1 << 20,
        fundamental: sysdesc::FUNDAMENTAL.contains(&name),
        provides: Vec::new(),
        routes: if matches!(name, "proc" | "devices") {
            vec!["memory".into()]
        } else {
            Vec::new()
        },
        devices: Vec::new(),
        shared: Vec::new(),
        restart: RestartPolicy::Never,
        args: BTreeMap::new(),
    };
    let s = System {
        name: "test".into(),
        description: String::new(),
        memory: 512 << 20,
        components: priorities.iter().map(|&(n, p)| component(n, p)).collect(),
        devices: Vec::new(),
        shared: Vec::new(),
    };
    s.validate().expect("valid");
    s
}

#[test]
fn the_timer_runs_at_the_lowest_priority_proc_starts() {
    let fundamental = [("naming", 5), ("proc", 4), ("memory", 3), ("devices", 2)];
    let mut with_others = fundamental.to_vec();
    with_others.extend([("shell", 50), ("serial", 120), ("hello", 30)]);
    // The fundamental services' priorities (lower here) do not count.
    assert_eq!(timer_priority(&system(&with_others)), 30);
    // Nothing to start: priority 1.
    assert_eq!(timer_priority(&system(&fundamental)), 1);
}
