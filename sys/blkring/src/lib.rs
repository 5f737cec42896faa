//! The block protocol's shared region between a client (the file service, a test program)
//! and `blk`: a header with the client's nonce, a request ring (client to server), a
//! response ring (server to client), both `shmring` rings, and the data area the disk reads
//! into and writes from by DMA. Entries name data by byte offset into the data area, never
//! by pointer.
//!
//! Layout of a region of `B` bytes (both sides compute it from `B` alone; nothing that
//! sizes a ring or the area is read from shared memory):
//!
//! | bytes | what |
//! |---|---|
//! | 0..64 | header: magic `TBLK` (word 0), version (word 1), the client's nonce (words 2-3) |
//! | 64.. | requests: a ring of [`RING_CAPACITY`] [`Request`]s (6 words each) |
//! | .. | responses: a ring of [`RING_CAPACITY`] [`Response`]s (3 words each) |
//! | 4096..B | the data area (page aligned, so 512-byte aligned offsets are 512-byte aligned in physical memory too) |
//!
//! The server checks every request ([`Limits::check`]) before it acts: a known operation,
//! a sector count between 1 and the limit, a span of whole sectors inside the data area at a
//! 512-byte aligned offset, sectors inside the client's window. A refused request gets a
//! [`Response`] with the reason; the server keeps serving.
#![no_std]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod disk;

use core::sync::atomic::{AtomicU32, Ordering};

use shmring::{ring_words, Consumer, Corrupt, Entry, Producer, PushError, Region};

/// The first header word of an initialised region (`TBLK` in little-endian bytes).
pub const MAGIC: u32 = u32::from_le_bytes(*b"TBLK");
/// The layout version in header word 1.
pub const VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_BYTES: usize = 64;
/// Entries of each ring: also the most requests a client has in flight.
pub const RING_CAPACITY: u32 = 64;
/// Where the data area starts.
pub const DATA_OFFSET: usize = 4096;
/// Bytes per sector.
pub const SECTOR: u32 = 512;

/// A request's operation (word 0 of a [`Request`]).
pub mod op {
    /// Disk to the data area.
    pub const READ: u32 = 1;
    /// The data area to disk.
    pub const WRITE: u32 = 2;
    /// Every completed write made durable.
    pub const FLUSH: u32 = 3;
}

/// A client's request: word 0 the operation ([`op`]), words 1-2 the first sector (low,
/// high), word 3 the sector count, word 4 the data's byte offset in the data area, word 5
/// the client's id for it (echoed in the response).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// [`op::READ`], [`op::WRITE`] or [`op::FLUSH`].
    pub op: u32,
    /// The first sector, relative to the client's window.
    pub sector: u64,
    /// Sectors (0 for a flush).
    pub count: u32,
    /// Byte offset of the data in the data area (0 for a flush).
    pub offset: u32,
    /// The client's id.
    pub id: u32,
}

impl Entry for Request {
    const WORDS: usize = 6;
    fn encode(&self, w: &mut [u32]) {
        w[0] = self.op;
        w[1] = self.sector as u32;
        w[2] = (self.sector >> 32) as u32;
        w[3] = self.count;
        w[4] = self.offset;
        w[5] = self.id;
    }
    fn decode(w: &[u32]) -> Request {
        Request {
            op: w[0],
            sector: u64::from(w[1]) | u64::from(w[2]) << 32,
            count: w[3],
            offset: w[4],
            id: w[5],
        }
    }
}

/// How a request ended (word 0 of a [`Response`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    /// Done.
    Ok = 0,
    /// The device reported an error.
    IoError = 1,
    /// The sectors lie (partly) outside the client's window.
    OutOfRange = 2,
    /// The offset is not a multiple of 512.
    Misaligned = 3,
    /// Unknown operation, no sectors (or sectors with a flush), more than the limit, or
    /// data outside the data area.
    Malformed = 4,
    /// A write to a read-only device.
    ReadOnly = 5,
    /// The device does not support it (a flush without a write cache).
    Unsupported = 6,
    /// A status this side does not know (from a newer or confused peer).
    Unknown = 0xFFFF,
}

impl Status {
    /// The status a word encodes.
    pub fn from_word(word: u32) -> Status {
        match word {
            0 => Status::Ok,
            1 => Status::IoError,
            2 => Status::OutOfRange,
            3 => Status::Misaligned,
            4 => Status::Malformed,
            5 => Status::ReadOnly,
            6 => Status::Unsupported,
            _ => Status::Unknown,
        }
    }
}

/// The server's answer: word 0 the [`Status`], word 1 the sectors done, word 2 the id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// How it ended.
    pub status: Status,
    /// Sectors moved (0 unless `Ok`).
    pub count: u32,
    /// The request's id.
    pub id: u32,
}

impl Entry for Response {
    const WORDS: usize = 3;
    fn encode(&self, w: &mut [u32]) {
        w[0] = self.status as u32;
        w[1] = self.count;
        w[2] = self.id;
    }
    fn decode(w: &[u32]) -> Response {
        Response {
            status: Status::from_word(w[0]),
            count: w[1],
            id: w[2],
        }
    }
}

/// Where the rings and the data area of a region lie, in bytes from its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    requests: usize,
    responses: usize,
    /// The data area's size in bytes (a multiple of 512).
    pub data_bytes: u32,
}

impl Layout {
    /// The layout of a region of `bytes` bytes; `None` if the data area would hold less
    /// than one page or the region is 4 GiB or more (offsets are 32-bit).
    pub fn for_region(bytes: usize) -> Option<Layout> {
        let requests = HEADER_BYTES;
        let responses = requests + 4 * ring_words::<Request>(RING_CAPACITY);
        let end = responses + 4 * ring_words::<Response>(RING_CAPACITY);
        debug_assert!(end <= DATA_OFFSET);
        let data = bytes.checked_sub(DATA_OFFSET)? / SECTOR as usize * SECTOR as usize;
        if data < 4096 {
            return None;
        }
        Some(Layout {
            requests,
            responses,
            data_bytes: u32::try_from(data).ok()?,
        })
    }

    fn words<'a>(
        &self,
        region: &'a [AtomicU32],
    ) -> (&'a [AtomicU32], &'a [AtomicU32], &'a [AtomicU32]) {
        let (q, r, d) = (self.requests / 4, self.responses / 4, DATA_OFFSET / 4);
        let end = d + self.data_bytes as usize / 4;
        (&region[q..r], &region[r..d], &region[d..end])
    }
}

/// Writes the header of a client's region: magic, version and `nonce` (the credential the
/// client names when it attaches). Does nothing to a region shorter than the header.
pub fn write_header(region: &[AtomicU32], nonce: u64) {
    if region.len() >= HEADER_BYTES / 4 {
        region[2].store(nonce as u32, Ordering::Relaxed);
        region[3].store((nonce >> 32) as u32, Ordering::Relaxed);
        region[1].store(VERSION, Ordering::Relaxed);
        region[0].store(MAGIC, Ordering::Release);
    }
}

/// The nonce in a region's header, if the header is one this layout understands.
pub fn read_nonce(region: &[AtomicU32]) -> Option<u64> {
    if region.len() < HEADER_BYTES / 4
        || region[0].load(Ordering::Acquire) != MAGIC
        || region[1].load(Ordering::Relaxed) != VERSION
    {
        return None;
    }
    let low = u64::from(region[2].load(Ordering::Relaxed));
    Some(low | u64::from(region[3].load(Ordering::Relaxed)) << 32)
}

/// Sets a fresh attachment's rings to empty: the client calls it before writing the
/// header, so a server attaching finds no stale entries from an earlier instance.
pub fn reset_rings(region: &[AtomicU32]) {
    let end = (DATA_OFFSET / 4).min(region.len());
    for word in region.get(HEADER_BYTES / 4..end).unwrap_or(&[]) {
        word.store(0, Ordering::Relaxed);
    }
}

/// What a client may do: its window of the disk and the request size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Sectors of the client's window.
    pub sectors: u64,
    /// The most sectors per request.
    pub max_sectors: u32,
    /// The data area (size; offsets must be 512-byte aligned).
    pub data: Region,
}

/// A request that passed [`Limits::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// [`op::READ`], [`op::WRITE`] or [`op::FLUSH`].
    pub op: u32,
    /// First sector in the client's window.
    pub sector: u64,
    /// Sectors (0 for a flush).
    pub count: u32,
    /// Byte offset of the data in the data area.
    pub offset: u32,
    /// The client's id.
    pub id: u32,
}

impl Limits {
    /// Checks `request`; the refusal's [`Status`] otherwise: `Malformed` (unknown op, a
    /// flush with sectors or data, no sectors or more than `max_sectors`, data past the data
    /// area), `Misaligned` (offset not a multiple of 512), `OutOfRange` (sectors past the
    /// window).
    pub fn check(&self, request: &Request) -> Result<Checked, Status> {
        let checked = |count, offset| Checked {
            op: request.op,
            sector: request.sector,
            count,
            offset,
            id: request.id,
        };
        match request.op {
            op::FLUSH => {
                if request.count != 0 || request.sector != 0 || request.offset != 0 {
                    return Err(Status::Malformed);
                }
                Ok(checked(0, 0))
            }
            op::READ | op::WRITE => {
                if request.count == 0 || request.count > self.max_sectors {
                    return Err(Status::Malformed);
                }
                let length = request.count.checked_mul(SECTOR).ok_or(Status::Malformed)?;
                self.data
                    .check(request.offset, length)
                    .map_err(|e| match e {
                        shmring::SpanError::Misaligned => Status::Misaligned,
                        _ => Status::Malformed,
                    })?;
                match request.sector.checked_add(u64::from(request.count)) {
                    Some(end) if end <= self.sectors => Ok(checked(request.count, request.offset)),
                    _ => Err(Status::OutOfRange),
                }
            }
            _ => Err(Status::Malformed),
        }
    }
}

/// The server's half of a region: takes requests, gives responses.
pub struct ServerRings {
    requests: Consumer<Request>,
    responses: Producer<Response>,
}

impl ServerRings {
    /// The server's half over `region` (all of it); `None` when it is too small.
    pub fn new(region: &'static [AtomicU32]) -> Option<(ServerRings, Layout)> {
        let layout = Layout::for_region(region.len() * 4)?;
        let (q, r, _) = layout.words(region);
        Some((
            ServerRings {
                requests: Consumer::new(q, RING_CAPACITY).ok()?,
                responses: Producer::new(r, RING_CAPACITY).ok()?,
            },
            layout,
        ))
    }

    /// The next request, unchecked; `Err(Corrupt)` when the client broke its ring.
    pub fn pop(&mut self) -> Result<Option<Request>, Corrupt> {
        self.requests.pop()
    }

    /// Queues a response (visible after [`ServerRings::publish`]).
    pub fn push(&mut self, response: Response) -> Result<(), PushError> {
        self.responses.push(response)
    }

    /// Publishes queued responses; whether the client waits and must be signalled.
    pub fn publish(&mut self) -> bool {
        self.responses.publish()
    }

    /// Announces that the server is about to wait; false if requests arrived meanwhile.
    pub fn prepare_wait(&mut self) -> bool {
        self.requests.prepare_wait()
    }
}

/// The client's half of a region: gives requests, takes responses, fills and reads the
/// data area.
pub struct ClientRings {
    requests: Producer<Request>,
    responses: Consumer<Response>,
    data: &'static [AtomicU32],
}

impl ClientRings {
    /// The client's half over `region` (all of it): resets the rings and writes the header
    /// with `nonce`. `None` when the region is too small.
    pub fn new(region: &'static [AtomicU32], nonce: u64) -> Option<(Self, Layout)> {
        let layout = Layout::for_region(region.len() * 4)?;
        reset_rings(region);
        write_header(region, nonce);
        let (q, r, d) = layout.words(region);
        Some((
            ClientRings {
                requests: Producer::new(q, RING_CAPACITY).ok()?,
                responses: Consumer::new(r, RING_CAPACITY).ok()?,
                data: d,
            },
            layout,
        ))
    }

    /// Queues a request (visible after [`ClientRings::publish`]).
    pub fn push(&mut self, request: Request) -> Result<(), PushError> {
        self.requests.push(request)
    }

    /// Publishes queued requests; whether the server waits and must be signalled.
    pub fn publish(&mut self) -> bool {
        self.requests.publish()
    }

    /// The next response; `Err(Corrupt)` when the server broke its ring.
    pub fn pop(&mut self) -> Result<Option<Response>, Corrupt> {
        self.responses.pop()
    }

    /// Announces that the client is about to wait; false if responses arrived meanwhile.
    pub fn prepare_wait(&mut self) -> bool {
        self.responses.prepare_wait()
    }

    /// Copies `bytes` into the data area at byte `offset` (`shmring::write_bytes`); false,
    /// copying nothing, when they do not fit.
    pub fn write_data(&self, offset: u32, bytes: &[u8]) -> bool {
        shmring::write_bytes(self.data, offset as usize, bytes).is_ok()
    }

    /// Copies the data area at byte `offset` into `out` (`shmring::read_bytes`); false when
    /// the bytes are not all inside it.
    pub fn read_data(&self, offset: u32, out: &mut [u8]) -> bool {
        shmring::read_bytes(self.data, offset as usize, out).is_ok()
    }
}

#[cfg(test)]
mod tests;
