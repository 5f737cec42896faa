//! The blocking disk against a minimal server in the same process: the server side checks
//! requests with `Limits`, moves data between the data area and a byte vector, and answers;
//! hostile variants answer with wrong ids, twice, or short.

use std::sync::atomic::{AtomicU32, Ordering};

use blkring::disk::{Disk, DiskError, Wait};
use blkring::{op, ClientRings, Layout, Limits, Response, ServerRings, Status, DATA_OFFSET};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Honest,
    WrongId,
    Twice,
    Short,
}

struct Server {
    rings: ServerRings,
    region: &'static [AtomicU32],
    limits: Limits,
    disk: Vec<u8>,
    mode: Mode,
    signals: usize,
    requests: usize,
    /// Stops answering: the server died.
    gone: bool,
}

impl Server {
    fn word(&self, offset: u32, i: usize) -> &AtomicU32 {
        &self.region[DATA_OFFSET / 4 + offset as usize / 4 + i]
    }

    fn serve(&mut self) {
        while let Ok(Some(r)) = self.rings.pop() {
            self.requests += 1;
            let status = match self.limits.check(&r) {
                Err(s) => s,
                Ok(c) => {
                    let base = c.sector as usize * 512;
                    for i in 0..c.count as usize * 128 {
                        let at = base + 4 * i;
                        match c.op {
                            op::READ => self.word(c.offset, i).store(
                                u32::from_le_bytes(self.disk[at..at + 4].try_into().unwrap()),
                                Ordering::Relaxed,
                            ),
                            _ => {
                                let v = self.word(c.offset, i).load(Ordering::Relaxed);
                                self.disk[at..at + 4].copy_from_slice(&v.to_le_bytes());
                            }
                        }
                    }
                    Status::Ok
                }
            };
            let mut response = Response {
                status,
                count: if status == Status::Ok { r.count } else { 0 },
                id: r.id,
            };
            match self.mode {
                Mode::Honest => {}
                Mode::WrongId => response.id ^= 0x8000,
                Mode::Short => response.count = response.count.saturating_sub(1),
                Mode::Twice => self.rings.push(response).unwrap(),
            }
            self.rings.push(response).unwrap();
        }
        self.rings.publish();
        // As `blk` does before it blocks: the client's next batch signals.
        self.rings.prepare_wait();
    }
}

/// The "notifications": signalling or waiting runs the server.
struct Inline(Box<Server>);

impl Wait for Inline {
    fn signal(&mut self) {
        self.0.signals += 1;
        if !self.0.gone {
            self.0.serve();
        }
    }
    fn wait(&mut self) -> bool {
        if self.0.gone {
            return false;
        }
        self.0.serve();
        true
    }
}

const REGION: usize = 64 * 1024;

fn disk(sectors: u64, max_sectors: u32, mode: Mode) -> Disk<Inline> {
    let region: &'static [AtomicU32] = shmring::zeroed_words(REGION / 4).collect::<Vec<_>>().leak();
    let (rings, layout): (ClientRings, Layout) = ClientRings::new(region, 1).unwrap();
    let (mut server_rings, _) = ServerRings::new(region).unwrap();
    // As `blk` does after an attach: it waits, so the first batch signals it.
    assert!(server_rings.prepare_wait());
    let limits = Limits {
        sectors,
        max_sectors,
        data: shmring::Region::new(layout.data_bytes, 512).unwrap(),
    };
    let server = Server {
        rings: server_rings,
        region,
        limits,
        disk: vec![0; sectors as usize * 512],
        mode,
        signals: 0,
        requests: 0,
        gone: false,
    };
    Disk::new(
        rings,
        layout.data_bytes,
        sectors,
        max_sectors,
        Inline(Box::new(server)),
    )
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 % 251) as u8).collect()
}

#[test]
fn a_large_write_and_read_are_split_and_round_trip() {
    // 200 KiB through a 60 KiB data area in requests of at most 16 sectors (8 KiB).
    let mut d = disk(1024, 16, Mode::Honest);
    let data = pattern(200 * 1024);
    d.write(10, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    d.read(10, &mut back).unwrap();
    assert_eq!(back, data);
    d.flush().unwrap();
    let server = &d.waiter().0;
    assert_eq!(&server.disk[10 * 512..10 * 512 + data.len()], &data[..]);
    // 25 requests each way plus the flush; the area holds 7 requests, so 4 batches each way.
    assert_eq!(server.requests, 51);
    assert_eq!(server.signals, 9, "one signal per batch");
}

#[test]
fn bad_ranges_are_refused_before_anything_is_sent() {
    let mut d = disk(64, 16, Mode::Honest);
    assert_eq!(d.write(0, &[0; 100]), Err(DiskError::BadRange));
    assert_eq!(d.write(63, &[0; 1024]), Err(DiskError::BadRange));
    assert_eq!(d.read(u64::MAX, &mut [0; 512]), Err(DiskError::BadRange));
    assert_eq!(d.waiter().0.requests, 0);
    d.write(63, &[7; 512]).unwrap();
}

#[test]
fn a_server_refusal_is_reported() {
    // The server's limit is smaller than the client believes: the server refuses.
    let mut d = disk(64, 16, Mode::Honest);
    d.waiter().0.limits.max_sectors = 4;
    assert_eq!(
        d.write(0, &[1; 8 * 512]),
        Err(DiskError::Refused(Status::Malformed))
    );
    d.waiter().0.limits.max_sectors = 16;
    d.write(0, &[1; 8 * 512]).unwrap();
}

#[test]
fn a_lying_server_gets_an_error_not_a_wrong_buffer() {
    for mode in [Mode::WrongId, Mode::Short] {
        let mut d = disk(64, 16, mode);
        let mut out = [0u8; 1024];
        assert_eq!(d.read(0, &mut out), Err(DiskError::Server));
    }
    // A response sent twice: the duplicate names no request of the next transfer.
    let mut d = disk(64, 16, Mode::Twice);
    let mut out = [0u8; 1024];
    assert_eq!(d.read(0, &mut out), Ok(()));
    assert_eq!(d.read(0, &mut out), Err(DiskError::Server));
}

#[test]
fn a_server_that_goes_away_ends_the_transfer() {
    let mut d = disk(64, 16, Mode::Honest);
    d.waiter().0.gone = true;
    assert_eq!(d.read(0, &mut [0; 512]), Err(DiskError::Gone));
}
