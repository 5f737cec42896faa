//! What a ring carries: plain fixed-size entries made of 32-bit words.

/// The largest entry a ring carries, in 32-bit words (64 bytes, the size of a LionsOS
/// file-system command).
pub const MAX_ENTRY_WORDS: usize = 16;

/// A plain fixed-layout value that a ring carries: [`Entry::WORDS`] 32-bit words.
///
/// Both sides of a ring agree on the encoding, which is the protocol's wire format: word `i`
/// of entry `n` lives at a fixed byte offset (see the crate documentation). Decoding never
/// fails, because a hostile producer can write any bit pattern: every pattern is some value,
/// and the consumer validates the value (for example with [`crate::Region::check`]) before
/// acting on it.
pub trait Entry: Copy {
    /// Size of one entry in 32-bit words, 1..=[`MAX_ENTRY_WORDS`].
    const WORDS: usize;

    /// Writes the entry into `words`, which holds exactly [`Entry::WORDS`] words.
    fn encode(&self, words: &mut [u32]);

    /// Reads an entry from `words`, which holds exactly [`Entry::WORDS`] words.
    fn decode(words: &[u32]) -> Self;
}

/// A span of a data region named by offset: the entry of buffer rings (network frames, free
/// buffers). Word 0 is the offset, word 1 the length, both in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Descriptor {
    /// Offset of the span's first byte from the start of the data region.
    pub offset: u32,
    /// Length of the span in bytes.
    pub length: u32,
}

impl Entry for Descriptor {
    const WORDS: usize = 2;

    fn encode(&self, words: &mut [u32]) {
        words[0] = self.offset;
        words[1] = self.length;
    }

    fn decode(words: &[u32]) -> Self {
        Descriptor {
            offset: words[0],
            length: words[1],
        }
    }
}

impl Entry for u32 {
    const WORDS: usize = 1;

    fn encode(&self, words: &mut [u32]) {
        words[0] = *self;
    }

    fn decode(words: &[u32]) -> Self {
        words[0]
    }
}
