//! Changes: create, write, truncate, unlink, mkdir, rmdir, rename, sync, each split into
//! ordered steps as the crate documentation's write-ordering rules say.

use crate::boot::{FatType, FsInfo};
use crate::device::{BlockDevice, SECTOR_SIZE};
use crate::dir::{Dir, Found, Listing, Slot};
use crate::entry::{
    self, checksum, long_entries, ShortEntry, Stored, ATTR_ARCHIVE, ATTR_DIRECTORY, DELETED,
    ENTRY_SIZE,
};
use crate::error::{Corruption, Error};
use crate::fs::{FileSystem, Node};
use crate::path::Path;
use crate::table::{self, Entry};
use alloc::vec::Vec;

/// The bytes a write puts in a file.
#[derive(Clone, Copy)]
enum Source<'a> {
    Bytes(&'a [u8]),
    Zeros(u64),
}

impl Source<'_> {
    fn len(&self) -> u64 {
        match self {
            Source::Bytes(b) => b.len() as u64,
            Source::Zeros(n) => *n,
        }
    }

    /// Copies this source's bytes `from..from + out.len()` into `out`.
    fn copy(&self, from: u64, out: &mut [u8]) {
        match self {
            Source::Bytes(b) => out.copy_from_slice(&b[from as usize..from as usize + out.len()]),
            Source::Zeros(_) => out.fill(0),
        }
    }
}

/// FAT's file size limit.
const MAX_FILE_SIZE: u64 = u32::MAX as u64;

impl<D: BlockDevice> FileSystem<D> {
    fn writable(&mut self) -> Result<(), Error> {
        if self.options.read_only {
            return Err(Error::ReadOnly);
        }
        // Count the free clusters before the first change.
        self.free_count()?;
        self.mark_fs_info_stale()
    }

    /// Marks the FAT32 FSInfo free count unknown (once after each sync), before the FAT
    /// changes, until the next sync writes it exact.
    fn mark_fs_info_stale(&mut self) -> Result<(), Error> {
        if self.geometry.fat_type == FatType::Fat32
            && self.geometry.fs_info_sector != 0
            && !self.fs_info_stale
        {
            let next_free = Some(self.next_free);
            self.cache
                .modify(u64::from(self.geometry.fs_info_sector), |s| {
                    FsInfo {
                        free_clusters: None,
                        next_free,
                    }
                    .store(s)
                })?;
            self.cache.barrier();
            self.fs_info_stale = true;
        }
        Ok(())
    }

    /// Writes everything changed to the device and flushes it: after it returns, every
    /// change made before it survives a crash. Fails with [`Error::Device`].
    pub fn sync(&mut self) -> Result<(), Error> {
        self.cache.sync()?;
        if self.fs_info_stale {
            let info = FsInfo {
                free_clusters: self.free,
                next_free: Some(self.next_free),
            };
            self.cache
                .modify(u64::from(self.geometry.fs_info_sector), |s| info.store(s))?;
            self.cache.sync()?;
            self.fs_info_stale = false;
        }
        self.pending_free.clear();
        Ok(())
    }

    /// Creates an empty file `path`.
    ///
    /// Fails with [`Error::Exists`], [`Error::NotFound`] or [`Error::NotDirectory`] (the
    /// parent), [`Error::NoSpace`], [`Error::ReadOnly`].
    pub fn create(&mut self, path: &Path) -> Result<(), Error> {
        let (parent, name) = self.parent_of(path)?;
        self.writable()?;
        let listing = self.list(parent)?;
        if listing.find(name).is_some() {
            return Err(Error::Exists);
        }
        let short = self.new_short(ATTR_ARCHIVE, 0);
        self.add_entry(parent, listing, name, short)?;
        Ok(())
    }

    /// Writes `data` into file `path` at byte `offset`, growing the file (with zeros
    /// between its old end and `offset`); returns the bytes written (all of them).
    ///
    /// Fails with [`Error::NotFound`], [`Error::IsDirectory`], [`Error::FileTooLarge`],
    /// [`Error::NoSpace`] (and then nothing changed), [`Error::Corrupt`].
    pub fn write(&mut self, path: &Path, offset: u64, data: &[u8]) -> Result<usize, Error> {
        let found = self.resolve_file(path)?;
        self.writable()?;
        self.write_at(&found, offset, Source::Bytes(data))?;
        Ok(data.len())
    }

    /// Appends `data` to file `path`; returns the new size. Fails as [`write`](Self::write).
    pub fn append(&mut self, path: &Path, data: &[u8]) -> Result<u64, Error> {
        let found = self.resolve_file(path)?;
        self.writable()?;
        let size = u64::from(found.short.size);
        self.write_at(&found, size, Source::Bytes(data))?;
        Ok(size + data.len() as u64)
    }

    /// Sets file `path`'s size to `size`: shrinking frees its clusters past the new end,
    /// growing adds zeros.
    ///
    /// Fails with [`Error::NotFound`], [`Error::IsDirectory`], [`Error::FileTooLarge`],
    /// [`Error::NoSpace`], [`Error::Corrupt`].
    pub fn truncate(&mut self, path: &Path, size: u64) -> Result<(), Error> {
        let found = self.resolve_file(path)?;
        self.writable()?;
        let old = u64::from(found.short.size);
        if size > old {
            return self.write_at(&found, old, Source::Zeros(size - old));
        }
        let cluster_bytes = u64::from(self.geometry.cluster_bytes());
        let chain = self.file_chain(&found, u32::MAX)?;
        let keep = size.div_ceil(cluster_bytes) as usize;
        // The size shrinks first: the chain may then be longer than the size, never shorter.
        let mut short = found.short;
        short.size = size as u32;
        if keep == 0 {
            short.first_cluster = 0;
        }
        short.modified = self.clock.encode();
        self.store_short(found.short_slot(), &short)?;
        self.cache.barrier();
        self.cut_chain(&chain, keep)
    }

    /// Removes file `path`.
    ///
    /// Fails with [`Error::NotFound`], [`Error::IsDirectory`], [`Error::Corrupt`] (a damaged
    /// chain: nothing changed).
    pub fn unlink(&mut self, path: &Path) -> Result<(), Error> {
        let found = self.resolve_file(path)?;
        self.writable()?;
        let chain = self.file_chain(&found, u32::MAX)?;
        self.remove_entry(&found)?;
        self.cut_chain(&chain, 0)
    }

    /// Creates directory `path` (with its `.` and `..` entries).
    ///
    /// Fails with [`Error::Exists`], [`Error::NotFound`] or [`Error::NotDirectory`] (the
    /// parent), [`Error::NoSpace`].
    pub fn mkdir(&mut self, path: &Path) -> Result<(), Error> {
        let (parent, name) = self.parent_of(path)?;
        self.writable()?;
        let listing = self.list(parent)?;
        if listing.find(name).is_some() {
            return Err(Error::Exists);
        }
        let cluster = self.allocate(1)?[0];
        // Step 1: the new directory's cluster and its end mark.
        let parent_cluster = match parent {
            Dir::Chain(c) if c != self.geometry.root_cluster => c,
            _ => 0,
        };
        let mut dot = self.new_short(ATTR_DIRECTORY, cluster);
        dot.name = *b".          ";
        let mut dotdot = self.new_short(ATTR_DIRECTORY, parent_cluster);
        dotdot.name = *b"..         ";
        let mut first = [0u8; SECTOR_SIZE];
        dot.store(&mut first[..ENTRY_SIZE]);
        dotdot.store(&mut first[ENTRY_SIZE..2 * ENTRY_SIZE]);
        self.zero_cluster(cluster, Some(&first))?;
        self.set_fat(cluster, Entry::End)?;
        self.cache.barrier();
        // Step 2: its name in the parent.
        let short = self.new_short(ATTR_DIRECTORY, cluster);
        if let Err(e) = self.add_entry(parent, listing, name, short) {
            // Nothing names the cluster: give it back.
            self.set_fat(cluster, Entry::Free)?;
            self.note_freed(cluster);
            return Err(e);
        }
        Ok(())
    }

    /// Removes directory `path`, which must be empty.
    ///
    /// Fails with [`Error::NotFound`], [`Error::NotDirectory`], [`Error::NotEmpty`],
    /// [`Error::Busy`] (the root).
    pub fn rmdir(&mut self, path: &Path) -> Result<(), Error> {
        let found = match self.resolve(path)? {
            Node::Root => return Err(Error::Busy),
            Node::Entry { found, .. } => found,
        };
        let dir = self.dir_of(&found)?;
        self.writable()?;
        self.remove_dir_entry(&found, dir)
    }

    /// Renames `from` to `to`, within or across directories. An existing `to` is replaced
    /// when it is a file and `from` is too, or an empty directory and `from` is one.
    ///
    /// Fails with [`Error::NotFound`], [`Error::Busy`] (the root), [`Error::Invalid`] (a
    /// directory into itself), [`Error::IsDirectory`] / [`Error::NotDirectory`] (types
    /// differ), [`Error::NotEmpty`], [`Error::NoSpace`].
    pub fn rename(&mut self, from: &Path, to: &Path) -> Result<(), Error> {
        let (source_parent, source) = match self.resolve(from)? {
            Node::Root => return Err(Error::Busy),
            Node::Entry { parent, found } => (parent, found),
        };
        let (target_parent, name) = self.parent_of(to)?;
        let is_dir = source.short.is_directory();
        if is_dir && self.passes_through(to, source.short.first_cluster)? {
            return Err(Error::Invalid);
        }
        self.writable()?;
        let listing = self.list(target_parent)?;
        if let Some(existing) = listing.find(name) {
            if existing.short_slot() == source.short_slot() {
                if existing.name == name {
                    return Ok(());
                }
                // Only the case changes: fall through and rewrite the name.
            } else {
                let existing = existing.clone();
                match (is_dir, existing.short.is_directory()) {
                    (false, false) => {
                        let chain = self.file_chain(&existing, u32::MAX)?;
                        self.remove_entry(&existing)?;
                        self.cut_chain(&chain, 0)?;
                    }
                    (true, true) => {
                        let dir = self.dir_of(&existing)?;
                        self.remove_dir_entry(&existing, dir)?;
                    }
                    (false, true) => return Err(Error::IsDirectory),
                    (true, false) => return Err(Error::NotDirectory),
                }
            }
        }
        // The old name goes first: a crash before the new one is written leaves lost
        // clusters, never two names for one chain.
        self.remove_entry(&source)?;
        if is_dir && source_parent != target_parent {
            let dir_cluster = source.short.first_cluster;
            let parent_cluster = match target_parent {
                Dir::Chain(c) if c != self.geometry.root_cluster => c,
                _ => 0,
            };
            if !self.geometry.is_cluster(dir_cluster) {
                return Err(Corruption::DirectoryEntry.into());
            }
            let sector = self.geometry.cluster_sector(dir_cluster);
            let raw = *self.cache.read(sector)?;
            let mut dotdot = ShortEntry::parse(&raw[ENTRY_SIZE..2 * ENTRY_SIZE]);
            if &dotdot.name != b"..         " {
                return Err(Corruption::DotEntries.into());
            }
            dotdot.first_cluster = parent_cluster;
            self.cache
                .modify(sector, |s| dotdot.store(&mut s[ENTRY_SIZE..2 * ENTRY_SIZE]))?;
            self.cache.barrier();
        }
        let listing = self.list(target_parent)?;
        self.add_entry(target_parent, listing, name, source.short)
    }

    /// Whether a directory on the way to `path`'s last name is the one at `cluster` (names
    /// are compared by what they resolve to, so 8.3 aliases cannot hide a cycle).
    fn passes_through(&mut self, path: &Path, cluster: u32) -> Result<bool, Error> {
        let Some((parent, _)) = path.split_last() else {
            return Ok(false);
        };
        let mut dir = self.root();
        for name in parent.names() {
            let listing = self.list(dir)?;
            let found = listing.find(name).ok_or(Error::NotFound)?;
            if found.short.first_cluster == cluster {
                return Ok(true);
            }
            dir = self.dir_of(found)?;
        }
        Ok(false)
    }

    /// The directory that will hold `path`, and its last name.
    fn parent_of<'p>(&mut self, path: &'p Path) -> Result<(Dir, &'p str), Error> {
        let (parent, name) = path.split_last().ok_or(Error::Busy)?;
        Ok((self.resolve_dir(&parent)?, name))
    }

    fn new_short(&self, attributes: u8, first_cluster: u32) -> ShortEntry {
        let now = self.clock.encode();
        ShortEntry {
            name: [b' '; 11],
            attributes,
            case_flags: 0,
            created: now,
            accessed_date: now.0,
            first_cluster,
            modified: now,
            size: 0,
        }
    }

    /// Removes an (empty) directory's entry, then frees its clusters.
    fn remove_dir_entry(&mut self, found: &Found, dir: Dir) -> Result<(), Error> {
        let listing = self.list(dir)?;
        if listing.entries.iter().any(|f| !f.short.is_dot()) {
            return Err(Error::NotEmpty);
        }
        let Dir::Chain(first) = dir else {
            return Err(Error::Busy);
        };
        let chain = table::chain_prefix(&mut self.cache, &self.geometry, first, u32::MAX)?;
        self.remove_entry(found)?;
        self.cut_chain(&chain, 0)
    }

    fn set_fat(&mut self, cluster: u32, value: Entry) -> Result<(), Error> {
        table::set(&mut self.cache, &self.geometry, cluster, value)
    }

    fn note_freed(&mut self, cluster: u32) {
        self.pending_free.insert(cluster);
        if let Some(free) = self.free.as_mut() {
            *free += 1;
        }
    }

    /// Keeps the first `keep` clusters of `chain` and frees the rest: the new end mark
    /// first, then the tail.
    fn cut_chain(&mut self, chain: &[u32], keep: usize) -> Result<(), Error> {
        if keep >= chain.len() {
            return Ok(());
        }
        if keep > 0 {
            self.set_fat(chain[keep - 1], Entry::End)?;
            self.cache.barrier();
        }
        for &cluster in &chain[keep..] {
            self.set_fat(cluster, Entry::Free)?;
            self.note_freed(cluster);
        }
        self.cache.barrier();
        Ok(())
    }

    /// Finds `count` free clusters (not marking them), starting at the next-free hint.
    /// Fails with [`Error::NoSpace`] when there are not that many.
    fn allocate(&mut self, count: usize) -> Result<Vec<u32>, Error> {
        if count == 0 {
            return Ok(Vec::new());
        }
        if (self.free_count()? as usize) < count {
            return Err(Error::NoSpace);
        }
        let available = self.free_count()? as usize - self.pending_free.len();
        if available < count {
            // Clusters freed since the last sync make up the difference: make the
            // freeing durable so that they can be reused.
            self.sync()?;
            self.mark_fs_info_stale()?;
        }
        let g = self.geometry;
        let mut found = Vec::with_capacity(count);
        let mut cluster = if g.is_cluster(self.next_free) {
            self.next_free
        } else {
            2
        };
        for _ in 0..g.cluster_count {
            if table::get(&mut self.cache, &g, cluster)? == Entry::Free
                && !self.pending_free.contains(&cluster)
            {
                found.push(cluster);
                if found.len() == count {
                    break;
                }
            }
            cluster = if cluster + 1 >= g.cluster_count + 2 {
                2
            } else {
                cluster + 1
            };
        }
        if found.len() < count {
            // The count was wrong: trust the FAT.
            self.free = None;
            return Err(Error::NoSpace);
        }
        let last = found[found.len() - 1];
        self.next_free = if last + 1 >= g.cluster_count + 2 {
            2
        } else {
            last + 1
        };
        if let Some(free) = self.free.as_mut() {
            *free -= count as u32;
        }
        Ok(found)
    }

    /// Fills `cluster` with zeros, or with `first_sector` then zeros.
    fn zero_cluster(
        &mut self,
        cluster: u32,
        first_sector: Option<&[u8; SECTOR_SIZE]>,
    ) -> Result<(), Error> {
        let start = self.geometry.cluster_sector(cluster);
        let zeros = [0u8; SECTOR_SIZE];
        for i in 0..u64::from(self.geometry.sectors_per_cluster) {
            let data = match (i, first_sector) {
                (0, Some(first)) => first,
                _ => &zeros,
            };
            self.cache.overwrite(start + i, data)?;
        }
        Ok(())
    }

    /// Writes `source` into the file at `offset`: data and the new clusters' chain, then
    /// the link from the old chain, then the size (rules 1 and 2).
    fn write_at(&mut self, found: &Found, offset: u64, source: Source) -> Result<(), Error> {
        let len = source.len();
        if len == 0 {
            return Ok(());
        }
        let end = offset.checked_add(len).ok_or(Error::FileTooLarge)?;
        if end > MAX_FILE_SIZE {
            return Err(Error::FileTooLarge);
        }
        let size = u64::from(found.short.size);
        let new_size = size.max(end);
        let cluster_bytes = u64::from(self.geometry.cluster_bytes());
        let old = self.file_chain(found, u32::MAX)?;
        let needed = new_size.div_ceil(cluster_bytes) as usize;
        let added = self.allocate(needed.saturating_sub(old.len()))?;
        let clusters: Vec<u32> = old.iter().chain(added.iter()).copied().collect();

        // Step 1: the data (zeros first over any gap past the old end), and the new
        // clusters chained among themselves.
        if offset > size {
            self.write_data(&clusters, size, Source::Zeros(offset - size))?;
        }
        self.write_data(&clusters, offset, source)?;
        for (i, &cluster) in added.iter().enumerate() {
            let next = added.get(i + 1).map_or(Entry::End, |&n| Entry::Next(n));
            self.set_fat(cluster, next)?;
        }
        self.cache.barrier();
        // Step 2: the link from the old chain's end.
        if let (Some(&last), Some(&first_new)) = (old.last(), added.first()) {
            self.set_fat(last, Entry::Next(first_new))?;
            self.cache.barrier();
        }
        // Step 3: the size (and the first cluster of a file that had none).
        let mut short = found.short;
        short.size = new_size as u32;
        if short.first_cluster == 0 {
            short.first_cluster = clusters[0];
        }
        short.modified = self.clock.encode();
        short.attributes |= ATTR_ARCHIVE;
        self.store_short(found.short_slot(), &short)?;
        self.cache.barrier();
        Ok(())
    }

    /// Copies `source` into the file's `clusters` from byte `offset`.
    fn write_data(&mut self, clusters: &[u32], offset: u64, source: Source) -> Result<(), Error> {
        let cluster_bytes = u64::from(self.geometry.cluster_bytes());
        let len = source.len();
        let mut done = 0u64;
        while done < len {
            let position = offset + done;
            let cluster = clusters[(position / cluster_bytes) as usize];
            let within = position % cluster_bytes;
            let sector = self.geometry.cluster_sector(cluster) + within / SECTOR_SIZE as u64;
            let at = (within % SECTOR_SIZE as u64) as usize;
            let n = ((SECTOR_SIZE - at) as u64).min(len - done) as usize;
            if n == SECTOR_SIZE {
                let mut whole = [0u8; SECTOR_SIZE];
                source.copy(done, &mut whole);
                self.cache.overwrite(sector, &whole)?;
            } else {
                self.cache
                    .modify(sector, |s| source.copy(done, &mut s[at..at + n]))?;
            }
            done += n as u64;
        }
        Ok(())
    }

    fn store_short(&mut self, slot: Slot, short: &ShortEntry) -> Result<(), Error> {
        self.cache.modify(slot.sector, |s| {
            short.store(&mut s[slot.offset..slot.offset + ENTRY_SIZE])
        })
    }

    /// Marks an entry's slots deleted: long-name entries in other sectors first, then the
    /// sector with the short entry, so no long-name entry is left without its short entry.
    fn remove_entry(&mut self, found: &Found) -> Result<(), Error> {
        let short = found.short_slot();
        let mut others: Vec<Slot> = found
            .slots
            .iter()
            .filter(|s| s.sector != short.sector)
            .copied()
            .collect();
        others.sort();
        for slot in &others {
            self.cache
                .modify(slot.sector, |s| s[slot.offset] = DELETED)?;
        }
        if !others.is_empty() {
            self.cache.barrier();
        }
        let same: Vec<usize> = found
            .slots
            .iter()
            .filter(|s| s.sector == short.sector)
            .map(|s| s.offset)
            .collect();
        self.cache.modify(short.sector, |s| {
            for offset in same {
                s[offset] = DELETED;
            }
        })?;
        self.cache.barrier();
        Ok(())
    }

    /// Writes a new name `name` for `short` (whose name field is replaced) into `dir`.
    fn add_entry(
        &mut self,
        dir: Dir,
        mut listing: Listing,
        name: &str,
        mut short: ShortEntry,
    ) -> Result<(), Error> {
        let long: Option<Vec<u16>> = match entry::classify_name(name) {
            Stored::Short(raw, flags) if !listing.short_name_taken(&raw) => {
                short.name = raw;
                short.case_flags = flags;
                None
            }
            stored => {
                let (base, extension) = match stored {
                    Stored::Long { base, extension } => (base, extension),
                    Stored::Short(raw, _) => {
                        let base = raw[..8].iter().copied().filter(|&b| b != b' ').collect();
                        let ext = raw[8..].iter().copied().filter(|&b| b != b' ').collect();
                        (base, ext)
                    }
                };
                let raw = (1..=999_999)
                    .map(|n| entry::alias(&base, &extension, n))
                    .find(|raw| !listing.short_name_taken(raw))
                    .ok_or(Error::NoSpace)?;
                short.name = raw;
                short.case_flags = 0;
                Some(name.encode_utf16().collect())
            }
        };
        let mut raw_entries: Vec<[u8; ENTRY_SIZE]> = match &long {
            Some(units) => long_entries(units, checksum(&short.name)),
            None => Vec::new(),
        };
        let mut short_raw = [0u8; ENTRY_SIZE];
        short.store(&mut short_raw);
        raw_entries.push(short_raw);
        let count = raw_entries.len();

        let start = match listing.find_run(count) {
            Some(start) => start,
            None => {
                self.grow_dir(dir)?;
                listing = self.list(dir)?;
                listing.find_run(count).ok_or(Error::NoSpace)?
            }
        };
        // Slots between the end mark and the run would end the directory early: mark
        // them deleted first.
        if start > listing.end {
            let filler: Vec<Slot> = (listing.end..start).map(|i| listing.slot(i)).collect();
            for slot in filler {
                self.cache
                    .modify(slot.sector, |s| s[slot.offset] = DELETED)?;
            }
            self.cache.barrier();
        }
        // Group by sector; the short entry's sector goes last when they span several.
        let slots: Vec<Slot> = (start..start + count).map(|i| listing.slot(i)).collect();
        let short_sector = slots[count - 1].sector;
        for pass in [false, true] {
            for (slot, raw) in slots.iter().zip(raw_entries.iter()) {
                if (slot.sector == short_sector) == pass {
                    self.cache.modify(slot.sector, |s| {
                        s[slot.offset..slot.offset + ENTRY_SIZE].copy_from_slice(raw)
                    })?;
                }
            }
            self.cache.barrier();
        }
        Ok(())
    }

    /// Adds one zeroed cluster to directory `dir`: the cluster and its end mark, then the
    /// link. Fails with [`Error::NoSpace`] for the FAT16 root or a directory at FAT's limit.
    fn grow_dir(&mut self, dir: Dir) -> Result<(), Error> {
        let Dir::Chain(first) = dir else {
            return Err(Error::NoSpace);
        };
        let chain = table::chain_prefix(&mut self.cache, &self.geometry, first, u32::MAX)?;
        let entries = chain.len() * self.geometry.cluster_bytes() as usize / ENTRY_SIZE;
        if entries + self.geometry.cluster_bytes() as usize / ENTRY_SIZE > 65536 {
            return Err(Error::NoSpace);
        }
        let cluster = self.allocate(1)?[0];
        self.zero_cluster(cluster, None)?;
        self.set_fat(cluster, Entry::End)?;
        self.cache.barrier();
        self.set_fat(chain[chain.len() - 1], Entry::Next(cluster))?;
        self.cache.barrier();
        Ok(())
    }
}
