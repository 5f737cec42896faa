//! proc's effects wired to its peers (naming, memory, the root task's control endpoint) over
//! loopback transports, a recording builder and console: what is asked of whom, what is
//! printed, and what happens when a peer or the builder is missing or refuses.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use proc::effects::{Instances, Platform, Wiring, NO_BUILDER};
use proc::{Effects, FaultKind, ProcServer};
use proto::control::{self, ControlClient};
use proto::memory;
use proto::memory::supervise::{self, SuperviseClient};
use proto::naming::{self, Binding, NamingClient};
use proto::{CapSlot, ComponentId, Loopback, Message, Name};
use sysdesc::{Component, RestartPolicy, System};

type Peer = Loopback<Box<dyn FnMut(&Message) -> Message>>;

/// Every call a peer received, in order, as text.
type Calls = Rc<RefCell<Vec<String>>>;

/// naming: records withdrawals; refuses them when `refuse`.
struct Naming {
    calls: Calls,
    refuse: bool,
}

impl naming::Server for Naming {
    fn register(&mut self, _: u64, _: Name, _: CapSlot) -> Result<(), naming::Error> {
        unreachable!("proc's effects never register")
    }
    fn lookup(&mut self, _: u64, _: Name) -> Result<Binding, naming::Error> {
        unreachable!("proc's effects never look up")
    }
    fn unregister(&mut self, _: u64, _: Name) -> Result<(), naming::Error> {
        unreachable!("proc's effects never unregister")
    }
    fn withdraw(&mut self, _: u64, id: ComponentId) -> Result<u32, naming::Error> {
        self.calls.borrow_mut().push(format!("withdraw {}", id.0));
        if self.refuse {
            Err(naming::Error::Denied)
        } else {
            Ok(1)
        }
    }
}

/// memory's supervisor operations and `usage_of`: records releases and questions; refuses
/// both when `refuse`.
struct Memory {
    calls: Calls,
    refuse: bool,
}

impl supervise::Server for Memory {
    fn alloc_for(
        &mut self,
        _: u64,
        _: ComponentId,
        _: u8,
    ) -> Result<supervise::Allocation, supervise::Error> {
        unreachable!("proc's effects never allocate")
    }
    fn alloc_within(
        &mut self,
        _: u64,
        _: ComponentId,
        _: u8,
    ) -> Result<supervise::Allocation, supervise::Error> {
        unreachable!("proc's effects never allocate")
    }
    fn release(&mut self, _: u64, id: ComponentId) -> Result<u64, supervise::Error> {
        self.calls.borrow_mut().push(format!("release {}", id.0));
        if self.refuse {
            Err(supervise::Error::NotFound)
        } else {
            Ok(4096)
        }
    }
}

impl memory::Server for Memory {
    fn alloc(&mut self, _: u64, _: u8) -> Result<memory::Allocation, memory::Error> {
        unreachable!("proc's effects never allocate")
    }
    fn free(&mut self, _: u64, _: u64) -> Result<(), memory::Error> {
        unreachable!("proc's effects never free")
    }
    fn usage(&mut self, _: u64) -> Result<memory::Usage, memory::Error> {
        unreachable!("proc's effects ask about components, not proc")
    }
    fn usage_of(&mut self, badge: u64, id: ComponentId) -> Result<memory::Usage, memory::Error> {
        self.calls
            .borrow_mut()
            .push(format!("usage_of {} from badge {badge}", id.0));
        if self.refuse {
            return Err(memory::Error::Denied);
        }
        Ok(memory::Usage {
            used: u64::from(id.0) << 12,
            budget: 1 << 20,
            free_total: 300 << 20,
        })
    }
    fn share(&mut self, _: u64, _: Name, _: u64) -> Result<memory::SharedPage, memory::Error> {
        unreachable!("proc's effects never share")
    }
}

/// The root task's control endpoint: records halts and refuses them (a root that halts
/// never answers).
struct Root {
    calls: Calls,
}

impl control::Server for Root {
    fn halt(&mut self, _: u64, status: u32) -> Result<(), control::Error> {
        self.calls.borrow_mut().push(format!("halt {status}"));
        Err(control::Error::Denied)
    }
}

/// A builder that records, and fails to start while `fail` is set.
#[derive(Default)]
struct Builds {
    started: Vec<(u16, u32)>,
    live: Vec<u16>,
    suspended: Vec<u16>,
    forgotten: Vec<u16>,
    fail: Option<String>,
    /// Whether the instance was serving a call when it ended.
    pending_call: bool,
    calls: Calls,
}

impl Instances for Builds {
    fn start(&mut self, id: ComponentId, generation: u32) -> Result<(), String> {
        if let Some(why) = &self.fail {
            return Err(why.clone());
        }
        self.started.push((id.0, generation));
        self.live.push(id.0);
        Ok(())
    }
    fn is_live(&self, id: ComponentId) -> bool {
        self.live.contains(&id.0)
    }
    fn suspend(&mut self, id: ComponentId) {
        self.live.retain(|&l| l != id.0);
        self.suspended.push(id.0);
    }
    fn fail_pending_call(&mut self, id: ComponentId) -> bool {
        self.calls.borrow_mut().push(format!("fail call {}", id.0));
        self.pending_call
    }
    fn forget(&mut self, id: ComponentId) {
        self.calls.borrow_mut().push(format!("forget {}", id.0));
        self.forgotten.push(id.0);
    }
}

#[derive(Default)]
struct Console {
    lines: Vec<String>,
    now: u64,
}

impl Platform for Console {
    fn print(&mut self, line: &str) {
        self.lines.push(line.into());
    }
    fn now_ms(&self) -> u64 {
        self.now
    }
}

fn peer(mut f: impl FnMut(&Message) -> Message + 'static) -> Peer {
    Loopback(Box::new(move |m: &Message| f(m)))
}

/// What to wire: which peers exist and which refuse.
#[derive(Clone, Copy, Default)]
struct Setup {
    no_memory: bool,
    no_control: bool,
    no_builder: bool,
    naming_refuses: bool,
    memory_refuses: bool,
}

/// memory's endpoint as proc (badge 2) reaches it: labels from 16 are the supervisor's.
fn memory_dispatch(memory: &mut Memory, m: &Message) -> Message {
    if m.label >= 16 {
        supervise::dispatch(memory, 2, m)
    } else {
        memory::dispatch(memory, 2, m)
    }
}

fn wiring(setup: Setup, calls: &Calls) -> Wiring<Peer, Builds, Console> {
    let mut naming = Naming {
        calls: calls.clone(),
        refuse: setup.naming_refuses,
    };
    let mut memory = Memory {
        calls: calls.clone(),
        refuse: setup.memory_refuses,
    };
    let mut root = Root {
        calls: calls.clone(),
    };
    Wiring {
        naming: NamingClient::new(peer(move |m| naming::dispatch(&mut naming, 2, m))),
        memory: (!setup.no_memory)
            .then(|| SuperviseClient::new(peer(move |m| memory_dispatch(&mut memory, m)))),
        control: (!setup.no_control)
            .then(|| ControlClient::new(peer(move |m| control::dispatch(&mut root, 2, m)))),
        builder: (!setup.no_builder).then(|| Builds {
            calls: calls.clone(),
            ..Builds::default()
        }),
        names: ["naming", "proc", "memory", "devices", "app"]
            .iter()
            .map(|n| n.to_string())
            .collect(),
        platform: Console::default(),
    }
}

const APP: ComponentId = ComponentId(4);

#[test]
fn start_builds_and_announces_the_instance() {
    let calls = Calls::default();
    let mut w = wiring(Setup::default(), &calls);
    assert_eq!(w.start(APP, 3), Ok(()));
    assert_eq!(
        w.platform.lines,
        vec!["proc: started app (id 4, generation 3)"]
    );
    assert!(w.can_destroy(APP));
    assert!(!w.can_destroy(ComponentId(0)));
    // An id without a name is still started, and named "?".
    assert_eq!(w.start(ComponentId(9), 1), Ok(()));
    assert_eq!(w.platform.lines[1], "proc: started ? (id 9, generation 1)");
    w.destroy(APP);
    assert!(!w.can_destroy(APP));
    assert_eq!(w.builder.as_ref().unwrap().suspended, vec![4]);
}

#[test]
fn a_start_that_fails_says_why_and_prints_nothing() {
    let calls = Calls::default();
    let mut w = wiring(Setup::default(), &calls);
    w.builder.as_mut().unwrap().fail = Some("no binary `app` in the boot image".into());
    assert_eq!(
        w.start(APP, 1),
        Err("no binary `app` in the boot image".to_string())
    );
    assert!(w.platform.lines.is_empty());
    assert!(!w.can_destroy(APP));

    let mut w = wiring(
        Setup {
            no_builder: true,
            ..Setup::default()
        },
        &calls,
    );
    assert_eq!(w.start(APP, 1), Err(NO_BUILDER.to_string()));
    assert!(w.platform.lines.is_empty());
    // Without a builder nothing can be torn down, and destroy does nothing.
    assert!(!w.can_destroy(APP));
    w.destroy(APP);
}

#[test]
fn a_call_the_ended_instance_was_serving_is_answered_and_said() {
    let calls = Calls::default();
    let mut w = wiring(Setup::default(), &calls);
    w.builder.as_mut().unwrap().pending_call = true;
    w.release_memory(APP);
    assert_eq!(
        *calls.borrow(),
        vec!["fail call 4", "release 4", "forget 4"]
    );
    assert_eq!(
        w.platform.lines,
        vec!["proc: app ended while serving a call: its caller gets ServerRestarted"]
    );
}

#[test]
fn release_asks_memory_then_forgets_the_slots() {
    let calls = Calls::default();
    let mut w = wiring(Setup::default(), &calls);
    w.release_memory(APP);
    assert_eq!(
        *calls.borrow(),
        vec!["fail call 4", "release 4", "forget 4"]
    );
    assert!(w.platform.lines.is_empty());

    // memory refuses: printed, and the slots are forgotten all the same.
    let calls = Calls::default();
    let mut w = wiring(
        Setup {
            memory_refuses: true,
            ..Setup::default()
        },
        &calls,
    );
    w.release_memory(APP);
    assert_eq!(
        *calls.borrow(),
        vec!["fail call 4", "release 4", "forget 4"]
    );
    assert_eq!(
        w.platform.lines,
        vec!["proc: memory release of component 4 failed: NotFound"]
    );

    // No memory service: only the builder forgets.
    let calls = Calls::default();
    let mut w = wiring(
        Setup {
            no_memory: true,
            ..Setup::default()
        },
        &calls,
    );
    w.release_memory(APP);
    assert_eq!(*calls.borrow(), vec!["fail call 4", "forget 4"]);
}

#[test]
fn withdraw_asks_naming_and_prints_a_refusal() {
    let calls = Calls::default();
    let mut w = wiring(Setup::default(), &calls);
    w.withdraw(APP);
    assert_eq!(*calls.borrow(), vec!["withdraw 4"]);
    assert!(w.platform.lines.is_empty());
    let mut w = wiring(
        Setup {
            naming_refuses: true,
            ..Setup::default()
        },
        &calls,
    );
    w.withdraw(APP);
    assert_eq!(
        w.platform.lines,
        vec!["proc: naming withdraw of component 4 failed: Denied"]
    );
}

#[test]
fn reports_are_prefixed_and_the_clock_is_the_platforms() {
    let calls = Calls::default();
    let mut w = wiring(Setup::default(), &calls);
    w.report("fault: component=app kind=VmFault addr=0x0");
    assert_eq!(
        w.platform.lines,
        vec!["proc: fault: component=app kind=VmFault addr=0x0"]
    );
    w.platform.now = 1234;
    assert_eq!(w.now_ms(), 1234);
}

#[test]
fn halt_goes_to_the_root_task_or_says_it_cannot() {
    let calls = Calls::default();
    let mut w = wiring(Setup::default(), &calls);
    w.halt(3);
    assert_eq!(*calls.borrow(), vec!["halt 3"]);
    assert_eq!(
        w.platform.lines,
        vec!["proc: the root task refused to halt: Err(Denied)"]
    );
    let calls = Calls::default();
    let mut w = wiring(
        Setup {
            no_control: true,
            ..Setup::default()
        },
        &calls,
    );
    w.halt(3);
    assert!(calls.borrow().is_empty());
    assert_eq!(
        w.platform.lines,
        vec!["proc: cannot halt: no control capability was granted"]
    );
}

#[test]
fn usage_of_asks_memory_on_the_supervisor_endpoint() {
    let calls = Calls::default();
    let mut w = wiring(Setup::default(), &calls);
    let got = w.usage_of(APP).expect("memory answers proc");
    assert_eq!((got.used, got.budget), (4 << 12, 1 << 20));
    assert_eq!(*calls.borrow(), vec!["usage_of 4 from badge 2"]);
    assert!(w.platform.lines.is_empty());

    // memory refuses: no numbers, nothing printed (the row says it is unmeasured).
    let calls = Calls::default();
    let mut w = wiring(
        Setup {
            memory_refuses: true,
            ..Setup::default()
        },
        &calls,
    );
    assert_eq!(w.usage_of(APP), None);
    assert_eq!(*calls.borrow(), vec!["usage_of 4 from badge 2"]);
    assert!(w.platform.lines.is_empty());

    // No memory service: nobody is asked.
    let calls = Calls::default();
    let mut w = wiring(
        Setup {
            no_memory: true,
            ..Setup::default()
        },
        &calls,
    );
    assert_eq!(w.usage_of(APP), None);
    assert!(calls.borrow().is_empty());
}

fn system() -> System {
    let component = |name: &str| Component {
        name: name.into(),
        binary: name.into(),
        priority: 100,
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
        restart: if name == "app" {
            RestartPolicy::Always {
                max: 1,
                backoff_ms: 10,
            }
        } else {
            RestartPolicy::Never
        },
        args: BTreeMap::new(),
    };
    let s = System {
        name: "test".into(),
        description: String::new(),
        memory: 512 << 20,
        components: ["naming", "proc", "memory", "devices", "app"]
            .iter()
            .map(|n| component(n))
            .collect(),
        devices: Vec::new(),
        shared: Vec::new(),
    };
    s.validate().expect("valid");
    s
}

#[test]
fn the_server_over_the_wiring_tears_a_faulted_instance_down_through_the_peers() {
    let calls = Calls::default();
    let mut server = ProcServer::new(system(), wiring(Setup::default(), &calls));
    server.start_all();
    assert_eq!(
        server.effects().builder.as_ref().unwrap().started,
        vec![(4, 1)]
    );
    server.fault(APP, FaultKind::VmFault, 0x10);
    // Suspended, its pending call failed, then released at memory (and forgotten), then
    // withdrawn at naming.
    assert_eq!(
        server.effects().builder.as_ref().unwrap().suspended,
        vec![4]
    );
    assert_eq!(
        *calls.borrow(),
        vec!["fail call 4", "release 4", "forget 4", "withdraw 4"]
    );
    server.effects_mut().platform.now = 10;
    assert_eq!(server.tick(), None);
    let w = server.effects();
    assert_eq!(w.builder.as_ref().unwrap().started, vec![(4, 1), (4, 2)]);
    assert_eq!(
        w.platform.lines,
        vec![
            "proc: started app (id 4, generation 1)",
            "proc: fault: component=app kind=VmFault addr=0x10",
            "proc: started app (id 4, generation 2)",
        ]
    );
}
