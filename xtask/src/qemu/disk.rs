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

/// The path of host tool `name` from dosfstools or mtools (dosfstools installs to
/// /usr/sbin, which an ordinary user's PATH may lack); `name` itself if none is found.
pub fn fat_tool(name: &str) -> PathBuf {
    ["/usr/bin", "/usr/sbin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// What `fsck.fat -n` found on a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fsck {
    /// Nothing wrong.
    Clean,
    /// Only clusters that no file owns (`Reclaimed N unused clusters`, and the free count
    /// that goes with them): what a crash between two ordered writes may leave.
    LostClusters(u64),
    /// Anything else, with the lines that say so.
    Damaged(Vec<String>),
}

/// Reads the output of `fsck.fat -n` (see [`Fsck`]).
pub fn classify_fsck(output: &str) -> Fsck {
    let mut lost = 0;
    let mut problems = Vec::new();
    for line in output.lines().map(str::trim) {
        let harmless = line.is_empty()
            || line.starts_with("fsck.fat ")
            || line.starts_with("Leaving filesystem unchanged")
            || line.starts_with("Auto-correcting")
            || line.starts_with("Free cluster summary wrong")
            || (line.contains(" files, ") && line.contains(" clusters"));
        if let Some(rest) = line.strip_prefix("Reclaimed ") {
            lost += rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        } else if !harmless {
            problems.push(line.to_string());
        }
    }
    match (problems.is_empty(), lost) {
        (false, _) => Fsck::Damaged(problems),
        (true, 0) => Fsck::Clean,
        (true, n) => Fsck::LostClusters(n),
    }
}

/// The bytes of file `path` (`::/dir/name`) on the FAT volume `image`, as the host reads
/// them with mtools' `mtype`.
pub fn mtype(image: &Path, path: &str) -> Result<Vec<u8>> {
    let out = Command::new(fat_tool("mtype"))
        .arg("-i")
        .arg(image)
        .arg(path)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .map_err(|e| format!("cannot run mtype: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mtype {path}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// Runs `fsck.fat -n` (changes nothing) on `image` and reads what it found.
pub fn fsck(image: &Path) -> Result<Fsck> {
    let out = Command::new(fat_tool("fsck.fat"))
        .arg("-n")
        .arg(image)
        .output()
        .map_err(|e| format!("cannot run fsck.fat: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let found = classify_fsck(&text);
    if !out.status.success() && found == Fsck::Clean {
        return Err(format!("fsck.fat -n {} failed: {text}", image.display()));
    }
    Ok(found)
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

/// Whether `boot` (a disk's first sector) is a FAT boot sector as the file service reads
/// it: the 0x55 0xAA signature, a jump instruction, 512-byte sectors, and `FAT` in the
/// FAT16 or FAT32 type field.
pub fn looks_fat(boot: &[u8]) -> bool {
    boot.len() >= 512
        && boot[510..512] == [0x55, 0xaa]
        && matches!(boot[0], 0xeb | 0xe9)
        && u16::from_le_bytes([boot[11], boot[12]]) == 512
        && (boot[54..57] == *b"FAT" || boot[82..85] == *b"FAT")
}

/// Refuses `image` for a system that runs the file service (`fs`) if it holds no FAT
/// volume: `fs` would end at start. Another system's disk is raw and not looked at.
fn check_volume(system: &System, image: &Path) -> Result<()> {
    if !system.components.iter().any(|c| c.binary == "fs") {
        return Ok(());
    }
    let mut boot = vec![0u8; 512];
    let read = std::fs::File::open(image)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut boot))
        .map_err(|e| format!("{}: {e}", image.display()));
    if read.is_ok() && looks_fat(&boot) {
        return Ok(());
    }
    Err(format!(
        "{} holds no FAT volume, which the file service (fs) needs (another system may have \
         written over it): remove it to have a fresh one made, or run `mkfs.fat` on it",
        image.display()
    ))
}

/// QEMU arguments for `system`'s disks: none without a virtio-blk device; otherwise the
/// first disk gets `image` (made and formatted when it is the default and missing; the
/// `--disk` file must exist; a system with the file service needs a FAT volume on it).
/// More than one disk is refused (one image to attach).
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
            check_volume(system, &path)?;
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
    fn the_file_service_gets_a_fat_volume_or_a_clear_refusal() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let files = crate::build::load_system(&root.join("systems/files.toml")).unwrap();
        let blk = crate::build::load_system(&root.join("systems/tests/blk.toml")).unwrap();
        let path = std::env::temp_dir().join(format!("tessera-notfat-{}.img", std::process::id()));
        scratch_image(&path, 1 << 20).unwrap();
        let refused = system_args(&files, Some(&path)).unwrap_err();
        assert!(refused.contains("holds no FAT volume"), "{refused}");
        assert_eq!(
            system_args(&blk, Some(&path)).unwrap().len(),
            4,
            "raw is fine for blk"
        );
        let mkfs = ["/usr/sbin/mkfs.fat", "/sbin/mkfs.fat", "/usr/bin/mkfs.fat"]
            .into_iter()
            .find(|p| Path::new(p).is_file());
        if let Some(mkfs) = mkfs {
            std::fs::remove_file(&path).unwrap();
            let made = Command::new(mkfs)
                .args(["-F", "16", "-C"])
                .arg(&path)
                .arg("16384")
                .output()
                .unwrap();
            assert!(made.status.success());
            assert_eq!(system_args(&files, Some(&path)).unwrap().len(), 4);
        }
        std::fs::remove_file(&path).unwrap();
        let mut boot = vec![0u8; 512];
        assert!(!looks_fat(&boot));
        boot[0] = 0xeb;
        boot[11..13].copy_from_slice(&512u16.to_le_bytes());
        boot[82..85].copy_from_slice(b"FAT");
        assert!(!looks_fat(&boot), "no signature");
        boot[510..512].copy_from_slice(&[0x55, 0xaa]);
        assert!(looks_fat(&boot));
    }

    #[test]
    fn fsck_output_is_clean_lost_clusters_or_damage() {
        let clean = "fsck.fat 4.2 (2021-01-31)\nt.img: 0 files, 1/129022 clusters\n";
        assert_eq!(classify_fsck(clean), Fsck::Clean);
        let lost =
            "fsck.fat 4.2 (2021-01-31)\nReclaimed 3 unused clusters (1536 bytes in 2 chains).\n\
            Free cluster summary wrong (129020 vs. really 129021)\n  Auto-correcting.\n\n\
            Leaving filesystem unchanged.\nt.img: 0 files, 1/129022 clusters\n";
        assert_eq!(classify_fsck(lost), Fsck::LostClusters(3));
        let damaged = "fsck.fat 4.2 (2021-01-31)\n/LOG.TXT\n  File size is 9000 bytes, cluster chain length is 4096 bytes.\n  Truncating file to 4096 bytes.\nReclaimed 1 unused cluster (512 bytes).\n";
        match classify_fsck(damaged) {
            Fsck::Damaged(lines) => assert_eq!(lines.len(), 3, "{lines:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_scratch_image_has_the_asked_size() {
        let path = std::env::temp_dir().join(format!("tessera-scratch-{}.img", std::process::id()));
        scratch_image(&path, 1 << 20).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
        std::fs::remove_file(&path).unwrap();
    }
}
