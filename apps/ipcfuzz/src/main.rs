//! The ipcfuzz component: for each of naming, proc, memory, devices, serial and keystore it sends
//! `count` (arg; [`ipcfuzz::MESSAGES`] without it) malformed or random requests (see the
//! library), checks every reply, then makes one valid request that must succeed, and prints
//! `ipcfuzz: NAME sent=S bad=B errors=E` and
//! `CHECK ipcfuzz-NAME: PASS (S messages, E error replies)` (or `FAIL (why)`).
//!
//! Args: `seed` (the generator's seed), `count` (messages per service), `targets` (a
//! comma-separated subset of the services; all without it), `planted` (64 hex digits: the
//! secret of the key the description plants in `keystore` for ipcfuzz under the label
//! `planted`). For the key store it finds the planted key, prints its public key
//! (`ipcfuzz: keystore planted pk=HEX`), aims about half of the handle arguments at it, and
//! scans every reply for any 8 bytes of the secret:
//! `CHECK ipcfuzz-keystore-secret: PASS|FAIL`. From 10,000 messages on it
//! prints `ipcfuzz: NAME progress N/S` every tenth, for `cargo xtask soak`.
//!
//! Requests are sent with raw `Call`s so that they can be anything the kernel carries: up to
//! 120 words, any label, up to three extra capabilities. The capabilities are always ones
//! ipcfuzz holds (its notification, the endpoint it calls, an empty slot): a capability
//! pointer that does not resolve makes the kernel fault the caller instead of sending.

#![no_std]
#![no_main]

extern crate alloc;

use ipcfuzz::{parse_hex32, run, secret_windows, valid, verdict, Planted};
use ipcfuzz::{Raw, Rng, Service, LABEL_MASK, MESSAGES};
use proto::sel4_transport::{received, EndpointTransport, ReceiveSlot};
use proto::Name;
use rt::println;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::CNode;
use sel4::{Cap, MessageInfo};

rt::entry!(main);

const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);
/// Where capabilities in replies land (deleted after each reply).
const RECEIVE: u64 = slots::FIRST_FREE;
/// An empty slot, sent as an "extra capability" now and then.
const EMPTY: u64 = 4000;
/// Times a lookup is retried while the provider starts.
const ATTEMPTS: usize = 2000;

fn receive_slot() -> ReceiveSlot {
    ReceiveSlot::own(RECEIVE)
}

/// Looks `service` up; its endpoint lands in `slot`.
fn lookup(service: &str, slot: u64) -> Result<u64, proto::naming::Error> {
    let mut t = EndpointTransport::new(slots::NAMING);
    t.receive_into(ReceiveSlot::own(slot));
    let mut naming = proto::naming::NamingClient::new(t);
    let name = Name::new(service).map_err(|_| proto::naming::Error::Malformed)?;
    let mut result = naming.lookup(name);
    for _ in 1..ATTEMPTS {
        if result != Err(proto::naming::Error::NotFound) {
            break;
        }
        sel4::syscall::yield_now();
        result = naming.lookup(name);
    }
    result.map(|b| b.generation)
}

/// Sends `raw` to `endpoint` with a raw `Call` and returns the reply as proto sees it.
fn send(endpoint: u64, raw: &Raw, rng: &mut Rng) -> proto::Message {
    let mut mrs = [0u64; 4];
    for (i, &w) in raw.words.iter().enumerate() {
        match mrs.get_mut(i) {
            Some(r) => *r = w,
            None => sel4::ipc::set_mr(i, w),
        }
    }
    for i in 0..usize::from(raw.caps) {
        sel4::ipc::set_cap(
            i,
            rng.pick(&[slots::NOTIFICATION, endpoint, EMPTY, slots::NOTIFICATION]),
        );
    }
    let info = MessageInfo::new(raw.label, 0, u64::from(raw.caps), raw.words.len() as u64);
    receive_slot().install();
    let reply = sel4::syscall::call_with_mrs(endpoint, info, &mut mrs);
    received(reply, &mrs, Some(RECEIVE))
}

/// Finds the planted key (label `planted`) at the key store and prints its public key.
fn find_planted(endpoint: u64, secret: &[u8; 32]) -> Result<Planted, alloc::string::String> {
    let mut keystore = proto::keystore::KeystoreClient::new(EndpointTransport::new(endpoint));
    let label = Name::new("planted").expect("a name");
    let handle = keystore
        .find(label)
        .map_err(|e| alloc::format!("find planted: {e}"))?;
    let pk = keystore
        .public_key(handle)
        .map_err(|e| alloc::format!("public_key: {e}"))?;
    let hex: alloc::string::String = pk.0.iter().map(|b| alloc::format!("{b:02x}")).collect();
    println!("ipcfuzz: keystore planted pk={hex}");
    Ok(Planted {
        handle,
        windows: secret_windows(secret),
    })
}

fn main(info: &'static StartInfo) {
    assert_eq!(
        MessageInfo::new(u64::MAX, 0, 0, 0).label(),
        LABEL_MASK,
        "the kernel's label width"
    );
    let seed: u64 = info
        .arg("seed")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7e55_e7a0);
    let count: u32 = info
        .arg("count")
        .and_then(|s| s.parse().ok())
        .unwrap_or(MESSAGES);
    let targets = info.arg("targets");
    let secret = info.arg("planted").map(|hex| {
        parse_hex32(hex)
            .unwrap_or_else(|| rt::fail("ipcfuzz", "read its planted key", "not 64 hex digits"))
    });
    println!("ipcfuzz: seed {seed:#x}, {count} messages per service");
    let mut next = RECEIVE + 1;
    for (n, service) in Service::ALL.into_iter().enumerate() {
        let name = service.name();
        if targets.is_some_and(|t| !t.split(',').any(|x| x.trim() == name)) {
            continue;
        }
        let endpoint = if service == Service::Naming {
            slots::NAMING
        } else {
            let slot = next;
            next += 1;
            if let Err(e) = lookup(name, slot) {
                println!("CHECK ipcfuzz-{name}: FAIL (lookup: {e:?})");
                continue;
            }
            slot
        };
        let planted = match (service, &secret) {
            (Service::Keystore, Some(secret)) => match find_planted(endpoint, secret) {
                Ok(p) => Some(p),
                Err(why) => {
                    println!("CHECK ipcfuzz-keystore-secret: FAIL ({why})");
                    None
                }
            },
            _ => None,
        };
        let (tally, leaked) = run(
            service,
            seed.wrapping_add(n as u64),
            count,
            planted.as_ref(),
            |raw, caps| send(endpoint, raw, caps),
            // Whatever capability the reply brought (an allocation, an endpoint) goes again.
            || {
                let _ = OWN.cnode_delete(RECEIVE, 64);
            },
            |done| println!("ipcfuzz: {name} progress {done}/{count}"),
        );
        if let Some(p) = &planted {
            let verdict = if leaked == 0 { "PASS" } else { "FAIL" };
            println!(
                "CHECK ipcfuzz-keystore-secret: {verdict} ({leaked} of {} replies held 8 bytes of the planted secret, {} windows checked each)",
                tally.sent,
                p.windows.len()
            );
        }
        println!(
            "ipcfuzz: {name}: {} expected Malformed, {} made invalid (exit/halt/kill/spawn/write/delete)",
            tally.malformed, tally.neutered
        );
        println!(
            "ipcfuzz: {name} sent={} bad={} errors={}",
            tally.sent, tally.bad, tally.errors
        );
        let mut transport = EndpointTransport::new(endpoint);
        transport.receive_into(receive_slot());
        let answered = valid(service, transport, planted.as_ref().map(|p| p.handle));
        let _ = OWN.cnode_delete(RECEIVE, 64);
        if let Ok(text) = &answered {
            println!("ipcfuzz: {name}: {text}");
        }
        println!("{}", verdict(service, &tally, &answered));
    }
    println!("ipcfuzz: done");
}
