//! The block check client's sequence, over any [`Link`] to a block server: one
//! [`Verdict`] per step, printed as `CHECK blk-NAME: PASS|FAIL (detail)`.
//!
//! 1. `blk-geometry`: the server reports a window and a request limit of at least 8 sectors.
//! 2. `blk-write`: [`WRITES`] writes of 8 sectors each, all in flight at once, over the last
//!    sectors of the window, with the data of [`pattern`].
//! 3. `blk-flush`: a flush.
//! 4. `blk-read`: the same sectors read back into other parts of the data area, all in
//!    flight at once, and compared byte for byte.
//! 5. `blk-refused`: requests past the window, at a misaligned offset, of an unknown
//!    operation, over the limit and past the data area each get their error.
//! 6. `blk-still-serving`: a read after those gets the right data.
//!
//! Then `blk-disk` ([`disk_round_trip`]) does the same through `blkring`'s blocking
//! [`Disk`], the client a file service uses. The component also tries attachments `blk` must refuse ([`attach_refusals`]: a region
//! that does not exist, a wrong nonce) and can then kill `blk`, attach to its next instance and read the data back
//! ([`read_back`], `blk-restart`).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use blkring::disk::{Disk, Wait};
use blkring::{op, Request, Response, Status, SECTOR};

/// Writes (and reads) in flight at once, of 8 sectors each.
pub const WRITES: u32 = 16;
/// Sectors per write.
pub const SECTORS_PER_WRITE: u32 = 8;

/// Byte `index` of sector `sector` in the written pattern (the host test checks the image
/// with the same function).
pub fn pattern(sector: u64, index: usize) -> u8 {
    ((sector as u32).wrapping_mul(131) ^ (index as u32).wrapping_mul(7) ^ 0xA5) as u8
}

/// The first sector the check writes, in a window of `sectors`: the last
/// `WRITES * SECTORS_PER_WRITE` sectors.
pub fn first_sector(sectors: u64) -> u64 {
    sectors.saturating_sub(u64::from(WRITES * SECTORS_PER_WRITE))
}

/// A client's connection to a block server.
pub trait Link {
    /// Queues a request; false if the ring is full.
    fn push(&mut self, request: Request) -> bool;
    /// Publishes the queued requests (signalling the server if it waits) and waits until
    /// `count` responses arrived; returns them (fewer if the server stopped answering).
    fn submit_and_wait(&mut self, count: usize) -> Vec<Response>;
    /// Copies `bytes` into the data area at `offset`.
    fn write(&mut self, offset: u32, bytes: &[u8]) -> bool;
    /// Copies the data area at `offset` into `out`.
    fn read(&mut self, offset: u32, out: &mut [u8]) -> bool;
}

/// One step's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The step (`blk-write`, ...).
    pub name: &'static str,
    /// Whether it passed.
    pub pass: bool,
    /// What was seen.
    pub detail: String,
}

impl core::fmt::Display for Verdict {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let word = if self.pass { "PASS" } else { "FAIL" };
        write!(f, "CHECK {}: {word} ({})", self.name, self.detail)
    }
}

fn verdict(name: &'static str, pass: bool, detail: String) -> Verdict {
    Verdict { name, pass, detail }
}

fn all_ok(responses: &[Response], count: usize) -> Result<(), String> {
    if responses.len() != count {
        return Err(format!("{} of {count} responses", responses.len()));
    }
    match responses.iter().find(|r| r.status != Status::Ok) {
        Some(r) => Err(format!("request {} got {:?}", r.id, r.status)),
        None => Ok(()),
    }
}

/// Runs the sequence over `link` for a window of `sectors` sectors with a limit of
/// `max_sectors` per request and a data area of `data_bytes`.
pub fn run(link: &mut impl Link, sectors: u64, max_sectors: u32, data_bytes: u32) -> Vec<Verdict> {
    let mut out = Vec::new();
    let bytes = (SECTORS_PER_WRITE * SECTOR) as usize;
    let needed = 2 * WRITES as usize * bytes;
    let fits = max_sectors >= SECTORS_PER_WRITE
        && sectors >= u64::from(WRITES * SECTORS_PER_WRITE)
        && data_bytes as usize >= needed;
    out.push(verdict(
        "blk-geometry",
        fits,
        format!("{sectors} sectors, {max_sectors} per request, {data_bytes} bytes of data area"),
    ));
    if !fits {
        return out;
    }
    let first = first_sector(sectors);
    let sector_of = |i: u32| first + u64::from(i * SECTORS_PER_WRITE);
    // Writes, all in flight at once.
    for i in 0..WRITES {
        let data: Vec<u8> = (0..bytes)
            .map(|j| {
                pattern(
                    sector_of(i) + (j / SECTOR as usize) as u64,
                    j % SECTOR as usize,
                )
            })
            .collect();
        let offset = i * bytes as u32;
        link.write(offset, &data);
        link.push(Request {
            op: op::WRITE,
            sector: sector_of(i),
            count: SECTORS_PER_WRITE,
            offset,
            id: i,
        });
    }
    let written = all_ok(&link.submit_and_wait(WRITES as usize), WRITES as usize);
    out.push(verdict(
        "blk-write",
        written.is_ok(),
        written.err().unwrap_or(format!(
            "{WRITES} writes of {bytes} bytes in flight from sector {first}"
        )),
    ));
    link.push(Request {
        op: op::FLUSH,
        sector: 0,
        count: 0,
        offset: 0,
        id: 100,
    });
    let flushed = all_ok(&link.submit_and_wait(1), 1);
    out.push(verdict(
        "blk-flush",
        flushed.is_ok(),
        flushed.err().unwrap_or(String::from("flushed")),
    ));
    // Reads into the second half of the used data area, all in flight.
    let base = WRITES * bytes as u32;
    for i in 0..WRITES {
        link.write(base + i * bytes as u32, &vec![0; bytes]);
        link.push(Request {
            op: op::READ,
            sector: sector_of(i),
            count: SECTORS_PER_WRITE,
            offset: base + i * bytes as u32,
            id: 200 + i,
        });
    }
    let read = all_ok(&link.submit_and_wait(WRITES as usize), WRITES as usize).and_then(|()| {
        let mut got = vec![0u8; bytes];
        for i in 0..WRITES {
            link.read(base + i * bytes as u32, &mut got);
            for (j, b) in got.iter().enumerate() {
                let sector = sector_of(i) + (j / SECTOR as usize) as u64;
                if *b != pattern(sector, j % SECTOR as usize) {
                    return Err(format!(
                        "sector {sector} byte {} differs",
                        j % SECTOR as usize
                    ));
                }
            }
        }
        Ok(())
    });
    out.push(verdict(
        "blk-read",
        read.is_ok(),
        read.err()
            .unwrap_or(format!("{WRITES} reads match the pattern")),
    ));
    // Refused requests.
    let bad = [
        (
            Request {
                op: op::READ,
                sector: sectors - 4,
                count: 8,
                offset: 0,
                id: 300,
            },
            Status::OutOfRange,
        ),
        (
            Request {
                op: op::WRITE,
                sector: sectors,
                count: 1,
                offset: 0,
                id: 301,
            },
            Status::OutOfRange,
        ),
        (
            Request {
                op: op::READ,
                sector: 0,
                count: 1,
                offset: 100,
                id: 302,
            },
            Status::Misaligned,
        ),
        (
            Request {
                op: 77,
                sector: 0,
                count: 1,
                offset: 0,
                id: 303,
            },
            Status::Malformed,
        ),
        (
            Request {
                op: op::READ,
                sector: 0,
                count: max_sectors + 1,
                offset: 0,
                id: 304,
            },
            Status::Malformed,
        ),
        (
            Request {
                op: op::READ,
                sector: 0,
                count: 2,
                offset: data_bytes - 512,
                id: 305,
            },
            Status::Malformed,
        ),
    ];
    for (request, _) in &bad {
        link.push(*request);
    }
    let got = link.submit_and_wait(bad.len());
    let wrong: Vec<String> = bad
        .iter()
        .filter_map(|(request, want)| {
            let seen = got.iter().find(|r| r.id == request.id).map(|r| r.status);
            (seen != Some(*want))
                .then(|| format!("request {} got {seen:?}, not {want:?}", request.id))
        })
        .collect();
    out.push(verdict(
        "blk-refused",
        wrong.is_empty(),
        if wrong.is_empty() {
            format!("{} bad requests refused with their errors", bad.len())
        } else {
            wrong.join("; ")
        },
    ));
    out.push(read_back(
        link,
        "blk-still-serving",
        sectors,
        "a read after the refusals is served",
    ));
    out
}

/// Bytes [`disk_round_trip`] writes: 96 KiB, more than one request and one data area's
/// batch of a small region.
pub const DISK_BYTES: usize = 96 * 1024;

/// The `blk-disk` check: `blkring`'s blocking [`Disk`] (what a file service uses) writes
/// [`DISK_BYTES`] of [`pattern`] just below [`first_sector`], reads them back and compares.
pub fn disk_round_trip<W: Wait>(disk: &mut Disk<W>) -> Verdict {
    let sectors = disk.sectors();
    let count = (DISK_BYTES / SECTOR as usize) as u64;
    let Some(start) = first_sector(sectors).checked_sub(count) else {
        return verdict("blk-disk", false, String::from("the window is too small"));
    };
    let data: Vec<u8> = (0..DISK_BYTES)
        .map(|j| pattern(start + (j / SECTOR as usize) as u64, j % SECTOR as usize))
        .collect();
    let mut back = vec![0u8; DISK_BYTES];
    let result = disk
        .write(start, &data)
        .and_then(|()| disk.flush())
        .and_then(|()| disk.read(start, &mut back));
    let pass = result.is_ok() && back == data;
    let detail = match result {
        Err(e) => format!("{e:?}"),
        Ok(()) if !pass => String::from("the data read back differs"),
        Ok(()) => format!("{DISK_BYTES} bytes written, flushed and read back from sector {start}"),
    };
    verdict("blk-disk", pass, detail)
}

/// The `blk-attach-refused` verdict from what `blk` answered to attachments it must refuse:
/// (what was tried, the answer); each must be `NotFound`.
pub fn attach_refusals(answers: &[(&str, Result<(), proto::blk::Error>)]) -> Verdict {
    let wrong: Vec<String> = answers
        .iter()
        .filter(|(_, got)| *got != Err(proto::blk::Error::NotFound))
        .map(|(what, got)| format!("{what}: {got:?}"))
        .collect();
    let detail = if wrong.is_empty() {
        format!("{} attachments refused with NotFound", answers.len())
    } else {
        wrong.join("; ")
    };
    verdict("blk-attach-refused", wrong.is_empty(), detail)
}

/// Reads the first written sector of a window of `sectors` back and compares it with
/// [`pattern`]: the check after the refusals, and after `blk` restarted (`blk-restart`).
pub fn read_back(link: &mut impl Link, name: &'static str, sectors: u64, what: &str) -> Verdict {
    let first = first_sector(sectors);
    link.write(0, &[0; SECTOR as usize]);
    link.push(Request {
        op: op::READ,
        sector: first,
        count: 1,
        offset: 0,
        id: 400,
    });
    let again = all_ok(&link.submit_and_wait(1), 1).and_then(|()| {
        let mut got = vec![0u8; SECTOR as usize];
        link.read(0, &mut got);
        let same = got.iter().enumerate().all(|(j, b)| *b == pattern(first, j));
        if same {
            Ok(())
        } else {
            Err(String::from("wrong data"))
        }
    });
    verdict(
        name,
        again.is_ok(),
        again.err().unwrap_or(String::from(what)),
    )
}
