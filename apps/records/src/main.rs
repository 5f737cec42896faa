//! The records component: attaches to `fs` over its shared region and runs the host-tested
//! `records::run` on its journal, one `CHECK records-...` line per step, then
//! `records: NAME: done`.
//!
//! Wiring only. Arguments: `region` (the region shared with `fs`; required), `name` (this
//! writer's name in its records and checks; default the region's), `other` (the other
//! writer, whose subtree must be out of reach; default `other`), `count` (records to append
//! this boot; default 20), `restarts` (how many runs cut off by a restart of `fs` are started
//! again; default 5), `bench` (MiB: first measure sequential throughput through `fs`,
//! `cargo xtask bench files`). Looks up `memory` and `fs`, maps the region, writes a nonce from
//! the TSC and attaches (asking again while `fs` is not up yet). When `fs` restarts under a
//! run (`the file service restarted`), it attaches again and runs again: the records kept
//! are verified and the run appends its count after them
//! (`records: NAME: fs restarted: attaching again`).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use core::sync::atomic::AtomicU32;
use libos_core::fs::{Backend, Error, Files, Remote};
use libos_sel4::device::setup;
use libos_sel4::restart;
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
/// How often attaching is tried (50 yields apart) after a restart of `fs` cut a run off,
/// before the component blocks until `proc` says `fs` has a new instance.
const RETRIES: u32 = 200;
/// How many such waits for news of a restart one attach makes before it gives up.
const WAITS: u32 = 20;
/// How many times a run cut off by a restart of `fs` is started again, unless the
/// `restarts` argument says otherwise.
const MAX_RESTARTS: u32 = 5;

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
    let max_restarts = match info.arg("restarts").map(str::parse::<u32>) {
        None => MAX_RESTARTS,
        Some(Ok(n)) if n <= 100_000 => n,
        Some(_) => rt::fail("records", "start", "restarts: not 0..=100000"),
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
    if let Some(mib) = info.arg("bench") {
        // fs measures the raw disk before it serves: wait for it as long as that takes.
        bench(me, mib, connect(fs_slot, region, words, u32::MAX));
    }
    let mut restarts = 0;
    loop {
        let tries = if restarts == 0 { TRIES } else { RETRIES };
        let mut files = connect(fs_slot, region, words, tries);
        println!("records: {me}: attached to fs over {region}");
        let run = records::run(&mut files, me, other, count, sel4::syscall::yield_now);
        let cut_off = run.error == Some(Error::ServerRestarted) && restarts < max_restarts;
        let shown = if cut_off {
            &run.verdicts[..run.verdicts.len() - 1]
        } else {
            &run.verdicts[..]
        };
        for verdict in shown {
            println!("{verdict}");
        }
        if cut_off {
            // What was appended before is verified by the next run; a record whose fsync
            // did not return may or may not be there, and is cut back if cut short.
            restarts += 1;
            println!("records: {me}: fs restarted: attaching again");
            continue;
        }
        let passed = run.verdicts.iter().filter(|v| v.pass).count();
        println!(
            "records: {me}: done, {passed} of {} checks passed",
            run.verdicts.len()
        );
        break;
    }
    loop {
        sel4::syscall::wait(Cap::from_raw(slots::NOTIFICATION));
    }
}

/// `cargo xtask bench files`' half through the file service: `mib` MiB written (and
/// synced) and read back in 4 KiB and 64 KiB requests; one `BENCH` line each, then
/// `records: NAME: bench done`.
fn bench(me: &str, mib: &str, mut files: Files<Box<dyn Backend>>) {
    let Some(total) = mib.parse::<usize>().ok().filter(|m| (1..=1024).contains(m)) else {
        rt::fail("records", "start", "bench: not 1..=1024 (MiB)")
    };
    let total = total << 20;
    for request in [4096, 65536] {
        let k = request / 1024;
        // Readings: write start, write end (after the fsync), read start, read end.
        let mut marks = libos_sel4::cpu::Marks::start();
        let mut now = || marks.now();
        match records::bench::sequential(&mut files, "bench.dat", total, request, &mut now) {
            Ok((write, read)) => {
                println!(
                    "BENCH fs-write-{k}k bytes={total} cycles={write}{}",
                    marks.field(0, 1)
                );
                println!(
                    "BENCH fs-read-{k}k bytes={total} cycles={read}{}",
                    marks.field(2, 3)
                );
            }
            Err(e) => println!("BENCH-ERROR fs-{k}k: {e}"),
        }
    }
    // Readings: create start, create end, remove start, remove end.
    let mut marks = libos_sel4::cpu::Marks::start();
    let mut now = || marks.now();
    let (count, size) = (1000, 4096);
    match records::bench::small_files(&mut files, "small", count, size, &mut now) {
        Ok((made, removed)) => {
            let bytes = count * size;
            println!(
                "BENCH fs-small-create bytes={bytes} files={count} cycles={made}{}",
                marks.field(0, 1)
            );
            println!(
                "BENCH fs-small-remove bytes={bytes} files={count} cycles={removed}{}",
                marks.field(2, 3)
            );
        }
        Err(e) => println!("BENCH-ERROR fs-small: {e}"),
    }
    println!("records: {me}: bench done");
}

/// Attaches to `fs`, asking again (`tries` times, 50 yields apart) while it is not up yet,
/// then waiting for news of its restart between such bursts ([`restart::patiently`]); ends
/// the component if it never comes.
fn connect(
    fs_slot: u64,
    region: Name,
    words: &'static [AtomicU32],
    tries: u32,
) -> Files<Box<dyn Backend>> {
    restart::patiently(tries, WAITS, || attach(fs_slot, region, words))
        .unwrap_or_else(|last| rt::fail("records", "attach to fs", last))
}
