//! A FAT16/FAT32 file system with long names, for the `fs` service (and any component that
//! owns a disk): mount, read, write, directories, over any [`BlockDevice`].
//!
//! Written against Microsoft's FAT specification (FAT: General Overview of On-Disk Format,
//! 1.03) rather than taken from a crate: `fatfs` needs nightly Rust for `no_std`, and
//! `embedded-sdmmc` creates 8.3 names only. Host tests check it against Debian's
//! `dosfstools` (`mkfs.fat`, `fsck.fat`) and `mtools` (`mcopy`, `mdir`, `mtype`, `mmd`).
//!
//! # Invariants
//!
//! - The disk is untrusted input. The boot sector is parsed once into a checked
//!   [`Geometry`]; every FAT entry and directory entry is checked before it is followed.
//!   A damaged volume gives [`Error::Corrupt`] with the reason, never a panic or an index
//!   out of bounds.
//! - Names and paths reach the volume only as a [`Path`], which cannot hold `.`, `..`,
//!   empty components, separators or characters FAT names cannot hold, so a client whose
//!   paths are joined under its root ([`Path::join`]) cannot name anything above it.
//! - Lookups ignore case, as FAT does, and match a long name or the 8.3 name.
//!
//! # Write ordering (what a crash can leave)
//!
//! Changes go to a write-back cache. Every operation splits its writes into ordered steps
//! separated by barriers; everything in one step reaches the device, and the device is
//! flushed, before anything of the next step is written (a sector changed again in a later
//! step first has the earlier steps written out). [`FileSystem::sync`] writes everything.
//! The rules:
//!
//! 1. **Data before the pointers to it.** File data and new directory clusters are written,
//!    and new clusters' FAT entries (chained among themselves, ending in an end mark) set,
//!    before the FAT entry or directory entry that links them into a file.
//! 2. **Chains before sizes.** When a file grows, its chain is linked before its directory
//!    entry's size grows; when it shrinks, its size shrinks before its chain is cut. So a
//!    directory entry's size never exceeds its chain: a crash may leave a chain longer than
//!    its size (space lost at a file's tail), never a file reading clusters it does not own.
//! 3. **Names go before their clusters.** `unlink` and `rmdir` remove the directory entry,
//!    then free the chain; `rename` removes the old entry, then writes the new one (a crash
//!    between leaves the file's clusters lost, never shared by two entries). A moved
//!    directory's `..` entry is updated while it is unnamed.
//! 4. **A cut chain ends before its tail is freed**, and freed clusters are not reused until
//!    the freeing is on disk (at the next [`FileSystem::sync`]).
//! 5. **A new name's entries sit in one sector** when they fit (names up to 195 UTF-16
//!    units): written in one write, so no long-name entry is ever orphaned. Longer names
//!    span sectors and are not atomic.
//! 6. **The FAT32 free count** (FSInfo) is marked unknown before the first change after a
//!    sync and written exact at the sync, so a crash leaves it unknown, never wrong. It is
//!    read only for its next-free hint; the free count is recounted from the FAT.
//! 7. Both FAT copies change in the same step (the first FAT's sectors are issued first).
//!    A crash inside the step, or a disk that reorders them, can leave the copies
//!    different; each then holds the state before or after the step, and `fsck.fat` uses
//!    the first.
//!
//! So after a crash at any point, `fsck.fat -n` finds nothing worse than lost clusters
//! (unowned chains, or chains longer than their file), FATs that differ, or an unknown
//! FAT32 free count, and every file whose [`FileSystem::sync`] returned is intact
//! (tests/crash.rs checks this at every crash point of a scripted workload, with the
//! unflushed writes kept or half of them dropped).

#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod boot;
mod cache;
mod device;
mod dir;
mod entry;
mod error;
mod fs;
mod path;
mod table;
mod write;

pub use boot::{FatType, FsInfo, Geometry};
pub use cache::CacheStats;
pub use device::{BlockDevice, DeviceError, MemoryDevice, Sector, SECTOR_SIZE};
pub use entry::DateTime;
pub use error::{errno, Corruption, Error, NameError, Unsupported};
pub use fs::{DirEntry, FileSystem, Metadata, Options, Usage};
pub use path::{check_name, Path, MAX_NAME_UNITS, MAX_PATH_BYTES};
