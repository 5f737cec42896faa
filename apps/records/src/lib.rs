//! A journal of checksummed records kept through the library OS's file API, by a program
//! that trusts neither the file service's answers nor what it finds on disk.
//!
//! Each record is one line, `rec SEQ CRC PAYLOAD\n`: `SEQ` counts from 1 in decimal, `CRC`
//! is the CRC-32 (IEEE) of `SEQ PAYLOAD` in 8 hex digits, and the payload names the writer
//! and the record. [`verify`] reads a journal back and accepts it only if every line parses,
//! every checksum matches and the sequence numbers run 1, 2, 3, ... without a gap or a
//! repeat. [`run`] is what the `records` component does on each boot: verify what an
//! earlier boot left, append records (each synced before the next), verify the whole
//! journal again, and check that paths outside its subtree are refused; one [`Verdict`]
//! per step.
//!
//! The file a journal lives in is [`JOURNAL`] under the program's root; two instances of
//! the program given separate subtrees by the file service's description each keep their
//! own and cannot name the other's.

#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use libos_core::fs::{Backend, Error, Files, OpenFlags};

/// The journal's name, in the program's root.
pub const JOURNAL: &str = "journal.log";

/// The longest line [`verify`] accepts.
pub const MAX_LINE: usize = 256;

/// The CRC-32 (IEEE 802.3, reflected, as zlib and `cksum -a crc32b` compute it) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

/// The payload of record `seq` written by `writer`.
fn payload(writer: &str, seq: u64) -> String {
    format!("{writer} wrote record {seq}")
}

/// Record `seq` of `writer` as its journal line.
pub fn record(writer: &str, seq: u64) -> String {
    let payload = payload(writer, seq);
    let crc = crc32(format!("{seq} {payload}").as_bytes());
    format!("rec {seq} {crc:08x} {payload}\n")
}

/// What is wrong with a journal; `line` counts from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The line is not `rec SEQ CRC PAYLOAD`, or is not UTF-8, or is too long.
    Malformed {
        /// The line.
        line: usize,
    },
    /// The checksum does not match the line's sequence number and payload.
    Checksum {
        /// The line.
        line: usize,
    },
    /// The sequence number is not the one after the previous line's.
    Sequence {
        /// The line.
        line: usize,
        /// The number that should be there.
        expected: u64,
        /// The number that is.
        found: u64,
    },
    /// The journal ends without a line end: a record cut short (by a crash, or a service
    /// restart before its `fsync` returned).
    Torn {
        /// The line.
        line: usize,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Malformed { line } => write!(f, "line {line} is not a record"),
            Problem::Checksum { line } => write!(f, "line {line}: checksum mismatch"),
            Problem::Sequence {
                line,
                expected,
                found,
            } => write!(f, "line {line}: record {found} where {expected} belongs"),
            Problem::Torn { line } => write!(f, "line {line} is cut short"),
        }
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Journal {
    /// Good records from the start.
    pub records: u64,
    /// Bytes those records take: where the journal stops being good.
    pub good_bytes: usize,
    /// The first problem after them, if any.
    pub problem: Option<Problem>,
}

/// Parses one line (without its line end): its sequence number, if the checksum matches.
fn parse(text: &[u8], line: usize) -> Result<u64, Problem> {
    let malformed = Problem::Malformed { line };
    if text.len() > MAX_LINE {
        return Err(malformed);
    }
    let text = core::str::from_utf8(text).map_err(|_| malformed.clone())?;
    let rest = text.strip_prefix("rec ").ok_or(malformed.clone())?;
    let (seq_text, rest) = rest.split_once(' ').ok_or(malformed.clone())?;
    let (crc_text, payload) = rest.split_once(' ').ok_or(malformed.clone())?;
    let seq: u64 = seq_text.parse().map_err(|_| malformed.clone())?;
    if seq_text != format!("{seq}") || crc_text.len() != 8 {
        return Err(malformed);
    }
    let crc = u32::from_str_radix(crc_text, 16).map_err(|_| malformed)?;
    if crc32(format!("{seq_text} {payload}").as_bytes()) != crc {
        return Err(Problem::Checksum { line });
    }
    Ok(seq)
}

/// Checks a journal's bytes: the good records from the start and the first problem.
pub fn verify(bytes: &[u8]) -> Journal {
    let mut journal = Journal {
        records: 0,
        good_bytes: 0,
        problem: None,
    };
    let mut rest = bytes;
    while !rest.is_empty() {
        let line = journal.records as usize + 1;
        // A tail without a line end is a record cut short (whatever bytes a crash left in
        // it).
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            journal.problem = Some(Problem::Torn { line });
            return journal;
        };
        match parse(&rest[..end], line) {
            Ok(seq) if seq == journal.records + 1 => {
                journal.records = seq;
                journal.good_bytes += end + 1;
                rest = &rest[end + 1..];
            }
            Ok(found) => {
                journal.problem = Some(Problem::Sequence {
                    line,
                    expected: journal.records + 1,
                    found,
                });
                return journal;
            }
            Err(problem) => {
                journal.problem = Some(problem);
                return journal;
            }
        }
    }
    journal
}

/// Reads the journal (`NotFound`: empty) and verifies it.
pub fn read<B: Backend>(files: &mut Files<B>) -> Result<Journal, Error> {
    match files.read_file(JOURNAL) {
        Ok(bytes) => Ok(verify(&bytes)),
        Err(Error::NotFound) => Ok(verify(&[])),
        Err(e) => Err(e),
    }
}

/// Appends record `seq` of `writer` and syncs it: when this returns `Ok`, the record is on
/// the disk.
pub fn append<B: Backend>(files: &mut Files<B>, writer: &str, seq: u64) -> Result<(), Error> {
    let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND;
    let fd = files.open(JOURNAL, flags)?;
    let written = files
        .write(fd, record(writer, seq).as_bytes())
        .and_then(|_| files.fsync(fd));
    let closed = files.close(fd);
    written.and(closed)
}

/// Cuts a journal whose tail is damaged (a record cut short by a crash) back to its good
/// records, so appending can go on after them.
pub fn repair<B: Backend>(files: &mut Files<B>, journal: &Journal) -> Result<(), Error> {
    if journal.problem.is_some() {
        files.truncate(JOURNAL, journal.good_bytes as u64)?;
    }
    Ok(())
}

/// One step's outcome, printed as `CHECK NAME: PASS (detail)` or `CHECK NAME: FAIL (...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub pass: bool,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = if self.pass { "PASS" } else { "FAIL" };
        write!(f, "CHECK {}: {word} ({})", self.name, self.detail)
    }
}

/// Paths outside the program's root, and what each must get: `..` is refused before it
/// reaches the service; the other writer's subtree is not there below this root.
pub fn escapes(other: &str) -> Vec<(String, Error)> {
    alloc::vec![
        (format!("../{other}/{JOURNAL}"), Error::InvalidName),
        (format!("/../{other}/{JOURNAL}"), Error::InvalidName),
        (format!("{other}/../../{JOURNAL}"), Error::InvalidName),
        (format!("/{other}/{JOURNAL}"), Error::NotFound),
    ]
}

/// Checks that no path in [`escapes`] opens, creates or lists anything: each must get
/// exactly the error [`escapes`] gives it (a listing of the missing path may also be
/// `NotDirectory`).
pub fn confinement<B: Backend>(files: &mut Files<B>, me: &str, other: &str) -> Verdict {
    let mut wrong = Vec::new();
    let create = OpenFlags::WRITE | OpenFlags::CREATE;
    for (path, expected) in escapes(other) {
        for (what, flags) in [("open", OpenFlags::READ), ("create", create)] {
            let got = files.open(&path, flags).map(|fd| {
                let _ = files.close(fd);
            });
            if got != Err(expected) {
                wrong.push(format!("{what} {path}: {got:?}"));
            }
        }
        let listed = files.readdir(&path).map(|_| ());
        if !matches!(listed, Err(e) if e == expected || e == Error::NotDirectory) {
            wrong.push(format!("list {path}: {listed:?}"));
        }
    }
    Verdict {
        name: format!("records-{me}-confined"),
        pass: wrong.is_empty(),
        detail: if wrong.is_empty() {
            format!("{me} cannot name {other}'s journal: .. refused, /{other} not below its root")
        } else {
            wrong.join("; ")
        },
    }
}

/// What [`run`] did: its verdicts, and the file error that stopped it early, if any (the
/// last verdict then fails with it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// One per step done.
    pub verdicts: Vec<Verdict>,
    /// The error that ended the run before its last step.
    pub error: Option<Error>,
}

/// A boot's work: verifies the journal an earlier boot (or an earlier run, cut off by a
/// file service restart) left (a damaged tail is cut back and said so), appends `count`
/// records (`between` runs after each, to let others run), verifies the whole journal
/// again, and checks confinement. Stops at the first file error.
pub fn run<B: Backend>(
    files: &mut Files<B>,
    me: &str,
    other: &str,
    count: u64,
    mut between: impl FnMut(),
) -> Run {
    let mut verdicts = Vec::new();
    let stop = |mut verdicts: Vec<Verdict>, e: Error| {
        verdicts.push(Verdict {
            name: format!("records-{me}-journal"),
            pass: false,
            detail: format!("{e}"),
        });
        Run {
            verdicts,
            error: Some(e),
        }
    };
    let before = match read(files) {
        Ok(j) => j,
        Err(e) => return stop(verdicts, e),
    };
    if let Some(problem) = &before.problem {
        verdicts.push(earlier(me, &before, problem));
        if let Err(e) = repair(files, &before) {
            return stop(verdicts, e);
        }
    }
    for seq in before.records + 1..=before.records + count {
        if let Err(e) = append(files, me, seq) {
            return stop(verdicts, e);
        }
        between();
    }
    let after = match read(files) {
        Ok(j) => j,
        Err(e) => return stop(verdicts, e),
    };
    let expected = before.records + count;
    let pass = after.problem.is_none() && after.records == expected;
    verdicts.push(Verdict {
        name: format!("records-{me}-journal"),
        pass,
        detail: match &after.problem {
            None => format!(
                "{} records verified, {} from earlier boots, {count} appended and synced now",
                after.records, before.records
            ),
            Some(p) => format!("{}; {} good records, {expected} expected", p, after.records),
        },
    });
    verdicts.push(confinement(files, me, other));
    Run {
        verdicts,
        error: None,
    }
}

/// The verdict for a journal an earlier boot left damaged (it is cut back, not failed: a
/// crash may cut the last record short; anything else is a failure).
fn earlier(me: &str, journal: &Journal, problem: &Problem) -> Verdict {
    Verdict {
        name: format!("records-{me}-earlier"),
        pass: matches!(problem, Problem::Torn { .. }),
        detail: format!("{problem}: cut back to {} good records", journal.records),
    }
}

/// Sequential throughput through the file API (`cargo xtask bench files`).
pub mod bench {
    use alloc::vec;
    use libos_core::fs::{Backend, Error, Files, OpenFlags};

    /// The byte at `offset` of the bench file: a pattern that shifts every 251 bytes, so
    /// a block read from the wrong place does not match.
    pub fn pattern(offset: usize) -> u8 {
        (offset % 251) as u8 ^ (offset / 4096) as u8
    }

    /// Writes `total` bytes to `path` in requests of `request` bytes and syncs, then reads
    /// them back in requests of the same size and checks every byte, then removes the file.
    /// Returns the (write + sync, read) times as `now` counts them.
    pub fn sequential<B: Backend>(
        files: &mut Files<B>,
        path: &str,
        total: usize,
        request: usize,
        now: &mut impl FnMut() -> u64,
    ) -> Result<(u64, u64), Error> {
        if request == 0 {
            return Err(Error::Invalid);
        }
        let mut buffer = vec![0u8; request];
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        let fd = files.open(path, flags)?;
        let start = now();
        let mut done = 0;
        while done < total {
            let n = request.min(total - done);
            for (i, b) in buffer[..n].iter_mut().enumerate() {
                *b = pattern(done + i);
            }
            files.write(fd, &buffer[..n])?;
            done += n;
        }
        files.fsync(fd)?;
        let written = now() - start;
        files.close(fd)?;
        let fd = files.open(path, OpenFlags::READ)?;
        let start = now();
        let mut done = 0;
        while done < total {
            let n = files.read(fd, &mut buffer[..request.min(total - done)])?;
            if n == 0 {
                return Err(Error::Io);
            }
            if buffer[..n]
                .iter()
                .enumerate()
                .any(|(i, &b)| b != pattern(done + i))
            {
                return Err(Error::Corrupt);
            }
            done += n;
        }
        let read = now() - start;
        files.close(fd)?;
        files.unlink(path)?;
        Ok((written, read))
    }

    /// Makes directory `dir`, then `count` files of `size` bytes in it, each created,
    /// written in one request, synced and closed on its own; then removes them one by one
    /// and the directory. Returns the (create + write + sync, remove) times as `now` counts
    /// them.
    pub fn small_files<B: Backend>(
        files: &mut Files<B>,
        dir: &str,
        count: usize,
        size: usize,
        now: &mut impl FnMut() -> u64,
    ) -> Result<(u64, u64), Error> {
        let data: alloc::vec::Vec<u8> = (0..size).map(pattern).collect();
        let name = |i: usize| alloc::format!("{dir}/F{i:05}.DAT");
        files.mkdir(dir)?;
        let start = now();
        for i in 0..count {
            let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
            let fd = files.open(&name(i), flags)?;
            if files.write(fd, &data)? != size {
                return Err(Error::Io);
            }
            files.fsync(fd)?;
            files.close(fd)?;
        }
        let created = now() - start;
        let start = now();
        for i in 0..count {
            files.unlink(&name(i))?;
        }
        let removed = now() - start;
        files.rmdir(dir)?;
        Ok((created, removed))
    }
}
