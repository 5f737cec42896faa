//! The garbage a hostile client of `net` puts in its shared region, host-tested: messages
//! that are wrong in every field the server reads ([`Garbage::message`]), and impossible
//! ring indices ([`Garbage::scribble`]). The server must drop or refuse each, count it, and
//! go on serving its other clients.

#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

use core::sync::atomic::{AtomicU32, Ordering};

use libos_core::net::wire::{op, Message};

/// A deterministic source of garbage (xorshift64).
pub struct Garbage(u64);

/// What a garbage message is wrong in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flaw {
    /// An operation that does not exist.
    UnknownOp,
    /// A socket the client never opened (or the server's id space).
    ForeignSocket,
    /// A buffer offset outside the area or not at a buffer's start.
    BadOffset,
    /// A length longer than a buffer.
    BadLength,
    /// A port outside the client's range, or zero.
    BadPort,
}

/// Every flaw, in the order [`Garbage::message`] cycles through them.
pub const FLAWS: [Flaw; 5] = [
    Flaw::UnknownOp,
    Flaw::ForeignSocket,
    Flaw::BadOffset,
    Flaw::BadLength,
    Flaw::BadPort,
];

impl Garbage {
    /// A source seeded with `seed` (0 is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Garbage {
        Garbage(seed.max(1))
    }

    /// The next pseudo-random word.
    pub fn word(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Message number `n`: flawed in `FLAWS[n % 5]`, random elsewhere.
    pub fn message(&mut self, n: u64) -> (Flaw, Message) {
        let r = self.word();
        let flaw = FLAWS[(n % FLAWS.len() as u64) as usize];
        let mut m = Message {
            op: op::WRITE,
            status: 0,
            socket: (r as u32) | 0x4000_0000,
            offset: 0,
            len: 1,
            args: [self.word(), self.word()],
        };
        match flaw {
            Flaw::UnknownOp => m.op = 0x7000 | (r >> 48) as u16,
            Flaw::ForeignSocket => m.socket = 0x8000_0000 | (r >> 40) as u32,
            Flaw::BadOffset => {
                m.offset = if r & 1 == 0 {
                    u32::MAX - 3
                } else {
                    4096 * 7 + 12
                };
            }
            Flaw::BadLength => m.len = 0x10_0000 + (r >> 44) as u32,
            Flaw::BadPort => {
                m.op = op::LISTEN;
                m.args[0] = if r & 1 == 0 { 0 } else { 22 };
            }
        }
        (flaw, m)
    }

    /// Writes garbage over the first words of `ring` (its indices and waiting flags,
    /// `shmring`'s header) so that the server finds the ring impossible.
    pub fn scribble(&mut self, ring: &[AtomicU32]) {
        for (i, word) in ring.iter().take(shmring::HEADER_WORDS).enumerate() {
            if i % 16 == 0 {
                word.store((self.word() >> 16) as u32 | 0x8000_0000, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use libos_core::net::wire::Request;
    use std::vec::Vec;

    #[test]
    fn every_message_is_flawed_in_what_it_says() {
        let mut g = Garbage::new(7);
        let (buffer, area) = (4096, 4096 * 100);
        for n in 0..500 {
            let (flaw, m) = g.message(n);
            match flaw {
                Flaw::UnknownOp => assert!(Request::parse(&m).is_err(), "{m:?}"),
                Flaw::ForeignSocket => assert!(m.socket & 0x8000_0000 != 0),
                Flaw::BadOffset => assert!(m.offset % buffer != 0 || m.offset >= area, "{m:?}"),
                Flaw::BadLength => assert!(m.len > buffer, "{m:?}"),
                Flaw::BadPort => assert!(m.args[0] == 0 || m.args[0] == 22),
            }
        }
    }

    #[test]
    fn scribbling_makes_the_ring_impossible() {
        let words: Vec<AtomicU32> =
            shmring::zeroed_words(shmring::ring_words::<Message>(16)).collect();
        let (_producer, mut consumer) = shmring::ring::<Message, _>(&words[..], 16).unwrap();
        Garbage::new(3).scribble(&words);
        assert!(consumer.pop().is_err());
    }

    #[test]
    fn the_same_seed_gives_the_same_garbage() {
        let (mut a, mut b) = (Garbage::new(9), Garbage::new(9));
        for n in 0..20 {
            assert_eq!(a.message(n), b.message(n));
        }
    }
}
