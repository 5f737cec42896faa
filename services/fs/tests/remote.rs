//! The library OS's file API through its remote backend, against the service in-process:
//! two clients, each confined to its directory, sharing one volume.

mod common;

use common::{service, transport, Area, Shared};
use libos_core::fs::{Error, Files, OpenFlags, Remote, Whence};
use proto::{Loopback, Message, Name};

type Client = Files<Remote<Loopback<Box<dyn FnMut(&Message) -> Message>>, Area>>;

fn client(service: &Shared, areas: &[(Name, Area)], index: usize, badge: u64) -> Client {
    let (region, area) = areas[index].clone();
    let mut t = transport(service, badge);
    let boxed: Box<dyn FnMut(&Message) -> Message> =
        Box::new(move |m| proto::Transport::call(&mut t, m));
    Files::new(Remote::attach(Loopback(boxed), area, region, 0x1234 + badge).unwrap())
}

const CREATE: OpenFlags = OpenFlags(OpenFlags::READ.0 | OpenFlags::WRITE.0 | OpenFlags::CREATE.0);

#[test]
fn every_call_works_through_the_service() {
    let Some((svc, areas)) = service("editor-fs:/editor", "16") else {
        return;
    };
    let mut fs = client(&svc, &areas, 0, 5);
    fs.mkdir("/docs").unwrap();
    let fd = fs.open("/docs/A long name.txt", CREATE).unwrap();
    // Larger than the 64 KiB region: split into several requests.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(fs.write(fd, &big), Ok(big.len()));
    assert_eq!(fs.lseek(fd, 0, Whence::Start), Ok(0));
    assert_eq!(fs.read_to_end(fd).unwrap(), big);
    assert_eq!(fs.lseek(fd, -10, Whence::End), Ok(199_990));
    fs.ftruncate(fd, 5).unwrap();
    assert_eq!(fs.fstat(fd).unwrap().size, 5);
    fs.fsync(fd).unwrap();
    fs.close(fd).unwrap();
    assert_eq!(fs.close(fd), Err(Error::BadDescriptor));

    let a = fs
        .open("docs/A long name.txt", OpenFlags::WRITE | OpenFlags::APPEND)
        .unwrap();
    fs.write(a, b"++").unwrap();
    assert_eq!(fs.lseek(a, 0, Whence::Current), Ok(7));
    assert_eq!(
        fs.unlink("docs/A long name.txt"),
        Err(Error::Busy),
        "open files stay"
    );
    assert_eq!(
        fs.rename("docs", "papers"),
        Err(Error::Busy),
        "so do their directories"
    );
    fs.close(a).unwrap();
    assert_eq!(
        fs.read_file("docs/a LONG name.txt").unwrap(),
        [0, 1, 2, 3, 4, b'+', b'+']
    );

    fs.write_file("docs/b", b"bee").unwrap();
    let names: Vec<_> = fs
        .readdir("docs")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["A long name.txt", "b"]);
    fs.rename("docs/b", "c").unwrap();
    assert_eq!(fs.stat("c").unwrap().size, 3);
    assert_eq!(fs.rmdir("docs"), Err(Error::NotEmpty));
    fs.unlink("docs/A long name.txt").unwrap();
    fs.rmdir("docs").unwrap();
    assert_eq!(fs.rmdir("/"), Err(Error::Busy));
    assert_eq!(
        fs.open("c", CREATE | OpenFlags::EXCLUSIVE),
        Err(Error::Exists)
    );
    assert_eq!(fs.open("nope", OpenFlags::READ), Err(Error::NotFound));
    assert_eq!(fs.open("/", OpenFlags::READ), Err(Error::IsDirectory));
    let usage = fs.usage().unwrap();
    assert!(usage.free_blocks > 0 && usage.free_blocks < usage.total_blocks);

    // What the client wrote is on the volume under its root, and the volume is clean.
    let mut service = svc.borrow_mut();
    service.sync().unwrap();
    let volume = service.volume();
    let c = libos_fat::Path::parse("editor/c").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(volume.read(&c, 0, &mut buf).unwrap(), 3);
    assert!(common::fsck_clean(volume.device().as_bytes()));
}

#[test]
fn each_client_sees_only_its_own_directory() {
    let Some((svc, areas)) = service("editor-fs:/editor,indexer-fs:/indexer", "16") else {
        return;
    };
    let mut editor = client(&svc, &areas, 0, 5);
    let mut indexer = client(&svc, &areas, 1, 6);
    editor.write_file("/secret.txt", b"editor's").unwrap();
    indexer.write_file("/secret.txt", b"indexer's").unwrap();
    assert_eq!(editor.read_file("secret.txt").unwrap(), b"editor's");
    assert_eq!(indexer.read_file("secret.txt").unwrap(), b"indexer's");
    for path in [
        "../indexer/secret.txt",
        "/../indexer",
        "..",
        "a/../../x",
        "./secret.txt",
    ] {
        assert_eq!(
            editor.open(path, OpenFlags::READ),
            Err(Error::InvalidName),
            "{path}"
        );
    }
    // The client's "/" is its root: the other directory is not there to list.
    let names: Vec<_> = editor
        .readdir("/")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["secret.txt"]);
    assert_eq!(editor.stat("/indexer"), Err(Error::NotFound));
}

#[test]
fn two_writers_of_one_file_get_whole_writes_in_arrival_order() {
    // Both clients see the same directory: /shared is the indexer's root and under the
    // editor's.
    let Some((svc, areas)) = service("editor-fs:/,indexer-fs:/shared", "16") else {
        return;
    };
    let mut editor = client(&svc, &areas, 0, 5);
    let mut indexer = client(&svc, &areas, 1, 6);
    let append = OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE;
    let e = editor.open("shared/log", append).unwrap();
    let i = indexer.open("log", append).unwrap();
    let mut expected = Vec::new();
    for round in 0..20u8 {
        let a = vec![b'E'; 100 + round as usize];
        let b = vec![b'I'; 300 - round as usize];
        editor.write(e, &a).unwrap();
        indexer.write(i, &b).unwrap();
        expected.extend_from_slice(&a);
        expected.extend_from_slice(&b);
    }
    assert_eq!(
        indexer.read_file("log").unwrap(),
        expected,
        "appends never interleave"
    );

    // Overlapping writes at one offset: the later one's bytes stay.
    let we = editor.open("shared/log", OpenFlags::WRITE).unwrap();
    let wi = indexer.open("log", OpenFlags::WRITE).unwrap();
    editor.write(we, b"first writer").unwrap();
    indexer.write(wi, b"SECOND").unwrap();
    let got = editor.read_file("shared/log").unwrap();
    assert_eq!(&got[..12], b"SECONDwriter");
    // Neither can remove it while the other holds it open.
    editor.close(we).unwrap();
    editor.close(e).unwrap();
    assert_eq!(editor.unlink("shared/log"), Err(Error::Busy));
    indexer.close(wi).unwrap();
    indexer.close(i).unwrap();
    editor.unlink("shared/log").unwrap();
}

#[test]
fn per_client_open_limits_and_restart() {
    let Some((svc, areas)) = service("editor-fs:/editor,indexer-fs:/indexer", "2") else {
        return;
    };
    let mut editor = client(&svc, &areas, 0, 5);
    let mut indexer = client(&svc, &areas, 1, 6);
    let a = editor.open("a", CREATE).unwrap();
    editor.open("b", CREATE).unwrap();
    assert_eq!(editor.open("c", CREATE), Err(Error::TooManyOpen));
    assert_eq!(editor.stat("c"), Err(Error::NotFound), "nothing created");
    // The other client's limit is its own.
    indexer.open("a", CREATE).unwrap();
    indexer.open("b", CREATE).unwrap();
    editor.close(a).unwrap();
    editor.open("c", CREATE).unwrap();
    // The editor restarts and attaches again: its old handles are gone.
    let mut again = client(&svc, &areas, 0, 5);
    again.open("a", CREATE).unwrap();
    again.open("b", CREATE).unwrap();
    assert_eq!(
        editor.write(libos_core::fs::Fd(1), b"x"),
        Err(Error::BadDescriptor)
    );
}

#[test]
fn after_a_restart_clients_get_a_clear_error_and_can_attach_again() {
    let Some((svc, areas)) = service("editor-fs:/editor", "16") else {
        return;
    };
    let mut editor = client(&svc, &areas, 0, 5);
    let fd = editor.open("kept", CREATE).unwrap();
    editor.write(fd, b"before").unwrap();
    editor.fsync(fd).unwrap();
    // The service restarts (its next instance, over the same volume).
    let bytes = svc.borrow_mut().volume().device().as_bytes().to_vec();
    let volume = libos_fat::FileSystem::mount(libos_fat::MemoryDevice::from_bytes(bytes)).unwrap();
    let config = fs::Config::from_args(|k| (k == "roots").then_some("editor-fs:/editor")).unwrap();
    let area = areas[0].1.clone();
    *svc.borrow_mut() = fs::FileService::new(volume, &config, |_| Some(area.clone()), 2);

    assert_eq!(editor.write(fd, b"x"), Err(Error::ServerRestarted));
    assert_eq!(editor.stat("kept"), Err(Error::ServerRestarted));
    assert_eq!(Error::ServerRestarted.errno(), 116);
    let mut again = client(&svc, &areas, 0, 5);
    assert_eq!(
        again.read_file("kept").unwrap(),
        b"before",
        "fsync'd data survived"
    );
}

#[test]
fn changes_to_the_tree_are_on_the_disk_when_answered() {
    let Some((svc, areas)) = service("editor-fs:/editor", "16") else {
        return;
    };
    let mut fs = client(&svc, &areas, 0, 5);
    // What the disk holds now, as a fresh mount (nothing the service caches) sees it.
    let on_disk = |svc: &Shared| {
        let bytes = svc.borrow_mut().volume().device().as_bytes().to_vec();
        let mut volume =
            libos_fat::FileSystem::mount(libos_fat::MemoryDevice::from_bytes(bytes)).unwrap();
        let root = libos_fat::Path::parse("editor").unwrap();
        let mut names: Vec<String> = volume
            .read_dir(&root)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        names
    };
    fs.mkdir("made").unwrap();
    fs.mkdir("gone").unwrap();
    assert_eq!(on_disk(&svc), ["gone", "made"]);
    fs.rename("made", "A longer name").unwrap();
    fs.rmdir("gone").unwrap();
    assert_eq!(on_disk(&svc), ["A longer name"]);
    fs.write_file("file", b"x").unwrap();
    fs.unlink("file").unwrap();
    assert_eq!(on_disk(&svc), ["A longer name"]);
}
