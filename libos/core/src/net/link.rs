//! One side of a client–server socket link: two message rings (one each way) and two
//! data areas (one each way), behind the [`Link`] trait; and an in-process link
//! ([`channel`]) for tests and for a client and server in one runtime.
//!
//! Invariants: a side pushes only to its outgoing ring and writes only its outgoing
//! area; it pops only its incoming ring and reads only its incoming area. Every offset
//! and length is bounds-checked against the side's own [`Geometry`].

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::wire::{Geometry, Message};

/// Why a link operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// The outgoing ring is full; the message was not pushed.
    Full,
    /// The incoming ring's shared state is inconsistent (the peer corrupted it); the
    /// link cannot be used any more.
    Corrupt,
    /// An {offset, length} is outside the data area.
    OutOfBounds,
}

/// One side of a link: a message ring each way and a data area each way.
///
/// Messages are moved by value (plain old data); data moves by copy in and out of the
/// areas (no borrowed views into memory the peer may write). Signalling follows sDDF:
/// the producer pushes a batch, then [`Link::publish`] says whether the peer must be
/// signalled (at most once per batch, only if it announced it is waiting), and the
/// caller then calls [`Link::signal`]; a consumer about to block calls
/// [`Link::prepare_wait`] and blocks only if it returns false.
pub trait Link {
    /// The shape of both data areas (this side's private copy).
    fn geometry(&self) -> Geometry;

    /// Queues `message` on the outgoing ring; the peer sees it after
    /// [`Link::publish`]. Fails with `Full` when the ring has no room.
    fn push(&mut self, message: Message) -> Result<(), LinkError>;

    /// Makes pushed messages visible to the peer; returns true when the peer must be
    /// signalled (something was pushed since the last publish and the peer waits).
    fn publish(&mut self) -> bool;

    /// Notifies the peer (the platform's signal; nothing for an in-process link).
    fn signal(&mut self);

    /// Takes the next incoming message, if any. Fails with `Corrupt` when the ring's
    /// shared indices are inconsistent.
    fn pop(&mut self) -> Result<Option<Message>, LinkError>;

    /// Announces that this side is about to wait for messages; returns true if messages
    /// arrived meanwhile (then do not block: pop them).
    fn prepare_wait(&mut self) -> bool;

    /// Copies `data` into the outgoing area at `offset`. Fails with `OutOfBounds` when
    /// `offset..offset + data.len()` is outside the area.
    fn write_out(&mut self, offset: u32, data: &[u8]) -> Result<(), LinkError>;

    /// Copies `into.len()` bytes from the incoming area at `offset`. Fails with
    /// `OutOfBounds` when the range is outside the area.
    fn read_in(&self, offset: u32, into: &mut [u8]) -> Result<(), LinkError>;
}

/// Pushes messages from the front of `outbox` onto `link` until it is empty or the ring is
/// full; returns how many went.
pub(crate) fn push_queued(link: &mut dyn Link, outbox: &mut VecDeque<Message>) -> u64 {
    let mut pushed = 0;
    while let Some(&message) = outbox.front() {
        if link.push(message).is_err() {
            break;
        }
        outbox.pop_front();
        pushed += 1;
    }
    pushed
}

/// Copies `data` into `area` at `offset`, bounds-checked.
fn copy_to(area: &mut [u8], offset: u32, data: &[u8]) -> Result<(), LinkError> {
    let start = offset as usize;
    let end = start
        .checked_add(data.len())
        .ok_or(LinkError::OutOfBounds)?;
    area.get_mut(start..end)
        .ok_or(LinkError::OutOfBounds)?
        .copy_from_slice(data);
    Ok(())
}

/// Copies from `area` at `offset` into `into`, bounds-checked.
fn copy_from(area: &[u8], offset: u32, into: &mut [u8]) -> Result<(), LinkError> {
    let start = offset as usize;
    let end = start
        .checked_add(into.len())
        .ok_or(LinkError::OutOfBounds)?;
    into.copy_from_slice(area.get(start..end).ok_or(LinkError::OutOfBounds)?);
    Ok(())
}

/// One direction of an in-process link.
struct Direction {
    ring: VecDeque<Message>,
    /// Messages pushed but not yet published.
    staged: usize,
    area: Vec<u8>,
    /// The consumer announced it is waiting.
    consumer_waiting: bool,
    /// Test hook: the consumer's next pop reports corruption.
    corrupt: bool,
}

impl Direction {
    fn new(geometry: Geometry) -> Direction {
        Direction {
            ring: VecDeque::new(),
            staged: 0,
            area: vec![0; geometry.area_bytes()],
            consumer_waiting: false,
            corrupt: false,
        }
    }

    fn visible(&self) -> usize {
        self.ring.len() - self.staged
    }
}

struct Shared {
    /// Client to server.
    up: Direction,
    /// Server to client.
    down: Direction,
    /// Signals requested by each side (client, server).
    signals: [u64; 2],
}

/// One end of an in-process link (see [`channel`]); single-threaded.
pub struct ChannelEnd {
    shared: Rc<RefCell<Shared>>,
    geometry: Geometry,
    capacity: usize,
    /// True for the client's end (pushes `up`).
    client: bool,
}

/// Creates an in-process link with rings of `capacity` messages and areas of
/// `geometry`; returns (client end, server end).
pub fn channel(geometry: Geometry, capacity: usize) -> (ChannelEnd, ChannelEnd) {
    let shared = Rc::new(RefCell::new(Shared {
        up: Direction::new(geometry),
        down: Direction::new(geometry),
        signals: [0; 2],
    }));
    let end = |client| ChannelEnd {
        shared: shared.clone(),
        geometry,
        capacity,
        client,
    };
    (end(true), end(false))
}

impl ChannelEnd {
    fn with_directions<R>(&self, f: impl FnOnce(&mut Direction, &mut Direction) -> R) -> R {
        let mut shared = self.shared.borrow_mut();
        let shared = &mut *shared;
        if self.client {
            f(&mut shared.up, &mut shared.down)
        } else {
            f(&mut shared.down, &mut shared.up)
        }
    }

    /// Test hook: this end's next [`Link::pop`] fails with `Corrupt`, as if the peer had
    /// written inconsistent ring indices.
    pub fn corrupt_incoming(&self) {
        self.with_directions(|_, incoming| incoming.corrupt = true);
    }

    /// Test hook: the peer's next [`Link::pop`] fails with `Corrupt`, as if this end
    /// had written inconsistent ring indices.
    pub fn corrupt_outgoing(&self) {
        self.with_directions(|outgoing, _| outgoing.corrupt = true);
    }

    /// Signals this end's [`Link::publish`] has requested so far.
    pub fn signals_requested(&self) -> u64 {
        self.shared.borrow().signals[usize::from(!self.client)]
    }
}

impl Link for ChannelEnd {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn push(&mut self, message: Message) -> Result<(), LinkError> {
        let capacity = self.capacity;
        self.with_directions(|outgoing, _| {
            if outgoing.ring.len() >= capacity {
                return Err(LinkError::Full);
            }
            outgoing.ring.push_back(message);
            outgoing.staged += 1;
            Ok(())
        })
    }

    fn publish(&mut self) -> bool {
        let signal = self.with_directions(|outgoing, _| {
            let pushed = core::mem::take(&mut outgoing.staged) > 0;
            let signal = pushed && outgoing.consumer_waiting;
            if signal {
                outgoing.consumer_waiting = false;
            }
            signal
        });
        if signal {
            self.shared.borrow_mut().signals[usize::from(!self.client)] += 1;
        }
        signal
    }

    fn signal(&mut self) {}

    fn pop(&mut self) -> Result<Option<Message>, LinkError> {
        self.with_directions(|_, incoming| {
            if incoming.corrupt {
                return Err(LinkError::Corrupt);
            }
            if incoming.visible() == 0 {
                return Ok(None);
            }
            incoming.consumer_waiting = false;
            Ok(incoming.ring.pop_front())
        })
    }

    fn prepare_wait(&mut self) -> bool {
        self.with_directions(|_, incoming| {
            incoming.consumer_waiting = true;
            incoming.visible() > 0
        })
    }

    fn write_out(&mut self, offset: u32, data: &[u8]) -> Result<(), LinkError> {
        self.with_directions(|outgoing, _| copy_to(&mut outgoing.area, offset, data))
    }

    fn read_in(&self, offset: u32, into: &mut [u8]) -> Result<(), LinkError> {
        self.with_directions(|_, incoming| copy_from(&incoming.area, offset, into))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry() -> Geometry {
        Geometry {
            buffer_size: 16,
            buffers: 2,
        }
    }

    fn numbered(n: u32) -> Message {
        Message {
            socket: n,
            ..Message::default()
        }
    }

    #[test]
    fn messages_arrive_in_order_after_publish_and_the_ring_bounds_them() {
        let (mut client, mut server) = channel(geometry(), 2);
        client.push(numbered(1)).unwrap();
        assert_eq!(server.pop(), Ok(None), "not visible before publish");
        client.push(numbered(2)).unwrap();
        assert_eq!(client.push(numbered(3)), Err(LinkError::Full));
        client.publish();
        assert_eq!(server.pop(), Ok(Some(numbered(1))));
        assert_eq!(server.pop(), Ok(Some(numbered(2))));
        assert_eq!(server.pop(), Ok(None));
        server.push(numbered(9)).unwrap();
        server.publish();
        assert_eq!(client.pop(), Ok(Some(numbered(9))));
    }

    #[test]
    fn signals_once_per_batch_and_only_to_a_waiting_peer() {
        let (mut client, mut server) = channel(geometry(), 8);
        client.push(numbered(1)).unwrap();
        assert!(!client.publish(), "the server is not waiting");
        assert!(server.prepare_wait(), "a message is already there");
        while server.pop().unwrap().is_some() {}
        assert!(!server.prepare_wait());
        client.push(numbered(2)).unwrap();
        client.push(numbered(3)).unwrap();
        assert!(client.publish(), "the server waits");
        client.push(numbered(4)).unwrap();
        assert!(!client.publish(), "one signal per wait");
        assert!(!client.publish(), "nothing pushed");
        assert_eq!(client.signals_requested(), 1);
        assert_eq!(server.signals_requested(), 0);
    }

    #[test]
    fn data_areas_are_bounds_checked_and_one_way() {
        let (mut client, server) = channel(geometry(), 8);
        client.write_out(16, b"hello").unwrap();
        let mut out = [0u8; 5];
        server.read_in(16, &mut out).unwrap();
        assert_eq!(&out, b"hello");
        assert_eq!(client.write_out(30, b"abc"), Err(LinkError::OutOfBounds));
        assert_eq!(
            client.write_out(u32::MAX, b"a"),
            Err(LinkError::OutOfBounds)
        );
        assert_eq!(server.read_in(32, &mut out), Err(LinkError::OutOfBounds));
        // The client's own incoming area (server to client) is another area.
        client.read_in(16, &mut out).unwrap();
        assert_eq!(out, [0; 5]);
    }

    #[test]
    fn a_corrupted_ring_is_reported() {
        let (_client, mut server) = channel(geometry(), 8);
        server.corrupt_incoming();
        assert_eq!(server.pop(), Err(LinkError::Corrupt));
    }
}
