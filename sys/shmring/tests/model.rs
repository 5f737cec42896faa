//! Random operation sequences on both handles, checked step by step against a model.

use core::sync::atomic::AtomicU32;
use std::collections::VecDeque;

use shmring::{ring, ring_words, zeroed_words, Descriptor, PushError};

/// What the two sides should observe, kept without shared memory.
#[derive(Default)]
struct Model {
    /// Published and not yet taken.
    visible: VecDeque<Descriptor>,
    /// Pushed and not yet published.
    staged: VecDeque<Descriptor>,
    consumer_waiting: bool,
    producer_waiting: bool,
    popped_since_release: bool,
}

fn run(seed: u64, capacity: u32, steps: usize) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let memory: Vec<AtomicU32> = zeroed_words(ring_words::<Descriptor>(capacity)).collect();
    let (mut producer, mut consumer) = ring::<Descriptor, _>(&memory[..], capacity).unwrap();
    let mut model = Model::default();
    let mut next = 0u32;
    for step in 0..steps {
        let context = format!("seed {seed} capacity {capacity} step {step}");
        match rng.u8(0..100) {
            0..=39 => {
                let entry = Descriptor {
                    offset: next,
                    length: rng.u32(..),
                };
                let result = producer.push(entry);
                if model.visible.len() + model.staged.len() == capacity as usize {
                    assert_eq!(result, Err(PushError::Full), "{context}");
                } else {
                    assert_eq!(result, Ok(()), "{context}");
                    model.staged.push_back(entry);
                    next += 1;
                }
            }
            40..=54 => {
                let signal = producer.publish();
                let expected = !model.staged.is_empty() && model.consumer_waiting;
                assert_eq!(signal, expected, "{context}: publish");
                if !model.staged.is_empty() {
                    model.consumer_waiting = false;
                }
                model.visible.extend(model.staged.drain(..));
            }
            55..=89 => {
                let popped = consumer.pop();
                assert_eq!(popped, Ok(model.visible.pop_front()), "{context}: pop");
                if let Ok(Some(_)) = popped {
                    model.popped_since_release = true;
                }
            }
            90..=94 => {
                let block = consumer.prepare_wait();
                assert_eq!(block, model.visible.is_empty(), "{context}: consumer wait");
                model.consumer_waiting = block;
            }
            95..=97 => {
                let block = producer.prepare_wait();
                let full = model.visible.len() + model.staged.len() == capacity as usize;
                assert_eq!(block, full, "{context}: producer wait");
                model.producer_waiting = block;
            }
            _ => {
                let signal = consumer.release();
                let expected = model.popped_since_release && model.producer_waiting;
                assert_eq!(signal, expected, "{context}: release");
                if model.popped_since_release {
                    model.producer_waiting = false;
                }
                model.popped_since_release = false;
            }
        }
        assert_eq!(producer.pending() as usize, model.staged.len(), "{context}");
    }
}

#[test]
fn random_operations_match_the_model() {
    for seed in 0..64 {
        for capacity in [1, 2, 4, 16, 64] {
            run(seed, capacity, 3_000);
        }
    }
}
