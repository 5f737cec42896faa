//! The storage the file system runs over: whole 512-byte sectors.

use alloc::vec;
use alloc::vec::Vec;

/// Bytes in one sector, the only unit a [`BlockDevice`] moves.
pub const SECTOR_SIZE: usize = 512;

/// One sector's bytes.
pub type Sector = [u8; SECTOR_SIZE];

/// Why a [`BlockDevice`] could not do what it was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// The device reported a failure (or stopped answering).
    Io,
    /// The sector number is at or past the device's end.
    OutOfRange,
    /// The device refuses writes.
    ReadOnly,
    /// The server behind the device (the `blk` component) went away and could not be
    /// reached again; what was in flight may or may not have been done.
    Gone,
}

/// A disk seen as numbered 512-byte sectors: what the file system needs from a driver
/// (virtio-blk in the `fs` service, an in-memory image or an image file in host tests).
pub trait BlockDevice {
    /// The number of sectors on the device.
    fn sector_count(&self) -> u64;
    /// Reads sector `sector` into `buffer`.
    ///
    /// Fails with [`DeviceError::OutOfRange`] past the end, [`DeviceError::Io`] otherwise.
    fn read(&mut self, sector: u64, buffer: &mut Sector) -> Result<(), DeviceError>;
    /// Writes `data` to sector `sector`. The write may sit in a device cache until
    /// [`flush`](Self::flush).
    ///
    /// Fails with [`DeviceError::OutOfRange`], [`DeviceError::ReadOnly`] or
    /// [`DeviceError::Io`].
    fn write(&mut self, sector: u64, data: &Sector) -> Result<(), DeviceError>;
    /// Returns once every write that returned before it is on stable storage.
    fn flush(&mut self) -> Result<(), DeviceError>;
}

/// A device held in memory: a disk image as a byte vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryDevice {
    bytes: Vec<u8>,
}

impl MemoryDevice {
    /// A device of `sectors` zeroed sectors.
    pub fn zeroed(sectors: usize) -> Self {
        MemoryDevice {
            bytes: vec![0; sectors * SECTOR_SIZE],
        }
    }

    /// A device over an image's bytes; a partial last sector is dropped.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Self {
        bytes.truncate(bytes.len() / SECTOR_SIZE * SECTOR_SIZE);
        MemoryDevice { bytes }
    }

    /// The image's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The image's bytes, mutable (to damage an image in tests).
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// The image, giving the device up.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn range(&self, sector: u64) -> Result<core::ops::Range<usize>, DeviceError> {
        let start = usize::try_from(sector)
            .ok()
            .and_then(|s| s.checked_mul(SECTOR_SIZE))
            .ok_or(DeviceError::OutOfRange)?;
        let end = start + SECTOR_SIZE;
        if end > self.bytes.len() {
            return Err(DeviceError::OutOfRange);
        }
        Ok(start..end)
    }
}

impl BlockDevice for MemoryDevice {
    fn sector_count(&self) -> u64 {
        (self.bytes.len() / SECTOR_SIZE) as u64
    }

    fn read(&mut self, sector: u64, buffer: &mut Sector) -> Result<(), DeviceError> {
        let range = self.range(sector)?;
        buffer.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write(&mut self, sector: u64, data: &Sector) -> Result<(), DeviceError> {
        let range = self.range(sector)?;
        self.bytes[range].copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    fn sector_count(&self) -> u64 {
        (**self).sector_count()
    }
    fn read(&mut self, sector: u64, buffer: &mut Sector) -> Result<(), DeviceError> {
        (**self).read(sector, buffer)
    }
    fn write(&mut self, sector: u64, data: &Sector) -> Result<(), DeviceError> {
        (**self).write(sector, data)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        (**self).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_device_round_trips_and_bounds() {
        let mut device = MemoryDevice::zeroed(4);
        assert_eq!(device.sector_count(), 4);
        let data = [0x5a; SECTOR_SIZE];
        device.write(3, &data).unwrap();
        let mut back = [0; SECTOR_SIZE];
        device.read(3, &mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(device.read(4, &mut back), Err(DeviceError::OutOfRange));
        assert_eq!(device.write(u64::MAX, &data), Err(DeviceError::OutOfRange));
        assert_eq!(&device.as_bytes()[3 * SECTOR_SIZE..], &data[..]);
    }
}
