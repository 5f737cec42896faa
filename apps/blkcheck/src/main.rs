//! The block check client: attaches to `blk` over its shared region and runs the
//! host-tested `blkcheck` sequence, one `CHECK blk-...` line per step, then
//! `blkcheck: done` (and halts the system through `proc` when `halt = "yes"`).
//!
//! Wiring only: looks up `memory`, `proc` and `blk`; maps the region named by the `region`
//! argument (default `blkcheck-blk`) and writes `blkring`'s header with a nonce from the TSC;
//! attaches with its own notification as the wake-up and waits on it for responses. With
//! `restart = "yes"` it then kills `blk` through `proc`, attaches to the next instance and
//! reads the pattern back (`CHECK blk-restart`).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use blkcheck::Link;
use blkring::disk::{Disk, Wait};
use blkring::{ClientRings, Layout, Request, Response};
use libos_sel4::device::setup;
use proto::blk::BlkClient;
use proto::blk::Geometry;
use proto::naming::NamingClient;
use proto::proc::ProcClient;
use proto::sel4_transport::EndpointTransport;
use proto::{CapSlot, ComponentId, Name};
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

/// The rings in the shared region and the server's doorbell; `poll`: wait for responses by
/// polling the ring (when `blk` was given no notification to wake us with).
struct Shared {
    rings: ClientRings,
    doorbell: Cap<Notification>,
    poll: bool,
}

/// The blocking disk's signalling: `blk`'s doorbell, and our own notification to wait on.
struct Doorbell(Cap<Notification>);

impl Wait for Doorbell {
    fn signal(&mut self) {
        sel4::syscall::nb_signal(self.0);
    }

    fn wait(&mut self) -> bool {
        sel4::syscall::wait(Cap::from_raw(slots::NOTIFICATION));
        true
    }
}

impl Link for Shared {
    fn push(&mut self, request: Request) -> bool {
        self.rings.push(request).is_ok()
    }

    fn submit_and_wait(&mut self, count: usize) -> Vec<Response> {
        // Announce that we wait for responses before blk can run, so blk signals `wake`
        // when it answers (which the hostile-wake check relies on).
        let signal = self.rings.publish();
        self.rings.prepare_wait();
        if signal {
            sel4::syscall::nb_signal(self.doorbell);
        }
        let mut got = Vec::new();
        for _ in 0..1_000_000 {
            while let Ok(Some(r)) = self.rings.pop() {
                got.push(r);
            }
            if got.len() >= count {
                break;
            }
            // Say we wait (so blk signals `wake` with the next responses), then block on our
            // notification, or only yield if blk was given something else to signal.
            if self.rings.prepare_wait() {
                if self.poll {
                    sel4::syscall::yield_now();
                } else {
                    sel4::syscall::wait(Cap::from_raw(slots::NOTIFICATION));
                }
            }
        }
        got
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> bool {
        self.rings.write_data(offset, bytes)
    }

    fn read(&mut self, offset: u32, out: &mut [u8]) -> bool {
        self.rings.read_data(offset, out)
    }
}

/// Looks `blk` up into `slot` (emptied first) and attaches over `region` with a fresh
/// nonce; the rings, the data area's size and the geometry, or why not.
fn attach(
    naming: &mut NamingClient<EndpointTransport>,
    slots: (u64, u64),
    region: Name,
    words: &'static [core::sync::atomic::AtomicU32],
    wake: u64,
) -> Result<(Shared, u32, Geometry, u64), &'static str> {
    let own = Cap::<sel4::cap_type::CNode>::from_raw(slots::CNODE);
    let (blk_slot, doorbell_slot) = slots;
    let _ = own.cnode_delete(blk_slot, 64);
    let _ = own.cnode_delete(doorbell_slot, 64);
    naming.transport().receive_in(blk_slot);
    let blk = naming.lookup(name("blk")).map_err(|_| "lookup")?.endpoint.0;
    let nonce = rt::rdtsc() ^ 0x5eed;
    let (rings, layout): (ClientRings, Layout) =
        ClientRings::new(words, nonce).ok_or("region too small")?;
    let mut client = BlkClient::new(EndpointTransport::receiving(blk, doorbell_slot));
    let doorbell = client
        .attach(region, nonce, CapSlot(wake))
        .map_err(|_| "attach")?;
    let geometry = client.geometry().map_err(|_| "geometry")?;
    let shared = Shared {
        rings,
        doorbell: Cap::from_raw(doorbell.0),
        poll: wake != slots::NOTIFICATION,
    };
    Ok((shared, layout.data_bytes, geometry, nonce))
}

/// Kills `blk` through proc; its id, found by name.
fn kill_blk(proc: &mut ProcClient<EndpointTransport>) -> Option<ComponentId> {
    let id = (0..64)
        .map_while(|i| proc.list(i).ok())
        .find(|c| c.name.as_str() == "blk")?
        .id;
    proc.kill(id).ok()?;
    Some(id)
}

fn main(info: &'static StartInfo) {
    let region = name(info.arg("region").unwrap_or("blkcheck-blk"));
    let mut free = Slots::new();
    let mut slot = || free.alloc().expect("a free slot");
    let (blk_slot, memory_slot, proc_slot, doorbell_slot) = (slot(), slot(), slot(), slot());
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, memory_slot));
    let memory = setup("blkcheck", "look up memory", || {
        naming.lookup(name("memory"))
    })
    .endpoint
    .0;
    naming.transport().receive_in(proc_slot);
    let proc = setup("blkcheck", "look up proc", || naming.lookup(name("proc")))
        .endpoint
        .0;
    let mut proc = ProcClient::new(EndpointTransport::new(proc));
    let mut pool = libos_sel4::budget::pool(free, memory, 4, "blkcheck");
    let mut vspace = VSpace::own();
    let words = libos_sel4::shared::map(&mut pool, &mut vspace, memory, region, "blkcheck").words();

    let slots = (blk_slot, doorbell_slot);
    let connect = |naming: &mut NamingClient<EndpointTransport>, wake| {
        let mut last = "";
        for _ in 0..2000 {
            match attach(naming, slots, region, words, wake) {
                Ok(done) => return done,
                Err(why) => last = why,
            }
            rt::yield_times(50);
        }
        rt::fail("blkcheck", "attach to blk", last)
    };
    let (mut shared, data_bytes, geometry, nonce) = connect(&mut naming, slots::NOTIFICATION);
    println!(
        "blkcheck: attached over {region}: {} sectors, {} per request",
        geometry.sectors, geometry.max_sectors
    );
    let mut verdicts = blkcheck::run(
        &mut shared,
        geometry.sectors,
        geometry.max_sectors,
        data_bytes,
    );
    // The same disk through blkring's blocking client.
    let doorbell = Doorbell(shared.doorbell);
    let (sectors, max) = (geometry.sectors, geometry.max_sectors);
    let mut disk = Disk::new(shared.rings, data_bytes, sectors, max, doorbell);
    verdicts.push(blkcheck::disk_round_trip(&mut disk));
    // Attachments blk must refuse, on the endpoint `connect` looked up.
    let mut client = BlkClient::new(EndpointTransport::receiving(blk_slot, doorbell_slot));
    let wake = CapSlot(slots::NOTIFICATION);
    let mut refused = |region, nonce| client.attach(region, nonce, wake).map(|_| ());
    let answers = [
        (
            "a region that does not exist",
            refused(name("nosuch"), nonce),
        ),
        ("a wrong nonce", refused(region, nonce ^ 1)),
    ];
    verdicts.push(blkcheck::attach_refusals(&answers));
    for verdict in &verdicts {
        println!("{verdict}");
    }
    // A wake capability that is no notification (an endpoint nobody waits on): blk must
    // not block signalling it.
    let endpoint = pool
        .object(sel4::ObjectType::Endpoint, 0)
        .unwrap_or_else(|e| rt::fail("blkcheck", "make an endpoint", format_args!("{e:?}")));
    let (mut polled, _, geometry, _) = connect(&mut naming, endpoint);
    let what = "blk answers a client that gave an endpoint as its wake-up, twice";
    // Twice: a blk that blocked signalling after the first answer would miss the second.
    let first = blkcheck::read_back(&mut polled, "blk-hostile-wake", geometry.sectors, what);
    let verdict = match first.pass {
        true => blkcheck::read_back(&mut polled, "blk-hostile-wake", geometry.sectors, what),
        false => first,
    };
    println!("{verdict}");
    verdicts.push(verdict);
    if info.arg("restart") == Some("yes") {
        let killed = kill_blk(&mut proc);
        println!("blkcheck: killed blk ({killed:?}), attaching to its next instance");
        let (mut shared, _, geometry, _) = connect(&mut naming, slots::NOTIFICATION);
        let verdict = blkcheck::read_back(
            &mut shared,
            "blk-restart",
            geometry.sectors,
            "the restarted blk serves the data written before",
        );
        println!("{verdict}");
        verdicts.push(verdict);
    }
    println!(
        "blkcheck: done, first sector {}",
        blkcheck::first_sector(geometry.sectors)
    );
    if info.arg("halt") == Some("yes") {
        let status = if verdicts.iter().all(|v| v.pass) {
            0
        } else {
            1
        };
        let _ = proc.halt(status);
    }
    loop {
        sel4::syscall::wait(Cap::from_raw(slots::NOTIFICATION));
    }
}
