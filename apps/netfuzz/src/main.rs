//! A hostile client of `net` (robustness tests): attaches over its shared region like an
//! application (`net_region` arg), then on each of `net`'s ticks pushes garbage messages
//! (`netfuzz::Garbage`) and every tenth round scribbles over its request ring's indices,
//! attaching again every fifty rounds; `rounds` rounds in all (default 300, 0 for ever),
//! then it exits.
//! `net` must count and drop all of it, cut the client off when its ring is impossible,
//! and serve its other clients on.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;

use libos_core::net::shmlink::{write_header, ShmLink, Side, HEADER_BYTES, RING_CAPACITY};
use libos_core::net::wire::Message;
use libos_core::Link;
use libos_sel4::device::setup;
use libos_sel4::netclient::{RegionClient, NET_BADGE};
use netfuzz::Garbage;
use proto::naming::NamingClient;
use proto::sel4_transport::EndpointTransport;
use proto::Name;
use rt::println;
use rt::startinfo::{slots, StartInfo};
use sel4::Cap;
use vspace::VSpace;

rt::entry!(main);

fn name(text: &str) -> Name {
    Name::new(text).unwrap_or_else(|e| rt::fail("netfuzz", "start", format_args!("{e:?}")))
}

fn main(info: &'static StartInfo) {
    let region = name(info.arg("net_region").unwrap_or("netfuzz-net"));
    let rounds: u64 = info
        .arg("rounds")
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let mut free = rt::slots_alloc::Slots::new();
    let memory_slot = free.alloc().expect("a slot");
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, memory_slot));
    let memory = setup("netfuzz", "look up memory", || {
        naming.lookup(name("memory"))
    })
    .endpoint
    .0;
    let mut pool = libos_sel4::budget::pool(free, memory, 8, "netfuzz");
    let mut vspace = VSpace::own();
    let net = name("net");
    let mut client = RegionClient::new(
        "netfuzz",
        info,
        &mut pool,
        &mut vspace,
        memory,
        net,
        region,
        NET_BADGE,
    );
    let words = client.words();
    let first = HEADER_BYTES / 4;
    let requests = &words[first..first + shmring::ring_words::<Message>(RING_CAPACITY)];
    let mut garbage = Garbage::new(rt::rdtsc());
    let (mut sent, mut scribbles, mut attaches, mut n) = (0u64, 0u64, 0u64, 0u64);
    let mut link: Option<ShmLink> = None;
    let mut round = 0;
    while rounds == 0 || round < rounds {
        if round % 50 == 0 {
            let signal = client.attach(write_header);
            let nb = Box::new(move || sel4::syscall::nb_signal(signal));
            link = ShmLink::new(words, Side::Client, nb);
            attaches += 1;
        }
        if let Some(link) = link.as_mut() {
            for _ in 0..8 {
                let (_, message) = garbage.message(n);
                n += 1;
                sent += u64::from(link.push(message).is_ok());
            }
            link.publish();
            link.signal();
        }
        if round % 10 == 9 {
            garbage.scribble(requests);
            scribbles += 1;
        }
        if round % 500 == 499 {
            println!("netfuzz: round {}: {sent} garbage messages, {scribbles} scribbles, {attaches} attaches", round + 1);
        }
        round += 1;
        // net's tick (or its signal) paces the rounds.
        sel4::syscall::wait(Cap::from_raw(slots::NOTIFICATION));
    }
    println!("netfuzz: done: {rounds} rounds, {sent} garbage messages, {scribbles} scribbles, {attaches} attaches");
}
