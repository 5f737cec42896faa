//! The supervisor's transitions: restart with back-off, bounded restarts, policies, kill,
//! wait, spawn errors, generations, and a long random run.

use proc::{fault_line, Action, Error, FaultKind, Identity, Outcome, State, Supervisor};
use std::collections::BTreeMap;

use sysdesc::{Component, ComponentId, RestartPolicy, System};

/// The four fundamental services, `net` (restarted up to 3 times after 100 ms), `app` (never
/// restarted) and `slow` (up to 20 times after 1 s).
///
/// Built as a value rather than parsed from TOML: the TOML front end needs `std` (through
/// serde), and as a dev-dependency it would be unified into the component binary's build.
fn system() -> System {
    const MIB: u64 = 1 << 20;
    let component = |name: &str, priority: u8, restart: RestartPolicy| Component {
        name: name.into(),
        binary: name.into(),
        priority,
        memory: MIB,
        fundamental: sysdesc::FUNDAMENTAL.contains(&name),
        provides: if name == "net" {
            vec!["net".into()]
        } else {
            Vec::new()
        },
        routes: match name {
            "proc" | "devices" => vec!["memory".into()],
            "app" => vec!["net".into()],
            _ => Vec::new(),
        },
        devices: Vec::new(),
        shared: Vec::new(),
        restart,
        args: BTreeMap::new(),
    };
    let always = |max, backoff_ms| RestartPolicy::Always { max, backoff_ms };
    let s = System {
        name: "test".into(),
        description: String::new(),
        memory: 512 * MIB,
        components: vec![
            component("naming", 250, RestartPolicy::Never),
            component("proc", 252, RestartPolicy::Never),
            component("memory", 251, RestartPolicy::Never),
            component("devices", 251, RestartPolicy::Never),
            component("net", 200, always(3, 100)),
            component("app", 100, RestartPolicy::Never),
            component("slow", 100, always(20, 1000)),
        ],
        devices: Vec::new(),
        shared: Vec::new(),
    };
    s.validate().expect("valid");
    s
}

fn setup() -> (System, Supervisor) {
    let s = system();
    let mut sup = Supervisor::new(&s);
    for name in sysdesc::FUNDAMENTAL {
        sup.adopt(s.component_id(name).unwrap(), 0).unwrap();
    }
    (s, sup)
}

fn id(s: &System, name: &str) -> ComponentId {
    s.component_id(name).unwrap()
}

/// Spawns `name` and reports it started at `now`.
fn run(s: &System, sup: &mut Supervisor, name: &str, now: u64) -> Identity {
    let who = sup.spawn(name).unwrap();
    sup.started(id(s, name), now).unwrap();
    who
}

fn restart_at(actions: &[Action]) -> Option<u64> {
    actions.iter().find_map(|a| match a {
        Action::Restart { at_ms, .. } => Some(*at_ms),
        _ => None,
    })
}

fn reports(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Report(r) => Some(r.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn fault_restarts_after_a_doubling_backoff() {
    let (s, mut sup) = setup();
    let net = id(&s, "net");
    run(&s, &mut sup, "net", 0);
    let mut now = 50;
    for (i, delay) in [100u64, 200, 400].into_iter().enumerate() {
        let actions = sup.faulted(net, FaultKind::VmFault, 0xdead, now).unwrap();
        assert!(actions.contains(&Action::ReleaseMemory(net)));
        assert!(actions.contains(&Action::Unregister(net)));
        assert_eq!(restart_at(&actions), Some(now + delay));
        assert_eq!(sup.next_deadline(), Some(now + delay));
        // Not yet due.
        assert!(sup.tick(now + delay - 1).is_empty());
        let start = sup.tick(now + delay);
        let generation = i as u32 + 2;
        assert_eq!(
            start,
            [Action::Start {
                id: net,
                generation
            }]
        );
        assert_eq!(sup.state(net), Some(State::Starting));
        sup.started(net, now + delay).unwrap();
        now += delay + 10;
    }
    assert_eq!(sup.list()[net.index()].restarts, 3);
}

#[test]
fn restarts_are_bounded_then_stopped() {
    let (s, mut sup) = setup();
    let net = id(&s, "net");
    run(&s, &mut sup, "net", 0);
    let mut now = 0;
    for _ in 0..3 {
        let at = restart_at(&sup.faulted(net, FaultKind::CapFault, 1, now).unwrap()).unwrap();
        sup.tick(at);
        sup.started(net, at).unwrap();
        now = at + 1;
    }
    let actions = sup.faulted(net, FaultKind::CapFault, 1, now).unwrap();
    assert_eq!(restart_at(&actions), None);
    assert_eq!(sup.state(net), Some(State::Stopped));
    assert!(reports(&actions).contains(&"stopped: component=net after 3 restarts in a row"));
    assert!(sup.tick(u64::MAX).is_empty());
    assert_eq!(sup.next_deadline(), None);
    // A manual spawn starts a fresh row.
    run(&s, &mut sup, "net", now + 1);
    let actions = sup.faulted(net, FaultKind::CapFault, 1, now + 2).unwrap();
    assert_eq!(restart_at(&actions), Some(now + 2 + 100));
    sup.check().unwrap();
}

#[test]
fn a_stable_run_ends_the_row_and_backoff_is_capped() {
    let (s, mut sup) = setup();
    let slow = id(&s, "slow");
    run(&s, &mut sup, "slow", 0);
    let mut now = 0;
    let mut delays = Vec::new();
    for _ in 0..8 {
        let at = restart_at(&sup.faulted(slow, FaultKind::UserException, 0, now).unwrap()).unwrap();
        delays.push(at - now);
        sup.tick(at);
        sup.started(slow, at).unwrap();
        now = at;
    }
    assert_eq!(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    // Running for STABLE_MS forgives the crashes.
    now += proc::STABLE_MS;
    let at = restart_at(&sup.faulted(slow, FaultKind::UserException, 0, now).unwrap()).unwrap();
    assert_eq!(at - now, 1000);
}

#[test]
fn never_policy_stays_down() {
    let (s, mut sup) = setup();
    let app = id(&s, "app");
    run(&s, &mut sup, "app", 0);
    let actions = sup.faulted(app, FaultKind::VmFault, 0x10, 5).unwrap();
    assert_eq!(restart_at(&actions), None);
    assert_eq!(
        sup.state(app),
        Some(State::Faulted {
            kind: FaultKind::VmFault,
            addr: 0x10
        })
    );
    assert_eq!(
        reports(&actions),
        ["fault: component=app kind=VmFault addr=0x10"]
    );
    assert!(sup.tick(1_000_000).is_empty());
    // It can be spawned again by hand.
    assert!(sup.spawn("app").is_ok());
}

#[test]
fn fundamental_components_are_never_restarted() {
    let (s, mut sup) = setup();
    let memory = id(&s, "memory");
    assert_eq!(sup.spawn("memory"), Err(Error::Fundamental));
    assert_eq!(sup.kill(memory, 0), Err(Error::Fundamental));
    let actions = sup.faulted(memory, FaultKind::VmFault, 0, 10).unwrap();
    assert_eq!(restart_at(&actions), None);
    assert!(reports(&actions)[1].contains("fundamental"));
    assert!(matches!(sup.state(memory), Some(State::Faulted { .. })));
    assert_eq!(sup.spawn("memory"), Err(Error::Fundamental));
    assert!(sup.tick(u64::MAX).is_empty());
    sup.check().unwrap();
}

#[test]
fn kill_wakes_waiters_then_the_policy_applies() {
    let (s, mut sup) = setup();
    let net = id(&s, "net");
    run(&s, &mut sup, "net", 0);
    assert_eq!(sup.wait(net, 7), Ok(None));
    assert_eq!(sup.wait(net, 8), Ok(None));
    let actions = sup.kill(net, 5).unwrap();
    assert_eq!(actions[0], Action::Destroy(net));
    assert!(actions.contains(&Action::ReleaseMemory(net)));
    assert!(actions.contains(&Action::WakeWaiters {
        id: net,
        status: Outcome::Killed,
        waiters: vec![7, 8]
    }));
    // Policy `always`: back after its base back-off; a kill is not a crash in a row.
    assert_eq!(sup.state(net), Some(State::Restarting { at_ms: 105 }));
    assert!(actions.contains(&Action::Restart {
        id: net,
        at_ms: 105
    }));
    assert_eq!(sup.list()[net.index()].restarts, 1);
    assert_eq!(
        sup.tick(105),
        vec![Action::Start {
            id: net,
            generation: 2
        }]
    );
    sup.started(net, 106).unwrap();
    // Killing it while it waits to restart stops it for good.
    sup.kill(net, 200).unwrap();
    let actions = sup.kill(net, 201).unwrap();
    assert!(!actions.contains(&Action::Destroy(net)));
    assert_eq!(sup.state(net), Some(State::Stopped));
    assert!(sup.tick(u64::MAX).is_empty());
    assert_eq!(sup.kill(net, 6), Err(Error::NotRunning));
    assert_eq!(sup.killed(net, 6), Err(Error::NotRunning));
    // Waiting on an ended component answers at once.
    assert_eq!(sup.wait(net, 9), Ok(Some(Outcome::Killed)));
    // Policy `never`: stopped at once.
    let app = id(&s, "app");
    run(&s, &mut sup, "app", 300);
    let actions = sup.kill(app, 301).unwrap();
    assert_eq!(actions[0], Action::Destroy(app));
    assert_eq!(sup.state(app), Some(State::Stopped));
    sup.check().unwrap();
}

#[test]
fn kill_cancels_a_pending_restart() {
    let (s, mut sup) = setup();
    let net = id(&s, "net");
    run(&s, &mut sup, "net", 0);
    sup.faulted(net, FaultKind::VmFault, 0, 1).unwrap();
    sup.wait(net, 3).unwrap();
    let actions = sup.kill(net, 2).unwrap();
    assert!(
        !actions.contains(&Action::Destroy(net)),
        "nothing to destroy"
    );
    assert!(
        !actions.contains(&Action::ReleaseMemory(net)),
        "released at the fault"
    );
    assert!(actions.contains(&Action::WakeWaiters {
        id: net,
        status: Outcome::Killed,
        waiters: vec![3]
    }));
    assert!(sup.tick(u64::MAX).is_empty());
    assert_eq!(sup.state(net), Some(State::Stopped));
}

#[test]
fn exit_status_reaches_waiters() {
    let (s, mut sup) = setup();
    let app = id(&s, "app");
    assert_eq!(sup.wait(app, 1), Err(Error::NotRunning), "never started");
    sup.spawn("app").unwrap();
    assert_eq!(
        sup.wait(app, 1),
        Ok(None),
        "waiting on a starting component"
    );
    sup.started(app, 0).unwrap();
    let actions = sup.exited(app, 42, 10).unwrap();
    assert_eq!(
        actions,
        [
            Action::Report("exit: component=app status=42".into()),
            Action::ReleaseMemory(app),
            Action::Unregister(app),
            Action::WakeWaiters {
                id: app,
                status: Outcome::Exited(42),
                waiters: vec![1]
            },
        ]
    );
    assert_eq!(sup.state(app), Some(State::Exited(42)));
    assert_eq!(sup.wait(app, 2), Ok(Some(Outcome::Exited(42))));
    assert_eq!(sup.exited(app, 0, 11), Err(Error::NotRunning));
    // Exit is not a crash: no restart even under policy `always`.
    let net = id(&s, "net");
    run(&s, &mut sup, "net", 0);
    assert_eq!(restart_at(&sup.exited(net, 0, 1).unwrap()), None);
}

#[test]
fn a_fault_wakes_waiters_of_that_instance() {
    let (s, mut sup) = setup();
    let net = id(&s, "net");
    run(&s, &mut sup, "net", 0);
    sup.wait(net, 5).unwrap();
    let actions = sup
        .faulted(net, FaultKind::UnknownSyscall, 0x40, 1)
        .unwrap();
    assert!(actions.contains(&Action::WakeWaiters {
        id: net,
        status: Outcome::Faulted {
            kind: FaultKind::UnknownSyscall,
            addr: 0x40
        },
        waiters: vec![5]
    }));
}

#[test]
fn spawn_errors() {
    let (s, mut sup) = setup();
    assert_eq!(sup.spawn("nobody"), Err(Error::UnknownComponent));
    run(&s, &mut sup, "app", 0);
    assert_eq!(sup.spawn("app"), Err(Error::AlreadyRunning));
    let net = id(&s, "net");
    sup.spawn("net").unwrap();
    assert_eq!(sup.spawn("net"), Err(Error::AlreadyRunning), "starting");
    sup.started(net, 0).unwrap();
    sup.faulted(net, FaultKind::VmFault, 0, 1).unwrap();
    assert_eq!(
        sup.spawn("net"),
        Err(Error::AlreadyRunning),
        "restart pending"
    );
    let ghost = ComponentId(999);
    assert_eq!(sup.kill(ghost, 0), Err(Error::UnknownComponent));
    assert_eq!(sup.started(ghost, 0), Err(Error::UnknownComponent));
    assert_eq!(sup.state(ghost), None);
    assert_eq!(sup.started(net, 0), Err(Error::BadState));
    assert_eq!(sup.adopt(net, 0), Err(Error::BadState));
}

#[test]
fn generations_detect_stale_identities() {
    let (s, mut sup) = setup();
    let net = id(&s, "net");
    assert_eq!(sup.identity(net).unwrap().generation, 0);
    let first = run(&s, &mut sup, "net", 0);
    assert_eq!(first.generation, 1);
    assert_eq!(sup.check_identity(first), Ok(()));
    let at = restart_at(&sup.faulted(net, FaultKind::VmFault, 0, 1).unwrap()).unwrap();
    assert_eq!(sup.check_identity(first), Err(Error::NotRunning));
    sup.tick(at);
    let second = sup.identity(net).unwrap();
    assert_eq!(second.generation, 2);
    assert_eq!(sup.check_identity(first), Err(Error::ServerRestarted));
    assert_eq!(
        sup.check_identity(second),
        Err(Error::NotRunning),
        "still starting"
    );
    sup.started(net, at).unwrap();
    assert_eq!(sup.check_identity(second), Ok(()));
    let row = sup.list()[net.index()];
    assert_eq!((row.name, row.generation, row.restarts), ("net", 2, 1));
    assert_eq!(row.state, State::Running);
}

#[test]
fn listing_and_fault_lines() {
    let (s, sup) = setup();
    let rows = sup.list();
    assert_eq!(rows.len(), s.components.len());
    assert_eq!(rows[0].name, "naming");
    assert_eq!(rows[0].state, State::Running);
    assert_eq!(rows[id(&s, "app").index()].state, State::NotStarted);
    let line = rows[id(&s, "net").index()].to_string();
    assert!(
        line.contains("net") && line.contains("not-started"),
        "{line}"
    );
    assert_eq!(
        fault_line("x", FaultKind::Unknown(99), 0xffff_8000_0000_0000),
        "fault: component=x kind=unknown(label 99) addr=0xffff800000000000"
    );
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn long_random_event_sequences_never_panic_and_stay_consistent() {
    let (s, _) = setup();
    let names: Vec<&str> = s.components.iter().map(|c| c.name.as_str()).collect();
    let kinds = [
        FaultKind::VmFault,
        FaultKind::CapFault,
        FaultKind::UnknownSyscall,
        FaultKind::UserException,
        FaultKind::Unknown(3),
    ];
    for seed in 1..=20u64 {
        let (_, mut sup) = setup();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut now = 0u64;
        let mut generations: Vec<u32> = (0..=names.len())
            .map(|i| {
                sup.identity(ComponentId(i as u16))
                    .map_or(0, |w| w.generation)
            })
            .collect();
        for _ in 0..5000 {
            now += rng.below(300);
            // One id past the end, to exercise unknown ids.
            let i = rng.below(names.len() as u64 + 1) as usize;
            let c = ComponentId(i as u16);
            let _ = match rng.below(9) {
                0 => sup
                    .spawn(names.get(i).copied().unwrap_or("ghost"))
                    .map(|_| vec![]),
                1 => sup.started(c, now).map(|_| vec![]),
                2 => sup.exited(c, rng.below(4) as u32, now),
                3 => sup.faulted(c, kinds[rng.below(5) as usize], rng.below(1 << 20), now),
                4 => sup.killed(c, now),
                5 => sup.kill(c, now),
                6 => sup.wait(c, rng.below(100)).map(|_| vec![]),
                _ => Ok(sup.tick(now)),
            };
            sup.check().unwrap();
            for (j, g) in generations.iter_mut().enumerate() {
                let now_gen = sup
                    .identity(ComponentId(j as u16))
                    .map_or(0, |w| w.generation);
                assert!(now_gen >= *g, "generation went back");
                *g = now_gen;
            }
            if let Some(d) = sup.next_deadline() {
                assert!(d >= now.saturating_sub(300 * 5000));
            }
        }
        assert_eq!(sup.list().len(), names.len());
    }
}
