//! Files: the read-only tree, /tmp, devices, links, descriptors.

use libos_linux::fs::{flags, mode, Entry, Files, Node, Source, Stream, Tree, MAX_FDS};
use libos_linux::Errno;

fn tree() -> Tree {
    let mut t = Tree::new();
    t.add("/usr/bin/prog", Node::File(b"\x7fELF program"));
    t.add("/lib/x86_64-linux-gnu/ld.so", Node::File(b"loader"));
    t.add(
        "/lib64/ld.so",
        Node::Link("/lib/x86_64-linux-gnu/ld.so".into()),
    );
    t.add("/usr/lib/libx.so.0", Node::Link("libx.so.0.1".into()));
    t.add("/usr/lib/libx.so.0.1", Node::File(b"libx"));
    t.add("/loop/a", Node::Link("b".into()));
    t.add("/loop/b", Node::Link("a".into()));
    t.add("/etc/hostname", Node::File(b"tessera\n"));
    t
}

fn files() -> Files {
    Files::new(tree(), "/usr/bin/prog", 64)
}

fn read_all(f: &mut Files, fd: i32, len: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    f.read(fd, len, None, &mut |s| {
        match s {
            Source::Bytes(b) => out.extend_from_slice(b),
            Source::Zeros(n) => out.extend(std::iter::repeat_n(0, n)),
            Source::Random(n) => out.extend(std::iter::repeat_n(0xaa, n)),
        }
        Ok(())
    })?;
    Ok(out)
}

#[test]
fn links_are_followed_absolute_and_relative_and_loops_end() {
    let f = files();
    let (at, entry) = f.resolve("/", "/lib64/ld.so", true).unwrap();
    assert_eq!(at, "/lib/x86_64-linux-gnu/ld.so");
    assert!(matches!(entry, Some(Entry::Ro(b"loader"))));
    let (at, _) = f.resolve("/usr", "lib/libx.so.0", true).unwrap();
    assert_eq!(at, "/usr/lib/libx.so.0.1");
    let (_, entry) = f.resolve("/", "/lib64/ld.so", false).unwrap();
    assert!(
        matches!(entry, Some(Entry::Link(_))),
        "not followed when asked not to"
    );
    assert_eq!(f.resolve("/", "/loop/a", true).unwrap_err(), Errno::ELOOP);
    assert_eq!(
        f.resolve("/", "/usr/bin/prog/x", true).unwrap_err(),
        Errno::ENOTDIR
    );
    assert_eq!(f.resolve("/", "/nope/x", true).unwrap_err(), Errno::ENOENT);
    assert_eq!(f.resolve("/", "", true).unwrap_err(), Errno::ENOENT);
    let (at, entry) = f.resolve("/", "/../../usr/./bin//prog", true).unwrap();
    assert_eq!(at, "/usr/bin/prog");
    assert!(entry.is_some());
    let (at, entry) = f.resolve("/", "/etc/missing", true).unwrap();
    assert_eq!(at, "/etc/missing");
    assert!(entry.is_none(), "missing, but its directory exists");
    assert_eq!(
        f.resolve("/", &"a/".repeat(3000), true).unwrap_err(),
        Errno::ENAMETOOLONG
    );
    assert_eq!(f.readlink("/", "/proc/self/exe").unwrap(), "/usr/bin/prog");
    assert_eq!(f.readlink("/", "/etc/hostname").unwrap_err(), Errno::EINVAL);
}

#[test]
fn the_tree_is_read_only_and_reads_move_the_offset() {
    let mut f = files();
    let fd = f.open("/", "/etc/hostname", flags::RDONLY).unwrap();
    assert_eq!(fd, 3, "the lowest free descriptor after 0, 1, 2");
    assert_eq!(read_all(&mut f, fd, 3).unwrap(), b"tes");
    assert_eq!(read_all(&mut f, fd, 100).unwrap(), b"sera\n");
    assert_eq!(read_all(&mut f, fd, 100).unwrap(), b"", "end of file");
    assert_eq!(f.seek(fd, -2, 2), Ok(6));
    assert_eq!(read_all(&mut f, fd, 100).unwrap(), b"a\n");
    assert_eq!(f.seek(fd, -100, 1), Err(Errno::EINVAL));
    assert_eq!(f.seek(fd, 0, 7), Err(Errno::EINVAL));
    assert_eq!(f.write(fd, b"x", None, &mut |_, _| {}), Err(Errno::EBADF));
    assert_eq!(
        f.open("/", "/etc/hostname", flags::WRONLY),
        Err(Errno::EROFS)
    );
    assert_eq!(
        f.open("/", "/etc/new", flags::WRONLY | flags::CREAT),
        Err(Errno::EROFS)
    );
    assert_eq!(f.open("/", "/etc/none", flags::RDONLY), Err(Errno::ENOENT));
    assert_eq!(
        f.open("/", "/etc/hostname", flags::RDONLY | flags::DIRECTORY),
        Err(Errno::ENOTDIR)
    );
    assert_eq!(
        f.open("/", "/lib64/ld.so", flags::RDONLY | flags::NOFOLLOW),
        Err(Errno::ELOOP)
    );
    assert_eq!(f.unlink("/", "/etc/hostname"), Err(Errno::EROFS));
    assert_eq!(f.access("/", "/etc/hostname", 4), Ok(()));
    assert_eq!(f.access("/", "/etc/hostname", 2), Err(Errno::EROFS));
    assert_eq!(f.access("/", "/etc/none", 0), Err(Errno::ENOENT));
    let status = f.fstat(fd).unwrap();
    assert_eq!(status.size, 8);
    assert_eq!(status.mode & 0o170000, mode::REGULAR);
    f.close(fd).unwrap();
    assert_eq!(f.close(fd), Err(Errno::EBADF));
    assert_eq!(f.fstat(fd), Err(Errno::EBADF));
}

#[test]
fn tmp_files_are_created_written_unlinked_and_bounded() {
    let mut f = files();
    let create = flags::RDWR | flags::CREAT | flags::EXCL;
    let fd = f.open("/", "/tmp/iperf3.abc", create).unwrap();
    assert_eq!(f.open("/", "/tmp/iperf3.abc", create), Err(Errno::EEXIST));
    assert_eq!(f.write(fd, b"hello", None, &mut |_, _| {}), Ok(5));
    f.unlink("/", "/tmp/iperf3.abc").unwrap();
    assert_eq!(
        f.stat_path("/", "/tmp/iperf3.abc", true),
        Err(Errno::ENOENT)
    );
    // Still readable through the descriptor after the unlink.
    f.seek(fd, 0, 0).unwrap();
    assert_eq!(read_all(&mut f, fd, 10).unwrap(), b"hello");
    f.truncate(fd, 32).unwrap();
    assert_eq!(f.fstat(fd).unwrap().size, 32);
    // The budget (64 bytes) bounds what /tmp holds.
    let other = f.open("/", "/tmp/big", create).unwrap();
    assert_eq!(f.write(other, &[1; 60], None, &mut |_, _| {}), Ok(60));
    assert_eq!(
        f.write(other, &[1; 10], None, &mut |_, _| {}),
        Err(Errno::ENOSPC)
    );
    assert_eq!(f.truncate(other, 1000), Err(Errno::ENOSPC));
    // Writes past the end leave a zero-filled gap; O_APPEND writes at the end.
    let gap = f
        .open("/", "/tmp/gap", flags::WRONLY | flags::CREAT)
        .unwrap();
    f.unlink("/", "/tmp/big").unwrap();
    f.seek(gap, 2, 0).unwrap();
    f.write(gap, b"x", None, &mut |_, _| {}).unwrap();
    let again = f.open("/", "/tmp/gap", flags::RDONLY).unwrap();
    assert_eq!(read_all(&mut f, again, 10).unwrap(), b"\0\0x");
    let append = f
        .open("/", "/tmp/gap", flags::WRONLY | flags::APPEND)
        .unwrap();
    f.write(append, b"y", None, &mut |_, _| {}).unwrap();
    assert_eq!(f.fstat(again).unwrap().size, 4);
    assert_eq!(
        f.truncate(again, 0),
        Err(Errno::EINVAL),
        "read-only descriptor"
    );
    assert_eq!(
        f.open("/", "/tmp/sub/x", flags::WRONLY | flags::CREAT),
        Err(Errno::ENOENT)
    );
}

#[test]
fn devices_and_the_console_behave_as_on_linux() {
    let mut f = files();
    let null = f.open("/", "/dev/null", flags::RDWR).unwrap();
    assert_eq!(read_all(&mut f, null, 10).unwrap(), b"");
    assert_eq!(f.write(null, b"gone", None, &mut |_, _| panic!()), Ok(4));
    let zero = f.open("/", "/dev/zero", flags::RDONLY).unwrap();
    assert_eq!(read_all(&mut f, zero, 4).unwrap(), vec![0; 4]);
    let random = f.open("/", "/dev/urandom", flags::RDONLY).unwrap();
    assert_eq!(read_all(&mut f, random, 3).unwrap(), vec![0xaa; 3]);
    let mut seen = Vec::new();
    f.write(2, b"err", None, &mut |s, b| seen.push((s, b.to_vec())))
        .unwrap();
    assert_eq!(seen, vec![(Stream::Stderr, b"err".to_vec())]);
    assert_eq!(read_all(&mut f, 0, 10).unwrap(), b"", "stdin is at its end");
    assert_eq!(f.seek(1, 0, 0), Err(Errno::ESPIPE));
    assert_eq!(f.fstat(null).unwrap().rdev, 1 << 8 | 3);
}

#[test]
fn directories_list_the_tree_and_the_mounts() {
    let mut f = files();
    f.open("/", "/tmp/t1", flags::WRONLY | flags::CREAT)
        .unwrap();
    let root = f.open("/", "/", flags::RDONLY | flags::DIRECTORY).unwrap();
    let names: Vec<String> = f.entries(root).unwrap().into_iter().map(|e| e.0).collect();
    for name in [
        ".", "..", "dev", "proc", "tmp", "usr", "lib", "lib64", "etc", "loop",
    ] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    assert_eq!(names.len(), 10, "each name once: {names:?}");
    f.advance(root, 4).unwrap();
    assert_eq!(f.entries(root).unwrap().len(), 6);
    let tmp = f.open("/", "/tmp", flags::RDONLY).unwrap();
    let names: Vec<String> = f.entries(tmp).unwrap().into_iter().map(|e| e.0).collect();
    assert_eq!(names, vec![".", "..", "t1"]);
    assert_eq!(read_all(&mut f, tmp, 1), Err(Errno::EISDIR));
    assert_eq!(f.entries(1), Err(Errno::ENOTDIR));
    assert_eq!(f.open("/", "/tmp", flags::WRONLY), Err(Errno::EISDIR));
}

#[test]
fn descriptors_are_duplicated_share_offsets_and_run_out() {
    let mut f = files();
    let fd = f.open("/", "/etc/hostname", flags::RDONLY).unwrap();
    let copy = f.dup(fd, 0, false).unwrap();
    assert_eq!(read_all(&mut f, fd, 3).unwrap(), b"tes");
    assert_eq!(
        read_all(&mut f, copy, 3).unwrap(),
        b"ser",
        "one shared offset"
    );
    assert_eq!(f.dup_to(fd, 100, true), Ok(100));
    assert_eq!(f.cloexec(100), Ok(true));
    assert_eq!(f.dup_to(fd, MAX_FDS as i32, false), Err(Errno::EBADF));
    let mut opened = 0;
    loop {
        match f.open("/", "/etc/hostname", flags::RDONLY) {
            Ok(_) => opened += 1,
            Err(e) => {
                assert_eq!(e, Errno::EMFILE);
                break;
            }
        }
    }
    assert_eq!(opened, MAX_FDS - 6, "0, 1, 2, fd, copy, 100 were taken");
}
