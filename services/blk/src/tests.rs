use super::*;
use blkring::{ClientRings, Layout};
use core::sync::atomic::{AtomicU32, Ordering};
use std::string::ToString;
use std::vec;
use std::vec::Vec;

/// Physical address of page `i` of a test region: scattered and out of order.
fn frame(region: u64, i: usize) -> u64 {
    0x100_0000 * (region + 1) + ((i as u64 * 7) % 64) * PAGE
}

struct FakeDisk {
    bytes: Vec<u8>,
    geometry: Geometry,
    /// Regions by physical base (region number), to do "DMA".
    regions: Vec<&'static [AtomicU32]>,
    queued: Vec<(u32, Op, u64, Vec<Segment>)>,
    done: VecDeque<Completion>,
    free: u16,
    hold: bool,
    seen: Vec<(Op, u64, u64)>,
}

impl FakeDisk {
    fn new(sectors: u64) -> FakeDisk {
        FakeDisk {
            bytes: vec![0; (sectors * 512) as usize],
            geometry: Geometry {
                sectors,
                max_segments: 64,
                read_only: false,
                flush: true,
            },
            regions: Vec::new(),
            queued: Vec::new(),
            done: VecDeque::new(),
            free: 256,
            hold: false,
            seen: Vec::new(),
        }
    }

    /// The word of some region at physical `paddr`.
    fn word(regions: &[&'static [AtomicU32]], paddr: u64) -> &'static AtomicU32 {
        let region = (paddr / 0x100_0000 - 1) as usize;
        let slot = (paddr % 0x100_0000) / PAGE;
        let page: u64 = (0..64).find(|&i| (i * 7) % 64 == slot).unwrap();
        &regions[region][((page * PAGE + paddr % PAGE) / 4) as usize]
    }

    fn run(&mut self) {
        for (tag, op, sector, segments) in core::mem::take(&mut self.queued) {
            let mut at = (sector * 512) as usize;
            for s in &segments {
                for i in (0..s.len as u64).step_by(4) {
                    let w = Self::word(&self.regions, s.paddr + i);
                    match op {
                        Op::Read => w.store(
                            u32::from_le_bytes(self.bytes[at..at + 4].try_into().unwrap()),
                            Ordering::Relaxed,
                        ),
                        Op::Write => self.bytes[at..at + 4]
                            .copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes()),
                        Op::Flush => {}
                    }
                    at += 4;
                }
            }
            self.free += segments.len() as u16 + 2;
            self.done.push_back(Completion {
                id: tag,
                status: virtio_blk::Status::Ok,
            });
        }
    }
}

impl Disk for FakeDisk {
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    fn submit(
        &mut self,
        tag: u32,
        op: Op,
        sector: u64,
        segments: &[Segment],
    ) -> Result<(), RequestError> {
        let count = self.geometry.check(op, sector, segments)?;
        if self.free < segments.len() as u16 + 2 {
            return Err(RequestError::Full);
        }
        self.free -= segments.len() as u16 + 2;
        self.seen.push((op, sector, count));
        self.queued.push((tag, op, sector, segments.to_vec()));
        Ok(())
    }
    fn notify(&mut self) {
        if !self.hold {
            self.run();
        }
    }
    fn complete(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }
    fn free_descriptors(&self) -> u16 {
        self.free
    }
}

const REGION_BYTES: usize = 64 * 1024;

fn region() -> &'static [AtomicU32] {
    shmring::zeroed_words(REGION_BYTES / 4)
        .collect::<Vec<_>>()
        .leak()
}

fn frames(n: u64) -> Vec<u64> {
    (0..REGION_BYTES / PAGE as usize)
        .map(|i| frame(n, i))
        .collect()
}

/// A server with `clients` attached, each over its own region (key = index).
fn setup(
    sectors: u64,
    clients: usize,
) -> (
    Server<FakeDisk, usize>,
    Vec<ClientRings>,
    Vec<&'static [AtomicU32]>,
) {
    let mut disk = FakeDisk::new(sectors);
    let mut rings = Vec::new();
    let mut regions = Vec::new();
    for i in 0..clients {
        let r = region();
        rings.push(ClientRings::new(r, 0x100 + i as u64).unwrap().0);
        regions.push(r);
        disk.regions.push(r);
    }
    let mut server = Server::new(disk);
    for (i, r) in regions.iter().enumerate() {
        assert_eq!(
            server.attach(i as u64, 0x100 + i as u64, r, frames(i as u64), None, i),
            Ok(i)
        );
    }
    (server, rings, regions)
}

fn request(op: u32, sector: u64, count: u32, offset: u32, id: u32) -> Request {
    Request {
        op,
        sector,
        count,
        offset,
        id,
    }
}

fn responses(c: &mut ClientRings) -> Vec<Response> {
    core::iter::from_fn(|| c.pop().unwrap()).collect()
}

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32 * 31 + seed) as u8).collect()
}

#[test]
fn a_write_and_a_read_move_data_between_the_region_and_the_disk() {
    let (mut server, mut clients, _) = setup(1024, 1);
    let c = &mut clients[0];
    let data = pattern(1, 12 * 1024);
    // 24 sectors from data offset 2048: the span crosses three page boundaries.
    assert!(c.write_data(2048, &data));
    c.push(request(op::WRITE, 100, 24, 2048, 7)).unwrap();
    c.publish();
    let mut signalled = Vec::new();
    assert!(c.prepare_wait());
    server.poll(|w| signalled.push(w));
    assert_eq!(signalled, [0]);
    assert_eq!(
        responses(c),
        [Response {
            status: Status::Ok,
            count: 24,
            id: 7
        }]
    );
    assert_eq!(&server.disk().bytes[100 * 512..][..data.len()], &data[..]);
    assert_eq!(server.disk().seen, [(Op::Write, 100, 24)]);
    // The server announces it waits: the client's next batch says to signal it.
    assert!(server.prepare_wait());
    c.push(request(op::READ, 0, 1, 0, 1)).unwrap();
    assert!(c.publish());
    assert!(
        !server.prepare_wait(),
        "work arrived: poll instead of blocking"
    );
    server.poll(|_| {});
    assert_eq!(responses(c).len(), 1);
    // Read it back elsewhere, then flush.
    c.push(request(op::READ, 100, 24, 32 * 1024, 8)).unwrap();
    c.push(request(op::FLUSH, 0, 0, 0, 9)).unwrap();
    c.publish();
    server.poll(|_| {});
    let got = responses(c);
    assert_eq!(
        got.iter().map(|r| (r.status, r.id)).collect::<Vec<_>>(),
        [(Status::Ok, 8), (Status::Ok, 9)]
    );
    let mut out = vec![0u8; data.len()];
    assert!(c.read_data(32 * 1024, &mut out));
    assert_eq!(out, data);
    assert_eq!(server.counters().served, 4);
}

#[test]
fn a_window_confines_a_client_to_its_sectors() {
    let mut disk = FakeDisk::new(1000);
    let r = region();
    disk.regions.push(r);
    let (mut c, _) = ClientRings::new(r, 1).unwrap();
    let mut server = Server::new(disk);
    assert_eq!(
        server.attach(5, 1, r, frames(0), Some((900, 101)), 0),
        Err(AttachError::BadRegion)
    );
    assert_eq!(
        server.attach(5, 1, r, frames(0), Some((u64::MAX, 2)), 0),
        Err(AttachError::BadRegion)
    );
    server
        .attach(5, 1, r, frames(0), Some((500, 100)), 0)
        .unwrap();
    // A 64 KiB region has a 60 KiB data area: 120 sectors per request at most.
    assert_eq!(server.client_geometry(0), Some((100, 120, false)));
    c.push(request(op::WRITE, 99, 1, 0, 1)).unwrap();
    c.push(request(op::WRITE, 99, 2, 0, 2)).unwrap();
    c.push(request(op::READ, 100, 1, 0, 3)).unwrap();
    c.publish();
    server.poll(|_| {});
    let got: Vec<_> = responses(&mut c).iter().map(|r| (r.id, r.status)).collect();
    assert_eq!(
        got,
        [
            (2, Status::OutOfRange),
            (3, Status::OutOfRange),
            (1, Status::Ok)
        ]
    );
    assert_eq!(
        server.disk().seen,
        [(Op::Write, 599, 1)],
        "offset by the window's start"
    );
}

#[test]
fn many_requests_are_in_flight_and_the_ring_bounds_them() {
    let (mut server, mut clients, _) = setup(4096, 1);
    server.disk().hold = true;
    let c = &mut clients[0];
    for i in 0..64u32 {
        c.push(request(op::READ, u64::from(i), 1, i * 512, i))
            .unwrap();
    }
    c.publish();
    server.poll(|_| {});
    assert_eq!(server.disk().queued.len(), 64, "all in flight at once");
    // The client's ring has room again but its response slots are all promised.
    for i in 64..70u32 {
        c.push(request(op::READ, 0, 1, 0, i)).unwrap();
    }
    c.publish();
    server.poll(|_| {});
    assert_eq!(server.disk().queued.len(), 64);
    server.disk().run();
    server.poll(|_| {});
    // 64 responses fill the ring; the six later requests wait until they are read.
    assert!(server.disk().queued.is_empty());
    let first = responses(c);
    assert_eq!(first.len(), 64);
    assert!(first.iter().all(|r| r.status == Status::Ok));
    server.poll(|_| {});
    assert_eq!(server.disk().queued.len(), 6);
    server.disk().run();
    server.poll(|_| {});
    let mut ids: Vec<u32> = responses(c).iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, (64..70).collect::<Vec<_>>());
}

#[test]
fn a_hostile_client_gets_errors_and_the_others_keep_being_served() {
    let (mut server, mut clients, regions) = setup(2048, 2);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut sent = 0;
    for round in 0..50 {
        // Client 0: garbage requests, some of them plausible.
        for _ in 0..10 {
            let w = next();
            let r = request(
                (w % 5) as u32,
                next() % 4096,
                (next() % 300) as u32,
                (next() % 70_000) as u32,
                round,
            );
            clients[0].push(r).unwrap();
            sent += 1;
        }
        clients[0].publish();
        // Client 1: honest.
        clients[1].write_data(0, &pattern(round, 512));
        clients[1]
            .push(request(op::WRITE, u64::from(round), 1, 0, round))
            .unwrap();
        clients[1].publish();
        server.poll(|_| {});
        assert_eq!(
            responses(&mut clients[1]),
            [Response {
                status: Status::Ok,
                count: 1,
                id: round
            }]
        );
        assert_eq!(
            responses(&mut clients[0]).len(),
            10,
            "every request answered"
        );
    }
    let counters = server.counters();
    assert_eq!(counters.served + counters.refused, sent + 50);
    assert!(counters.refused > 300, "most garbage refused: {counters:?}");
    for (op, sector, count) in &server.disk().seen {
        assert!(*sector + *count <= 2048 && (*op == Op::Flush || *count > 0));
    }
    // Now client 0 breaks its ring: it is cut off; client 1 still works.
    regions[0][blkring::HEADER_BYTES / 4].store(0xdead_0000, Ordering::Relaxed);
    server.poll(|_| {});
    assert_eq!(server.counters().corrupt, 1);
    assert_eq!(server.clients(), 1);
    clients[1].push(request(op::READ, 3, 1, 512, 99)).unwrap();
    clients[1].publish();
    server.poll(|_| {});
    assert_eq!(responses(&mut clients[1])[0].id, 99);
}

#[test]
fn attaching_again_replaces_the_old_attachment_and_drops_its_completions() {
    let (mut server, mut clients, regions) = setup(1024, 1);
    server.disk().hold = true;
    clients[0].push(request(op::READ, 0, 1, 0, 1)).unwrap();
    clients[0].publish();
    server.poll(|_| {});
    // The client restarts and attaches again with the same key.
    let (mut fresh, _) = ClientRings::new(regions[0], 0x999).unwrap();
    assert_eq!(
        server.attach(0, 0x999, regions[0], frames(0), None, 0),
        Ok(0)
    );
    server.disk().run();
    server.poll(|_| {});
    assert_eq!(responses(&mut fresh), []);
    assert_eq!(server.counters().stale, 1);
    fresh.push(request(op::READ, 0, 1, 0, 2)).unwrap();
    fresh.publish();
    server.disk().run();
    server.poll(|_| {});
    server.disk().run();
    server.poll(|_| {});
    assert_eq!(responses(&mut fresh)[0].id, 2);
}

#[test]
fn attach_refuses_small_regions_short_frame_lists_and_more_than_the_limit() {
    let mut server: Server<FakeDisk, usize> = Server::new(FakeDisk::new(64));
    // A region with one page of data area: requests of at most 8 sectors.
    let one: &'static [AtomicU32] = shmring::zeroed_words(2048).collect::<Vec<_>>().leak();
    ClientRings::new(one, 3).unwrap();
    let client = server.attach(9, 3, one, vec![0; 2], None, 0).unwrap();
    assert_eq!(server.client_geometry(client), Some((64, 8, false)));
    server.detach(client);
    let small: &'static [AtomicU32] = shmring::zeroed_words(1024).collect::<Vec<_>>().leak();
    blkring::write_header(small, 0);
    assert_eq!(
        server.attach(1, 0, small, vec![0; 1], None, 0),
        Err(AttachError::BadRegion)
    );
    let r = region();
    assert!(Layout::for_region(REGION_BYTES).is_some());
    assert_eq!(
        server.attach(1, 7, r, frames(0), None, 0),
        Err(AttachError::NotFound),
        "no header"
    );
    ClientRings::new(r, 7).unwrap();
    assert_eq!(
        server.attach(1, 8, r, frames(0), None, 0),
        Err(AttachError::NotFound),
        "wrong nonce"
    );
    assert_eq!(
        server.attach(1, 7, r, frames(0)[..15].to_vec(), None, 0),
        Err(AttachError::BadRegion)
    );
    let mut odd = frames(0);
    odd[3] += 512;
    assert_eq!(
        server.attach(1, 7, r, odd, None, 0),
        Err(AttachError::BadRegion)
    );
    for key in 0..MAX_CLIENTS as u64 {
        assert!(server.attach(key, 7, r, frames(0), None, 0).is_ok());
    }
    assert_eq!(
        server.attach(99, 7, r, frames(0), None, 0),
        Err(AttachError::Full)
    );
    assert_eq!(
        server.attach(3, 7, r, frames(0), None, 0),
        Ok(3),
        "a re-attachment still fits"
    );
}

#[test]
fn the_ready_line_names_the_device_its_size_and_interrupt() {
    let line = ReadyLine {
        device: "disk0",
        pci: (0, 4, 0),
        geometry: Geometry {
            sectors: 16384,
            max_segments: 64,
            read_only: false,
            flush: true,
        },
        queue: 256,
        irq: proto::devices::IrqMode::MsiX,
        msix: Some(0),
        bar: (4, 0xfe00_0000),
    };
    assert_eq!(
        line.to_string(),
        "blk: disk0 virtio-blk at 00:04.0, 16384 sectors (8 MiB), queue 256, 64 segments, \
         irq MsiX (msix vector Some(0)), flush true, BAR4 at 0xfe000000: ready"
    );
    assert_eq!(
        proto::blk::Error::from(AttachError::Full),
        proto::blk::Error::Full
    );
}

#[test]
fn clients_take_turns_when_the_disk_is_short_of_descriptors() {
    let (mut server, mut clients, _) = setup(4096, 2);
    server.disk().hold = true;
    // Room for three one-page requests at a time beyond the reserve the largest needs.
    server.disk().free = (MAX_REQUEST_SEGMENTS + 2 + 2 * 3) as u16;
    for (c, client) in clients.iter_mut().enumerate() {
        for i in 0..20u32 {
            client
                .push(request(op::READ, u64::from(i), 1, 0, c as u32 * 100 + i))
                .unwrap();
        }
        client.publish();
    }
    server.poll(|_| {});
    let mut served = [0usize; 2];
    for _ in 0..6 {
        assert_eq!(server.disk().queued.len(), 3, "three in flight at a time");
        server.disk().run();
        server.poll(|_| {});
    }
    for (c, client) in clients.iter_mut().enumerate() {
        served[c] = responses(client).len();
    }
    // Neither client was starved: 18 served, about half each (client 0 alone would have
    // had all 18 if it were always asked first).
    assert_eq!(served[0] + served[1], 18, "{served:?}");
    assert!(served[0].abs_diff(served[1]) <= 2, "{served:?}");
}

#[test]
fn windows_come_from_the_argument_by_region() {
    let arg = Some("fs-blk:2048+129024, log-blk:131072+8192");
    assert_eq!(window(arg, "fs-blk"), Ok(Some((2048, 129024))));
    assert_eq!(window(arg, "log-blk"), Ok(Some((131072, 8192))));
    assert_eq!(window(arg, "other"), Ok(None));
    assert_eq!(window(None, "fs-blk"), Ok(None));
    assert_eq!(window(Some("fs-blk:12"), "fs-blk"), Err("fs-blk:12"));
    assert_eq!(
        window(Some("fs-blk:1+0"), "x"),
        Err("fs-blk:1+0"),
        "an empty window"
    );
    assert_eq!(window(Some("a:1+2,b:x+1"), "a"), Ok(Some((1, 2))));
    assert_eq!(window(Some("b:x+1,a:1+2"), "a"), Err("b:x+1"));
}

#[test]
fn arguments_default_and_malformed_ones_are_reported() {
    let none = |_: &str| None;
    let a = args(none).unwrap();
    assert_eq!((a.device.as_str(), a.windows), ("disk0", None));
    let given = |k: &str| match k {
        "device" => Some("disk1"),
        "window" => Some("r:1+2"),
        _ => None,
    };
    let a = args(given).unwrap();
    assert_eq!((a.device.as_str(), a.windows), ("disk1", Some("r:1+2")));
    let bad_window = |k: &str| (k == "window").then_some("r:1-2");
    assert_eq!(
        args(bad_window).unwrap_err(),
        "window \"r:1-2\": not REGION:FIRST+COUNT"
    );
    let bad_device = |k: &str| (k == "device").then_some("Disk 0");
    assert!(args(bad_device)
        .unwrap_err()
        .starts_with("device \"Disk 0\""));
}
