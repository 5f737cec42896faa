//! `cargo xtask bench files`: sequential throughput through the file service and raw
//! through the block driver (issue 13, part 6, Tessera's half: the Linux guest's figures on
//! the same disk are not measured yet).
//!
//! Boots `systems/bench/files.toml` on `target/bench/files.img` (a FAT32 volume with raw
//! room after it, made afresh each run): `fs` writes, flushes and reads back `bench_raw`
//! MiB at the end of the disk through `blkring`'s blocking disk, then `records` writes,
//! syncs and reads back a `bench` MiB file through `fs`; 4 KiB and 64 KiB requests. Each
//! prints `BENCH NAME bytes=B cycles=C` (TSC cycles); the root task's `tsc: N MHz` line turns
//! cycles into time.

use crate::qemu::{disk, Boot, Session};
use crate::{build, step, workspace_root, Result};
use kernel_support::Variant;
use std::process::Command;
use std::time::Duration;

/// The system description the benchmark boots (relative to the workspace root).
pub const SYSTEM: &str = "systems/bench/files.toml";
/// The FAT volume's size at the start of the disk, in MiB.
pub const VOLUME_MIB: u64 = 64;
/// Raw room after the volume, in MiB (at least the description's `bench_raw`).
pub const RAW_MIB: u64 = 32;
/// How long the boot may take (under TCG the transfers are slow).
pub const TIMEOUT: Duration = Duration::from_secs(900);

/// One `BENCH` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// `blk-write-4k`, `fs-read-64k`, ...
    pub name: String,
    /// Bytes moved.
    pub bytes: u64,
    /// TSC cycles it took.
    pub cycles: u64,
}

impl Figure {
    /// MiB per second at `tsc_mhz`.
    pub fn mib_per_s(&self, tsc_mhz: u64) -> f64 {
        let seconds = self.cycles as f64 / (tsc_mhz as f64 * 1e6);
        self.bytes as f64 / (1 << 20) as f64 / seconds
    }
}

/// The `BENCH NAME bytes=B cycles=C` lines of `output` (a prompt or other text before
/// `BENCH` on the line is allowed), and the TSC frequency from `tsc: N MHz`.
pub fn parse(output: &str) -> (Vec<Figure>, Option<u64>) {
    let mut figures = Vec::new();
    let mut tsc = None;
    for line in output.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(at) = line.find("tsc: ") {
            let digits: String = line[at + 5..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if line[at + 5 + digits.len()..].starts_with(" MHz") {
                tsc = digits.parse().ok().or(tsc);
            }
        }
        let Some(at) = line.find("BENCH ") else {
            continue;
        };
        let mut words = line[at + 6..].split_whitespace();
        let Some(name) = words.next() else { continue };
        let field = |w: Option<&str>, key: &str| {
            w.and_then(|w| w.strip_prefix(key))
                .and_then(|v| v.parse::<u64>().ok())
        };
        let bytes = field(words.next(), "bytes=");
        let cycles = field(words.next(), "cycles=");
        if let (Some(bytes), Some(cycles)) = (bytes, cycles) {
            figures.push(Figure {
                name: name.to_string(),
                bytes,
                cycles,
            });
        }
    }
    (figures, tsc)
}

/// Makes the disk: a `VOLUME_MIB` FAT32 volume, then `RAW_MIB` of zeroes after it.
fn make_disk(path: &std::path::Path) -> Result<()> {
    crate::host::ensure(crate::host::Purpose::Fat)?;
    disk::scratch_image(path, VOLUME_MIB << 20)?;
    let mkfs = ["/usr/sbin/mkfs.fat", "/sbin/mkfs.fat", "/usr/bin/mkfs.fat"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .unwrap_or("mkfs.fat");
    let out = Command::new(mkfs)
        .args(["-F", "32"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run {mkfs}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mkfs.fat failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.set_len((VOLUME_MIB + RAW_MIB) << 20)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Builds and boots the benchmark system, prints the table.
pub fn run() -> Result<()> {
    let path = workspace_root().join(SYSTEM);
    let image = build::image(&Variant::default(), Some(&path))?;
    let dir = super::shared::dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let img = dir.join("files.img");
    make_disk(&img)?;
    let log = crate::target_dir().join("logs").join("bench-files.log");
    step(&format!(
        "files: booting {SYSTEM} on {} (serial log {})",
        img.display(),
        log.display()
    ));
    let mut boot = Boot::new(image.kernel.elf32.clone(), image.root.clone(), log.clone());
    boot.timeout = TIMEOUT;
    boot.extra = disk::qemu_args(&img, "disk0");
    let session = Session::start(&boot, false)?;
    session
        .wait_for("records: bench: bench done", TIMEOUT)
        .map_err(|e| format!("{e} (serial log {})", log.display()))?;
    let output = session.output();
    drop(session);
    if let Some(error) = output.lines().find(|l| l.contains("BENCH-ERROR")) {
        return Err(format!("{} (serial log {})", error.trim(), log.display()));
    }
    let (figures, tsc) = parse(&output);
    let tsc = tsc.ok_or("the root task did not print the TSC frequency")?;
    if figures.len() != 8 {
        return Err(format!(
            "expected 8 BENCH lines, got {} (serial log {})",
            figures.len(),
            log.display()
        ));
    }
    println!(
        "{:<8} {:>8} {:>9} {:>14} {:>13}",
        "path", "request", "MiB", "write MiB/s", "read MiB/s"
    );
    for path in ["blk", "fs"] {
        for k in [4, 64] {
            let find = |op: &str| {
                figures
                    .iter()
                    .find(|f| f.name == format!("{path}-{op}-{k}k"))
            };
            let (Some(w), Some(r)) = (find("write"), find("read")) else {
                return Err(format!("no {path} figures for {k} KiB requests"));
            };
            println!(
                "{:<8} {:>6}Ki {:>9} {:>14.1} {:>13.1}",
                path,
                k,
                w.bytes >> 20,
                w.mib_per_s(tsc),
                r.mib_per_s(tsc)
            );
        }
    }
    println!(
        "(TCG unless the kernel runs under KVM; guest TSC {tsc} MHz; write includes the flush / fsync)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_lines_and_the_tsc_parse() {
        let out = "x tsc: 2000 MHz\r\nBENCH blk-write-4k bytes=1048576 cycles=2000000000\r\n\
                   tessera> BENCH fs-read-64k bytes=2097152 cycles=1000000000\n\
                   BENCH broken bytes=x cycles=1\nBENCH-ERROR fs-4k: Io\n";
        let (figures, tsc) = parse(out);
        assert_eq!(tsc, Some(2000));
        assert_eq!(figures.len(), 2);
        assert_eq!(figures[0].name, "blk-write-4k");
        assert!((figures[0].mib_per_s(2000) - 1.0).abs() < 1e-9);
        assert!((figures[1].mib_per_s(2000) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn the_description_asks_for_no_more_than_the_raw_room() {
        let system = build::load_system(&workspace_root().join(SYSTEM)).unwrap();
        let fs = system.components.iter().find(|c| c.binary == "fs").unwrap();
        let raw: u64 = fs.args.get("bench_raw").unwrap().parse().unwrap();
        assert!(raw <= RAW_MIB);
    }
}
