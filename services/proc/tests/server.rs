//! `proto::proc` over the supervisor: listing, exit with its clean-up, wait, and what proc
//! refuses while the root task builds every component.

use std::collections::BTreeMap;

use proc::{Effects, ProcServer};
use proto::proc::{self as api, ProcClient};
use proto::{ComponentId, Loopback, Message, Name};
use sysdesc::{Component, RestartPolicy, System};

#[derive(Default)]
struct Log {
    lines: Vec<String>,
    released: Vec<u16>,
    withdrawn: Vec<u16>,
}

impl Effects for Log {
    fn can_destroy(&self, _: ComponentId) -> bool {
        false
    }
    fn destroy(&mut self, id: ComponentId) {
        panic!("destroy {id:?} of a component proc did not build");
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
        0
    }
    fn halt(&mut self, status: u32) {
        self.lines.push(format!("halted {status}"));
    }
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
        restart: RestartPolicy::Never,
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
        assert_eq!(c.list(5), Err(api::Error::NoEntry));
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
