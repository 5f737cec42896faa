//! The shell over `Clients`, through the real proto encoding: each service is a proto
//! `Server` behind a `Loopback` transport, called with the shell's badge.

use proto::devices::{self, DeviceInfo, PciFunction, PhysFrame};
use proto::memory::{self, Allocation, SharedPage, Usage};
use proto::proc::{self, CapInfo, CapKind, ComponentInfo, ComponentUsage, State};
use proto::{naming, Bytes, CapSlot, ComponentId, Loopback, Message, Name};
use shell::clients::{Clients, Connect};
use shell::Shell;
use std::cell::RefCell;
use std::rc::Rc;

const SHELL: ComponentId = ComponentId(2);

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

/// One system serving proc, memory and devices.
struct Sys {
    components: Vec<ComponentInfo>,
    /// Badges the requests came with.
    badges: Vec<u64>,
    /// The badge and status of the last halt request.
    halted: Option<(u64, u32)>,
}

impl proc::Server for Sys {
    fn spawn(&mut self, badge: u64, n: Name) -> Result<ComponentId, proc::Error> {
        self.badges.push(badge);
        let c = self
            .components
            .iter_mut()
            .find(|c| c.name == n)
            .ok_or(proc::Error::NotFound)?;
        if c.state == State::Running {
            return Err(proc::Error::AlreadyRunning);
        }
        c.state = State::Running;
        Ok(c.id)
    }
    fn exit(&mut self, _: u64, _: u64) -> Result<(), proc::Error> {
        Err(proc::Error::Denied)
    }
    fn wait(&mut self, _: u64, _: ComponentId) -> Result<u64, proc::Error> {
        Err(proc::Error::StillRunning)
    }
    fn kill(&mut self, badge: u64, id: ComponentId) -> Result<(), proc::Error> {
        self.badges.push(badge);
        let c = self
            .components
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or(proc::Error::NotFound)?;
        if c.state != State::Running {
            return Err(proc::Error::NotRunning);
        }
        c.state = State::Restarting;
        c.restarts += 1;
        Ok(())
    }
    fn list(&mut self, badge: u64, index: u32) -> Result<ComponentInfo, proc::Error> {
        self.badges.push(badge);
        self.components
            .get(index as usize)
            .copied()
            .ok_or(proc::Error::NoEntry)
    }
    fn caps(&mut self, _: u64, id: ComponentId, index: u32) -> Result<CapInfo, proc::Error> {
        if usize::from(id.0) >= self.components.len() {
            return Err(proc::Error::NotFound);
        }
        let all = [
            CapInfo {
                slot: 1,
                kind: CapKind::Tcb,
                rights: 7,
                badge: 0,
                grant: None,
            },
            CapInfo {
                slot: 5,
                kind: CapKind::Endpoint,
                rights: 7,
                badge: u64::from(id.0) + 1,
                grant: Some(name("naming")),
            },
        ];
        all.get(index as usize).copied().ok_or(proc::Error::NoEntry)
    }

    fn usage(&mut self, badge: u64, index: u32) -> Result<ComponentUsage, proc::Error> {
        self.badges.push(badge);
        let c = self
            .components
            .get(index as usize)
            .ok_or(proc::Error::NoEntry)?;
        // As proc would: the shell's row measured (8 KiB, as memory tells the shell itself),
        // hello's not (memory did not answer).
        let budget = if c.name == "shell" { 4 << 20 } else { 1 << 20 };
        Ok(ComponentUsage {
            id: c.id,
            name: c.name,
            state: c.state,
            measured: c.name != "hello",
            used: if c.name == "shell" { 8192 } else { 0 },
            budget,
            heap: budget / 2,
            stack: 128 << 10,
        })
    }

    fn halt(&mut self, badge: u64, status: u32) -> Result<(), proc::Error> {
        // Record who asked; the real proc never replies Ok (the system is gone).
        self.halted = Some((badge, status));
        Err(proc::Error::Denied)
    }
}

impl memory::Server for Sys {
    fn alloc(&mut self, _: u64, _: u8) -> Result<Allocation, memory::Error> {
        Err(memory::Error::OverBudget)
    }
    fn free(&mut self, _: u64, _: u64) -> Result<(), memory::Error> {
        Err(memory::Error::NotFound)
    }
    fn usage(&mut self, badge: u64) -> Result<Usage, memory::Error> {
        self.badges.push(badge);
        Ok(Usage {
            used: 8192,
            budget: 4 << 20,
            free_total: 100 << 20,
        })
    }
    fn usage_of(&mut self, badge: u64, id: ComponentId) -> Result<Usage, memory::Error> {
        if proto::client(badge) == Some(id) {
            memory::Server::usage(self, badge)
        } else {
            Err(memory::Error::Denied)
        }
    }
    fn share(&mut self, _: u64, _: Name, _: u64) -> Result<SharedPage, memory::Error> {
        Err(memory::Error::NotFound)
    }
}

impl devices::Server for Sys {
    fn list(&mut self, _: u64, index: u32) -> Result<PciFunction, devices::Error> {
        (index < 2)
            .then_some(PciFunction {
                bus: 0,
                dev: index as u8,
                func: 0,
                vendor: 0x8086,
                device: 0x1237 + index as u16,
                class: 0x06_00_00,
            })
            .ok_or(devices::Error::NoEntry)
    }
    fn claim(&mut self, _: u64, _: Name) -> Result<DeviceInfo, devices::Error> {
        Err(devices::Error::NotFound)
    }
    fn bar(&mut self, _: u64, _: Name, _: u8, _: u64) -> Result<PhysFrame, devices::Error> {
        Err(devices::Error::NotFound)
    }
    fn irq(&mut self, _: u64, _: Name) -> Result<CapSlot, devices::Error> {
        Err(devices::Error::NotFound)
    }
    fn dma(&mut self, _: u64, _: u8) -> Result<PhysFrame, devices::Error> {
        Err(devices::Error::NotClaimed)
    }
}

type Transport = Loopback<Box<dyn FnMut(&Message) -> Message>>;
/// The services the shell asked naming to connect, in order.
type Connects = Rc<RefCell<Vec<&'static str>>>;

/// Naming as the shell sees it: the services it may reach, and how often each was asked for.
struct Naming {
    sys: Rc<RefCell<Sys>>,
    routed: Vec<&'static str>,
    connects: Connects,
}

impl Connect for Naming {
    type Transport = Transport;

    fn connect(&mut self, service: &'static str) -> Option<Transport> {
        self.connects.borrow_mut().push(service);
        if !self.routed.contains(&service) {
            return None;
        }
        let sys = self.sys.clone();
        let badge = proto::badge(SHELL);
        let serve: Box<dyn FnMut(&Message) -> Message> = match service {
            "proc" => Box::new(move |m| proc::dispatch(&mut *sys.borrow_mut(), badge, m)),
            "memory" => Box::new(move |m| memory::dispatch(&mut *sys.borrow_mut(), badge, m)),
            _ => Box::new(move |m| devices::dispatch(&mut *sys.borrow_mut(), badge, m)),
        };
        Some(Loopback(serve))
    }

    fn lookup(&mut self, n: Name) -> Result<u64, naming::Error> {
        let routed = self.routed.iter().any(|s| n == *s);
        routed.then_some(1).ok_or(naming::Error::NotFound)
    }
}

fn system(routed: &[&'static str]) -> (Clients<Naming>, Rc<RefCell<Sys>>, Connects) {
    let component = |id, n: &str, state| ComponentInfo {
        id: ComponentId(id),
        name: name(n),
        state,
        restarts: 0,
    };
    let sys = Rc::new(RefCell::new(Sys {
        components: vec![
            component(0, "naming", State::Running),
            component(1, "proc", State::Running),
            component(2, "shell", State::Running),
            component(3, "hello", State::Idle),
        ],
        badges: Vec::new(),
        halted: None,
    }));
    let connects = Rc::new(RefCell::new(Vec::new()));
    let naming = Naming {
        sys: sys.clone(),
        routed: routed.to_vec(),
        connects: connects.clone(),
    };
    (Clients::new(naming), sys, connects)
}

fn type_in(clients: &mut Clients<Naming>, input: &str) -> String {
    let mut out = Vec::new();
    Shell::new().feed(input.as_bytes(), clients, &mut out);
    String::from_utf8(out).unwrap().replace("\r\n", "\n")
}

#[test]
fn commands_go_through_the_proto_clients() {
    let (mut clients, sys, _) = system(&["proc", "memory", "devices"]);
    assert!(clients.connect_all().is_empty());
    let out = type_in(
        &mut clients,
        "spawn hello\rkill hello\rps\rcaps shell\rmem\rdevices\r",
    );
    let expected = "spawn hello\n\
        spawned hello (id 3)\n\
        tessera> kill hello\n\
        killed hello (id 3): 'ps' shows what proc does next\n\
        tessera> ps\n\
        ID  NAME    STATE       RESTARTS\n\
        0   naming  running     0\n\
        1   proc    running     0\n\
        2   shell   running     0\n\
        3   hello   restarting  1\n\
        tessera> caps shell\n\
        shell (id 2) holds 2 capabilities\n\
        SLOT  KIND      RIGHTS  BADGE  GRANT\n\
        1     tcb       rwg     -      -\n\
        5     endpoint  rwg     3      naming\n\
        tessera> mem\n\
        free memory: 100 MiB (104857600 bytes)\n\
        NAME    STATE       USED   BUDGET  HEAP     STACK\n\
        naming  running     0 B    1 MiB   512 KiB  128 KiB\n\
        proc    running     0 B    1 MiB   512 KiB  128 KiB\n\
        shell   running     8 KiB  4 MiB   2 MiB    128 KiB\n\
        hello   restarting  -      1 MiB   512 KiB  128 KiB\n\
        -: memory did not tell proc\n\
        tessera> devices\n\
        BUS:DEV.FN  VENDOR:DEVICE  CLASS   KIND\n\
        00:00.0     8086:1237      060000  bridge\n\
        00:01.0     8086:1238      060000  bridge\n\
        tessera> ";
    assert_eq!(out, expected);
    // Every request carried the shell's badge.
    let badges = &sys.borrow().badges;
    assert!(!badges.is_empty());
    assert!(badges.iter().all(|&b| b == proto::badge(SHELL)));
}

#[test]
fn proc_errors_come_through() {
    let (mut clients, _, _) = system(&["proc"]);
    let out = type_in(&mut clients, "spawn naming\rspawn ghost\rkill hello\r");
    assert_eq!(
        out,
        "spawn naming\nerror: spawn naming: already running\n\
         tessera> spawn ghost\nerror: spawn ghost: no such component\n\
         tessera> kill hello\nerror: kill hello: not running\n\
         tessera> "
    );
}

#[test]
fn missing_services_are_reported_and_asked_for_again() {
    let (mut clients, _, connects) = system(&["proc"]);
    assert_eq!(clients.connect_all(), ["memory", "devices"]);
    let out = type_in(&mut clients, "devices\rmem\rlookup proc\rlookup devices\r");
    assert_eq!(
        out,
        "devices\nerror: service devices is not available\n\
         tessera> mem\nerror: service memory is not available\n\
         NAME    STATE    USED   BUDGET  HEAP     STACK\n\
         naming  running  0 B    1 MiB   512 KiB  128 KiB\n\
         proc    running  0 B    1 MiB   512 KiB  128 KiB\n\
         shell   running  8 KiB  4 MiB   2 MiB    128 KiB\n\
         hello   idle     -      1 MiB   512 KiB  128 KiB\n\
         -: memory did not tell proc\n\
         tessera> lookup proc\nproc: found (generation 1): the shell is routed to it\n\
         tessera> lookup devices\ndevices: not found: no such service, not running yet, or \
         the shell is not routed to it (naming does not say which)\n\
         tessera> "
    );
    // proc was connected once and kept; the missing ones are tried again by each command.
    assert_eq!(
        *connects.borrow(),
        ["proc", "memory", "devices", "devices", "memory"]
    );
}

#[test]
fn halt_asks_proc_with_status_zero() {
    let (mut clients, sys, _) = system(&["proc"]);
    // The mock refuses (the real proc never answers a successful halt): the shell says so.
    assert_eq!(
        type_in(&mut clients, "halt\r"),
        "halt\nerror: halt: proc does not allow it\ntessera> "
    );
    let (badge, status) = sys.borrow().halted.expect("proc was asked to halt");
    assert_eq!((badge, status), (proto::badge(ComponentId(2)), 0));
}

#[test]
fn console_sized_chunks_fit_a_message() {
    // main.rs writes output in MAX_BYTES chunks: each must fit one console write.
    let out = "x".repeat(1000);
    for chunk in out.as_bytes().chunks(proto::MAX_BYTES) {
        assert!(Bytes::new(chunk).is_some());
    }
}
