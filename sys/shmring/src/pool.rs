//! Fixed-size buffers in a data region lent to a peer and taken back, as sDDF's free and
//! active queues: the owner of the region sends buffers out on one ring and receives them
//! back on another, and refuses any buffer it did not lend.

use core::ops::Deref;
use core::sync::atomic::AtomicU32;

use crate::entry::Descriptor;
use crate::region::{Region, Span, SpanError};
use crate::ring::{Consumer, Corrupt, LayoutError, Producer, PushError};

/// One buffer of a [`Pool`], held by this side: neither at home in the pool nor lent to the
/// peer. Not `Clone`, so a buffer is in one place at a time; give it back with
/// [`Pool::free`] or lend it with [`Pool::send`].
#[derive(Debug, PartialEq, Eq)]
pub struct Buffer {
    index: u32,
    offset: u32,
    length: u32,
}

impl Buffer {
    /// Offset of the buffer's first byte in the data region.
    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// Bytes of data in the buffer: the length the peer returned it with, or the buffer
    /// size for one fresh from [`Pool::alloc`]. Always at most the buffer size.
    pub fn length(&self) -> u32 {
        self.length
    }

    /// The buffer's data as a span of the region (`offset..offset + length`).
    pub fn span(&self) -> Span {
        Span {
            offset: self.offset as usize,
            length: self.length as usize,
        }
    }
}

/// Why [`Pool::receive`] yielded no buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveError {
    /// The inbound ring's `tail` is impossible; nothing was taken.
    Corrupt,
    /// The peer returned an entry that is not a buffer it holds (outside the region, not on a
    /// buffer boundary, longer than a buffer, or not lent to it): the entry was dropped and
    /// counted in [`Pool::refused`].
    Refused(SpanError),
}

/// Why [`Pool::send`] did not lend a buffer; the buffer comes back with the error.
#[derive(Debug, PartialEq, Eq)]
pub struct SendError {
    /// The buffer, still held by the caller.
    pub buffer: Buffer,
    /// What went wrong: the length exceeds the buffer size ([`SendProblem::TooLong`]) or the
    /// outbound ring refused the entry.
    pub problem: SendProblem,
}

/// What stopped [`Pool::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendProblem {
    /// The length given is larger than a buffer.
    TooLong,
    /// The buffer is not held from this pool (it came from another one).
    NotHeld,
    /// The outbound ring is full or its consumer's index is impossible.
    Ring(PushError),
}

/// Where a buffer of a [`Pool`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In the pool, available to `alloc`.
    Home,
    /// Held by this side as a [`Buffer`].
    Held,
    /// Lent to the peer.
    Lent,
}

/// The owner's side of a pair of buffer rings over a data region of `buffers` equal buffers:
/// buffers leave on the outbound ring and come back on the inbound one. `N` bounds how many
/// buffers the pool can track (its bookkeeping is `5 * N` bytes, no allocation).
///
/// Every buffer is in exactly one place: at home, held by this side (a [`Buffer`]) or lent
/// to the peer. Only a lent buffer is accepted back, once.
pub struct Pool<const N: usize, M = &'static [AtomicU32]> {
    region: Region,
    buffers: u32,
    outbound: Producer<Descriptor, M>,
    inbound: Consumer<Descriptor, M>,
    /// Indices of the buffers at home (neither lent nor held by the caller): `home[..homes]`.
    home: [u32; N],
    homes: usize,
    /// Where each buffer is.
    place: [Place; N],
    /// How many buffers are lent to the peer.
    lent: usize,
    refused: u64,
}

impl<const N: usize, M: Deref<Target = [AtomicU32]>> Pool<N, M> {
    /// A pool of the `region_size / buffer_size` buffers of a data region, every one at home,
    /// lent on `outbound` and taken back on `inbound`.
    ///
    /// Fails with [`LayoutError::Buffers`] if `buffer_size` is zero or the region holds more
    /// than `N` buffers.
    pub fn new(
        region_size: u32,
        buffer_size: u32,
        outbound: Producer<Descriptor, M>,
        inbound: Consumer<Descriptor, M>,
    ) -> Result<Self, LayoutError> {
        if buffer_size == 0 {
            return Err(LayoutError::Buffers);
        }
        let buffers = region_size / buffer_size;
        if buffers as usize > N {
            return Err(LayoutError::Buffers);
        }
        let region = Region::new(buffers * buffer_size, buffer_size).ok_or(LayoutError::Buffers)?;
        let mut home = [0u32; N];
        // Lowest offsets first out of `alloc`.
        for (slot, index) in home.iter_mut().zip((0..buffers).rev()) {
            *slot = index;
        }
        Ok(Pool {
            region,
            buffers,
            outbound,
            inbound,
            home,
            homes: buffers as usize,
            place: [Place::Home; N],
            lent: 0,
            refused: 0,
        })
    }

    /// The size of one buffer in bytes.
    pub fn buffer_size(&self) -> u32 {
        self.region.align()
    }

    /// How many buffers the region holds.
    pub fn buffers(&self) -> u32 {
        self.buffers
    }

    /// How many buffers are at home (available to [`alloc`](Self::alloc)).
    pub fn at_home(&self) -> usize {
        self.homes
    }

    /// How many buffers are lent to the peer.
    pub fn lent(&self) -> usize {
        self.lent
    }

    /// How many inbound entries were refused as not being a buffer the peer held.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Takes a buffer from home, with its length set to the buffer size; `None` if every
    /// buffer is lent or held.
    pub fn alloc(&mut self) -> Option<Buffer> {
        let index = *self.home[..self.homes].last()?;
        self.homes -= 1;
        self.place[index as usize] = Place::Held;
        Some(Buffer {
            index,
            offset: index * self.buffer_size(),
            length: self.buffer_size(),
        })
    }

    /// Puts a held buffer back home without lending it. A buffer this pool does not count as
    /// held (one from another pool) is ignored.
    pub fn free(&mut self, buffer: Buffer) {
        if self.is_held(&buffer) {
            self.place[buffer.index as usize] = Place::Home;
            // A held buffer is not at home, so there is room.
            self.home[self.homes] = buffer.index;
            self.homes += 1;
        }
    }

    fn is_held(&self, buffer: &Buffer) -> bool {
        buffer.index < self.buffers
            && self.place[buffer.index as usize] == Place::Held
            && buffer.offset == buffer.index * self.buffer_size()
    }

    /// Lends a held buffer to the peer with `length` bytes of data; the peer sees it after
    /// the next [`publish`](Self::publish).
    ///
    /// Fails, handing the buffer back, if `length` exceeds the buffer size, the buffer is
    /// not one this pool counts as held (one from another pool), or the outbound ring
    /// refuses the entry.
    pub fn send(&mut self, buffer: Buffer, length: u32) -> Result<(), SendError> {
        if !self.is_held(&buffer) {
            return Err(SendError {
                buffer,
                problem: SendProblem::NotHeld,
            });
        }
        if length > self.buffer_size() {
            return Err(SendError {
                buffer,
                problem: SendProblem::TooLong,
            });
        }
        let entry = Descriptor {
            offset: buffer.offset,
            length,
        };
        match self.outbound.push(entry) {
            Ok(()) => {
                self.place[buffer.index as usize] = Place::Lent;
                self.lent += 1;
                Ok(())
            }
            Err(error) => Err(SendError {
                buffer,
                problem: SendProblem::Ring(error),
            }),
        }
    }

    /// Publishes the buffers sent since the last call; true if the peer waits and must be
    /// signalled (see [`Producer::publish`]).
    pub fn publish(&mut self) -> bool {
        self.outbound.publish()
    }

    /// Takes the next buffer the peer returned, checked to be one it holds.
    ///
    /// Returns `Ok(None)` if none is waiting. Fails with [`ReceiveError::Refused`] for an
    /// entry that is not a buffer lent to the peer (dropped and counted: call again for the
    /// next), and with [`ReceiveError::Corrupt`] if the ring's `tail` is impossible.
    pub fn receive(&mut self) -> Result<Option<Buffer>, ReceiveError> {
        let entry = match self.inbound.pop() {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(None),
            Err(Corrupt) => return Err(ReceiveError::Corrupt),
        };
        match self.check(entry) {
            Ok(index) => {
                self.place[index as usize] = Place::Held;
                self.lent -= 1;
                Ok(Some(Buffer {
                    index,
                    offset: entry.offset,
                    length: entry.length,
                }))
            }
            Err(problem) => {
                self.refused += 1;
                Err(ReceiveError::Refused(problem))
            }
        }
    }

    /// The index of the buffer `entry` names, if the peer holds it.
    fn check(&self, entry: Descriptor) -> Result<u32, SpanError> {
        // The whole buffer must lie in the region; then the length must fit in it.
        self.region.check(entry.offset, self.buffer_size())?;
        if entry.length > self.buffer_size() {
            return Err(SpanError::TooLong);
        }
        let index = entry.offset / self.buffer_size();
        if self.place[index as usize] != Place::Lent {
            return Err(SpanError::NotOwned);
        }
        Ok(index)
    }

    /// Announces that this side is about to wait for returned buffers; true if none is
    /// waiting, so it may block (see [`Consumer::prepare_wait`]).
    pub fn prepare_wait(&mut self) -> bool {
        self.inbound.prepare_wait()
    }

    /// Ends a batch of receives; true if the peer waits for space on the inbound ring (see
    /// [`Consumer::release`]).
    pub fn release(&mut self) -> bool {
        self.inbound.release()
    }
}
