//! `proto::proc` over the supervisor: listing, exit with its clean-up, wait, what proc
//! refuses for components it did not build, and spawn, kill, faults, restarts and caps for
//! the ones it builds.

use std::collections::BTreeMap;

use proc::{Effects, ProcServer};
use proto::memory::Usage;
use proto::proc::{self as api, ComponentUsage, ProcClient};
use proto::{ComponentId, Loopback, Message, Name};
use sysdesc::{Component, RestartPolicy, System};

#[derive(Default)]
struct Log {
    lines: Vec<String>,
    released: Vec<u16>,
    withdrawn: Vec<u16>,
    /// Instances built (id, generation), in order.
    started: Vec<(u16, u32)>,
    /// Ids with a running instance proc built.
    live: Vec<u16>,
    /// Starts fail while this is set.
    no_memory: bool,
    /// What memory counts as used, per id; an id missing here is one memory refuses.
    used: BTreeMap<u16, u64>,
    now: u64,
}

impl Effects for Log {
    fn start(&mut self, id: ComponentId, generation: u32) -> Result<(), String> {
        if self.no_memory {
            return Err("out of memory".into());
        }
        assert!(!self.live.contains(&id.0), "started twice");
        self.started.push((id.0, generation));
        self.live.push(id.0);
        Ok(())
    }
    fn can_destroy(&self, id: ComponentId) -> bool {
        self.live.contains(&id.0)
    }
    fn destroy(&mut self, id: ComponentId) {
        let i = self
            .live
            .iter()
            .position(|&l| l == id.0)
            .unwrap_or_else(|| panic!("destroy {id:?} of a component proc did not build"));
        self.live.remove(i);
    }
    fn release_memory(&mut self, id: ComponentId) {
        self.released.push(id.0);
    }
    fn withdraw(&mut self, id: ComponentId) {
        self.withdrawn.push(id.0);
    }
    fn report(&mut self, line: &str) {
        self.lines.push(line.into());
    }
    fn now_ms(&self) -> u64 {
        self.now
    }
    fn halt(&mut self, status: u32) {
        self.lines.push(format!("halted {status}"));
    }
    fn usage_of(&mut self, id: ComponentId) -> Option<Usage> {
        let used = *self.used.get(&id.0)?;
        Some(Usage {
            used,
            budget: 1 << 20,
            free_total: 400 << 20,
        })
    }
}

fn system() -> System {
    system_with(|_| RestartPolicy::Never)
}

fn system_with(policy: impl Fn(&str) -> RestartPolicy) -> System {
    let component = |name: &str| Component {
        name: name.into(),
        binary: name.into(),
        priority: 100,
        memory: 1 << 20,
        fundamental: sysdesc::FUNDAMENTAL.contains(&name),
        provides: if name == "svc" {
            vec!["svc".into()]
        } else {
            Vec::new()
        },
        routes: if matches!(name, "proc" | "devices") {
            vec!["memory".into()]
        } else {
            Vec::new()
        },
        devices: Vec::new(),
        shared: Vec::new(),
        restart: policy(name),
        args: BTreeMap::new(),
    };
    let s = System {
        name: "test".into(),
        description: String::new(),
        memory: 512 << 20,
        components: ["naming", "proc", "memory", "devices", "app", "svc"]
            .iter()
            .map(|n| component(n))
            .collect(),
        devices: Vec::new(),
        shared: Vec::new(),
    };
    s.validate().expect("valid");
    s
}

fn with_client<R>(
    server: &mut ProcServer<Log>,
    badge: u64,
    f: impl FnOnce(&mut ProcClient<Loopback<&mut dyn FnMut(&Message) -> Message>>) -> R,
) -> R {
    let mut call = |m: &Message| api::dispatch(server, badge, m);
    let mut client = ProcClient::new(Loopback(&mut call as &mut dyn FnMut(&Message) -> Message));
    f(&mut client)
}

#[test]
fn list_exit_wait_and_refusals() {
    let mut server = ProcServer::new(system(), Log::default());
    server.adopt_all();
    let app = ComponentId(4);
    let app_badge = proto::badge(app);
    with_client(&mut server, app_badge, |c| {
        let first = c.list(0).unwrap();
        assert_eq!(first.name, "naming");
        assert_eq!(first.state, api::State::Running);
        assert_eq!(c.list(4).unwrap().id, app);
        assert_eq!(c.list(6), Err(api::Error::NoEntry));
        assert_eq!(c.wait(app), Err(api::Error::StillRunning));
        assert_eq!(c.wait(ComponentId(9)), Err(api::Error::NotFound));
        assert_eq!(c.kill(ComponentId(0)), Err(api::Error::Denied));
        // Built by root: proc cannot tear it down yet.
        assert_eq!(c.kill(app), Err(api::Error::Denied));
        assert_eq!(
            c.spawn(Name::new("memory").unwrap()),
            Err(api::Error::Denied)
        );
        assert_eq!(
            c.spawn(Name::new("app").unwrap()),
            Err(api::Error::AlreadyRunning)
        );
        assert_eq!(
            c.spawn(Name::new("nothing").unwrap()),
            Err(api::Error::NotFound)
        );
        assert_eq!(c.caps(app, 0), Err(api::Error::NoEntry));
        assert_eq!(c.caps(ComponentId(9), 0), Err(api::Error::NotFound));
        c.exit(7).unwrap();
        assert_eq!(c.wait(app), Ok(7));
        assert_eq!(c.list(4).unwrap().state, api::State::Exited);
        // Exiting twice, from nowhere, or as a fundamental service is refused.
        assert_eq!(c.exit(1), Err(api::Error::Denied));
    });
    with_client(&mut server, 0, |c| {
        assert_eq!(c.exit(0), Err(api::Error::Denied))
    });
    with_client(&mut server, proto::badge(ComponentId(2)), |c| {
        assert_eq!(c.exit(0), Err(api::Error::Denied))
    });
    let log = server.effects();
    assert_eq!(log.released, vec![4]);
    assert_eq!(log.withdrawn, vec![4]);
    assert_eq!(log.lines, vec!["exit: component=app status=7".to_string()]);
    server.supervisor().check().unwrap();
}

#[test]
fn usage_lists_every_component_with_what_memory_counts() {
    let mut server = ProcServer::new(system(), Log::default());
    server.adopt_all();
    // memory answers for every component but `devices`; `app` holds its heap, stack and a
    // little more.
    let app = ComponentId(4);
    let c = system().get(app).unwrap().clone();
    let (heap, stack) = (c.heap_bytes(), c.stack_bytes());
    server.effects_mut().used = [(0, 0), (1, 8192), (2, 0), (4, heap + stack + 4096), (5, 0)]
        .into_iter()
        .collect();
    let rows = with_client(&mut server, proto::badge(app), |c| {
        let rows: Vec<ComponentUsage> = (0..).map_while(|i| c.usage(i).ok()).collect();
        assert_eq!(c.usage(6), Err(api::Error::NoEntry));
        assert_eq!(c.usage(u32::MAX), Err(api::Error::NoEntry));
        rows
    });
    // One row per component, in description order: paging by index reaches them all.
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["naming", "proc", "memory", "devices", "app", "svc"]);
    assert!(rows
        .iter()
        .enumerate()
        .all(|(i, r)| usize::from(r.id.0) == i));
    assert_eq!(
        rows[4],
        ComponentUsage {
            id: app,
            name: Name::new("app").unwrap(),
            state: api::State::Running,
            measured: true,
            used: heap + stack + 4096,
            budget: 1 << 20,
            heap,
            stack,
        }
    );
    assert_eq!((rows[1].measured, rows[1].used), (true, 8192));
    // memory did not answer for devices: the row says so rather than show a number.
    assert_eq!((rows[3].measured, rows[3].used), (false, 0));
    assert_eq!(rows[3].budget, 1 << 20);

    // app exits: memory took everything back, and the row says it exited.
    with_client(&mut server, proto::badge(app), |c| c.exit(0).unwrap());
    assert_eq!(server.effects().released, vec![4]);
    server.effects_mut().used.insert(4, 0);
    let row = with_client(&mut server, 0, |c| c.usage(4)).unwrap();
    assert_eq!(row.state, api::State::Exited);
    assert_eq!((row.measured, row.used), (true, 0));
    assert_eq!((row.budget, row.heap, row.stack), (1 << 20, heap, stack));

    // Without memory every row is still there, unmeasured.
    server.effects_mut().used.clear();
    let rows = with_client(&mut server, 0, |c| {
        (0..).map_while(|i| c.usage(i).ok()).collect::<Vec<_>>()
    });
    assert_eq!(rows.len(), 6);
    assert!(rows
        .iter()
        .all(|r| !r.measured && r.used == 0 && r.budget == 1 << 20));
    server.supervisor().check().unwrap();
}

#[test]
fn proc_builds_spawns_kills_and_restarts_the_other_components() {
    let s = system_with(|name| match name {
        "svc" => RestartPolicy::Always {
            max: 2,
            backoff_ms: 100,
        },
        _ => RestartPolicy::Never,
    });
    let mut server = ProcServer::new(s.clone(), Log::default());
    server.start_all();
    let (app, svc) = (ComponentId(4), ComponentId(5));
    assert_eq!(server.effects().started, vec![(4, 1), (5, 1)]);
    with_client(&mut server, 0, |c| {
        assert_eq!(c.list(0).unwrap().state, api::State::Running);
        assert_eq!(c.list(5).unwrap().state, api::State::Running);
        // caps: exactly the table proc built from, no role grants.
        let caps: Vec<_> = (0..).map_while(|i| c.caps(svc, i).ok()).collect();
        assert_eq!(caps, proc::grants::granted(&s, svc).unwrap());
        let slots: Vec<u64> = caps.iter().map(|c| c.slot).collect();
        assert_eq!(slots, vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(caps[4].badge, proto::badge(svc));
        assert_eq!(caps[4].grant.unwrap(), "naming");
        assert_eq!(caps[5].grant.unwrap(), "svc");
        assert_eq!(caps[3].badge, proc::grants::fault_badge(svc));
        assert!(!(0..)
            .map_while(|i| c.caps(app, i).ok())
            .any(|c| c.slot == 6));
        // kill: policy never stops it; spawn starts it again.
        assert_eq!(c.kill(app), Ok(()));
        assert_eq!(c.list(4).unwrap().state, api::State::Exited);
        assert_eq!(c.caps(app, 0), Err(api::Error::NoEntry));
        assert_eq!(c.kill(app), Err(api::Error::NotRunning));
        assert_eq!(c.spawn(Name::new("app").unwrap()), Ok(app));
        assert_eq!(
            c.spawn(Name::new("app").unwrap()),
            Err(api::Error::AlreadyRunning)
        );
        // kill: policy always restarts it after its back-off.
        assert_eq!(c.kill(svc), Ok(()));
        let row = c.list(5).unwrap();
        assert_eq!((row.state, row.restarts), (api::State::Restarting, 1));
    });
    assert_eq!(server.tick(), Some(100));
    server.effects_mut().now = 100;
    assert_eq!(server.tick(), None);
    assert_eq!(server.effects().started.last(), Some(&(5, 2)));
    assert_eq!(server.supervisor().state(svc), Some(proc::State::Running));
    // Faults: reported in one line, restarted twice, then stopped.
    for round in 0..3 {
        server.fault(svc, proc::FaultKind::VmFault, 0x10);
        let now = server.effects().now + 1000;
        server.effects_mut().now = now;
        server.tick();
        let expected = if round < 2 {
            proc::State::Running
        } else {
            proc::State::Stopped
        };
        assert_eq!(server.supervisor().state(svc), Some(expected), "{round}");
    }
    let log = server.effects();
    let faults: Vec<_> = log
        .lines
        .iter()
        .filter(|l| l.starts_with("fault:"))
        .collect();
    assert_eq!(faults.len(), 3);
    assert_eq!(faults[0], "fault: component=svc kind=VmFault addr=0x10");
    assert!(log
        .lines
        .iter()
        .any(|l| l == "stopped: component=svc after 2 restarts in a row"));
    assert_eq!(log.started.iter().filter(|s| s.0 == 5).count(), 4);
    assert!(log.live == vec![4], "{:?}", log.live);
    // Every ended instance was released and withdrawn.
    assert_eq!(log.released.iter().filter(|&&r| r == 5).count(), 4);
    assert_eq!(log.withdrawn.iter().filter(|&&r| r == 5).count(), 4);
    server.supervisor().check().unwrap();
}

#[test]
fn a_start_that_fails_is_reported_and_cleaned_up() {
    let mut server = ProcServer::new(system(), Log::default());
    server.effects_mut().no_memory = true;
    server.start_all();
    let app = ComponentId(4);
    assert_eq!(server.supervisor().state(app), Some(proc::State::Stopped));
    with_client(&mut server, 0, |c| {
        assert_eq!(
            c.spawn(Name::new("app").unwrap()),
            Err(api::Error::OutOfMemory)
        );
    });
    let log = server.effects();
    assert!(log
        .lines
        .iter()
        .any(|l| l == "cannot start: component=app (out of memory)"));
    assert!(log.released.contains(&4) && log.withdrawn.contains(&4));
    server.supervisor().check().unwrap();
}

/// A 19-word unknown-syscall fault message (x86_64 layout) for syscall `number` with `rdi`.
fn unknown_syscall_message(number: i64, rdi: u64) -> Vec<u64> {
    use sel4::fault::unknown_syscall as u;
    let mut words = vec![0; u::LENGTH];
    words[u::RDI] = rdi;
    words[u::FAULT_IP] = 0x40_1234;
    words[u::SYSCALL] = number as u64;
    words
}

#[test]
fn ending_messages_are_decoded_from_the_fault_endpoint() {
    use proc::{decode_ending, Ending, FaultKind};
    use rt::startinfo::ending;
    let label = sel4::FaultTag::UnknownSyscall as u64;
    assert_eq!(
        decode_ending(label, &unknown_syscall_message(ending::EXIT, 7)),
        Ending::Exit(7)
    );
    assert_eq!(
        decode_ending(label, &unknown_syscall_message(ending::PANIC, 2)),
        Ending::Fault {
            kind: FaultKind::Panic,
            addr: 0x40_1234
        }
    );
    // Any other number is an ordinary unknown syscall; a short message never reads as an end.
    assert_eq!(
        decode_ending(label, &unknown_syscall_message(-99, 0)),
        Ending::Fault {
            kind: FaultKind::UnknownSyscall,
            addr: 0x40_1234
        }
    );
    let short = &unknown_syscall_message(ending::EXIT, 0)[..5];
    assert!(matches!(
        decode_ending(label, short),
        Ending::Fault {
            kind: FaultKind::UnknownSyscall,
            ..
        }
    ));
    assert!(matches!(
        decode_ending(4242, &[]),
        Ending::Fault {
            kind: FaultKind::Unknown(4242),
            ..
        }
    ));
}

#[test]
fn a_panic_is_reported_and_restarted_and_an_exit_is_not() {
    let s = system_with(|name| match name {
        "svc" | "app" => RestartPolicy::Always {
            max: 3,
            backoff_ms: 50,
        },
        _ => RestartPolicy::Never,
    });
    let mut server = ProcServer::new(s, Log::default());
    server.start_all();
    let (app, svc) = (ComponentId(4), ComponentId(5));
    server.fault(svc, proc::FaultKind::Panic, 0x40_1234);
    assert!(server
        .effects()
        .lines
        .iter()
        .any(|l| l == "fault: component=svc kind=Panic addr=0x401234"));
    server.effects_mut().now = 1000;
    server.tick();
    assert_eq!(server.supervisor().state(svc), Some(proc::State::Running));
    assert_eq!(server.effects().started.last(), Some(&(5, 2)));
    // An exit ends it for good, whatever the policy, and is reported with its status.
    server.ended(app, 3);
    assert_eq!(server.supervisor().state(app), Some(proc::State::Exited(3)));
    assert!(server
        .effects()
        .lines
        .iter()
        .any(|l| l == "exit: component=app status=3"));
    assert!(!server.effects().live.contains(&4));
    assert_eq!(server.tick(), None);
    // A second end event for the same instance is reported and ignored.
    server.ended(app, 3);
    assert!(server.effects().lines.last().unwrap().contains("ignored"));
    server.supervisor().check().unwrap();
}
