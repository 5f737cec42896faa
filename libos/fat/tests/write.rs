//! Writing through the library, then asking Linux's tools what they see.

mod common;

use common::{random_bytes, tools_present, Image};
use libos_fat::{Error, FileSystem, MemoryDevice, Path};

fn path(text: &str) -> Path {
    Path::parse(text).unwrap()
}

fn mount(image: &Image) -> FileSystem<MemoryDevice> {
    FileSystem::mount(MemoryDevice::from_bytes(image.bytes())).unwrap()
}

/// Syncs and stores the volume back into its image file.
fn save(mut fs: FileSystem<MemoryDevice>, image: &Image) {
    fs.sync().unwrap();
    image.write(fs.into_device().as_bytes());
}

fn read_all(fs: &mut FileSystem<MemoryDevice>, p: &str) -> Vec<u8> {
    let size = fs.stat(&path(p)).unwrap().size as usize;
    let mut buffer = vec![0; size];
    assert_eq!(fs.read(&path(p), 0, &mut buffer).unwrap(), size);
    buffer
}

/// Every path the library lists, as `mdir -/ -b` prints them.
fn tree(fs: &mut FileSystem<MemoryDevice>, dir: &Path, out: &mut Vec<String>) {
    for entry in fs.read_dir(dir).unwrap() {
        let child = dir.child(&entry.name).unwrap();
        if entry.metadata.is_directory {
            out.push(format!("{}/", child.as_str()));
            tree(fs, &child, out);
        } else {
            out.push(child.as_str().to_string());
        }
    }
}

fn sorted_tree(fs: &mut FileSystem<MemoryDevice>) -> Vec<String> {
    let mut out = Vec::new();
    tree(fs, &Path::root(), &mut out);
    out.sort();
    out
}

fn image(bits: u32) -> Image {
    Image::mkfs(bits, if bits == 16 { 16 * 1024 } else { 40 * 1024 })
}

#[test]
fn mtools_and_fsck_agree_with_what_we_wrote() {
    if !tools_present("mtools_and_fsck_agree_with_what_we_wrote") {
        return;
    }
    for bits in [16, 32] {
        let image = image(bits);
        let mut fs = mount(&image);
        let mut rng = fastrand::Rng::with_seed(u64::from(bits) * 3);
        let big = random_bytes(&mut rng, 70_000);
        let deep = "docs/Sub Dir With A Long Name";
        fs.mkdir(&path("docs")).unwrap();
        fs.mkdir(&path(deep)).unwrap();
        let long = format!("{deep}/A long file name.txt");
        fs.create(&path(&long)).unwrap();
        fs.write(&path(&long), 0, &big[..50_000]).unwrap();
        assert_eq!(fs.append(&path(&long), &big[50_000..]).unwrap(), 70_000);
        fs.create(&path("readme.txt")).unwrap();
        fs.write(&path("readme.txt"), 0, b"short name, lower case\n")
            .unwrap();
        fs.create(&path("MiXeD.Case")).unwrap();
        // A write past the end leaves zeros between.
        fs.write(&path("MiXeD.Case"), 1000, b"after a gap").unwrap();
        // Enough files to grow a directory past one cluster.
        for i in 0..40 {
            let name = format!("docs/file number {i}.dat");
            fs.create(&path(&name)).unwrap();
            fs.write(&path(&name), 0, name.as_bytes()).unwrap();
        }
        for i in (0..40).step_by(3) {
            fs.unlink(&path(&format!("docs/file number {i}.dat")))
                .unwrap();
        }
        fs.create(&path("to shrink.bin")).unwrap();
        fs.write(&path("to shrink.bin"), 0, &big).unwrap();
        fs.truncate(&path("to shrink.bin"), 3000).unwrap();
        fs.rename(&path("docs/file number 1.dat"), &path("moved up.dat"))
            .unwrap();
        fs.rename(
            &path("docs/file number 2.dat"),
            &path("docs/renamed in place with a longer name.dat"),
        )
        .unwrap();
        fs.mkdir(&path("empty dir")).unwrap();
        fs.mkdir(&path("gone dir")).unwrap();
        fs.rmdir(&path("gone dir")).unwrap();
        // A directory moved into another: its `..` follows.
        fs.mkdir(&path("wanderer")).unwrap();
        fs.create(&path("wanderer/inside.txt")).unwrap();
        fs.write(&path("wanderer/inside.txt"), 0, b"still here")
            .unwrap();
        fs.rename(&path("wanderer"), &path(&format!("{deep}/wanderer")))
            .unwrap();
        let ours = sorted_tree(&mut fs);
        save(fs, &image);

        let fsck = image.fsck();
        assert!(fsck.clean(), "FAT{bits}: {}", fsck.output);
        assert_eq!(
            image.tree(),
            ours,
            "FAT{bits}: mdir and we list the same tree"
        );
        assert!(ours.contains(&"MiXeD.Case".to_string()));
        assert!(ours.contains(&"readme.txt".to_string()));
        assert!(ours.contains(&format!("{deep}/wanderer/inside.txt")));
        assert_eq!(image.mtype(&long), big);
        assert_eq!(image.mtype("to shrink.bin"), &big[..3000]);
        let mut gap = vec![0u8; 1000];
        gap.extend_from_slice(b"after a gap");
        assert_eq!(image.mtype("MiXeD.Case"), gap);
        assert_eq!(image.mtype("moved up.dat"), b"docs/file number 1.dat");
        assert_eq!(
            image.mtype(&format!("{deep}/wanderer/inside.txt")),
            b"still here"
        );

        // And back: mtools adds to what we wrote, we read both.
        image.put("docs/added by mtools.txt", b"from the host");
        let mut fs = mount(&image);
        assert_eq!(
            read_all(&mut fs, "docs/added by mtools.txt"),
            b"from the host"
        );
        assert_eq!(read_all(&mut fs, &long), big);
    }
}

#[test]
fn short_aliases_are_unique_and_names_keep_their_case() {
    if !tools_present("short_aliases_are_unique_and_names_keep_their_case") {
        return;
    }
    let image = image(16);
    let mut fs = mount(&image);
    let names = [
        "Long File Name 1.txt",
        "Long File Name 2.txt",
        "LongFile.txt",
        "a+b=c;d.txt",
        ".hidden",
        "Ünïcödé name.txt",
    ];
    for name in names {
        fs.create(&path(name)).unwrap();
        fs.write(&path(name), 0, name.as_bytes()).unwrap();
    }
    assert_eq!(fs.create(&path("LONG FILE NAME 1.TXT")), Err(Error::Exists));
    // An 8.3 alias names its file, so it cannot name a new one.
    assert_eq!(fs.create(&path("longfi~1.txt")), Err(Error::Exists));
    save(fs, &image);
    assert!(image.fsck().clean(), "{}", image.fsck().output);
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(image.tree(), expected);
    for name in names {
        assert_eq!(image.mtype(name), name.as_bytes(), "{name}");
    }
}

#[test]
fn refusals_change_nothing() {
    if !tools_present("refusals_change_nothing") {
        return;
    }
    let image = image(32);
    let mut fs = mount(&image);
    fs.mkdir(&path("a")).unwrap();
    fs.mkdir(&path("a/Long Child")).unwrap();
    fs.create(&path("a/file")).unwrap();
    fs.create(&path("file")).unwrap();
    assert_eq!(fs.mkdir(&path("a")), Err(Error::Exists));
    assert_eq!(fs.rmdir(&path("a")), Err(Error::NotEmpty));
    assert_eq!(fs.rmdir(&Path::root()), Err(Error::Busy));
    assert_eq!(fs.rmdir(&path("file")), Err(Error::NotDirectory));
    assert_eq!(fs.unlink(&path("a")), Err(Error::IsDirectory));
    assert_eq!(fs.create(&path("missing/file")), Err(Error::NotFound));
    assert_eq!(fs.create(&path("file/inside")), Err(Error::NotDirectory));
    assert_eq!(
        fs.rename(&path("a"), &path("a/Long Child/a")),
        Err(Error::Invalid)
    );
    // The same, named by the child's 8.3 alias.
    assert_eq!(
        fs.rename(&path("a"), &path("a/LONGCH~1/a")),
        Err(Error::Invalid)
    );
    assert_eq!(
        fs.rename(&path("a"), &path("file")),
        Err(Error::NotDirectory)
    );
    assert_eq!(
        fs.rename(&path("file"), &path("a")),
        Err(Error::IsDirectory)
    );
    assert_eq!(
        fs.write(&path("file"), u64::from(u32::MAX), b"x"),
        Err(Error::FileTooLarge)
    );
    // Renaming onto an existing file replaces it.
    fs.write(&path("file"), 0, b"new").unwrap();
    fs.write(&path("a/file"), 0, b"old").unwrap();
    fs.rename(&path("file"), &path("a/file")).unwrap();
    assert_eq!(read_all(&mut fs, "a/file"), b"new");
    assert_eq!(fs.stat(&path("file")), Err(Error::NotFound));
    // Only the case changes.
    fs.rename(&path("a/file"), &path("a/FILE")).unwrap();
    assert_eq!(
        fs.read_dir(&path("a"))
            .unwrap()
            .iter()
            .filter(|e| e.name == "FILE")
            .count(),
        1
    );
    save(fs, &image);
    assert!(image.fsck().clean(), "{}", image.fsck().output);
    assert_eq!(image.tree(), ["a/", "a/FILE", "a/Long Child/"]);
}

#[test]
fn read_only_mounts_refuse_changes() {
    if !tools_present("read_only_mounts_refuse_changes") {
        return;
    }
    let image = image(16);
    image.put("kept.txt", b"kept");
    let options = libos_fat::Options {
        read_only: true,
        ..Default::default()
    };
    let mut fs = FileSystem::mount_with(MemoryDevice::from_bytes(image.bytes()), options).unwrap();
    assert_eq!(fs.create(&path("new")), Err(Error::ReadOnly));
    assert_eq!(fs.unlink(&path("kept.txt")), Err(Error::ReadOnly));
    assert_eq!(fs.write(&path("kept.txt"), 0, b"x"), Err(Error::ReadOnly));
    assert_eq!(read_all(&mut fs, "kept.txt"), b"kept");
    fs.sync().unwrap();
    assert_eq!(fs.into_device().as_bytes(), &image.bytes()[..]);
}

#[test]
fn a_confined_client_reaches_nothing_outside_its_subtree() {
    if !tools_present("a_confined_client_reaches_nothing_outside_its_subtree") {
        return;
    }
    let image = image(32);
    let mut fs = mount(&image);
    for dir in ["clients", "clients/one", "clients/two"] {
        fs.mkdir(&path(dir)).unwrap();
    }
    fs.create(&path("clients/two/secret")).unwrap();
    fs.write(&path("clients/two/secret"), 0, b"two's").unwrap();
    let root = path("clients/one");
    // What a client sends is parsed as a Path, then joined under its root.
    let client = |text: &str| Path::parse(text).and_then(|p| root.join(&p));
    for escape in [
        "..",
        "../two/secret",
        "a/../../two",
        "/clients/two/secret",
        "..\\two\\secret",
        "./secret",
        "secret\0",
    ] {
        assert!(client(escape).is_err(), "{escape:?}");
    }
    let mine = client("notes.txt").unwrap();
    fs.create(&mine).unwrap();
    fs.write(&mine, 0, b"one's").unwrap();
    let listing: Vec<String> = fs
        .read_dir(&client("").unwrap())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(listing, ["notes.txt"]);
    assert_eq!(fs.stat(&client("secret").unwrap()), Err(Error::NotFound));
    assert_eq!(read_all(&mut fs, "clients/two/secret"), b"two's");
}
