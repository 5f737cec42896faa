//! The records component: attaches to `fs` over its shared region and runs the host-tested
//! `records::run` on its journal, one `CHECK records-...` line per step, then
//! `records: NAME: done`.
//!
//! Wiring only. Arguments: `region` (the region shared with `fs`; required), `name` (this
//! writer's name in its records and checks; default the region's), `other` (the other
//! writer, whose subtree must be out of reach; default `other`), `count` (records to append
//! this boot; default 20). Looks up `memory` and `fs`, maps the region, writes a nonce from
//! the TSC and attaches (asking again while `fs` is not up yet).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use core::sync::atomic::AtomicU32;
use libos_core::fs::{Backend, Error, Files, Remote};
use libos_sel4::device::setup;
use proto::naming::NamingClient;
use proto::sel4_transport::EndpointTransport;
use proto::Name;
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::Cap;
use vspace::VSpace;

rt::entry!(main);

/// How often attaching is tried (50 yields apart) before the component gives up.
const TRIES: u32 = 4000;

fn name(text: &str) -> Name {
    Name::new(text).unwrap_or_else(|_| rt::fail("records", "start", "an argument is not a name"))
}

/// Looks `fs` up into `slot` and attaches over `region`.
fn attach(
    slot: u64,
    region: Name,
    words: &'static [AtomicU32],
) -> Result<Files<Box<dyn Backend>>, Error> {
    let own = Cap::<sel4::cap_type::CNode>::from_raw(slots::CNODE);
    // Deleting an empty slot succeeds; a failed delete makes the lookup fail.
    let _ = own.cnode_delete(slot, 64);
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, slot));
    let fs = naming
        .lookup(name("fs"))
        .map_err(|_| Error::Unavailable)?
        .endpoint
        .0;
    let nonce = rt::rdtsc().rotate_left(31) | 1;
    let remote = Remote::attach(EndpointTransport::new(fs), words, region, nonce)?;
    let backend: Box<dyn Backend> = Box::new(remote);
    Ok(Files::new(backend))
}

fn main(info: &'static StartInfo) {
    let Some(region_text) = info.arg("region") else {
        rt::fail("records", "start", "no region argument")
    };
    let region = name(region_text);
    let me = info.arg("name").unwrap_or(region_text);
    let other = info.arg("other").unwrap_or("other");
    let count = match info.arg("count").map(str::parse::<u64>) {
        None => 20,
        Some(Ok(n)) if n <= 100_000 => n,
        Some(_) => rt::fail("records", "start", "count: not 0..=100000"),
    };
    let mut free = Slots::new();
    let mut slot = || free.alloc().expect("a free slot");
    let (memory_slot, fs_slot) = (slot(), slot());
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, memory_slot));
    let memory = setup("records", "look up memory", || {
        naming.lookup(name("memory"))
    })
    .endpoint
    .0;
    let mut pool = libos_sel4::budget::pool(free, memory, 2, "records");
    let mut vspace = VSpace::own();
    let words = libos_sel4::shared::map(&mut pool, &mut vspace, memory, region, "records").words();
    let mut last = Error::Unavailable;
    let mut files = None;
    for _ in 0..TRIES {
        match attach(fs_slot, region, words) {
            Ok(f) => {
                files = Some(f);
                break;
            }
            Err(e) => last = e,
        }
        rt::yield_times(50);
    }
    let Some(mut files) = files else {
        rt::fail("records", "attach to fs", last)
    };
    println!("records: {me}: attached to fs over {region}");
    let verdicts = records::run(&mut files, me, other, count, sel4::syscall::yield_now);
    for verdict in &verdicts {
        println!("{verdict}");
    }
    let passed = verdicts.iter().filter(|v| v.pass).count();
    println!(
        "records: {me}: done, {passed} of {} checks passed",
        verdicts.len()
    );
    loop {
        sel4::syscall::wait(Cap::from_raw(slots::NOTIFICATION));
    }
}
