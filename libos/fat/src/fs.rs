//! The mounted volume: mount, path resolution and the read-only operations.

use crate::boot::{FatType, FsInfo, Geometry};
use crate::cache::{Cache, CacheStats};
use crate::device::{BlockDevice, SECTOR_SIZE};
use crate::dir::{self, Dir, Found, Listing};
use crate::entry::{DateTime, ATTR_READ_ONLY};
use crate::error::{Corruption, Error};
use crate::path::Path;
use crate::table;
use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

/// How to mount a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Refuse every change with [`Error::ReadOnly`].
    pub read_only: bool,
    /// Sectors the cache holds (at least 4).
    pub cache_sectors: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            read_only: false,
            cache_sectors: 256,
        }
    }
}

/// What [`FileSystem::stat`] says about a file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Whether it is a directory.
    pub is_directory: bool,
    /// Whether its read-only attribute is set.
    pub read_only: bool,
    /// Last modification, when recorded and valid.
    pub modified: Option<DateTime>,
    /// Creation, when recorded and valid.
    pub created: Option<DateTime>,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name: the long name when there is one, else the 8.3 name.
    pub name: String,
    /// Its size, type and times.
    pub metadata: Metadata,
}

/// Space on the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in one cluster, the unit of allocation.
    pub cluster_bytes: u32,
    /// Data clusters on the volume.
    pub total_clusters: u32,
    /// Clusters free now.
    pub free_clusters: u32,
}

/// What a path names.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// The volume's root directory.
    Root,
    /// An entry of directory `parent`.
    Entry { parent: Dir, found: Found },
}

/// A mounted FAT16 or FAT32 volume on device `D`.
pub struct FileSystem<D: BlockDevice> {
    pub(crate) cache: Cache<D>,
    pub(crate) geometry: Geometry,
    pub(crate) options: Options,
    /// Where the next free-cluster search starts.
    pub(crate) next_free: u32,
    /// The free cluster count, once counted (then kept up to date).
    pub(crate) free: Option<u32>,
    /// Clusters freed since the last sync: not reused until the freeing is on disk.
    pub(crate) pending_free: BTreeSet<u32>,
    /// Whether the FSInfo sector's free count has been marked unknown since the last sync.
    pub(crate) fs_info_stale: bool,
    pub(crate) clock: DateTime,
}

impl<D: BlockDevice> FileSystem<D> {
    /// Mounts the volume on `device` with default [`Options`].
    ///
    /// Fails with [`Error::Corrupt`] or [`Error::Unsupported`] (the boot sector's reason),
    /// or [`Error::Device`].
    pub fn mount(device: D) -> Result<Self, Error> {
        Self::mount_with(device, Options::default())
    }

    /// Mounts the volume on `device` with `options`; fails as [`mount`](Self::mount).
    pub fn mount_with(device: D, options: Options) -> Result<Self, Error> {
        let sectors = device.sector_count();
        let mut cache = Cache::new(device, options.cache_sectors);
        let geometry = Geometry::parse(cache.read(0)?, sectors)?;
        let mut next_free = 2;
        if geometry.fat_type == FatType::Fat32 && geometry.fs_info_sector != 0 {
            let info = FsInfo::parse(cache.read(u64::from(geometry.fs_info_sector))?, &geometry);
            // The free count is not trusted: it is counted on the first change.
            next_free = info.next_free.unwrap_or(2);
        }
        Ok(FileSystem {
            cache,
            geometry,
            options,
            next_free,
            free: None,
            pending_free: BTreeSet::new(),
            fs_info_stale: false,
            clock: DateTime::EPOCH,
        })
    }

    /// The volume's layout.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// FAT16 or FAT32.
    pub fn fat_type(&self) -> FatType {
        self.geometry.fat_type
    }

    /// Sets the time stamped on entries created or modified from now on.
    pub fn set_clock(&mut self, now: DateTime) {
        self.clock = now;
    }

    /// The cache's traffic so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The device (to inspect an in-memory image).
    pub fn device(&self) -> &D {
        self.cache.device()
    }

    /// Gives the device back without writing anything still cached: call
    /// [`sync`](Self::sync) first to keep it.
    pub fn into_device(self) -> D {
        self.cache.into_device()
    }

    /// The free and total space. Counts the free clusters by reading the FAT the first
    /// time. Fails with [`Error::Device`].
    pub fn usage(&mut self) -> Result<Usage, Error> {
        let free = self.free_count()?;
        Ok(Usage {
            cluster_bytes: self.geometry.cluster_bytes(),
            total_clusters: self.geometry.cluster_count,
            free_clusters: free,
        })
    }

    pub(crate) fn free_count(&mut self) -> Result<u32, Error> {
        if let Some(free) = self.free {
            return Ok(free);
        }
        let free = table::count_free(&mut self.cache, &self.geometry)?;
        self.free = Some(free);
        Ok(free)
    }

    pub(crate) fn root(&self) -> Dir {
        match self.geometry.fat_type {
            FatType::Fat16 => Dir::Root16,
            FatType::Fat32 => Dir::Chain(self.geometry.root_cluster),
        }
    }

    /// The directory an entry that says it is one holds.
    pub(crate) fn dir_of(&self, found: &Found) -> Result<Dir, Error> {
        if !found.short.is_directory() {
            return Err(Error::NotDirectory);
        }
        if !self.geometry.is_cluster(found.short.first_cluster) {
            return Err(Corruption::DirectoryEntry.into());
        }
        Ok(Dir::Chain(found.short.first_cluster))
    }

    pub(crate) fn list(&mut self, dir: Dir) -> Result<Listing, Error> {
        dir::list(&mut self.cache, &self.geometry, dir)
    }

    /// The directory `path` names. Fails with [`Error::NotFound`] or [`Error::NotDirectory`].
    pub(crate) fn resolve_dir(&mut self, path: &Path) -> Result<Dir, Error> {
        match self.resolve(path)? {
            Node::Root => Ok(self.root()),
            Node::Entry { found, .. } => self.dir_of(&found),
        }
    }

    /// What `path` names. Fails with [`Error::NotFound`], or [`Error::NotDirectory`] when
    /// a component before the last is a file.
    pub(crate) fn resolve(&mut self, path: &Path) -> Result<Node, Error> {
        let mut node = Node::Root;
        for name in path.names() {
            let dir = match &node {
                Node::Root => self.root(),
                Node::Entry { found, .. } => self.dir_of(found)?,
            };
            let listing = self.list(dir)?;
            let found = listing.find(name).ok_or(Error::NotFound)?.clone();
            node = Node::Entry { parent: dir, found };
        }
        Ok(node)
    }

    pub(crate) fn metadata(found: &Found) -> Metadata {
        let s = &found.short;
        Metadata {
            size: if s.is_directory() {
                0
            } else {
                u64::from(s.size)
            },
            is_directory: s.is_directory(),
            read_only: s.attributes & ATTR_READ_ONLY != 0,
            modified: DateTime::decode(s.modified.0, s.modified.1),
            created: DateTime::decode(s.created.0, s.created.1),
        }
    }

    /// What `path` is: size, type, times. Fails with [`Error::NotFound`] or
    /// [`Error::NotDirectory`].
    pub fn stat(&mut self, path: &Path) -> Result<Metadata, Error> {
        Ok(match self.resolve(path)? {
            Node::Root => Metadata {
                size: 0,
                is_directory: true,
                read_only: false,
                modified: None,
                created: None,
            },
            Node::Entry { found, .. } => Self::metadata(&found),
        })
    }

    /// The entries of directory `path` (without `.` and `..`), in on-disk order.
    /// Fails with [`Error::NotFound`] or [`Error::NotDirectory`].
    pub fn read_dir(&mut self, path: &Path) -> Result<Vec<DirEntry>, Error> {
        let dir = self.resolve_dir(path)?;
        let listing = self.list(dir)?;
        Ok(listing
            .entries
            .iter()
            .filter(|f| !f.short.is_dot())
            .map(|f| DirEntry {
                name: f.name.clone(),
                metadata: Self::metadata(f),
            })
            .collect())
    }

    /// Reads from file `path` at byte `offset` into `buffer`; returns the bytes read (0 at
    /// or past the end).
    ///
    /// Fails with [`Error::NotFound`], [`Error::IsDirectory`], or [`Error::Corrupt`] when
    /// the file's chain is damaged or shorter than its size.
    pub fn read(&mut self, path: &Path, offset: u64, buffer: &mut [u8]) -> Result<usize, Error> {
        let found = self.resolve_file(path)?;
        let size = u64::from(found.short.size);
        if offset >= size || buffer.is_empty() {
            return Ok(0);
        }
        let len = (size - offset).min(buffer.len() as u64) as usize;
        let cluster_bytes = u64::from(self.geometry.cluster_bytes());
        let last_index = (offset + len as u64 - 1) / cluster_bytes;
        let clusters = self.file_chain(&found, last_index as u32 + 1)?;
        let mut done = 0;
        while done < len {
            let position = offset + done as u64;
            let cluster = clusters[(position / cluster_bytes) as usize];
            let within = position % cluster_bytes;
            let sector = self.geometry.cluster_sector(cluster) + within / SECTOR_SIZE as u64;
            let at = (within % SECTOR_SIZE as u64) as usize;
            let n = (SECTOR_SIZE - at).min(len - done);
            let data = self.cache.read(sector)?;
            buffer[done..done + n].copy_from_slice(&data[at..at + n]);
            done += n;
        }
        Ok(len)
    }

    /// The file (not directory) `path` names.
    pub(crate) fn resolve_file(&mut self, path: &Path) -> Result<Found, Error> {
        match self.resolve(path)? {
            Node::Root => Err(Error::IsDirectory),
            Node::Entry { found, .. } if found.short.is_directory() => Err(Error::IsDirectory),
            Node::Entry { found, .. } => Ok(found),
        }
    }

    /// The first `want` clusters of a file's chain (all of it when `want` is `u32::MAX`),
    /// checked to cover the file's size.
    pub(crate) fn file_chain(&mut self, found: &Found, want: u32) -> Result<Vec<u32>, Error> {
        let cluster_bytes = u64::from(self.geometry.cluster_bytes());
        let needed = u64::from(found.short.size).div_ceil(cluster_bytes) as u32;
        let first = found.short.first_cluster;
        if first == 0 {
            return if needed == 0 {
                Ok(Vec::new())
            } else {
                Err(Corruption::ChainTooShort.into())
            };
        }
        let chain = table::chain_prefix(&mut self.cache, &self.geometry, first, want)?;
        if (chain.len() as u32) < want.min(needed) {
            return Err(Corruption::ChainTooShort.into());
        }
        Ok(chain)
    }
}
