//! The key store's demo client. It looks up `keystore`, finds or generates its key (label:
//! argument `key`, default `signing`), signs each of its `messages` (comma-separated) and prints
//! one `keystore-demo: client=NAME pk=.. msg=.. sig=..` line per signature. It then asks for a
//! signature of [`MAX_MESSAGE`] bytes and prints the answer (`TooLarge` past the store's
//! `max_message`). For each service in `refused` (comma-separated) it checks that naming
//! refuses it, as for a service that does not exist (`CHECK keystore-CLIENT-refused-NAME: PASS|FAIL`).
//!
//! With `bench = N` it measures N signatures of a 32-byte message through the key store and
//! N in-process (the key store's own library, in this component, without IPC), after N/10
//! warm-up rounds each, and prints `BENCH keystore_sign_ipc ..` and `BENCH
//! keystore_sign_inproc ..` lines (microbench's format, TSC cycles).
//!
//! Tests only, with a shared region (the client must route to `memory` and join it):
//! `leak = REGION` writes its key's handle into the region, waits for a peer to report and
//! checks its key still works (`CHECK keystore-leak: PASS|FAIL`); `steal = REGION` reads that
//! handle and uses it, and must get `NotFound` for every operation
//! (`CHECK keystore-steal: PASS|FAIL`). Then it stays resident.

#![no_std]
#![no_main]

extern crate alloc;

use keystore_client::{demo_line, items, messages, note, read_note};
use proto::keystore::{Error, KeystoreClient, Payload, MAX_MESSAGE};
use proto::naming::NamingClient;
use proto::sel4_transport::EndpointTransport;
use proto::Name;
use rt::println;
use rt::startinfo::{slots, StartInfo};

rt::entry!(main);

/// Where looked-up endpoints arrive; each moves on to the next free slot.
const RECEIVE: u64 = slots::FIRST_FREE;
/// Times a lookup is retried while the provider starts.
const ATTEMPTS: usize = 2000;
/// Yields a `leak`/`steal` check waits for its peer.
const PEER_WAIT: usize = 200_000;

type Keystore = KeystoreClient<EndpointTransport>;

/// Looks `service` up, asking again while it is not registered; its endpoint stays in `slot`.
fn lookup(service: &str, slot: u64) -> Result<u64, proto::naming::Error> {
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, slot));
    let name = Name::new(service).map_err(|_| proto::naming::Error::Malformed)?;
    let mut result = naming.lookup(name);
    for _ in 1..ATTEMPTS {
        if result != Err(proto::naming::Error::NotFound) {
            break;
        }
        sel4::syscall::yield_now();
        result = naming.lookup(name);
    }
    result.map(|_| slot)
}

fn main(info: &'static StartInfo) {
    let me = info.name();
    let endpoint = match lookup("keystore", RECEIVE) {
        Ok(slot) => slot,
        Err(e) => rt::fail(me, "look up keystore", e),
    };
    let mut keystore = KeystoreClient::new(EndpointTransport::new(endpoint));
    let label = info.arg("key").unwrap_or("signing");
    let Ok(label) = Name::new(label) else {
        rt::fail(me, "use its key", "argument `key` is not a name")
    };
    let handle = match keystore.find(label) {
        Ok(h) => h,
        Err(_) => match keystore.generate(label) {
            Ok(h) => h,
            Err(e) => rt::fail(me, "generate a key", e),
        },
    };
    let public = match keystore.public_key(handle) {
        Ok(pk) => pk,
        Err(e) => rt::fail(me, "read its public key", e),
    };
    for message in messages(info.arg("messages"), me) {
        let Some(payload) = Payload::new(message.as_bytes()) else {
            println!("{me}: message {message:?} is longer than {MAX_MESSAGE} bytes");
            continue;
        };
        match keystore.sign(handle, payload) {
            Ok(sig) => println!("{}", demo_line(me, &public.0, &message, &sig.0)),
            Err(e) => println!("{me}: cannot sign {message:?}: {e}"),
        }
    }
    let oversize = Payload::new(&[b'x'; MAX_MESSAGE]).expect("fits");
    println!(
        "{me}: signing {MAX_MESSAGE} bytes: {}",
        match keystore.sign(handle, oversize) {
            Ok(_) => "Ok",
            Err(Error::TooLarge) => "TooLarge",
            Err(_) => "another error",
        }
    );
    for service in items(info.arg("refused")) {
        refused(me, &service);
    }
    if let Some(n) = info.arg("bench").and_then(|n| n.parse().ok()) {
        bench(&mut keystore, handle, n);
    }
    if let Some(region) = info.arg("leak") {
        leak(me, &mut keystore, region, handle);
    }
    if let Some(region) = info.arg("steal") {
        steal(me, &mut keystore, region);
    }
    println!("{me}: done");
    let own = sel4::Cap::<sel4::cap_type::Notification>::from_raw(slots::NOTIFICATION);
    loop {
        sel4::syscall::wait(own);
    }
}

/// Times `f` over `n` rounds after `n / 10` warm-up rounds; prints its BENCH line.
fn time(name: &str, n: usize, mut f: impl FnMut() -> bool) {
    for _ in 0..n / 10 {
        f();
    }
    let mut samples = alloc::vec::Vec::with_capacity(n);
    for _ in 0..n {
        let start = keystore::cpu::tsc();
        let ok = f();
        let end = keystore::cpu::tsc();
        if !ok {
            return println!("BENCH-ERROR {name}: a signature failed");
        }
        samples.push(end.saturating_sub(start));
    }
    match microbench::Summary::of(&mut samples) {
        Some(summary) => println!("{}", microbench::Report { name, summary }),
        None => println!("BENCH-ERROR {name}: no rounds"),
    }
}

/// Sign latency through the key store against the same library in this component.
fn bench(keystore: &mut Keystore, handle: u64, n: usize) {
    use proto::keystore::Server as _;
    let message = Payload::new(&[0x5a; 32]).expect("short");
    time("keystore_sign_ipc", n, || {
        keystore.sign(handle, message).is_ok()
    });
    // The same work without IPC: the key store's library with a key of its own, called
    // directly (a fixed seed: these signatures are for timing only).
    let mut pool = keystore::entropy::Pool::new();
    pool.absorb("bench", b"in-process");
    let mut local = keystore::Store::new(
        keystore::Limits::default(),
        0,
        pool.finish(),
        keystore::Volatile,
    );
    let badge = 1;
    let Ok(local_handle) = local.generate(badge, Name::new("bench").expect("a name")) else {
        return println!("BENCH-ERROR keystore_sign_inproc: no key");
    };
    time("keystore_sign_inproc", n, || {
        local.sign(badge, local_handle, message).is_ok()
    });
}

/// Checks that naming refuses `service` with `NotFound`; one CHECK line.
fn refused(me: &str, service: &str) {
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, RECEIVE + 2));
    let result = Name::new(service)
        .map_err(|_| proto::naming::Error::Malformed)
        .and_then(|n| naming.lookup(n));
    let verdict = if result.as_ref().err() == Some(&proto::naming::Error::NotFound) {
        "PASS"
    } else {
        "FAIL"
    };
    println!(
        "CHECK keystore-{me}-refused-{service}: {verdict} ({:?})",
        result.map(|_| ())
    );
}

/// The shared region `region`, mapped: its first four words.
struct Shared {
    base: usize,
}

impl Shared {
    /// Maps `region` through `memory`; ends the component if it cannot.
    fn map(me: &'static str, region: &str) -> Shared {
        let Ok(region_name) = Name::new(region) else {
            rt::fail(me, "map its region", "not a region name")
        };
        let memory = match lookup("memory", RECEIVE + 1) {
            Ok(slot) => slot,
            Err(e) => rt::fail(me, "look up memory", e),
        };
        let mut free = rt::slots_alloc::Slots::new();
        while free.alloc().is_some_and(|s| s <= memory) {}
        let mut pool = libos_sel4::budget::pool(free, memory, 4, me);
        let mut vspace = vspace::VSpace::own();
        let mapped = libos_sel4::shared::map(&mut pool, &mut vspace, memory, region_name, me);
        if mapped.len() < 32 {
            rt::fail(me, "map its region", "the region is smaller than 32 bytes");
        }
        Shared {
            base: mapped.base(),
        }
    }

    /// Word `i` (0..4).
    #[allow(
        unsafe_code,
        reason = "a volatile access to the shared region this component mapped"
    )]
    fn read(&self, i: usize) -> u64 {
        // SAFETY: the region is mapped read-write for the component's life and at least 32
        // bytes long (checked in `map`); `i` < 4 keeps the read inside it.
        unsafe { core::ptr::read_volatile((self.base as *const u64).add(i % 4)) }
    }

    /// Writes word `i` (0..4).
    #[allow(
        unsafe_code,
        reason = "a volatile access to the shared region this component mapped"
    )]
    fn write(&self, i: usize, value: u64) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base as *mut u64).add(i % 4), value) }
    }

    /// Waits (yielding) until words `at`, `at + 1` hold a note; its handle.
    fn wait_note(&self, at: usize) -> Option<u64> {
        for _ in 0..PEER_WAIT {
            if let Some(h) = read_note([self.read(at), self.read(at + 1)]) {
                return Some(h);
            }
            sel4::syscall::yield_now();
        }
        None
    }
}

/// Leaks `handle` through `region`, waits for the thief's report, and checks the key still
/// signs and has the same public key.
fn leak(me: &'static str, keystore: &mut Keystore, region: &str, handle: u64) {
    let shared = Shared::map(me, region);
    let before = keystore.public_key(handle);
    let [magic, h] = note(handle);
    shared.write(1, h);
    shared.write(0, magic);
    if shared.wait_note(2).is_none() {
        return println!("CHECK keystore-leak: FAIL (the peer never reported)");
    }
    let signs = keystore.sign(handle, Payload::new(b"after").expect("short"));
    match (before, keystore.public_key(handle), signs) {
        (Ok(a), Ok(b), Ok(_)) if a == b => {
            println!("CHECK keystore-leak: PASS (the key is intact after the peer tried it)")
        }
        (a, b, s) => println!(
            "CHECK keystore-leak: FAIL (before {a:?}, after {b:?}, sign {:?})",
            s.map(|_| ())
        ),
    }
}

/// Reads another client's handle from `region` and uses it: every operation must get
/// `NotFound`, and the handle must not show in this client's own list.
fn steal(me: &'static str, keystore: &mut Keystore, region: &str) {
    let shared = Shared::map(me, region);
    let Some(stolen) = shared.wait_note(0) else {
        return println!("CHECK keystore-steal: FAIL (no handle was leaked)");
    };
    let payload = Payload::new(b"not mine").expect("short");
    let answers = [
        ("public_key", keystore.public_key(stolen).map(|_| ())),
        ("sign", keystore.sign(stolen, payload).map(|_| ())),
        ("delete", keystore.delete(stolen)),
    ];
    let listed = (0..64)
        .map_while(|i| keystore.list(i).ok())
        .any(|k| k.handle == stolen);
    let wrong: alloc::vec::Vec<_> = answers
        .iter()
        .filter(|(_, r)| *r != Err(Error::NotFound))
        .collect();
    if wrong.is_empty() && !listed {
        println!(
            "CHECK keystore-steal: PASS (handle {stolen:#x}: NotFound for public_key, sign, delete)"
        );
    } else {
        println!("CHECK keystore-steal: FAIL (handle {stolen:#x}: {wrong:?}, listed {listed})");
    }
    // Only now: the owner prints its own line once it sees this, so the two do not mix.
    let [magic, done] = note(0);
    shared.write(3, done);
    shared.write(2, magic);
}
