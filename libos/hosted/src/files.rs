//! The library OS's file API over a host directory: [`HostFiles`], a
//! [`libos_core::fs::Backend`] confined to one directory.
//!
//! Confinement is `cap-std`'s (a well-kept crate that resolves every path beneath a
//! directory handle, with `openat2`'s `RESOLVE_BENEATH` where the kernel has it and a
//! checked walk otherwise): a path cannot climb out through `..`, an absolute path, or a
//! symbolic link pointing outside; such a path fails with [`Error::PermissionDenied`].
//! Before that, paths must already be in [`normalise`]'s form (no `.`, `..`, empty
//! components, leading `/`), else [`Error::InvalidName`].
//!
//! Differences from the `fs` service: the host's rules apply (case-sensitive names; an open
//! file can be removed or renamed), and `usage` is the host file system's.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use cap_std::fs::{Dir, OpenOptions};
use libos_core::fs::{normalise, Backend, DirEntry, Error, Handle, Metadata, OpenFlags, Usage};

/// Files a [`HostFiles`] keeps open at once by default.
pub const DEFAULT_MAX_OPEN: usize = 256;

struct OpenFile {
    file: std::fs::File,
    append: bool,
}

/// A backend over one host directory.
pub struct HostFiles {
    root: Dir,
    open: HashMap<u64, OpenFile>,
    next: u64,
    max_open: usize,
}

/// The library OS's error for a host error.
pub fn from_io(error: &io::Error) -> Error {
    if let Some(code) = error.raw_os_error() {
        return match code {
            libc::ENOENT => Error::NotFound,
            libc::EEXIST => Error::Exists,
            libc::ENOTDIR => Error::NotDirectory,
            libc::EISDIR => Error::IsDirectory,
            libc::ENOTEMPTY => Error::NotEmpty,
            libc::ENOSPC | libc::EDQUOT => Error::NoSpace,
            libc::EFBIG => Error::FileTooLarge,
            libc::EBUSY => Error::Busy,
            libc::ENAMETOOLONG => Error::NameTooLong,
            libc::EINVAL => Error::Invalid,
            libc::EBADF => Error::BadDescriptor,
            libc::EMFILE | libc::ENFILE => Error::TooManyOpen,
            libc::EROFS => Error::ReadOnly,
            libc::EACCES | libc::EPERM | libc::EXDEV | libc::ELOOP => Error::PermissionDenied,
            libc::EOPNOTSUPP => Error::NotSupported,
            _ => Error::Io,
        };
    }
    match error.kind() {
        io::ErrorKind::NotFound => Error::NotFound,
        io::ErrorKind::AlreadyExists => Error::Exists,
        io::ErrorKind::PermissionDenied => Error::PermissionDenied,
        io::ErrorKind::InvalidInput => Error::InvalidName,
        _ => Error::Io,
    }
}

fn io(error: io::Error) -> Error {
    from_io(&error)
}

fn metadata(m: &cap_std::fs::Metadata) -> Metadata {
    Metadata {
        size: if m.is_dir() { 0 } else { m.len() },
        is_directory: m.is_dir(),
        read_only: m.permissions().readonly(),
    }
}

/// `path` if it is already normalised; the root as `.`.
fn checked(path: &str) -> Result<&Path, Error> {
    if normalise(path)? != path {
        return Err(Error::InvalidName);
    }
    Ok(Path::new(if path.is_empty() { "." } else { path }))
}

impl HostFiles {
    /// A backend confined to the existing directory `root`. Fails with the host's error.
    pub fn open(root: impl AsRef<Path>) -> Result<HostFiles, Error> {
        let root = Dir::open_ambient_dir(root, cap_std::ambient_authority()).map_err(io)?;
        Ok(HostFiles {
            root,
            open: HashMap::new(),
            next: 1,
            max_open: DEFAULT_MAX_OPEN,
        })
    }

    /// Sets how many files this backend keeps open at once.
    pub fn set_max_open(&mut self, max_open: usize) {
        self.max_open = max_open;
    }

    fn file(&self, handle: Handle) -> Result<&OpenFile, Error> {
        self.open.get(&handle.0).ok_or(Error::BadDescriptor)
    }
}

impl Backend for HostFiles {
    fn open(&mut self, path: &str, flags: OpenFlags) -> Result<Handle, Error> {
        let flags = flags.check()?;
        let path = checked(path)?;
        if self.open.len() >= self.max_open {
            return Err(Error::TooManyOpen);
        }
        let mut options = OpenOptions::new();
        options
            .read(flags.contains(OpenFlags::READ))
            .write(flags.contains(OpenFlags::WRITE))
            .append(flags.contains(OpenFlags::APPEND))
            .truncate(flags.contains(OpenFlags::TRUNCATE));
        if flags.contains(OpenFlags::EXCLUSIVE) {
            options.create_new(true);
        } else if flags.contains(OpenFlags::CREATE) {
            options.create(true);
        }
        let file = self.root.open_with(path, &options).map_err(io)?;
        let file = file.into_std();
        if file.metadata().map_err(io)?.is_dir() {
            return Err(Error::IsDirectory);
        }
        let handle = self.next;
        self.next += 1;
        self.open.insert(
            handle,
            OpenFile {
                file,
                append: flags.contains(OpenFlags::APPEND),
            },
        );
        Ok(Handle(handle))
    }

    fn close(&mut self, handle: Handle) -> Result<(), Error> {
        self.open
            .remove(&handle.0)
            .map(drop)
            .ok_or(Error::BadDescriptor)
    }

    fn read(&mut self, handle: Handle, offset: u64, buffer: &mut [u8]) -> Result<usize, Error> {
        self.file(handle)?.file.read_at(buffer, offset).map_err(io)
    }

    fn write(&mut self, handle: Handle, offset: u64, data: &[u8]) -> Result<(usize, u64), Error> {
        let open = self.file(handle)?;
        // With O_APPEND, Linux's pwrite writes at the end whatever the offset.
        let n = open.file.write_at(data, offset).map_err(io)?;
        let end = if open.append {
            open.file.metadata().map_err(io)?.len()
        } else {
            offset + n as u64
        };
        Ok((n, end))
    }

    fn stat(&mut self, path: &str) -> Result<Metadata, Error> {
        let path = checked(path)?;
        self.root.metadata(path).map(|m| metadata(&m)).map_err(io)
    }

    fn fstat(&mut self, handle: Handle) -> Result<Metadata, Error> {
        let m = self.file(handle)?.file.metadata().map_err(io)?;
        Ok(Metadata {
            size: m.len(),
            is_directory: m.is_dir(),
            read_only: m.permissions().readonly(),
        })
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, Error> {
        let path = checked(path)?;
        let mut entries = Vec::new();
        for entry in self.root.read_dir(path).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let metadata = entry.metadata().map(|m| metadata(&m)).map_err(io)?;
            entries.push(DirEntry { name, metadata });
        }
        Ok(entries)
    }

    fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        let path = checked(path)?;
        self.root.create_dir(path).map_err(io)
    }

    fn unlink(&mut self, path: &str) -> Result<(), Error> {
        let path = checked(path)?;
        if self.root.symlink_metadata(path).map_err(io)?.is_dir() {
            return Err(Error::IsDirectory);
        }
        self.root.remove_file(path).map_err(io)
    }

    fn rmdir(&mut self, path: &str) -> Result<(), Error> {
        let path = checked(path)?;
        if path == Path::new(".") {
            return Err(Error::Busy);
        }
        self.root.remove_dir(path).map_err(io)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), Error> {
        let (from, to) = (checked(from)?, checked(to)?);
        self.root.rename(from, &self.root, to).map_err(io)
    }

    fn fsync(&mut self, handle: Handle) -> Result<(), Error> {
        self.file(handle)?.file.sync_all().map_err(io)
    }

    fn truncate(&mut self, handle: Handle, size: u64) -> Result<(), Error> {
        self.file(handle)?.file.set_len(size).map_err(io)
    }

    fn usage(&mut self) -> Result<Usage, Error> {
        let s = rustix::fs::fstatvfs(&self.root).map_err(|e| io(e.into()))?;
        Ok(Usage {
            block_bytes: s.f_frsize,
            total_blocks: s.f_blocks,
            free_blocks: s.f_bavail,
        })
    }
}
