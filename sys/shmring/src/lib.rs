//! Single-producer single-consumer rings in memory shared with a peer that is not trusted:
//! the one ring used by every shared-memory protocol (network frames, block requests, file
//! commands).
//!
//! A ring lives in a region both sides map. Its entries are plain words ([`Entry`]); the ones
//! that name data ([`Descriptor`]) name it by `{offset, length}` in a separate data region,
//! never by pointer. Each side holds a handle ([`Producer`] or [`Consumer`]) that keeps the
//! ring's capacity and its own index privately; whatever the peer writes into shared memory
//! can make us drop its entries, never read or write outside the ring or the data region.
//! [`Pool`] adds buffer ownership on top: the owner of a data region lends fixed-size buffers
//! on one ring and takes them back on another, as sDDF's free and active queues.
//!
//! # Memory layout
//!
//! All fields are 32-bit words in the machine's byte order, accessed only atomically. Byte
//! offsets from the start of the ring's memory (which must be 4-byte aligned; 64 keeps the
//! two sides' fields on separate cache lines):
//!
//! | bytes | field | written by |
//! |---|---|---|
//! | 0 | `tail`: entries published, free-running | producer ([`Producer::publish`]) |
//! | 4 | `producer_waiting`: non-zero while the producer waits for space | producer sets, consumer clears |
//! | 8..64 | reserved, zero | |
//! | 64 | `head`: entries taken, free-running | consumer ([`Consumer::pop`]) |
//! | 68 | `consumer_waiting`: non-zero while the consumer waits for entries | consumer sets, producer clears |
//! | 72..128 | reserved, zero | |
//! | 128 + 4 * W * (i mod C) | entry `i`: its `W` = [`Entry::WORDS`] words | producer |
//!
//! `C` is the capacity, a power of two up to [`MAX_CAPACITY`]; the memory needs
//! [`ring_bytes`]`::<E>(C)` bytes. A [`Descriptor`] is two words: offset, then length. Fresh
//! (zeroed) memory is an empty ring; a handle attached to used memory resumes from the index
//! its side owns, so either side may restart while the other keeps the memory.
//!
//! # Validation
//!
//! - The capacity is never read from shared memory: each handle gets it from its own
//!   configuration, and slot `i` is found by masking, so no index a peer writes reaches past
//!   the slots.
//! - Each side keeps its own index privately and only writes it to shared memory. The peer's
//!   index is checked on every read: the consumer accepts a `tail` only if
//!   `tail - head <= C` (wrapping), the producer accepts a `head` only if `tail - head <= C`.
//!   Anything else is reported ([`Corrupt`], [`PushError::Corrupt`]) and nothing is read
//!   from or written to the slots; the caller counts it and may cut the peer off.
//! - Entries are returned as written: a consumer validates them before use, with
//!   [`Region::check`] for spans of a data region (inside it, aligned), or through a
//!   [`Pool`], which also refuses a buffer that is not currently lent to the peer
//!   ([`SpanError::NotOwned`]) and counts what it drops ([`Pool::refused`]).
//!
//! # Signalling (as sDDF)
//!
//! The consumer drains the ring, then calls [`Consumer::prepare_wait`]: it sets
//! `consumer_waiting`, re-checks the ring and only if it is still empty returns true, and the
//! consumer blocks on its notification. The producer pushes a batch, then calls
//! [`Producer::publish`]: it stores `tail` and returns true, clearing the flag, only if the
//! flag was set; then, and only then, it signals. So a busy consumer is never signalled and a
//! waiting one once per batch. Both sides put a sequentially consistent fence between their
//! store and their load, so at least one of them sees the other's store: no wakeup is lost.
//! The same protocol runs the other way for a producer waiting for space
//! ([`Producer::prepare_wait`], [`Consumer::release`]).
//!
//! # Example
//!
//! ```
//! use core::sync::atomic::AtomicU32;
//! use shmring::{ring, ring_words, zeroed_words, Descriptor, Region};
//!
//! // Both handles in one process; across components each side builds its own handle over
//! // the mapping with `shared_memory` and `Producer::new` or `Consumer::new`.
//! let memory: Vec<AtomicU32> = zeroed_words(ring_words::<Descriptor>(8)).collect();
//! let (mut producer, mut consumer) = ring::<Descriptor, _>(&memory[..], 8).unwrap();
//!
//! assert!(consumer.prepare_wait()); // empty: the consumer may block
//! producer.push(Descriptor { offset: 2048, length: 60 }).unwrap();
//! assert!(producer.publish()); // it was waiting: signal it once
//!
//! let data = Region::new(64 * 2048, 2048).unwrap();
//! let entry = consumer.pop().unwrap().unwrap();
//! let span = data.check(entry.offset, entry.length).unwrap();
//! assert_eq!(span.range(), 2048..2108);
//! assert_eq!(consumer.pop(), Ok(None));
//! ```
#![no_std]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use core::ptr::NonNull;
use core::sync::atomic::AtomicU32;

mod bytes;
mod entry;
mod pool;
mod region;
mod ring;

pub use bytes::{read_bytes, write_bytes};
pub use entry::{Descriptor, Entry, MAX_ENTRY_WORDS};
pub use pool::{Buffer, Pool, ReceiveError, SendError, SendProblem};
pub use region::{Region, Span, SpanError};
pub use ring::{
    ring, ring_bytes, ring_words, Consumer, Corrupt, Handles, LayoutError, Producer, PushError,
    CONSUMER_WAITING_WORD, HEADER_WORDS, HEAD_WORD, MAX_CAPACITY, PRODUCER_WAITING_WORD, TAIL_WORD,
};

/// `count` zeroed words: collect them into a `Vec`, `Box` or `Arc` of [`AtomicU32`] to hold a
/// ring in this address space (tests, the hosted library OS).
pub fn zeroed_words(count: usize) -> impl Iterator<Item = AtomicU32> {
    core::iter::repeat_with(|| AtomicU32::new(0)).take(count)
}

/// The shared mapping at `base`, `bytes` long, as words a [`Producer`] or [`Consumer`] can
/// use (a trailing partial word is left out).
///
/// Fails with [`LayoutError::Misaligned`] if `base` is not 4-byte aligned.
///
/// # Safety
///
/// `base..base + bytes` must be mapped readable and writable for the rest of the program,
/// and this program must access it only atomically (through the returned slice or other
/// atomics). The peer may write it at any time: every access through the slice is atomic
/// and every value read is validated.
#[allow(
    unsafe_code,
    reason = "turns a mapping the caller vouches for into atomic words: the one place raw memory becomes a slice"
)]
pub unsafe fn shared_memory(
    base: NonNull<u8>,
    bytes: usize,
) -> Result<&'static [AtomicU32], LayoutError> {
    if !(base.as_ptr() as usize).is_multiple_of(core::mem::align_of::<AtomicU32>()) {
        return Err(LayoutError::Misaligned);
    }
    // SAFETY: the pointer is non-null and aligned (checked above); the caller vouches that
    // `bytes` bytes from it stay mapped for the rest of the program and are only accessed
    // atomically, so a shared slice of `AtomicU32` over them is valid for `'static`.
    Ok(unsafe { core::slice::from_raw_parts(base.as_ptr().cast::<AtomicU32>(), bytes / 4) })
}
