//! The block driver component's logic: serves clients attached over `proto::blk` with the
//! request and response rings of `blkring` in each client's shared region, on a [`Disk`]
//! (the virtio-blk driver), moving data by DMA straight between the disk and the region.
//!
//! Every request is checked twice: against the client's limits ([`blkring::Limits`]: its
//! window of the disk, the data area, the size limit) and by the driver against the device
//! ([`virtio_blk::Geometry`]). A refused request gets a response with the reason and is
//! counted; a client that breaks its ring is cut off (counted) and may attach again. Nothing
//! a client writes makes the server panic or touch memory outside that client's region.
//!
//! Fairness: requests are taken round robin, one per client per round, so a client that
//! keeps its ring full cannot keep the others off the disk (sDDF's block virtualiser once
//! served client 0 first).
//!
//! Flow control: a client has at most [`blkring::RING_CAPACITY`] requests in flight and
//! answered-but-unpublished together, so every completion has a response slot (a client that
//! does not read its responses only stalls itself); a request is taken from a ring only when
//! the driver has descriptors for the largest request, so a taken request is never lost.
//!
//! Restarts: the server keeps nothing on disk; a restarted server starts with no clients and
//! clients attach again (their region resets its rings). A client that attaches again over
//! the same region replaces its old attachment; completions of the old one's requests are
//! dropped (their generation no longer matches).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

pub mod session;

pub use session::Sessions;

use blkring::{op, Checked, Limits, Request, Response, ServerRings, Status, DATA_OFFSET, SECTOR};
use virtio_blk::{Completion, Geometry, Op, RequestError, Segment, VirtioBlk};

/// Bytes per page of a shared region (one DMA segment at most).
pub const PAGE: u64 = 4096;
/// Clients served at once.
pub const MAX_CLIENTS: usize = 8;
/// The most sectors one request may cover (64 KiB: at most 17 pages).
pub const MAX_SECTORS: u32 = 128;
/// Segments of the largest request (its span can start inside a page).
const MAX_REQUEST_SEGMENTS: usize = (MAX_SECTORS as usize * SECTOR as usize) / PAGE as usize + 1;

/// The disk as the server uses it: the virtio-blk driver, or a fake in tests.
pub trait Disk {
    /// The device's size and rules.
    fn geometry(&self) -> Geometry;
    /// Queues a request (see [`VirtioBlk::submit`]).
    fn submit(
        &mut self,
        tag: u32,
        op: Op,
        sector: u64,
        segments: &[Segment],
    ) -> Result<(), RequestError>;
    /// Tells the device about queued requests.
    fn notify(&mut self);
    /// The next finished request.
    fn complete(&mut self) -> Option<Completion>;
    /// Free descriptors.
    fn free_descriptors(&self) -> u16;
}

impl<T: virtio_blk::BlkTransport, M: virtio_blk::QueueMemory> Disk for VirtioBlk<T, M> {
    fn geometry(&self) -> Geometry {
        VirtioBlk::geometry(self)
    }
    fn submit(
        &mut self,
        tag: u32,
        op: Op,
        sector: u64,
        segments: &[Segment],
    ) -> Result<(), RequestError> {
        VirtioBlk::submit(self, tag, op, sector, segments)
    }
    fn notify(&mut self) {
        VirtioBlk::notify(self)
    }
    fn complete(&mut self) -> Option<Completion> {
        VirtioBlk::complete(self)
    }
    fn free_descriptors(&self) -> u16 {
        VirtioBlk::free_descriptors(self)
    }
}

/// The component's arguments: `device` (default `disk0`) and `window` (see [`window`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args<'a> {
    /// The disk's device name in the description.
    pub device: proto::Name,
    /// The `window` argument, checked.
    pub windows: Option<&'a str>,
}

/// Reads the arguments through `arg`; the reason when one is malformed.
pub fn args<'a>(arg: impl Fn(&str) -> Option<&'a str>) -> Result<Args<'a>, alloc::string::String> {
    let device = arg("device").unwrap_or("disk0");
    let device =
        proto::Name::new(device).map_err(|e| alloc::format!("device {device:?}: {e:?}"))?;
    let windows = arg("window");
    window(windows, "").map_err(|e| alloc::format!("window {e:?}: not REGION:FIRST+COUNT"))?;
    Ok(Args { device, windows })
}

/// The window the `window` argument gives the clients of `region`: the argument is a
/// comma-separated list of `REGION:FIRST+COUNT` (sectors), e.g.
/// `fs-blk:2048+129024,log-blk:131072+8192`. `Ok(None)` when it names no window for
/// `region` (the whole disk); `Err(entry)` for an entry that does not parse, so a typo in the
/// description is reported, not silently widened to the whole disk.
pub fn window<'a>(argument: Option<&'a str>, region: &str) -> Result<Option<(u64, u64)>, &'a str> {
    let Some(argument) = argument else {
        return Ok(None);
    };
    for entry in argument.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.split_once(':').and_then(|(name, span)| {
            let (first, count) = span.split_once('+')?;
            Some((
                name,
                first.trim().parse::<u64>().ok()?,
                count.trim().parse::<u64>().ok()?,
            ))
        });
        match parsed {
            Some((name, first, count)) if count > 0 => {
                if name.trim() == region {
                    return Ok(Some((first, count)));
                }
            }
            _ => return Err(entry),
        }
    }
    Ok(None)
}

/// Why an attachment was refused (maps onto `proto::blk`'s errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachError {
    /// The region's header does not hold the nonce the caller named.
    NotFound,
    /// Every client slot is taken.
    Full,
    /// The region is too small, a frame address is missing or unaligned, or the window
    /// lies outside the disk.
    BadRegion,
}

impl From<AttachError> for proto::blk::Error {
    fn from(e: AttachError) -> Self {
        match e {
            AttachError::NotFound => proto::blk::Error::NotFound,
            AttachError::Full => proto::blk::Error::Full,
            AttachError::BadRegion => proto::blk::Error::BadRegion,
        }
    }
}

/// The component's start-up line: the device, its size and how it interrupts.
pub struct ReadyLine<'a> {
    /// The device's name in the description.
    pub device: &'a str,
    /// Its PCI bus, device and function.
    pub pci: (u8, u8, u8),
    /// What the driver read from it.
    pub geometry: Geometry,
    /// The virtqueue's entries.
    pub queue: u16,
    /// How its interrupt arrives.
    pub irq: proto::devices::IrqMode,
    /// The MSI-X vector its queue uses, if any.
    pub msix: Option<u16>,
    /// The mapped BAR: index and physical address.
    pub bar: (u8, u64),
}

impl core::fmt::Display for ReadyLine<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let g = &self.geometry;
        write!(
            f,
            "blk: {} virtio-blk at {:02x}:{:02x}.{}, {} sectors ({} MiB), queue {}, {} segments, \
             irq {:?} (msix vector {:?}), flush {}, BAR{} at {:#x}: ready",
            self.device,
            self.pci.0,
            self.pci.1,
            self.pci.2,
            g.sectors,
            g.sectors / 2048,
            self.queue,
            g.max_segments,
            self.irq,
            self.msix,
            g.flush,
            self.bar.0,
            self.bar.1
        )
    }
}

/// What the server has refused and survived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests served.
    pub served: u64,
    /// Requests refused (a response with the reason went back).
    pub refused: u64,
    /// Clients cut off because they broke a ring.
    pub corrupt: u64,
    /// Completions dropped because their attachment had been replaced or cut off.
    pub stale: u64,
    /// Completions the device reported for no request of ours.
    pub unknown: u64,
}

/// One client's attachment.
pub struct Attachment<W> {
    rings: ServerRings,
    limits: Limits,
    /// The window's first sector on the disk.
    start: u64,
    /// Physical address of each page of the region.
    frames: Vec<u64>,
    /// The key the caller attached with (its region), to recognise a re-attachment.
    key: u64,
    generation: u32,
    in_flight: u32,
    backlog: VecDeque<Response>,
    wake: W,
    /// Responses were pushed since the last publish.
    dirty: bool,
}

/// What [`Server::take_one`] did.
enum Taken {
    Nothing,
    Refused,
    Started,
}

#[derive(Clone, Copy)]
struct Flight {
    client: usize,
    generation: u32,
    id: u32,
    count: u32,
}

/// The server: a disk and its clients.
pub struct Server<D: Disk, W: Copy> {
    disk: D,
    clients: Vec<Option<Attachment<W>>>,
    flights: Vec<Option<Flight>>,
    generation: u32,
    counters: Counters,
    /// The client that goes first in the next round of taking requests.
    turn: usize,
}

fn refusal(e: RequestError) -> Status {
    match e {
        RequestError::OutOfRange => Status::OutOfRange,
        RequestError::Misaligned => Status::Misaligned,
        RequestError::Malformed | RequestError::Full => Status::Malformed,
        RequestError::ReadOnly => Status::ReadOnly,
        RequestError::Unsupported => Status::Unsupported,
    }
}

impl<D: Disk, W: Copy> Server<D, W> {
    /// A server of `disk`, with no clients.
    pub fn new(disk: D) -> Self {
        Server {
            disk,
            clients: (0..MAX_CLIENTS).map(|_| None).collect(),
            flights: Vec::new(),
            generation: 0,
            counters: Counters::default(),
            turn: 0,
        }
    }

    /// The disk.
    pub fn disk(&mut self) -> &mut D {
        &mut self.disk
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Clients attached.
    pub fn clients(&self) -> usize {
        self.clients.iter().flatten().count()
    }

    /// What client `client` may address, if attached: its window, the request limit,
    /// whether the disk refuses writes.
    pub fn client_geometry(&self, client: usize) -> Option<(u64, u32, bool)> {
        let a = self.clients.get(client)?.as_ref()?;
        Some((
            a.limits.sectors,
            a.limits.max_sectors,
            self.disk.geometry().read_only,
        ))
    }

    /// Attaches a client known by `key` (its region) over `region` (its words, mapped here,
    /// whose header must hold `nonce`), whose pages are at physical `frames`, to sectors `window` (first, count; `None`: the
    /// whole disk); `wake` is what [`Server::poll`] hands back when the client must be
    /// signalled. A client attaching again with the same `key` replaces its old attachment.
    /// Returns the client's index.
    ///
    /// Errors: `NotFound` when the header is not `blkring`'s or holds another nonce;
    /// `BadRegion` when the region is too small for `blkring`'s layout, `frames`
    /// does not cover it or a frame is not page aligned, or the window leaves the disk;
    /// `Full` when every slot is taken.
    pub fn attach(
        &mut self,
        key: u64,
        nonce: u64,
        region: &'static [core::sync::atomic::AtomicU32],
        frames: Vec<u64>,
        window: Option<(u64, u64)>,
        wake: W,
    ) -> Result<usize, AttachError> {
        if blkring::read_nonce(region) != Some(nonce) {
            return Err(AttachError::NotFound);
        }
        let (rings, layout) = ServerRings::new(region).ok_or(AttachError::BadRegion)?;
        let bytes = region.len() as u64 * 4;
        if (frames.len() as u64) * PAGE < bytes || frames.iter().any(|f| f % PAGE != 0) {
            return Err(AttachError::BadRegion);
        }
        let disk = self.disk.geometry().sectors;
        let (start, sectors) = window.unwrap_or((0, disk));
        match start.checked_add(sectors) {
            Some(end) if end <= disk => {}
            _ => return Err(AttachError::BadRegion),
        }
        let index = match self
            .clients
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.key == key))
        {
            Some(i) => i,
            None => self
                .clients
                .iter()
                .position(Option::is_none)
                .ok_or(AttachError::Full)?,
        };
        self.generation = self.generation.wrapping_add(1);
        let limits = Limits {
            sectors,
            // What the driver's segments, our limit and the data area all allow.
            max_sectors: MAX_SECTORS
                .min(
                    (self.disk.geometry().max_segments.saturating_sub(1)
                        * (PAGE as usize / SECTOR as usize)) as u32,
                )
                .min(layout.data_bytes / SECTOR),
            data: shmring::Region::new(layout.data_bytes, SECTOR).ok_or(AttachError::BadRegion)?,
        };
        self.clients[index] = Some(Attachment {
            rings,
            limits,
            start,
            frames,
            key,
            generation: self.generation,
            in_flight: 0,
            backlog: VecDeque::new(),
            wake,
            dirty: false,
        });
        Ok(index)
    }

    /// Detaches client `client` (its requests in flight finish unanswered).
    pub fn detach(&mut self, client: usize) {
        if let Some(slot) = self.clients.get_mut(client) {
            *slot = None;
        }
    }

    /// The client attached with `key`, if any.
    pub fn client_by_key(&self, key: u64) -> Option<usize> {
        self.clients
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.key == key))
    }

    /// Takes completions from the disk and requests from every client, hands requests to
    /// the disk, and calls `signal` with the wake handle of each client that has new
    /// responses and waits for them. Call it after any interrupt or client signal.
    pub fn poll(&mut self, mut signal: impl FnMut(W)) {
        loop {
            let completed = self.complete();
            let taken = self.take_requests();
            if !completed && !taken {
                break;
            }
        }
        for client in self.clients.iter_mut().flatten() {
            while let Some(r) = client.backlog.front().copied() {
                match client.rings.push(r) {
                    Ok(()) => {
                        client.backlog.pop_front();
                        client.dirty = true;
                    }
                    Err(_) => break,
                }
            }
            if client.dirty {
                client.dirty = false;
                if client.rings.publish() {
                    signal(client.wake);
                }
            }
        }
    }

    /// Announces to every client that the server is about to block, so their next
    /// requests signal it; false when a client's requests arrived meanwhile and it could
    /// take them now (call [`Server::poll`] again instead of blocking). A client held back
    /// by flow control or a disk short of descriptors does not count: a completion wakes
    /// the server.
    pub fn prepare_wait(&mut self) -> bool {
        let disk_room = usize::from(self.disk.free_descriptors()) >= MAX_REQUEST_SEGMENTS + 2;
        let mut idle = true;
        for client in self.clients.iter_mut().flatten() {
            let room = (client.in_flight as usize + client.backlog.len())
                < blkring::RING_CAPACITY as usize;
            if !client.rings.prepare_wait() && room && disk_room {
                idle = false;
            }
        }
        idle
    }

    /// Drains the disk's completions into the clients' backlogs; whether there were any.
    fn complete(&mut self) -> bool {
        let mut any = false;
        while let Some(done) = self.disk.complete() {
            any = true;
            let Some(flight) = self
                .flights
                .get_mut(done.id as usize)
                .and_then(Option::take)
            else {
                self.counters.unknown += 1;
                continue;
            };
            let client = self.clients.get_mut(flight.client).and_then(Option::as_mut);
            let Some(client) = client.filter(|c| c.generation == flight.generation) else {
                self.counters.stale += 1;
                continue;
            };
            client.in_flight -= 1;
            let response = match done.status {
                virtio_blk::Status::Ok => {
                    self.counters.served += 1;
                    Response {
                        status: Status::Ok,
                        count: flight.count,
                        id: flight.id,
                    }
                }
                virtio_blk::Status::Unsupported => Response {
                    status: Status::Unsupported,
                    count: 0,
                    id: flight.id,
                },
                _ => Response {
                    status: Status::IoError,
                    count: 0,
                    id: flight.id,
                },
            };
            client.backlog.push_back(response);
        }
        any
    }

    /// Takes requests from every client while it has room and the disk has descriptors;
    /// whether any was taken.
    fn take_requests(&mut self) -> bool {
        let mut any = false;
        let mut notify = false;
        // Round robin, one request per client per round, starting after the client that
        // went first last time: a busy client cannot keep the others off the disk.
        let count = self.clients.len();
        self.turn = (self.turn + 1) % count;
        loop {
            let mut progress = false;
            for step in 0..count {
                let index = (self.turn + step) % count;
                if usize::from(self.disk.free_descriptors()) < MAX_REQUEST_SEGMENTS + 2 {
                    break;
                }
                match self.take_one(index) {
                    Taken::Nothing => {}
                    Taken::Refused => progress = true,
                    Taken::Started => {
                        progress = true;
                        notify = true;
                    }
                }
            }
            any |= progress;
            if !progress {
                break;
            }
        }
        if notify {
            self.disk.notify();
        }
        any
    }

    /// Takes one request from client `index` if it has one and room for its response.
    fn take_one(&mut self, index: usize) -> Taken {
        let Some(client) = self.clients[index].as_mut() else {
            return Taken::Nothing;
        };
        if client.in_flight as usize + client.backlog.len() >= blkring::RING_CAPACITY as usize {
            return Taken::Nothing;
        }
        let request = match client.rings.pop() {
            Ok(Some(r)) => r,
            Ok(None) => return Taken::Nothing,
            Err(shmring::Corrupt) => {
                self.counters.corrupt += 1;
                self.clients[index] = None;
                return Taken::Nothing;
            }
        };
        match self.start(index, request) {
            Ok(()) => Taken::Started,
            Err(status) => {
                self.counters.refused += 1;
                if let Some(client) = self.clients[index].as_mut() {
                    client.backlog.push_back(Response {
                        status,
                        count: 0,
                        id: request.id,
                    });
                }
                Taken::Refused
            }
        }
    }

    /// Checks one request of client `index` and hands it to the disk.
    fn start(&mut self, index: usize, request: Request) -> Result<(), Status> {
        let client = self.clients[index].as_mut().ok_or(Status::Malformed)?;
        let checked: Checked = client.limits.check(&request)?;
        let mut segments = [Segment { paddr: 0, len: 0 }; MAX_REQUEST_SEGMENTS];
        let mut used = 0;
        let kind = match checked.op {
            op::READ => Op::Read,
            op::WRITE => Op::Write,
            _ => Op::Flush,
        };
        if kind != Op::Flush {
            // The span lies inside the data area (checked); split it at page boundaries.
            let mut at = DATA_OFFSET as u64 + u64::from(checked.offset);
            let mut left = u64::from(checked.count) * u64::from(SECTOR);
            while left > 0 {
                let page = (at / PAGE) as usize;
                let within = at % PAGE;
                let len = left.min(PAGE - within);
                let frame = *client.frames.get(page).ok_or(Status::Malformed)?;
                let slot = segments.get_mut(used).ok_or(Status::Malformed)?;
                *slot = Segment {
                    paddr: frame + within,
                    len: len as u32,
                };
                used += 1;
                at += len;
                left -= len;
            }
        }
        let sector = if kind == Op::Flush {
            0
        } else {
            client.start + checked.sector
        };
        let tag = match self.flights.iter().position(Option::is_none) {
            Some(t) => t,
            None => {
                self.flights.push(None);
                self.flights.len() - 1
            }
        };
        self.disk
            .submit(tag as u32, kind, sector, &segments[..used])
            .map_err(refusal)?;
        self.flights[tag] = Some(Flight {
            client: index,
            generation: client.generation,
            id: checked.id,
            count: checked.count,
        });
        client.in_flight += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
