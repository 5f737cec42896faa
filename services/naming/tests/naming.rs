//! The naming service against a small description: routing, provider checks, restarts and
//! garbage.

use naming::{CapOps, NamingServer, NoRoom, Registry};
use proto::naming::{dispatch, Binding, Error, NamingClient, Request};
use proto::{CapSlot, ComponentId, Loopback, Message, Name};

const SYSTEM: &str = r#"
[system]
name = "test"
memory = "512MiB"

[[component]]
name = "naming"
fundamental = true
priority = 250
memory = "1MiB"

[[component]]
name = "proc"
fundamental = true
priority = 252
memory = "2MiB"
routes = ["memory"]

[[component]]
name = "memory"
fundamental = true
priority = 251
memory = "1MiB"

[[component]]
name = "devices"
fundamental = true
priority = 251
memory = "1MiB"
routes = ["memory"]

[[component]]
name = "serial"
priority = 200
memory = "256KiB"
provides = ["serial"]
routes = ["devices"]
devices = ["com1"]
restart = { policy = "always", max = 5, backoff_ms = 50 }

[[component]]
name = "hello"
priority = 50
memory = "256KiB"
routes = ["serial"]

[[component]]
name = "keystore"
priority = 60
memory = "256KiB"
provides = ["keys"]

[[device]]
name = "com1"
ioport = "0x3f8-0x3ff"
irq = { ioapic = 4 }
"#;

fn system() -> sysdesc::System {
    sysdesc_toml::parse(SYSTEM, "test.toml").expect("valid test system")
}

fn id(name: &str) -> ComponentId {
    system().component_id(name).unwrap()
}

fn badge(name: &str) -> u64 {
    proto::badge(id(name))
}

fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

/// Records what the shell would do with capabilities: slots 1000.. are naming's storage,
/// minted copies are 5000 + badge.
#[derive(Debug, Default)]
struct FakeCaps {
    next: u64,
    kept: Vec<u64>,
    released: Vec<u64>,
    minted: Vec<(u64, u64)>,
    full: bool,
}

impl CapOps for FakeCaps {
    type Handle = u64;
    fn keep(&mut self, received: CapSlot) -> Result<u64, NoRoom> {
        if self.full {
            return Err(NoRoom);
        }
        self.next += 1;
        self.kept.push(received.0);
        Ok(1000 + self.next)
    }
    fn mint(&mut self, endpoint: u64, badge: u64) -> Result<CapSlot, NoRoom> {
        if self.full {
            return Err(NoRoom);
        }
        self.minted.push((endpoint, badge));
        Ok(CapSlot(5000 + badge))
    }
    fn release(&mut self, endpoint: u64) {
        self.released.push(endpoint);
    }
}

fn server() -> NamingServer<FakeCaps> {
    NamingServer::new(system(), FakeCaps::default())
}

fn call(server: &mut NamingServer<FakeCaps>, from: &str, request: Request) -> Message {
    dispatch(server, badge(from), &request.encode().unwrap())
}

#[test]
fn routed_lookup_gets_a_badged_endpoint() {
    let mut s = server();
    let serial = NamingClient::new(Loopback(|m: &Message| dispatch(&mut s, badge("serial"), m)))
        .register(n("serial"), CapSlot(77));
    assert_eq!(serial, Ok(()));
    let mut hello = NamingClient::new(Loopback(|m: &Message| dispatch(&mut s, badge("hello"), m)));
    assert_eq!(
        hello.lookup(n("serial")),
        Ok(Binding {
            endpoint: CapSlot(5000 + badge("hello")),
            generation: 1
        })
    );
    assert_eq!(s.caps().kept, [77]);
    assert_eq!(s.caps().minted, [(1001, badge("hello"))]);
}

#[test]
fn unrouted_and_unknown_look_the_same() {
    let mut s = server();
    call(
        &mut s,
        "serial",
        Request::Register {
            name: n("serial"),
            endpoint: CapSlot(1),
        },
    );
    call(
        &mut s,
        "keystore",
        Request::Register {
            name: n("keys"),
            endpoint: CapSlot(2),
        },
    );
    let unrouted = call(&mut s, "hello", Request::Lookup { name: n("keys") });
    let unknown = call(
        &mut s,
        "hello",
        Request::Lookup {
            name: n("nonexistent"),
        },
    );
    let component = call(&mut s, "hello", Request::Lookup { name: n("proc") });
    assert_eq!(unrouted, Message::new(Error::NotFound as u64));
    assert_eq!(unknown, unrouted);
    assert_eq!(component, unrouted);
    // Routed but not registered yet: the same answer again.
    let mut fresh = server();
    assert_eq!(
        call(&mut fresh, "hello", Request::Lookup { name: n("serial") }),
        unrouted
    );
    assert!(s.caps().minted.is_empty());
}

#[test]
fn everyone_may_look_up_naming() {
    let mut s = server();
    assert_eq!(s.register_as(id("naming"), "naming", 1), Ok(1));
    let reply = call(&mut s, "hello", Request::Lookup { name: n("naming") });
    assert_eq!(reply.label, 0);
}

#[test]
fn only_the_provider_may_register() {
    let mut s = server();
    for (who, service) in [
        ("hello", "serial"),
        ("keystore", "serial"),
        ("serial", "keys"),
        ("hello", "ghost"),
    ] {
        let reply = call(
            &mut s,
            who,
            Request::Register {
                name: n(service),
                endpoint: CapSlot(9),
            },
        );
        assert_eq!(
            reply.label,
            Error::Denied as u64,
            "{who} registering {service}"
        );
    }
    let unbadged = dispatch(
        &mut s,
        0,
        &Request::Register {
            name: n("serial"),
            endpoint: CapSlot(9),
        }
        .encode()
        .unwrap(),
    );
    assert_eq!(unbadged.label, Error::Denied as u64);
    assert!(
        s.caps().kept.is_empty(),
        "a denied capability is never kept"
    );
    assert_eq!(s.register_as(id("hello"), "serial", 3), Err(Error::Denied));
}

#[test]
fn restart_re_registration_replaces_and_bumps_the_generation() {
    let mut s = server();
    call(
        &mut s,
        "serial",
        Request::Register {
            name: n("serial"),
            endpoint: CapSlot(10),
        },
    );
    // serial faults; proc withdraws its services, then the new instance registers.
    let withdraw = call(&mut s, "proc", Request::Withdraw { id: id("serial") });
    assert_eq!(withdraw, Message::with_words(0, &[1]).unwrap());
    assert_eq!(s.caps().released, [1001]);
    assert_eq!(
        call(&mut s, "hello", Request::Lookup { name: n("serial") }).label,
        Error::NotFound as u64
    );
    call(
        &mut s,
        "serial",
        Request::Register {
            name: n("serial"),
            endpoint: CapSlot(11),
        },
    );
    let reply = call(&mut s, "hello", Request::Lookup { name: n("serial") });
    assert_eq!(reply.words(), [2], "generation 2");
    // Registering again without dying replaces the old endpoint, which is released.
    call(
        &mut s,
        "serial",
        Request::Register {
            name: n("serial"),
            endpoint: CapSlot(12),
        },
    );
    assert_eq!(s.caps().released, [1001, 1002]);
    assert_eq!(s.registry().generation("serial"), 3);
}

#[test]
fn withdraw_is_for_proc_only() {
    let mut s = server();
    call(
        &mut s,
        "serial",
        Request::Register {
            name: n("serial"),
            endpoint: CapSlot(10),
        },
    );
    let reply = call(&mut s, "hello", Request::Withdraw { id: id("serial") });
    assert_eq!(reply.label, Error::Denied as u64);
    assert_eq!(
        call(&mut s, "hello", Request::Lookup { name: n("serial") }).label,
        0
    );
}

#[test]
fn unregister_own_services_only() {
    let mut s = server();
    call(
        &mut s,
        "serial",
        Request::Register {
            name: n("serial"),
            endpoint: CapSlot(10),
        },
    );
    let by_other = call(&mut s, "hello", Request::Unregister { name: n("serial") });
    assert_eq!(by_other.label, Error::NotFound as u64);
    assert_eq!(
        call(&mut s, "serial", Request::Unregister { name: n("serial") }).label,
        0
    );
    assert_eq!(
        call(&mut s, "serial", Request::Unregister { name: n("serial") }).label,
        Error::NotFound as u64
    );
    assert_eq!(s.caps().released, [1001]);
    assert_eq!(s.registry().registered().count(), 0);
}

#[test]
fn out_of_slots_is_exhausted() {
    let mut s = server();
    call(
        &mut s,
        "serial",
        Request::Register {
            name: n("serial"),
            endpoint: CapSlot(10),
        },
    );
    let mut full = NamingServer::new(
        system(),
        FakeCaps {
            full: true,
            ..FakeCaps::default()
        },
    );
    let reply = call(
        &mut full,
        "serial",
        Request::Register {
            name: n("serial"),
            endpoint: CapSlot(10),
        },
    );
    assert_eq!(reply.label, Error::Exhausted as u64);
}

#[test]
fn registry_directly() {
    let mut r: Registry<u32> = Registry::new(system());
    let (serial, hello) = (id("serial"), id("hello"));
    assert_eq!(r.lookup(hello, "serial"), Err(naming::NotFound));
    let first = r.register(serial, "serial", 7).unwrap();
    assert_eq!((first.generation, first.replaced), (1, None));
    let found = r.lookup(hello, "serial").unwrap();
    assert_eq!((found.endpoint, found.provider), (7, serial));
    assert_eq!(r.register(hello, "serial", 8), Err(naming::Denied));
    assert_eq!(r.register(serial, "serial", 9).unwrap().replaced, Some(7));
    assert_eq!(r.unregister_all(serial), [9]);
    assert_eq!(r.unregister_all(serial), Vec::<u32>::new());
    assert_eq!(r.lookup(ComponentId(999), "serial"), Err(naming::NotFound));
}

/// xorshift64*, for the garbage test.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn a_thousand_malformed_messages() {
    let mut s = server();
    call(
        &mut s,
        "serial",
        Request::Register {
            name: n("serial"),
            endpoint: CapSlot(10),
        },
    );
    let mut rng = 0x1234_5678_u64;
    let valid = [
        Request::Lookup { name: n("serial") }.encode().unwrap(),
        Request::Register {
            name: n("serial"),
            endpoint: CapSlot(3),
        }
        .encode()
        .unwrap(),
        Request::Withdraw { id: id("keystore") }.encode().unwrap(),
    ];
    for i in 0..1000 {
        let base = valid[i % valid.len()];
        let mut words = base.words().to_vec();
        match next(&mut rng) % 5 {
            0 => words.truncate((next(&mut rng) % 6) as usize),
            1 if words.len() < proto::MAX_WORDS => words.push(next(&mut rng)),
            2 if !words.is_empty() => {
                let k = (next(&mut rng) as usize) % words.len();
                words[k] = next(&mut rng);
            }
            3 => {
                words = (0..next(&mut rng) % 17)
                    .map(|_| next(&mut rng) % 64)
                    .collect()
            }
            _ => words.insert(0, next(&mut rng) % 40),
        }
        let label = if next(&mut rng).is_multiple_of(4) {
            next(&mut rng)
        } else {
            next(&mut rng) % 6
        };
        let Ok(mut m) = Message::with_words(label, &words) else {
            continue;
        };
        m.cap = next(&mut rng)
            .is_multiple_of(2)
            .then_some(next(&mut rng) % 100);
        let badge = match next(&mut rng) % 3 {
            0 => next(&mut rng),
            _ => next(&mut rng) % 10,
        };
        let reply = dispatch(&mut s, badge, &m);
        assert!(
            reply.label == 0
                || <Error as proto::codec::ErrorCode>::from_code(reply.label).is_some(),
            "{m:?} -> {reply:?}"
        );
    }
    // Still serving, and still enforcing routes.
    assert_eq!(
        call(&mut s, "hello", Request::Lookup { name: n("serial") }).label,
        0
    );
    assert_eq!(
        call(&mut s, "hello", Request::Lookup { name: n("keys") }).label,
        Error::NotFound as u64
    );
}
