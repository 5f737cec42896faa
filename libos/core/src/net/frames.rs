//! Ethernet frames between a NIC driver component (`nic`) and the stack that uses it (`net`)
//! over one shared region: the driver's side is [`NicPort`], the stack's is [`StackPort`],
//! a [`NetDevice`] like any other, so the stack runs the same code on a ring as on a driver
//! in its own component.
//!
//! Layout of a region of `B` bytes ([`FrameLayout::for_region`], computed by each side from
//! `B` alone):
//!
//! | bytes | what |
//! |---|---|
//! | 0..64 | header: magic `TFRM`, version, the stack's nonce (as `shmlink`'s header) |
//! | 64.. | four `shmring` rings of [`Descriptor`]s, [`RING_CAPACITY`] each: rx active (nic → net), rx free (net → nic), tx active (net → nic), tx free (nic → net) |
//! | .. | receive area: the driver's buffers ([`FRAME_BUFFER`] bytes each), lent to the stack full of a frame |
//! | .. | transmit area: the stack's buffers, lent to the driver full of a frame |
//!
//! Each side owns one area and lends its buffers with an `shmring::Pool`, which takes back
//! only what it lent; the borrower checks every descriptor against its own copy of the
//! layout. Frames are copied out of the region once (the peer can write it at any time):
//! one copy into the region and one out of it per frame, each way.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use shmring::{ring_words, Consumer, Descriptor, Pool, Producer, Region};

use super::device::{DeviceError, NetDevice};

/// The first header word of a frame region (`TFRM` in little-endian bytes).
pub const MAGIC: u32 = u32::from_le_bytes(*b"TFRM");
/// Descriptors each ring holds.
pub const RING_CAPACITY: u32 = 512;
/// Bytes of one frame buffer (a 1514-byte frame and room to spare).
pub const FRAME_BUFFER: u32 = 2048;
/// Bytes of the header.
const HEADER_BYTES: usize = 64;
/// Buffers one area can have at most (the pools' bookkeeping).
const MAX_BUFFERS: usize = RING_CAPACITY as usize;
/// Received buffers the stack gives back to the driver at once (at the latest when it
/// finds no more frames).
const RETURN_BATCH: u64 = 32;
/// The shortest frame either side accepts (an Ethernet header).
const MIN_FRAME: u32 = 14;

/// Where the rings and areas of a frame region lie, in 32-bit words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLayout {
    rings: [usize; 4],
    areas: [usize; 2],
    end: usize,
    /// Buffers in each area.
    pub buffers: u32,
}

impl FrameLayout {
    /// The layout of a region of `bytes` bytes: the header, four rings and two equal areas
    /// of as many whole buffers as fit (at most [`RING_CAPACITY`] each). `None` if not even
    /// one buffer each fits or the region is larger than 4 GiB.
    pub fn for_region(bytes: usize) -> Option<FrameLayout> {
        if bytes > u32::MAX as usize {
            return None;
        }
        let ring = ring_words::<Descriptor>(RING_CAPACITY);
        let first = HEADER_BYTES / 4;
        let rings = [first, first + ring, first + 2 * ring, first + 3 * ring];
        let areas_start = first + 4 * ring;
        let per_area = ((bytes / 4).checked_sub(areas_start)? / 2) * 4;
        let buffers = (per_area / FRAME_BUFFER as usize).min(MAX_BUFFERS) as u32;
        if buffers == 0 {
            return None;
        }
        let area_words = (buffers * FRAME_BUFFER / 4) as usize;
        Some(FrameLayout {
            rings,
            areas: [areas_start, areas_start + area_words],
            end: areas_start + 2 * area_words,
            buffers,
        })
    }

    fn ring<'a>(&self, region: &'a [AtomicU32], i: usize) -> &'a [AtomicU32] {
        let end = self.rings.get(i + 1).copied().unwrap_or(self.areas[0]);
        &region[self.rings[i]..end]
    }

    fn area<'a>(&self, region: &'a [AtomicU32], i: usize) -> &'a [AtomicU32] {
        let end = if i == 0 { self.areas[1] } else { self.end };
        &region[self.areas[i]..end]
    }

    fn data_region(&self) -> Region {
        Region::new(self.buffers * FRAME_BUFFER, FRAME_BUFFER).expect("a non-zero alignment")
    }
}

/// What a port did, for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames taken from the device (nic) or handed to the stack (net).
    pub rx_frames: u64,
    /// Frames handed to the device (nic) or queued by the stack (net).
    pub tx_frames: u64,
    /// Signals the port asked for (at most one per batch).
    pub signals: u64,
    /// Frames dropped because no buffer was free.
    pub no_buffer: u64,
    /// Descriptors from the peer that named no buffer it holds, or a bad length: dropped.
    pub refused: u64,
    /// Times a ring's shared indices were impossible (the peer corrupted them).
    pub corrupt: u64,
}

/// The rings of one side.
struct Rings {
    /// Buffers of our own area, lent full of a frame and taken back empty.
    pool: Pool<MAX_BUFFERS>,
    /// The peer's full buffers.
    incoming: Consumer<Descriptor>,
    /// The peer's buffers, given back once read.
    returning: Producer<Descriptor>,
    own_area: &'static [AtomicU32],
    peer_area: &'static [AtomicU32],
    peer_region: Region,
    signal: Box<dyn FnMut()>,
    counters: PortCounters,
}

impl Rings {
    /// This side's rings: `out` and `back` are the indices of the rings our pool lends on
    /// and takes back on, `incoming` and `returning` those of the peer's pool, `own` our area.
    fn new(
        region: &'static [AtomicU32],
        layout: FrameLayout,
        [out, back, incoming, returning]: [usize; 4],
        own: usize,
        signal: Box<dyn FnMut()>,
    ) -> Option<Rings> {
        let size = layout.buffers * FRAME_BUFFER;
        let pool = Pool::new(
            size,
            FRAME_BUFFER,
            Producer::new(layout.ring(region, out), RING_CAPACITY).ok()?,
            Consumer::new(layout.ring(region, back), RING_CAPACITY).ok()?,
        )
        .ok()?;
        Some(Rings {
            pool,
            incoming: Consumer::new(layout.ring(region, incoming), RING_CAPACITY).ok()?,
            returning: Producer::new(layout.ring(region, returning), RING_CAPACITY).ok()?,
            own_area: layout.area(region, own),
            peer_area: layout.area(region, 1 - own),
            peer_region: layout.data_region(),
            signal,
            counters: PortCounters::default(),
        })
    }

    /// Takes back the buffers the peer returned; counts what it returned wrongly.
    fn reclaim(&mut self) {
        loop {
            match self.pool.receive() {
                Ok(Some(buffer)) => self.pool.free(buffer),
                Ok(None) => return,
                Err(shmring::ReceiveError::Refused(_)) => self.counters.refused += 1,
                Err(shmring::ReceiveError::Corrupt) => {
                    self.counters.corrupt += 1;
                    return;
                }
            }
        }
    }

    /// Lends a free buffer of our area holding the frame `fill` writes with the writer it
    /// is given (returning the frame's length, or `None` for no frame). `None` when no
    /// buffer is free; `Some(false)` when `fill` had no frame.
    fn send(&mut self, fill: impl FnOnce(&mut dyn FnMut(&[u8])) -> Option<usize>) -> Option<bool> {
        self.reclaim();
        let Some(buffer) = self.pool.alloc() else {
            self.counters.no_buffer += 1;
            return None;
        };
        let (area, offset) = (self.own_area, buffer.offset() as usize);
        let mut written = Ok(());
        let mut write = |data: &[u8]| {
            let data = &data[..data.len().min(FRAME_BUFFER as usize)];
            written = shmring::write_bytes(area, offset, data);
        };
        let Some(len) = fill(&mut write) else {
            self.pool.free(buffer);
            return Some(false);
        };
        let len = len.min(FRAME_BUFFER as usize);
        if written.is_err() || self.pool.send(buffer, len as u32).is_err() {
            // Cannot happen for a buffer of our own pool; counted if it does.
            self.counters.refused += 1;
            return Some(false);
        }
        Some(true)
    }

    /// The next frame the peer lent us, copied into `into`; its buffer goes back at once.
    /// `None` when there is none; refused descriptors are dropped and counted.
    fn take(&mut self, into: &mut [u8; FRAME_BUFFER as usize]) -> Option<usize> {
        loop {
            let entry = match self.incoming.pop() {
                Ok(Some(entry)) => entry,
                Ok(None) => return None,
                Err(_) => {
                    self.counters.corrupt += 1;
                    return None;
                }
            };
            let ok = self
                .peer_region
                .check(entry.offset, entry.length)
                .ok()
                .filter(|_| {
                    (MIN_FRAME..=FRAME_BUFFER).contains(&entry.length)
                        && entry.offset % FRAME_BUFFER == 0
                });
            // The buffer goes back whatever it held: the peer's pool refuses what it did
            // not lend, so a bad descriptor costs the peer, not us.
            let _ = self.returning.push(Descriptor {
                offset: entry.offset,
                length: 0,
            });
            match ok {
                Some(span) => {
                    let len = span.length;
                    if shmring::read_bytes(self.peer_area, span.offset, &mut into[..len]).is_ok() {
                        return Some(len);
                    }
                    self.counters.refused += 1;
                }
                None => self.counters.refused += 1,
            }
        }
    }

    /// Publishes both outgoing rings and signals the peer if it waits.
    fn publish(&mut self) {
        let a = self.pool.publish();
        let b = self.returning.publish();
        if a || b {
            self.counters.signals += 1;
            (self.signal)();
        }
    }

    /// Announces that this side waits for the peer's frames (and, if `for_buffers`, for
    /// its own buffers to come back): the peer's next publish signals. Returns false if
    /// something arrived meanwhile (do not wait).
    fn arm(&mut self, for_buffers: bool) -> bool {
        let frames = self.incoming.prepare_wait();
        let buffers = !for_buffers || self.pool.prepare_wait();
        frames && buffers
    }
}

/// The driver's side of a frame region.
pub struct NicPort {
    rings: Rings,
    /// A frame taken from the stack that the device had no room for yet.
    held: Option<(usize, Box<[u8; FRAME_BUFFER as usize]>)>,
}

impl NicPort {
    /// The driver's side over `region` (all of it, mapped for the rest of the program);
    /// `signal` notifies the stack. `None` if the region is too small.
    pub fn new(region: &'static [AtomicU32], signal: Box<dyn FnMut()>) -> Option<NicPort> {
        let layout = FrameLayout::for_region(region.len() * 4)?;
        Some(NicPort {
            rings: Rings::new(region, layout, [0, 1, 2, 3], 0, signal)?,
            held: None,
        })
    }

    /// Moves what is waiting: received frames from `device` to the stack (as long as
    /// buffers are free), and the stack's frames to `device` (as long as it has room);
    /// signals the stack once if it waits. Returns true if the caller should call again
    /// before waiting (something moved, or arrived while this side announced it waits);
    /// false when it may wait for the device's interrupt or the stack's signal.
    pub fn forward(&mut self, device: &mut dyn NetDevice) -> bool {
        let mut moved = false;
        let mut starved = false;
        while device.rx_ready() {
            let sent = self.rings.send(|write| {
                let mut len = None;
                let _ = device.receive_with(&mut |frame| {
                    write(frame);
                    len = Some(frame.len());
                });
                len
            });
            match sent {
                None => {
                    starved = true;
                    break;
                }
                Some(true) => {
                    self.rings.counters.rx_frames += 1;
                    moved = true;
                }
                Some(false) => {}
            }
        }
        loop {
            let (len, frame) = match self.held.take() {
                Some(held) => held,
                None => {
                    let mut frame = Box::new([0u8; FRAME_BUFFER as usize]);
                    match self.rings.take(&mut frame) {
                        Some(len) => (len, frame),
                        None => break,
                    }
                }
            };
            match device.transmit(&frame[..len]) {
                Ok(()) => {
                    self.rings.counters.tx_frames += 1;
                    moved = true;
                }
                Err(DeviceError::WouldBlock) => {
                    self.held = Some((len, frame));
                    break;
                }
                Err(_) => self.rings.counters.refused += 1,
            }
        }
        self.rings.publish();
        // A frame held for the device waits for its interrupt, not for the stack.
        moved || (self.held.is_none() && !self.rings.arm(starved))
    }

    /// Whether a frame from the stack waits for room in the device.
    pub fn tx_pending(&self) -> bool {
        self.held.is_some()
    }

    /// What the port did.
    pub fn counters(&self) -> PortCounters {
        self.rings.counters
    }
}

/// The stack's side of a frame region: a [`NetDevice`] whose frames come from and go to
/// the driver component.
pub struct StackPort {
    rings: Rings,
    mac: [u8; 6],
    mtu: usize,
    /// The next received frame (its length in `frame`), taken from the ring to answer
    /// `rx_ready`.
    next: Option<usize>,
    frame: Box<[u8; FRAME_BUFFER as usize]>,
}

impl StackPort {
    /// The stack's side over `region`, for a NIC with address `mac` carrying `mtu`-byte
    /// packets; `signal` notifies the driver. `None` if the region is too small.
    pub fn new(
        region: &'static [AtomicU32],
        mac: [u8; 6],
        mtu: usize,
        signal: Box<dyn FnMut()>,
    ) -> Option<StackPort> {
        let layout = FrameLayout::for_region(region.len() * 4)?;
        Some(StackPort {
            rings: Rings::new(region, layout, [2, 3, 0, 1], 1, signal)?,
            mac,
            mtu,
            next: None,
            frame: Box::new([0; FRAME_BUFFER as usize]),
        })
    }

    /// What the port did.
    pub fn counters(&self) -> PortCounters {
        self.rings.counters
    }

    fn fill_next(&mut self) {
        if self.next.is_none() {
            match self.rings.take(&mut self.frame) {
                Some(len) => {
                    self.next = Some(len);
                    self.rings.counters.rx_frames += 1;
                    // Give buffers back in batches, not one signal per frame.
                    if self.rings.counters.rx_frames.is_multiple_of(RETURN_BATCH) {
                        self.rings.publish();
                    }
                }
                // The end of a batch: the driver sees every buffer back.
                None => self.rings.publish(),
            }
        }
    }
}

impl NetDevice for StackPort {
    fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn rx_ready(&mut self) -> bool {
        self.fill_next();
        if self.next.is_none() && !self.rings.arm(false) {
            // Frames arrived while announcing the wait.
            self.fill_next();
        }
        self.next.is_some()
    }

    fn receive_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<(), DeviceError> {
        self.fill_next();
        let len = self.next.take().ok_or(DeviceError::WouldBlock)?;
        f(&self.frame[..len]);
        Ok(())
    }

    fn transmit_with(
        &mut self,
        len: usize,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError> {
        if len < MIN_FRAME as usize || len > FRAME_BUFFER as usize {
            return Err(DeviceError::Failed);
        }
        let mut frame = [0u8; FRAME_BUFFER as usize];
        if self.rings.send(|write| {
            f(&mut frame[..len]);
            write(&frame[..len]);
            Some(len)
        }) != Some(true)
        {
            // Ask the driver to signal when it gives buffers back.
            self.rings.pool.prepare_wait();
            return Err(DeviceError::WouldBlock);
        }
        self.rings.counters.tx_frames += 1;
        Ok(())
    }

    fn flush(&mut self) {
        self.rings.publish();
    }
}

/// Writes a frame region's header: magic `TFRM`, version and the stack's `nonce` (the
/// credential it names when it attaches to the driver).
pub fn write_header(region: &[AtomicU32], nonce: u64) {
    super::shmlink::write_tagged_header(region, MAGIC, nonce);
}

/// The nonce in a frame region's header, if it is one.
pub fn read_nonce(region: &[AtomicU32]) -> Option<u64> {
    super::shmlink::read_tagged_nonce(region, MAGIC)
}

/// Header words of the device the driver serves: MAC (words 4-5), MTU (6), a ready mark (7).
const DEVICE_WORDS: usize = 4;
const DEVICE_READY: u32 = u32::from_le_bytes(*b"NIC!");

/// The driver writes its device's MAC address and MTU into the header (before it answers
/// the stack's attach).
pub fn write_device(region: &[AtomicU32], mac: [u8; 6], mtu: usize) {
    let w = DEVICE_WORDS;
    region[w].store(
        u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        Ordering::Relaxed,
    );
    region[w + 1].store(
        u32::from_le_bytes([mac[4], mac[5], 0, 0]),
        Ordering::Relaxed,
    );
    region[w + 2].store(mtu as u32, Ordering::Relaxed);
    region[w + 3].store(DEVICE_READY, Ordering::Release);
}

/// The device's MAC address and MTU as the driver wrote them, if it did; an MTU outside
/// 68..=9000 is refused.
pub fn read_device(region: &[AtomicU32]) -> Option<([u8; 6], usize)> {
    let w = DEVICE_WORDS;
    if region.get(w + 3)?.load(Ordering::Acquire) != DEVICE_READY {
        return None;
    }
    let a = region[w].load(Ordering::Relaxed).to_le_bytes();
    let b = region[w + 1].load(Ordering::Relaxed).to_le_bytes();
    let mtu = region[w + 2].load(Ordering::Relaxed) as usize;
    (68..=9000)
        .contains(&mtu)
        .then_some(([a[0], a[1], a[2], a[3], b[0], b[1]], mtu))
}

/// The stack's side of a frame region that can be replaced when the driver restarts: the
/// [`NetDevice`] the stack holds, while the component swaps the port inside.
#[derive(Clone)]
pub struct SharedPort(alloc::rc::Rc<core::cell::RefCell<StackPort>>);

impl SharedPort {
    /// Shares `port`.
    pub fn new(port: StackPort) -> SharedPort {
        SharedPort(alloc::rc::Rc::new(core::cell::RefCell::new(port)))
    }

    /// Replaces the port (the driver restarted and the region was set up afresh).
    pub fn replace(&self, port: StackPort) {
        *self.0.borrow_mut() = port;
    }

    /// What the current port did.
    pub fn counters(&self) -> PortCounters {
        self.0.borrow().counters()
    }
}

impl NetDevice for SharedPort {
    fn mac_address(&self) -> [u8; 6] {
        self.0.borrow().mac_address()
    }

    fn mtu(&self) -> usize {
        self.0.borrow().mtu()
    }

    fn rx_ready(&mut self) -> bool {
        self.0.borrow_mut().rx_ready()
    }

    fn receive_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<(), DeviceError> {
        self.0.borrow_mut().receive_with(f)
    }

    fn transmit_with(
        &mut self,
        len: usize,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError> {
        self.0.borrow_mut().transmit_with(len, f)
    }

    fn flush(&mut self) {
        self.0.borrow_mut().flush();
    }
}

/// A frame region in this address space (tests, the hosted library OS): `bytes` bytes of
/// zeroed words, leaked for the rest of the program.
pub fn leaked_region(bytes: usize) -> &'static [AtomicU32] {
    let words: Vec<AtomicU32> = shmring::zeroed_words(bytes / 4).collect();
    Box::leak(words.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// A device that replays `rx` and records what it transmits.
    #[derive(Default)]
    struct Fake {
        rx: Vec<Vec<u8>>,
        tx: Vec<Vec<u8>>,
        tx_room: usize,
    }

    impl NetDevice for Fake {
        fn mac_address(&self) -> [u8; 6] {
            [2, 0, 0, 0, 0, 1]
        }
        fn mtu(&self) -> usize {
            1500
        }
        fn rx_ready(&mut self) -> bool {
            !self.rx.is_empty()
        }
        fn receive_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<(), DeviceError> {
            if self.rx.is_empty() {
                return Err(DeviceError::WouldBlock);
            }
            f(&self.rx.remove(0));
            Ok(())
        }
        fn transmit_with(
            &mut self,
            len: usize,
            f: &mut dyn FnMut(&mut [u8]),
        ) -> Result<(), DeviceError> {
            if self.tx_room == 0 {
                return Err(DeviceError::WouldBlock);
            }
            self.tx_room -= 1;
            let mut frame = vec![0; len];
            f(&mut frame);
            self.tx.push(frame);
            Ok(())
        }
    }

    fn frame(n: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| n.wrapping_add(i as u8)).collect()
    }

    fn pair(bytes: usize) -> (NicPort, StackPort, &'static [AtomicU32]) {
        let region = leaked_region(bytes);
        let nic = NicPort::new(region, Box::new(|| {})).unwrap();
        let stack = StackPort::new(region, [2, 0, 0, 0, 0, 1], 1500, Box::new(|| {})).unwrap();
        (nic, stack, region)
    }

    #[test]
    fn the_layout_fits_and_caps_the_buffers() {
        let small = FrameLayout::for_region(1 << 20).unwrap();
        assert!(small.end * 4 <= 1 << 20);
        assert!(small.buffers > 200, "{small:?}");
        let large = FrameLayout::for_region(8 << 20).unwrap();
        assert_eq!(large.buffers, RING_CAPACITY);
        assert_eq!(FrameLayout::for_region(4096), None);
    }

    #[test]
    fn frames_cross_both_ways_in_order() {
        let (mut nic, mut stack, _) = pair(1 << 20);
        let mut device = Fake {
            rx: (0..600).map(|n| frame(n as u8, 60 + n % 1400)).collect(),
            tx_room: 1000,
            ..Fake::default()
        };
        let mut received = Vec::new();
        // More frames than buffers: they cross as the stack gives buffers back.
        for _ in 0..10 {
            nic.forward(&mut device);
            while stack.rx_ready() {
                stack
                    .receive_with(&mut |f| received.push(f.to_vec()))
                    .unwrap();
            }
        }
        assert_eq!(received.len(), 600);
        for (n, f) in received.iter().enumerate() {
            assert_eq!(f, &frame(n as u8, 60 + n % 1400));
        }
        for n in 0..300u16 {
            let f = frame(n as u8, 1514);
            stack.transmit(&f).unwrap();
            if n % 50 == 49 {
                stack.flush();
                nic.forward(&mut device);
            }
        }
        nic.forward(&mut device);
        assert_eq!(device.tx.len(), 300);
        assert_eq!(device.tx[299], frame(43, 1514));
        assert_eq!(nic.counters().refused + stack.counters().refused, 0);
    }

    #[test]
    fn a_full_device_holds_the_frame_and_a_full_ring_says_wouldblock() {
        let (mut nic, mut stack, _) = pair(1 << 20);
        let mut device = Fake::default();
        let buffers = FrameLayout::for_region(1 << 20).unwrap().buffers as usize;
        for n in 0..buffers {
            stack.transmit(&frame(n as u8, 100)).unwrap();
        }
        assert_eq!(stack.transmit(&frame(0, 100)), Err(DeviceError::WouldBlock));
        stack.flush();
        nic.forward(&mut device);
        assert!(nic.tx_pending());
        device.tx_room = buffers;
        nic.forward(&mut device);
        assert_eq!(device.tx.len(), buffers);
        assert!(!nic.tx_pending());
        stack.transmit(&frame(9, 100)).unwrap();
        assert_eq!(
            stack.transmit_with(10, &mut |_| {}),
            Err(DeviceError::Failed)
        );
    }

    #[test]
    fn garbage_from_a_hostile_peer_is_dropped_and_counted() {
        let (mut nic, mut stack, region) = pair(1 << 20);
        let layout = FrameLayout::for_region(1 << 20).unwrap();
        let mut device = Fake {
            rx: (0..50).map(|n| frame(n, 100)).collect(),
            tx_room: 100,
            ..Fake::default()
        };
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            // The hostile stack scribbles over the rings' slots and indices, and the area.
            for _ in 0..8 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let at = (rng as usize) % layout.areas[0];
                let at = at.max(HEADER_BYTES / 4);
                region[at].store((rng >> 32) as u32, Ordering::Relaxed);
            }
            nic.forward(&mut device);
            if round % 3 == 0 {
                let _ = stack.transmit(&frame(round as u8, 200));
                stack.flush();
            }
            while stack.rx_ready() {
                let _ = stack.receive_with(&mut |f| assert!(f.len() <= FRAME_BUFFER as usize));
            }
        }
        let c = nic.counters();
        assert!(c.refused + c.corrupt > 0, "{c:?}");
        // Nothing the device sent was longer than a buffer or shorter than a header.
        assert!(device
            .tx
            .iter()
            .all(|f| (MIN_FRAME as usize..=FRAME_BUFFER as usize).contains(&f.len())));
    }

    #[test]
    fn a_waiting_side_is_signalled_once_per_batch_and_a_busy_one_never() {
        use alloc::rc::Rc;
        use core::cell::Cell;
        let region = leaked_region(1 << 20);
        let (to_stack, to_nic) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (a, b) = (to_stack.clone(), to_nic.clone());
        let mut nic = NicPort::new(region, Box::new(move || a.set(a.get() + 1))).unwrap();
        let mac = [2, 0, 0, 0, 0, 1];
        let mut stack =
            StackPort::new(region, mac, 1500, Box::new(move || b.set(b.get() + 1))).unwrap();
        let mut device = Fake {
            rx: (0..5).map(|n| frame(n, 100)).collect(),
            tx_room: 10,
            ..Fake::default()
        };
        // The stack has not announced a wait: frames cross without a signal.
        nic.forward(&mut device);
        assert_eq!(to_stack.get(), 0);
        while stack.rx_ready() {
            stack.receive_with(&mut |_| {}).unwrap();
        }
        // Now it waits (it found the ring empty): the next batch signals once.
        device.rx = (0..5).map(|n| frame(n, 100)).collect();
        assert!(nic.forward(&mut device));
        assert_eq!(to_stack.get(), 1);
        // The driver found nothing more and announced its wait: one signal for the stack's
        // frames.
        while stack.rx_ready() {
            stack.receive_with(&mut |_| {}).unwrap();
        }
        assert!(!nic.forward(&mut device));
        let before = to_nic.get();
        stack.transmit(&frame(1, 60)).unwrap();
        stack.transmit(&frame(2, 60)).unwrap();
        assert_eq!(to_nic.get(), before, "held back until the batch ends");
        stack.flush();
        assert_eq!(to_nic.get(), before + 1);
    }

    #[test]
    fn the_header_carries_the_nonce_and_the_device() {
        let region = leaked_region(1 << 16);
        assert_eq!((read_nonce(region), read_device(region)), (None, None));
        write_header(region, 0x1234_5678_9abc);
        assert_eq!(read_nonce(region), Some(0x1234_5678_9abc));
        assert_eq!(
            super::super::shmlink::read_nonce(region),
            None,
            "not a socket region"
        );
        write_device(region, [2, 0, 0, 0, 0, 9], 1500);
        assert_eq!(read_device(region), Some(([2, 0, 0, 0, 0, 9], 1500)));
        write_device(region, [2, 0, 0, 0, 0, 9], 65536);
        assert_eq!(read_device(region), None, "an impossible MTU");
    }
}
