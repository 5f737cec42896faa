//! Checked access to the boot information the kernel gives the root task.
//!
//! [`BootInfo::from_bytes`] validates a byte view of the boot-info frame (and
//! any extra boot-info pages after it) before anything reads it: the untyped
//! range must fit the list, slot regions must not be reversed, and every extra
//! chunk header must fit its region.

use crate::{BootInfo, BootInfoHeader, CPtr, SlotRegion, UntypedDesc, Word};
use core::mem::size_of;

/// Offset of the extra boot-info region from the start of the boot-info frame.
pub const EXTRA_OFFSET: usize = 4096;

/// Why boot info was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// The bytes are shorter than the structure (or than its extra region).
    TooShort {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// A slot region has `end < start`.
    BadRegion,
    /// The untyped region lists more caps than `untyped_list` holds.
    TooManyUntypeds,
    /// An extra boot-info chunk is shorter than its header or runs past the region.
    BadExtraChunk,
}

/// Validated boot info plus its extra region.
#[derive(Clone, Copy, Debug)]
pub struct BootInfoRef<'a> {
    info: &'a BootInfo,
    extra: &'a [u8],
    bytes: &'a [u8],
}

impl core::ops::Deref for BootInfoRef<'_> {
    type Target = BootInfo;
    fn deref(&self) -> &BootInfo {
        self.info
    }
}

impl SlotRegion {
    /// Number of slots in the region.
    pub fn len(&self) -> Word {
        let (start, end) = (self.start, self.end);
        end.saturating_sub(start)
    }
    /// Whether the region has no slots.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The slots of the region.
    pub fn slots(&self) -> core::ops::Range<CPtr> {
        let (start, end) = (self.start, self.end);
        start..end
    }
}

impl UntypedDesc {
    /// Physical address of the untyped memory.
    pub fn paddr(&self) -> Word {
        self.paddr
    }
    /// log2 of its size in bytes.
    pub fn size_bits(&self) -> u8 {
        self.size_bits
    }
    /// Whether it is device memory (not RAM).
    pub fn is_device(&self) -> bool {
        self.is_device != 0
    }
}

/// One chunk of extra boot info.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtraChunk<'a> {
    /// The chunk's identifier (`SEL4_BOOTINFO_HEADER_*`).
    pub id: Word,
    /// The chunk's bytes after its header.
    pub data: &'a [u8],
}

fn header_at(bytes: &[u8], at: usize) -> Option<(Word, Word)> {
    let word = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| Word::from_le_bytes(b.try_into().unwrap()))
    };
    Some((word(at)?, word(at + 8)?))
}

impl BootInfo {
    /// Validates `bytes` (the boot-info frame, followed by the extra boot-info
    /// region when `extra_len > 0`) and views it as boot info.
    pub fn from_bytes(bytes: &[u8]) -> Result<BootInfoRef<'_>, BootInfoError> {
        let need = size_of::<BootInfo>();
        if bytes.len() < need {
            return Err(BootInfoError::TooShort {
                need,
                got: bytes.len(),
            });
        }
        // SAFETY: `BootInfo` is `repr(C, packed)` (alignment 1) and made only of
        // integers, so every byte pattern of `need` bytes is a valid value, and the
        // length was checked above.
        let info: &BootInfo = unsafe { &*(bytes.as_ptr() as *const BootInfo) };
        for r in [
            info.empty,
            info.shared_frames,
            info.user_image_frames,
            info.user_image_paging,
            info.io_space_caps,
            info.extra_bi_pages,
            info.untyped,
        ] {
            let (start, end) = (r.start, r.end);
            if end < start {
                return Err(BootInfoError::BadRegion);
            }
        }
        if info.untyped.len() > info.untyped_list.len() as Word {
            return Err(BootInfoError::TooManyUntypeds);
        }
        let extra_len = info.extra_len as usize;
        let extra = if extra_len == 0 {
            &bytes[0..0]
        } else {
            let end = EXTRA_OFFSET
                .checked_add(extra_len)
                .ok_or(BootInfoError::BadExtraChunk)?;
            bytes
                .get(EXTRA_OFFSET..end)
                .ok_or(BootInfoError::TooShort {
                    need: end,
                    got: bytes.len(),
                })?
        };
        let mut at = 0;
        while at < extra.len() {
            let (_, len) = header_at(extra, at).ok_or(BootInfoError::BadExtraChunk)?;
            let len = usize::try_from(len).map_err(|_| BootInfoError::BadExtraChunk)?;
            if len < size_of::<BootInfoHeader>() || len > extra.len() - at {
                return Err(BootInfoError::BadExtraChunk);
            }
            at += len;
        }
        Ok(BootInfoRef { info, extra, bytes })
    }

    /// Views the boot info the kernel passed to the root task.
    ///
    /// # Safety
    /// `ptr` must be the boot-info pointer the kernel passed in `rdi`, with the
    /// boot-info frame and any extra pages mapped and never written afterwards.
    pub unsafe fn from_ptr(ptr: *const u8) -> Result<BootInfoRef<'static>, BootInfoError> {
        // SAFETY: the frame is mapped and at least 4 KiB long (caller's contract).
        let frame = unsafe { core::slice::from_raw_parts(ptr, EXTRA_OFFSET) };
        let (extra_len, _) = header_at(frame, 0).ok_or(BootInfoError::BadExtraChunk)?;
        let len = if extra_len == 0 {
            EXTRA_OFFSET
        } else {
            EXTRA_OFFSET + extra_len as usize
        };
        // SAFETY: the extra region follows the frame and is mapped (caller's contract).
        BootInfo::from_bytes(unsafe { core::slice::from_raw_parts(ptr, len) })
    }
}

impl<'a> BootInfoRef<'a> {
    /// The underlying boot info.
    pub fn info(&self) -> &'a BootInfo {
        self.info
    }

    /// The bytes it was validated from: for the kernel's boot info
    /// ([`BootInfo::from_ptr`]), the frame and the extra region after it.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Each untyped cap with its description.
    pub fn untypeds(&self) -> impl Iterator<Item = (CPtr, &'a UntypedDesc)> + 'a {
        let info = self.info;
        let region = info.untyped;
        region.slots().zip(info.untyped_list.iter())
    }

    /// The empty slots of the root CNode.
    pub fn empty(&self) -> SlotRegion {
        self.info.empty
    }

    /// The chunks of extra boot info (validated by `from_bytes`).
    pub fn extra_bootinfo(&self) -> impl Iterator<Item = ExtraChunk<'a>> + 'a {
        let extra = self.extra;
        let mut at = 0;
        core::iter::from_fn(move || {
            let (id, len) = header_at(extra, at)?;
            let start = at + size_of::<BootInfoHeader>();
            let end = at + len as usize;
            at = end;
            Some(ExtraChunk {
                id,
                data: &extra[start..end],
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use std::vec;
    use std::vec::Vec;

    fn put(buf: &mut [u8], at: usize, w: Word) {
        buf[at..at + 8].copy_from_slice(&w.to_le_bytes());
    }

    /// A synthetic boot-info frame plus one extra page, laid out by hand.
    fn blob(untyped: (Word, Word), extra: &[(Word, Word)]) -> [u8; 8192] {
        let mut b = [0u8; 8192];
        let extra_len: Word = extra.iter().map(|c| c.1).sum();
        put(&mut b, 0, extra_len);
        put(&mut b, 16, 1); // numNodes
        put(&mut b, offset_of!(BootInfo, empty), 300);
        put(&mut b, offset_of!(BootInfo, empty) + 8, 65536);
        let u = offset_of!(BootInfo, untyped);
        put(&mut b, u, untyped.0);
        put(&mut b, u + 8, untyped.1);
        let list = offset_of!(BootInfo, untyped_list);
        for i in 0..3 {
            let d = list + i * size_of::<UntypedDesc>();
            put(&mut b, d, 0x10_0000 * (i as Word + 1));
            b[d + 10] = 20 + i as u8; // sizeBits
            b[d + 11] = (i == 2) as u8; // isDevice
        }
        let mut at = EXTRA_OFFSET;
        for &(id, len) in extra {
            put(&mut b, at, id);
            put(&mut b, at + 8, len);
            b[at + 16] = 0xaa;
            at += len as usize;
        }
        b
    }

    #[test]
    fn layout_matches_the_header() {
        assert_eq!(offset_of!(BootInfo, untyped_list), 169);
        assert_eq!(size_of::<UntypedDesc>(), 12);
    }

    #[test]
    fn parses_untypeds_empty_and_extra_chunks() {
        let b = blob((100, 103), &[(1, 24), (0, 16)]);
        let bi = BootInfo::from_bytes(&b).unwrap();
        assert_eq!(bi.empty().slots(), 300..65536);
        let u: Vec<(CPtr, Word, u8, bool)> = bi
            .untypeds()
            .map(|(c, d)| (c, d.paddr(), d.size_bits(), d.is_device()))
            .collect();
        assert_eq!(
            u,
            vec![
                (100, 0x10_0000, 20, false),
                (101, 0x20_0000, 21, false),
                (102, 0x30_0000, 22, true)
            ]
        );
        let chunks: Vec<ExtraChunk> = bi.extra_bootinfo().collect();
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            (chunks[0].id, chunks[0].data.len(), chunks[0].data[0]),
            (1, 8, 0xaa)
        );
        assert_eq!((chunks[1].id, chunks[1].data.len()), (0, 0));
        let num_nodes = bi.num_nodes;
        assert_eq!(num_nodes, 1);
    }

    #[test]
    fn rejects_bad_input() {
        let b = blob((100, 103), &[]);
        assert!(matches!(
            BootInfo::from_bytes(&b[..100]),
            Err(BootInfoError::TooShort { .. })
        ));
        let b = blob((103, 100), &[]);
        assert_eq!(
            BootInfo::from_bytes(&b).unwrap_err(),
            BootInfoError::BadRegion
        );
        let b = blob((0, 10_000), &[]);
        assert_eq!(
            BootInfo::from_bytes(&b).unwrap_err(),
            BootInfoError::TooManyUntypeds
        );
        let b = blob((1, 2), &[(1, 8)]);
        assert_eq!(
            BootInfo::from_bytes(&b).unwrap_err(),
            BootInfoError::BadExtraChunk
        );
        let b = blob((1, 2), &[(1, 16)]);
        assert!(matches!(
            BootInfo::from_bytes(&b[..4100]),
            Err(BootInfoError::TooShort { .. })
        ));
    }
}
