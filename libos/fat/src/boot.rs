//! The boot sector (BIOS parameter block) and the FAT32 FSInfo sector, parsed into a
//! validated [`Geometry`].

use crate::device::{Sector, SECTOR_SIZE};
use crate::error::{Corruption, Error, Unsupported};

/// Which FAT variant a volume is, decided (as the specification says) by its cluster count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    /// 4,085 to 65,524 clusters, 16-bit FAT entries, a fixed root directory.
    Fat16,
    /// 65,525 clusters or more, 28-bit FAT entries, the root directory in a cluster chain.
    Fat32,
}

/// A volume's layout, every field checked against the others and the device's size.
///
/// Invariants: sectors are 512 bytes; `first_data_sector + cluster_count *
/// sectors_per_cluster <= total_sectors <= device sectors`; each FAT holds an entry for
/// every cluster; the FAT32 root cluster is a valid cluster number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// FAT16 or FAT32.
    pub fat_type: FatType,
    /// Sectors in one cluster (a power of two, 1 to 128).
    pub sectors_per_cluster: u32,
    /// Sectors before the first FAT.
    pub reserved_sectors: u32,
    /// FAT copies (1 or 2), all kept identical.
    pub fat_count: u32,
    /// Sectors in each FAT.
    pub fat_sectors: u32,
    /// FAT16: entries in the fixed root directory; FAT32: 0.
    pub root_entries: u32,
    /// FAT16: the root directory's first sector.
    pub root_sector: u32,
    /// The first sector of cluster 2.
    pub first_data_sector: u32,
    /// Sectors in the volume.
    pub total_sectors: u32,
    /// Data clusters: valid cluster numbers are `2..cluster_count + 2`.
    pub cluster_count: u32,
    /// FAT32: the root directory's first cluster; FAT16: 0.
    pub root_cluster: u32,
    /// FAT32: the FSInfo sector (0 when the volume has none).
    pub fs_info_sector: u32,
}

fn u16_at(s: &Sector, at: usize) -> u16 {
    u16::from_le_bytes([s[at], s[at + 1]])
}

fn u32_at(s: &Sector, at: usize) -> u32 {
    u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]])
}

impl Geometry {
    /// Parses and checks boot sector `boot` of a device of `device_sectors` sectors.
    ///
    /// Fails with [`Error::Corrupt`] naming the first field that is wrong, or
    /// [`Error::Unsupported`] for FAT12 and exFAT.
    pub fn parse(boot: &Sector, device_sectors: u64) -> Result<Geometry, Error> {
        if boot[510] != 0x55 || boot[511] != 0xAA || !(boot[0] == 0xEB || boot[0] == 0xE9) {
            return Err(Corruption::BootSignature.into());
        }
        if &boot[3..11] == b"EXFAT   " {
            return Err(Error::Unsupported(Unsupported::NotFat));
        }
        if usize::from(u16_at(boot, 11)) != SECTOR_SIZE {
            return Err(Corruption::SectorSize.into());
        }
        let sectors_per_cluster = u32::from(boot[13]);
        if sectors_per_cluster == 0 || !sectors_per_cluster.is_power_of_two() {
            return Err(Corruption::ClusterSize.into());
        }
        let reserved_sectors = u32::from(u16_at(boot, 14));
        if reserved_sectors == 0 {
            return Err(Corruption::ReservedSectors.into());
        }
        let fat_count = u32::from(boot[16]);
        if !(1..=2).contains(&fat_count) {
            return Err(Corruption::FatCount.into());
        }
        let root_entries = u32::from(u16_at(boot, 17));
        if (root_entries * 32) % SECTOR_SIZE as u32 != 0 {
            return Err(Corruption::RootEntries.into());
        }
        let media = boot[21];
        if media != 0xF0 && media < 0xF8 {
            return Err(Corruption::MediaDescriptor.into());
        }
        let total16 = u32::from(u16_at(boot, 19));
        let total32 = u32_at(boot, 32);
        let total_sectors = match (total16, total32) {
            (0, 0) => return Err(Corruption::TotalSectors.into()),
            (0, t) => t,
            (t, 0) => t,
            (a, b) if a == b => a,
            _ => return Err(Corruption::TotalSectors.into()),
        };
        if u64::from(total_sectors) > device_sectors {
            return Err(Corruption::BeyondDevice.into());
        }
        let fat16_size = u32::from(u16_at(boot, 22));
        let fat_sectors = if fat16_size != 0 {
            fat16_size
        } else {
            u32_at(boot, 36)
        };
        if fat_sectors == 0 {
            return Err(Corruption::FatSize.into());
        }
        let root_sectors = root_entries * 32 / SECTOR_SIZE as u32;
        let first_data_sector = u64::from(reserved_sectors)
            + u64::from(fat_count) * u64::from(fat_sectors)
            + u64::from(root_sectors);
        if first_data_sector >= u64::from(total_sectors) {
            return Err(Corruption::NoDataArea.into());
        }
        // Fits in u32: it is below total_sectors.
        let first_data_sector = first_data_sector as u32;
        let cluster_count = (total_sectors - first_data_sector) / sectors_per_cluster;
        let fat_type = if cluster_count < 4085 {
            return Err(Error::Unsupported(Unsupported::Fat12));
        } else if cluster_count < 65525 {
            FatType::Fat16
        } else {
            FatType::Fat32
        };
        let entry_bytes = match fat_type {
            FatType::Fat16 => 2,
            FatType::Fat32 => 4,
        };
        let fat_bytes = u64::from(fat_sectors) * SECTOR_SIZE as u64;
        if fat_bytes < (u64::from(cluster_count) + 2) * entry_bytes {
            return Err(Corruption::FatSize.into());
        }
        let (root_cluster, fs_info_sector) = match fat_type {
            FatType::Fat16 => {
                if root_entries == 0 {
                    return Err(Corruption::RootEntries.into());
                }
                (0, 0)
            }
            FatType::Fat32 => {
                if root_entries != 0 {
                    return Err(Corruption::RootEntries.into());
                }
                if fat16_size != 0 {
                    return Err(Corruption::FatSize.into());
                }
                if u16_at(boot, 42) != 0 {
                    return Err(Corruption::Version.into());
                }
                let root = u32_at(boot, 44);
                if root < 2 || root >= cluster_count + 2 {
                    return Err(Corruption::RootCluster.into());
                }
                let info = u32::from(u16_at(boot, 48));
                let info = match info {
                    0 | 0xFFFF => 0,
                    n if n < reserved_sectors => n,
                    _ => return Err(Corruption::FsInfoSector.into()),
                };
                (root, info)
            }
        };
        Ok(Geometry {
            fat_type,
            sectors_per_cluster,
            reserved_sectors,
            fat_count,
            fat_sectors,
            root_entries,
            root_sector: reserved_sectors + fat_count * fat_sectors,
            first_data_sector,
            total_sectors,
            cluster_count,
            root_cluster,
            fs_info_sector,
        })
    }

    /// Bytes in one cluster.
    pub fn cluster_bytes(&self) -> u32 {
        self.sectors_per_cluster * SECTOR_SIZE as u32
    }

    /// Whether `cluster` names a data cluster.
    pub fn is_cluster(&self, cluster: u32) -> bool {
        cluster >= 2 && cluster < self.cluster_count + 2
    }

    /// The first sector of data cluster `cluster` (which must satisfy
    /// [`is_cluster`](Self::is_cluster)).
    pub fn cluster_sector(&self, cluster: u32) -> u64 {
        u64::from(self.first_data_sector)
            + u64::from(cluster - 2) * u64::from(self.sectors_per_cluster)
    }
}

/// What a FAT32 FSInfo sector suggests; hints only, each checked against the geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsInfo {
    /// The free cluster count, when present and not larger than the volume.
    pub free_clusters: Option<u32>,
    /// Where to start looking for a free cluster, when it names a valid cluster.
    pub next_free: Option<u32>,
}

const FS_INFO_LEAD: u32 = 0x4161_5252;
const FS_INFO_STRUCT: u32 = 0x6141_7272;
const FS_INFO_TRAIL: u32 = 0xAA55_0000;

impl FsInfo {
    /// Reads the hints in `sector`; a sector without the three signatures gives none.
    pub fn parse(sector: &Sector, geometry: &Geometry) -> FsInfo {
        if u32_at(sector, 0) != FS_INFO_LEAD
            || u32_at(sector, 484) != FS_INFO_STRUCT
            || u32_at(sector, 508) != FS_INFO_TRAIL
        {
            return FsInfo::default();
        }
        let free = u32_at(sector, 488);
        let next = u32_at(sector, 492);
        FsInfo {
            free_clusters: (free <= geometry.cluster_count).then_some(free),
            next_free: geometry.is_cluster(next).then_some(next),
        }
    }

    /// Writes these hints into `sector` (an FSInfo sector), keeping its other bytes.
    pub fn store(&self, sector: &mut Sector) {
        sector[0..4].copy_from_slice(&FS_INFO_LEAD.to_le_bytes());
        sector[484..488].copy_from_slice(&FS_INFO_STRUCT.to_le_bytes());
        sector[508..512].copy_from_slice(&FS_INFO_TRAIL.to_le_bytes());
        let free = self.free_clusters.unwrap_or(u32::MAX);
        let next = self.next_free.unwrap_or(u32::MAX);
        sector[488..492].copy_from_slice(&free.to_le_bytes());
        sector[492..496].copy_from_slice(&next.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT16 boot sector like mkfs.fat makes for a 16 MiB volume.
    fn fat16() -> Sector {
        let mut s = [0u8; SECTOR_SIZE];
        s[0] = 0xEB;
        s[11..13].copy_from_slice(&512u16.to_le_bytes());
        s[13] = 4;
        s[14..16].copy_from_slice(&4u16.to_le_bytes());
        s[16] = 2;
        s[17..19].copy_from_slice(&512u16.to_le_bytes());
        s[19..21].copy_from_slice(&32768u16.to_le_bytes());
        s[21] = 0xF8;
        s[22..24].copy_from_slice(&32u16.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    #[test]
    fn parses_a_fat16_layout() {
        let g = Geometry::parse(&fat16(), 32768).unwrap();
        assert_eq!(g.fat_type, FatType::Fat16);
        assert_eq!(g.root_sector, 4 + 64);
        assert_eq!(g.first_data_sector, 4 + 64 + 32);
        assert_eq!(g.cluster_count, (32768 - 100) / 4);
        assert_eq!(g.cluster_sector(2), 100);
    }

    #[test]
    fn refuses_each_bad_field() {
        type Damage = fn(&mut Sector);
        let cases: [(Damage, Error); 8] = [
            (|s| s[510] = 0, Corruption::BootSignature.into()),
            (|s| s[12] = 4, Corruption::SectorSize.into()),
            (|s| s[13] = 3, Corruption::ClusterSize.into()),
            (|s| s[14] = 0, Corruption::ReservedSectors.into()),
            (|s| s[16] = 3, Corruption::FatCount.into()),
            (|s| s[17] = 1, Corruption::RootEntries.into()),
            (|s| s[22] = 1, Corruption::FatSize.into()),
            (|s| s[21] = 0x12, Corruption::MediaDescriptor.into()),
        ];
        for (damage, expected) in cases {
            let mut s = fat16();
            damage(&mut s);
            assert_eq!(Geometry::parse(&s, 32768), Err(expected));
        }
        assert_eq!(
            Geometry::parse(&fat16(), 1000),
            Err(Corruption::BeyondDevice.into())
        );
        let mut small = fat16();
        small[19..21].copy_from_slice(&8000u16.to_le_bytes());
        assert_eq!(
            Geometry::parse(&small, 32768),
            Err(Error::Unsupported(Unsupported::Fat12))
        );
    }

    #[test]
    fn fs_info_hints_out_of_range_are_dropped() {
        let g = Geometry::parse(&fat16(), 32768).unwrap();
        let mut s = [0u8; SECTOR_SIZE];
        FsInfo {
            free_clusters: Some(10),
            next_free: Some(7),
        }
        .store(&mut s);
        assert_eq!(
            FsInfo::parse(&s, &g),
            FsInfo {
                free_clusters: Some(10),
                next_free: Some(7)
            }
        );
        s[488..492].copy_from_slice(&(g.cluster_count + 1).to_le_bytes());
        s[492..496].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(FsInfo::parse(&s, &g), FsInfo::default());
        s[0] = 0;
        assert_eq!(FsInfo::parse(&s, &g), FsInfo::default());
    }
}
