//! Directory entries as stored: 32-byte short (8.3) entries, the long-name (LFN) entries
//! before them, their checksum, and the short alias made for a long name.

use alloc::string::String;
use alloc::vec::Vec;

/// Bytes in one directory entry.
pub(crate) const ENTRY_SIZE: usize = 32;
/// First name byte of a deleted entry.
pub(crate) const DELETED: u8 = 0xE5;
pub(crate) const ATTR_READ_ONLY: u8 = 0x01;
pub(crate) const ATTR_HIDDEN: u8 = 0x02;
pub(crate) const ATTR_SYSTEM: u8 = 0x04;
pub(crate) const ATTR_VOLUME: u8 = 0x08;
pub(crate) const ATTR_DIRECTORY: u8 = 0x10;
pub(crate) const ATTR_ARCHIVE: u8 = 0x20;
pub(crate) const ATTR_LONG_NAME: u8 = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME;
/// Windows NT's flags in byte 12: the base name, the extension is lower case.
const LOWER_BASE: u8 = 0x08;
const LOWER_EXTENSION: u8 = 0x10;
/// UTF-16 units in one long-name entry.
pub(crate) const LFN_UNITS: usize = 13;
const LFN_OFFSETS: [usize; LFN_UNITS] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// A date and time as FAT stores them (local time, two-second resolution, 1980 to 2107).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    /// 1980 to 2107.
    pub year: u16,
    /// 1 to 12.
    pub month: u8,
    /// 1 to 31.
    pub day: u8,
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
    /// 0 to 58 (even).
    pub second: u8,
}

impl DateTime {
    /// FAT's epoch: 1980-01-01 00:00:00.
    pub const EPOCH: DateTime = DateTime {
        year: 1980,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };

    pub(crate) fn decode(date: u16, time: u16) -> Option<DateTime> {
        let t = DateTime {
            year: 1980 + (date >> 9),
            month: ((date >> 5) & 0xF) as u8,
            day: (date & 0x1F) as u8,
            hour: (time >> 11) as u8,
            minute: ((time >> 5) & 0x3F) as u8,
            second: ((time & 0x1F) * 2) as u8,
        };
        let valid = (1..=12).contains(&t.month)
            && (1..=31).contains(&t.day)
            && t.hour < 24
            && t.minute < 60
            && t.second < 60;
        valid.then_some(t)
    }

    /// The (date, time) words; fields out of range are clamped into it.
    pub(crate) fn encode(&self) -> (u16, u16) {
        let year = self.year.clamp(1980, 2107) - 1980;
        let date = (year << 9)
            | (u16::from(self.month.clamp(1, 12)) << 5)
            | u16::from(self.day.clamp(1, 31));
        let time = (u16::from(self.hour.min(23)) << 11)
            | (u16::from(self.minute.min(59)) << 5)
            | u16::from(self.second.min(59) / 2);
        (date, time)
    }
}

/// A short (8.3) directory entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShortEntry {
    /// Base name (8) and extension (3), space-padded, as stored (0x05 already mapped to 0xE5).
    pub name: [u8; 11],
    pub attributes: u8,
    pub case_flags: u8,
    pub created: (u16, u16),
    pub accessed_date: u16,
    pub first_cluster: u32,
    pub modified: (u16, u16),
    pub size: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl ShortEntry {
    pub(crate) fn parse(raw: &[u8]) -> ShortEntry {
        let mut name = [0u8; 11];
        name.copy_from_slice(&raw[0..11]);
        if name[0] == 0x05 {
            name[0] = DELETED;
        }
        ShortEntry {
            name,
            attributes: raw[11],
            case_flags: raw[12],
            created: (u16_at(raw, 16), u16_at(raw, 14)),
            accessed_date: u16_at(raw, 18),
            first_cluster: u32::from(u16_at(raw, 20)) << 16 | u32::from(u16_at(raw, 26)),
            modified: (u16_at(raw, 24), u16_at(raw, 22)),
            size: u32::from_le_bytes([raw[28], raw[29], raw[30], raw[31]]),
        }
    }

    pub(crate) fn store(&self, raw: &mut [u8]) {
        raw[0..11].copy_from_slice(&self.name);
        if raw[0] == DELETED {
            raw[0] = 0x05;
        }
        raw[11] = self.attributes;
        raw[12] = self.case_flags;
        raw[13] = 0;
        raw[14..16].copy_from_slice(&self.created.1.to_le_bytes());
        raw[16..18].copy_from_slice(&self.created.0.to_le_bytes());
        raw[18..20].copy_from_slice(&self.accessed_date.to_le_bytes());
        raw[20..22].copy_from_slice(&((self.first_cluster >> 16) as u16).to_le_bytes());
        raw[22..24].copy_from_slice(&self.modified.1.to_le_bytes());
        raw[24..26].copy_from_slice(&self.modified.0.to_le_bytes());
        raw[26..28].copy_from_slice(&(self.first_cluster as u16).to_le_bytes());
        raw[28..32].copy_from_slice(&self.size.to_le_bytes());
    }

    pub(crate) fn is_directory(&self) -> bool {
        self.attributes & ATTR_DIRECTORY != 0
    }

    /// Whether this is the `.` or `..` entry of a subdirectory.
    pub(crate) fn is_dot(&self) -> bool {
        &self.name == b".          " || &self.name == b"..         "
    }

    /// The name as shown when there is no long name: `BASE.EXT`, lower-cased where the NT
    /// flags say so; bytes outside ASCII become U+FFFD.
    pub(crate) fn display_name(&self) -> String {
        let mut out = String::new();
        let push = |out: &mut String, bytes: &[u8], lower: bool| {
            let end = bytes.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
            for &b in &bytes[..end] {
                let c = if b.is_ascii() && b >= 0x20 {
                    char::from(b)
                } else {
                    char::REPLACEMENT_CHARACTER
                };
                out.push(if lower { c.to_ascii_lowercase() } else { c });
            }
        };
        push(&mut out, &self.name[..8], self.case_flags & LOWER_BASE != 0);
        if self.name[8..].iter().any(|&b| b != b' ') {
            out.push('.');
            push(
                &mut out,
                &self.name[8..],
                self.case_flags & LOWER_EXTENSION != 0,
            );
        }
        out
    }
}

/// The checksum of a short name that each of its long-name entries carries.
pub(crate) fn checksum(name: &[u8; 11]) -> u8 {
    name.iter()
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// A long-name entry, decoded: its ordinal (1-based, with the "last" flag split off), the
/// checksum, and its 13 UTF-16 units.
pub(crate) struct LongEntry {
    pub ordinal: u8,
    pub last: bool,
    pub checksum: u8,
    pub units: [u16; LFN_UNITS],
}

impl LongEntry {
    /// Decodes `raw` (whose attribute byte says long name); `None` when the ordinal is
    /// out of range or the type byte is not 0.
    pub(crate) fn parse(raw: &[u8]) -> Option<LongEntry> {
        let ordinal = raw[0] & 0x1F;
        if ordinal == 0 || ordinal > 20 || raw[0] & 0x80 != 0 || raw[12] != 0 {
            return None;
        }
        let mut units = [0u16; LFN_UNITS];
        for (unit, &at) in units.iter_mut().zip(LFN_OFFSETS.iter()) {
            *unit = u16_at(raw, at);
        }
        Some(LongEntry {
            ordinal,
            last: raw[0] & 0x40 != 0,
            checksum: raw[13],
            units,
        })
    }
}

/// The long-name entries for `name` (UTF-16 units, at most 255), in on-disk order (last
/// part first), each 32 bytes.
pub(crate) fn long_entries(name: &[u16], sum: u8) -> Vec<[u8; ENTRY_SIZE]> {
    let count = name.len().div_ceil(LFN_UNITS);
    let mut out = Vec::with_capacity(count);
    for part in (0..count).rev() {
        let mut raw = [0u8; ENTRY_SIZE];
        raw[0] = (part + 1) as u8 | if part + 1 == count { 0x40 } else { 0 };
        raw[11] = ATTR_LONG_NAME;
        raw[13] = sum;
        for (i, &at) in LFN_OFFSETS.iter().enumerate() {
            let index = part * LFN_UNITS + i;
            let unit = match index.cmp(&name.len()) {
                core::cmp::Ordering::Less => name[index],
                core::cmp::Ordering::Equal => 0,
                core::cmp::Ordering::Greater => 0xFFFF,
            };
            raw[at..at + 2].copy_from_slice(&unit.to_le_bytes());
        }
        out.push(raw);
    }
    out
}

/// Characters a short name may hold besides letters and digits.
fn short_char_allowed(c: char) -> bool {
    c.is_ascii_uppercase()
        || c.is_ascii_digit()
        || matches!(
            c,
            '!' | '#'
                | '$'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '-'
                | '@'
                | '^'
                | '_'
                | '`'
                | '{'
                | '}'
                | '~'
        )
}

/// How a (valid) name is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stored {
    /// As a short entry alone: the name and the NT lower-case flags.
    Short([u8; 11], u8),
    /// With long-name entries and a short alias made from this basis (base, extension,
    /// upper-cased, invalid characters replaced).
    Long { base: Vec<u8>, extension: Vec<u8> },
}

/// Decides how `name` (already validated) is stored: short alone when it is a valid 8.3
/// name whose base and extension are each all upper or all lower case, long otherwise.
pub(crate) fn classify_name(name: &str) -> Stored {
    if let Some(short) = exact_short(name) {
        return short;
    }
    // The basis name: upper case, spaces and leading dots dropped, other characters a
    // short name cannot hold replaced by '_'.
    let trimmed = name.trim_start_matches('.');
    let (base, extension) = match trimmed.rfind('.') {
        Some(dot) => (&trimmed[..dot], &trimmed[dot + 1..]),
        None => (trimmed, ""),
    };
    let convert = |part: &str, max: usize| -> Vec<u8> {
        part.chars()
            .filter(|&c| c != ' ' && c != '.')
            .map(|c| {
                let upper = c.to_ascii_uppercase();
                if short_char_allowed(upper) {
                    upper as u8
                } else {
                    b'_'
                }
            })
            .take(max)
            .collect()
    };
    let mut base = convert(base, 8);
    if base.is_empty() {
        base.push(b'_');
    }
    Stored::Long {
        base,
        extension: convert(extension, 3),
    }
}

fn exact_short(name: &str) -> Option<Stored> {
    let (base, extension) = match name.find('.') {
        Some(dot) => (&name[..dot], &name[dot + 1..]),
        None => (name, ""),
    };
    if base.is_empty() || base.len() > 8 || extension.len() > 3 || extension.contains('.') {
        return None;
    }
    if name.ends_with('.') {
        return None;
    }
    let mut flags = 0;
    let mut raw = [b' '; 11];
    for (part, offset, flag) in [(base, 0, LOWER_BASE), (extension, 8, LOWER_EXTENSION)] {
        let has_lower = part.chars().any(|c| c.is_ascii_lowercase());
        let has_upper = part.chars().any(|c| c.is_ascii_uppercase());
        if has_lower && has_upper {
            return None;
        }
        if has_lower {
            flags |= flag;
        }
        for (i, c) in part.chars().enumerate() {
            let upper = c.to_ascii_uppercase();
            if !short_char_allowed(upper) {
                return None;
            }
            raw[offset + i] = upper as u8;
        }
    }
    Some(Stored::Short(raw, flags))
}

/// The short alias `BASE~N.EXT` for numeric tail `n` (1 to 999,999).
pub(crate) fn alias(base: &[u8], extension: &[u8], n: u32) -> [u8; 11] {
    let mut tail = [0u8; 7];
    let mut digits = 0;
    let mut value = n;
    loop {
        tail[6 - digits] = b'0' + (value % 10) as u8;
        digits += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    tail[6 - digits] = b'~';
    let tail = &tail[6 - digits..];
    let keep = base.len().min(8 - tail.len());
    let mut raw = [b' '; 11];
    raw[..keep].copy_from_slice(&base[..keep]);
    raw[keep..keep + tail.len()].copy_from_slice(tail);
    raw[8..8 + extension.len()].copy_from_slice(extension);
    raw
}

/// A character's upper case when that is one character (as FAT's up-case table maps one
/// unit to one unit), else the character itself.
fn fold(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Whether two names are equal as FAT compares them: ignoring case.
pub(crate) fn names_equal(a: &str, b: &str) -> bool {
    a.chars().map(fold).eq(b.chars().map(fold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_the_specification_algorithm() {
        // Worked by hand: rotate right then add, over "A       TXT".
        let name = *b"A       TXT";
        let mut sum: u8 = 0;
        for &b in &name {
            sum = (if sum & 1 != 0 { 0x80 } else { 0 }) + (sum >> 1);
            sum = sum.wrapping_add(b);
        }
        assert_eq!(checksum(&name), sum);
        assert_ne!(checksum(b"B       TXT"), checksum(&name));
    }

    #[test]
    fn short_names_and_aliases() {
        assert_eq!(
            classify_name("readme.txt"),
            Stored::Short(*b"README  TXT", LOWER_BASE | LOWER_EXTENSION)
        );
        assert_eq!(classify_name("MAKEFILE"), Stored::Short(*b"MAKEFILE   ", 0));
        assert!(matches!(classify_name("ReadMe.txt"), Stored::Long { .. }));
        let Stored::Long { base, extension } = classify_name("Long File Name.text") else {
            panic!("a long name");
        };
        assert_eq!((&base[..], &extension[..]), (&b"LONGFILE"[..], &b"TEX"[..]));
        assert_eq!(&alias(&base, &extension, 1), b"LONGFI~1TEX");
        assert_eq!(&alias(&base, &extension, 12345), b"LO~12345TEX");
        assert_eq!(&alias(b"AB", b"", 7), b"AB~7       ");
        let Stored::Long { base, .. } = classify_name("a+b[1].c") else {
            panic!("a long name");
        };
        assert_eq!(&base[..], b"A_B_1_");
    }

    #[test]
    fn long_entries_round_trip() {
        let name: Vec<u16> = "A name of twenty-six units".encode_utf16().collect();
        let raw = long_entries(&name, 0x42);
        assert_eq!(raw.len(), 2);
        assert_eq!(raw[0][0], 0x42);
        assert_eq!(raw[1][0], 0x01);
        let mut units = Vec::new();
        for r in raw.iter().rev() {
            let e = LongEntry::parse(r).unwrap();
            assert_eq!(e.checksum, 0x42);
            units.extend_from_slice(&e.units);
        }
        assert_eq!(&units[..name.len()], &name[..]);
    }

    #[test]
    fn dates_round_trip_and_validate() {
        let t = DateTime {
            year: 2026,
            month: 12,
            day: 5,
            hour: 15,
            minute: 12,
            second: 58,
        };
        let (d, tm) = t.encode();
        assert_eq!(DateTime::decode(d, tm), Some(t));
        assert_eq!(DateTime::decode(0, 0), None);
    }

    #[test]
    fn names_compare_without_case() {
        assert!(names_equal("Read Me.txt", "READ ME.TXT"));
        // One unit to one unit, as FAT's up-case table: ß has no one-letter upper case.
        assert!(!names_equal("Straße", "STRASSE"));
        assert!(names_equal("Ärger", "äRGER"));
        assert!(!names_equal("abc", "abd"));
        assert!(!names_equal("abc", "abcd"));
    }
}
