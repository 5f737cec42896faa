//! A buffer pool with an honest peer: lending, taking back, exhaustion, refusals of our own
//! mistakes.

use core::sync::atomic::AtomicU32;

use shmring::{
    ring_words, zeroed_words, Consumer, Descriptor, LayoutError, Pool, Producer, PushError,
    SendProblem,
};

/// The peer's handles: it takes on our outbound ring and returns on our inbound ring.
type Peer<'a> = (
    Consumer<Descriptor, &'a [AtomicU32]>,
    Producer<Descriptor, &'a [AtomicU32]>,
);

struct Rings {
    outbound: Vec<AtomicU32>,
    inbound: Vec<AtomicU32>,
}

impl Rings {
    fn new(capacity: u32) -> Rings {
        Rings {
            outbound: zeroed_words(ring_words::<Descriptor>(capacity)).collect(),
            inbound: zeroed_words(ring_words::<Descriptor>(capacity)).collect(),
        }
    }

    fn pool<const N: usize>(&self, capacity: u32, buffers: u32) -> Pool<N, &[AtomicU32]> {
        Pool::new(
            buffers * 2048,
            2048,
            Producer::new(&self.outbound[..], capacity).unwrap(),
            Consumer::new(&self.inbound[..], capacity).unwrap(),
        )
        .unwrap()
    }

    /// The peer's two handles: takes on our outbound ring, returns on our inbound ring.
    fn peer(&self, capacity: u32) -> Peer<'_> {
        (
            Consumer::new(&self.outbound[..], capacity).unwrap(),
            Producer::new(&self.inbound[..], capacity).unwrap(),
        )
    }
}

#[test]
fn buffers_go_out_and_come_back_filled() {
    let rings = Rings::new(16);
    let mut pool = rings.pool::<16>(16, 16);
    let (mut take, mut give) = rings.peer(16);
    // Hand every buffer out empty (as receive buffers for a driver).
    while let Some(buffer) = pool.alloc() {
        pool.send(buffer, 0).unwrap();
    }
    assert_eq!((pool.lent(), pool.at_home()), (16, 0));
    assert!(!pool.publish(), "the peer is not waiting");
    // The peer fills every other buffer with a frame and returns it.
    let mut offsets = Vec::new();
    while let Some(entry) = take.pop().unwrap() {
        assert_eq!(entry.offset % 2048, 0);
        offsets.push(entry.offset);
    }
    assert_eq!(offsets.len(), 16);
    for (n, offset) in offsets.iter().enumerate().step_by(2) {
        give.push(Descriptor {
            offset: *offset,
            length: 60 + n as u32,
        })
        .unwrap();
    }
    assert!(pool.prepare_wait(), "nothing returned yet: may block");
    assert!(give.publish(), "we announced we wait");
    let mut received = 0;
    while let Some(buffer) = pool.receive().unwrap() {
        assert_eq!(buffer.length(), 60 + 2 * received);
        assert_eq!(
            buffer.span().range(),
            buffer.offset() as usize..buffer.offset() as usize + buffer.length() as usize
        );
        pool.free(buffer);
        received += 1;
    }
    assert_eq!(received, 8);
    assert_eq!((pool.lent(), pool.at_home(), pool.refused()), (8, 8, 0));
}

#[test]
fn alloc_runs_out_and_free_refills() {
    let rings = Rings::new(4);
    let mut pool = rings.pool::<8>(4, 3);
    assert_eq!(pool.buffers(), 3);
    assert_eq!(pool.buffer_size(), 2048);
    let held: Vec<_> = (0..3).map(|_| pool.alloc().unwrap()).collect();
    let offsets: Vec<u32> = held.iter().map(|b| b.offset()).collect();
    assert_eq!(offsets, [0, 2048, 4096]);
    assert!(held.iter().all(|b| b.length() == 2048));
    assert!(pool.alloc().is_none());
    for buffer in held {
        pool.free(buffer);
    }
    assert_eq!(pool.at_home(), 3);
    assert!(pool.alloc().is_some());
}

#[test]
fn send_hands_the_buffer_back_on_failure() {
    let rings = Rings::new(2);
    let mut pool = rings.pool::<4>(2, 4);
    let buffer = pool.alloc().unwrap();
    let error = pool.send(buffer, 2049).unwrap_err();
    assert_eq!(error.problem, SendProblem::TooLong);
    pool.send(error.buffer, 2048).unwrap();
    let second = pool.alloc().unwrap();
    pool.send(second, 1).unwrap();
    let third = pool.alloc().unwrap();
    let error = pool.send(third, 1).unwrap_err();
    assert_eq!(error.problem, SendProblem::Ring(PushError::Full));
    assert_eq!(pool.lent(), 2, "the refused buffer is not lent");
    pool.free(error.buffer);
    assert_eq!(pool.at_home(), 2);
}

#[test]
fn a_pool_too_small_for_the_region_is_refused() {
    let rings = Rings::new(4);
    let make = |size, buffer_size| {
        Pool::<4, _>::new(
            size,
            buffer_size,
            Producer::<Descriptor, _>::new(&rings.outbound[..], 4).unwrap(),
            Consumer::<Descriptor, _>::new(&rings.inbound[..], 4).unwrap(),
        )
        .err()
    };
    assert_eq!(make(5 * 2048, 2048), Some(LayoutError::Buffers));
    assert_eq!(make(4 * 2048, 0), Some(LayoutError::Buffers));
    assert_eq!(
        make(4 * 2048 + 100, 2048),
        None,
        "a partial buffer at the end is unused"
    );
}

#[test]
fn a_buffer_of_another_pool_is_neither_sent_nor_freed() {
    let (ours, theirs) = (Rings::new(4), Rings::new(4));
    let mut pool = ours.pool::<4>(4, 2);
    let mut other = theirs.pool::<4>(4, 4);
    let _first = other.alloc().unwrap();
    let look_alike = other.alloc().unwrap();
    let foreign = other.alloc().unwrap();
    assert_eq!(foreign.offset(), 4096, "an offset past our two buffers");
    let error = pool.send(foreign, 10).unwrap_err();
    assert_eq!(error.problem, SendProblem::NotHeld);
    pool.free(error.buffer);
    assert_eq!((pool.at_home(), pool.lent()), (2, 0));
    // Same offset as one of ours, but ours is at home, not held.
    assert_eq!(look_alike.offset(), 2048);
    pool.free(look_alike);
    assert_eq!(pool.at_home(), 2);
    assert_eq!(pool.alloc().map(|b| b.offset()), Some(0));
}
