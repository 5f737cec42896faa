//! Host tools for the tests: images made with `mkfs.fat`, filled and read with mtools,
//! checked with `fsck.fat -n`. Images live in the system's temporary directory.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The path of host tool `name` (dosfstools installs to /usr/sbin, which PATH may lack).
pub fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.push("/sbin".into());
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Whether dosfstools and mtools are installed; prints why a test is skipped when not.
pub fn tools_present(test: &str) -> bool {
    let missing: Vec<&str> = ["mkfs.fat", "fsck.fat", "mcopy", "mdir", "mtype", "mmd"]
        .into_iter()
        .filter(|t| tool(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    eprintln!(
        "SKIPPED {test}: missing {} (apt-get install dosfstools mtools; `cargo xtask test` installs them)",
        missing.join(", ")
    );
    false
}

/// A disk image file, removed when dropped.
pub struct Image {
    pub path: PathBuf,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Image {
    /// A new, empty path in the temporary directory.
    pub fn temp(tag: &str) -> Image {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "tessera-fat-{}-{}-{}.img",
            tag,
            std::process::id(),
            n
        ));
        let _ = std::fs::remove_file(&path);
        Image { path }
    }

    /// An image of `kib` KiB formatted by `mkfs.fat -F bits` (clusters of one sector
    /// for FAT32, so that a small image still has FAT32's cluster count).
    pub fn mkfs(bits: u32, kib: u32) -> Image {
        Image::mkfs_with(bits, kib, if bits == 32 { Some(1) } else { None })
    }

    /// An image of `kib` KiB formatted by `mkfs.fat -F bits`, with clusters of
    /// `sectors_per_cluster` sectors when given.
    pub fn mkfs_with(bits: u32, kib: u32, sectors_per_cluster: Option<u32>) -> Image {
        let image = Image::temp(&format!("fat{bits}"));
        let mut args = vec!["-F".to_string(), bits.to_string()];
        if let Some(s) = sectors_per_cluster {
            args.extend(["-s".into(), s.to_string()]);
        }
        args.extend(["-C".into(), image.arg(), kib.to_string()]);
        run("mkfs.fat", &args);
        image
    }

    /// An image holding `bytes`.
    pub fn from_bytes(tag: &str, bytes: &[u8]) -> Image {
        let image = Image::temp(tag);
        std::fs::write(&image.path, bytes).unwrap();
        image
    }

    pub fn arg(&self) -> String {
        self.path.to_str().unwrap().to_string()
    }

    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }

    pub fn write(&self, bytes: &[u8]) {
        std::fs::write(&self.path, bytes).unwrap();
    }

    /// `mmd` a directory (path with `/`, from the root).
    pub fn mmd(&self, dir: &str) {
        run("mmd", &["-i".into(), self.arg(), format!("::/{dir}")]);
    }

    /// Copies `data` in as `target` (path with `/`, from the root).
    pub fn put(&self, target: &str, data: &[u8]) {
        let source = Image::temp("source");
        std::fs::write(&source.path, data).unwrap();
        run(
            "mcopy",
            &[
                "-i".into(),
                self.arg(),
                source.arg(),
                format!("::/{target}"),
            ],
        );
    }

    /// The content of `target` as mtype prints it.
    pub fn mtype(&self, target: &str) -> Vec<u8> {
        output("mtype", &["-i".into(), self.arg(), format!("::/{target}")])
    }

    /// `mdir -b` (bare) of a directory: one full path per line.
    pub fn mdir_bare(&self, dir: &str) -> Vec<String> {
        let out = output(
            "mdir",
            &["-b".into(), "-i".into(), self.arg(), format!("::/{dir}")],
        );
        String::from_utf8_lossy(&out)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Every path on the volume as `mdir -/ -b` lists it, without the `::/` prefix;
    /// directories end in `/`. Sorted.
    pub fn tree(&self) -> Vec<String> {
        let out = output(
            "mdir",
            &[
                "-/".into(),
                "-b".into(),
                "-i".into(),
                self.arg(),
                "::/".into(),
            ],
        );
        let mut paths: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("::/").map(str::to_string))
            .collect();
        paths.sort();
        paths
    }

    /// `fsck.fat -n`, classified.
    pub fn fsck(&self) -> Fsck {
        let out = Command::new(tool("fsck.fat").expect("fsck.fat"))
            .args(["-n", &self.arg()])
            .output()
            .unwrap();
        Fsck::classify(
            out.status.code().unwrap_or(-1),
            &(String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr)),
        )
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn run(name: &str, args: &[String]) {
    output(name, args);
}

fn output(name: &str, args: &[String]) -> Vec<u8> {
    let out = Command::new(tool(name).unwrap_or_else(|| panic!("{name} missing")))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What `fsck.fat -n` said, sorted into harmless findings (lost space, a FAT copy behind,
/// the free count hint) and real errors.
#[derive(Debug)]
pub struct Fsck {
    pub exit: i32,
    pub output: String,
    /// Lines that report something worse than lost clusters.
    pub errors: Vec<String>,
    /// Lines that report lost space (clusters no file owns, a chain longer than its file),
    /// a FAT copy that differs from the first, or a FAT32 free-count hint that is unknown
    /// or stale: what a crash may leave.
    pub harmless: Vec<String>,
}

impl Fsck {
    /// Sorts fsck.fat's lines. Its exit status is 0 when it found nothing and 1 when it
    /// found anything (lost clusters included), so the lines decide.
    pub fn classify(exit: i32, output: &str) -> Fsck {
        let mut errors = Vec::new();
        let mut lost = Vec::new();
        let lines: Vec<&str> = output.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            let next = lines.get(i + 1).copied().unwrap_or("");
            i += 1;
            if line.trim().is_empty()
                || line.starts_with("fsck.fat ")
                || line == "Leaving filesystem unchanged."
                || line.contains(" files, ") && line.contains(" clusters")
            {
                continue;
            }
            if line.starts_with("Free cluster summary uninitialized")
                || line.starts_with("Free cluster summary wrong")
            {
                lost.push(line.to_string());
                if next.trim() == "Auto-correcting." {
                    i += 1;
                }
                continue;
            }
            if line.starts_with("Reclaimed ") && line.contains("unused cluster") {
                lost.push(line.to_string());
                continue;
            }
            if line == "FATs differ but appear to be intact." && next.trim() == "Using first FAT." {
                lost.push(line.to_string());
                i += 1;
                continue;
            }
            // A file whose chain is longer than its size: the tail is lost space.
            if line.starts_with('/')
                && next.contains("cluster chain length is >")
                && lines
                    .get(i + 1)
                    .is_some_and(|l| l.trim_start().starts_with("Truncating file to"))
            {
                lost.push(format!("{line}: {}", next.trim()));
                i += 2;
                continue;
            }
            errors.push(line.to_string());
        }
        if exit != 0 && exit != 1 {
            errors.push(format!("fsck.fat exited {exit}"));
        }
        if exit == 1 && errors.is_empty() && lost.is_empty() {
            errors.push("fsck.fat exited 1 without a finding we know".into());
        }
        Fsck {
            exit,
            output: output.to_string(),
            errors,
            harmless: lost,
        }
    }

    /// Whether fsck found nothing at all.
    pub fn clean(&self) -> bool {
        self.exit == 0 && self.errors.is_empty() && self.harmless.is_empty()
    }
}

/// Random bytes from a seeded generator.
pub fn random_bytes(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.u8(..)).collect()
}
