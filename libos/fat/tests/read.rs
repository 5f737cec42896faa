//! Reading images that mkfs.fat made and mtools filled.

mod common;

use common::{random_bytes, tools_present, Fsck, Image};
use libos_fat::{Corruption, Error, FatType, FileSystem, MemoryDevice, Path};

fn path(text: &str) -> Path {
    Path::parse(text).unwrap()
}

fn mount(image: &Image) -> FileSystem<MemoryDevice> {
    FileSystem::mount(MemoryDevice::from_bytes(image.bytes())).unwrap()
}

fn read_all(fs: &mut FileSystem<MemoryDevice>, p: &str) -> Vec<u8> {
    let size = fs.stat(&path(p)).unwrap().size as usize;
    let mut buffer = vec![0; size + 10];
    let n = fs.read(&path(p), 0, &mut buffer).unwrap();
    buffer.truncate(n);
    buffer
}

/// Fills an image as a user would: nested directories, long names, an 8.3 lower-case name,
/// a large file and an empty one.
fn filled(bits: u32) -> (Image, Vec<(String, Vec<u8>)>) {
    let image = Image::mkfs(bits, if bits == 16 { 16 * 1024 } else { 40 * 1024 });
    let mut rng = fastrand::Rng::with_seed(u64::from(bits));
    image.mmd("docs");
    image.mmd("docs/A Deeper Directory With A Long Name");
    let files = vec![
        ("readme.txt".to_string(), b"hello from mtools\n".to_vec()),
        (
            "docs/Long File Name.txt".to_string(),
            b"long name, short content".to_vec(),
        ),
        ("docs/empty".to_string(), Vec::new()),
        (
            "docs/A Deeper Directory With A Long Name/big random data.bin".to_string(),
            random_bytes(&mut rng, 300_000),
        ),
        (
            "docs/Übergröße.txt".to_string(),
            b"non-ASCII long name".to_vec(),
        ),
    ];
    for (name, data) in &files {
        image.put(name, data);
    }
    (image, files)
}

#[test]
fn reads_what_mtools_wrote() {
    if !tools_present("reads_what_mtools_wrote") {
        return;
    }
    for bits in [16, 32] {
        let (image, files) = filled(bits);
        let mut fs = mount(&image);
        assert_eq!(
            fs.fat_type(),
            if bits == 16 {
                FatType::Fat16
            } else {
                FatType::Fat32
            }
        );
        for (name, data) in &files {
            let stat = fs.stat(&path(name)).unwrap();
            assert!(!stat.is_directory);
            assert_eq!(stat.size, data.len() as u64, "{name}");
            assert_eq!(&read_all(&mut fs, name), data, "FAT{bits} {name}");
        }
        let mut root: Vec<String> = fs
            .read_dir(&Path::root())
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        root.sort();
        assert_eq!(root, ["docs", "readme.txt"]);
        let docs = fs.read_dir(&path("docs")).unwrap();
        let mut names: Vec<&str> = docs.iter().map(|e| e.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "A Deeper Directory With A Long Name",
                "Long File Name.txt",
                "empty",
                "Übergröße.txt"
            ]
        );
        assert!(
            docs.iter()
                .find(|e| e.name.starts_with("A Deeper"))
                .unwrap()
                .metadata
                .is_directory
        );
    }
}

#[test]
fn lookups_ignore_case_and_accept_the_short_alias() {
    if !tools_present("lookups_ignore_case_and_accept_the_short_alias") {
        return;
    }
    let (image, _) = filled(32);
    let mut fs = mount(&image);
    let expected = b"long name, short content".to_vec();
    for name in [
        "docs/Long File Name.txt",
        "DOCS/LONG FILE NAME.TXT",
        "Docs/long file name.TXT",
        "docs/LONGFI~1.TXT",
        "docs/longfi~1.txt",
    ] {
        assert_eq!(read_all(&mut fs, name), expected, "{name}");
    }
    assert_eq!(fs.stat(&path("docs/Long File Name")), Err(Error::NotFound));
    assert_eq!(
        fs.stat(&path("readme.txt/inside")),
        Err(Error::NotDirectory)
    );
    assert_eq!(
        fs.read(&path("docs"), 0, &mut [0; 4]),
        Err(Error::IsDirectory)
    );
}

#[test]
fn reads_at_offsets_across_clusters() {
    if !tools_present("reads_at_offsets_across_clusters") {
        return;
    }
    let (image, files) = filled(16);
    let (name, data) = &files[3];
    let mut fs = mount(&image);
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..200 {
        let offset = rng.usize(..data.len() + 100);
        let len = rng.usize(..5000);
        let mut buffer = vec![0; len];
        let n = fs.read(&path(name), offset as u64, &mut buffer).unwrap();
        let expected = &data[offset.min(data.len())..(offset + len).min(data.len())];
        assert_eq!(&buffer[..n], expected, "offset {offset} len {len}");
    }
}

#[test]
fn damaged_structures_are_refused_with_their_reason() {
    if !tools_present("damaged_structures_are_refused_with_their_reason") {
        return;
    }
    let image = Image::mkfs(16, 16 * 1024);
    image.put("file.bin", &[0x33; 10_000]);
    let bytes = image.bytes();
    let mut fs = FileSystem::mount(MemoryDevice::from_bytes(bytes.clone())).unwrap();
    let g = *fs.geometry();
    // Find the file's directory entry in the root directory and its first cluster.
    let root = g.root_sector as usize * 512;
    let entry = (0..g.root_entries as usize)
        .map(|i| root + i * 32)
        .find(|&at| &bytes[at..at + 11] == b"FILE    BIN")
        .expect("file.bin's short entry");
    let first = u16::from_le_bytes([bytes[entry + 26], bytes[entry + 27]]) as usize;
    assert!(fs.read(&path("file.bin"), 0, &mut [0; 16]).is_ok());

    // The directory entry names a cluster past the volume's end.
    let mut damaged = bytes.clone();
    damaged[entry + 26..entry + 28].copy_from_slice(&0xFFF0u16.to_le_bytes());
    let mut fs = FileSystem::mount(MemoryDevice::from_bytes(damaged)).unwrap();
    assert_eq!(
        fs.read(&path("file.bin"), 0, &mut [0; 16]),
        Err(Error::Corrupt(Corruption::DirectoryEntry))
    );

    // The chain's second entry is marked free.
    let mut damaged = bytes.clone();
    let fat = g.reserved_sectors as usize * 512;
    let second = u16::from_le_bytes([bytes[fat + first * 2], bytes[fat + first * 2 + 1]]) as usize;
    damaged[fat + second * 2..fat + second * 2 + 2].copy_from_slice(&0u16.to_le_bytes());
    let mut fs = FileSystem::mount(MemoryDevice::from_bytes(damaged)).unwrap();
    assert_eq!(
        fs.read(&path("file.bin"), 0, &mut [0; 10_000]),
        Err(Error::Corrupt(Corruption::Chain))
    );

    // The chain loops back to its start: a full walk (as unlink makes) notices.
    let mut damaged = bytes.clone();
    damaged[fat + second * 2..fat + second * 2 + 2].copy_from_slice(&(first as u16).to_le_bytes());
    let mut fs = FileSystem::mount(MemoryDevice::from_bytes(damaged)).unwrap();
    assert_eq!(
        fs.unlink(&path("file.bin")),
        Err(Error::Corrupt(Corruption::ChainLoop))
    );

    // The boot sector's signature is gone.
    let mut damaged = bytes;
    damaged[510] = 0;
    assert_eq!(
        FileSystem::mount(MemoryDevice::from_bytes(damaged)).err(),
        Some(Error::Corrupt(Corruption::BootSignature))
    );
}

/// Walks everything reachable, reading every file; errors are fine, panics are not.
fn walk(fs: &mut FileSystem<MemoryDevice>, dir: &Path, depth: usize) {
    let Ok(entries) = fs.read_dir(dir) else {
        return;
    };
    for entry in entries.into_iter().take(64) {
        let Ok(child) = dir.child(&entry.name) else {
            continue;
        };
        let _ = fs.stat(&child);
        if entry.metadata.is_directory {
            if depth < 4 {
                walk(fs, &child, depth + 1);
            }
        } else {
            let mut buffer = vec![0; 4096];
            let _ = fs.read(&child, 0, &mut buffer);
            let _ = fs.read(&child, entry.metadata.size.saturating_sub(100), &mut buffer);
        }
    }
}

#[test]
fn random_damage_never_panics() {
    if !tools_present("random_damage_never_panics") {
        return;
    }
    for bits in [16, 32] {
        let (image, _) = filled(bits);
        let bytes = image.bytes();
        let g = *mount(&image).geometry();
        let fat = g.reserved_sectors as usize * 512;
        let fat_end = fat + g.fat_sectors as usize * 512;
        let data = g.first_data_sector as usize * 512;
        let regions = [
            (0, 512),
            (fat, fat + 2048),
            (g.root_sector as usize * 512, data + 64 * 1024),
        ];
        let mut rng = fastrand::Rng::with_seed(99 + u64::from(bits));
        let mut mounted = 0;
        for round in 0..300 {
            let mut damaged = bytes.clone();
            let (start, end) = regions[round % regions.len()];
            let end = end.min(damaged.len()).max(start + 1);
            for _ in 0..rng.usize(1..64) {
                let at = rng.usize(start..end);
                damaged[at] = rng.u8(..);
            }
            if round % 10 == 0 {
                // A whole boot sector of noise.
                damaged[..512].copy_from_slice(&random_bytes(&mut rng, 512));
            }
            let Ok(mut fs) = FileSystem::mount(MemoryDevice::from_bytes(damaged)) else {
                continue;
            };
            mounted += 1;
            walk(&mut fs, &Path::root(), 0);
            // Changes over damage: errors are fine, panics are not.
            let _ = fs.create(&path("new file.txt"));
            let _ = fs.write(&path("new file.txt"), 0, &[7; 3000]);
            let _ = fs.unlink(&path("readme.txt"));
            let _ = fs.mkdir(&path("docs/new dir"));
            let _ = fs.sync();
            let _ = fat_end;
        }
        assert!(
            mounted > 100,
            "most damage outside the boot sector still mounts"
        );
        // Whole random boot sectors are refused.
        for _ in 0..200 {
            let mut damaged = bytes.clone();
            damaged[..512].copy_from_slice(&random_bytes(&mut rng, 512));
            assert!(FileSystem::mount(MemoryDevice::from_bytes(damaged)).is_err());
        }
    }
}

#[test]
fn fsck_findings_are_sorted_into_lost_space_and_errors() {
    let lost = "fsck.fat 4.2 (2021-01-31)\nReclaimed 2 unused clusters (4096 bytes).\n\nLeaving filesystem unchanged.\nx.img: 3 files, 12/8167 clusters\n";
    let f = Fsck::classify(1, lost);
    assert!(f.errors.is_empty() && f.harmless.len() == 1, "{f:?}");
    let tail = "fsck.fat 4.2 (2021-01-31)\n/F.BIN\n  File size is 20000 bytes, cluster chain length is > 20480 bytes.\n  Truncating file to 20000 bytes.\n\nLeaving filesystem unchanged.\n";
    let f = Fsck::classify(1, tail);
    assert!(f.errors.is_empty() && f.harmless.len() == 1, "{f:?}");
    let hint = "Free cluster summary uninitialized (should be 68527)\n";
    assert_eq!(Fsck::classify(1, hint).harmless.len(), 1);
    let wrong = "Free cluster summary wrong (68516 vs. really 68388)\n  Auto-correcting.\n";
    let f = Fsck::classify(1, wrong);
    assert!(f.errors.is_empty() && f.harmless.len() == 1, "{f:?}");
    let differ = "FATs differ but appear to be intact.\n  Using first FAT.\n";
    assert!(Fsck::classify(1, differ).errors.is_empty());
    let short = "/F.BIN\n  File size is 20000 bytes, cluster chain length is 10240 bytes.\n  Truncating file to 10240 bytes.\n";
    assert_eq!(Fsck::classify(1, short).errors.len(), 3);
    let cross = "/A\n  Cluster 5 is shared with /B\n";
    assert!(!Fsck::classify(1, cross).errors.is_empty());
    assert!(Fsck::classify(0, "fsck.fat 4.2\nx.img: 0 files, 1/2 clusters\n").clean());
    assert!(!Fsck::classify(1, "").errors.is_empty());
}
