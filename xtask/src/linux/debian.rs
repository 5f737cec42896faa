//! Debian packages for the Linux guest: downloaded once with `apt-get download` into a
//! cache folder, then unpacked with `dpkg-deb -x` into one tree.

use crate::{step, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The meta package that names the current generic amd64 kernel (its image package
/// carries `e1000e` and `virtio_net` as modules; the `cloud` flavour has no e1000e).
pub const KERNEL_META: &str = "linux-image-amd64";

/// The user-space packages the guest needs: busybox for init and the shell, and iperf3
/// with the libraries its `DT_NEEDED` entries name (checked when the initramfs is built).
pub const USER_PACKAGES: &[&str] = &[
    "busybox-static",
    "iperf3",
    "libiperf0",
    "libc6",
    "libsctp1",
    "libssl3",
];

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The `.deb` of `package` in `dir`, if one was downloaded before.
fn cached(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// The kernel image package a cached `.deb` holds (`linux-image-<abi>-amd64`), if any.
fn cached_kernel(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.strip_suffix(".deb").map(str::to_string))
        .filter_map(|n| n.split('_').next().map(str::to_string))
        .filter(|p| is_kernel_image_package(p))
        .collect();
    names.sort();
    names.pop()
}

/// Whether `package` is a versioned generic kernel image (`linux-image-6.1.0-56-amd64`),
/// not the meta package, a cloud/rt flavour or a debug package.
pub fn is_kernel_image_package(package: &str) -> bool {
    package
        .strip_prefix("linux-image-")
        .and_then(|rest| rest.strip_suffix("-amd64"))
        .is_some_and(|abi| abi.starts_with(|c: char| c.is_ascii_digit()) && !abi.contains("cloud"))
}

/// The kernel image package `apt-cache depends KERNEL_META` prints.
pub fn kernel_package_from_depends(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| is_kernel_image_package(p))
        .map(str::to_string)
}

fn apt_update() -> Result<()> {
    step("apt-get update (package lists for the Linux guest's packages)");
    output(Command::new("apt-get").args(["update", "-qq"])).map(|_| ())
}

/// Which kernel image package to use: a cached one, else the one the meta package names.
fn kernel_package(dir: &Path) -> Result<String> {
    if let Some(p) = cached_kernel(dir) {
        return Ok(p);
    }
    let ask = || output(Command::new("apt-cache").args(["depends", KERNEL_META]));
    let text = match ask() {
        Ok(t) if kernel_package_from_depends(&t).is_some() => t,
        _ => {
            apt_update()?;
            ask()?
        }
    };
    kernel_package_from_depends(&text).ok_or_else(|| {
        format!("`apt-cache depends {KERNEL_META}` names no kernel image package:\n{text}")
    })
}

/// Downloads (once) every package the guest needs into `dir`; returns the `.deb` files.
pub fn download(dir: &Path) -> Result<Vec<PathBuf>> {
    if !Path::new("/etc/debian_version").exists() {
        return Err(
            "the Linux guest is built from Debian packages: this needs a Debian host with apt"
                .into(),
        );
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut packages = vec![kernel_package(dir)?];
    packages.extend(USER_PACKAGES.iter().map(|p| p.to_string()));
    let missing: Vec<&String> = packages
        .iter()
        .filter(|p| cached(dir, p).is_none())
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        step(&format!(
            "downloading Debian packages into {}: {}",
            dir.display(),
            names.join(" ")
        ));
        let fetch = || {
            output(
                Command::new("apt-get")
                    .current_dir(dir)
                    // apt's sandbox user cannot write into a root-owned folder.
                    .args(["-o", "APT::Sandbox::User=root", "download", "-q"])
                    .args(&names),
            )
        };
        if fetch().is_err() {
            apt_update()?;
            fetch()?;
        }
    }
    packages
        .iter()
        .map(|p| cached(dir, p).ok_or_else(|| format!("apt-get download left no .deb of {p}")))
        .collect()
}

/// Unpacks `debs` into `root` unless it already holds exactly them (a stamp file lists
/// what was unpacked); returns `root`.
pub fn unpack(debs: &[PathBuf], root: &Path) -> Result<PathBuf> {
    let stamp = root.with_extension("unpacked");
    let list: String = debs
        .iter()
        .map(|d| format!("{}\n", d.file_name().unwrap_or_default().to_string_lossy()))
        .collect();
    if root.is_dir() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&list) {
        return Ok(root.to_path_buf());
    }
    if root.exists() {
        std::fs::remove_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    }
    std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    for deb in debs {
        step(&format!(
            "unpacking {}",
            deb.file_name().unwrap_or_default().to_string_lossy()
        ));
        output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root))?;
    }
    std::fs::write(&stamp, list).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(root.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_versioned_generic_images_count_as_the_kernel() {
        assert!(is_kernel_image_package("linux-image-6.1.0-56-amd64"));
        assert!(!is_kernel_image_package("linux-image-amd64"));
        assert!(!is_kernel_image_package("linux-image-6.1.0-56-cloud-amd64"));
        assert!(!is_kernel_image_package("linux-image-6.1.0-56-amd64-dbg"));
        assert!(!is_kernel_image_package("linux-headers-6.1.0-56-amd64"));
    }

    #[test]
    fn the_kernel_package_comes_from_apt_cache_depends() {
        let text = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            kernel_package_from_depends(text).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(kernel_package_from_depends("linux-image-amd64\n"), None);
    }

    #[test]
    fn cached_debs_are_found_by_package_name() {
        let dir = std::env::temp_dir().join(format!("xtask-debs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "iperf3_3.12-1_amd64.deb",
            "libiperf0_3.12-1_amd64.deb",
            "linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let iperf = cached(&dir, "iperf3").unwrap();
        assert!(iperf.ends_with("iperf3_3.12-1_amd64.deb"));
        assert!(cached(&dir, "libc6").is_none());
        assert_eq!(
            cached_kernel(&dir).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
