//! What paths and descriptors name: devices, lookup results, open file descriptions,
//! `open` flags and `stat` results.

use super::tree::inode;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

/// A device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// `/dev/null`: reads end at once, writes vanish.
    Null,
    /// `/dev/zero`: reads give zeros.
    Zero,
    /// `/dev/urandom`: reads give random bytes.
    Urandom,
}

/// What a path names.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A file of the read-only tree.
    Ro(&'static [u8]),
    /// A file in `/tmp`.
    Tmp(Rc<RefCell<Vec<u8>>>),
    /// A device.
    Dev(Device),
    /// A directory.
    Dir,
    /// A symbolic link (when the lookup does not follow it) and its target.
    Link(String),
}

/// Kind bits of `st_mode`.
pub mod mode {
    /// Regular file.
    pub const REGULAR: u32 = 0o100000;
    /// Directory.
    pub const DIRECTORY: u32 = 0o040000;
    /// Symbolic link.
    pub const LINK: u32 = 0o120000;
    /// Character device.
    pub const CHAR: u32 = 0o020000;
}

/// What `stat` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Inode number (stable per path).
    pub ino: u64,
    /// Kind and permission bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Device number for devices (`major << 8 | minor`).
    pub rdev: u64,
}

/// The console stream a descriptor writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Descriptor 1.
    Stdout,
    /// Descriptor 2.
    Stderr,
}

/// What an open descriptor refers to.
#[derive(Debug, Clone)]
pub enum Object {
    /// A file of the read-only tree (path kept for `fstat`).
    Ro(String, &'static [u8]),
    /// A file in `/tmp` (it lives while open, even unlinked).
    Tmp(String, Rc<RefCell<Vec<u8>>>),
    /// A device.
    Dev(String, Device),
    /// A directory being listed.
    Dir(String),
    /// Standard input: always at its end.
    Stdin,
    /// The console.
    Console(Stream),
}

/// An open file description (shared by `dup`ed descriptors).
#[derive(Debug)]
pub struct Open {
    /// What it refers to.
    pub object: Object,
    /// The file offset (for directories: entries already returned).
    pub offset: u64,
    /// Status flags: access mode, `O_APPEND`, `O_NONBLOCK`.
    pub flags: u32,
}

/// `open` flags (x86_64 values).
pub mod flags {
    /// Access mode mask.
    pub const ACCMODE: u32 = 3;
    /// Read only.
    pub const RDONLY: u32 = 0;
    /// Write only.
    pub const WRONLY: u32 = 1;
    /// Read and write.
    pub const RDWR: u32 = 2;
    /// Create if missing.
    pub const CREAT: u32 = 0o100;
    /// With `CREAT`: fail if it exists.
    pub const EXCL: u32 = 0o200;
    /// Truncate to 0.
    pub const TRUNC: u32 = 0o1000;
    /// Writes go to the end.
    pub const APPEND: u32 = 0o2000;
    /// Non-blocking.
    pub const NONBLOCK: u32 = 0o4000;
    /// Must be a directory.
    pub const DIRECTORY: u32 = 0o200000;
    /// Do not follow a final symbolic link.
    pub const NOFOLLOW: u32 = 0o400000;
    /// Close on exec.
    pub const CLOEXEC: u32 = 0o2000000;
    /// A path-only descriptor.
    pub const PATH: u32 = 0o10000000;
    /// An unnamed temporary file (with `DIRECTORY`).
    pub const TMPFILE: u32 = 0o20000000;
}

impl Open {
    pub(super) fn readable(&self) -> bool {
        self.flags & flags::ACCMODE != flags::WRONLY && self.flags & flags::PATH == 0
    }
    pub(super) fn writable(&self) -> bool {
        matches!(self.flags & flags::ACCMODE, flags::WRONLY | flags::RDWR)
            && self.flags & flags::PATH == 0
    }
}

/// Where the bytes of a read come from (handed to the caller's sink).
pub enum Source<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// This many zero bytes.
    Zeros(usize),
    /// This many random bytes.
    Random(usize),
}

/// A copy of part of a file, for a file-backed mapping.
#[derive(Debug, Clone)]
pub struct FileBytes {
    /// The file's path in the read-only tree (empty for a `/tmp` file or a device).
    pub path: String,
    /// The whole file when it is in the read-only tree (to find its `syscall` sites).
    pub whole: &'static [u8],
    /// Offset in the file of `bytes[0]`.
    pub start: usize,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// `d_type` of a directory.
pub const DT_DIR: u8 = 4;
/// `d_type` of a regular file.
pub const DT_REG: u8 = 8;
/// `d_type` of a symbolic link.
pub const DT_LNK: u8 = 10;
/// `d_type` of a character device.
pub const DT_CHR: u8 = 2;

pub(super) fn status(path: &str, entry: &Entry) -> Status {
    let (mode, size, rdev) = match entry {
        Entry::Ro(bytes) => (mode::REGULAR | 0o755, bytes.len() as u64, 0),
        Entry::Tmp(file) => (mode::REGULAR | 0o600, file.borrow().len() as u64, 0),
        Entry::Dir => (mode::DIRECTORY | 0o755, 4096, 0),
        Entry::Link(target) => (mode::LINK | 0o777, target.len() as u64, 0),
        Entry::Dev(device) => {
            let minor = match device {
                Device::Null => 3,
                Device::Zero => 5,
                Device::Urandom => 9,
            };
            (mode::CHAR | 0o666, 0, 1 << 8 | minor)
        }
    };
    Status {
        ino: inode(path),
        mode,
        size,
        rdev,
    }
}
