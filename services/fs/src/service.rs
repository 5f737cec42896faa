//! The `proto::fs` server: sessions, confinement, handles, over a mounted volume.

use crate::config::{Config, Root};
use alloc::vec::Vec;
use libos_fat::{
    BlockDevice, DeviceError, Error as FatError, FileSystem, Metadata, NameError, Path,
};
use proto::fs::{self as wire, flags, DataArea, Entry, Error, Extent, Stat, Usage, HEADER_BYTES};
use proto::Name;
use shmring::Region;

/// Bits of a handle that number its slot in the client's table.
const SLOT_BITS: u32 = 16;
/// Bits of a handle that count opens, so a closed slot's old handle is told apart.
const SERIAL_BITS: u32 = 32;

/// What the service has refused so far (each refusal was also an error reply).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests served.
    pub requests: u64,
    /// Requests refused for naming an extent outside the caller's data area.
    pub bad_extents: u64,
    /// Requests refused for naming a handle that is not the caller's.
    pub bad_handles: u64,
    /// Requests refused for a bad path (odd names, `..`, too long, not UTF-8).
    pub bad_paths: u64,
}

#[derive(Clone, Debug)]
struct OpenFile {
    handle: u64,
    /// The file, from the volume's root.
    path: Path,
    flags: u32,
}

/// One configured client: its region, root and, once attached, its session.
struct Client<A> {
    root: Root,
    area: A,
    /// The data area as a region to check extents against.
    data: Region,
    /// The badge attached over this region, if any.
    badge: Option<u64>,
    /// The first badge that attached: the region is bound to it for this instance's life.
    owner: Option<u64>,
    open: Vec<Option<OpenFile>>,
}

/// The file service: one volume shared by the clients its [`Config`] names, each confined
/// to its root. Requests are served one at a time, in arrival order, each applied whole.
pub struct FileService<D: BlockDevice, A: DataArea> {
    fs: FileSystem<D>,
    clients: Vec<Client<A>>,
    max_open: usize,
    instance: u16,
    serial: u64,
    scratch: Vec<u8>,
    counters: Counters,
}

/// The protocol's error for a volume error.
pub fn wire_error(error: FatError) -> Error {
    match error {
        FatError::Device(DeviceError::ReadOnly) | FatError::ReadOnly => Error::ReadOnly,
        FatError::Device(_) | FatError::Unsupported(_) => Error::Io,
        FatError::Corrupt(_) => Error::Corrupt,
        FatError::Name(NameError::TooLong) => Error::NameTooLong,
        FatError::Name(_) => Error::BadName,
        FatError::NotFound => Error::NotFound,
        FatError::Exists => Error::Exists,
        FatError::NotDirectory => Error::NotDirectory,
        FatError::IsDirectory => Error::IsDirectory,
        FatError::NotEmpty => Error::NotEmpty,
        FatError::NoSpace => Error::NoSpace,
        FatError::FileTooLarge => Error::FileTooLarge,
        FatError::Busy => Error::Busy,
        FatError::Invalid => Error::Invalid,
    }
}

fn stat(m: Metadata) -> Stat {
    Stat {
        size: m.size,
        is_directory: m.is_directory,
        read_only: m.read_only,
    }
}

/// Checks `flags` as the library OS does: known bits, read or write, and create,
/// exclusive, truncate and append only with write, exclusive only with create.
fn check_flags(f: u32) -> Result<u32, Error> {
    let writes = f & flags::WRITE != 0;
    let ok = f & !flags::ALL == 0
        && f & (flags::READ | flags::WRITE) != 0
        && (writes || f & (flags::CREATE | flags::TRUNCATE | flags::APPEND) == 0)
        && (f & flags::EXCLUSIVE == 0 || f & flags::CREATE != 0);
    if ok {
        Ok(f)
    } else {
        Err(Error::Invalid)
    }
}

impl<D: BlockDevice, A: DataArea> FileService<D, A> {
    /// A service over mounted volume `fs` for the clients `config` names; `regions` gives
    /// each configured region's memory by name (a region without memory, or smaller than
    /// its header, leaves that client out). `instance` (the component's generation) goes
    /// into every handle, so a handle of an earlier instance gets `ServerRestarted`.
    ///
    /// Creates each client's root directory (and its parents) when missing; a root that
    /// cannot be created leaves its client with `NotFound` for everything.
    pub fn new(
        fs: FileSystem<D>,
        config: &Config,
        mut regions: impl FnMut(&Name) -> Option<A>,
        instance: u16,
    ) -> Self {
        let mut clients = Vec::new();
        for root in &config.roots {
            let Some(area) = regions(&root.region) else {
                continue;
            };
            let Some(bytes) = area.size().checked_sub(HEADER_BYTES) else {
                continue;
            };
            let Some(data) = u32::try_from(bytes).ok().and_then(|b| Region::new(b, 1)) else {
                continue;
            };
            clients.push(Client {
                root: root.clone(),
                area,
                data,
                badge: None,
                owner: None,
                open: Vec::new(),
            });
        }
        let mut service = FileService {
            fs,
            clients,
            max_open: config.max_open.min(1 << SLOT_BITS),
            instance,
            serial: 0,
            scratch: Vec::new(),
            counters: Counters::default(),
        };
        service.make_roots();
        service
    }

    fn make_roots(&mut self) {
        let roots: Vec<Path> = self.clients.iter().map(|c| c.root.path.clone()).collect();
        for root in roots {
            let mut path = Path::root();
            for name in root.names() {
                let Ok(next) = path.child(name) else { break };
                path = next;
                match self.fs.stat(&path) {
                    Ok(_) => continue,
                    Err(FatError::NotFound) => {
                        if self.fs.mkdir(&path).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        let _ = self.fs.sync();
    }

    /// The volume (to sync it, or inspect it in tests).
    pub fn volume(&mut self) -> &mut FileSystem<D> {
        &mut self.fs
    }

    /// A change of the directory tree, written out before it is answered: a directory made,
    /// a name removed or moved is on the disk once the client hears so (file data waits in
    /// the cache for `fsync`, as on POSIX).
    fn durable(&mut self, done: Result<(), FatError>) -> Result<(), Error> {
        done.map_err(wire_error)?;
        self.fs.sync().map_err(wire_error)
    }

    /// Ends the service and gives its volume back (what is cached and not synced stays in
    /// the volume's cache).
    pub fn into_volume(self) -> FileSystem<D> {
        self.fs
    }

    /// Writes everything cached to the device. Fails with the volume's error.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.fs.sync().map_err(wire_error)
    }

    /// What has been refused so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The regions served, in configuration order.
    pub fn regions(&self) -> impl Iterator<Item = &Name> {
        self.clients.iter().map(|c| &c.root.region)
    }

    /// The client attached as `badge`.
    fn session(&mut self, badge: u64) -> Result<usize, Error> {
        self.counters.requests += 1;
        self.clients
            .iter()
            .position(|c| c.badge == Some(badge))
            .ok_or(Error::NotAttached)
    }

    /// Copies the bytes of `extent` out of client `c`'s data area into the scratch buffer.
    fn load(&mut self, c: usize, extent: Extent) -> Result<usize, Error> {
        let client = &self.clients[c];
        let Ok(span) = client.data.check(extent.offset, extent.length) else {
            self.counters.bad_extents += 1;
            return Err(Error::BadExtent);
        };
        self.scratch.clear();
        self.scratch.resize(span.length, 0);
        if !client
            .area
            .load(HEADER_BYTES + span.offset, &mut self.scratch)
        {
            return Err(Error::BadExtent);
        }
        Ok(span.length)
    }

    /// Checks `extent` for a reply of up to its length.
    fn check(&mut self, c: usize, extent: Extent) -> Result<usize, Error> {
        match self.clients[c].data.check(extent.offset, extent.length) {
            Ok(span) => Ok(HEADER_BYTES + span.offset),
            Err(_) => {
                self.counters.bad_extents += 1;
                Err(Error::BadExtent)
            }
        }
    }

    /// The client's path at `extent`, as a path from the volume's root under the client's
    /// root; and whether it is the client's root itself.
    fn path(&mut self, c: usize, extent: Extent) -> Result<(Path, bool), Error> {
        if extent.length as usize > libos_fat::MAX_PATH_BYTES {
            self.counters.bad_paths += 1;
            return Err(Error::NameTooLong);
        }
        self.load(c, extent)?;
        let parsed = core::str::from_utf8(&self.scratch)
            .map_err(|_| NameError::Control)
            .and_then(|text| Path::parse(text.strip_prefix('/').unwrap_or(text)));
        let inner = match parsed {
            Ok(inner) => inner,
            Err(e) => {
                self.counters.bad_paths += 1;
                return Err(wire_error(FatError::Name(e)));
            }
        };
        let full = self.clients[c]
            .root
            .path
            .join(&inner)
            .map_err(|e| wire_error(FatError::Name(e)))?;
        Ok((full, inner.is_root()))
    }

    /// Client `c`'s open file `handle`.
    fn file(&mut self, c: usize, handle: u64) -> Result<OpenFile, Error> {
        if handle >> (SLOT_BITS + SERIAL_BITS) != u64::from(self.instance) {
            self.counters.bad_handles += 1;
            return Err(Error::ServerRestarted);
        }
        let slot = (handle & ((1 << SLOT_BITS) - 1)) as usize;
        match self.clients[c].open.get(slot) {
            Some(Some(open)) if open.handle == handle => Ok(open.clone()),
            _ => {
                self.counters.bad_handles += 1;
                Err(Error::NotFound)
            }
        }
    }

    /// Whether any client has a file open at or under `path`.
    fn in_use(&self, path: &Path) -> bool {
        self.clients
            .iter()
            .flat_map(|c| c.open.iter().flatten())
            .any(|open| open.path.starts_with(path))
    }
}

impl<D: BlockDevice, A: DataArea> wire::Server for FileService<D, A> {
    fn attach(&mut self, badge: u64, region: Name, nonce: u64) -> Result<u32, Error> {
        self.counters.requests += 1;
        let c = self
            .clients
            .iter()
            .position(|c| c.root.region == region)
            .ok_or(Error::NotFound)?;
        let client = &self.clients[c];
        let stranger = client.owner.is_some_and(|owner| owner != badge);
        if nonce == 0 || stranger || wire::read_nonce(&client.area) != nonce {
            return Err(Error::NotFound);
        }
        // One session per badge and per region: whatever either had before is closed.
        for client in &mut self.clients {
            if client.badge == Some(badge) {
                client.badge = None;
                client.open.clear();
            }
        }
        let client = &mut self.clients[c];
        client.badge = Some(badge);
        client.owner = Some(badge);
        client.open.clear();
        Ok(client.data.size())
    }

    fn open(&mut self, badge: u64, path: Extent, f: u32) -> Result<u64, Error> {
        let c = self.session(badge)?;
        let f = check_flags(f)?;
        let (path, _) = self.path(c, path)?;
        let slot = match self.clients[c].open.iter().position(Option::is_none) {
            Some(slot) => slot,
            None if self.clients[c].open.len() < self.max_open => {
                self.clients[c].open.push(None);
                self.clients[c].open.len() - 1
            }
            None => return Err(Error::TooManyOpen),
        };
        match self.fs.stat(&path) {
            Ok(_) if f & flags::EXCLUSIVE != 0 => return Err(Error::Exists),
            Ok(m) if m.is_directory => return Err(Error::IsDirectory),
            Ok(_) if f & flags::TRUNCATE != 0 => {
                self.fs.truncate(&path, 0).map_err(wire_error)?;
            }
            Ok(_) => {}
            Err(FatError::NotFound) if f & flags::CREATE != 0 => {
                self.fs.create(&path).map_err(wire_error)?;
            }
            Err(e) => return Err(wire_error(e)),
        }
        self.serial = (self.serial + 1) & ((1 << SERIAL_BITS) - 1);
        let handle = (u64::from(self.instance) << (SLOT_BITS + SERIAL_BITS))
            | (self.serial << SLOT_BITS)
            | slot as u64;
        self.clients[c].open[slot] = Some(OpenFile {
            handle,
            path,
            flags: f,
        });
        Ok(handle)
    }

    fn close(&mut self, badge: u64, handle: u64) -> Result<(), Error> {
        let c = self.session(badge)?;
        self.file(c, handle)?;
        let slot = (handle & ((1 << SLOT_BITS) - 1)) as usize;
        self.clients[c].open[slot] = None;
        Ok(())
    }

    fn read(&mut self, badge: u64, handle: u64, offset: u64, into: Extent) -> Result<u32, Error> {
        let c = self.session(badge)?;
        let open = self.file(c, handle)?;
        if open.flags & flags::READ == 0 {
            return Err(Error::AccessMode);
        }
        let at = self.check(c, into)?;
        self.scratch.clear();
        self.scratch.resize(into.length as usize, 0);
        let n = self
            .fs
            .read(&open.path, offset, &mut self.scratch)
            .map_err(wire_error)?;
        if !self.clients[c].area.store(at, &self.scratch[..n]) {
            return Err(Error::BadExtent);
        }
        Ok(n as u32)
    }

    fn write(&mut self, badge: u64, handle: u64, offset: u64, from: Extent) -> Result<u64, Error> {
        let c = self.session(badge)?;
        let open = self.file(c, handle)?;
        if open.flags & flags::WRITE == 0 {
            return Err(Error::AccessMode);
        }
        let length = self.load(c, from)?;
        if open.flags & flags::APPEND != 0 {
            return self
                .fs
                .append(&open.path, &self.scratch)
                .map_err(wire_error);
        }
        let end = offset
            .checked_add(length as u64)
            .ok_or(Error::FileTooLarge)?;
        self.fs
            .write(&open.path, offset, &self.scratch)
            .map_err(wire_error)?;
        Ok(end)
    }

    fn stat(&mut self, badge: u64, path: Extent) -> Result<Stat, Error> {
        let c = self.session(badge)?;
        let (path, _) = self.path(c, path)?;
        self.fs.stat(&path).map(stat).map_err(wire_error)
    }

    fn fstat(&mut self, badge: u64, handle: u64) -> Result<Stat, Error> {
        let c = self.session(badge)?;
        let open = self.file(c, handle)?;
        self.fs.stat(&open.path).map(stat).map_err(wire_error)
    }

    fn readdir(
        &mut self,
        badge: u64,
        path: Extent,
        index: u32,
        name: Extent,
    ) -> Result<Entry, Error> {
        let c = self.session(badge)?;
        let (path, _) = self.path(c, path)?;
        let at = self.check(c, name)?;
        let entries = self.fs.read_dir(&path).map_err(wire_error)?;
        let entry = entries.get(index as usize).ok_or(Error::NoEntry)?;
        let bytes = entry.name.as_bytes();
        if bytes.len() > name.length as usize {
            return Err(Error::TooSmall);
        }
        if !self.clients[c].area.store(at, bytes) {
            return Err(Error::BadExtent);
        }
        Ok(Entry {
            name_length: bytes.len() as u32,
            stat: stat(entry.metadata),
        })
    }

    fn mkdir(&mut self, badge: u64, path: Extent) -> Result<(), Error> {
        let c = self.session(badge)?;
        let (path, is_root) = self.path(c, path)?;
        if is_root {
            return Err(Error::Exists);
        }
        let made = self.fs.mkdir(&path);
        self.durable(made)
    }

    fn unlink(&mut self, badge: u64, path: Extent) -> Result<(), Error> {
        let c = self.session(badge)?;
        let (path, is_root) = self.path(c, path)?;
        if is_root {
            return Err(Error::IsDirectory);
        }
        if self.in_use(&path) {
            return Err(Error::Busy);
        }
        let removed = self.fs.unlink(&path);
        self.durable(removed)
    }

    fn rmdir(&mut self, badge: u64, path: Extent) -> Result<(), Error> {
        let c = self.session(badge)?;
        let (path, is_root) = self.path(c, path)?;
        if is_root || self.in_use(&path) {
            return Err(Error::Busy);
        }
        let removed = self.fs.rmdir(&path);
        self.durable(removed)
    }

    fn rename(&mut self, badge: u64, from: Extent, to: Extent) -> Result<(), Error> {
        let c = self.session(badge)?;
        let (from, from_root) = self.path(c, from)?;
        let (to, to_root) = self.path(c, to)?;
        if from_root || to_root || self.in_use(&from) || self.in_use(&to) {
            return Err(Error::Busy);
        }
        let renamed = self.fs.rename(&from, &to);
        self.durable(renamed)
    }

    fn fsync(&mut self, badge: u64, handle: u64) -> Result<(), Error> {
        let c = self.session(badge)?;
        self.file(c, handle)?;
        self.fs.sync().map_err(wire_error)
    }

    fn truncate(&mut self, badge: u64, handle: u64, size: u64) -> Result<(), Error> {
        let c = self.session(badge)?;
        let open = self.file(c, handle)?;
        if open.flags & flags::WRITE == 0 {
            return Err(Error::AccessMode);
        }
        self.fs.truncate(&open.path, size).map_err(wire_error)
    }

    fn usage(&mut self, badge: u64) -> Result<Usage, Error> {
        self.session(badge)?;
        let u = self.fs.usage().map_err(wire_error)?;
        Ok(Usage {
            block_bytes: u64::from(u.cluster_bytes),
            total_blocks: u64::from(u.total_clusters),
            free_blocks: u64::from(u.free_clusters),
        })
    }
}
