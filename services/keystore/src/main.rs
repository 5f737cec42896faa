//! The key store component: serves `proto::keystore` on its endpoint.
//!
//! A thin shell over the `keystore` library: reads its arguments, seeds the generator from
//! what it can gather, registers with naming and serves.

#![no_std]
#![no_main]

use keystore::entropy::{self, Pool};
use keystore::{cpu, Config, Store, Volatile};
use proto::naming::NamingClient;
use proto::sel4_transport::{serve, EndpointTransport, ReceiveSlot};
use proto::{CapSlot, Name};
use rt::println;
use rt::startinfo::{slots, StartInfo};

rt::entry!(main);

/// Where capabilities sent with requests land (none are expected; they are dropped).
const RECEIVE: u64 = slots::FIRST_FREE - 1;

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
    let mut store = Store::new(
        config.limits,
        info.generation as u16,
        pool.finish(),
        Volatile,
    );
    if let Some(planted) = &config.planted {
        if let Err(e) = store.insert(planted.owner, planted.label, &planted.seed) {
            rt::fail("keystore", "plant its key", e);
        }
    }
    println!(
        "keystore: entropy: rdrand {} words, {} tsc samples, description seed {}",
        gathered.rdrand_words,
        gathered.tsc_samples,
        if config.seed.is_some() { "yes" } else { "no" }
    );
    let mut naming = NamingClient::new(EndpointTransport::new(slots::NAMING));
    let name = Name::new("keystore").expect("a valid name");
    if let Err(e) = naming.register(name, CapSlot(slots::SERVICE)) {
        rt::fail("keystore", "register", e);
    }
    println!(
        "keystore: ready (max_keys {}, max_message {}, {} planted)",
        config.limits.max_keys,
        config.limits.max_message,
        store.len()
    );
    serve(
        slots::SERVICE,
        ReceiveSlot::own(RECEIVE),
        move |badge, request| proto::keystore::dispatch(&mut store, badge, request),
        || {},
    )
}
