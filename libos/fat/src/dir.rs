//! Directories: where their entries live, reading them into names (long names checked
//! against their short entry's checksum, 8.3 names otherwise), finding room for new entries.

use crate::boot::Geometry;
use crate::cache::Cache;
use crate::device::{BlockDevice, SECTOR_SIZE};
use crate::entry::{
    self, checksum, LongEntry, ShortEntry, ATTR_LONG_NAME, ATTR_VOLUME, DELETED, ENTRY_SIZE,
    LFN_UNITS,
};
use crate::error::{Corruption, Error};
use crate::table;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// Entries in one sector.
pub(crate) const PER_SECTOR: usize = SECTOR_SIZE / ENTRY_SIZE;
/// The most entries a directory may hold.
const MAX_ENTRIES: usize = 65536;

/// Where a directory's entries are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// The FAT16 root directory: a fixed run of sectors.
    Root16,
    /// A cluster chain starting at this cluster (every FAT32 directory, FAT16 subdirectories).
    Chain(u32),
}

/// Where one 32-byte entry is: its sector and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Slot {
    pub sector: u64,
    pub offset: usize,
}

/// A file or directory found in a directory.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// Its long name when it has a valid one, else its 8.3 name.
    pub name: String,
    pub short: ShortEntry,
    /// Its long-name entries' slots, then its short entry's (always last).
    pub slots: Vec<Slot>,
}

impl Found {
    pub(crate) fn short_slot(&self) -> Slot {
        self.slots[self.slots.len() - 1]
    }

    /// Whether `name` names this entry: its long name or its 8.3 name, without case.
    pub(crate) fn answers_to(&self, name: &str) -> bool {
        entry::names_equal(&self.name, name) || entry::names_equal(&self.short.display_name(), name)
    }
}

/// A directory's entries as read: the live ones and where the free slots are.
pub(crate) struct Listing {
    pub entries: Vec<Found>,
    pub sectors: Vec<u64>,
    /// Per slot: free (deleted, or at or after the end mark).
    pub free: Vec<bool>,
    /// Index of the end mark (first entry starting with 0), or the slot count.
    pub end: usize,
}

/// The sectors holding `dir`'s entries, in order.
pub(crate) fn sectors<D: BlockDevice>(
    cache: &mut Cache<D>,
    g: &Geometry,
    dir: Dir,
) -> Result<Vec<u64>, Error> {
    match dir {
        Dir::Root16 => {
            let count = g.root_entries as usize / PER_SECTOR;
            Ok((0..count as u64)
                .map(|i| u64::from(g.root_sector) + i)
                .collect())
        }
        Dir::Chain(first) => {
            let max_clusters = (MAX_ENTRIES * ENTRY_SIZE).div_ceil(g.cluster_bytes() as usize);
            let clusters = table::chain_prefix(cache, g, first, max_clusters as u32 + 1)?;
            if clusters.len() > max_clusters {
                return Err(Corruption::DirectoryTooLarge.into());
            }
            let per = u64::from(g.sectors_per_cluster);
            Ok(clusters
                .iter()
                .flat_map(|&c| {
                    let start = g.cluster_sector(c);
                    (0..per).map(move |i| start + i)
                })
                .collect())
        }
    }
}

/// A long name being gathered, entry by entry (they come last part first).
struct Gathering {
    checksum: u8,
    /// The ordinal the next entry must have.
    expect: u8,
    units: Vec<u16>,
    slots: Vec<Slot>,
}

fn finish_long_name(g: Gathering, short: &ShortEntry) -> Option<String> {
    if g.expect != 0 || g.checksum != checksum(&short.name) {
        return None;
    }
    let len = g
        .units
        .iter()
        .position(|&u| u == 0)
        .unwrap_or(g.units.len());
    let name = String::from_utf16(&g.units[..len]).ok()?;
    crate::path::check_name(&name).ok()?;
    Some(name)
}

/// Reads every entry of `dir`.
pub(crate) fn list<D: BlockDevice>(
    cache: &mut Cache<D>,
    g: &Geometry,
    dir: Dir,
) -> Result<Listing, Error> {
    let sectors = sectors(cache, g, dir)?;
    let mut entries = Vec::new();
    let mut free = vec![true; sectors.len() * PER_SECTOR];
    let mut end = free.len();
    let mut gathering: Option<Gathering> = None;
    'sectors: for (n, &sector) in sectors.iter().enumerate() {
        let data = *cache.read(sector)?;
        for i in 0..PER_SECTOR {
            let index = n * PER_SECTOR + i;
            let raw = &data[i * ENTRY_SIZE..(i + 1) * ENTRY_SIZE];
            let slot = Slot {
                sector,
                offset: i * ENTRY_SIZE,
            };
            if raw[0] == 0 {
                end = index;
                break 'sectors;
            }
            if raw[0] == DELETED {
                gathering = None;
                continue;
            }
            free[index] = false;
            if raw[11] & 0x3F == ATTR_LONG_NAME {
                gathering = match (LongEntry::parse(raw), gathering.take()) {
                    (Some(e), _) if e.last => {
                        let mut units = vec![0xFFFF; usize::from(e.ordinal) * LFN_UNITS];
                        let at = usize::from(e.ordinal - 1) * LFN_UNITS;
                        units[at..at + LFN_UNITS].copy_from_slice(&e.units);
                        Some(Gathering {
                            checksum: e.checksum,
                            expect: e.ordinal - 1,
                            units,
                            slots: vec![slot],
                        })
                    }
                    (Some(e), Some(mut g))
                        if !e.last && e.ordinal == g.expect && e.checksum == g.checksum =>
                    {
                        let at = usize::from(e.ordinal - 1) * LFN_UNITS;
                        g.units[at..at + LFN_UNITS].copy_from_slice(&e.units);
                        g.expect -= 1;
                        g.slots.push(slot);
                        Some(g)
                    }
                    _ => None,
                };
                continue;
            }
            let short = ShortEntry::parse(raw);
            let pending = gathering.take();
            if short.attributes & ATTR_VOLUME != 0 {
                continue;
            }
            let (name, mut slots) = match pending {
                Some(g) => {
                    let slots = g.slots.clone();
                    match finish_long_name(g, &short) {
                        Some(name) => (name, slots),
                        None => (short.display_name(), Vec::new()),
                    }
                }
                None => (short.display_name(), Vec::new()),
            };
            slots.push(slot);
            entries.push(Found { name, short, slots });
        }
    }
    Ok(Listing {
        entries,
        sectors,
        free,
        end,
    })
}

impl Listing {
    /// The live entry `name` names (not `.` or `..`).
    pub(crate) fn find(&self, name: &str) -> Option<&Found> {
        self.entries
            .iter()
            .find(|f| !f.short.is_dot() && f.answers_to(name))
    }

    /// Whether `raw` is some entry's short name.
    pub(crate) fn short_name_taken(&self, raw: &[u8; 11]) -> bool {
        self.entries.iter().any(|f| &f.short.name == raw)
    }

    /// The first run of `count` free slots, inside one sector when `count` fits in one.
    pub(crate) fn find_run(&self, count: usize) -> Option<usize> {
        let mut start = 0;
        while start + count <= self.free.len() {
            let fits_sector = count > PER_SECTOR || start % PER_SECTOR + count <= PER_SECTOR;
            if !fits_sector {
                start = (start / PER_SECTOR + 1) * PER_SECTOR;
                continue;
            }
            match (start..start + count).find(|&i| !self.free[i]) {
                None => return Some(start),
                Some(used) => start = used + 1,
            }
        }
        None
    }

    /// The slot of entry `index`.
    pub(crate) fn slot(&self, index: usize) -> Slot {
        Slot {
            sector: self.sectors[index / PER_SECTOR],
            offset: (index % PER_SECTOR) * ENTRY_SIZE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(free: Vec<bool>) -> Listing {
        let end = free.len();
        Listing {
            entries: Vec::new(),
            sectors: (0..free.len().div_ceil(PER_SECTOR) as u64).collect(),
            free,
            end,
        }
    }

    #[test]
    fn runs_stay_inside_one_sector_when_they_fit() {
        let mut free = vec![true; 48];
        free[..10].iter_mut().for_each(|f| *f = false);
        let l = listing(free.clone());
        assert_eq!(l.find_run(3), Some(10));
        // 10..16 has six free slots: seven must start at the next sector.
        assert_eq!(l.find_run(7), Some(16));
        assert_eq!(l.find_run(17), Some(10));
        free[20] = false;
        let l = listing(free);
        assert_eq!(l.find_run(7), Some(21));
        assert_eq!(l.find_run(40), None);
    }
}
