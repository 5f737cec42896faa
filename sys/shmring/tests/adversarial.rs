//! A hostile peer writes whatever it likes into the shared header and slots: we report
//! corruption or drop its entries, and never touch memory outside the ring.

use core::sync::atomic::{AtomicU32, Ordering};

use shmring::{
    ring_words, zeroed_words, Consumer, Corrupt, Descriptor, Pool, Producer, PushError,
    ReceiveError, Region, SpanError, HEAD_WORD, TAIL_WORD,
};

const GUARD: u32 = 0xdead_beef;
const GUARD_WORDS: usize = 64;

/// Ring memory with guard words on both sides; returns the memory and the ring's range.
fn guarded(capacity: u32) -> (Vec<AtomicU32>, core::ops::Range<usize>) {
    let words = ring_words::<Descriptor>(capacity);
    let memory: Vec<AtomicU32> = zeroed_words(words + 2 * GUARD_WORDS).collect();
    for (i, word) in memory.iter().enumerate() {
        if !(GUARD_WORDS..GUARD_WORDS + words).contains(&i) {
            word.store(GUARD, Ordering::Relaxed);
        }
    }
    (memory, GUARD_WORDS..GUARD_WORDS + words)
}

fn assert_guards_intact(memory: &[AtomicU32], ring: &core::ops::Range<usize>) {
    for (i, word) in memory.iter().enumerate() {
        if !ring.contains(&i) {
            assert_eq!(
                word.load(Ordering::Relaxed),
                GUARD,
                "guard word {i} overwritten"
            );
        }
    }
}

#[test]
fn a_tail_too_far_ahead_or_behind_is_corrupt() {
    let (memory, range) = guarded(8);
    let words = &memory[range.clone()];
    let mut consumer = Consumer::<Descriptor, _>::new(words, 8).unwrap();
    for bad_tail in [9, 100, u32::MAX, 0x8000_0000] {
        words[TAIL_WORD].store(bad_tail, Ordering::Relaxed);
        assert_eq!(consumer.pop(), Err(Corrupt), "tail {bad_tail}");
        assert!(!consumer.prepare_wait(), "tail {bad_tail}: must not block");
    }
    // A full ring's worth is fine: eight (zeroed) entries.
    words[TAIL_WORD].store(8, Ordering::Relaxed);
    for _ in 0..8 {
        assert_eq!(consumer.pop(), Ok(Some(Descriptor::default())));
    }
    // Then the producer "moves back": one behind our head is impossible.
    words[TAIL_WORD].store(7, Ordering::Relaxed);
    assert_eq!(consumer.pop(), Err(Corrupt));
    assert_guards_intact(&memory, &range);
}

#[test]
fn a_head_too_far_ahead_or_behind_is_corrupt() {
    let (memory, range) = guarded(4);
    let words = &memory[range.clone()];
    let mut producer = Producer::<Descriptor, _>::new(words, 4).unwrap();
    for _ in 0..4 {
        producer.push(Descriptor::default()).unwrap();
    }
    producer.publish();
    // The consumer claims to have taken more than was ever published.
    words[HEAD_WORD].store(5, Ordering::Relaxed);
    assert_eq!(
        producer.push(Descriptor::default()),
        Err(PushError::Corrupt)
    );
    assert!(!producer.prepare_wait());
    words[HEAD_WORD].store(u32::MAX, Ordering::Relaxed);
    assert_eq!(
        producer.push(Descriptor::default()),
        Err(PushError::Corrupt)
    );
    // An honest value again: the producer carries on.
    words[HEAD_WORD].store(2, Ordering::Relaxed);
    producer.push(Descriptor::default()).unwrap();
    producer.push(Descriptor::default()).unwrap();
    assert_eq!(producer.push(Descriptor::default()), Err(PushError::Full));
    assert_guards_intact(&memory, &range);
}

#[test]
fn our_own_index_is_never_taken_back_from_shared_memory() {
    let (memory, range) = guarded(8);
    let words = &memory[range.clone()];
    let mut producer = Producer::<Descriptor, _>::new(words, 8).unwrap();
    let mut consumer = Consumer::<Descriptor, _>::new(words, 8).unwrap();
    producer
        .push(Descriptor {
            offset: 1,
            length: 1,
        })
        .unwrap();
    producer.publish();
    // A hostile consumer scribbles over the producer's `tail`, a hostile producer over the
    // consumer's `head`: neither handle believes them.
    words[TAIL_WORD].store(0x1234_5678, Ordering::Relaxed);
    producer
        .push(Descriptor {
            offset: 2,
            length: 2,
        })
        .unwrap();
    producer.publish();
    assert_eq!(words[TAIL_WORD].load(Ordering::Relaxed), 2);
    assert_eq!(
        consumer.pop(),
        Ok(Some(Descriptor {
            offset: 1,
            length: 1
        }))
    );
    words[HEAD_WORD].store(0x7777_0000, Ordering::Relaxed);
    assert_eq!(
        consumer.pop(),
        Ok(Some(Descriptor {
            offset: 2,
            length: 2
        }))
    );
    assert_eq!(words[HEAD_WORD].load(Ordering::Relaxed), 2);
}

#[test]
fn garbage_spans_are_refused_by_the_region() {
    let region = Region::new(16 * 2048, 2048).unwrap();
    assert!(region.check(15 * 2048, 2048).is_ok());
    assert_eq!(region.check(15 * 2048, 2049), Err(SpanError::OutOfRegion));
    assert_eq!(region.check(16 * 2048, 1), Err(SpanError::OutOfRegion));
    assert_eq!(region.check(2048 + 1, 10), Err(SpanError::Misaligned));
    // offset + length overflows u32: refused, not wrapped.
    assert_eq!(
        region.check(0xffff_f800, 0x1000),
        Err(SpanError::OutOfRegion)
    );
    assert_eq!(region.check(0, u32::MAX), Err(SpanError::OutOfRegion));
    assert!(Region::new(4096, 0).is_none());
}

#[test]
fn random_scribbling_never_escapes_the_ring() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for capacity in [1u32, 2, 8, 64] {
        let (memory, range) = guarded(capacity);
        let words = &memory[range.clone()];
        let mut producer = Producer::<Descriptor, _>::new(words, capacity).unwrap();
        let mut consumer = Consumer::<Descriptor, _>::new(words, capacity).unwrap();
        let region = Region::new(64 * 2048, 2048).unwrap();
        let (mut corrupt, mut refused, mut accepted) = (0u32, 0u32, 0u32);
        // The honest indices, so that the peer can also turn honest again.
        let (mut pushed, mut published, mut popped) = (0u32, 0u32, 0u32);
        for _ in 0..50_000 {
            match rng.u8(0..7) {
                6 => {
                    words[TAIL_WORD].store(published, Ordering::Relaxed);
                    words[HEAD_WORD].store(popped, Ordering::Relaxed);
                }
                0 => {
                    // The hostile side writes a random word of the ring: header or slot,
                    // with a value near the current indices or anything at all.
                    let target = rng.usize(0..words.len());
                    let value = if rng.bool() {
                        words[TAIL_WORD]
                            .load(Ordering::Relaxed)
                            .wrapping_add(rng.u32(0..2 * capacity + 2))
                            .wrapping_sub(capacity + 1)
                    } else {
                        rng.u32(..)
                    };
                    words[target].store(value, Ordering::Relaxed);
                }
                1 => {
                    let entry = Descriptor {
                        offset: rng.u32(0..64) * 2048,
                        length: rng.u32(0..=2048),
                    };
                    if producer.push(entry).is_ok() {
                        pushed = pushed.wrapping_add(1);
                    }
                }
                2 => {
                    producer.publish();
                    published = pushed;
                }
                3 => {
                    consumer.prepare_wait();
                }
                _ => match consumer.pop() {
                    Err(Corrupt) => corrupt += 1,
                    Ok(Some(entry)) => {
                        popped = popped.wrapping_add(1);
                        match region.check(entry.offset, entry.length) {
                            Ok(span) => {
                                assert!(span.range().end <= 64 * 2048);
                                accepted += 1;
                            }
                            Err(_) => refused += 1,
                        }
                    }
                    Ok(None) => {}
                },
            }
        }
        assert_guards_intact(&memory, &range);
        assert!(
            corrupt > 0 && refused > 0 && accepted > 0,
            "{corrupt} {refused} {accepted}"
        );
    }
}

#[test]
fn a_pool_refuses_buffers_it_did_not_lend_and_counts_them() {
    const CAPACITY: u32 = 8;
    let out_memory: Vec<AtomicU32> = zeroed_words(ring_words::<Descriptor>(CAPACITY)).collect();
    let in_memory: Vec<AtomicU32> = zeroed_words(ring_words::<Descriptor>(CAPACITY)).collect();
    let outbound = Producer::<Descriptor, _>::new(&out_memory[..], CAPACITY).unwrap();
    let inbound = Consumer::<Descriptor, _>::new(&in_memory[..], CAPACITY).unwrap();
    let mut pool = Pool::<8, _>::new(8 * 2048, 2048, outbound, inbound).unwrap();
    // The peer (by hand, as a hostile one would) returns on the inbound ring.
    let mut peer = Producer::<Descriptor, _>::new(&in_memory[..], CAPACITY).unwrap();

    let lent = pool.alloc().unwrap();
    let lent_offset = lent.offset();
    pool.send(lent, 0).unwrap();
    pool.publish();

    let returns = [
        (
            Descriptor {
                offset: 2048,
                length: 10,
            },
            SpanError::NotOwned,
        ),
        (
            Descriptor {
                offset: lent_offset + 4,
                length: 10,
            },
            SpanError::Misaligned,
        ),
        (
            Descriptor {
                offset: 8 * 2048,
                length: 10,
            },
            SpanError::OutOfRegion,
        ),
        (
            Descriptor {
                offset: lent_offset,
                length: 2049,
            },
            SpanError::TooLong,
        ),
    ];
    for (entry, _) in returns {
        peer.push(entry).unwrap();
    }
    peer.push(Descriptor {
        offset: lent_offset,
        length: 60,
    })
    .unwrap();
    // The same buffer a second time: no longer lent.
    peer.push(Descriptor {
        offset: lent_offset,
        length: 60,
    })
    .unwrap();
    peer.publish();

    for (_, problem) in returns {
        assert_eq!(pool.receive(), Err(ReceiveError::Refused(problem)));
    }
    let back = pool.receive().unwrap().unwrap();
    assert_eq!((back.offset(), back.length()), (lent_offset, 60));
    assert_eq!(
        pool.receive(),
        Err(ReceiveError::Refused(SpanError::NotOwned))
    );
    assert_eq!(pool.receive(), Ok(None));
    assert_eq!(pool.refused(), 5);
    assert_eq!(pool.lent(), 0);

    // An impossible tail on the inbound ring.
    in_memory[TAIL_WORD].store(1000, Ordering::Relaxed);
    assert_eq!(pool.receive(), Err(ReceiveError::Corrupt));
    pool.free(back);
    assert_eq!(pool.at_home(), 8);
}
