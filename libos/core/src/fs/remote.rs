//! The backend that talks to the `fs` service (`proto::fs`): control by IPC over any
//! [`Transport`], paths and data through the client's shared region ([`DataArea`]).
//!
//! Requests are one at a time, so the data area is laid out afresh for each: a path at the
//! start (two paths back to back for `rename`; a directory entry's name after the path for
//! `readdir`), or the bytes of a read or write. A read or write longer than the data area is
//! split into data-area-sized requests, each applied whole by the server.

use super::{Backend, DirEntry, Error, Handle, Metadata, OpenFlags, Usage};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use proto::fs::{self as wire, DataArea, Extent, FsClient, HEADER_BYTES};
use proto::{Name, Transport};

/// Room for one entry's name: 255 UTF-16 units are at most 765 bytes of UTF-8.
const NAME_ROOM: usize = 768;
/// The most entries [`Remote`] lists in one directory (FAT's limit).
const MAX_ENTRIES: u32 = 65_536;

/// A client of the `fs` service, attached over its shared region.
pub struct Remote<T: Transport, A: DataArea> {
    client: FsClient<T>,
    area: A,
    /// Bytes of the data area both sides agree on.
    data: usize,
}

/// The library OS's error for the service's `error`.
fn from_wire(error: wire::Error) -> Error {
    use wire::Error as W;
    match error {
        W::NotFound => Error::NotFound,
        W::Exists => Error::Exists,
        W::NotDirectory => Error::NotDirectory,
        W::IsDirectory => Error::IsDirectory,
        W::NotEmpty => Error::NotEmpty,
        W::NoSpace => Error::NoSpace,
        W::FileTooLarge => Error::FileTooLarge,
        W::Busy => Error::Busy,
        W::BadName => Error::InvalidName,
        W::NameTooLong => Error::NameTooLong,
        W::TooManyOpen => Error::TooManyOpen,
        W::ReadOnly => Error::ReadOnly,
        W::Io => Error::Io,
        W::Corrupt => Error::Corrupt,
        W::Invalid => Error::Invalid,
        W::AccessMode => Error::BadDescriptor,
        W::NotAttached | W::ServerRestarted => Error::ServerRestarted,
        W::BadExtent | W::TooSmall | W::NoEntry | W::Malformed | W::InvalidReply => Error::Protocol,
    }
}

/// As [`from_wire`], for an operation on a handle: `NotFound` there means the handle is
/// not ours (the file itself cannot vanish while open).
fn from_wire_handle(error: wire::Error) -> Error {
    match error {
        wire::Error::NotFound => Error::BadDescriptor,
        e => from_wire(e),
    }
}

fn metadata(stat: wire::Stat) -> Metadata {
    Metadata {
        size: stat.size,
        is_directory: stat.is_directory,
        read_only: stat.read_only,
    }
}

impl<T: Transport, A: DataArea> Remote<T, A> {
    /// Writes `nonce` (non-zero) into `area`'s header and attaches to the service over
    /// region `region` through `transport`.
    ///
    /// Fails with [`Error::Unavailable`] if the service does not know the region or nonce,
    /// [`Error::Protocol`] if the region is smaller than its header or the nonce is 0,
    /// or as the service answers.
    pub fn attach(transport: T, area: A, region: Name, nonce: u64) -> Result<Self, Error> {
        if nonce == 0 || !wire::write_nonce(&area, nonce) {
            return Err(Error::Protocol);
        }
        let mut client = FsClient::new(transport);
        let data = client.attach(region, nonce).map_err(|e| match e {
            wire::Error::NotFound => Error::Unavailable,
            e => from_wire(e),
        })?;
        let data = (data as usize).min(area.size() - HEADER_BYTES);
        if data < wire_limits::MIN_DATA {
            return Err(Error::Protocol);
        }
        Ok(Remote { client, area, data })
    }

    /// Bytes of the data area: the most one read or write request carries.
    pub fn data_bytes(&self) -> usize {
        self.data
    }

    /// Copies `bytes` into the data area at `offset`; its extent.
    fn put(&self, offset: usize, bytes: &[u8]) -> Result<Extent, Error> {
        if offset + bytes.len() > self.data {
            return Err(Error::NameTooLong);
        }
        if !self.area.store(HEADER_BYTES + offset, bytes) {
            return Err(Error::Protocol);
        }
        Ok(Extent {
            offset: offset as u32,
            length: bytes.len() as u32,
        })
    }

    fn path(&self, path: &str) -> Result<Extent, Error> {
        self.put(0, path.as_bytes())
    }
}

/// Sizes the client needs of a data area.
mod wire_limits {
    /// The smallest data area this client works with: two 4,096-byte paths.
    pub const MIN_DATA: usize = 2 * super::super::MAX_PATH;
}

impl<T: Transport, A: DataArea> Backend for Remote<T, A> {
    fn open(&mut self, path: &str, flags: OpenFlags) -> Result<Handle, Error> {
        let path = self.path(path)?;
        self.client
            .open(path, flags.0)
            .map(Handle)
            .map_err(from_wire)
    }

    fn close(&mut self, handle: Handle) -> Result<(), Error> {
        self.client.close(handle.0).map_err(from_wire_handle)
    }

    fn read(&mut self, handle: Handle, offset: u64, buffer: &mut [u8]) -> Result<usize, Error> {
        let length = buffer.len().min(self.data);
        let into = Extent {
            offset: 0,
            length: length as u32,
        };
        let n = self
            .client
            .read(handle.0, offset, into)
            .map_err(from_wire_handle)? as usize;
        // The reply is not trusted to stay within what was asked.
        if n > length || !self.area.load(HEADER_BYTES, &mut buffer[..n]) {
            return Err(Error::Protocol);
        }
        Ok(n)
    }

    fn write(&mut self, handle: Handle, offset: u64, data: &[u8]) -> Result<(usize, u64), Error> {
        let chunk = &data[..data.len().min(self.data)];
        let from = self.put(0, chunk)?;
        let end = self
            .client
            .write(handle.0, offset, from)
            .map_err(from_wire_handle)?;
        Ok((chunk.len(), end))
    }

    fn stat(&mut self, path: &str) -> Result<Metadata, Error> {
        let path = self.path(path)?;
        self.client.stat(path).map(metadata).map_err(from_wire)
    }

    fn fstat(&mut self, handle: Handle) -> Result<Metadata, Error> {
        self.client
            .fstat(handle.0)
            .map(metadata)
            .map_err(from_wire_handle)
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, Error> {
        let path = self.path(path)?;
        let at = path.length as usize;
        if at + NAME_ROOM > self.data {
            return Err(Error::NameTooLong);
        }
        let name = Extent {
            offset: at as u32,
            length: NAME_ROOM as u32,
        };
        let mut entries = Vec::new();
        for index in 0..MAX_ENTRIES {
            let entry = match self.client.readdir(path, index, name) {
                Ok(entry) => entry,
                Err(wire::Error::NoEntry) => return Ok(entries),
                Err(e) => return Err(from_wire(e)),
            };
            let length = entry.name_length as usize;
            if length > NAME_ROOM {
                return Err(Error::Protocol);
            }
            let mut bytes = vec![0u8; length];
            if !self.area.load(HEADER_BYTES + at, &mut bytes) {
                return Err(Error::Protocol);
            }
            let name = String::from_utf8(bytes).map_err(|_| Error::Protocol)?;
            entries.push(DirEntry {
                name,
                metadata: metadata(entry.stat),
            });
        }
        Ok(entries)
    }

    fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        let path = self.path(path)?;
        self.client.mkdir(path).map_err(from_wire)
    }

    fn unlink(&mut self, path: &str) -> Result<(), Error> {
        let path = self.path(path)?;
        self.client.unlink(path).map_err(from_wire)
    }

    fn rmdir(&mut self, path: &str) -> Result<(), Error> {
        let path = self.path(path)?;
        self.client.rmdir(path).map_err(from_wire)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), Error> {
        let from = self.path(from)?;
        let to = self.put(from.length as usize, to.as_bytes())?;
        self.client.rename(from, to).map_err(from_wire)
    }

    fn fsync(&mut self, handle: Handle) -> Result<(), Error> {
        self.client.fsync(handle.0).map_err(from_wire_handle)
    }

    fn truncate(&mut self, handle: Handle, size: u64) -> Result<(), Error> {
        self.client
            .truncate(handle.0, size)
            .map_err(from_wire_handle)
    }

    fn usage(&mut self) -> Result<Usage, Error> {
        let u = self.client.usage().map_err(from_wire)?;
        Ok(Usage {
            block_bytes: u.block_bytes,
            total_blocks: u.total_blocks,
            free_blocks: u.free_blocks,
        })
    }
}
