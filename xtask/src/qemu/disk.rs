//! Disks for systems with a virtio-blk device: the QEMU drive and device that
//! `cargo xtask run|build` and the tests add, and the default image `target/disk.img`
//! (64 MiB, formatted FAT32 with `mkfs.fat` on first use) or the file `--disk` names.

use crate::Result;
use std::path::{Path, PathBuf};
use std::process::Command;
use sysdesc::{DeviceSelector, System};

/// The default image's size in MiB.
pub const DEFAULT_MIB: u64 = 64;

/// Whether `vendor:device` is a virtio-blk function QEMU emulates (modern only: the
/// driver refuses the transitional 1af4:1001).
pub fn is_disk(vendor: u16, device: u16) -> bool {
    (vendor, device) == (0x1af4, 0x1042)
}

/// The virtio-blk devices `system` describes, by name.
pub fn disks(system: &System) -> Vec<&str> {
    system
        .devices
        .iter()
        .filter(|d| {
            matches!(d.selector, DeviceSelector::Pci { vendor, device, .. } if is_disk(vendor, device))
        })
        .map(|d| d.name.as_str())
        .collect()
}

/// QEMU arguments attaching `image` (raw) as a modern virtio-blk function, drive `id`.
pub fn qemu_args(image: &Path, id: &str) -> Vec<String> {
    vec![
        "-drive".to_string(),
        format!("file={},if=none,format=raw,id={id}", image.display()),
        "-device".to_string(),
        format!("virtio-blk-pci,drive={id},disable-legacy=on"),
    ]
}

/// The default image: `target/disk.img`.
pub fn default_image() -> PathBuf {
    crate::target_dir().join("disk.img")
}

/// Makes `image` if it does not exist: `mib` MiB, formatted FAT32 by `mkfs.fat` (the host
/// packages come through `host::ensure`), with each step printed. An existing file is
/// used as it is.
pub fn ensure_fat_image(image: &Path, mib: u64) -> Result<()> {
    if image.exists() {
        crate::step(&format!("disk: {}", image.display()));
        return Ok(());
    }
    crate::host::ensure(crate::host::Purpose::Fat)?;
    crate::step(&format!("disk: creating {} ({mib} MiB)", image.display()));
    if let Some(dir) = image.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let partial = image.with_extension("img.partial");
    let file =
        std::fs::File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    file.set_len(mib << 20)
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    drop(file);
    crate::step("disk: formatting FAT32 with mkfs.fat");
    let mkfs = ["mkfs.fat", "/usr/sbin/mkfs.fat", "/sbin/mkfs.fat"]
        .into_iter()
        .find(|c| c.contains('/') && Path::new(c).is_file())
        .unwrap_or("mkfs.fat");
    let out = Command::new(mkfs)
        .args(["-F", "32", "-n", "TESSERA"])
        .arg(&partial)
        .output()
        .map_err(|e| format!("cannot run {mkfs}: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(format!(
            "mkfs.fat failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    std::fs::rename(&partial, image).map_err(|e| format!("{}: {e}", image.display()))?;
    crate::step(&format!("disk: {} ready", image.display()));
    Ok(())
}

/// Makes a zeroed scratch image of `bytes` bytes at `image` (replacing any), for tests.
pub fn scratch_image(image: &Path, bytes: u64) -> Result<()> {
    if let Some(dir) = image.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let file = std::fs::File::create(image).map_err(|e| format!("{}: {e}", image.display()))?;
    file.set_len(bytes)
        .map_err(|e| format!("{}: {e}", image.display()))
}

/// QEMU arguments for `system`'s disks: none without a virtio-blk device; otherwise the
/// first disk gets `image` (made and formatted when it is the default and missing; the
/// `--disk` file must exist). More than one disk is refused (one image to attach).
pub fn system_args(system: &System, image: Option<&Path>) -> Result<Vec<String>> {
    let found = disks(system);
    match found.len() {
        0 => Ok(Vec::new()),
        1 => {
            let path = match image {
                Some(p) if p.exists() => p.to_path_buf(),
                Some(p) => return Err(format!("--disk {}: no such file", p.display())),
                None => {
                    let p = default_image();
                    ensure_fat_image(&p, DEFAULT_MIB)?;
                    p
                }
            };
            Ok(qemu_args(&path, "disk0"))
        }
        n => Err(format!("{n} virtio-blk devices; xtask attaches one disk")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drive_is_raw_and_the_device_modern() {
        let args = qemu_args(Path::new("/tmp/x.img"), "disk0");
        assert_eq!(
            args,
            [
                "-drive",
                "file=/tmp/x.img,if=none,format=raw,id=disk0",
                "-device",
                "virtio-blk-pci,drive=disk0,disable-legacy=on"
            ]
        );
        assert!(is_disk(0x1af4, 0x1042));
        assert!(!is_disk(0x1af4, 0x1041), "virtio-net");
    }

    #[test]
    fn only_systems_with_a_virtio_blk_device_get_a_disk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let load = |f: &str| crate::build::load_system(&root.join(f)).unwrap();
        let files = load("systems/files.toml");
        assert_eq!(disks(&files), ["disk0"]);
        let default = load("systems/default.toml");
        assert!(system_args(&default, None).unwrap().is_empty());
        let missing = Path::new("/nonexistent/disk.img");
        assert!(system_args(&files, Some(missing))
            .unwrap_err()
            .contains("no such file"));
    }

    #[test]
    fn a_scratch_image_has_the_asked_size() {
        let path = std::env::temp_dir().join(format!("tessera-scratch-{}.img", std::process::id()));
        scratch_image(&path, 1 << 20).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
        std::fs::remove_file(&path).unwrap();
    }
}
