//! The check sequence against the real `blk` server library in one process: the client's
//! rings and data area in a region, the server taking requests from it, and a disk that
//! moves data between its sectors and the region's "physical" pages.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};

use blk::{Disk, Server};
use blkcheck::{first_sector, pattern, run, Link};
use blkring::{ClientRings, Request, Response};
use virtio_blk::{Completion, Geometry, Op, RequestError, Segment, Status};

const REGION: usize = 256 * 1024;
/// The region's page `i` is at physical address `BASE + i * 4096`.
const BASE: u64 = 0x4000_0000;

struct MemDisk {
    bytes: Vec<u8>,
    region: &'static [AtomicU32],
    done: VecDeque<Completion>,
    corrupt_reads: bool,
}

impl Disk for MemDisk {
    fn geometry(&self) -> Geometry {
        Geometry {
            sectors: self.bytes.len() as u64 / 512,
            max_segments: 64,
            read_only: false,
            flush: true,
        }
    }
    fn submit(
        &mut self,
        tag: u32,
        op: Op,
        sector: u64,
        segments: &[Segment],
    ) -> Result<(), RequestError> {
        self.geometry().check(op, sector, segments)?;
        let mut at = sector as usize * 512;
        for s in segments {
            for i in (0..s.len as u64).step_by(4) {
                let word = &self.region[((s.paddr - BASE + i) / 4) as usize];
                match op {
                    Op::Read => {
                        let mut v = u32::from_le_bytes(self.bytes[at..at + 4].try_into().unwrap());
                        if self.corrupt_reads {
                            v ^= 1;
                        }
                        word.store(v, Ordering::Relaxed)
                    }
                    Op::Write => self.bytes[at..at + 4]
                        .copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes()),
                    Op::Flush => {}
                }
                at += 4;
            }
        }
        self.done.push_back(Completion {
            id: tag,
            status: Status::Ok,
        });
        Ok(())
    }
    fn notify(&mut self) {}
    fn complete(&mut self) -> Option<Completion> {
        self.done.pop_front()
    }
    fn free_descriptors(&self) -> u16 {
        256
    }
}

struct Local {
    client: ClientRings,
    server: Server<MemDisk, ()>,
    in_flight_max: usize,
}

impl Link for Local {
    fn push(&mut self, request: Request) -> bool {
        self.client.push(request).is_ok()
    }
    fn submit_and_wait(&mut self, count: usize) -> Vec<Response> {
        self.client.publish();
        let mut got = Vec::new();
        for _ in 0..10 {
            self.server.poll(|()| {});
            while let Ok(Some(r)) = self.client.pop() {
                got.push(r);
            }
            if got.len() >= count {
                break;
            }
        }
        self.in_flight_max = self.in_flight_max.max(got.len());
        got
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> bool {
        self.client.write_data(offset, bytes)
    }
    fn read(&mut self, offset: u32, out: &mut [u8]) -> bool {
        self.client.read_data(offset, out)
    }
}

fn local(sectors: u64) -> Local {
    let region: &'static [AtomicU32] = shmring::zeroed_words(REGION / 4).collect::<Vec<_>>().leak();
    let (client, _) = ClientRings::new(region, 42).unwrap();
    let disk = MemDisk {
        bytes: vec![0; sectors as usize * 512],
        region,
        done: VecDeque::new(),
        corrupt_reads: false,
    };
    let mut server = Server::new(disk);
    let frames = (0..REGION as u64 / 4096).map(|i| BASE + i * 4096).collect();
    server.attach(1, 42, region, frames, None, ()).unwrap();
    Local {
        client,
        server,
        in_flight_max: 0,
    }
}

#[test]
fn every_step_passes_against_the_server_and_the_pattern_is_on_disk() {
    let mut link = local(4096);
    let verdicts = run(&mut link, 4096, blk::MAX_SECTORS, (REGION - 4096) as u32);
    for v in &verdicts {
        assert!(v.pass, "{v}");
    }
    assert_eq!(verdicts.len(), 6);
    assert_eq!(link.in_flight_max, 16, "sixteen answered in one batch");
    let first = first_sector(4096);
    assert_eq!(first, 4096 - 128);
    let disk = &link.server.disk().bytes;
    for s in first..4096 {
        for j in 0..512 {
            assert_eq!(disk[s as usize * 512 + j], pattern(s, j));
        }
    }
    assert_eq!(link.server.counters().refused, 6);
    assert_eq!(
        verdicts[3].to_string(),
        "CHECK blk-read: PASS (16 reads match the pattern)"
    );
}

#[test]
fn a_disk_that_returns_wrong_data_fails_the_read_check() {
    let mut link = local(4096);
    link.server.disk().corrupt_reads = true;
    let verdicts = run(&mut link, 4096, blk::MAX_SECTORS, (REGION - 4096) as u32);
    let read = verdicts.iter().find(|v| v.name == "blk-read").unwrap();
    assert!(!read.pass);
    assert!(read.detail.contains("differs"), "{read}");
    assert!(
        !verdicts
            .iter()
            .find(|v| v.name == "blk-still-serving")
            .unwrap()
            .pass
    );
}

#[test]
fn a_window_too_small_stops_after_the_geometry_check() {
    let mut link = local(64);
    let verdicts = run(&mut link, 64, blk::MAX_SECTORS, (REGION - 4096) as u32);
    assert_eq!(verdicts.len(), 1);
    assert!(!verdicts[0].pass);
}

#[test]
fn attach_refusals_pass_only_when_every_answer_is_not_found() {
    use proto::blk::Error;
    let ok = blkcheck::attach_refusals(&[
        ("no such region", Err(Error::NotFound)),
        ("wrong nonce", Err(Error::NotFound)),
    ]);
    assert!(ok.pass, "{ok}");
    let bad = blkcheck::attach_refusals(&[
        ("no such region", Err(Error::NotFound)),
        ("wrong nonce", Ok(())),
    ]);
    assert!(!bad.pass);
    assert_eq!(
        bad.to_string(),
        "CHECK blk-attach-refused: FAIL (wrong nonce: Ok(()))"
    );
}

/// `blkring`'s `Disk` waits by running the server.
struct Polling(Server<MemDisk, ()>);

impl blkring::disk::Wait for Polling {
    fn signal(&mut self) {
        self.0.poll(|()| {});
    }
    fn wait(&mut self) -> bool {
        self.0.poll(|()| {});
        true
    }
}

#[test]
fn the_blocking_disk_round_trip_passes_and_lands_below_the_pattern() {
    let link = local(4096);
    let layout = blkring::Layout::for_region(REGION).unwrap();
    let mut disk = blkring::disk::Disk::new(
        link.client,
        layout.data_bytes,
        4096,
        blk::MAX_SECTORS,
        Polling(link.server),
    );
    let verdict = blkcheck::disk_round_trip(&mut disk);
    assert!(verdict.pass, "{verdict}");
    let start = first_sector(4096) - (blkcheck::DISK_BYTES / 512) as u64;
    let bytes = &disk.waiter().0.disk().bytes;
    assert_eq!(bytes[start as usize * 512 + 3], pattern(start, 3));
    assert!(bytes[..start as usize * 512].iter().all(|&b| b == 0));
}
