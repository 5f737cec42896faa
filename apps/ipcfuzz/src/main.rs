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

use ipcfuzz::{check, expectation, generate_with, neuter, Raw, Rng, Service, LABEL_MASK, MESSAGES};
use ipcfuzz::{leaks, parse_hex32, secret_windows};
use ipcfuzz::{Tally, PROGRESS_FROM};
use proto::sel4_transport::{received, EndpointTransport, ReceiveSlot};
use proto::{Bytes, Name};
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

/// What the key store run aims at and looks for: the planted key's handle and its secret's
/// 8-byte windows.
struct Planted {
    handle: u64,
    windows: alloc::vec::Vec<[u8; 8]>,
}

/// Fuzzes `service` at `endpoint` with `count` messages; every reply is checked, and one
/// that breaks the rule is counted (the first one's description kept) without stopping.
/// With `planted`, requests aim at its handle and replies that hold a piece of its secret
/// are counted (the second result).
fn fuzz(
    service: Service,
    endpoint: u64,
    seed: u64,
    count: u32,
    planted: Option<&Planted>,
) -> (Tally, u32) {
    let hints: &[u64] = match planted {
        Some(p) => core::slice::from_ref(&p.handle),
        None => &[],
    };
    let mut leaked = 0;
    let mut rng = Rng::new(seed);
    let mut caps = Rng::new(seed ^ 0x5a5a);
    let mut tally = Tally::default();
    let tenth = (count / 10).max(1);
    for i in 0..count {
        let mut raw = generate_with(service, &mut rng, hints);
        let neutered = neuter(service, &mut raw);
        let expect = expectation(service, &raw);
        let reply = send(endpoint, &raw, &mut caps);
        // Whatever capability the reply brought (an allocation, an endpoint) goes again.
        let _ = OWN.cnode_delete(RECEIVE, 64);
        let result = check(service, expect, &reply);
        if planted.is_some_and(|p| leaks(&reply, &p.windows)) {
            leaked += 1;
        }
        tally.record(expect, neutered, result);
        if let Err(bad) = result {
            if tally.first_bad.is_none() {
                tally.first_bad = Some(alloc::format!(
                    "message {i}: label {:#x}, {} words, {} caps, expected {expect:?}: reply label {:#x}, {} words: {bad:?}",
                    raw.label,
                    raw.words.len(),
                    raw.caps,
                    reply.label,
                    reply.len()
                ));
            }
        }
        if count >= PROGRESS_FROM && (i + 1) % tenth == 0 && i + 1 < count {
            println!("ipcfuzz: {} progress {}/{count}", service.name(), i + 1);
        }
    }
    (tally, leaked)
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

/// The one valid request each service must still answer (`hint`: a key store handle).
fn valid(service: Service, endpoint: u64, hint: Option<u64>) -> Result<(), alloc::string::String> {
    let mut t = EndpointTransport::new(endpoint);
    t.receive_into(receive_slot());
    let r = match service {
        Service::Naming => proto::naming::NamingClient::new(t)
            .lookup(Name::new("serial").expect("a name"))
            .map(|b| alloc::format!("lookup serial: generation {}", b.generation))
            .map_err(|e| alloc::format!("lookup serial: {e:?}")),
        Service::Proc => proto::proc::ProcClient::new(t)
            .list(0)
            .map(|c| alloc::format!("list 0: {}", c.name))
            .map_err(|e| alloc::format!("list 0: {e:?}")),
        Service::Memory => proto::memory::MemoryClient::new(t)
            .usage()
            .map(|u| alloc::format!("usage: {} of {} bytes", u.used, u.budget))
            .map_err(|e| alloc::format!("usage: {e:?}")),
        Service::Devices => proto::devices::DevicesClient::new(t)
            .list(0)
            .map(|f| alloc::format!("list 0: {:04x}:{:04x}", f.vendor, f.device))
            .map_err(|e| alloc::format!("list 0: {e:?}")),
        Service::Serial => proto::console::ConsoleClient::new(t)
            .write(Bytes::new(b"ipcfuzz: the console still writes\r\n").expect("short"))
            .map(|()| alloc::string::String::from("write: ok"))
            .map_err(|e| alloc::format!("write: {e:?}")),
        Service::Keystore => {
            let mut keystore = proto::keystore::KeystoreClient::new(t);
            match hint {
                Some(handle) => keystore
                    .sign(
                        handle,
                        proto::keystore::Payload::new(b"still serving").expect("short"),
                    )
                    .map(|_| alloc::string::String::from("sign with the planted key: ok"))
                    .map_err(|e| alloc::format!("sign: {e:?}")),
                // Without a planted key: any answer but an undecodable one will do.
                None => match keystore.list(0) {
                    Ok(_) | Err(proto::keystore::Error::NoEntry) => {
                        Ok(alloc::string::String::from("list 0: answered"))
                    }
                    Err(e) => Err(alloc::format!("list 0: {e:?}")),
                },
            }
        }
    };
    let _ = OWN.cnode_delete(RECEIVE, 64);
    r.map(|text| println!("ipcfuzz: {}: {text}", service.name()))
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
        let (tally, leaked) = fuzz(
            service,
            endpoint,
            seed.wrapping_add(n as u64),
            count,
            planted.as_ref(),
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
        match (
            tally.first_bad,
            valid(service, endpoint, planted.as_ref().map(|p| p.handle)),
        ) {
            (None, Ok(())) => println!(
                "CHECK ipcfuzz-{name}: PASS ({} messages, {} error replies)",
                tally.sent, tally.errors
            ),
            (Some(first), _) => println!(
                "CHECK ipcfuzz-{name}: FAIL ({} of {} replies broke the rule; first: {first})",
                tally.bad, tally.sent
            ),
            (None, Err(why)) => println!("CHECK ipcfuzz-{name}: FAIL (valid request: {why})"),
        }
    }
    println!("ipcfuzz: done");
}
