//! Starting the service: the volume mounted with the description's settings, or the one-line
//! reason it was refused.

use crate::config::Config;
use alloc::format;
use alloc::string::String;
use libos_fat::{BlockDevice, FileSystem, Options};

/// Mounts the volume on `device` read-write with `config`'s cache size.
///
/// Fails with one line saying why: a damaged boot sector or layout (`damaged volume: ...`),
/// a format this service does not read (FAT12, not FAT), or a device error.
pub fn mount<D: BlockDevice>(device: D, config: &Config) -> Result<FileSystem<D>, String> {
    let options = Options {
        read_only: false,
        cache_sectors: config.cache_sectors,
    };
    FileSystem::mount_with(device, options).map_err(|e| format!("cannot mount the volume: {e}"))
}
