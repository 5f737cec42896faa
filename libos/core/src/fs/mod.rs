//! The library OS's file API: POSIX-like calls (`open`, `read`, `write`, `lseek`, `close`,
//! `stat`, `readdir`, `mkdir`, `unlink`, `rename`, `rmdir`, `fsync`, `ftruncate`/`truncate`, and a
//! `df`-style [`Usage`]) over a [`Backend`] that does the work: a host directory in
//! `libos-hosted`, or the `fs` service through [`Remote`].
//!
//! [`Files`] is the API a program uses. It keeps the file descriptor table (each
//! descriptor's backend handle, access mode and position, so `lseek` is local) and turns
//! paths into the one form backends accept ([`normalise`]). Every failure is one [`Error`],
//! which maps to a POSIX errno ([`Error::errno`]).
//!
//! Paths are `/`-separated names below the root the backend gives this program (a host
//! directory, or the subtree the system description gives the client of `fs`). A leading
//! `/` names that root; a trailing `/` is ignored. `.`, `..`, empty components (`a//b`),
//! NUL and control characters are refused with [`Error::InvalidName`]: nothing can name
//! anything above the root. Backends check again: they never trust this layer.

mod remote;

pub use remote::Remote;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The longest path [`normalise`] accepts, in bytes.
pub const MAX_PATH: usize = 4096;
/// The longest name (one path component) [`normalise`] accepts, in bytes.
pub const MAX_NAME: usize = 255;

/// Why a file operation failed. [`Error::errno`] gives the POSIX number (Linux numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// No such file or directory (`ENOENT`, 2).
    NotFound,
    /// Something already has that name (`EEXIST`, 17).
    Exists,
    /// A component that must be a directory is a file (`ENOTDIR`, 20).
    NotDirectory,
    /// The operation needs a file and found a directory (`EISDIR`, 21).
    IsDirectory,
    /// The directory is not empty (`ENOTEMPTY`, 39).
    NotEmpty,
    /// No space left on the volume (`ENOSPC`, 28).
    NoSpace,
    /// The file would grow past the format's limit (`EFBIG`, 27).
    FileTooLarge,
    /// The file or directory is open, or is the root, and cannot be removed or renamed
    /// (`EBUSY`, 16).
    Busy,
    /// A path holds `.`, `..`, an empty component, or a character names cannot hold
    /// (`EINVAL`, 22).
    InvalidName,
    /// A name is longer than 255 bytes or a path longer than 4,096 (`ENAMETOOLONG`, 36).
    NameTooLong,
    /// An argument is out of range: a seek before the start, flags that contradict each
    /// other, a rename of a directory into itself (`EINVAL`, 22).
    Invalid,
    /// The descriptor is not open, or not open for this (reading a write-only file)
    /// (`EBADF`, 9).
    BadDescriptor,
    /// The program, or the service for this client, has as many files open as it may
    /// (`EMFILE`, 24).
    TooManyOpen,
    /// The volume or the file is read-only (`EROFS`, 30).
    ReadOnly,
    /// The host refused access (hosted backend only) (`EACCES`, 13).
    PermissionDenied,
    /// The device failed (`EIO`, 5).
    Io,
    /// The volume is damaged; the operation was refused (`EUCLEAN`, 117).
    Corrupt,
    /// The backend cannot do this (`EOPNOTSUPP`, 95).
    NotSupported,
    /// There is no file service: the program has no backend (`ENODEV`, 19).
    Unavailable,
    /// The file service restarted: descriptors opened before are gone; attach and open
    /// again (`ESTALE`, 116).
    ServerRestarted,
    /// The file service's reply or the shared region broke the protocol (`EPROTO`, 71).
    Protocol,
}

/// Linux's errno numbers for the values [`Error::errno`] returns.
pub mod errno {
    /// Input/output error.
    pub const EIO: i32 = 5;
    /// No such file or directory.
    pub const ENOENT: i32 = 2;
    /// Bad file descriptor.
    pub const EBADF: i32 = 9;
    /// Permission denied.
    pub const EACCES: i32 = 13;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// File exists.
    pub const EEXIST: i32 = 17;
    /// No such device.
    pub const ENODEV: i32 = 19;
    /// Not a directory.
    pub const ENOTDIR: i32 = 20;
    /// Is a directory.
    pub const EISDIR: i32 = 21;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Too many open files.
    pub const EMFILE: i32 = 24;
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
    /// Protocol error.
    pub const EPROTO: i32 = 71;
    /// Operation not supported.
    pub const EOPNOTSUPP: i32 = 95;
    /// Stale file handle.
    pub const ESTALE: i32 = 116;
    /// Structure needs cleaning.
    pub const EUCLEAN: i32 = 117;
}

impl Error {
    /// Every error, in declaration order.
    pub const ALL: &'static [Error] = &[
        Error::NotFound,
        Error::Exists,
        Error::NotDirectory,
        Error::IsDirectory,
        Error::NotEmpty,
        Error::NoSpace,
        Error::FileTooLarge,
        Error::Busy,
        Error::InvalidName,
        Error::NameTooLong,
        Error::Invalid,
        Error::BadDescriptor,
        Error::TooManyOpen,
        Error::ReadOnly,
        Error::PermissionDenied,
        Error::Io,
        Error::Corrupt,
        Error::NotSupported,
        Error::Unavailable,
        Error::ServerRestarted,
        Error::Protocol,
    ];

    /// The POSIX errno (Linux numbering) that reports this error to a program.
    pub fn errno(self) -> i32 {
        use errno::*;
        match self {
            Error::NotFound => ENOENT,
            Error::Exists => EEXIST,
            Error::NotDirectory => ENOTDIR,
            Error::IsDirectory => EISDIR,
            Error::NotEmpty => ENOTEMPTY,
            Error::NoSpace => ENOSPC,
            Error::FileTooLarge => EFBIG,
            Error::Busy => EBUSY,
            Error::InvalidName | Error::Invalid => EINVAL,
            Error::NameTooLong => ENAMETOOLONG,
            Error::BadDescriptor => EBADF,
            Error::TooManyOpen => EMFILE,
            Error::ReadOnly => EROFS,
            Error::PermissionDenied => EACCES,
            Error::Io => EIO,
            Error::Corrupt => EUCLEAN,
            Error::NotSupported => EOPNOTSUPP,
            Error::Unavailable => ENODEV,
            Error::ServerRestarted => ESTALE,
            Error::Protocol => EPROTO,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::NotFound => "no such file or directory",
            Error::Exists => "already exists",
            Error::NotDirectory => "not a directory",
            Error::IsDirectory => "is a directory",
            Error::NotEmpty => "directory not empty",
            Error::NoSpace => "no space left",
            Error::FileTooLarge => "file too large",
            Error::Busy => "busy (open, or the root)",
            Error::InvalidName => "invalid name",
            Error::NameTooLong => "name too long",
            Error::Invalid => "invalid argument",
            Error::BadDescriptor => "bad file descriptor",
            Error::TooManyOpen => "too many open files",
            Error::ReadOnly => "read-only",
            Error::PermissionDenied => "permission denied",
            Error::Io => "input/output error",
            Error::Corrupt => "damaged volume",
            Error::NotSupported => "not supported",
            Error::Unavailable => "no file service",
            Error::ServerRestarted => "the file service restarted",
            Error::Protocol => "file service protocol error",
        })
    }
}

/// How to open a file: an access mode and what to do when it exists or not. The bits are
/// the ones `proto::fs` carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct OpenFlags(pub u32);

impl OpenFlags {
    /// Open for reading.
    pub const READ: OpenFlags = OpenFlags(1);
    /// Open for writing.
    pub const WRITE: OpenFlags = OpenFlags(2);
    /// Create the file if it does not exist (needs `WRITE`).
    pub const CREATE: OpenFlags = OpenFlags(4);
    /// With `CREATE`: fail with [`Error::Exists`] if it exists.
    pub const EXCLUSIVE: OpenFlags = OpenFlags(8);
    /// Cut the file to length 0 on open (needs `WRITE`).
    pub const TRUNCATE: OpenFlags = OpenFlags(16);
    /// Every write goes to the end of the file (needs `WRITE`).
    pub const APPEND: OpenFlags = OpenFlags(32);
    /// Every defined bit.
    pub const ALL: OpenFlags = OpenFlags(63);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: OpenFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Checks that the flags make sense: only defined bits, at least one of read and write,
    /// and create, exclusive, truncate and append only with write, exclusive only with
    /// create. Fails with [`Error::Invalid`].
    pub fn check(self) -> Result<OpenFlags, Error> {
        let writes = self.contains(OpenFlags::WRITE);
        let needs_write = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::APPEND;
        let ok = self.0 & !OpenFlags::ALL.0 == 0
            && (writes || self.contains(OpenFlags::READ))
            && (writes || self.0 & needs_write.0 == 0)
            && (!self.contains(OpenFlags::EXCLUSIVE) || self.contains(OpenFlags::CREATE));
        if ok {
            Ok(self)
        } else {
            Err(Error::Invalid)
        }
    }
}

impl core::ops::BitOr for OpenFlags {
    type Output = OpenFlags;
    fn bitor(self, other: OpenFlags) -> OpenFlags {
        OpenFlags(self.0 | other.0)
    }
}

/// What a file or directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Metadata {
    /// Size in bytes (0 for a directory).
    pub size: u64,
    /// Whether it is a directory.
    pub is_directory: bool,
    /// Whether it is marked read-only.
    pub read_only: bool,
}

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name.
    pub name: String,
    /// What it is.
    pub metadata: Metadata,
}

/// Space on the volume, as `df` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in one unit of allocation.
    pub block_bytes: u64,
    /// Units on the volume.
    pub total_blocks: u64,
    /// Units free now.
    pub free_blocks: u64,
}

/// Where [`Files::lseek`] counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whence {
    /// From the start of the file (`SEEK_SET`).
    Start,
    /// From the descriptor's position (`SEEK_CUR`).
    Current,
    /// From the end of the file (`SEEK_END`).
    End,
}

/// A backend's name for an open file; meaningful only to the backend that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(pub u64);

/// What does the file operations: paths arrive normalised ([`normalise`]: no leading or
/// trailing `/`, the root is `""`), but a backend checks them again. Reads and writes name
/// a byte offset; positions are kept by [`Files`].
pub trait Backend {
    /// Opens `path` with checked `flags`; returns its handle.
    ///
    /// Fails with [`Error::NotFound`] (no such file and no `CREATE`, or no parent),
    /// [`Error::Exists`] (`CREATE | EXCLUSIVE`), [`Error::IsDirectory`],
    /// [`Error::TooManyOpen`], [`Error::InvalidName`], [`Error::NoSpace`].
    fn open(&mut self, path: &str, flags: OpenFlags) -> Result<Handle, Error>;
    /// Closes `handle`. Fails with [`Error::BadDescriptor`].
    fn close(&mut self, handle: Handle) -> Result<(), Error>;
    /// Reads up to `buffer.len()` bytes at `offset`; returns how many (0 at the end). May
    /// return fewer than asked before the end. Fails with [`Error::BadDescriptor`].
    fn read(&mut self, handle: Handle, offset: u64, buffer: &mut [u8]) -> Result<usize, Error>;
    /// Writes `data` at `offset` (at the end, for a handle opened with `APPEND`); returns
    /// how many bytes were written (at least one unless `data` is empty) and the offset just
    /// past them. Fails with [`Error::BadDescriptor`], [`Error::NoSpace`],
    /// [`Error::FileTooLarge`].
    fn write(&mut self, handle: Handle, offset: u64, data: &[u8]) -> Result<(usize, u64), Error>;
    /// What `path` is. Fails with [`Error::NotFound`], [`Error::NotDirectory`].
    fn stat(&mut self, path: &str) -> Result<Metadata, Error>;
    /// What the open file is. Fails with [`Error::BadDescriptor`].
    fn fstat(&mut self, handle: Handle) -> Result<Metadata, Error>;
    /// Every entry of directory `path` (without `.` and `..`). Fails with
    /// [`Error::NotFound`], [`Error::NotDirectory`].
    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, Error>;
    /// Creates directory `path`. Fails with [`Error::Exists`], [`Error::NotFound`] (no
    /// parent), [`Error::NoSpace`].
    fn mkdir(&mut self, path: &str) -> Result<(), Error>;
    /// Removes file `path`. Fails with [`Error::NotFound`], [`Error::IsDirectory`],
    /// [`Error::Busy`] (open).
    fn unlink(&mut self, path: &str) -> Result<(), Error>;
    /// Removes empty directory `path`. Fails with [`Error::NotFound`],
    /// [`Error::NotDirectory`], [`Error::NotEmpty`], [`Error::Busy`] (the root, or holds an
    /// open file).
    fn rmdir(&mut self, path: &str) -> Result<(), Error>;
    /// Renames `from` to `to`, replacing a file `to`. Fails with [`Error::NotFound`],
    /// [`Error::Busy`], [`Error::Invalid`] (a directory into itself),
    /// [`Error::IsDirectory`], [`Error::NotDirectory`], [`Error::NotEmpty`].
    fn rename(&mut self, from: &str, to: &str) -> Result<(), Error>;
    /// Returns once everything written through `handle` (and everything before it) is on
    /// stable storage. Fails with [`Error::BadDescriptor`], [`Error::Io`].
    fn fsync(&mut self, handle: Handle) -> Result<(), Error>;
    /// Sets the open file's size. Fails with [`Error::BadDescriptor`] (not open for
    /// writing), [`Error::NoSpace`], [`Error::FileTooLarge`].
    fn truncate(&mut self, handle: Handle, size: u64) -> Result<(), Error>;
    /// The volume's space. Fails with [`Error::Io`].
    fn usage(&mut self) -> Result<Usage, Error>;
}

impl<B: Backend + ?Sized> Backend for alloc::boxed::Box<B> {
    fn open(&mut self, path: &str, flags: OpenFlags) -> Result<Handle, Error> {
        (**self).open(path, flags)
    }
    fn close(&mut self, handle: Handle) -> Result<(), Error> {
        (**self).close(handle)
    }
    fn read(&mut self, handle: Handle, offset: u64, buffer: &mut [u8]) -> Result<usize, Error> {
        (**self).read(handle, offset, buffer)
    }
    fn write(&mut self, handle: Handle, offset: u64, data: &[u8]) -> Result<(usize, u64), Error> {
        (**self).write(handle, offset, data)
    }
    fn stat(&mut self, path: &str) -> Result<Metadata, Error> {
        (**self).stat(path)
    }
    fn fstat(&mut self, handle: Handle) -> Result<Metadata, Error> {
        (**self).fstat(handle)
    }
    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, Error> {
        (**self).read_dir(path)
    }
    fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        (**self).mkdir(path)
    }
    fn unlink(&mut self, path: &str) -> Result<(), Error> {
        (**self).unlink(path)
    }
    fn rmdir(&mut self, path: &str) -> Result<(), Error> {
        (**self).rmdir(path)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), Error> {
        (**self).rename(from, to)
    }
    fn fsync(&mut self, handle: Handle) -> Result<(), Error> {
        (**self).fsync(handle)
    }
    fn truncate(&mut self, handle: Handle, size: u64) -> Result<(), Error> {
        (**self).truncate(handle, size)
    }
    fn usage(&mut self) -> Result<Usage, Error> {
        (**self).usage()
    }
}

/// Checks `path` and returns it without its leading and trailing `/`s (`""` is the root).
///
/// Fails with [`Error::InvalidName`] for an empty component inside the path (`a//b`), `.`,
/// `..`, a NUL or control character or a `\`; with [`Error::NameTooLong`] for a name past
/// [`MAX_NAME`] bytes or a path past [`MAX_PATH`].
pub fn normalise(path: &str) -> Result<&str, Error> {
    if path.len() > MAX_PATH {
        return Err(Error::NameTooLong);
    }
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok("");
    }
    for name in trimmed.split('/') {
        if name.is_empty() || name == "." || name == ".." {
            return Err(Error::InvalidName);
        }
        if name
            .chars()
            .any(|c| (c as u32) < 0x20 || c == '\u{7f}' || c == '\\')
        {
            return Err(Error::InvalidName);
        }
        if name.len() > MAX_NAME {
            return Err(Error::NameTooLong);
        }
    }
    Ok(trimmed)
}

/// An open descriptor's state.
#[derive(Clone, Copy, Debug)]
struct Open {
    handle: Handle,
    flags: OpenFlags,
    position: u64,
}

/// A file descriptor: a small number, as POSIX's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fd(pub u32);

/// The file API: a descriptor table over a [`Backend`].
///
/// Positions live here: `read` and `write` start at the descriptor's position and move it;
/// [`Files::lseek`] sets it; a descriptor opened with [`OpenFlags::APPEND`] writes at the
/// end and moves to just past what it wrote.
pub struct Files<B> {
    backend: B,
    table: Vec<Option<Open>>,
    max_open: usize,
}

/// Descriptors a [`Files`] holds by default.
pub const DEFAULT_MAX_OPEN: usize = 64;

impl<B: Backend> Files<B> {
    /// The API over `backend`, with room for [`DEFAULT_MAX_OPEN`] descriptors.
    pub fn new(backend: B) -> Self {
        Self::with_limit(backend, DEFAULT_MAX_OPEN)
    }

    /// The API over `backend`, with room for `max_open` descriptors.
    pub fn with_limit(backend: B, max_open: usize) -> Self {
        Files {
            backend,
            table: Vec::new(),
            max_open,
        }
    }

    /// The backend.
    pub fn backend(&mut self) -> &mut B {
        &mut self.backend
    }

    fn open_file(&self, fd: Fd) -> Result<Open, Error> {
        self.table
            .get(fd.0 as usize)
            .copied()
            .flatten()
            .ok_or(Error::BadDescriptor)
    }

    /// Opens `path`; returns the lowest free descriptor, positioned at the start.
    ///
    /// Fails with [`Error::Invalid`] (flags that contradict each other: see
    /// [`OpenFlags::check`]), [`Error::TooManyOpen`], and as [`Backend::open`].
    pub fn open(&mut self, path: &str, flags: OpenFlags) -> Result<Fd, Error> {
        let flags = flags.check()?;
        let path = normalise(path)?;
        let slot = match self.table.iter().position(Option::is_none) {
            Some(slot) => slot,
            None if self.table.len() < self.max_open => {
                self.table.push(None);
                self.table.len() - 1
            }
            None => return Err(Error::TooManyOpen),
        };
        let handle = self.backend.open(path, flags)?;
        self.table[slot] = Some(Open {
            handle,
            flags,
            position: 0,
        });
        Ok(Fd(slot as u32))
    }

    /// Closes `fd`; the descriptor is free again even if the backend fails.
    /// Fails with [`Error::BadDescriptor`].
    pub fn close(&mut self, fd: Fd) -> Result<(), Error> {
        let open = self.open_file(fd)?;
        self.table[fd.0 as usize] = None;
        self.backend.close(open.handle)
    }

    /// Reads into `buffer` from the position; returns the bytes read (0 at the end) and
    /// moves the position past them. Fails with [`Error::BadDescriptor`] (not open for
    /// reading).
    pub fn read(&mut self, fd: Fd, buffer: &mut [u8]) -> Result<usize, Error> {
        let open = self.open_file(fd)?;
        if !open.flags.contains(OpenFlags::READ) {
            return Err(Error::BadDescriptor);
        }
        let mut done = 0;
        while done < buffer.len() {
            let n = self.backend.read(
                open.handle,
                open.position + done as u64,
                &mut buffer[done..],
            )?;
            if n == 0 {
                break;
            }
            done += n.min(buffer.len() - done);
        }
        self.set_position(fd, open.position + done as u64);
        Ok(done)
    }

    /// Reads the rest of the file from the position.
    pub fn read_to_end(&mut self, fd: Fd) -> Result<Vec<u8>, Error> {
        let mut all = Vec::new();
        let mut chunk = alloc::vec![0u8; 4096];
        loop {
            let n = self.read(fd, &mut chunk)?;
            if n == 0 {
                return Ok(all);
            }
            all.extend_from_slice(&chunk[..n]);
        }
    }

    /// Writes all of `data` at the position (at the end with `APPEND`); returns its length
    /// and moves the position past it. Fails with [`Error::BadDescriptor`] (not open for
    /// writing), [`Error::NoSpace`], [`Error::FileTooLarge`]; what was written before the
    /// failure stays written.
    pub fn write(&mut self, fd: Fd, data: &[u8]) -> Result<usize, Error> {
        let open = self.open_file(fd)?;
        if !open.flags.contains(OpenFlags::WRITE) {
            return Err(Error::BadDescriptor);
        }
        let mut done = 0;
        let mut position = open.position;
        while done < data.len() {
            let (n, end) = self.backend.write(open.handle, position, &data[done..])?;
            if n == 0 || n > data.len() - done {
                return Err(Error::Protocol);
            }
            done += n;
            position = end;
            self.set_position(fd, position);
        }
        Ok(done)
    }

    fn set_position(&mut self, fd: Fd, position: u64) {
        if let Some(Some(open)) = self.table.get_mut(fd.0 as usize) {
            open.position = position;
        }
    }

    /// Moves the position to `offset` from `whence`; returns the new position. Fails with
    /// [`Error::Invalid`] for a position before the start or past `u64::MAX`, and
    /// [`Error::BadDescriptor`].
    pub fn lseek(&mut self, fd: Fd, offset: i64, whence: Whence) -> Result<u64, Error> {
        let open = self.open_file(fd)?;
        let base = match whence {
            Whence::Start => 0,
            Whence::Current => open.position,
            Whence::End => self.backend.fstat(open.handle)?.size,
        };
        let position = base.checked_add_signed(offset).ok_or(Error::Invalid)?;
        self.set_position(fd, position);
        Ok(position)
    }

    /// What the open file is. Fails with [`Error::BadDescriptor`].
    pub fn fstat(&mut self, fd: Fd) -> Result<Metadata, Error> {
        let open = self.open_file(fd)?;
        self.backend.fstat(open.handle)
    }

    /// Sets the open file's size; the position does not move. Fails with
    /// [`Error::BadDescriptor`] (not open for writing), [`Error::NoSpace`].
    pub fn ftruncate(&mut self, fd: Fd, size: u64) -> Result<(), Error> {
        let open = self.open_file(fd)?;
        if !open.flags.contains(OpenFlags::WRITE) {
            return Err(Error::BadDescriptor);
        }
        self.backend.truncate(open.handle, size)
    }

    /// Returns once what was written is on stable storage. Fails with
    /// [`Error::BadDescriptor`], [`Error::Io`].
    pub fn fsync(&mut self, fd: Fd) -> Result<(), Error> {
        let open = self.open_file(fd)?;
        self.backend.fsync(open.handle)
    }

    /// What `path` is. Fails as [`normalise`] and [`Backend::stat`].
    pub fn stat(&mut self, path: &str) -> Result<Metadata, Error> {
        let path = normalise(path)?;
        self.backend.stat(path)
    }

    /// The entries of directory `path`, sorted by name.
    pub fn readdir(&mut self, path: &str) -> Result<Vec<DirEntry>, Error> {
        let path = normalise(path)?;
        let mut entries = self.backend.read_dir(path)?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Creates directory `path`.
    pub fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        let path = normalise(path)?;
        if path.is_empty() {
            return Err(Error::Exists);
        }
        self.backend.mkdir(path)
    }

    /// Removes file `path`.
    pub fn unlink(&mut self, path: &str) -> Result<(), Error> {
        let path = normalise(path)?;
        if path.is_empty() {
            return Err(Error::IsDirectory);
        }
        self.backend.unlink(path)
    }

    /// Removes empty directory `path`. The root: [`Error::Busy`].
    pub fn rmdir(&mut self, path: &str) -> Result<(), Error> {
        let path = normalise(path)?;
        if path.is_empty() {
            return Err(Error::Busy);
        }
        self.backend.rmdir(path)
    }

    /// Renames `from` to `to`. The root: [`Error::Busy`].
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), Error> {
        let (from, to) = (normalise(from)?, normalise(to)?);
        if from.is_empty() || to.is_empty() {
            return Err(Error::Busy);
        }
        self.backend.rename(from, to)
    }

    /// The volume's space.
    pub fn usage(&mut self) -> Result<Usage, Error> {
        self.backend.usage()
    }

    /// Creates or replaces `path` with `data` (open, write, fsync, close).
    pub fn write_file(&mut self, path: &str, data: &[u8]) -> Result<(), Error> {
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        let fd = self.open(path, flags)?;
        let written = self.write(fd, data).and_then(|_| self.fsync(fd));
        let closed = self.close(fd);
        written.and(closed)
    }

    /// Sets file `path`'s size (open for writing, `ftruncate`, close).
    pub fn truncate(&mut self, path: &str, size: u64) -> Result<(), Error> {
        let fd = self.open(path, OpenFlags::WRITE)?;
        let cut = self.ftruncate(fd, size);
        let closed = self.close(fd);
        cut.and(closed)
    }

    /// The whole of file `path`.
    pub fn read_file(&mut self, path: &str) -> Result<Vec<u8>, Error> {
        let fd = self.open(path, OpenFlags::READ)?;
        let data = self.read_to_end(fd);
        let closed = self.close(fd);
        let data = data?;
        closed.map(|()| data)
    }
}

#[cfg(test)]
mod tests;
