//! Bytes in a data region held as 32-bit words: copies in and out, never borrowed views
//! (the peer may write the same memory at any time, so what is read is read once, into
//! memory of our own).

use core::sync::atomic::{AtomicU32, Ordering};

use crate::region::SpanError;

/// The byte range `offset..offset + len` of `area`, checked.
fn range(area: &[AtomicU32], offset: usize, len: usize) -> Result<(usize, usize), SpanError> {
    let end = offset.checked_add(len).ok_or(SpanError::OutOfRegion)?;
    if end > area.len() * 4 {
        return Err(SpanError::OutOfRegion);
    }
    Ok((offset, end))
}

/// Copies `data` into `area` at byte `offset` (word accesses in the machine's byte order,
/// keeping the other bytes of a partly written word). Fails with
/// [`SpanError::OutOfRegion`] if the bytes do not lie inside `area`.
pub fn write_bytes(area: &[AtomicU32], offset: usize, data: &[u8]) -> Result<(), SpanError> {
    let (mut at, _) = range(area, offset, data.len())?;
    let mut data = data;
    if at % 4 == 0 {
        // Whole words first: the common case of a buffer at an aligned offset.
        let words = &area[at / 4..at / 4 + data.len() / 4];
        let mut chunks = data.chunks_exact(4);
        for (cell, chunk) in words.iter().zip(&mut chunks) {
            cell.store(
                u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
                Ordering::Relaxed,
            );
        }
        at += data.len() - chunks.remainder().len();
        data = chunks.remainder();
    }
    while !data.is_empty() {
        let (word, skip) = (at / 4, at % 4);
        let take = (4 - skip).min(data.len());
        let cell = &area[word];
        let value = if skip == 0 && take == 4 {
            u32::from_le_bytes([data[0], data[1], data[2], data[3]])
        } else {
            let mut bytes = cell.load(Ordering::Relaxed).to_le_bytes();
            bytes[skip..skip + take].copy_from_slice(&data[..take]);
            u32::from_le_bytes(bytes)
        };
        cell.store(value, Ordering::Relaxed);
        data = &data[take..];
        at += take;
    }
    Ok(())
}

/// Copies `into.len()` bytes from `area` at byte `offset` into `into`. Fails with
/// [`SpanError::OutOfRegion`] if the bytes do not lie inside `area`.
pub fn read_bytes(area: &[AtomicU32], offset: usize, into: &mut [u8]) -> Result<(), SpanError> {
    let (mut at, _) = range(area, offset, into.len())?;
    let mut filled = 0;
    if at % 4 == 0 {
        let words = &area[at / 4..at / 4 + into.len() / 4];
        let mut chunks = into.chunks_exact_mut(4);
        for (cell, chunk) in words.iter().zip(&mut chunks) {
            chunk.copy_from_slice(&cell.load(Ordering::Relaxed).to_le_bytes());
        }
        filled = into.len() / 4 * 4;
        at += filled;
    }
    while filled < into.len() {
        let (word, skip) = (at / 4, at % 4);
        let take = (4 - skip).min(into.len() - filled);
        let bytes = area[word].load(Ordering::Relaxed).to_le_bytes();
        into[filled..filled + take].copy_from_slice(&bytes[skip..skip + take]);
        filled += take;
        at += take;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn bytes_round_trip_at_every_alignment_and_neighbours_survive() {
        let area: Vec<AtomicU32> = crate::zeroed_words(16).collect();
        for w in &area {
            w.store(0xa5a5_a5a5, Ordering::Relaxed);
        }
        let data: Vec<u8> = (1..=11).collect();
        write_bytes(&area, 5, &data).unwrap();
        let mut back = [0u8; 11];
        read_bytes(&area, 5, &mut back).unwrap();
        assert_eq!(&back[..], &data[..]);
        let mut edges = [0u8; 2];
        read_bytes(&area, 4, &mut edges[..1]).unwrap();
        read_bytes(&area, 16, &mut edges[1..]).unwrap();
        assert_eq!(edges, [0xa5, 0xa5], "bytes next to the copy are kept");
    }

    #[test]
    fn spans_outside_the_area_are_refused() {
        let area: Vec<AtomicU32> = crate::zeroed_words(4).collect();
        assert_eq!(write_bytes(&area, 15, &[1, 2]), Err(SpanError::OutOfRegion));
        assert_eq!(
            read_bytes(&area, usize::MAX, &mut [0; 2]),
            Err(SpanError::OutOfRegion)
        );
        assert_eq!(read_bytes(&area, 16, &mut []), Ok(()));
        assert_eq!(write_bytes(&area, 14, &[1, 2]), Ok(()));
    }
}
