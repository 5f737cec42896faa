//! The network service's arguments and front door against a fake platform.

use std::collections::HashMap;

use libos_core::net::wire::Geometry;
use libos_core::{channel, ClientLimits, Link};
use libos_sel4::stack::ArgError;
use net::{Config, ConfigError, Front, Platform};
use proto::net::{dispatch, Error, NetClient, Server};
use proto::{CapSlot, Loopback, Name, Transport};

fn args<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
    move |k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
}

fn name(text: &str) -> Name {
    Name::new(text).unwrap()
}

const TWO: &[(&str, &str)] = &[
    ("address", "10.0.2.15/24"),
    ("clients", "a-net:5201, b-net:5202-5203"),
];

#[test]
fn parses_clients_ports_and_limits() {
    let c = Config::parse(args(TWO)).unwrap();
    assert_eq!(c.clients.len(), 2);
    assert_eq!(c.clients[0].region, name("a-net"));
    assert_eq!(c.clients[1].ports, 5202..=5203);
    assert_eq!(c.limits_of(0).ports, 5201..=5201);
    assert_eq!(
        c.limits_of(1).max_sockets,
        ClientLimits::default().max_sockets
    );
    assert_eq!(c.tick_ms, net::DEFAULT_TICK_MS);
    let mut more = TWO.to_vec();
    more.extend([
        ("max_sockets", "4"),
        ("tick_ms", "20"),
        ("rx_buffers", "32"),
    ]);
    let c = Config::parse(args(&more)).unwrap();
    assert_eq!((c.limits.max_sockets, c.tick_ms), (4, 20));
    assert_eq!(c.limits_of(1).rx_buffers_per_socket, 32);
}

#[test]
fn refuses_bad_arguments_naming_them() {
    let bad = |pairs: &[(&str, &str)]| Config::parse(args(pairs)).unwrap_err();
    assert_eq!(
        bad(&[("clients", "a:1")]),
        ConfigError::Stack(ArgError::NoAddress)
    );
    for clients in [
        "",
        "a-net",
        "a-net:0",
        "a-net:9-8",
        "a-net:1,a-net:2",
        "a-net:x",
    ] {
        assert_eq!(
            bad(&[("address", "10.0.2.15/24"), ("clients", clients)]),
            ConfigError::Clients,
            "{clients:?}"
        );
    }
    let mut too_many = TWO.to_vec();
    too_many.push(("max_sockets", "0"));
    assert_eq!(bad(&too_many), ConfigError::Bad("max_sockets"));
    let mut slow = TWO.to_vec();
    slow.push(("tick_ms", "5000"));
    assert_eq!(bad(&slow), ConfigError::Bad("tick_ms"));
    assert!(ConfigError::Clients.to_string().contains("REGION:PORT"));
}

/// Regions with headers, kept notifications, and a record of the server's calls.
#[derive(Default)]
struct Fake {
    nonces: HashMap<usize, Option<u64>>,
    wakes: HashMap<usize, u64>,
    attached: Vec<ClientLimits>,
    reattached: Vec<usize>,
    small: bool,
}

impl Platform for Fake {
    type Client = usize;

    fn header_nonce(&self, index: usize) -> Option<u64> {
        self.nonces.get(&index).copied().flatten()
    }

    fn keep_wake(&mut self, index: usize, wake: CapSlot) -> bool {
        self.wakes.insert(index, wake.0);
        true
    }

    fn link(&mut self, _index: usize) -> Option<Box<dyn Link>> {
        let geometry = Geometry {
            buffer_size: 4096,
            buffers: 4,
        };
        (!self.small).then(|| Box::new(channel(geometry, 16).0) as Box<dyn Link>)
    }

    fn attach(&mut self, _link: Box<dyn Link>, limits: ClientLimits) -> usize {
        self.attached.push(limits);
        self.attached.len() - 1
    }

    fn reattach(&mut self, client: usize, _link: Box<dyn Link>) {
        self.reattached.push(client);
    }

    fn signal_cap(&mut self, index: usize) -> Option<CapSlot> {
        Some(CapSlot(1000 + index as u64))
    }
}

fn front() -> Front<Fake> {
    let mut fake = Fake::default();
    fake.nonces.insert(0, Some(0xa11ce));
    fake.nonces.insert(1, Some(0xb0b));
    Front::new(fake, Config::parse(args(TWO)).unwrap())
}

#[test]
fn a_client_attaches_with_its_nonce_and_gets_its_ports() {
    let mut f = front();
    let got = f.attach(7, name("b-net"), 0xb0b, CapSlot(70)).unwrap();
    assert_eq!(got, CapSlot(1001));
    assert_eq!(f.platform().wakes[&1], 70);
    assert_eq!(f.platform().attached[0].ports, 5202..=5203);
    assert_eq!(f.clients(), &[None, Some(0)]);
}

#[test]
fn wrong_nonce_unknown_region_and_bad_header_learn_nothing() {
    let mut f = front();
    // Another client's region with a guessed nonce: the same answer as no such region.
    assert_eq!(
        f.attach(7, name("a-net"), 0xb0b, CapSlot(70)),
        Err(Error::NotFound)
    );
    assert_eq!(
        f.attach(7, name("c-net"), 0xb0b, CapSlot(70)),
        Err(Error::NotFound)
    );
    f.platform().nonces.insert(0, None);
    assert_eq!(
        f.attach(7, name("a-net"), 0xa11ce, CapSlot(70)),
        Err(Error::BadRegion)
    );
    f.platform().small = true;
    f.platform().nonces.insert(0, Some(0xa11ce));
    assert_eq!(
        f.attach(7, name("a-net"), 0xa11ce, CapSlot(70)),
        Err(Error::BadRegion)
    );
    assert_eq!(f.counters().refused, 4);
    assert!(f.platform().attached.is_empty());
    assert_eq!(f.clients(), &[None, None]);
}

#[test]
fn attaching_again_resets_only_that_client() {
    let mut f = front();
    f.attach(1, name("a-net"), 0xa11ce, CapSlot(10)).unwrap();
    f.attach(2, name("b-net"), 0xb0b, CapSlot(20)).unwrap();
    // a restarts: a fresh nonce in its header, a fresh notification.
    f.platform().nonces.insert(0, Some(0xa11ce2));
    assert_eq!(
        f.attach(3, name("a-net"), 0xa11ce, CapSlot(30)),
        Err(Error::NotFound)
    );
    f.attach(3, name("a-net"), 0xa11ce2, CapSlot(31)).unwrap();
    assert_eq!(f.platform().reattached, vec![0]);
    assert_eq!(f.platform().attached.len(), 2);
    assert_eq!(f.platform().wakes[&0], 31);
    let c = f.counters();
    assert_eq!((c.attached, c.reattached, c.refused), (3, 1, 1));
}

#[test]
fn malformed_requests_get_an_error_and_the_front_serves_on() {
    let mut f = front();
    let mut transport = Loopback(|m: &proto::Message| dispatch(&mut f, 5, m));
    // No capability with the request.
    let region = name("a-net");
    let request = proto::net::Request::Attach {
        region,
        nonce: 0xa11ce,
        wake: CapSlot(9),
    };
    let mut bare = request.encode().unwrap();
    bare.cap = None;
    let reply = transport.call(&bare);
    assert_ne!(
        reply.label, 0,
        "a request without its notification is refused"
    );
    // Garbage label.
    assert_ne!(transport.call(&proto::Message::new(99)).label, 0);
    let mut client = NetClient::new(transport);
    assert_eq!(
        client.attach(region, 0xa11ce, CapSlot(9)),
        Ok(CapSlot(1000))
    );
}
