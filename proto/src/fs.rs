//! The file service's interface: control by IPC, data through a region the system
//! description shares between the client and `fs`.
//!
//! A client first writes a non-zero nonce into its region's header and calls `attach` with
//! the region's name and that nonce: the region is the credential (only its members can map
//! it), and the region decides the subtree the client is confined to (the server's
//! configuration). Then every path, every byte read and every byte written travels in the
//! region's data area (after the [`HEADER_BYTES`]-byte header), named by an [`Extent`]
//! (offset from the data area's start, length); the server checks each extent against the
//! data area's size (shmring's `Region::check`) and copies out of the region once before it
//! parses anything.
//!
//! Handles name open files. They belong to the attachment that opened them: a handle from
//! another client, one closed, one that never existed all get `NotFound`, and one from an
//! earlier instance of the server `ServerRestarted`.
//!
//! Why IPC and not command rings: every file operation of the library OS's API is
//! synchronous (a POSIX call waits for its answer), metadata operations dominate small-file
//! work, and one seL4 call is one round trip with no second thread, notification or batch
//! to manage; bulk data still moves through shared memory, not through the kernel. A ring
//! of asynchronous reads and writes can be added beside this for a client that queues many.

use crate::Name;
use core::sync::atomic::AtomicU32;

/// Bytes at the start of a region before its data area; the first 8 hold the client's nonce
/// (little-endian), the rest are reserved.
pub const HEADER_BYTES: usize = 64;

/// Bits of `open`'s `flags` (the library OS's `OpenFlags` uses the same values).
pub mod flags {
    /// Open for reading.
    pub const READ: u32 = 1;
    /// Open for writing.
    pub const WRITE: u32 = 2;
    /// Create the file if it does not exist (needs `WRITE`).
    pub const CREATE: u32 = 4;
    /// With `CREATE`: fail with `Exists` if it exists.
    pub const EXCLUSIVE: u32 = 8;
    /// Cut the file to length 0 on open (needs `WRITE`).
    pub const TRUNCATE: u32 = 16;
    /// Every write goes to the end of the file (needs `WRITE`).
    pub const APPEND: u32 = 32;
    /// Every defined bit.
    pub const ALL: u32 = 63;
}

crate::record! {
    /// Bytes of the caller's data area: `offset..offset + length` from its start.
    pub struct Extent {
        /// Offset from the data area's start.
        pub offset: u32,
        /// Length in bytes.
        pub length: u32,
    }
}

crate::record! {
    /// What a file or directory is.
    pub struct Stat {
        /// Size in bytes (0 for a directory).
        pub size: u64,
        /// Whether it is a directory.
        pub is_directory: bool,
        /// Whether its read-only attribute is set.
        pub read_only: bool,
    }
}

crate::record! {
    /// One directory entry; its name is in the extent the request named.
    pub struct Entry {
        /// Bytes of the name (UTF-8) written at the start of the extent.
        pub name_length: u32,
        /// What the entry is.
        pub stat: Stat,
    }
}

crate::record! {
    /// Space on the volume.
    pub struct Usage {
        /// Bytes in one unit of allocation (a cluster).
        pub block_bytes: u64,
        /// Units on the volume.
        pub total_blocks: u64,
        /// Units free now.
        pub free_blocks: u64,
    }
}

crate::interface! {
    client FsClient;
    errors {
        /// No such file or directory; or a handle that is not the caller's (another
        /// client's, closed, never issued); or, for `attach`, no such region, one the server
        /// does not serve, or a nonce that does not match (all alike).
        NotFound = 16,
        /// Something already has that name.
        Exists = 17,
        /// A path component that must be a directory is a file.
        NotDirectory = 18,
        /// The operation needs a file and found a directory.
        IsDirectory = 19,
        /// The directory is not empty.
        NotEmpty = 20,
        /// No space left on the volume.
        NoSpace = 21,
        /// The file would grow past 4 GiB - 1 bytes.
        FileTooLarge = 22,
        /// The file is open (by any client), the directory holds an open file, or the path
        /// is the caller's root: it cannot be removed or renamed.
        Busy = 23,
        /// A path is not valid UTF-8, or holds `.`, `..`, an empty component, or a
        /// character FAT names cannot hold.
        BadName = 24,
        /// A name is longer than 255 UTF-16 units or a path longer than 4,096 bytes.
        NameTooLong = 25,
        /// An extent is not inside the caller's data area.
        BadExtent = 26,
        /// The caller has as many files open as its limit allows.
        TooManyOpen = 27,
        /// The volume is mounted read-only.
        ReadOnly = 28,
        /// The block device failed.
        Io = 29,
        /// The volume is damaged; the operation was refused.
        Corrupt = 30,
        /// The caller has not attached.
        NotAttached = 31,
        /// The request makes no sense: contradictory flags, a directory moved into itself.
        Invalid = 32,
        /// `readdir`: the index is past the last entry.
        NoEntry = 33,
        /// The handle is not open for this (read on a write-only handle, or the reverse).
        AccessMode = 34,
        /// The extent for a name is too short for the entry's name.
        TooSmall = 35,
    }
    ops {
        /// Attaches the caller over shared region `region`, whose header holds `nonce`
        /// (non-zero). Returns the size of the data area. Attaching again (the client
        /// restarted) closes the handles of the earlier attachment.
        ///
        /// `Ok(bytes)`; `Err(NotFound)`.
        Attach = 1 => fn attach(region: Name, nonce: u64) -> u32;
        /// Opens the file whose path is at `path` with `flags` ([`flags`]).
        ///
        /// `Ok(handle)`; `Err(NotFound)`; `Err(Exists)`; `Err(IsDirectory)`;
        /// `Err(TooManyOpen)`; `Err(BadName)`; `Err(BadExtent)`; `Err(Invalid)` (flags);
        /// `Err(NoSpace)`; `Err(NotAttached)`.
        Open = 2 => fn open(path: Extent, flags: u32) -> u64;
        /// Closes `handle`.
        ///
        /// `Ok(())`; `Err(NotFound)`.
        Close = 3 => fn close(handle: u64) -> ();
        /// Reads from `handle` at byte `offset` into `into`; returns the bytes read (0 at
        /// the end).
        ///
        /// `Ok(bytes)`; `Err(NotFound)`; `Err(AccessMode)`; `Err(BadExtent)`; `Err(Io)`.
        Read = 4 => fn read(handle: u64, offset: u64, into: Extent) -> u32;
        /// Writes the bytes at `from` to `handle` at byte `offset` (at the end, for a handle
        /// opened with `APPEND`), whole; returns the offset just past them.
        ///
        /// `Ok(end)`; `Err(NotFound)`; `Err(AccessMode)`; `Err(BadExtent)`; `Err(NoSpace)`;
        /// `Err(FileTooLarge)`.
        Write = 5 => fn write(handle: u64, offset: u64, from: Extent) -> u64;
        /// What the path at `path` is.
        ///
        /// `Ok(stat)`; `Err(NotFound)`; `Err(NotDirectory)`; `Err(BadName)`.
        Stat = 6 => fn stat(path: Extent) -> Stat;
        /// What the open file `handle` is.
        ///
        /// `Ok(stat)`; `Err(NotFound)`.
        Fstat = 7 => fn fstat(handle: u64) -> Stat;
        /// Entry `index` of the directory at `path` (without `.` and `..`, in on-disk
        /// order); its name is written at the start of `name`.
        ///
        /// `Ok(entry)`; `Err(NoEntry)` past the last; `Err(TooSmall)`; `Err(NotFound)`;
        /// `Err(NotDirectory)`.
        Readdir = 8 => fn readdir(path: Extent, index: u32, name: Extent) -> Entry;
        /// Creates the directory at `path`.
        ///
        /// `Ok(())`; `Err(Exists)`; `Err(NotFound)`; `Err(NoSpace)`.
        Mkdir = 9 => fn mkdir(path: Extent) -> ();
        /// Removes the file at `path`.
        ///
        /// `Ok(())`; `Err(NotFound)`; `Err(IsDirectory)`; `Err(Busy)` (open).
        Unlink = 10 => fn unlink(path: Extent) -> ();
        /// Removes the empty directory at `path`.
        ///
        /// `Ok(())`; `Err(NotFound)`; `Err(NotDirectory)`; `Err(NotEmpty)`; `Err(Busy)`.
        Rmdir = 11 => fn rmdir(path: Extent) -> ();
        /// Renames `from` to `to` (both paths in the data area), replacing a file `to`.
        ///
        /// `Ok(())`; `Err(NotFound)`; `Err(Busy)`; `Err(Invalid)`; `Err(IsDirectory)`;
        /// `Err(NotDirectory)`; `Err(NotEmpty)`.
        Rename = 12 => fn rename(from: Extent, to: Extent) -> ();
        /// Returns once everything written (by anyone) is on stable storage.
        ///
        /// `Ok(())`; `Err(NotFound)`; `Err(Io)`.
        Fsync = 13 => fn fsync(handle: u64) -> ();
        /// Sets the size of the file open as `handle` (for writing).
        ///
        /// `Ok(())`; `Err(NotFound)`; `Err(AccessMode)`; `Err(NoSpace)`.
        Truncate = 14 => fn truncate(handle: u64, size: u64) -> ();
        /// The volume's space.
        ///
        /// `Ok(usage)`; `Err(Io)`.
        Usage = 15 => fn usage() -> Usage;
    }
}

/// Memory shared between a client and `fs`: byte copies in and out at offsets from the
/// region's start. Both sides go through this, so neither reads memory the other is writing
/// through a plain reference.
pub trait DataArea {
    /// The region's size in bytes.
    fn size(&self) -> usize;
    /// Copies `out.len()` bytes at `offset` into `out`; false (and nothing copied) if they
    /// are not all inside the region.
    fn load(&self, offset: usize, out: &mut [u8]) -> bool;
    /// Copies `data` to `offset`; false (and nothing stored) if it does not all fit.
    fn store(&self, offset: usize, data: &[u8]) -> bool;
}

/// A region as 32-bit words (as `shmring::shared_memory` views a mapping, or any slice of
/// atomics in one address space), copied through shmring's `read_bytes` and `write_bytes`:
/// byte `i` is byte `i % 4` of word `i / 4`, little-endian, so both sides see the same bytes.
impl DataArea for [AtomicU32] {
    fn size(&self) -> usize {
        self.len() * 4
    }

    fn load(&self, offset: usize, out: &mut [u8]) -> bool {
        shmring::read_bytes(self, offset, out).is_ok()
    }

    fn store(&self, offset: usize, data: &[u8]) -> bool {
        shmring::write_bytes(self, offset, data).is_ok()
    }
}

impl<T: DataArea + ?Sized> DataArea for &T {
    fn size(&self) -> usize {
        (**self).size()
    }
    fn load(&self, offset: usize, out: &mut [u8]) -> bool {
        (**self).load(offset, out)
    }
    fn store(&self, offset: usize, data: &[u8]) -> bool {
        (**self).store(offset, data)
    }
}

impl<T: DataArea + ?Sized> DataArea for alloc::sync::Arc<T> {
    fn size(&self) -> usize {
        (**self).size()
    }
    fn load(&self, offset: usize, out: &mut [u8]) -> bool {
        (**self).load(offset, out)
    }
    fn store(&self, offset: usize, data: &[u8]) -> bool {
        (**self).store(offset, data)
    }
}

/// The nonce in a region's header (0 if unreadable).
pub fn read_nonce(area: &impl DataArea) -> u64 {
    let mut bytes = [0u8; 8];
    if area.load(0, &mut bytes) {
        u64::from_le_bytes(bytes)
    } else {
        0
    }
}

/// Writes `nonce` into a region's header; false if the region is smaller than the header.
pub fn write_nonce(area: &impl DataArea, nonce: u64) -> bool {
    area.size() >= HEADER_BYTES && area.store(0, &nonce.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn area(words: usize) -> Vec<AtomicU32> {
        (0..words).map(|_| AtomicU32::new(0)).collect()
    }

    #[test]
    fn bytes_round_trip_at_any_alignment_and_stay_in_bounds() {
        let words = area(8);
        let region: &[AtomicU32] = &words;
        assert_eq!(region.size(), 32);
        let data: Vec<u8> = (1..=13).collect();
        assert!(region.store(3, &data));
        let mut back = [0u8; 13];
        assert!(region.load(3, &mut back));
        assert_eq!(&back[..], &data[..]);
        let mut around = [0xffu8; 18];
        assert!(region.load(0, &mut around));
        assert_eq!(&around[..3], &[0, 0, 0]);
        assert_eq!(&around[16..], &[0, 0]);
        assert!(!region.store(30, &[1, 2, 3]));
        assert!(!region.load(usize::MAX, &mut [0u8; 2]));
        let mut last = [0u8; 2];
        assert!(region.load(30, &mut last));
        assert_eq!(last, [0, 0], "a refused store changed nothing");
    }

    #[test]
    fn every_offset_and_length_round_trips() {
        let words = area(6);
        let region: &[AtomicU32] = &words;
        for offset in 0..24 {
            for length in 0..=24 - offset {
                let data: alloc::vec::Vec<u8> = (0..length)
                    .map(|i| (offset * 31 + i * 7 + 1) as u8)
                    .collect();
                assert!(region.store(offset, &data));
                let mut back = alloc::vec![0u8; length];
                assert!(region.load(offset, &mut back));
                assert_eq!(back, data, "{offset}+{length}");
            }
        }
    }

    #[test]
    fn the_nonce_lives_in_the_header() {
        let words = area(16);
        let region: &[AtomicU32] = &words;
        assert_eq!(read_nonce(&region), 0);
        assert!(write_nonce(&region, 0x1122_3344_5566_7788));
        assert_eq!(read_nonce(&region), 0x1122_3344_5566_7788);
        let small = area(4);
        assert!(!write_nonce(&&small[..], 1));
    }
}
