//! Validation of spans that a peer names in a data region.

/// A data region as this side knows it: its size and the alignment a protocol demands of
/// offsets. Both come from this side's own configuration, never from shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    size: u32,
    align: u32,
}

/// Why a span named by a peer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanError {
    /// The span does not lie wholly inside the region (or its end overflows).
    OutOfRegion,
    /// The offset is not a multiple of the region's alignment.
    Misaligned,
    /// The span is longer than the protocol allows (for example longer than one buffer).
    TooLong,
    /// The offset names a buffer this side does not currently lend to the peer.
    NotOwned,
}

/// A validated span of a region: `offset..offset + length` lies inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset of the first byte from the region's start.
    pub offset: usize,
    /// Length in bytes.
    pub length: usize,
}

impl Span {
    /// The span as a byte range of the region, for indexing a slice over it.
    pub fn range(&self) -> core::ops::Range<usize> {
        self.offset..self.offset + self.length
    }
}

impl Region {
    /// A region of `size` bytes whose offsets must be multiples of `align`.
    ///
    /// Returns `None` if `align` is zero.
    pub const fn new(size: u32, align: u32) -> Option<Region> {
        if align == 0 {
            None
        } else {
            Some(Region { size, align })
        }
    }

    /// The region's size in bytes.
    pub const fn size(&self) -> u32 {
        self.size
    }

    /// The alignment required of offsets, in bytes.
    pub const fn align(&self) -> u32 {
        self.align
    }

    /// Checks the span `offset..offset + length` named by a peer.
    ///
    /// Returns the span if it lies inside the region and `offset` is aligned;
    /// [`SpanError::Misaligned`] or [`SpanError::OutOfRegion`] otherwise. A zero-length span
    /// at the region's end is inside it.
    pub fn check(&self, offset: u32, length: u32) -> Result<Span, SpanError> {
        if !offset.is_multiple_of(self.align) {
            return Err(SpanError::Misaligned);
        }
        match offset.checked_add(length) {
            Some(end) if end <= self.size => Ok(Span {
                offset: offset as usize,
                length: length as usize,
            }),
            _ => Err(SpanError::OutOfRegion),
        }
    }
}
