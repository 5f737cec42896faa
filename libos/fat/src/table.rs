//! The file allocation table: reading and following chains with every entry checked, and
//! writing entries to every FAT copy.

use crate::boot::{FatType, Geometry};
use crate::cache::Cache;
use crate::device::{BlockDevice, SECTOR_SIZE};
use crate::error::{Corruption, Error};
use alloc::vec::Vec;

/// What one FAT entry says about its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// The cluster is free.
    Free,
    /// The chain continues at this (valid) cluster.
    Next(u32),
    /// The chain ends here.
    End,
    /// Anything else: a bad-cluster mark, a reserved value, a cluster out of range.
    Invalid,
}

impl Geometry {
    fn entry_position(&self, cluster: u32) -> (u64, usize) {
        let bytes = match self.fat_type {
            FatType::Fat16 => 2u64,
            FatType::Fat32 => 4,
        };
        let offset = u64::from(cluster) * bytes;
        (
            u64::from(self.reserved_sectors) + offset / SECTOR_SIZE as u64,
            (offset % SECTOR_SIZE as u64) as usize,
        )
    }

    fn end_mark(&self) -> u32 {
        match self.fat_type {
            FatType::Fat16 => 0xFFFF,
            FatType::Fat32 => 0x0FFF_FFFF,
        }
    }

    fn classify(&self, raw: u32) -> Entry {
        let (end, bad) = match self.fat_type {
            FatType::Fat16 => (0xFFF8, 0xFFF7),
            FatType::Fat32 => (0x0FFF_FFF8, 0x0FFF_FFF7),
        };
        match raw {
            0 => Entry::Free,
            r if r >= end => Entry::End,
            r if r == bad => Entry::Invalid,
            r if self.is_cluster(r) => Entry::Next(r),
            _ => Entry::Invalid,
        }
    }
}

/// The FAT entry of `cluster` (a valid cluster), read from the first FAT.
pub(crate) fn get<D: BlockDevice>(
    cache: &mut Cache<D>,
    g: &Geometry,
    cluster: u32,
) -> Result<Entry, Error> {
    debug_assert!(g.is_cluster(cluster));
    let (sector, at) = g.entry_position(cluster);
    let s = cache.read(sector)?;
    let raw = match g.fat_type {
        FatType::Fat16 => u32::from(u16::from_le_bytes([s[at], s[at + 1]])),
        FatType::Fat32 => {
            u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]) & 0x0FFF_FFFF
        }
    };
    Ok(g.classify(raw))
}

/// Sets the FAT entry of `cluster` in every FAT copy (first FAT first).
pub(crate) fn set<D: BlockDevice>(
    cache: &mut Cache<D>,
    g: &Geometry,
    cluster: u32,
    value: Entry,
) -> Result<(), Error> {
    debug_assert!(g.is_cluster(cluster));
    let raw = match value {
        Entry::Free => 0,
        Entry::Next(n) => n,
        Entry::End | Entry::Invalid => g.end_mark(),
    };
    let (sector, at) = g.entry_position(cluster);
    for copy in 0..g.fat_count {
        let sector = sector + u64::from(copy) * u64::from(g.fat_sectors);
        cache.modify(sector, |s| match g.fat_type {
            FatType::Fat16 => s[at..at + 2].copy_from_slice(&(raw as u16).to_le_bytes()),
            FatType::Fat32 => {
                let old = u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]);
                let new = (old & 0xF000_0000) | raw;
                s[at..at + 4].copy_from_slice(&new.to_le_bytes());
            }
        })?;
    }
    Ok(())
}

/// The first `want` clusters of the chain starting at `first` (fewer when the chain ends
/// sooner; 0 gives an empty chain; `u32::MAX` the whole chain).
///
/// Fails with [`Corruption::DirectoryEntry`] when `first` is not a cluster,
/// [`Corruption::Chain`] when an entry is free, bad or out of range, and
/// [`Corruption::ChainLoop`] when the chain is longer than the volume.
pub(crate) fn chain_prefix<D: BlockDevice>(
    cache: &mut Cache<D>,
    g: &Geometry,
    first: u32,
    want: u32,
) -> Result<Vec<u32>, Error> {
    let mut clusters = Vec::new();
    if first == 0 || want == 0 {
        return Ok(clusters);
    }
    if !g.is_cluster(first) {
        return Err(Corruption::DirectoryEntry.into());
    }
    let mut current = first;
    loop {
        if clusters.len() as u32 >= g.cluster_count {
            return Err(Corruption::ChainLoop.into());
        }
        clusters.push(current);
        if clusters.len() as u32 >= want {
            return Ok(clusters);
        }
        match get(cache, g, current)? {
            Entry::End => return Ok(clusters),
            Entry::Next(next) => current = next,
            Entry::Free | Entry::Invalid => return Err(Corruption::Chain.into()),
        }
    }
}

/// Counts the free clusters by reading the whole FAT.
pub(crate) fn count_free<D: BlockDevice>(cache: &mut Cache<D>, g: &Geometry) -> Result<u32, Error> {
    let mut free = 0;
    for cluster in 2..g.cluster_count + 2 {
        if get(cache, g, cluster)? == Entry::Free {
            free += 1;
        }
    }
    Ok(free)
}
