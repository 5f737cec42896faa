//! The shell's file commands over the hosted backend (a scratch host directory), and what
//! they say when the system has no file service.

use libos_core::fs::Files;
use libos_hosted::files::HostFiles;
use proto::devices::PciFunction;
use proto::memory::Usage;
use proto::proc::{CapInfo, ComponentInfo, ComponentUsage};
use proto::{ComponentId, Name};
use shell::backend::FileApi;
use shell::{Backend, Failure, Shell, PROMPT};
use std::path::PathBuf;

/// A system that has only a file API (or none).
struct FilesOnly(Option<FileApi>);

const NO: Failure = Failure::NotSupported("not in this test");

impl Backend for FilesOnly {
    fn components(&mut self) -> Result<Vec<ComponentInfo>, Failure> {
        Err(NO)
    }
    fn caps(&mut self, _: ComponentId) -> Result<Vec<CapInfo>, Failure> {
        Err(NO)
    }
    fn lookup(&mut self, _: Name) -> Result<u64, Failure> {
        Err(NO)
    }
    fn spawn(&mut self, _: Name) -> Result<ComponentId, Failure> {
        Err(NO)
    }
    fn kill(&mut self, _: ComponentId) -> Result<(), Failure> {
        Err(NO)
    }
    fn usage(&mut self) -> Result<Usage, Failure> {
        Err(NO)
    }
    fn component_usage(&mut self) -> Result<Vec<ComponentUsage>, Failure> {
        Err(NO)
    }
    fn devices(&mut self) -> Result<Vec<PciFunction>, Failure> {
        Err(NO)
    }
    fn halt(&mut self) -> Result<(), Failure> {
        Err(NO)
    }
    fn files(&mut self) -> Result<&mut FileApi, Failure> {
        self.0.as_mut().ok_or(Failure::Unavailable("fs"))
    }
}

/// What the shell prints for `line` (without the prompt, with `\n` line ends).
fn run(backend: &mut FilesOnly, line: &str) -> String {
    let mut out = Vec::new();
    let mut shell = Shell::new();
    shell.feed(format!("{line}\r").as_bytes(), backend, &mut out);
    let text = String::from_utf8(out).unwrap().replace("\r\n", "\n");
    let text = text.strip_suffix(PROMPT).unwrap().to_string();
    // The echo of the line comes first.
    text.split_once('\n').unwrap().1.to_string()
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hosted(tag: &str) -> (FilesOnly, Scratch) {
    let dir = std::env::temp_dir().join(format!("tessera-shell-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let backend: Box<dyn libos_core::fs::Backend> = Box::new(HostFiles::open(&dir).unwrap());
    (FilesOnly(Some(Files::new(backend))), Scratch(dir))
}

#[test]
fn file_commands_over_a_host_directory() {
    let (mut sh, scratch) = hosted("commands");
    assert_eq!(run(&mut sh, "ls"), "/: empty\n");
    assert_eq!(run(&mut sh, "mkdir docs"), "created docs\n");
    assert_eq!(
        run(&mut sh, "write docs/hello.txt hello   from the shell"),
        "wrote 21 bytes to docs/hello.txt\n"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.0.join("docs/hello.txt")).unwrap(),
        "hello from the shell\n"
    );
    assert_eq!(
        run(&mut sh, "cat /docs/hello.txt"),
        "hello from the shell\n"
    );
    std::fs::write(scratch.0.join("top"), b"no line end").unwrap();
    assert_eq!(run(&mut sh, "cat top"), "no line end\n");
    assert_eq!(run(&mut sh, "ls /"), "SIZE  NAME\n-     docs/\n11    top\n");
    assert_eq!(run(&mut sh, "ls docs"), "SIZE  NAME\n21    hello.txt\n");
    assert_eq!(
        run(&mut sh, "rm docs"),
        "error: rm docs: directory not empty\n"
    );
    assert_eq!(
        run(&mut sh, "rm docs/hello.txt"),
        "removed docs/hello.txt\n"
    );
    assert_eq!(run(&mut sh, "rm docs"), "removed docs\n");
    assert!(!scratch.0.join("docs").exists());
    let df = run(&mut sh, "df");
    let mut lines = df.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["SIZE-KIB", "USED-KIB", "FREE-KIB", "USE%"]);
    let row: Vec<u64> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|w| w.trim_end_matches('%').parse().unwrap())
        .collect();
    assert!(
        row[0] > 0 && row[1] + row[2] <= row[0] && row[3] <= 100,
        "{df}"
    );
}

#[test]
fn file_errors_are_one_line_each() {
    let (mut sh, scratch) = hosted("errors");
    std::fs::write(
        scratch.0.join("big"),
        vec![b'x'; shell::files::CAT_LIMIT + 10],
    )
    .unwrap();
    let big = run(&mut sh, "cat big");
    assert!(
        big.ends_with("\n(10 more bytes not shown)\n"),
        "{}",
        &big[big.len() - 40..]
    );
    for (line, expected) in [
        (
            "cat missing",
            "error: cat missing: no such file or directory\n",
        ),
        (
            "cat ../etc/passwd",
            "error: cat ../etc/passwd: invalid name\n",
        ),
        (
            "ls nowhere",
            "error: ls nowhere: no such file or directory\n",
        ),
        ("mkdir big", "error: mkdir big: already exists\n"),
        ("cat /", "error: cat /: is a directory\n"),
        ("rm /", "error: rm /: busy (open, or the root)\n"),
        ("write", "error: usage: write FILE TEXT...\n"),
    ] {
        assert_eq!(run(&mut sh, line), expected, "{line}");
    }
}

#[test]
fn without_a_file_service_the_commands_say_so() {
    let mut sh = FilesOnly(None);
    for line in ["ls", "cat a", "write a b", "rm a", "mkdir a", "df"] {
        let out = run(&mut sh, line);
        assert!(
            out.starts_with("error: ") && out.ends_with(": service fs is not available\n"),
            "{line}: {out}"
        );
        assert_eq!(out.lines().count(), 1);
    }
}

/// A FAT16 image made by `mkfs.fat`, or `None` (the test is skipped) without dosfstools.
fn fat_image() -> Option<Vec<u8>> {
    let mkfs = ["/usr/sbin/mkfs.fat", "/sbin/mkfs.fat", "/usr/bin/mkfs.fat"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file());
    let Some(mkfs) = mkfs else {
        eprintln!("SKIPPED: mkfs.fat missing (apt-get install dosfstools)");
        return None;
    };
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("tessera-shell-fat-{}-{n}.img", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let ok = std::process::Command::new(mkfs)
        .args(["-F", "16", "-s", "2", "-C"])
        .arg(&path)
        .arg("8192")
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "mkfs.fat failed");
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    Some(bytes)
}

#[test]
fn file_commands_through_the_file_service() {
    use proto::fs::DataArea;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    let Some(image) = fat_image() else { return };
    let volume = libos_fat::FileSystem::mount(libos_fat::MemoryDevice::from_bytes(image)).unwrap();
    let config = fs::Config::from_args(|k| (k == "roots").then_some("shell-fs:/home")).unwrap();
    let area: Arc<[AtomicU32]> = (0..16 * 1024).map(|_| AtomicU32::new(0)).collect();
    let served = area.clone();
    let service = Rc::new(RefCell::new(fs::FileService::new(
        volume,
        &config,
        |_| Some(served.clone()),
        1,
    )));
    let server = service.clone();
    let transport = proto::Loopback(move |m: &proto::Message| {
        proto::fs::dispatch(&mut *server.borrow_mut(), 3, m)
    });
    assert_eq!(area.size(), 64 * 1024);
    let remote =
        libos_core::fs::Remote::attach(transport, area, Name::new("shell-fs").unwrap(), 42)
            .unwrap();
    let backend: Box<dyn libos_core::fs::Backend> = Box::new(remote);
    let mut sh = FilesOnly(Some(Files::new(backend)));

    assert_eq!(run(&mut sh, "ls"), "/: empty\n");
    assert_eq!(
        run(&mut sh, "mkdir Long Directory"),
        "error: usage: mkdir DIR\n"
    );
    assert_eq!(run(&mut sh, "mkdir notes"), "created notes\n");
    assert_eq!(
        run(
            &mut sh,
            "write notes/a-long-file-name-for-fat.txt stored on FAT"
        ),
        "wrote 14 bytes to notes/a-long-file-name-for-fat.txt\n"
    );
    assert_eq!(
        run(&mut sh, "cat notes/A-Long-File-Name-For-FAT.txt"),
        "stored on FAT\n"
    );
    assert_eq!(
        run(&mut sh, "ls notes"),
        "SIZE  NAME\n14    a-long-file-name-for-fat.txt\n"
    );
    assert_eq!(
        run(&mut sh, "cat ../etc"),
        "error: cat ../etc: invalid name\n"
    );
    // On the volume, it is under the shell's root, /home, with its long name.
    let stored = libos_fat::Path::parse("home/notes/a-long-file-name-for-fat.txt").unwrap();
    assert_eq!(
        service.borrow_mut().volume().stat(&stored).unwrap().size,
        14
    );
    let df = run(&mut sh, "df");
    assert!(df.starts_with("SIZE-KIB"), "{df}");
    assert_eq!(
        run(&mut sh, "rm notes"),
        "error: rm notes: directory not empty\n"
    );
    assert_eq!(
        run(&mut sh, "rm notes/a-long-file-name-for-fat.txt"),
        "removed notes/a-long-file-name-for-fat.txt\n"
    );
    assert_eq!(run(&mut sh, "rm notes"), "removed notes\n");

    let mut service = service.borrow_mut();
    let home = libos_fat::Path::parse("home").unwrap();
    assert_eq!(service.volume().read_dir(&home).unwrap(), []);
}

/// The file service behind `Clients`: attaching builds a `Remote` over a `Loopback` into
/// whichever instance of the service is current.
struct FsOnly {
    service: Rc<RefCell<Option<Service>>>,
    area: Arc<[AtomicU32]>,
    attaches: Rc<RefCell<u32>>,
}

type Service = fs::FileService<libos_fat::MemoryDevice, Arc<[AtomicU32]>>;
type Boxed = proto::Loopback<Box<dyn FnMut(&proto::Message) -> proto::Message>>;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

impl shell::clients::Connect for FsOnly {
    type Transport = Boxed;

    fn connect(&mut self, _: &'static str) -> Option<Boxed> {
        None
    }

    fn lookup(&mut self, _: Name) -> Result<u64, proto::naming::Error> {
        Err(proto::naming::Error::NotFound)
    }

    fn attach_files(&mut self) -> Result<FileApi, libos_core::fs::Error> {
        *self.attaches.borrow_mut() += 1;
        let service = self.service.clone();
        let transport = proto::Loopback(Box::new(move |m: &proto::Message| {
            let mut current = service.borrow_mut();
            proto::fs::dispatch(current.as_mut().unwrap(), 3, m)
        })
            as Box<dyn FnMut(&proto::Message) -> proto::Message>);
        let nonce = 7 + u64::from(*self.attaches.borrow());
        let remote = libos_core::fs::Remote::attach(
            transport,
            self.area.clone(),
            Name::new("shell-fs").unwrap(),
            nonce,
        )?;
        let backend: Box<dyn libos_core::fs::Backend> = Box::new(remote);
        Ok(Files::new(backend))
    }
}

#[test]
fn a_restarted_file_service_is_one_error_then_the_shell_attaches_again() {
    let Some(image) = fat_image() else { return };
    let config = fs::Config::from_args(|k| (k == "roots").then_some("shell-fs:/")).unwrap();
    let area: Arc<[AtomicU32]> = (0..16 * 1024).map(|_| AtomicU32::new(0)).collect();
    let instance = |device: libos_fat::MemoryDevice, generation: u16| {
        let served = area.clone();
        let volume = libos_fat::FileSystem::mount(device).unwrap();
        fs::FileService::new(volume, &config, move |_| Some(served.clone()), generation)
    };
    let service = Rc::new(RefCell::new(Some(instance(
        libos_fat::MemoryDevice::from_bytes(image),
        1,
    ))));
    let attaches = Rc::new(RefCell::new(0));
    let mut clients = shell::clients::Clients::new(FsOnly {
        service: service.clone(),
        area: area.clone(),
        attaches: attaches.clone(),
    });
    let mut shell = Shell::new();
    let mut say = |line: &str, clients: &mut shell::clients::Clients<FsOnly>| {
        let mut out = Vec::new();
        shell.feed(format!("{line}\r").as_bytes(), clients, &mut out);
        let text = String::from_utf8(out).unwrap().replace("\r\n", "\n");
        let text = text.strip_suffix(PROMPT).unwrap().to_string();
        text.split_once('\n').unwrap().1.to_string()
    };
    assert_eq!(
        say("write kept.txt before the restart", &mut clients),
        "wrote 19 bytes to kept.txt\n"
    );
    assert_eq!(*attaches.borrow(), 1);
    // The service restarts (a new instance over the same volume).
    let old = service.borrow_mut().take().unwrap();
    let device = old.into_volume().into_device();
    *service.borrow_mut() = Some(instance(device, 2));
    let failed = say("cat kept.txt", &mut clients);
    assert!(
        failed.starts_with("error: cat kept.txt: ") && failed.lines().count() == 1,
        "{failed}"
    );
    assert_eq!(say("cat kept.txt", &mut clients), "before the restart\n");
    assert_eq!(*attaches.borrow(), 2);
}
