//! Variable-length values: [`Name`] and [`Bytes`], each one length word followed by its bytes
//! packed little-endian into words (the last word's unused bytes must be zero).

use crate::codec::{DecodeError, Field, Reader, Writer};
use crate::message::MAX_WORDS;
use core::fmt;
use core::ops::Deref;
use sysdesc::MAX_NAME_LEN;

/// Writes `len` then `bytes` packed into words.
pub(crate) fn put_packed(w: &mut Writer, bytes: &[u8]) {
    w.word(bytes.len() as u64);
    for chunk in bytes.chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        w.word(u64::from_le_bytes(b));
    }
}

/// Reads a length (at most `out.len()`) and that many packed bytes into `out`; returns the
/// length. Fails on a length past `out.len()`, missing words or non-zero padding.
pub(crate) fn take_packed(r: &mut Reader<'_>, out: &mut [u8]) -> Result<usize, DecodeError> {
    let len = usize::try_from(r.word()?).map_err(|_| DecodeError)?;
    let dest = out.get_mut(..len).ok_or(DecodeError)?;
    for chunk in dest.chunks_mut(8) {
        let b = r.word()?.to_le_bytes();
        let (used, padding) = b.split_at(chunk.len());
        if padding.iter().any(|&p| p != 0) {
            return Err(DecodeError);
        }
        chunk.copy_from_slice(used);
    }
    Ok(len)
}

/// Words a packed value of at most `bytes` bytes takes.
pub(crate) const fn packed_words(bytes: usize) -> usize {
    1 + bytes.div_ceil(8)
}

/// A validated name of a service, component, device or shared region: 1..=[`MAX_NAME_LEN`]
/// bytes of `a-z`, `0-9`, `-` and `_`, starting with a letter (the system description's rule).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    len: u8,
    bytes: [u8; MAX_NAME_LEN],
}

/// A string is not a valid [`Name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameError;

impl Name {
    /// The name `text`, or `Err(NameError)` if it is empty, too long or uses other characters.
    pub fn new(text: &str) -> Result<Name, NameError> {
        Name::from_bytes(text.as_bytes())
    }

    fn from_bytes(text: &[u8]) -> Result<Name, NameError> {
        let valid_char = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_".contains(c);
        let first_ok = text.first().is_some_and(u8::is_ascii_lowercase);
        if !first_ok || text.len() > MAX_NAME_LEN || !text.iter().all(valid_char) {
            return Err(NameError);
        }
        let mut bytes = [0; MAX_NAME_LEN];
        bytes[..text.len()].copy_from_slice(text);
        Ok(Name {
            len: text.len() as u8,
            bytes,
        })
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        // Validated ASCII, so this never takes the fallback.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Field for Name {
    const MAX_WORDS: usize = packed_words(MAX_NAME_LEN);
    fn put(&self, w: &mut Writer) {
        put_packed(w, self.as_bytes());
    }
    fn take(r: &mut Reader<'_>) -> Result<Name, DecodeError> {
        let mut buf = [0; MAX_NAME_LEN];
        let len = take_packed(r, &mut buf)?;
        Name::from_bytes(&buf[..len]).map_err(|_| DecodeError)
    }
}

/// An optional name: length 0 means `None`.
impl Field for Option<Name> {
    const MAX_WORDS: usize = Name::MAX_WORDS;
    fn put(&self, w: &mut Writer) {
        match self {
            Some(name) => name.put(w),
            None => w.word(0),
        }
    }
    fn take(r: &mut Reader<'_>) -> Result<Option<Name>, DecodeError> {
        let mut buf = [0; MAX_NAME_LEN];
        match take_packed(r, &mut buf)? {
            0 => Ok(None),
            len => Name::from_bytes(&buf[..len])
                .map(Some)
                .map_err(|_| DecodeError),
        }
    }
}

/// The most bytes a [`Bytes`] holds: what fits a message after its length word.
pub const MAX_BYTES: usize = (MAX_WORDS - 1) * 8;

/// Up to [`MAX_BYTES`] arbitrary bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bytes {
    len: u8,
    data: [u8; MAX_BYTES],
}

impl Bytes {
    /// No bytes.
    pub const EMPTY: Bytes = Bytes {
        len: 0,
        data: [0; MAX_BYTES],
    };

    /// A copy of `data`, or `None` if it is longer than [`MAX_BYTES`].
    pub fn new(data: &[u8]) -> Option<Bytes> {
        let mut b = Bytes::EMPTY;
        b.data.get_mut(..data.len())?.copy_from_slice(data);
        b.len = data.len() as u8;
        Some(b)
    }

    /// A copy of the first [`MAX_BYTES`] of `data` at most; returns it and how many bytes it
    /// took.
    pub fn prefix(data: &[u8]) -> (Bytes, usize) {
        let n = data.len().min(MAX_BYTES);
        (Bytes::new(&data[..n]).unwrap_or(Bytes::EMPTY), n)
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Field for Bytes {
    const MAX_WORDS: usize = packed_words(MAX_BYTES);
    fn put(&self, w: &mut Writer) {
        put_packed(w, self);
    }
    fn take(r: &mut Reader<'_>) -> Result<Bytes, DecodeError> {
        let mut b = Bytes::EMPTY;
        b.len = take_packed(r, &mut b.data)? as u8;
        Ok(b)
    }
}
