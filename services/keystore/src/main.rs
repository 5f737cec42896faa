//! The key store component: serves `proto::keystore` on its endpoint.
//!
//! A thin shell over the `keystore` library: reads its arguments, seeds the generator from
//! what it can gather, registers with naming, loads its sealed keys if the description gives
//! it a `store` (attaching to `fs` over its shared region `region`) and serves. One line per
//! refused file: `keystore: refused FILE: WHY`.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::AtomicU32;
use keystore::entropy::{self, Pool};
use keystore::persist::{LoadedKey, Sealed};
use keystore::seal::SealingKey;
use keystore::{cpu, Backing, Config, Store, Volatile};
use libos_core::fs::{Backend, Error as FsError, Files, Remote};
use libos_sel4::device::setup;
use libos_sel4::restart;
use proto::keystore::Error;
use proto::naming::NamingClient;
use proto::sel4_transport::{serve, EndpointTransport, ReceiveSlot, Reply};
use proto::{CapSlot, Name};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::Cap;
use vspace::VSpace;

rt::entry!(main);

/// Where capabilities sent with requests land (none are expected; they are dropped).
const RECEIVE: u64 = slots::FIRST_FREE - 1;
/// How long attaching to `fs` is tried before the component gives up, in TSC cycles (about a
/// minute at 3 GHz): `fs` may still be mounting its volume, waiting for the disk, while this
/// loop's yields come back at once.
const ATTACH_CYCLES: u64 = 1 << 37;
/// After a restart of `fs`: attach tries (50 yields apart) per burst, and how many waits for
/// news of its next instance come between bursts before the change fails.
const REATTACH_TRIES: u32 = 200;
const REATTACH_WAITS: u32 = 20;

fn name(text: &str) -> Name {
    Name::new(text).unwrap_or_else(|_| rt::fail("keystore", "start", "an argument is not a name"))
}

/// Looks `fs` up into `slot` and attaches over `region`.
fn attach(
    slot: u64,
    region: Name,
    words: &'static [AtomicU32],
) -> Result<Files<Box<dyn Backend>>, FsError> {
    let own = Cap::<sel4::cap_type::CNode>::from_raw(slots::CNODE);
    // Deleting an empty slot succeeds; a failed delete makes the lookup fail.
    let _ = own.cnode_delete(slot, 64);
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, slot));
    let fs = naming
        .lookup(name("fs"))
        .map_err(|_| FsError::Unavailable)?
        .endpoint
        .0;
    let nonce = rt::rdtsc().rotate_left(29) | 1;
    let remote = Remote::attach(EndpointTransport::new(fs), words, region, nonce)?;
    let backend: Box<dyn Backend> = Box::new(remote);
    Ok(Files::new(backend))
}

/// Attaches to `fs`, asking again while it is not there yet, for [`ATTACH_CYCLES`] at most.
fn attach_patiently(
    slot: u64,
    region: Name,
    words: &'static [AtomicU32],
) -> Result<Files<Box<dyn Backend>>, FsError> {
    let deadline = cpu::tsc().saturating_add(ATTACH_CYCLES);
    loop {
        match attach(slot, region, words) {
            Ok(f) => return Ok(f),
            Err(e) if cpu::tsc() >= deadline => return Err(e),
            Err(_) => rt::yield_times(50),
        }
    }
}

/// Attaches to `fs`, opens directory `dir` and unseals every key in it; prints one line per
/// refused file.
fn sealed(
    info: &'static StartInfo,
    config: &Config,
    dir: &str,
    pool: &Pool,
) -> (Box<dyn Backing>, Vec<LoadedKey>) {
    let Some(region) = info.arg("region") else {
        rt::fail("keystore", "start", "store needs a region argument")
    };
    let region = name(region);
    let Some(seed) = &config.seed else {
        rt::fail("keystore", "start", "store needs a seed")
    };
    let mut free = Slots::new();
    let mut slot = || free.alloc().expect("a free slot");
    let (memory_slot, fs_slot) = (slot(), slot());
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, memory_slot));
    let memory = setup("keystore", "look up memory", || {
        naming.lookup(name("memory"))
    })
    .endpoint
    .0;
    let mut budget = libos_sel4::budget::pool(free, memory, 2, "keystore");
    let mut vspace = VSpace::own();
    let words =
        libos_sel4::shared::map(&mut budget, &mut vspace, memory, region, "keystore").words();
    let files = match attach_patiently(fs_slot, region, words) {
        Ok(f) => f,
        Err(e) => rt::fail("keystore", "attach to fs", e),
    };
    // Nonces come from a generator of their own, split from the same pool.
    let mut nonces = pool.clone();
    nonces.absorb("sealing nonces", &[]);
    let opened = Sealed::open(
        files,
        dir,
        SealingKey::derive(seed),
        nonces.finish(),
        config.clients.clone(),
    );
    let (mut sealed, loaded) = match opened {
        Ok(o) => o,
        Err(e) => rt::fail("keystore", "open its sealed store", e),
    };
    // When fs restarts, the next change attaches again (its endpoint stays the same).
    // Between short bursts it blocks for news of fs's next instance, so that proc's restart
    // timer gets the processor (libos_sel4::restart).
    sealed.set_reattach(Box::new(move || {
        println!("keystore: fs restarted: attaching again");
        restart::patiently(REATTACH_TRIES, REATTACH_WAITS, || {
            attach(fs_slot, region, words)
        })
    }));
    for refused in &loaded.refused {
        println!("keystore: refused {dir}/{}: {}", refused.file, refused.why);
    }
    println!(
        "keystore: sealed store {dir} over fs: {} keys loaded, {} refused",
        loaded.keys.len(),
        loaded.refused.len()
    );
    (Box::new(sealed), loaded.keys)
}

fn main(info: &'static StartInfo) {
    let config = match Config::from_args(|key| info.arg(key)) {
        Ok(c) => c,
        Err(e) => rt::fail("keystore", "start", e),
    };
    let mut pool = Pool::new();
    if let Some(seed) = &config.seed {
        pool.absorb("description", &**seed);
    }
    pool.absorb("generation", &info.generation.to_le_bytes());
    let gathered = entropy::gather(&mut pool, cpu::rdrand, cpu::tsc, sel4::syscall::yield_now);
    println!(
        "keystore: entropy: rdrand {} words, {} tsc samples, description seed {}",
        gathered.rdrand_words,
        gathered.tsc_samples,
        if config.seed.is_some() { "yes" } else { "no" }
    );
    // Registered before the (slow) load: clients find the endpoint and wait in it until the
    // store serves.
    let mut naming = NamingClient::new(EndpointTransport::new(slots::NAMING));
    if let Err(e) = naming.register(name("keystore"), CapSlot(slots::SERVICE)) {
        rt::fail("keystore", "register", e);
    }
    let (backing, loaded): (Box<dyn Backing>, Vec<LoadedKey>) = match &config.store {
        Some(dir) => sealed(info, &config, dir, &pool),
        None => (Box::new(Volatile), Vec::new()),
    };
    let mut store = Store::new(
        config.limits,
        info.generation as u16,
        pool.finish(),
        backing,
    );
    for key in &loaded {
        if let Err(e) = store.restore(key.owner, key.label, &key.seed) {
            println!("keystore: cannot restore {}: {e}", key.label.as_str());
        }
    }
    drop(loaded);
    if let Some(planted) = &config.planted {
        match store.insert(planted.owner, planted.label, &planted.seed) {
            // Kept from an earlier instance.
            Ok(_) | Err(Error::Exists) => {}
            Err(e) => rt::fail("keystore", "plant its key", e),
        }
    }
    println!(
        "keystore: ready (max_keys {}, max_message {}, {} keys{})",
        config.limits.max_keys,
        config.limits.max_message,
        store.len(),
        if config.store.is_some() {
            ", sealed"
        } else {
            ", in memory only"
        }
    );
    serve(
        slots::SERVICE,
        ReceiveSlot::own(RECEIVE),
        Reply::Saved,
        move |badge, request| proto::keystore::dispatch(&mut store, badge, request),
        || {},
    )
}
