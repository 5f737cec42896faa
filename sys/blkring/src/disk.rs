//! A client's blocking disk over its rings: [`Disk::read`], [`Disk::write`] and
//! [`Disk::flush`] split a transfer into requests of at most the server's limit, keep as
//! many in flight as the data area holds, and wait for every response. It is what a file
//! service puts under its format code (for `libos-fat`, a `BlockDevice` in a few lines).
//!
//! The server is not trusted either: a response with an id this side did not send, or a ring
//! the server broke, ends the transfer with an error ([`DiskError::Server`]) instead of a
//! panic or a wrong buffer.

use crate::{op, ClientRings, Request, Status, SECTOR};

/// How the client signals the server and waits for it (on seL4: the doorbell notification
/// and the client's own).
pub trait Wait {
    /// Signals the server's doorbell.
    fn signal(&mut self);
    /// Blocks until the server signals (or returns at once if it already did); false when
    /// the server is gone (on Tessera: `proc` says it restarted), which ends the transfer
    /// with [`DiskError::Gone`].
    fn wait(&mut self) -> bool;
}

/// Why a transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// The server refused a request or the device failed it.
    Refused(Status),
    /// The buffer is not a whole number of sectors, or the range leaves the window.
    BadRange,
    /// The server answered with an id this side did not send, a sector count that does not
    /// match, or broke its ring.
    Server,
    /// The server went away while requests were in flight (they may or may not have been
    /// done); attach again.
    Gone,
}

/// A blocking disk over a client's rings.
pub struct Disk<W: Wait> {
    rings: ClientRings,
    wait: W,
    sectors: u64,
    max_sectors: u32,
    data_bytes: u32,
    next_id: u32,
}

impl<W: Wait> Disk<W> {
    /// A disk over `rings` (attached), whose data area holds `data_bytes`, for a window of
    /// `sectors` sectors and requests of at most `max_sectors` (the server's `geometry`).
    pub fn new(
        rings: ClientRings,
        data_bytes: u32,
        sectors: u64,
        max_sectors: u32,
        wait: W,
    ) -> Self {
        Disk {
            rings,
            wait,
            sectors,
            max_sectors: max_sectors.max(1),
            data_bytes,
            next_id: 0,
        }
    }

    /// Sectors in the window.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// The signalling and waiting object.
    pub fn waiter(&mut self) -> &mut W {
        &mut self.wait
    }

    /// Reads sectors from `sector` into `out` (a whole number of sectors).
    pub fn read(&mut self, sector: u64, out: &mut [u8]) -> Result<(), DiskError> {
        let len = out.len();
        let copy = |rings: &ClientRings, at, range: core::ops::Range<usize>| {
            rings.read_data(at, &mut out[range])
        };
        self.transfer(op::READ, sector, len, copy, false)
    }

    /// Writes `data` (a whole number of sectors) to sectors from `sector`.
    pub fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), DiskError> {
        let copy = |rings: &ClientRings, at, range: core::ops::Range<usize>| {
            rings.write_data(at, &data[range])
        };
        self.transfer(op::WRITE, sector, data.len(), copy, true)
    }

    /// Makes every completed write durable.
    pub fn flush(&mut self) -> Result<(), DiskError> {
        let id = self.id();
        self.rings
            .push(Request {
                op: op::FLUSH,
                sector: 0,
                count: 0,
                offset: 0,
                id,
            })
            .map_err(|_| DiskError::Server)?;
        self.collect(&[(id, 0)])
    }

    fn id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// Moves `len` bytes from `sector` in batches: each batch fills the data area (or the
    /// ring) with requests of at most `max_sectors`, `copy` moves a chunk's bytes between the
    /// caller's buffer and the area (before the batch for writes, after it for reads).
    fn transfer(
        &mut self,
        kind: u32,
        sector: u64,
        len: usize,
        mut copy: impl FnMut(&ClientRings, u32, core::ops::Range<usize>) -> bool,
        before: bool,
    ) -> Result<(), DiskError> {
        let unit = SECTOR as usize;
        if !len.is_multiple_of(unit) {
            return Err(DiskError::BadRange);
        }
        let count = (len / unit) as u64;
        match sector.checked_add(count) {
            Some(end) if end <= self.sectors => {}
            _ => return Err(DiskError::BadRange),
        }
        let chunk_bytes =
            (self.max_sectors as usize * unit).min(self.data_bytes as usize / unit * unit);
        if chunk_bytes == 0 {
            return Err(DiskError::BadRange);
        }
        let per_batch =
            (self.data_bytes as usize / chunk_bytes).clamp(1, crate::RING_CAPACITY as usize);
        let mut done = 0usize;
        while done < len {
            let mut batch: [(u32, u32); crate::RING_CAPACITY as usize] =
                [(0, 0); crate::RING_CAPACITY as usize];
            let mut chunks = [(0usize, 0usize, 0u32); crate::RING_CAPACITY as usize];
            let mut n = 0;
            while n < per_batch && done < len {
                let size = chunk_bytes.min(len - done);
                let at = (n * chunk_bytes) as u32;
                if before && !copy(&self.rings, at, done..done + size) {
                    return Err(DiskError::BadRange);
                }
                let id = self.id();
                let sectors = (size / unit) as u32;
                let first = sector + (done / unit) as u64;
                self.rings
                    .push(Request {
                        op: kind,
                        sector: first,
                        count: sectors,
                        offset: at,
                        id,
                    })
                    .map_err(|_| DiskError::Server)?;
                batch[n] = (id, sectors);
                chunks[n] = (done, size, at);
                n += 1;
                done += size;
            }
            self.collect(&batch[..n])?;
            if !before {
                for &(start, size, at) in &chunks[..n] {
                    if !copy(&self.rings, at, start..start + size) {
                        return Err(DiskError::Server);
                    }
                }
            }
        }
        Ok(())
    }

    /// Publishes the pushed requests and waits for a response to each of `expected` (id,
    /// sectors); the first failure is returned once all are in.
    fn collect(&mut self, expected: &[(u32, u32)]) -> Result<(), DiskError> {
        if self.rings.publish() {
            self.wait.signal();
        }
        // One bit per expected response (at most RING_CAPACITY = 64).
        let mut seen = 0u64;
        let mut result = Ok(());
        while (seen.count_ones() as usize) < expected.len() {
            match self.rings.pop() {
                Err(_) => return Err(DiskError::Server),
                Ok(Some(r)) => {
                    let Some(i) = expected.iter().position(|(id, _)| *id == r.id) else {
                        return Err(DiskError::Server);
                    };
                    if seen & (1 << i) != 0 {
                        return Err(DiskError::Server);
                    }
                    seen |= 1 << i;
                    let sectors = expected[i].1;
                    if result.is_ok() {
                        result = match r.status {
                            Status::Ok if r.count == sectors => Ok(()),
                            Status::Ok => Err(DiskError::Server),
                            other => Err(DiskError::Refused(other)),
                        };
                    }
                }
                Ok(None) => {
                    if self.rings.prepare_wait() && !self.wait.wait() {
                        return Err(DiskError::Gone);
                    }
                }
            }
        }
        result
    }
}
