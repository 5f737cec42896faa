//! `cargo xtask bench files`: sequential throughput and guest CPU through the file service
//! and raw through the block driver, beside the Linux guest doing the same on the same kind
//! of disk (issue 13, part 6).
//!
//! Tessera: boots `systems/bench/files.toml` (kernel variant `bench=utilisation`, so the
//! idle thread's share gives the guest's CPU) on `target/bench/files.img` (a FAT32 volume
//! with raw room after it, made afresh): `fs` writes, flushes and reads back `bench_raw` MiB
//! at the end of the disk through `blkring`'s blocking disk, then `records` writes, syncs
//! and reads back a `bench` MiB file through `fs`; 4 KiB and 64 KiB requests. Each prints
//! `BENCH NAME bytes=B cycles=C busy_permille=P` (TSC cycles; the root task's `tsc: N MHz`
//! line turns them into time).
//!
//! Linux: the baseline guest (`cargo xtask linux`) boots on a fresh copy of the same disk
//! and runs its `disk-bench` command: `dd` with `O_DIRECT` on `/dev/vda` at the same offset
//! for the raw figures, the vfat module and `dd` (synced, page cache dropped before the
//! read) for the file figures; `BENCH linux-NAME bytes=B us=U busy_permille=P`.

use crate::linux::{self, init, Nic};
use crate::qemu::net::Mode;
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
/// How long a boot may take (under TCG the transfers are slow).
pub const TIMEOUT: Duration = Duration::from_secs(900);
/// The paths and request sizes of the table, in order.
const ROWS: [(&str, u64); 4] = [("blk", 4), ("blk", 64), ("fs", 4), ("fs", 64)];

/// One `BENCH` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// `blk-write-4k`, `linux-fs-read-64k`, ...
    pub name: String,
    /// Bytes moved.
    pub bytes: u64,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// The guest's busy share meanwhile, in thousandths (when measured).
    pub busy_permille: Option<u64>,
    /// Files made or removed (the small-file figures).
    pub files: Option<u64>,
}

impl Figure {
    /// MiB per second.
    pub fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.seconds
    }

    /// Files per second (0 for a figure without a file count).
    pub fn files_per_s(&self) -> f64 {
        self.files.unwrap_or(0) as f64 / self.seconds
    }
}

/// The `BENCH NAME bytes=B [files=F] (cycles=C | us=U) [busy_permille=P]` lines of `output` (a prompt
/// or other text before `BENCH` on the line is allowed). Cycles need the TSC frequency
/// from the line `tsc: N MHz`; without it such lines are skipped.
pub fn parse(output: &str) -> Vec<Figure> {
    let mut tsc_mhz = None;
    let mut figures = Vec::new();
    for line in output.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(at) = line.find("tsc: ") {
            let digits: String = line[at + 5..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if line[at + 5 + digits.len()..].starts_with(" MHz") {
                tsc_mhz = digits.parse::<u64>().ok().filter(|&m| m > 0).or(tsc_mhz);
            }
        }
        let Some(at) = line.find("BENCH ") else {
            continue;
        };
        let mut words = line[at + 6..].split_whitespace();
        let Some(name) = words.next() else { continue };
        let fields: Vec<(&str, u64)> = words
            .filter_map(|w| {
                let (k, v) = w.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        let get = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let seconds = match (get("us"), get("cycles"), tsc_mhz) {
            (Some(us), _, _) => us as f64 / 1e6,
            (None, Some(cycles), Some(mhz)) => cycles as f64 / (mhz as f64 * 1e6),
            _ => continue,
        };
        let Some(bytes) = get("bytes") else { continue };
        if seconds > 0.0 {
            figures.push(Figure {
                name: name.to_string(),
                bytes,
                seconds,
                busy_permille: get("busy_permille"),
                files: get("files"),
            });
        }
    }
    figures
}

/// Makes the disk: a `VOLUME_MIB` FAT32 volume, then `RAW_MIB` of zeroes after it.
fn make_disk(path: &std::path::Path) -> Result<()> {
    crate::host::ensure(crate::host::Purpose::Fat)?;
    disk::scratch_image(path, VOLUME_MIB << 20)?;
    let mkfs = disk::fat_tool("mkfs.fat");
    let out = Command::new(&mkfs)
        .args(["-F", "32"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", mkfs.display()))?;
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

/// The MiB each transfer moves: the description's `bench_raw` (the file figures use the
/// same, `bench` of `records`).
fn transfer_mib() -> Result<u64> {
    let system = build::load_system(&workspace_root().join(SYSTEM))?;
    let fs = system
        .components
        .iter()
        .find(|c| c.binary == "fs")
        .ok_or(format!("{SYSTEM}: no fs"))?;
    fs.args
        .get("bench_raw")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{SYSTEM}: fs has no numeric bench_raw"))
}

/// Tessera's figures: boots the benchmark system on a fresh disk.
fn tessera() -> Result<Vec<Figure>> {
    let path = workspace_root().join(SYSTEM);
    let variant = Variant::default().with("bench", "utilisation");
    let image = build::image(&variant, Some(&path))?;
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
    Ok(parse(&output))
}

/// The Linux guest's figures: boots it on a fresh disk of the same shape and runs
/// `disk-bench`.
fn linux_guest(mib: u64) -> Result<Vec<Figure>> {
    let guest = linux::build()?;
    let dir = super::shared::dir();
    let img = dir.join("files-linux.img");
    make_disk(&img)?;
    let log = crate::target_dir()
        .join("logs")
        .join("bench-files-linux.log");
    step(&format!(
        "files: booting the Linux guest on {} (serial log {})",
        img.display(),
        log.display()
    ));
    let port = crate::qemu::net::free_port()?;
    let mut boot = linux::boot(&guest, Nic::E1000e, Mode::User, port, 0, log.clone())?;
    boot.timeout = TIMEOUT;
    boot.extra.extend(disk::qemu_args(&img, "disk0"));
    let mut session = Session::start(&boot, false)?;
    session
        .wait_for(init::READY, Duration::from_secs(300))
        .map_err(|e| format!("{e} (serial log {})", log.display()))?;
    let before = session.output().len();
    session.send(&format!("{} {mib} {VOLUME_MIB}\n", init::DISK_BENCH))?;
    session
        .wait_for_from(init::DISK_BENCH_DONE, before, TIMEOUT)
        .map_err(|e| format!("{e} (serial log {})", log.display()))?;
    let output = session.output();
    drop(session);
    if let Some(error) = output[before..].lines().find(|l| l.contains("BENCH-ERROR")) {
        return Err(format!("{} (serial log {})", error.trim(), log.display()));
    }
    Ok(parse(&output[before..]))
}

/// `rate (busy %)` for one figure (MiB/s, or files/s for the small-file figures), or a
/// dash.
fn cell(figure: Option<&Figure>) -> String {
    match figure {
        Some(f) => {
            let rate = if f.files.is_some() {
                f.files_per_s()
            } else {
                f.mib_per_s()
            };
            match f.busy_permille {
                Some(b) => format!("{rate:.1} ({:.0} %)", b as f64 / 10.0),
                None => format!("{rate:.1}"),
            }
        }
        None => "-".into(),
    }
}

/// The table: per path, request size and direction, MiB/s and busy CPU of both systems.
pub fn table(figures: &[Figure]) -> String {
    let find = |name: String| figures.iter().find(|f| f.name == name);
    let mut out = format!(
        "{:<6} {:>7} {:<6} {:>20} {:>20}\n",
        "path", "request", "op", "Tessera MiB/s (CPU)", "Linux MiB/s (CPU)"
    );
    for (path, k) in ROWS {
        for op in ["write", "read"] {
            let name = format!("{path}-{op}-{k}k");
            out += &format!(
                "{:<6} {:>5}Ki {:<6} {:>20} {:>20}\n",
                path,
                k,
                op,
                cell(find(name.clone())),
                cell(find(format!("linux-{name}")))
            );
        }
    }
    out += &format!(
        "{:<6} {:>7} {:<6} {:>20} {:>20}\n",
        "small", "files/s", "", "Tessera", "Linux"
    );
    for op in ["create", "remove"] {
        let name = format!("fs-small-{op}");
        out += &format!(
            "{:<6} {:>7} {:<6} {:>20} {:>20}\n",
            "fs",
            "4Ki",
            op,
            cell(find(name.clone())),
            cell(find(format!("linux-{name}")))
        );
    }
    out
}

/// Builds and boots both systems, prints the table.
pub fn run() -> Result<()> {
    let mib = transfer_mib()?;
    let mut figures = tessera()?;
    let expected = ROWS.len() * 2 + 2;
    if figures.len() != expected {
        return Err(format!(
            "expected {expected} BENCH lines from Tessera, got {}",
            figures.len()
        ));
    }
    figures.extend(linux_guest(mib)?);
    println!();
    print!("{}", table(&figures));
    println!(
        "({mib} MiB per transfer; small: 1000 files of 4 KiB, each written and synced (Linux: \
         the volume mounted sync), then removed; TCG; write includes the flush / fsync; CPU: \
         the guest's busy share, Tessera's from the kernel's idle thread, Linux's from \
         /proc/stat idle + iowait)"
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
        let figures = parse(out);
        assert_eq!(figures.len(), 2);
        assert_eq!(figures[0].name, "blk-write-4k");
        assert!((figures[0].mib_per_s() - 1.0).abs() < 1e-9);
        assert!((figures[1].mib_per_s() - 4.0).abs() < 1e-9);
        assert_eq!(figures[0].busy_permille, None);
        // Linux's lines carry microseconds; a busy share is kept.
        let linux = "BENCH linux-fs-read-4k bytes=1048576 us=250000 busy_permille=412\n";
        let f = &parse(linux)[0];
        assert!((f.mib_per_s() - 4.0).abs() < 1e-9);
        assert_eq!(f.busy_permille, Some(412));
        // Cycles without a TSC frequency cannot be turned into time.
        assert!(parse("BENCH blk-read-4k bytes=1 cycles=5\n").is_empty());
        let table = table(std::slice::from_ref(f));
        assert!(table.contains("4.0 (41 %)"), "{table}");
    }

    #[test]
    fn the_description_asks_for_no_more_than_the_raw_room() {
        let system = build::load_system(&workspace_root().join(SYSTEM)).unwrap();
        let fs = system.components.iter().find(|c| c.binary == "fs").unwrap();
        let raw: u64 = fs.args.get("bench_raw").unwrap().parse().unwrap();
        assert!(raw <= RAW_MIB);
    }
}
