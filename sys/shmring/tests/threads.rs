//! Producer and consumer on two threads over one allocation, each blocking on a simulated
//! seL4 notification when the signalling protocol says it may: every entry arrives, in order
//! and intact, and no wakeup is lost.

use core::sync::atomic::AtomicU32;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use shmring::{ring, ring_words, zeroed_words, Entry};

const ENTRIES: u64 = 1_000_000;
const CAPACITY: u32 = 64;

/// A block request as a block protocol would carry it: six words, so a torn or misplaced
/// entry shows up as words that disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BlockRequest {
    op: u32,
    block: u64,
    count: u32,
    offset: u32,
    id: u32,
}

impl BlockRequest {
    fn numbered(n: u64) -> BlockRequest {
        BlockRequest {
            op: (n % 4) as u32,
            block: n.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            count: (n % 255) as u32 + 1,
            offset: (n as u32).wrapping_mul(4096),
            id: n as u32,
        }
    }
}

impl Entry for BlockRequest {
    const WORDS: usize = 6;

    fn encode(&self, words: &mut [u32]) {
        words.copy_from_slice(&[
            self.op,
            self.block as u32,
            (self.block >> 32) as u32,
            self.count,
            self.offset,
            self.id,
        ]);
    }

    fn decode(words: &[u32]) -> Self {
        BlockRequest {
            op: words[0],
            block: u64::from(words[1]) | u64::from(words[2]) << 32,
            count: words[3],
            offset: words[4],
            id: words[5],
        }
    }
}

/// A seL4 notification: `signal` sets the word, `wait` blocks until it is set and clears it.
/// A wait that times out is a lost wakeup (the tests' peers never stop for that long).
#[derive(Default)]
struct Notification {
    pending: Mutex<bool>,
    wake: Condvar,
}

impl Notification {
    fn signal(&self) {
        *self.pending.lock().unwrap() = true;
        self.wake.notify_one();
    }

    fn wait(&self, who: &str) {
        let pending = self.pending.lock().unwrap();
        let (mut pending, timeout) = self
            .wake
            .wait_timeout_while(pending, Duration::from_secs(20), |pending| !*pending)
            .unwrap();
        assert!(!timeout.timed_out(), "{who}: lost wakeup");
        *pending = false;
    }
}

#[test]
fn a_million_entries_cross_threads_in_order_without_lost_wakeups() {
    let memory: Arc<[AtomicU32]> = zeroed_words(ring_words::<BlockRequest>(CAPACITY)).collect();
    let (mut producer, mut consumer) = ring::<BlockRequest, _>(memory, CAPACITY).unwrap();
    let to_consumer = Arc::new(Notification::default());
    let to_producer = Arc::new(Notification::default());

    let consumer_thread = {
        let (to_consumer, to_producer) = (to_consumer.clone(), to_producer.clone());
        thread::spawn(move || {
            let (mut next, mut announcements, mut blocks, mut space_signals) = (0, 0, 0, 0);
            while next < ENTRIES {
                while let Some(request) = consumer.pop().expect("honest producer") {
                    assert_eq!(request, BlockRequest::numbered(next));
                    next += 1;
                }
                if consumer.release() {
                    space_signals += 1;
                    to_producer.signal();
                }
                if next < ENTRIES {
                    announcements += 1;
                    if consumer.prepare_wait() {
                        blocks += 1;
                        to_consumer.wait("consumer");
                    }
                }
            }
            (announcements, blocks, space_signals)
        })
    };

    let mut rng = fastrand::Rng::with_seed(11);
    let (mut n, mut batches, mut signals) = (0u64, 0u64, 0u64);
    let (mut announcements, mut blocks) = (0u64, 0u64);
    while n < ENTRIES {
        let batch = rng.u64(1..=2 * u64::from(CAPACITY)).min(ENTRIES - n);
        let end = n + batch;
        while n < end {
            if producer.push(BlockRequest::numbered(n)).is_ok() {
                n += 1;
                continue;
            }
            // Full: let the consumer see what we have, then wait for space.
            if producer.publish() {
                signals += 1;
                to_consumer.signal();
            }
            batches += 1;
            announcements += 1;
            if producer.prepare_wait() {
                blocks += 1;
                to_producer.wait("producer");
            }
        }
        batches += 1;
        if producer.publish() {
            signals += 1;
            to_consumer.signal();
        }
        if rng.u8(0..8) == 0 {
            thread::yield_now();
        }
    }
    let (consumer_announcements, consumer_blocks, space_signals) = consumer_thread.join().unwrap();
    // Each signal answers one announcement (a consumer may withdraw an announcement the
    // producer has already answered, so signals can exceed actual waits, never
    // announcements), and a batch signals at most once.
    assert!(
        signals <= batches,
        "{signals} signals for {batches} batches"
    );
    assert!(
        signals <= consumer_announcements,
        "a signal only when the consumer announced"
    );
    assert!(
        space_signals <= announcements,
        "a signal only when the producer announced"
    );
    println!(
        "{ENTRIES} entries in {batches} batches: {signals} signals to the consumer \
         ({consumer_blocks} waits), {space_signals} to the producer ({blocks} waits)"
    );
}
