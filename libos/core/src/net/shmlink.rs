//! A [`Link`] over one region of memory that a client and the `net` server share: the two
//! message rings are `shmring` rings of [`Message`]s and the two data areas are words of the
//! same region, so the same code runs between two components (a region the system
//! description shares) and in one process (a heap allocation, for tests).
//!
//! Layout of a region of `B` bytes ([`Layout::for_region`]; both sides compute it from `B`
//! alone, so nothing that sizes a ring or an area is read from shared memory):
//!
//! | bytes | what |
//! |---|---|
//! | 0..64 | header: magic `TNET` (word 0), version (word 1), the client's nonce (words 2-3) |
//! | 64.. | requests: client → server ring of [`RING_CAPACITY`] messages |
//! | .. | events: server → client ring of [`RING_CAPACITY`] messages |
//! | .. | client area: the client's transmit buffers ([`BUFFER_SIZE`] bytes each) |
//! | .. | server area: the server's receive buffers, as many as the client's |
//!
//! Data moves through the areas with word-sized atomic accesses: the peer may write the same
//! memory at any time, so the bytes are copied, never borrowed, and every offset and length
//! is checked against this side's private [`Geometry`] first.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU32, Ordering};

use shmring::{ring_words, Consumer, Entry, Producer};

use super::link::{Link, LinkError};
use super::wire::{Geometry, Message};

/// The first header word of an initialised region (`TNET` in little-endian bytes).
pub const MAGIC: u32 = u32::from_le_bytes(*b"TNET");
/// The layout version in header word 1.
pub const VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_BYTES: usize = 64;
/// Messages each ring holds.
pub const RING_CAPACITY: u32 = 256;
/// Bytes of one data buffer.
pub const BUFFER_SIZE: u32 = 4096;

impl Entry for Message {
    const WORDS: usize = 8;

    fn encode(&self, words: &mut [u32]) {
        words[0] = u32::from(self.op) | u32::from(self.status) << 16;
        words[1] = self.socket;
        words[2] = self.offset;
        words[3] = self.len;
        for (i, arg) in self.args.iter().enumerate() {
            words[4 + 2 * i] = *arg as u32;
            words[5 + 2 * i] = (*arg >> 32) as u32;
        }
    }

    fn decode(words: &[u32]) -> Message {
        let arg = |i: usize| u64::from(words[4 + 2 * i]) | u64::from(words[5 + 2 * i]) << 32;
        Message {
            op: words[0] as u16,
            status: (words[0] >> 16) as u16,
            socket: words[1],
            offset: words[2],
            len: words[3],
            args: [arg(0), arg(1)],
        }
    }
}

/// Where the rings and areas of a region lie, in 32-bit words from the region's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The data areas' shape.
    pub geometry: Geometry,
    requests: usize,
    events: usize,
    client_area: usize,
    server_area: usize,
    end: usize,
}

impl Layout {
    /// The layout of a region of `bytes` bytes: the header, the two rings, and two equal
    /// areas of as many whole buffers as fit. `None` if not even one buffer each fits or the
    /// region is larger than 4 GiB (offsets are 32-bit).
    pub fn for_region(bytes: usize) -> Option<Layout> {
        if bytes > u32::MAX as usize {
            return None;
        }
        let ring = ring_words::<Message>(RING_CAPACITY);
        let requests = HEADER_BYTES / 4;
        let events = requests + ring;
        let areas = events + ring;
        let per_area = (bytes / 4).checked_sub(areas)? / 2;
        let buffers = u32::try_from(per_area * 4 / BUFFER_SIZE as usize).ok()?;
        if buffers == 0 {
            return None;
        }
        let area_words = buffers as usize * BUFFER_SIZE as usize / 4;
        Some(Layout {
            geometry: Geometry {
                buffer_size: BUFFER_SIZE,
                buffers,
            },
            requests,
            events,
            client_area: areas,
            server_area: areas + area_words,
            end: areas + 2 * area_words,
        })
    }

    /// Words the layout spans.
    pub fn words(&self) -> usize {
        self.end
    }
}

/// Which end of the link this side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The application: pushes requests, writes the client area.
    Client,
    /// The `net` server: pushes events, writes the server area.
    Server,
}

/// Writes the header of a client's region: magic, version and `nonce` (the credential the
/// client names when it attaches).
pub fn write_header(region: &[AtomicU32], nonce: u64) {
    write_tagged_header(region, MAGIC, nonce);
}

/// The nonce in a region's header, if the header is one this layout understands.
pub fn read_nonce(region: &[AtomicU32]) -> Option<u64> {
    read_tagged_nonce(region, MAGIC)
}

/// Writes a shared region's header: `magic` (which protocol), [`VERSION`] and `nonce`.
pub(crate) fn write_tagged_header(region: &[AtomicU32], magic: u32, nonce: u64) {
    if region.len() >= HEADER_BYTES / 4 {
        region[2].store(nonce as u32, Ordering::Relaxed);
        region[3].store((nonce >> 32) as u32, Ordering::Relaxed);
        region[1].store(VERSION, Ordering::Relaxed);
        region[0].store(magic, Ordering::Release);
    }
}

/// The nonce of a header written by [`write_tagged_header`] with `magic`.
pub(crate) fn read_tagged_nonce(region: &[AtomicU32], magic: u32) -> Option<u64> {
    if region.len() < HEADER_BYTES / 4
        || region[0].load(Ordering::Acquire) != magic
        || region[1].load(Ordering::Relaxed) != VERSION
    {
        return None;
    }
    let low = u64::from(region[2].load(Ordering::Relaxed));
    Some(low | u64::from(region[3].load(Ordering::Relaxed)) << 32)
}

/// One side of a link in a shared region.
pub struct ShmLink {
    geometry: Geometry,
    outgoing: Producer<Message>,
    incoming: Consumer<Message>,
    out_area: &'static [AtomicU32],
    in_area: &'static [AtomicU32],
    signal: Box<dyn FnMut()>,
}

impl ShmLink {
    /// This `side`'s link over `region` (all of it, mapped for the rest of the program);
    /// `signal` notifies the peer. `None` if the region is too small for [`Layout`].
    pub fn new(
        region: &'static [AtomicU32],
        side: Side,
        signal: Box<dyn FnMut()>,
    ) -> Option<ShmLink> {
        let layout = Layout::for_region(region.len() * 4)?;
        let requests = &region[layout.requests..layout.events];
        let events = &region[layout.events..layout.client_area];
        let client_area = &region[layout.client_area..layout.server_area];
        let server_area = &region[layout.server_area..layout.end];
        let (outgoing, incoming, out_area, in_area) = match side {
            Side::Client => (requests, events, client_area, server_area),
            Side::Server => (events, requests, server_area, client_area),
        };
        Some(ShmLink {
            geometry: layout.geometry,
            outgoing: Producer::new(outgoing, RING_CAPACITY).ok()?,
            incoming: Consumer::new(incoming, RING_CAPACITY).ok()?,
            out_area,
            in_area,
            signal,
        })
    }
}

impl Link for ShmLink {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn push(&mut self, message: Message) -> Result<(), LinkError> {
        self.outgoing.push(message).map_err(|e| match e {
            shmring::PushError::Full => LinkError::Full,
            shmring::PushError::Corrupt => LinkError::Corrupt,
        })
    }

    fn publish(&mut self) -> bool {
        self.outgoing.publish()
    }

    fn signal(&mut self) {
        (self.signal)()
    }

    fn pop(&mut self) -> Result<Option<Message>, LinkError> {
        self.incoming.pop().map_err(|_| LinkError::Corrupt)
    }

    fn prepare_wait(&mut self) -> bool {
        !self.incoming.prepare_wait()
    }

    fn write_out(&mut self, offset: u32, data: &[u8]) -> Result<(), LinkError> {
        shmring::write_bytes(self.out_area, offset as usize, data)
            .map_err(|_| LinkError::OutOfBounds)
    }

    fn read_in(&self, offset: u32, into: &mut [u8]) -> Result<(), LinkError> {
        shmring::read_bytes(self.in_area, offset as usize, into).map_err(|_| LinkError::OutOfBounds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn region(bytes: usize) -> &'static [AtomicU32] {
        shmring::zeroed_words(bytes / 4).collect::<Vec<_>>().leak()
    }

    fn pair(bytes: usize) -> (ShmLink, ShmLink, &'static [AtomicU32]) {
        let r = region(bytes);
        let client = ShmLink::new(r, Side::Client, Box::new(|| {})).unwrap();
        let server = ShmLink::new(r, Side::Server, Box::new(|| {})).unwrap();
        (client, server, r)
    }

    #[test]
    fn messages_round_trip_through_ring_words() {
        let m = Message {
            op: 0x101,
            status: 7,
            socket: 0x8000_0003,
            offset: 8192,
            len: 1460,
            args: [u64::MAX - 1, 0x1234_5678_9abc_def0],
        };
        let mut words = [0u32; 8];
        m.encode(&mut words);
        assert_eq!(Message::decode(&words), m);
    }

    #[test]
    fn the_layout_fits_the_region_and_both_sides_agree() {
        let layout = Layout::for_region(2 << 20).unwrap();
        assert!(layout.words() * 4 <= 2 << 20);
        assert_eq!(layout.geometry.buffer_size, BUFFER_SIZE);
        assert_eq!(layout.geometry.buffers, 253, "{layout:?}");
        assert_eq!(Layout::for_region(2 << 20), Some(layout));
        // Too small for the header, the rings and a buffer each way.
        assert_eq!(Layout::for_region(HEADER_BYTES + 1000), None);
        assert_eq!(Layout::for_region(0), None);
    }

    #[test]
    fn messages_and_data_cross_in_both_directions() {
        let (mut client, mut server, _) = pair(256 << 10);
        let data: Vec<u8> = (0..1001u32).map(|i| (i % 251) as u8).collect();
        client.write_out(4096 + 3, &data).unwrap();
        client
            .push(Message {
                op: 5,
                offset: 4096 + 3,
                len: 1001,
                ..Message::default()
            })
            .unwrap();
        assert!(!client.publish(), "the server never said it waits");
        let got = server.pop().unwrap().unwrap();
        assert_eq!((got.op, got.offset, got.len), (5, 4099, 1001));
        let mut back = alloc::vec![0u8; 1001];
        server.read_in(got.offset, &mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(server.pop(), Ok(None));
        // The server waits; the client's next batch asks for one signal.
        assert!(!server.prepare_wait());
        client
            .push(Message {
                op: 6,
                ..Message::default()
            })
            .unwrap();
        client
            .push(Message {
                op: 7,
                ..Message::default()
            })
            .unwrap();
        assert!(client.publish());
        assert!(server.prepare_wait(), "messages arrived meanwhile");
        server.write_out(0, b"ok").unwrap();
        server
            .push(Message {
                op: 0x106,
                len: 2,
                ..Message::default()
            })
            .unwrap();
        server.publish();
        let mut ok = [0u8; 2];
        assert_eq!(client.pop().unwrap().unwrap().op, 0x106);
        client.read_in(0, &mut ok).unwrap();
        assert_eq!(&ok, b"ok");
    }

    #[test]
    fn spans_outside_an_area_are_refused() {
        let (mut client, server, _) = pair(256 << 10);
        let area = client.geometry().area_bytes() as u32;
        assert_eq!(
            client.write_out(area - 1, &[1, 2]),
            Err(LinkError::OutOfBounds)
        );
        assert_eq!(
            client.write_out(u32::MAX, &[1]),
            Err(LinkError::OutOfBounds)
        );
        let mut into = [0u8; 8];
        assert_eq!(
            server.read_in(area - 4, &mut into),
            Err(LinkError::OutOfBounds)
        );
        assert!(client.write_out(area - 2, &[1, 2]).is_ok());
    }

    #[test]
    fn a_peer_that_scribbles_ring_indices_is_reported_corrupt() {
        let (_client, mut server, r) = pair(256 << 10);
        let layout = Layout::for_region(256 << 10).unwrap();
        // The requests ring's tail (the client's index), set far beyond a ring's worth.
        r[layout.requests + shmring::TAIL_WORD].store(RING_CAPACITY * 5, Ordering::Relaxed);
        assert_eq!(server.pop(), Err(LinkError::Corrupt));
    }

    #[test]
    fn the_header_carries_the_nonce() {
        let r = region(4096);
        assert_eq!(read_nonce(r), None);
        write_header(r, 0xdead_beef_0042);
        assert_eq!(read_nonce(r), Some(0xdead_beef_0042));
        r[1].store(VERSION + 1, Ordering::Relaxed);
        assert_eq!(read_nonce(r), None);
    }
}
