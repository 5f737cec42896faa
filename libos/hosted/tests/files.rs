//! The file API over a host directory: every call, positions, and confinement.

use libos_core::fs::{Error, Files, OpenFlags, Whence};
use libos_hosted::files::HostFiles;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory under the system's temporary folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tessera-files-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root")).unwrap();
        Scratch(dir)
    }
    fn root(&self) -> PathBuf {
        self.0.join("root")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files(scratch: &Scratch) -> Files<HostFiles> {
    Files::new(HostFiles::open(scratch.root()).unwrap())
}

const RW_CREATE: OpenFlags =
    OpenFlags(OpenFlags::READ.0 | OpenFlags::WRITE.0 | OpenFlags::CREATE.0);

#[test]
fn write_read_seek_and_append() {
    let scratch = Scratch::new();
    let mut fs = files(&scratch);
    let fd = fs.open("/notes.txt", RW_CREATE).unwrap();
    assert_eq!(fs.write(fd, b"hello world"), Ok(11));
    assert_eq!(fs.lseek(fd, 6, Whence::Start), Ok(6));
    assert_eq!(fs.write(fd, b"there"), Ok(5));
    assert_eq!(fs.lseek(fd, -5, Whence::End), Ok(6));
    let mut buf = [0u8; 16];
    assert_eq!(fs.read(fd, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"there");
    assert_eq!(fs.read(fd, &mut buf), Ok(0), "at the end");
    assert_eq!(fs.lseek(fd, -1, Whence::Start), Err(Error::Invalid));
    assert_eq!(fs.lseek(fd, -3, Whence::Current), Ok(8));
    fs.fsync(fd).unwrap();
    fs.close(fd).unwrap();
    assert_eq!(
        std::fs::read(scratch.root().join("notes.txt")).unwrap(),
        b"hello there"
    );

    // Append: every write lands at the end, wherever the position was.
    let a = fs
        .open("notes.txt", OpenFlags::WRITE | OpenFlags::APPEND)
        .unwrap();
    fs.lseek(a, 0, Whence::Start).unwrap();
    fs.write(a, b"!").unwrap();
    assert_eq!(fs.lseek(a, 0, Whence::Current), Ok(12));
    fs.close(a).unwrap();
    assert_eq!(fs.read_file("notes.txt").unwrap(), b"hello there!");

    // Truncate on open, ftruncate, fstat.
    let t = fs
        .open("notes.txt", OpenFlags::WRITE | OpenFlags::TRUNCATE)
        .unwrap();
    assert_eq!(fs.fstat(t).unwrap().size, 0);
    fs.ftruncate(t, 3).unwrap();
    assert_eq!(fs.fstat(t).unwrap().size, 3);
    fs.close(t).unwrap();
    assert_eq!(fs.read_file("notes.txt").unwrap(), vec![0, 0, 0]);
    fs.truncate("notes.txt", 1).unwrap();
    assert_eq!(fs.stat("notes.txt").unwrap().size, 1);
    assert_eq!(fs.truncate("missing", 1), Err(Error::NotFound));
}

#[test]
fn flags_and_descriptors_are_enforced() {
    let scratch = Scratch::new();
    let mut fs = files(&scratch);
    assert_eq!(fs.open("missing", OpenFlags::READ), Err(Error::NotFound));
    let excl = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE;
    let fd = fs.open("once", excl).unwrap();
    assert_eq!(fs.open("once", excl), Err(Error::Exists));
    // Write-only: reading is a bad descriptor, and the reverse.
    assert_eq!(fs.read(fd, &mut [0u8; 4]), Err(Error::BadDescriptor));
    fs.close(fd).unwrap();
    assert_eq!(fs.close(fd), Err(Error::BadDescriptor), "closed twice");
    let r = fs.open("once", OpenFlags::READ).unwrap();
    assert_eq!(fs.write(r, b"x"), Err(Error::BadDescriptor));
    assert_eq!(fs.ftruncate(r, 0), Err(Error::BadDescriptor));
    // The lowest free descriptor is reused.
    let again = fs.open("once", OpenFlags::READ).unwrap();
    assert_ne!(again, r);
    fs.close(r).unwrap();
    assert_eq!(fs.open("once", OpenFlags::READ).unwrap(), r);
    assert_eq!(
        fs.open("x", OpenFlags::READ | OpenFlags::CREATE),
        Err(Error::Invalid)
    );
    fs.mkdir("dir").unwrap();
    assert_eq!(fs.open("dir", OpenFlags::READ), Err(Error::IsDirectory));

    let mut limited = Files::with_limit(HostFiles::open(scratch.root()).unwrap(), 2);
    let a = limited.open("once", OpenFlags::READ).unwrap();
    limited.open("once", OpenFlags::READ).unwrap();
    assert_eq!(
        limited.open("once", OpenFlags::READ),
        Err(Error::TooManyOpen)
    );
    limited.close(a).unwrap();
    assert!(limited.open("once", OpenFlags::READ).is_ok());
}

#[test]
fn directories_rename_remove_and_usage() {
    let scratch = Scratch::new();
    let mut fs = files(&scratch);
    fs.mkdir("docs").unwrap();
    assert_eq!(fs.mkdir("docs"), Err(Error::Exists));
    assert_eq!(fs.mkdir("no/such"), Err(Error::NotFound));
    fs.write_file("docs/b.txt", b"bee").unwrap();
    fs.write_file("docs/a long name.txt", b"ay").unwrap();
    let names: Vec<_> = fs
        .readdir("docs")
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.metadata.size))
        .collect();
    assert_eq!(
        names,
        [("a long name.txt".to_string(), 2), ("b.txt".to_string(), 3)]
    );
    assert!(fs.stat("/docs/").unwrap().is_directory);
    assert_eq!(fs.rmdir("docs"), Err(Error::NotEmpty));
    fs.rename("docs/b.txt", "c.txt").unwrap();
    assert_eq!(fs.stat("docs/b.txt"), Err(Error::NotFound));
    assert_eq!(fs.read_file("c.txt").unwrap(), b"bee");
    assert_eq!(fs.unlink("docs"), Err(Error::IsDirectory));
    fs.unlink("docs/a long name.txt").unwrap();
    fs.rmdir("docs").unwrap();
    assert_eq!(fs.rmdir("/"), Err(Error::Busy));
    let names: Vec<_> = fs
        .readdir("/")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["c.txt"]);
    let usage = fs.usage().unwrap();
    assert!(usage.block_bytes > 0 && usage.free_blocks <= usage.total_blocks);
}

#[test]
fn nothing_outside_the_directory_can_be_named() {
    let scratch = Scratch::new();
    std::fs::write(scratch.0.join("secret"), b"outside").unwrap();
    std::os::unix::fs::symlink(scratch.0.join("secret"), scratch.root().join("out")).unwrap();
    std::os::unix::fs::symlink("/etc", scratch.root().join("etc")).unwrap();
    std::fs::write(scratch.root().join("inside"), b"in").unwrap();
    std::os::unix::fs::symlink("inside", scratch.root().join("alias")).unwrap();
    let mut fs = files(&scratch);

    for path in ["../secret", "a/../../secret", "./inside", "a//b"] {
        assert_eq!(
            fs.open(path, OpenFlags::READ),
            Err(Error::InvalidName),
            "{path}"
        );
        assert_eq!(fs.stat(path), Err(Error::InvalidName), "{path}");
    }
    // A leading '/' is this directory's root, not the host's.
    assert_eq!(fs.stat("/secret"), Err(Error::NotFound));
    assert_eq!(fs.read_file("/inside").unwrap(), b"in");
    // Symbolic links out are refused; a link that stays inside works.
    assert_eq!(
        fs.open("out", OpenFlags::READ),
        Err(Error::PermissionDenied)
    );
    assert_eq!(
        fs.open("etc/passwd", OpenFlags::READ),
        Err(Error::PermissionDenied)
    );
    assert_eq!(fs.readdir("etc"), Err(Error::PermissionDenied));
    assert_eq!(
        fs.open("out", OpenFlags::WRITE | OpenFlags::TRUNCATE),
        Err(Error::PermissionDenied)
    );
    assert_eq!(fs.read_file("alias").unwrap(), b"in");
    // Listing shows the links themselves without following them out.
    let names: Vec<_> = fs
        .readdir("/")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["alias", "etc", "inside", "out"]);
    assert_eq!(std::fs::read(scratch.0.join("secret")).unwrap(), b"outside");

    // The backend checks again when called directly.
    use libos_core::fs::Backend;
    let mut raw = HostFiles::open(scratch.root()).unwrap();
    assert_eq!(raw.stat("/etc"), Err(Error::InvalidName));
    assert_eq!(raw.stat(".."), Err(Error::InvalidName));
    assert_eq!(raw.mkdir("../escape"), Err(Error::InvalidName));
    assert!(!scratch.0.join("escape").exists());
}
