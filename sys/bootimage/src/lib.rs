//! Tessera's boot image: one archive, built by `xtask` and embedded in the root
//! task, that holds the compact system description and every component's ELF file.
//!
//! Layout (all integers little-endian):
//! ```text
//! magic "TIMG" | version u16 | count u16 | count × entry | data
//! entry = kind u8 | name length u8 | name [u8; 32] | offset u32 | length u32
//! ```
//! Offsets are from the start of the image and data is 8-byte aligned, so an ELF
//! file can be parsed in place. The reader ([`Image::parse`]) checks every entry
//! against the image's length before anything uses it; it never panics.

#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// The first four bytes of an image.
pub const MAGIC: [u8; 4] = *b"TIMG";
/// The version this code reads and writes.
pub const VERSION: u16 = 1;
/// Longest entry name.
pub const NAME_LEN: usize = 32;
const HEADER: usize = 8;
const ENTRY: usize = 1 + 1 + NAME_LEN + 4 + 4;

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The compact system description (`sysdesc::System::encode`).
    System = 1,
    /// A component's ELF file, named after its binary.
    Elf = 2,
    /// A table of untyped memory capabilities granted to a component, in grant order
    /// ([`encode_untypeds`]): in the data blobs the root task gives `memory` and `devices`.
    Untypeds = 3,
}

/// One granted untyped capability, as listed in a [`Kind::Untypeds`] entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UntypedInfo {
    /// Physical address.
    pub paddr: u64,
    /// The region is 2^size_bits bytes.
    pub size_bits: u8,
    /// Device memory rather than RAM.
    pub is_device: bool,
}

const UNTYPED_ENTRY: usize = 16;

/// The bytes of a [`Kind::Untypeds`] entry: 16 bytes per untyped (paddr, size_bits,
/// is_device, padding).
pub fn encode_untypeds(list: &[UntypedInfo]) -> Vec<u8> {
    let mut out = Vec::with_capacity(list.len() * UNTYPED_ENTRY);
    for u in list {
        out.extend_from_slice(&u.paddr.to_le_bytes());
        out.push(u.size_bits);
        out.push(u.is_device as u8);
        out.extend_from_slice(&[0; 6]);
    }
    out
}

/// Why an image was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its header or its entry table.
    Truncated,
    /// Does not start with [`MAGIC`].
    BadMagic,
    /// Written by another version of this format.
    WrongVersion {
        /// The version found.
        found: u16,
    },
    /// An entry's kind is unknown, its name is not UTF-8 or too long, or its data lies
    /// outside the image.
    BadEntry {
        /// The entry's index.
        index: usize,
    },
    /// Two entries of the same kind have the same name.
    Duplicate {
        /// The second entry's index.
        index: usize,
    },
}

/// One entry of a parsed image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// What it holds.
    pub kind: Kind,
    /// Its name (the binary name for ELF files, `system` for the description).
    pub name: &'a str,
    /// Its bytes.
    pub data: &'a [u8],
}

/// A validated image.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    bytes: &'a [u8],
    count: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Image<'a> {
    /// Checks the header and every entry of `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Image<'a>, Error> {
        if bytes.len() < HEADER {
            return Err(Error::Truncated);
        }
        if bytes[..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u16_at(bytes, 4).ok_or(Error::Truncated)?;
        if version != VERSION {
            return Err(Error::WrongVersion { found: version });
        }
        let count = u16_at(bytes, 6).ok_or(Error::Truncated)? as usize;
        if bytes.len() < HEADER + count * ENTRY {
            return Err(Error::Truncated);
        }
        let image = Image { bytes, count };
        for index in 0..count {
            let e = image.read_entry(index)?;
            for earlier in 0..index {
                let o = image.read_entry(earlier)?;
                if o.kind == e.kind && o.name == e.name {
                    return Err(Error::Duplicate { index });
                }
            }
        }
        Ok(image)
    }

    fn read_entry(&self, index: usize) -> Result<Entry<'a>, Error> {
        let bad = Error::BadEntry { index };
        let at = HEADER + index * ENTRY;
        let raw = self.bytes.get(at..at + ENTRY).ok_or(bad)?;
        let kind = match raw[0] {
            1 => Kind::System,
            2 => Kind::Elf,
            3 => Kind::Untypeds,
            _ => return Err(bad),
        };
        let name_len = raw[1] as usize;
        if name_len == 0 || name_len > NAME_LEN {
            return Err(bad);
        }
        let name = core::str::from_utf8(&raw[2..2 + name_len]).map_err(|_| bad)?;
        let offset = u32_at(raw, 2 + NAME_LEN).ok_or(bad)? as usize;
        let length = u32_at(raw, 2 + NAME_LEN + 4).ok_or(bad)? as usize;
        let end = offset.checked_add(length).ok_or(bad)?;
        let data = self.bytes.get(offset..end).ok_or(bad)?;
        Ok(Entry { kind, name, data })
    }

    /// The entries in image order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + '_ {
        // parse() validated every entry, so read_entry cannot fail here.
        (0..self.count).filter_map(|i| self.read_entry(i).ok())
    }

    /// The system description's bytes, if the image has one.
    pub fn system(&self) -> Option<&'a [u8]> {
        self.entries()
            .find(|e| e.kind == Kind::System)
            .map(|e| e.data)
    }

    /// The untyped table (see [`encode_untypeds`]); empty when there is none. Entries
    /// with a size over 63 bits are skipped (they cannot come from the kernel).
    pub fn untypeds(&self) -> impl Iterator<Item = UntypedInfo> + 'a {
        let data = self
            .entries()
            .find(|e| e.kind == Kind::Untypeds)
            .map(|e| e.data)
            .unwrap_or(&[]);
        data.chunks_exact(UNTYPED_ENTRY).filter_map(|c| {
            let paddr = u64::from_le_bytes(c[..8].try_into().ok()?);
            (c[8] < 64).then_some(UntypedInfo {
                paddr,
                size_bits: c[8],
                is_device: c[9] != 0,
            })
        })
    }

    /// The ELF file of the component binary `name`.
    pub fn elf(&self, name: &str) -> Option<&'a [u8]> {
        self.entries()
            .find(|e| e.kind == Kind::Elf && e.name == name)
            .map(|e| e.data)
    }
}

/// Builds an image (on the host, or in the root task for a component's data blob).
#[derive(Debug, Default)]
pub struct Writer {
    entries: Vec<(Kind, String, Vec<u8>)>,
}

impl Writer {
    /// An empty image.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Adds an entry; fails on a name that is empty, longer than [`NAME_LEN`] or taken.
    pub fn add(&mut self, kind: Kind, name: &str, data: Vec<u8>) -> Result<(), String> {
        if name.is_empty() || name.len() > NAME_LEN {
            return Err(format!(
                "image entry name {name:?} must be 1..={NAME_LEN} bytes"
            ));
        }
        if self.entries.iter().any(|(k, n, _)| *k == kind && n == name) {
            return Err(format!("image entry {name:?} added twice"));
        }
        self.entries.push((kind, name.to_string(), data));
        Ok(())
    }

    /// The image's bytes.
    pub fn finish(&self) -> Result<Vec<u8>, String> {
        let count = u16::try_from(self.entries.len()).map_err(|_| "too many image entries")?;
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        let mut offset = (HEADER + self.entries.len() * ENTRY).next_multiple_of(8);
        let mut table = Vec::new();
        for (kind, name, data) in &self.entries {
            table.push(*kind as u8);
            table.push(name.len() as u8);
            let mut padded = [0u8; NAME_LEN];
            padded[..name.len()].copy_from_slice(name.as_bytes());
            table.extend_from_slice(&padded);
            let off = u32::try_from(offset).map_err(|_| "image larger than 4 GiB")?;
            let len = u32::try_from(data.len()).map_err(|_| "image entry larger than 4 GiB")?;
            table.extend_from_slice(&off.to_le_bytes());
            table.extend_from_slice(&len.to_le_bytes());
            offset = (offset + data.len()).next_multiple_of(8);
        }
        out.extend_from_slice(&table);
        for (_, _, data) in &self.entries {
            out.resize(out.len().next_multiple_of(8), 0);
            out.extend_from_slice(data);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::vec;

    fn sample() -> Vec<u8> {
        let mut w = Writer::new();
        w.add(Kind::System, "system", b"TSYS...".to_vec()).unwrap();
        w.add(Kind::Elf, "naming", vec![0x7f, b'E', b'L', b'F', 1, 2, 3])
            .unwrap();
        w.add(Kind::Elf, "proc", vec![9; 1000]).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn round_trip_and_alignment() {
        let bytes = sample();
        let image = Image::parse(&bytes).unwrap();
        assert_eq!(image.system(), Some(&b"TSYS..."[..]));
        assert_eq!(image.elf("naming").unwrap()[..4], [0x7f, b'E', b'L', b'F']);
        assert_eq!(image.elf("proc").unwrap().len(), 1000);
        assert_eq!(image.elf("system"), None, "kinds are separate name spaces");
        assert_eq!(image.elf("nope"), None);
        for e in image.entries() {
            let off = e.data.as_ptr() as usize - bytes.as_ptr() as usize;
            assert_eq!(off % 8, 0, "{} at {off}", e.name);
        }
        assert_eq!(image.entries().count(), 3);
    }

    #[test]
    fn untyped_tables() {
        let list = [
            UntypedInfo {
                paddr: 0x100000,
                size_bits: 20,
                is_device: false,
            },
            UntypedInfo {
                paddr: 0xfeb00000,
                size_bits: 19,
                is_device: true,
            },
        ];
        let mut w = Writer::new();
        w.add(Kind::Untypeds, "untypeds", encode_untypeds(&list))
            .unwrap();
        let bytes = w.finish().unwrap();
        let image = Image::parse(&bytes).unwrap();
        assert_eq!(image.untypeds().collect::<Vec<_>>(), list);
        let mut bad = encode_untypeds(&list);
        bad[8] = 64;
        let mut w = Writer::new();
        w.add(Kind::Untypeds, "untypeds", bad).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(Image::parse(&bytes).unwrap().untypeds().count(), 1);
    }

    #[test]
    fn writer_refuses_bad_names() {
        let mut w = Writer::new();
        assert!(w.add(Kind::Elf, "", vec![]).is_err());
        assert!(w.add(Kind::Elf, &"x".repeat(33), vec![]).is_err());
        w.add(Kind::Elf, "a", vec![]).unwrap();
        assert!(w.add(Kind::Elf, "a", vec![]).is_err());
    }

    #[test]
    fn corrupt_images_are_refused_without_panic() {
        let good = sample();
        assert_eq!(Image::parse(&good[..3]).unwrap_err(), Error::Truncated);
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Image::parse(&bad).unwrap_err(), Error::BadMagic);
        let mut bad = good.clone();
        bad[4] = 9;
        assert_eq!(
            Image::parse(&bad).unwrap_err(),
            Error::WrongVersion { found: 9 }
        );
        assert_eq!(
            Image::parse(&good[..good.len() - 1]).unwrap_err(),
            Error::BadEntry { index: 2 }
        );
        // Every truncation and every single-byte corruption is refused or parses
        // into entries that lie inside the buffer.
        for n in 0..good.len() {
            if let Ok(img) = Image::parse(&good[..n]) {
                assert!(img.entries().all(|e| e.data.len() <= n));
            }
        }
        for i in 0..good.len().min(200) {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                if let Ok(img) = Image::parse(&b) {
                    for e in img.entries() {
                        let off = e.data.as_ptr() as usize - b.as_ptr() as usize;
                        assert!(off + e.data.len() <= b.len());
                    }
                }
            }
        }
    }

    #[test]
    fn duplicate_entries_are_refused() {
        let mut bytes = sample();
        // Rename entry 2 ("proc") to "naming".
        let at = HEADER + 2 * ENTRY;
        bytes[at + 1] = 6;
        bytes[at + 2..at + 8].copy_from_slice(b"naming");
        assert_eq!(
            Image::parse(&bytes).unwrap_err(),
            Error::Duplicate { index: 2 }
        );
    }
}
