//! A full volume: `NoSpace`, and nothing already written is lost.

mod common;

use common::{tools_present, Image};
use libos_fat::{Error, FileSystem, MemoryDevice, Path};

fn path(text: &str) -> Path {
    Path::parse(text).unwrap()
}

fn read_all(fs: &mut FileSystem<MemoryDevice>, p: &str) -> Vec<u8> {
    let size = fs.stat(&path(p)).unwrap().size as usize;
    let mut buffer = vec![0; size];
    assert_eq!(fs.read(&path(p), 0, &mut buffer).unwrap(), size);
    buffer
}

/// fsck.fat's "used/total clusters" summary.
fn fsck_used_total(output: &str) -> (u32, u32) {
    let line = output
        .lines()
        .find(|l| l.contains(" files, "))
        .expect("summary line");
    let counts = line
        .rsplit(", ")
        .next()
        .unwrap()
        .trim_end_matches(" clusters");
    let (used, total) = counts.split_once('/').unwrap();
    (used.parse().unwrap(), total.parse().unwrap())
}

#[test]
fn filling_the_volume_gives_no_space_and_keeps_everything() {
    if !tools_present("filling_the_volume_gives_no_space_and_keeps_everything") {
        return;
    }
    for bits in [16, 32] {
        let kib = if bits == 16 { 2200 } else { 34 * 1024 };
        let image = Image::mkfs_with(bits, kib, Some(1));
        let mut fs = FileSystem::mount(MemoryDevice::from_bytes(image.bytes())).unwrap();
        let precious: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        fs.mkdir(&path("dir")).unwrap();
        fs.create(&path("dir/precious file.txt")).unwrap();
        fs.write(&path("dir/precious file.txt"), 0, &precious)
            .unwrap();
        fs.sync().unwrap();

        fs.create(&path("filler")).unwrap();
        let chunk: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 % 253) as u8).collect();
        let mut written = 0u64;
        let refused = loop {
            match fs.append(&path("filler"), &chunk) {
                Ok(size) => written = size,
                Err(e) => break e,
            }
        };
        assert_eq!(refused, Error::NoSpace, "FAT{bits}");
        assert_eq!(refused.errno(), libos_fat::errno::ENOSPC);
        // The failed append changed nothing.
        assert_eq!(fs.stat(&path("filler")).unwrap().size, written);
        // Smaller writes fill what is left, cluster by cluster, until nothing is.
        let cluster = fs.usage().unwrap().cluster_bytes as usize;
        while fs.append(&path("filler"), &chunk[..cluster]).is_ok() {
            written += cluster as u64;
        }
        assert_eq!(fs.usage().unwrap().free_clusters, 0);
        // An empty file needs no cluster: it fits while its directory has a free slot.
        fs.create(&path("dir/one more")).unwrap();
        assert_eq!(fs.mkdir(&path("new dir")), Err(Error::NoSpace));
        assert_eq!(
            fs.write(&path("dir/precious file.txt"), 5000, &[1; 1000]),
            Err(Error::NoSpace)
        );
        // Writing inside what a file already has still works.
        fs.write(&path("filler"), 10, b"in place").unwrap();
        assert_eq!(read_all(&mut fs, "dir/precious file.txt"), precious);
        fs.sync().unwrap();
        image.write(fs.into_device().as_bytes());

        let fsck = image.fsck();
        assert!(fsck.clean(), "FAT{bits}: {}", fsck.output);
        let (used, total) = fsck_used_total(&fsck.output);
        assert_eq!(used, total, "FAT{bits}: fsck agrees the volume is full");
        assert_eq!(image.mtype("dir/precious file.txt"), precious);
        let filler = image.mtype("filler");
        assert_eq!(filler.len() as u64, written);
        assert_eq!(&filler[10..18], b"in place");
        assert_eq!(&filler[64 * 1024..64 * 1024 + 100], &chunk[..100]);

        // Freeing space makes room again.
        let mut fs = FileSystem::mount(MemoryDevice::from_bytes(image.bytes())).unwrap();
        fs.unlink(&path("filler")).unwrap();
        fs.create(&path("after.txt")).unwrap();
        fs.write(&path("after.txt"), 0, &chunk).unwrap();
        let free = fs.usage().unwrap().free_clusters;
        fs.sync().unwrap();
        image.write(fs.into_device().as_bytes());
        let fsck = image.fsck();
        assert!(fsck.clean(), "FAT{bits}: {}", fsck.output);
        let (used, total) = fsck_used_total(&fsck.output);
        assert_eq!(total - used, free, "FAT{bits}: our free count is fsck's");
    }
}

#[test]
fn a_full_fat16_root_directory_gives_no_space() {
    if !tools_present("a_full_fat16_root_directory_gives_no_space") {
        return;
    }
    let image = Image::mkfs_with(16, 2200, Some(1));
    let mut fs = FileSystem::mount(MemoryDevice::from_bytes(image.bytes())).unwrap();
    let mut created = 0;
    let refused = loop {
        match fs.create(&path(&format!("F{created}.TXT"))) {
            Ok(()) => created += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(refused, Error::NoSpace);
    assert_eq!(created, fs.geometry().root_entries);
    // A long name needs several entries: also refused, and nothing half-written.
    assert_eq!(fs.create(&path("a long name.txt")), Err(Error::NoSpace));
    fs.sync().unwrap();
    image.write(fs.into_device().as_bytes());
    let fsck = image.fsck();
    assert!(fsck.clean(), "{}", fsck.output);
    assert_eq!(image.tree().len(), created as usize);
}
