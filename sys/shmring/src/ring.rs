//! The ring itself: a producer handle and a consumer handle over one shared header and slot
//! array. See the crate documentation for the layout and the protocol.

use core::marker::PhantomData;
use core::ops::Deref;
use core::sync::atomic::{fence, AtomicU32, Ordering};

use crate::entry::{Entry, MAX_ENTRY_WORDS};

/// Word index of `tail`: how many entries the producer has published (free-running).
pub const TAIL_WORD: usize = 0;
/// Word index of `producer_waiting`: non-zero while the producer waits for space.
pub const PRODUCER_WAITING_WORD: usize = 1;
/// Word index of `head`: how many entries the consumer has taken (free-running).
pub const HEAD_WORD: usize = 16;
/// Word index of `consumer_waiting`: non-zero while the consumer waits for entries.
pub const CONSUMER_WAITING_WORD: usize = 17;
/// Size of the header in 32-bit words; slots start right after it.
pub const HEADER_WORDS: usize = 32;
/// The largest capacity a ring may have (free-running 32-bit indices must tell "full" from
/// "corrupt").
pub const MAX_CAPACITY: u32 = 1 << 31;

/// Why a ring handle could not be made over some memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// The capacity is not a power of two in 1..=[`MAX_CAPACITY`].
    Capacity,
    /// The entry type's [`Entry::WORDS`] is not in 1..=[`MAX_ENTRY_WORDS`].
    EntrySize,
    /// The memory holds fewer words than [`ring_words`] asks for.
    TooSmall,
    /// The memory's address is not a multiple of 4.
    Misaligned,
    /// A buffer size of zero, or more buffers in the region than the pool can track.
    Buffers,
}

/// Why an entry could not be pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// Every slot holds an entry the consumer has not taken yet.
    Full,
    /// The consumer's `head` is impossible (more than a ring's worth behind or ahead of us):
    /// the peer is broken or hostile.
    Corrupt,
}

/// The producer's `tail` is impossible (more than a ring's worth ahead of our `head`, or
/// behind it): the peer is broken or hostile. Nothing was read from the slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// Words of shared memory a ring of `capacity` entries of type `E` needs: the header plus
/// the slots.
pub const fn ring_words<E: Entry>(capacity: u32) -> usize {
    HEADER_WORDS + capacity as usize * E::WORDS
}

/// Bytes of shared memory a ring of `capacity` entries of type `E` needs.
pub const fn ring_bytes<E: Entry>(capacity: u32) -> usize {
    ring_words::<E>(capacity) * 4
}

/// What both handles share: the memory and the privately held capacity.
struct Ring<E, M> {
    memory: M,
    /// `capacity - 1`; the capacity is never read from shared memory.
    mask: u32,
    entry: PhantomData<fn() -> E>,
}

impl<E: Entry, M: Deref<Target = [AtomicU32]>> Ring<E, M> {
    fn new(memory: M, capacity: u32) -> Result<Self, LayoutError> {
        if E::WORDS == 0 || E::WORDS > MAX_ENTRY_WORDS {
            return Err(LayoutError::EntrySize);
        }
        if !capacity.is_power_of_two() || capacity > MAX_CAPACITY {
            return Err(LayoutError::Capacity);
        }
        let needed = (capacity as usize)
            .checked_mul(E::WORDS)
            .and_then(|slots| slots.checked_add(HEADER_WORDS));
        match needed {
            Some(needed) if needed <= memory.len() => Ok(Ring {
                memory,
                mask: capacity - 1,
                entry: PhantomData,
            }),
            _ => Err(LayoutError::TooSmall),
        }
    }

    fn capacity(&self) -> u32 {
        self.mask + 1
    }

    fn word(&self, index: usize) -> &AtomicU32 {
        &self.memory[index]
    }

    /// The words of the slot a free-running `index` wraps to. In bounds by construction:
    /// `new` checked the memory holds `capacity` slots and the mask keeps us below that.
    fn slot(&self, index: u32) -> &[AtomicU32] {
        let start = HEADER_WORDS + (index & self.mask) as usize * E::WORDS;
        &self.memory[start..start + E::WORDS]
    }

    fn write(&self, index: u32, entry: &E) {
        let mut words = [0u32; MAX_ENTRY_WORDS];
        entry.encode(&mut words[..E::WORDS]);
        for (cell, word) in self.slot(index).iter().zip(&words) {
            cell.store(*word, Ordering::Relaxed);
        }
    }

    fn read(&self, index: u32) -> E {
        let mut words = [0u32; MAX_ENTRY_WORDS];
        for (word, cell) in words.iter_mut().zip(self.slot(index)) {
            *word = cell.load(Ordering::Relaxed);
        }
        E::decode(&words[..E::WORDS])
    }
}

/// The producing side of a ring: pushes entries, publishes them in batches and says when
/// the consumer must be signalled.
pub struct Producer<E, M = &'static [AtomicU32]> {
    ring: Ring<E, M>,
    /// Index of the next slot to fill (private; shared `tail` is only ever written).
    tail: u32,
    /// The `tail` last stored in shared memory.
    published: u32,
    /// The consumer's `head` as last read and validated (`tail - head <= capacity`).
    head: u32,
}

impl<E: Entry, M: Deref<Target = [AtomicU32]>> Producer<E, M> {
    /// Attaches the producing side to a ring of `capacity` entries in `memory`.
    ///
    /// Resumes from the `tail` found in the header (zero in fresh memory), so a restarted
    /// producer continues where its previous instance stopped; a `head` that does not fit is
    /// reported by the first [`push`](Self::push) as [`PushError::Corrupt`]. Fails with a
    /// [`LayoutError`] if the capacity is not a power of two, the entry size is out of range
    /// or `memory` is shorter than [`ring_words`].
    pub fn new(memory: M, capacity: u32) -> Result<Self, LayoutError> {
        let ring = Ring::new(memory, capacity)?;
        let tail = ring.word(TAIL_WORD).load(Ordering::Relaxed);
        let head = ring.word(HEAD_WORD).load(Ordering::Acquire);
        Ok(Producer {
            ring,
            tail,
            published: tail,
            head,
        })
    }

    /// The ring's capacity in entries (held privately, never read from shared memory).
    pub fn capacity(&self) -> u32 {
        self.ring.capacity()
    }

    /// Entries pushed since the last [`publish`](Self::publish).
    pub fn pending(&self) -> u32 {
        self.tail.wrapping_sub(self.published)
    }

    /// Writes `entry` into the next free slot. The consumer sees it after the next
    /// [`publish`](Self::publish).
    ///
    /// Fails with [`PushError::Full`] if the consumer has not freed a slot, and with
    /// [`PushError::Corrupt`] if the consumer's `head` is impossible; nothing is written then.
    pub fn push(&mut self, entry: E) -> Result<(), PushError> {
        let capacity = self.ring.capacity();
        if self.tail.wrapping_sub(self.head) >= capacity {
            // Looks full by our cached view: read the consumer's progress. Acquire pairs with
            // the consumer's Release store of `head`, so its reads of the slots it freed are
            // done before we overwrite them.
            let head = self.ring.word(HEAD_WORD).load(Ordering::Acquire);
            let used = self.tail.wrapping_sub(head);
            if used > capacity {
                return Err(PushError::Corrupt);
            }
            self.head = head;
            if used == capacity {
                return Err(PushError::Full);
            }
        }
        self.ring.write(self.tail, &entry);
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Makes every pushed entry visible to the consumer, and returns true if the consumer
    /// announced it is waiting and must now be signalled (once for this batch).
    ///
    /// Returns false, without touching shared memory, if nothing was pushed since the last
    /// call.
    pub fn publish(&mut self) -> bool {
        if self.tail == self.published {
            return false;
        }
        // Release: the slot writes above happen before a consumer that reads this `tail`.
        self.ring
            .word(TAIL_WORD)
            .store(self.tail, Ordering::Release);
        self.published = self.tail;
        // Store `tail`, then load `consumer_waiting`; the consumer stores `consumer_waiting`,
        // then loads `tail`. Without a full fence on both sides each load may be satisfied
        // before the other side's store is visible (store-buffer reordering, which x86 does),
        // so we would see "not waiting" while it sees "empty" and blocks: a lost wakeup. With
        // SeqCst fences at least one of us sees the other's store.
        fence(Ordering::SeqCst);
        // Clearing the flag makes this the batch's one signal: a consumer that wakes and
        // finds more work re-arms it in `prepare_wait`.
        self.ring
            .word(CONSUMER_WAITING_WORD)
            .swap(0, Ordering::Relaxed)
            != 0
    }

    /// Announces that the producer is about to wait for space, then checks the ring again.
    ///
    /// Returns true if the ring is still full: the caller may block until the consumer
    /// signals (its [`Consumer::release`] returns true). Returns false, withdrawing the
    /// announcement, if a slot is free now or the consumer's `head` is impossible (the next
    /// [`push`](Self::push) reports which).
    pub fn prepare_wait(&mut self) -> bool {
        let flag = self.ring.word(PRODUCER_WAITING_WORD);
        flag.store(1, Ordering::Relaxed);
        // Store the flag, then load `head`: the mirror image of `Consumer::release`, which
        // stores `head` and then loads the flag (see `publish` for why both need the fence).
        fence(Ordering::SeqCst);
        let head = self.ring.word(HEAD_WORD).load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(head);
        if used == self.ring.capacity() {
            self.head = head;
            return true;
        }
        flag.store(0, Ordering::Relaxed);
        false
    }
}

/// The consuming side of a ring: pops entries, announces when it is about to wait, and
/// says when a producer waiting for space must be signalled.
pub struct Consumer<E, M = &'static [AtomicU32]> {
    ring: Ring<E, M>,
    /// Index of the next slot to read (private; shared `head` is only ever written).
    head: u32,
    /// The producer's `tail` as last read and validated (`tail - head <= capacity`).
    tail: u32,
    /// The `head` at the last [`Consumer::release`].
    released: u32,
}

impl<E: Entry, M: Deref<Target = [AtomicU32]>> Consumer<E, M> {
    /// Attaches the consuming side to a ring of `capacity` entries in `memory`.
    ///
    /// Resumes from the `head` found in the header (zero in fresh memory). Fails with a
    /// [`LayoutError`] as [`Producer::new`] does.
    pub fn new(memory: M, capacity: u32) -> Result<Self, LayoutError> {
        let ring = Ring::new(memory, capacity)?;
        let head = ring.word(HEAD_WORD).load(Ordering::Relaxed);
        Ok(Consumer {
            ring,
            head,
            tail: head,
            released: head,
        })
    }

    /// The ring's capacity in entries (held privately, never read from shared memory).
    pub fn capacity(&self) -> u32 {
        self.ring.capacity()
    }

    /// Reads the producer's `tail` and validates it against our `head`. Returns whether
    /// entries are available.
    fn refresh(&mut self) -> Result<bool, Corrupt> {
        // Acquire pairs with the producer's Release store: the slots it filled are visible.
        let tail = self.ring.word(TAIL_WORD).load(Ordering::Acquire);
        let available = tail.wrapping_sub(self.head);
        if available > self.ring.capacity() {
            return Err(Corrupt);
        }
        self.tail = tail;
        Ok(available != 0)
    }

    /// Takes the oldest published entry and frees its slot for the producer.
    ///
    /// Returns `Ok(None)` if the ring is empty and [`Corrupt`] if the producer's `tail` is
    /// impossible. The entry is returned as the producer wrote it: validating it is the
    /// caller's job.
    pub fn pop(&mut self) -> Result<Option<E>, Corrupt> {
        if self.head == self.tail && !self.refresh()? {
            return Ok(None);
        }
        let entry = self.ring.read(self.head);
        self.head = self.head.wrapping_add(1);
        // Release: our reads of the slot happen before the producer reuses it.
        self.ring
            .word(HEAD_WORD)
            .store(self.head, Ordering::Release);
        Ok(Some(entry))
    }

    /// Announces that the consumer is about to wait for entries, then checks the ring again.
    ///
    /// Returns true if the ring is still empty: the caller may block until the producer
    /// signals (its [`Producer::publish`] returns true). Returns false, withdrawing the
    /// announcement, if entries are available or the producer's `tail` is impossible (the
    /// next [`pop`](Self::pop) reports which).
    pub fn prepare_wait(&mut self) -> bool {
        if self.head != self.tail {
            return false;
        }
        self.ring
            .word(CONSUMER_WAITING_WORD)
            .store(1, Ordering::Relaxed);
        // Store the flag, then load `tail`: see `Producer::publish` for why a full fence is
        // needed between them (and between its store of `tail` and load of the flag).
        fence(Ordering::SeqCst);
        if let Ok(false) = self.refresh() {
            return true;
        }
        self.ring
            .word(CONSUMER_WAITING_WORD)
            .store(0, Ordering::Relaxed);
        false
    }

    /// Ends a batch of pops: returns true if the producer announced it waits for space and
    /// must now be signalled (once for this batch).
    ///
    /// Returns false, without touching shared memory, if nothing was popped since the last
    /// call. Only protocols whose producers call [`Producer::prepare_wait`] need it.
    pub fn release(&mut self) -> bool {
        if self.head == self.released {
            return false;
        }
        self.released = self.head;
        // `pop` stored `head`; this fence orders that store before the flag's load (see
        // `Producer::publish`).
        fence(Ordering::SeqCst);
        self.ring
            .word(PRODUCER_WAITING_WORD)
            .swap(0, Ordering::Relaxed)
            != 0
    }
}

/// Both handles of one ring, as [`ring`] returns them.
pub type Handles<E, M> = (Producer<E, M>, Consumer<E, M>);

/// Both handles of one ring over `memory` (for example an `Arc<[AtomicU32]>` or a borrowed
/// slice), for a ring whose two sides live in one address space: tests, the hosted library
/// OS. Fails as [`Producer::new`] does.
pub fn ring<E, M>(memory: M, capacity: u32) -> Result<Handles<E, M>, LayoutError>
where
    E: Entry,
    M: Deref<Target = [AtomicU32]> + Clone,
{
    Ok((
        Producer::new(memory.clone(), capacity)?,
        Consumer::new(memory, capacity)?,
    ))
}
