//! The volume's block device: the `blk` component through `blkring`'s blocking client
//! ([`blkring::disk::Disk`]), seen as a `libos_fat::BlockDevice`.
//!
//! `blk` may be restarted under the service (`kill blk`, a fault). Its next instance knows
//! nothing of the old attachment, so a transfer that was in flight ends with
//! [`DiskError::Gone`]; [`BlkDevice`] then attaches again through its [`Attach`] (on seL4:
//! look `blk` up, write a fresh header, `attach`, `geometry`) and repeats the transfer. A
//! sector read or write is idempotent, so repeating one whose answer was lost is safe; a
//! flush is repeated too, which covers every write the old instance answered. Only if the
//! new attachment fails, or the window it reports differs from the one the volume was
//! mounted on, does the file system see an error ([`DeviceError::Gone`], or
//! [`DeviceError::Io`] for a changed window: the service must not write a volume laid out
//! for another size).
//!
//! The file system asks for one sector at a time; one round trip to `blk` per sector is
//! what made files 40-50 times slower than the disk. So reads that follow one another are
//! read ahead ([`RUN_SECTORS`] at a time, into a window kept coherent with every write),
//! and writes to consecutive sectors are gathered and sent as one transfer: when the next
//! write is not the next sector, when the run is full, before a flush, and before a read
//! of a sector the run holds is answered from it. Writes are sent in the order they were
//! made, and a flush (the file system's ordering barrier) sends everything first.

use alloc::vec::Vec;
use blkring::disk::{Disk, DiskError, Wait};
use blkring::Status;
use libos_fat::{BlockDevice, DeviceError, Sector};

/// Sectors read ahead, and the most sectors written in one transfer (64 KiB).
pub const RUN_SECTORS: usize = 128;

/// Consecutive sectors and their bytes.
#[derive(Default)]
struct Run {
    start: u64,
    len: usize,
    bytes: Vec<u8>,
}

impl Run {
    /// The bytes of `sector`, if the run holds it.
    fn get(&mut self, sector: u64) -> Option<&mut [u8]> {
        let i = usize::try_from(sector.checked_sub(self.start)?).ok()?;
        (i < self.len).then(|| &mut self.bytes[i * 512..(i + 1) * 512])
    }
}

/// How many times one transfer is repeated after its server went away before the file
/// system is told ([`DeviceError::Gone`]).
pub const MAX_REATTACH: u32 = 3;

/// How to reach `blk` (again): the seL4 component does it over IPC and its shared region,
/// host tests over an in-process server.
pub trait Attach {
    /// How the disk signals and waits.
    type Wait: Wait;
    /// Attaches to the block service and returns a blocking disk over the fresh
    /// attachment, or a one-line reason.
    fn attach(&mut self) -> Result<Disk<Self::Wait>, &'static str>;
}

/// The file system's error for a failed transfer.
pub fn device_error(error: DiskError) -> DeviceError {
    match error {
        DiskError::Refused(Status::OutOfRange) | DiskError::BadRange => DeviceError::OutOfRange,
        DiskError::Refused(Status::ReadOnly) => DeviceError::ReadOnly,
        DiskError::Gone => DeviceError::Gone,
        DiskError::Refused(_) | DiskError::Server => DeviceError::Io,
    }
}

/// A `BlockDevice` over `blk`, attaching again when `blk` restarts.
pub struct BlkDevice<A: Attach> {
    attach: A,
    disk: Disk<A::Wait>,
    sectors: u64,
    reattached: u64,
    /// Sectors read ahead (kept equal to what the disk will hold).
    ahead: Run,
    /// Writes gathered and not yet sent.
    pending: Run,
    /// The last sector the file system read (a read of the next one reads ahead).
    last_read: Option<u64>,
    transfers: u64,
}

impl<A: Attach> BlkDevice<A> {
    /// Attaches once through `attach`; the window's size is fixed from here on.
    pub fn new(mut attach: A) -> Result<Self, &'static str> {
        let disk = attach.attach()?;
        Ok(BlkDevice {
            sectors: disk.sectors(),
            attach,
            disk,
            reattached: 0,
            ahead: Run::default(),
            pending: Run {
                bytes: alloc::vec![0; RUN_SECTORS * 512],
                ..Run::default()
            },
            last_read: None,
            transfers: 0,
        })
    }

    /// Transfers (reads and writes of one or more sectors, and flushes) asked of the disk.
    pub fn transfers(&self) -> u64 {
        self.transfers
    }

    /// Sends the gathered writes, if any.
    fn send_pending(&mut self) -> Result<(), DeviceError> {
        if self.pending.len == 0 {
            return Ok(());
        }
        let (start, len) = (self.pending.start, self.pending.len);
        let bytes = core::mem::take(&mut self.pending.bytes);
        let sent = self.with_disk(|disk| disk.write(start, &bytes[..len * 512]));
        self.pending.bytes = bytes;
        self.pending.len = 0;
        sent
    }

    /// Times the device attached again after `blk` went away.
    pub fn reattached(&self) -> u64 {
        self.reattached
    }

    /// The attachment (its `Wait` included).
    pub fn attacher(&mut self) -> &mut A {
        &mut self.attach
    }

    /// Runs `transfer` on the disk; after [`DiskError::Gone`] attaches again and repeats
    /// it, at most [`MAX_REATTACH`] times.
    fn with_disk(
        &mut self,
        mut transfer: impl FnMut(&mut Disk<A::Wait>) -> Result<(), DiskError>,
    ) -> Result<(), DeviceError> {
        let mut attempts = 0;
        self.transfers += 1;
        loop {
            match transfer(&mut self.disk) {
                Ok(()) => return Ok(()),
                Err(DiskError::Gone) if attempts < MAX_REATTACH => {
                    attempts += 1;
                    let disk = self.attach.attach().map_err(|_| DeviceError::Gone)?;
                    if disk.sectors() != self.sectors {
                        return Err(DeviceError::Io);
                    }
                    self.disk = disk;
                    self.reattached += 1;
                }
                Err(e) => return Err(device_error(e)),
            }
        }
    }
}

impl<A: Attach> BlockDevice for BlkDevice<A> {
    fn sector_count(&self) -> u64 {
        self.sectors
    }

    fn read(&mut self, sector: u64, buffer: &mut Sector) -> Result<(), DeviceError> {
        if sector >= self.sectors {
            return Err(DeviceError::OutOfRange);
        }
        let sequential = self.last_read.is_some_and(|l| l + 1 == sector);
        self.last_read = Some(sector);
        if let Some(bytes) = self.pending.get(sector) {
            buffer.copy_from_slice(bytes);
            return Ok(());
        }
        if let Some(bytes) = self.ahead.get(sector) {
            buffer.copy_from_slice(bytes);
            return Ok(());
        }
        if !sequential {
            return self.with_disk(|disk| disk.read(sector, buffer));
        }
        // The pending writes hold the newest bytes of their sectors: send them first so the
        // window read ahead holds them too.
        self.send_pending()?;
        let len = RUN_SECTORS.min(usize::try_from(self.sectors - sector).unwrap_or(RUN_SECTORS));
        let mut bytes = core::mem::take(&mut self.ahead.bytes);
        bytes.resize(RUN_SECTORS * 512, 0);
        self.ahead.len = 0;
        let read = self.with_disk(|disk| disk.read(sector, &mut bytes[..len * 512]));
        self.ahead = Run {
            start: sector,
            len: if read.is_ok() { len } else { 0 },
            bytes,
        };
        read?;
        buffer.copy_from_slice(&self.ahead.bytes[..512]);
        Ok(())
    }

    fn write(&mut self, sector: u64, data: &Sector) -> Result<(), DeviceError> {
        if sector >= self.sectors {
            return Err(DeviceError::OutOfRange);
        }
        if let Some(bytes) = self.ahead.get(sector) {
            bytes.copy_from_slice(data);
        }
        let next = self.pending.start + self.pending.len as u64;
        if self.pending.len > 0 && (sector != next || self.pending.len == RUN_SECTORS) {
            self.send_pending()?;
        }
        if self.pending.len == 0 {
            self.pending.start = sector;
        }
        let i = self.pending.len;
        self.pending.bytes[i * 512..(i + 1) * 512].copy_from_slice(data);
        self.pending.len += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        self.send_pending()?;
        self.with_disk(|disk| disk.flush())
    }
}

impl<A: Attach> BlkDevice<A> {
    /// The blocking disk itself (for [`raw_sequential`]).
    pub fn disk(&mut self) -> &mut Disk<A::Wait> {
        &mut self.disk
    }
}

/// Sequential throughput of the raw disk under the file system (`cargo xtask bench files`):
/// writes `total` bytes from sector `first` in requests of `request` bytes (whole sectors)
/// and flushes, then reads them back in requests of the same size and checks every byte.
/// Returns the (write + flush, read) times as `now` counts them.
pub fn raw_sequential<W: Wait>(
    disk: &mut Disk<W>,
    first: u64,
    total: usize,
    request: usize,
    now: &mut impl FnMut() -> u64,
) -> Result<(u64, u64), DiskError> {
    let sector = blkring::SECTOR as usize;
    if request == 0 || !request.is_multiple_of(sector) || !total.is_multiple_of(sector) {
        return Err(DiskError::BadRange);
    }
    let byte = |at: usize| (at % 253) as u8 ^ (at / 65536) as u8;
    let mut buffer = alloc::vec![0u8; request];
    let start = now();
    let mut done = 0;
    while done < total {
        let n = request.min(total - done);
        for (i, b) in buffer[..n].iter_mut().enumerate() {
            *b = byte(done + i);
        }
        disk.write(first + (done / sector) as u64, &buffer[..n])?;
        done += n;
    }
    disk.flush()?;
    let written = now() - start;
    let start = now();
    let mut done = 0;
    while done < total {
        let n = request.min(total - done);
        disk.read(first + (done / sector) as u64, &mut buffer[..n])?;
        if buffer[..n]
            .iter()
            .enumerate()
            .any(|(i, &b)| b != byte(done + i))
        {
            return Err(DiskError::Server);
        }
        done += n;
    }
    Ok((written, now() - start))
}
