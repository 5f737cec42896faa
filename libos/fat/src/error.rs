//! What can go wrong, with the POSIX errno each failure maps to.

use crate::device::DeviceError;
use core::fmt;

/// Why a volume or one of its structures was refused as damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// The boot sector lacks the 0x55 0xAA signature or a jump instruction.
    BootSignature,
    /// Bytes per sector is not 512 (the only size this library reads).
    SectorSize,
    /// Sectors per cluster is not a power of two from 1 to 128.
    ClusterSize,
    /// The reserved sector count is zero or leaves no room for the boot sector.
    ReservedSectors,
    /// The number of FATs is not 1 or 2.
    FatCount,
    /// The root directory entry count does not fit the FAT type or whole sectors.
    RootEntries,
    /// The total sector count is zero, or the fields disagree.
    TotalSectors,
    /// The volume claims more sectors than the device has.
    BeyondDevice,
    /// A FAT is too small for the cluster count, or its size field is zero.
    FatSize,
    /// The layout leaves no data area.
    NoDataArea,
    /// The media descriptor byte is not one FAT allows.
    MediaDescriptor,
    /// The FAT32 root directory cluster is outside the data area.
    RootCluster,
    /// The FAT32 version is not 0.0.
    Version,
    /// The FAT32 FSInfo sector number points outside the reserved area.
    FsInfoSector,
    /// A FAT entry in a chain names a cluster outside the data area, a free or a bad
    /// cluster.
    Chain,
    /// A cluster chain loops or is longer than the volume.
    ChainLoop,
    /// A chain is shorter than its file's size.
    ChainTooShort,
    /// A directory entry names a first cluster outside the data area.
    DirectoryEntry,
    /// A directory is larger than FAT allows (65,536 entries).
    DirectoryTooLarge,
    /// A subdirectory lacks its `.` and `..` entries or they are wrong.
    DotEntries,
}

/// Why the volume's format is readable but not by this library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// FAT12 (fewer than 4,085 clusters): too small to be worth it.
    Fat12,
    /// exFAT, NTFS or another format that shares the boot sector's shape.
    NotFat,
}

/// Why a name or path was refused (before it reaches the disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// An empty name, or an empty path component (`a//b`, a leading or trailing `/`).
    Empty,
    /// `.` or `..`: a path cannot name the current or the parent directory.
    Dot,
    /// A `/` inside a name.
    Slash,
    /// A `\` (FAT's own separator).
    Backslash,
    /// A NUL character.
    Nul,
    /// A control character (below U+0020, or U+007F).
    Control,
    /// One of `"` `*` `:` `<` `>` `?` `|`, which FAT names cannot hold.
    Reserved,
    /// A name ending in a space or a dot (FAT drops them, so two names would collide).
    TrailingDotOrSpace,
    /// A name longer than 255 UTF-16 units, or a path longer than 4,096 bytes.
    TooLong,
}

/// Every failure of a file system operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The block device failed.
    Device(DeviceError),
    /// The volume is damaged; the operation was refused.
    Corrupt(Corruption),
    /// The volume is not a format this library handles.
    Unsupported(Unsupported),
    /// A name or path is not valid.
    Name(NameError),
    /// Nothing has that name.
    NotFound,
    /// Something already has that name.
    Exists,
    /// A path component that must be a directory is a file.
    NotDirectory,
    /// The operation needs a file and found a directory.
    IsDirectory,
    /// The directory still holds entries.
    NotEmpty,
    /// No free cluster (or no room in a FAT16 root directory) is left.
    NoSpace,
    /// The file would grow past FAT's limit of 4 GiB - 1 bytes.
    FileTooLarge,
    /// The root directory cannot be removed or renamed.
    Busy,
    /// The request makes no sense (a directory moved into itself).
    Invalid,
    /// The volume was mounted read-only.
    ReadOnly,
}

/// Linux's errno numbers for the values [`Error::errno`] returns.
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such file or directory.
    pub const ENOENT: i32 = 2;
    /// Input/output error.
    pub const EIO: i32 = 5;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// File exists.
    pub const EEXIST: i32 = 17;
    /// Not a directory.
    pub const ENOTDIR: i32 = 20;
    /// Is a directory.
    pub const EISDIR: i32 = 21;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// File too large.
    pub const EFBIG: i32 = 27;
    /// No space left on device.
    pub const ENOSPC: i32 = 28;
    /// Read-only file system.
    pub const EROFS: i32 = 30;
    /// File name too long.
    pub const ENAMETOOLONG: i32 = 36;
    /// Directory not empty.
    pub const ENOTEMPTY: i32 = 39;
    /// Operation not supported.
    pub const EOPNOTSUPP: i32 = 95;
    /// Structure needs cleaning (a damaged file system).
    pub const EUCLEAN: i32 = 117;
}

impl Error {
    /// The POSIX errno (Linux numbering) that reports this error to a program.
    pub fn errno(&self) -> i32 {
        use errno::*;
        match self {
            Error::Device(DeviceError::ReadOnly) => EROFS,
            Error::Device(_) => EIO,
            Error::Corrupt(_) => EUCLEAN,
            Error::Unsupported(_) => EOPNOTSUPP,
            Error::Name(NameError::TooLong) => ENAMETOOLONG,
            Error::Name(_) => EINVAL,
            Error::NotFound => ENOENT,
            Error::Exists => EEXIST,
            Error::NotDirectory => ENOTDIR,
            Error::IsDirectory => EISDIR,
            Error::NotEmpty => ENOTEMPTY,
            Error::NoSpace => ENOSPC,
            Error::FileTooLarge => EFBIG,
            Error::Busy => EBUSY,
            Error::Invalid => EINVAL,
            Error::ReadOnly => EROFS,
        }
    }
}

impl From<DeviceError> for Error {
    fn from(e: DeviceError) -> Self {
        Error::Device(e)
    }
}

impl From<Corruption> for Error {
    fn from(c: Corruption) -> Self {
        Error::Corrupt(c)
    }
}

impl From<NameError> for Error {
    fn from(n: NameError) -> Self {
        Error::Name(n)
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Corruption::BootSignature => "boot sector signature missing",
            Corruption::SectorSize => "bytes per sector is not 512",
            Corruption::ClusterSize => "sectors per cluster is not a power of two up to 128",
            Corruption::ReservedSectors => "reserved sector count is invalid",
            Corruption::FatCount => "number of FATs is not 1 or 2",
            Corruption::RootEntries => "root directory entry count is invalid",
            Corruption::TotalSectors => "total sector count is invalid",
            Corruption::BeyondDevice => "volume is larger than the device",
            Corruption::FatSize => "FAT size is invalid for the cluster count",
            Corruption::NoDataArea => "layout leaves no data area",
            Corruption::MediaDescriptor => "media descriptor is invalid",
            Corruption::RootCluster => "root directory cluster is outside the data area",
            Corruption::Version => "FAT32 version is not 0.0",
            Corruption::FsInfoSector => "FSInfo sector is outside the reserved area",
            Corruption::Chain => "a cluster chain names an invalid cluster",
            Corruption::ChainLoop => "a cluster chain loops",
            Corruption::ChainTooShort => "a cluster chain is shorter than its file",
            Corruption::DirectoryEntry => "a directory entry names an invalid cluster",
            Corruption::DirectoryTooLarge => "a directory is larger than 65536 entries",
            Corruption::DotEntries => "a directory's . and .. entries are wrong",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Device(e) => write!(f, "device error: {e:?}"),
            Error::Corrupt(c) => write!(f, "damaged volume: {c}"),
            Error::Unsupported(Unsupported::Fat12) => f.write_str("FAT12 is not supported"),
            Error::Unsupported(Unsupported::NotFat) => f.write_str("not a FAT volume"),
            Error::Name(n) => write!(f, "invalid name: {n:?}"),
            Error::NotFound => f.write_str("no such file or directory"),
            Error::Exists => f.write_str("already exists"),
            Error::NotDirectory => f.write_str("not a directory"),
            Error::IsDirectory => f.write_str("is a directory"),
            Error::NotEmpty => f.write_str("directory not empty"),
            Error::NoSpace => f.write_str("no space left on the volume"),
            Error::FileTooLarge => f.write_str("file would exceed 4 GiB - 1"),
            Error::Busy => f.write_str("the root directory cannot be changed that way"),
            Error::Invalid => f.write_str("invalid request"),
            Error::ReadOnly => f.write_str("read-only volume"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_values_are_linux_numbers() {
        assert_eq!(Error::NotFound.errno(), 2);
        assert_eq!(Error::NoSpace.errno(), 28);
        assert_eq!(Error::Name(NameError::TooLong).errno(), 36);
        assert_eq!(Error::Name(NameError::Dot).errno(), 22);
        assert_eq!(Error::NotEmpty.errno(), 39);
        assert_eq!(Error::Device(DeviceError::Io).errno(), 5);
        assert_eq!(Error::Device(DeviceError::ReadOnly).errno(), 30);
        assert_eq!(Error::Device(DeviceError::Gone).errno(), 5);
    }
}
