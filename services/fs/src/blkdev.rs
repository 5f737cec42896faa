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

use blkring::disk::{Disk, DiskError, Wait};
use blkring::Status;
use libos_fat::{BlockDevice, DeviceError, Sector};

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
        })
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
        self.with_disk(|disk| disk.read(sector, buffer))
    }

    fn write(&mut self, sector: u64, data: &Sector) -> Result<(), DeviceError> {
        if sector >= self.sectors {
            return Err(DeviceError::OutOfRange);
        }
        self.with_disk(|disk| disk.write(sector, data))
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        self.with_disk(|disk| disk.flush())
    }
}
