//! Crash safety: a device that loses power after N writes, for every N over a scripted
//! workload (keeping all unflushed writes, or a random half of them); then `fsck.fat -n`
//! may find lost clusters but nothing worse, and every file whose last change was followed
//! by a sync that returned is intact.

mod common;

use common::{tools_present, Image};
use libos_fat::{BlockDevice, DeviceError, FileSystem, MemoryDevice, Path, Sector};
use std::collections::{BTreeMap, BTreeSet};

/// A device with a volatile write cache, as disks have: writes reach stable storage only
/// at a flush. After `budget` writes the power fails: every later write and flush fails,
/// and of the writes not yet flushed, all or a random half survive (in any order, as a
/// disk may reorder them).
struct CrashDevice {
    stable: MemoryDevice,
    volatile: Vec<(u64, Sector)>,
    budget: Option<u64>,
    writes: u64,
    /// Which unflushed writes survive the crash: all, or a random half from this seed.
    survivors: Option<u64>,
}

impl CrashDevice {
    fn new(image: &[u8], budget: Option<u64>, survivors: Option<u64>) -> Self {
        CrashDevice {
            stable: MemoryDevice::from_bytes(image.to_vec()),
            volatile: Vec::new(),
            budget,
            writes: 0,
            survivors,
        }
    }

    fn crashed(&self) -> bool {
        self.budget.is_some_and(|b| self.writes >= b)
    }

    /// What stable storage holds after the power failure.
    fn after_crash(mut self) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(self.survivors.unwrap_or(0));
        for (sector, data) in std::mem::take(&mut self.volatile) {
            if self.survivors.is_none() || rng.bool() {
                self.stable.write(sector, &data).unwrap();
            }
        }
        self.stable.into_bytes()
    }
}

impl BlockDevice for CrashDevice {
    fn sector_count(&self) -> u64 {
        self.stable.sector_count()
    }
    fn read(&mut self, sector: u64, buffer: &mut Sector) -> Result<(), DeviceError> {
        match self.volatile.iter().rev().find(|(s, _)| *s == sector) {
            Some((_, data)) => {
                buffer.copy_from_slice(data);
                Ok(())
            }
            None => self.stable.read(sector, buffer),
        }
    }
    fn write(&mut self, sector: u64, data: &Sector) -> Result<(), DeviceError> {
        if self.crashed() {
            return Err(DeviceError::Io);
        }
        if sector >= self.sector_count() {
            return Err(DeviceError::OutOfRange);
        }
        self.writes += 1;
        self.volatile.push((sector, *data));
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        if self.crashed() {
            return Err(DeviceError::Io);
        }
        for (sector, data) in std::mem::take(&mut self.volatile) {
            self.stable.write(sector, &data)?;
        }
        Ok(())
    }
}

enum Op {
    Mkdir(&'static str),
    Rmdir(&'static str),
    Create(String),
    Write(String, u64, usize),
    Append(String, usize),
    Truncate(String, u64),
    Unlink(String),
    Rename(String, String),
    Sync,
}

fn workload() -> Vec<Op> {
    use Op::*;
    let first = "logs/A Long Directory Name/first record file.txt".to_string();
    let moved_first = "old/A Long Directory Name/first record file.txt".to_string();
    let mut ops = vec![
        Mkdir("logs"),
        Mkdir("logs/A Long Directory Name"),
        Create(first.clone()),
        Write(first.clone(), 0, 1500),
        Sync,
        Create("keep.bin".into()),
        Write("keep.bin".into(), 0, 2500),
        Sync,
        Append(first.clone(), 700),
        Create("scratch file.tmp".into()),
        Write("scratch file.tmp".into(), 0, 3000),
        Sync,
        Write(first.clone(), 100, 50),
        Truncate("scratch file.tmp".into(), 600),
        Rename("scratch file.tmp".into(), "logs/moved scratch.tmp".into()),
    ];
    for i in 0..12 {
        ops.push(Create(format!("logs/entry number {i}.log")));
        ops.push(Write(format!("logs/entry number {i}.log"), 0, 300 + i * 97));
    }
    ops.extend([
        Sync,
        Unlink("logs/entry number 3.log".into()),
        Mkdir("old"),
        Rename(
            "logs/A Long Directory Name".into(),
            "old/A Long Directory Name".into(),
        ),
        Append(moved_first.clone(), 2000),
        Truncate("logs/moved scratch.tmp".into(), 0),
        Mkdir("short lived"),
        Rmdir("short lived"),
        Rename(
            "logs/entry number 5.log".into(),
            "logs/entry number 6.log".into(),
        ),
        Sync,
        Create("late.txt".into()),
        Write("late.txt".into(), 0, 4000),
        Append("keep.bin".into(), 10),
    ]);
    ops
}

/// What the files should hold: now, and as of the last sync that returned.
#[derive(Default)]
struct Model {
    current: BTreeMap<String, Vec<u8>>,
    durable: BTreeMap<String, Vec<u8>>,
    /// Files changed (or moved) since the last sync.
    changed: BTreeSet<String>,
    counter: u8,
}

impl Model {
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        self.counter = self.counter.wrapping_add(1);
        let seed = self.counter;
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }
}

fn path(text: &str) -> Path {
    Path::parse(text).unwrap()
}

/// Runs the workload until it ends or the device fails; returns the model.
fn run(fs: &mut FileSystem<CrashDevice>) -> Model {
    let mut m = Model::default();
    for op in workload() {
        let result = match &op {
            Op::Mkdir(p) => fs.mkdir(&path(p)),
            Op::Rmdir(p) => fs.rmdir(&path(p)),
            Op::Create(p) => fs.create(&path(p)),
            Op::Write(p, offset, len) => {
                let data = m.bytes(*len);
                fs.write(&path(p), *offset, &data).map(|_| {
                    let file = m.current.get_mut(p).unwrap();
                    let end = *offset as usize + data.len();
                    if file.len() < end {
                        file.resize(end, 0);
                    }
                    file[*offset as usize..end].copy_from_slice(&data);
                })
            }
            Op::Append(p, len) => {
                let data = m.bytes(*len);
                fs.append(&path(p), &data)
                    .map(|_| m.current.get_mut(p).unwrap().extend_from_slice(&data))
            }
            Op::Truncate(p, size) => fs
                .truncate(&path(p), *size)
                .map(|_| m.current.get_mut(p).unwrap().resize(*size as usize, 0)),
            Op::Unlink(p) => fs.unlink(&path(p)),
            Op::Rename(from, to) => fs.rename(&path(from), &path(to)),
            Op::Sync => fs.sync(),
        };
        // The model changes as the operation meant, even if it failed part way: what it
        // touched is no longer expected intact.
        match &op {
            Op::Create(p) => {
                m.current.insert(p.clone(), Vec::new());
                m.changed.insert(p.clone());
            }
            Op::Write(p, ..) | Op::Append(p, _) | Op::Truncate(p, _) => {
                m.changed.insert(p.clone());
            }
            Op::Unlink(p) => {
                m.current.remove(p);
                m.changed.insert(p.clone());
            }
            Op::Rename(from, to) => {
                let moved: Vec<String> = m
                    .current
                    .keys()
                    .filter(|k| *k == from || k.starts_with(&format!("{from}/")))
                    .cloned()
                    .collect();
                for old in moved {
                    let new = format!("{to}{}", &old[from.len()..]);
                    let data = m.current.remove(&old).unwrap();
                    m.changed.insert(old);
                    m.changed.insert(new.clone());
                    m.current.insert(new, data);
                }
                m.changed.insert(to.clone());
            }
            Op::Sync if result.is_ok() => {
                m.durable = m.current.clone();
                m.changed.clear();
            }
            _ => {}
        }
        if result.is_err() {
            break;
        }
    }
    m
}

fn crash_everywhere(bits: u32, kib: u32) {
    let blank = Image::mkfs_with(bits, kib, Some(1));
    let blank_bytes = blank.bytes();
    let device = |budget, survivors| CrashDevice::new(&blank_bytes, budget, survivors);
    // The whole workload, uncrashed: everything is there and fsck finds nothing.
    let mut fs = FileSystem::mount(device(None, None)).unwrap();
    let model = run(&mut fs);
    fs.sync().unwrap();
    let total = fs.device().writes;
    let image = Image::from_bytes("whole", &fs.into_device().after_crash());
    let fsck = image.fsck();
    assert!(fsck.clean(), "FAT{bits} uncrashed: {}", fsck.output);
    let mut check = FileSystem::mount(MemoryDevice::from_bytes(image.bytes())).unwrap();
    for (p, data) in &model.current {
        let mut buffer = vec![0; data.len() + 1];
        assert_eq!(check.read(&path(p), 0, &mut buffer).unwrap(), data.len());
        assert_eq!(&buffer[..data.len()], &data[..], "{p}");
    }
    assert!(
        total > 50,
        "the workload writes enough to be worth crashing ({total})"
    );

    let mut lost_seen = 0;
    for (budget, survivors) in (0..=total).flat_map(|b| [(b, None), (b, Some(b))]) {
        let mut fs = FileSystem::mount(device(Some(budget), survivors)).unwrap();
        let model = run(&mut fs);
        let image = Image::from_bytes("crash", &fs.into_device().after_crash());
        let fsck = image.fsck();
        assert!(
            fsck.errors.is_empty(),
            "FAT{bits}, crash after {budget} of {total} writes ({survivors:?}): {:?}\n{}",
            fsck.errors,
            fsck.output
        );
        lost_seen += usize::from(!fsck.harmless.is_empty());
        let mut after = FileSystem::mount(MemoryDevice::from_bytes(image.bytes()))
            .unwrap_or_else(|e| panic!("FAT{bits}, crash after {budget}: mount: {e}"));
        for (p, data) in &model.durable {
            if model.changed.contains(p) {
                continue;
            }
            let mut buffer = vec![0; data.len() + 1];
            let n = after
                .read(&path(p), 0, &mut buffer)
                .unwrap_or_else(|e| panic!("FAT{bits}, crash after {budget}: {p}: {e}"));
            assert_eq!(
                &buffer[..n],
                &data[..],
                "FAT{bits}, crash after {budget}: {p} changed"
            );
        }
    }
    // The test would pass trivially if no crash point were interesting.
    assert!(lost_seen > 0, "some crash points leave lost clusters");
}

#[test]
fn crashes_at_every_write_leave_only_lost_clusters_fat16() {
    if !tools_present("crashes_at_every_write_leave_only_lost_clusters_fat16") {
        return;
    }
    crash_everywhere(16, 2200);
}

#[test]
fn crashes_at_every_write_leave_only_lost_clusters_fat32() {
    if !tools_present("crashes_at_every_write_leave_only_lost_clusters_fat32") {
        return;
    }
    crash_everywhere(32, 34 * 1024);
}
