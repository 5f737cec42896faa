//! A FAT image made by `mkfs.fat`, regions in memory, and a service shared by several
//! in-process clients.

#![allow(dead_code)]

use fs::{Config, FileService};
use libos_fat::{FileSystem, MemoryDevice};
use proto::fs::DataArea;
use proto::{Loopback, Message, Name};
use std::cell::RefCell;
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A region as both sides see it.
pub type Area = Arc<[AtomicU32]>;

/// The service under test, shared by the clients' transports.
pub type Shared = Rc<RefCell<FileService<MemoryDevice, Area>>>;

/// The path of host tool `name` (dosfstools installs to /usr/sbin, which PATH may lack).
pub fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The bytes of a FAT16 image of `kib` KiB made by `mkfs.fat`, or `None` (and a line
/// saying the test is skipped) without dosfstools.
pub fn image(kib: u32) -> Option<Vec<u8>> {
    let Some(mkfs) = tool("mkfs.fat") else {
        eprintln!("SKIPPED: mkfs.fat missing (apt-get install dosfstools)");
        return None;
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("tessera-fs-{}-{n}.img", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let ok = Command::new(mkfs)
        .args(["-F", "16", "-s", "2", "-C"])
        .arg(&path)
        .arg(kib.to_string())
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "mkfs.fat failed");
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    Some(bytes)
}

/// Whether `fsck.fat -n` finds the image clean (true without dosfstools).
pub fn fsck_clean(bytes: &[u8]) -> bool {
    let Some(fsck) = tool("fsck.fat") else {
        return true;
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("tessera-fsck-{}-{n}.img", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(fsck).arg("-n").arg(&path).output().unwrap();
    let _ = std::fs::remove_file(&path);
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    }
    out.status.success()
}

/// A zeroed region of `bytes` bytes.
pub fn area(bytes: usize) -> Area {
    (0..bytes / 4).map(|_| AtomicU32::new(0)).collect()
}

/// A service over a fresh 8 MiB volume for the clients `roots` names
/// (`REGION:/PATH,...`), each with a 64 KiB region; the regions by name.
pub fn service(roots: &str, max_open: &str) -> Option<(Shared, Vec<(Name, Area)>)> {
    let bytes = image(8 * 1024)?;
    let volume = FileSystem::mount(MemoryDevice::from_bytes(bytes)).unwrap();
    let config = Config::from_args(|k| match k {
        "roots" => Some(roots),
        "max_open" => Some(max_open),
        _ => None,
    })
    .unwrap();
    let areas: Vec<(Name, Area)> = config
        .roots
        .iter()
        .map(|r| (r.region, area(64 * 1024)))
        .collect();
    let lookup = areas.clone();
    let service = FileService::new(
        volume,
        &config,
        |name| {
            lookup
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| a.clone())
        },
        1,
    );
    Some((Rc::new(RefCell::new(service)), areas))
}

/// A transport to `service` as the client with `badge`.
pub fn transport(service: &Shared, badge: u64) -> Loopback<impl FnMut(&Message) -> Message> {
    let service = service.clone();
    Loopback(move |m: &Message| proto::fs::dispatch(&mut *service.borrow_mut(), badge, m))
}

/// Writes `bytes` at data-area offset `offset` of `area`.
pub fn put(area: &Area, offset: u32, bytes: &[u8]) -> proto::fs::Extent {
    assert!(area.store(proto::fs::HEADER_BYTES + offset as usize, bytes));
    proto::fs::Extent {
        offset,
        length: bytes.len() as u32,
    }
}

/// Reads `length` bytes at data-area offset `offset` of `area`.
pub fn get(area: &Area, offset: u32, length: usize) -> Vec<u8> {
    let mut out = vec![0; length];
    assert!(area.load(proto::fs::HEADER_BYTES + offset as usize, &mut out));
    out
}
