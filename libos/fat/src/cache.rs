//! A write-back sector cache that writes in epochs: every sector dirtied in epoch `e` reaches
//! the device (and the device is flushed) before any sector of epoch `e + 1`.
//!
//! Callers put a [`Cache::barrier`] between writes that must be ordered. A sector dirtied in
//! an older epoch and changed again in a newer one would carry the newer change back in time,
//! so before such a change every older epoch is written out first.

use crate::device::{BlockDevice, Sector, SECTOR_SIZE};
use crate::error::Error;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

struct Slot {
    sector: u64,
    data: Box<Sector>,
    /// The epoch of the first change not yet written, if any.
    dirty: Option<u64>,
    last_use: u64,
}

/// Counts of the cache's traffic (for tests and measurements).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Sectors read from the device.
    pub reads: u64,
    /// Sectors written to the device.
    pub writes: u64,
    /// Device flushes.
    pub flushes: u64,
}

pub(crate) struct Cache<D> {
    device: D,
    slots: Vec<Slot>,
    index: BTreeMap<u64, usize>,
    capacity: usize,
    epoch: u64,
    tick: u64,
    stats: CacheStats,
}

impl<D: BlockDevice> Cache<D> {
    pub(crate) fn new(device: D, capacity: usize) -> Self {
        Cache {
            device,
            slots: Vec::new(),
            index: BTreeMap::new(),
            capacity: capacity.max(4),
            epoch: 0,
            tick: 0,
            stats: CacheStats::default(),
        }
    }

    pub(crate) fn device(&self) -> &D {
        &self.device
    }

    pub(crate) fn into_device(self) -> D {
        self.device
    }

    pub(crate) fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The sector's bytes, read from the device when not cached.
    pub(crate) fn read(&mut self, sector: u64) -> Result<&Sector, Error> {
        let slot = self.slot(sector, true)?;
        Ok(&self.slots[slot].data)
    }

    /// Changes the sector through `change` (reading it first when not cached); the change
    /// belongs to the current epoch.
    pub(crate) fn modify<R>(
        &mut self,
        sector: u64,
        change: impl FnOnce(&mut Sector) -> R,
    ) -> Result<R, Error> {
        let slot = self.slot(sector, true)?;
        let slot = self.make_dirty(slot, sector)?;
        Ok(change(&mut self.slots[slot].data))
    }

    /// Replaces the sector's whole content without reading it.
    pub(crate) fn overwrite(&mut self, sector: u64, data: &Sector) -> Result<(), Error> {
        let slot = self.slot(sector, false)?;
        let slot = self.make_dirty(slot, sector)?;
        self.slots[slot].data.copy_from_slice(data);
        Ok(())
    }

    /// Orders what follows after everything changed so far.
    pub(crate) fn barrier(&mut self) {
        if self.slots.iter().any(|s| s.dirty == Some(self.epoch)) {
            self.epoch += 1;
        }
    }

    /// Writes every dirty sector, epoch by epoch, flushing the device after each.
    pub(crate) fn sync(&mut self) -> Result<(), Error> {
        self.write_out(u64::MAX)?;
        self.epoch += 1;
        Ok(())
    }

    /// Writes out every epoch below `limit`, in order.
    fn write_out(&mut self, limit: u64) -> Result<(), Error> {
        loop {
            let oldest = self
                .slots
                .iter()
                .filter_map(|s| s.dirty)
                .filter(|&e| e < limit)
                .min();
            let Some(epoch) = oldest else {
                return Ok(());
            };
            let mut batch: Vec<usize> = (0..self.slots.len())
                .filter(|&i| self.slots[i].dirty == Some(epoch))
                .collect();
            batch.sort_by_key(|&i| self.slots[i].sector);
            for i in batch {
                self.device
                    .write(self.slots[i].sector, &self.slots[i].data)?;
                self.stats.writes += 1;
                self.slots[i].dirty = None;
            }
            self.device.flush()?;
            self.stats.flushes += 1;
        }
    }

    fn make_dirty(&mut self, slot: usize, sector: u64) -> Result<usize, Error> {
        match self.slots[slot].dirty {
            Some(e) if e < self.epoch => {
                // The older content must reach the device before this change can.
                self.write_out(self.epoch)?;
            }
            _ => {}
        }
        // Writing out never evicts, so the slot still holds this sector.
        debug_assert_eq!(self.slots[slot].sector, sector);
        if self.slots[slot].dirty.is_none() {
            self.slots[slot].dirty = Some(self.epoch);
        }
        Ok(slot)
    }

    fn slot(&mut self, sector: u64, load: bool) -> Result<usize, Error> {
        self.tick += 1;
        if let Some(&i) = self.index.get(&sector) {
            self.slots[i].last_use = self.tick;
            return Ok(i);
        }
        let mut data = Box::new([0u8; SECTOR_SIZE]);
        if load {
            self.device.read(sector, &mut data)?;
            self.stats.reads += 1;
        } else if sector >= self.device.sector_count() {
            return Err(crate::device::DeviceError::OutOfRange.into());
        }
        let slot = Slot {
            sector,
            data,
            dirty: None,
            last_use: self.tick,
        };
        let i = if self.slots.len() < self.capacity {
            self.slots.push(slot);
            self.slots.len() - 1
        } else {
            let victim = self.victim()?;
            self.index.remove(&self.slots[victim].sector);
            self.slots[victim] = slot;
            victim
        };
        self.index.insert(sector, i);
        Ok(i)
    }

    /// The least recently used clean slot, writing everything out when none is clean.
    fn victim(&mut self) -> Result<usize, Error> {
        let clean = |slots: &[Slot]| {
            (0..slots.len())
                .filter(|&i| slots[i].dirty.is_none())
                .min_by_key(|&i| slots[i].last_use)
        };
        if let Some(i) = clean(&self.slots) {
            return Ok(i);
        }
        self.write_out(u64::MAX)?;
        self.epoch += 1;
        Ok(clean(&self.slots).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{DeviceError, MemoryDevice};

    /// Records the order of writes and flushes.
    struct Log {
        inner: MemoryDevice,
        events: Vec<Option<u64>>,
    }

    impl BlockDevice for Log {
        fn sector_count(&self) -> u64 {
            self.inner.sector_count()
        }
        fn read(&mut self, sector: u64, buffer: &mut Sector) -> Result<(), DeviceError> {
            self.inner.read(sector, buffer)
        }
        fn write(&mut self, sector: u64, data: &Sector) -> Result<(), DeviceError> {
            self.events.push(Some(sector));
            self.inner.write(sector, data)
        }
        fn flush(&mut self) -> Result<(), DeviceError> {
            self.events.push(None);
            Ok(())
        }
    }

    fn log() -> Log {
        Log {
            inner: MemoryDevice::zeroed(64),
            events: Vec::new(),
        }
    }

    #[test]
    fn epochs_reach_the_device_in_order() {
        let mut cache = Cache::new(log(), 16);
        cache.modify(9, |s| s[0] = 1).unwrap();
        cache.modify(3, |s| s[0] = 1).unwrap();
        cache.barrier();
        cache.modify(1, |s| s[0] = 2).unwrap();
        cache.barrier();
        cache.barrier();
        cache.modify(5, |s| s[0] = 3).unwrap();
        assert!(
            cache.device().events.is_empty(),
            "nothing written before sync"
        );
        cache.sync().unwrap();
        assert_eq!(
            cache.device().events,
            [Some(3), Some(9), None, Some(1), None, Some(5), None]
        );
        assert_eq!(cache.device().inner.as_bytes()[512 * 5], 3);
    }

    #[test]
    fn changing_an_older_dirty_sector_writes_the_older_epochs_first() {
        let mut cache = Cache::new(log(), 16);
        cache.modify(2, |s| s[0] = 1).unwrap();
        cache.barrier();
        cache.modify(4, |s| s[0] = 1).unwrap();
        cache.barrier();
        cache.modify(2, |s| s[0] = 7).unwrap();
        // Epochs 0 and 1 are out, with sector 2's older content.
        assert_eq!(cache.device().events, [Some(2), None, Some(4), None]);
        assert_eq!(cache.device().inner.as_bytes()[512 * 2], 1);
        cache.sync().unwrap();
        assert_eq!(cache.device().inner.as_bytes()[512 * 2], 7);
    }

    #[test]
    fn eviction_keeps_every_change() {
        let mut cache = Cache::new(MemoryDevice::zeroed(64), 4);
        for sector in 0..20u64 {
            cache.modify(sector, |s| s[1] = sector as u8 + 1).unwrap();
            if sector % 3 == 0 {
                cache.barrier();
            }
        }
        for sector in 0..20u64 {
            assert_eq!(cache.read(sector).unwrap()[1], sector as u8 + 1);
        }
        cache.sync().unwrap();
        let device = cache.into_device();
        for sector in 0..20usize {
            assert_eq!(device.as_bytes()[sector * 512 + 1], sector as u8 + 1);
        }
    }
}
