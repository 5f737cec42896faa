//! The block check client: attaches to `blk` over its shared region and runs the
//! host-tested `blkcheck` sequence, one `CHECK blk-...` line per step, then
//! `blkcheck: done` (and halts the system through `proc` when `halt = "yes"`).
//!
//! Wiring only: looks up `blk`, `memory` and (to halt) `proc`; maps the region named by the
//! `region` argument (default `blkcheck-blk`) and writes `blkring`'s header with a nonce from
//! the TSC; attaches with its own notification as the wake-up and waits on it for responses.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use blkcheck::Link;
use blkring::{ClientRings, Layout, Request, Response};
use libos_sel4::device::setup;
use proto::blk::BlkClient;
use proto::naming::NamingClient;
use proto::proc::ProcClient;
use proto::sel4_transport::EndpointTransport;
use proto::{CapSlot, Name};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::Notification;
use sel4::Cap;
use vspace::VSpace;

rt::entry!(main);

fn name(text: &str) -> Name {
    Name::new(text).expect("a valid name")
}

/// The rings in the shared region, the server's doorbell and our notification.
struct Shared {
    rings: ClientRings,
    doorbell: Cap<Notification>,
}

impl Link for Shared {
    fn push(&mut self, request: Request) -> bool {
        self.rings.push(request).is_ok()
    }

    fn submit_and_wait(&mut self, count: usize) -> Vec<Response> {
        if self.rings.publish() {
            sel4::syscall::signal(self.doorbell);
        }
        let mut got = Vec::new();
        loop {
            while let Ok(Some(r)) = self.rings.pop() {
                got.push(r);
            }
            if got.len() >= count {
                return got;
            }
            if self.rings.prepare_wait() {
                sel4::syscall::wait(Cap::from_raw(slots::NOTIFICATION));
            }
        }
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> bool {
        self.rings.write_data(offset, bytes)
    }

    fn read(&mut self, offset: u32, out: &mut [u8]) -> bool {
        self.rings.read_data(offset, out)
    }
}

fn main(info: &'static StartInfo) {
    let region = name(info.arg("region").unwrap_or("blkcheck-blk"));
    let mut free = Slots::new();
    let mut slot = || free.alloc().expect("a free slot");
    let (blk_slot, memory_slot, proc_slot, doorbell_slot) = (slot(), slot(), slot(), slot());
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, blk_slot));
    let blk = setup("blkcheck", "look up blk", || naming.lookup(name("blk")))
        .endpoint
        .0;
    naming.transport().receive_in(memory_slot);
    let memory = setup("blkcheck", "look up memory", || {
        naming.lookup(name("memory"))
    })
    .endpoint
    .0;
    let mut pool = libos_sel4::budget::pool(free, memory, 4, "blkcheck");
    let mut vspace = VSpace::own();
    let mapped = libos_sel4::shared::map(&mut pool, &mut vspace, memory, region, "blkcheck");
    let nonce = rt::rdtsc() ^ (info.generation << 48) ^ 0x5eed;
    let (rings, layout): (ClientRings, Layout) = ClientRings::new(mapped.words(), nonce)
        .unwrap_or_else(|| rt::fail("blkcheck", "use its region", "too small"));

    let mut client = BlkClient::new(EndpointTransport::receiving(blk, doorbell_slot));
    let doorbell = setup("blkcheck", "attach to blk", || {
        client.attach(region, nonce, CapSlot(slots::NOTIFICATION))
    });
    let geometry = setup("blkcheck", "ask blk's geometry", || client.geometry());
    println!(
        "blkcheck: attached over {region}: {} sectors, {} per request, doorbell {:?}",
        geometry.sectors, geometry.max_sectors, doorbell
    );
    let mut shared = Shared {
        rings,
        doorbell: Cap::from_raw(doorbell.0),
    };
    let verdicts = blkcheck::run(
        &mut shared,
        geometry.sectors,
        geometry.max_sectors,
        layout.data_bytes,
    );
    for verdict in &verdicts {
        println!("{verdict}");
    }
    println!(
        "blkcheck: done, first sector {}",
        blkcheck::first_sector(geometry.sectors)
    );
    if info.arg("halt") == Some("yes") {
        naming.transport().receive_in(proc_slot);
        let proc = setup("blkcheck", "look up proc", || naming.lookup(name("proc")))
            .endpoint
            .0;
        let status = if verdicts.iter().all(|v| v.pass) {
            0
        } else {
            1
        };
        let _ = ProcClient::new(EndpointTransport::new(proc)).halt(status);
    }
    loop {
        sel4::syscall::wait(Cap::from_raw(slots::NOTIFICATION));
    }
}
