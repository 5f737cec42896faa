//! A writer for the `newc` cpio archives the Linux kernel unpacks as its initramfs.
//!
//! Every entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hexadecimal
//! fields), the NUL-terminated name padded to a multiple of four bytes, then the data padded
//! the same way; the archive ends with an entry named `TRAILER!!!`. Names carry no leading
//! `/`; the writer fixes inode numbers and zeroes owners and times, so the same contents
//! give the same bytes.

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// The name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";

/// An archive being written, in memory.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
    next_inode: u32,
}

impl Writer {
    /// An empty archive.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Adds directory `path` with permissions `mode` (e.g. `0o755`).
    pub fn dir(&mut self, path: &str, mode: u32) {
        self.entry(path, S_IFDIR | (mode & 0o7777), 2, &[], (0, 0));
    }

    /// Adds regular file `path` holding `data`, with permissions `mode`.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.entry(path, S_IFREG | (mode & 0o7777), 1, data, (0, 0));
    }

    /// Adds symbolic link `path` pointing at `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, S_IFLNK | 0o777, 1, target.as_bytes(), (0, 0));
    }

    /// Adds character device node `path` (`major`, `minor`) with permissions `mode`.
    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        self.entry(path, S_IFCHR | (mode & 0o7777), 1, &[], (major, minor));
    }

    /// Ends the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, 0, 1, &[], (0, 0));
        self.out
    }

    fn entry(&mut self, path: &str, mode: u32, links: u32, data: &[u8], rdev: (u32, u32)) {
        let name = path.trim_start_matches('/');
        self.next_inode += 1;
        let inode = if name == TRAILER { 0 } else { self.next_inode };
        let fields = [
            inode,
            mode,
            0, // uid
            0, // gid
            links,
            0, // mtime
            u32::try_from(data.len()).expect("an initramfs file under 4 GiB"),
            0, // device major
            0, // device minor
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).expect("a short name"),
            0, // check (unused by newc)
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() & 3 != 0 {
            self.out.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry read back: (name, mode, rdev, data).
    type Entry = (String, u32, (u32, u32), Vec<u8>);

    fn field(header: &[u8], i: usize) -> u32 {
        let text = std::str::from_utf8(&header[6 + 8 * i..6 + 8 * (i + 1)]).unwrap();
        u32::from_str_radix(text, 16).unwrap()
    }

    fn read_back(mut bytes: &[u8]) -> Vec<Entry> {
        let mut entries = Vec::new();
        let start = bytes.as_ptr() as usize;
        loop {
            let offset = bytes.as_ptr() as usize - start;
            assert_eq!(offset % 4, 0, "entries start 4-aligned");
            assert_eq!(&bytes[..6], b"070701");
            let header = &bytes[..110];
            let (mode, size, rdev, namesize) = (
                field(header, 1),
                field(header, 6) as usize,
                (field(header, 9), field(header, 10)),
                field(header, 11) as usize,
            );
            let name = std::str::from_utf8(&bytes[110..110 + namesize - 1])
                .unwrap()
                .to_string();
            assert_eq!(bytes[110 + namesize - 1], 0, "names end in NUL");
            let data_at = (110 + namesize).next_multiple_of(4);
            let data = bytes[data_at..data_at + size].to_vec();
            bytes = &bytes[(data_at + size).next_multiple_of(4)..];
            if name == TRAILER {
                assert!(bytes.is_empty(), "nothing after the trailer");
                return entries;
            }
            entries.push((name, mode, rdev, data));
        }
    }

    #[test]
    fn entries_read_back_with_their_types_names_and_data() {
        let mut w = Writer::new();
        w.dir("/bin", 0o755);
        w.file("bin/tool", 0o755, b"hello");
        w.symlink("bin/sh", "tool");
        w.char_device("dev/console", 0o600, 5, 1);
        w.file("empty", 0o644, b"");
        let entries = read_back(&w.finish());
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["bin", "bin/tool", "bin/sh", "dev/console", "empty"]);
        assert_eq!(entries[0].1, 0o040755);
        assert_eq!(entries[1].1, 0o100755);
        assert_eq!(entries[1].3, b"hello");
        assert_eq!(entries[2].1 & 0o170000, S_IFLNK);
        assert_eq!(entries[2].3, b"tool");
        assert_eq!(entries[3].1, 0o020600);
        assert_eq!(entries[3].2, (5, 1));
        assert!(entries[4].3.is_empty());
    }

    #[test]
    fn the_same_contents_give_the_same_bytes() {
        let build = || {
            let mut w = Writer::new();
            w.file("init", 0o755, b"#!/bin/sh\n");
            w.finish()
        };
        assert_eq!(build(), build());
    }
}
