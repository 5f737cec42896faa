//! The journal over the hosted file API (a scratch host directory per writer): records
//! round-trip, damage of every kind is found, a torn tail is cut back, a second boot
//! continues the sequence, and escapes from the root are refused.

use libos_core::fs::{Backend, Files};
use libos_hosted::files::HostFiles;
use records::{crc32, record, verify, Journal, Problem, JOURNAL};
use std::path::PathBuf;

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two writers' roots side by side under one scratch directory; the files API of `me`.
fn hosted(tag: &str, me: &str) -> (Files<Box<dyn Backend>>, Scratch) {
    let dir = std::env::temp_dir().join(format!("tessera-records-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for who in ["a", "b"] {
        std::fs::create_dir_all(dir.join(who)).unwrap();
    }
    let backend: Box<dyn Backend> = Box::new(HostFiles::open(dir.join(me)).unwrap());
    (Files::new(backend), Scratch(dir))
}

#[test]
fn the_checksum_is_crc32_ieee() {
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn records_verify_and_every_kind_of_damage_is_found() {
    let good: String = (1..=3).map(|s| record("a", s)).collect();
    assert_eq!(
        verify(good.as_bytes()),
        Journal {
            records: 3,
            good_bytes: good.len(),
            problem: None
        }
    );
    let first = record("a", 1).len();
    let cases: Vec<(String, Problem)> = vec![
        (
            good.replacen("wrote record 2", "wrote record 7", 1),
            Problem::Checksum { line: 2 },
        ),
        (
            format!("{}{}", record("a", 1), record("a", 3)),
            Problem::Sequence {
                line: 2,
                expected: 2,
                found: 3,
            },
        ),
        (
            format!("{}{}", record("a", 1), record("a", 1)),
            Problem::Sequence {
                line: 2,
                expected: 2,
                found: 1,
            },
        ),
        (
            format!("{}{}", record("a", 1), &record("a", 2)[..10]),
            Problem::Torn { line: 2 },
        ),
        (
            format!("{}garbage\n", record("a", 1)),
            Problem::Malformed { line: 2 },
        ),
        (
            format!("{}rec 02 00000000 x\n", record("a", 1)),
            Problem::Malformed { line: 2 },
        ),
    ];
    for (text, problem) in cases {
        let j = verify(text.as_bytes());
        assert_eq!(j.problem, Some(problem), "{text}");
        assert_eq!(j.records, 1);
        assert_eq!(j.good_bytes, first);
    }
    let mut bad = record("a", 1).into_bytes();
    bad[10] = 0xff;
    assert_eq!(verify(&bad).problem, Some(Problem::Malformed { line: 1 }));
    // A crash can leave any bytes after the last line end: cut short, however long.
    assert_eq!(verify(&[0; 1000]).problem, Some(Problem::Torn { line: 1 }));
    let long = format!("{}\n", "x".repeat(1000));
    assert_eq!(
        verify(long.as_bytes()).problem,
        Some(Problem::Malformed { line: 1 })
    );
}

#[test]
fn a_boot_appends_verifies_and_the_next_continues() {
    let (mut files, scratch) = hosted("boots", "a");
    let mut pauses = 0;
    let run = records::run(&mut files, "a", "b", 5, || pauses += 1);
    assert_eq!(run.error, None);
    let verdicts = run.verdicts;
    assert_eq!(pauses, 5);
    assert!(verdicts.iter().all(|v| v.pass), "{verdicts:?}");
    assert_eq!(verdicts.len(), 2);
    assert_eq!(
        verdicts[0].to_string(),
        "CHECK records-a-journal: PASS (5 records verified, 0 from earlier boots, 5 appended and synced now)"
    );
    let on_host = std::fs::read_to_string(scratch.0.join("a").join(JOURNAL)).unwrap();
    assert_eq!(on_host.lines().count(), 5);
    assert!(on_host.starts_with("rec 1 "));
    // The next boot: a torn record at the end is cut back, then the sequence continues.
    let path = scratch.0.join("a").join(JOURNAL);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"rec 6 0000");
    std::fs::write(&path, &bytes).unwrap();
    let verdicts = records::run(&mut files, "a", "b", 3, || {}).verdicts;
    assert!(verdicts.iter().all(|v| v.pass), "{verdicts:?}");
    assert_eq!(verdicts[0].name, "records-a-earlier");
    assert!(verdicts[1]
        .detail
        .starts_with("8 records verified, 5 from earlier"));
    // Damage that is not a torn tail fails the boot's check.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("record 2", "record 9", 1)).unwrap();
    let verdicts = records::run(&mut files, "a", "b", 1, || {}).verdicts;
    assert!(!verdicts[0].pass, "{verdicts:?}");
    assert!(verdicts[0].detail.contains("checksum"), "{verdicts:?}");
}

#[test]
fn escapes_from_the_root_are_refused() {
    let (mut files, scratch) = hosted("escape", "a");
    std::fs::write(scratch.0.join("b").join(JOURNAL), record("b", 1)).unwrap();
    let v = records::confinement(&mut files, "a", "b");
    assert!(v.pass, "{v}");
    // Nothing was created anywhere.
    assert!(!scratch.0.join("a").join("b").exists());
    assert_eq!(std::fs::read_dir(scratch.0.join("a")).unwrap().count(), 0);
    // A root that does hold the other's subtree is caught.
    let backend: Box<dyn Backend> = Box::new(HostFiles::open(&scratch.0).unwrap());
    let mut whole = Files::new(backend);
    let v = records::confinement(&mut whole, "a", "b");
    assert!(!v.pass, "{v}");
    assert!(v.detail.contains("/b/journal.log"), "{v}");
}

/// A backend that fails every call after `left` calls with `ServerRestarted`, as the remote
/// backend does when `fs` restarts.
struct Failing {
    inner: HostFiles,
    left: usize,
}

macro_rules! pass_through {
    ($self:ident, $call:expr) => {{
        if $self.left == 0 {
            return Err(libos_core::fs::Error::ServerRestarted);
        }
        $self.left -= 1;
        $call
    }};
}

impl Backend for Failing {
    fn open(
        &mut self,
        path: &str,
        flags: libos_core::fs::OpenFlags,
    ) -> Result<libos_core::fs::Handle, libos_core::fs::Error> {
        pass_through!(self, self.inner.open(path, flags))
    }
    fn close(&mut self, h: libos_core::fs::Handle) -> Result<(), libos_core::fs::Error> {
        pass_through!(self, self.inner.close(h))
    }
    fn read(
        &mut self,
        h: libos_core::fs::Handle,
        offset: u64,
        buffer: &mut [u8],
    ) -> Result<usize, libos_core::fs::Error> {
        pass_through!(self, self.inner.read(h, offset, buffer))
    }
    fn write(
        &mut self,
        h: libos_core::fs::Handle,
        offset: u64,
        data: &[u8],
    ) -> Result<(usize, u64), libos_core::fs::Error> {
        pass_through!(self, self.inner.write(h, offset, data))
    }
    fn fstat(
        &mut self,
        h: libos_core::fs::Handle,
    ) -> Result<libos_core::fs::Metadata, libos_core::fs::Error> {
        pass_through!(self, self.inner.fstat(h))
    }
    fn stat(&mut self, path: &str) -> Result<libos_core::fs::Metadata, libos_core::fs::Error> {
        pass_through!(self, self.inner.stat(path))
    }
    fn read_dir(
        &mut self,
        path: &str,
    ) -> Result<Vec<libos_core::fs::DirEntry>, libos_core::fs::Error> {
        pass_through!(self, self.inner.read_dir(path))
    }
    fn mkdir(&mut self, path: &str) -> Result<(), libos_core::fs::Error> {
        pass_through!(self, self.inner.mkdir(path))
    }
    fn unlink(&mut self, path: &str) -> Result<(), libos_core::fs::Error> {
        pass_through!(self, self.inner.unlink(path))
    }
    fn rmdir(&mut self, path: &str) -> Result<(), libos_core::fs::Error> {
        pass_through!(self, self.inner.rmdir(path))
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), libos_core::fs::Error> {
        pass_through!(self, self.inner.rename(from, to))
    }
    fn fsync(&mut self, h: libos_core::fs::Handle) -> Result<(), libos_core::fs::Error> {
        pass_through!(self, self.inner.fsync(h))
    }
    fn truncate(
        &mut self,
        h: libos_core::fs::Handle,
        size: u64,
    ) -> Result<(), libos_core::fs::Error> {
        pass_through!(self, self.inner.truncate(h, size))
    }
    fn usage(&mut self) -> Result<libos_core::fs::Usage, libos_core::fs::Error> {
        pass_through!(self, self.inner.usage())
    }
}

#[test]
fn a_run_cut_off_by_a_restart_says_so_and_the_next_run_continues() {
    let (_, scratch) = hosted("restart", "a");
    let root = scratch.0.join("a");
    let failing: Box<dyn Backend> = Box::new(Failing {
        inner: HostFiles::open(&root).unwrap(),
        left: 40,
    });
    let mut files = Files::new(failing);
    let cut = records::run(&mut files, "a", "b", 20, || {});
    assert_eq!(cut.error, Some(libos_core::fs::Error::ServerRestarted));
    let last = cut.verdicts.last().unwrap();
    assert!(!last.pass && last.name == "records-a-journal", "{last}");
    let kept = verify(&std::fs::read(root.join(JOURNAL)).unwrap()).records;
    assert!(kept > 0 && kept < 20, "{kept}");
    // Attached again: the records kept are verified and the run appends its 20 after them.
    let backend: Box<dyn Backend> = Box::new(HostFiles::open(&root).unwrap());
    let mut files = Files::new(backend);
    let again = records::run(&mut files, "a", "b", 20, || {});
    assert_eq!(again.error, None);
    assert!(
        again.verdicts.iter().all(|v| v.pass),
        "{:?}",
        again.verdicts
    );
    assert_eq!(
        verify(&std::fs::read(root.join(JOURNAL)).unwrap()).records,
        kept + 20
    );
}

#[test]
fn the_small_file_bench_makes_syncs_and_removes_every_file() {
    let (mut files, scratch) = hosted("small", "a");
    let mut tick = 0;
    let mut now = || {
        tick += 10;
        tick
    };
    let (made, removed) =
        records::bench::small_files(&mut files, "small", 25, 4096, &mut now).unwrap();
    assert!(made > 0 && removed > 0);
    assert!(!scratch.0.join("a/small").exists(), "the directory is gone");
    // A second run starts from nothing again; an existing directory is an error.
    records::bench::small_files(&mut files, "small", 3, 10, &mut now).unwrap();
    files.mkdir("small").unwrap();
    assert!(records::bench::small_files(&mut files, "small", 3, 10, &mut now).is_err());
}

#[test]
fn the_sequential_bench_writes_reads_checks_and_removes() {
    let (mut files, scratch) = hosted("bench", "a");
    let mut tick = 0;
    let mut now = || {
        tick += 10;
        tick
    };
    let (w, r) =
        records::bench::sequential(&mut files, "bench.dat", 100_000, 4096, &mut now).unwrap();
    assert!(w > 0 && r > 0);
    assert!(!scratch.0.join("a/bench.dat").exists());
    assert_eq!(
        records::bench::sequential(&mut files, "bench.dat", 8192, 0, &mut now),
        Err(libos_core::fs::Error::Invalid)
    );
    assert_eq!(records::bench::pattern(0), 0);
    // The same place in the 251-byte cycle, in another 4 KiB block: another byte.
    assert_ne!(
        records::bench::pattern(0),
        records::bench::pattern(251 * 17)
    );
}
