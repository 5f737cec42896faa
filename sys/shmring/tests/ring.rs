//! A ring with honest peers: order, capacity, wrap-around, the signal decisions, the layout.

use core::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use shmring::{
    ring, ring_bytes, ring_words, zeroed_words, Consumer, Descriptor, Entry, LayoutError, Producer,
    PushError, CONSUMER_WAITING_WORD, HEADER_WORDS, HEAD_WORD, PRODUCER_WAITING_WORD, TAIL_WORD,
};

fn memory<E: Entry>(capacity: u32) -> Vec<AtomicU32> {
    zeroed_words(ring_words::<E>(capacity)).collect()
}

fn descriptor(n: u32) -> Descriptor {
    Descriptor {
        offset: n.wrapping_mul(2048),
        length: n % 1500,
    }
}

#[test]
fn round_trip_keeps_order_and_content() {
    let memory = memory::<Descriptor>(16);
    let (mut producer, mut consumer) = ring::<Descriptor, _>(&memory[..], 16).unwrap();
    for n in 0..10 {
        producer.push(descriptor(n)).unwrap();
    }
    producer.publish();
    for n in 0..10 {
        assert_eq!(consumer.pop(), Ok(Some(descriptor(n))));
    }
    assert_eq!(consumer.pop(), Ok(None));
}

#[test]
fn entries_are_invisible_until_published() {
    let memory = memory::<u32>(4);
    let (mut producer, mut consumer) = ring::<u32, _>(&memory[..], 4).unwrap();
    producer.push(7).unwrap();
    assert_eq!(producer.pending(), 1);
    assert_eq!(consumer.pop(), Ok(None));
    producer.publish();
    assert_eq!(producer.pending(), 0);
    assert_eq!(consumer.pop(), Ok(Some(7)));
}

#[test]
fn full_and_empty() {
    let memory = memory::<u32>(8);
    let (mut producer, mut consumer) = ring::<u32, _>(&memory[..], 8).unwrap();
    assert_eq!(consumer.pop(), Ok(None));
    for n in 0..8 {
        producer.push(n).unwrap();
    }
    assert_eq!(producer.push(8), Err(PushError::Full));
    producer.publish();
    // Still full until the consumer takes one; then exactly one slot frees.
    assert_eq!(producer.push(8), Err(PushError::Full));
    assert_eq!(consumer.pop(), Ok(Some(0)));
    producer.push(8).unwrap();
    assert_eq!(producer.push(9), Err(PushError::Full));
    producer.publish();
    for n in 1..=8 {
        assert_eq!(consumer.pop(), Ok(Some(n)));
    }
    assert_eq!(consumer.pop(), Ok(None));
}

#[test]
fn wraps_around_over_many_cycles_and_across_the_index_limit() {
    // Start both indices just below u32::MAX so the free-running counters wrap too.
    let memory = memory::<Descriptor>(8);
    memory[TAIL_WORD].store(u32::MAX - 20, Ordering::Relaxed);
    memory[HEAD_WORD].store(u32::MAX - 20, Ordering::Relaxed);
    let (mut producer, mut consumer) = ring::<Descriptor, _>(&memory[..], 8).unwrap();
    let mut next_in = 0u32;
    let mut next_out = 0u32;
    for cycle in 0..10_000u32 {
        let batch = 1 + cycle % 8;
        for _ in 0..batch {
            producer.push(descriptor(next_in)).unwrap();
            next_in += 1;
        }
        producer.publish();
        while let Some(entry) = consumer.pop().unwrap() {
            assert_eq!(entry, descriptor(next_out));
            next_out += 1;
        }
    }
    assert_eq!(next_in, next_out);
    assert!(next_in > 8 * 1000);
}

#[test]
fn no_signal_while_the_consumer_is_busy() {
    let memory = memory::<u32>(8);
    let (mut producer, mut consumer) = ring::<u32, _>(&memory[..], 8).unwrap();
    for n in 0..5 {
        producer.push(n).unwrap();
        assert!(!producer.publish(), "consumer never announced it waits");
        assert_eq!(consumer.pop(), Ok(Some(n)));
    }
}

#[test]
fn exactly_one_signal_per_batch_when_the_consumer_waits() {
    let memory = memory::<u32>(16);
    let (mut producer, mut consumer) = ring::<u32, _>(&memory[..], 16).unwrap();
    assert!(consumer.prepare_wait());
    for n in 0..4 {
        producer.push(n).unwrap();
    }
    assert!(producer.publish(), "the waiting consumer must be signalled");
    // More of the same batch before the consumer wakes: no second signal.
    producer.push(4).unwrap();
    assert!(!producer.publish());
    assert!(!producer.publish(), "nothing new: no signal");
    for n in 0..5 {
        assert_eq!(consumer.pop(), Ok(Some(n)));
    }
    // The consumer waits again: the next batch signals once more.
    assert!(consumer.prepare_wait());
    producer.push(5).unwrap();
    assert!(producer.publish());
}

#[test]
fn publishing_nothing_keeps_the_waiting_flag() {
    let memory = memory::<u32>(4);
    let (mut producer, mut consumer) = ring::<u32, _>(&memory[..], 4).unwrap();
    assert!(consumer.prepare_wait());
    assert!(!producer.publish());
    producer.push(1).unwrap();
    assert!(producer.publish());
}

#[test]
fn prepare_wait_refuses_and_withdraws_when_entries_are_there() {
    let memory = memory::<u32>(4);
    let (mut producer, mut consumer) = ring::<u32, _>(&memory[..], 4).unwrap();
    producer.push(1).unwrap();
    assert!(!producer.publish());
    assert!(
        !consumer.prepare_wait(),
        "entries are waiting: do not block"
    );
    assert_eq!(memory[CONSUMER_WAITING_WORD].load(Ordering::Relaxed), 0);
    producer.push(2).unwrap();
    assert!(!producer.publish(), "the announcement was withdrawn");
    assert_eq!(consumer.pop(), Ok(Some(1)));
    // One entry still cached by the consumer: it must not block.
    assert!(!consumer.prepare_wait());
}

#[test]
fn a_producer_waiting_for_space_is_signalled_once_per_release() {
    let memory = memory::<u32>(2);
    let (mut producer, mut consumer) = ring::<u32, _>(&memory[..], 2).unwrap();
    assert!(!producer.prepare_wait(), "not full: do not block");
    assert_eq!(memory[PRODUCER_WAITING_WORD].load(Ordering::Relaxed), 0);
    producer.push(1).unwrap();
    producer.push(2).unwrap();
    producer.publish();
    assert!(!consumer.release(), "nothing popped yet");
    assert!(producer.prepare_wait(), "full: may block");
    assert_eq!(consumer.pop(), Ok(Some(1)));
    assert!(consumer.release(), "the producer waits for space");
    assert_eq!(consumer.pop(), Ok(Some(2)));
    assert!(!consumer.release(), "already signalled for this wait");
    producer.push(3).unwrap();
}

#[test]
fn layout_matches_the_documented_byte_offsets() {
    assert_eq!(HEADER_WORDS * 4, 128);
    assert_eq!((TAIL_WORD * 4, PRODUCER_WAITING_WORD * 4), (0, 4));
    assert_eq!((HEAD_WORD * 4, CONSUMER_WAITING_WORD * 4), (64, 68));
    assert_eq!(ring_bytes::<Descriptor>(256), 128 + 256 * 8);
    let memory = memory::<Descriptor>(4);
    let (mut producer, mut consumer) = ring::<Descriptor, _>(&memory[..], 4).unwrap();
    for n in 0..6 {
        producer
            .push(Descriptor {
                offset: 0x1000 + n,
                length: 0x2000 + n,
            })
            .unwrap();
        producer.publish();
        consumer.pop().unwrap();
    }
    assert_eq!(memory[TAIL_WORD].load(Ordering::Relaxed), 6);
    assert_eq!(memory[HEAD_WORD].load(Ordering::Relaxed), 6);
    // Entry 5 sits in slot 5 mod 4 = 1: bytes 128 + 8..128 + 16, offset then length.
    assert_eq!(memory[HEADER_WORDS + 2].load(Ordering::Relaxed), 0x1005);
    assert_eq!(memory[HEADER_WORDS + 3].load(Ordering::Relaxed), 0x2005);
    assert_eq!(memory[HEADER_WORDS].load(Ordering::Relaxed), 0x1004);
}

#[test]
fn handles_resume_from_the_indices_in_memory() {
    let memory: Arc<[AtomicU32]> = zeroed_words(ring_words::<u32>(8)).collect();
    let (mut producer, mut consumer) = ring::<u32, _>(memory.clone(), 8).unwrap();
    for n in 0..5 {
        producer.push(n).unwrap();
    }
    producer.publish();
    assert_eq!(consumer.pop(), Ok(Some(0)));
    drop((producer, consumer));
    // Both sides restart: nothing published is lost, nothing taken comes back.
    let mut producer = Producer::<u32, _>::new(memory.clone(), 8).unwrap();
    let mut consumer = Consumer::<u32, _>::new(memory, 8).unwrap();
    producer.push(5).unwrap();
    producer.publish();
    for n in 1..=5 {
        assert_eq!(consumer.pop(), Ok(Some(n)));
    }
    assert_eq!(consumer.pop(), Ok(None));
}

#[test]
fn bad_layouts_are_refused() {
    let memory = memory::<Descriptor>(8);
    let words = &memory[..];
    assert_eq!(
        Producer::<Descriptor, _>::new(words, 6).err(),
        Some(LayoutError::Capacity)
    );
    assert_eq!(
        Consumer::<Descriptor, _>::new(words, 0).err(),
        Some(LayoutError::Capacity)
    );
    assert_eq!(
        Consumer::<Descriptor, _>::new(words, 16).err(),
        Some(LayoutError::TooSmall)
    );
    assert_eq!(
        Producer::<Descriptor, _>::new(&words[..words.len() - 1], 8).err(),
        Some(LayoutError::TooSmall)
    );
    assert!(Producer::<Descriptor, _>::new(words, 8).is_ok());

    #[derive(Clone, Copy)]
    struct Huge;
    impl Entry for Huge {
        const WORDS: usize = 17;
        fn encode(&self, _: &mut [u32]) {}
        fn decode(_: &[u32]) -> Self {
            Huge
        }
    }
    let big: Vec<AtomicU32> = zeroed_words(ring_words::<Huge>(2)).collect();
    assert_eq!(
        Producer::<Huge, _>::new(&big[..], 2).err(),
        Some(LayoutError::EntrySize)
    );
}

#[test]
fn shared_memory_views_a_raw_mapping() {
    let memory = memory::<u32>(4);
    let base = core::ptr::NonNull::from(&memory[0]).cast::<u8>();
    // SAFETY: `memory` outlives every use of the slice below (the test ends first) and is
    // accessed only atomically.
    let words = unsafe { shmring::shared_memory(base, ring_bytes::<u32>(4) + 3) }.unwrap();
    assert_eq!(words.len(), ring_words::<u32>(4));
    let (mut producer, mut consumer) = ring::<u32, _>(words, 4).unwrap();
    producer.push(42).unwrap();
    producer.publish();
    assert_eq!(memory[HEADER_WORDS].load(Ordering::Relaxed), 42);
    assert_eq!(consumer.pop(), Ok(Some(42)));
    // SAFETY: as above; the call fails before making a slice.
    let misaligned = unsafe { shmring::shared_memory(base.add(1), 64) };
    assert_eq!(misaligned.err(), Some(LayoutError::Misaligned));
}
