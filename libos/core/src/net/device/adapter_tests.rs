//! The adapter over a fake device that lends its buffers and counts copies.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use smoltcp::phy::{Device, RxToken as _, TxToken as _};
use smoltcp::time::Instant;

use super::{DeviceAdapter, DeviceError, NetCounters, NetDevice, RxChecksums};

/// What the fake device holds and records; shared with the test.
#[derive(Default)]
struct State {
    /// Frames waiting to be received (`Err`: the device reports this error instead).
    rx: VecDeque<Result<Vec<u8>, DeviceError>>,
    /// Address of the last frame lent by `receive_with`.
    lent_at: Option<usize>,
    /// Address of the last transmit buffer lent by `transmit_with`.
    built_at: Option<usize>,
    /// Frames handed over by `receive_with` / `transmit_with`, in the device's buffers.
    lends: usize,
    /// Frames copied by `receive` / `transmit`.
    copies: usize,
    /// Frames the device can still queue for transmission.
    tx_room: usize,
    /// Frames sent, in order.
    sent: Vec<Vec<u8>>,
    /// A lend is in progress.
    lending: bool,
    /// Every `set_interrupts` call, in order.
    interrupt_switches: Vec<bool>,
    /// What the device says it verified of every frame it lends.
    verified: RxChecksums,
}

struct Fake(Rc<RefCell<State>>);

impl Fake {
    fn new(tx_room: usize) -> (Fake, Rc<RefCell<State>>) {
        let state = Rc::new(RefCell::new(State {
            tx_room,
            ..State::default()
        }));
        (Fake(state.clone()), state)
    }

    fn start_lend(&self) {
        let mut state = self.0.borrow_mut();
        assert!(!state.lending, "the device was entered during a lend");
        state.lending = true;
        state.lends += 1;
    }
}

impl NetDevice for Fake {
    fn mac_address(&self) -> [u8; 6] {
        [2, 0, 0, 0, 0, 9]
    }

    fn mtu(&self) -> usize {
        1500
    }

    fn rx_ready(&mut self) -> bool {
        !self.0.borrow().rx.is_empty()
    }

    fn set_interrupts(&mut self, on: bool) {
        self.0.borrow_mut().interrupt_switches.push(on);
    }

    fn receive_with_checksums(
        &mut self,
        f: &mut dyn FnMut(&[u8], RxChecksums),
    ) -> Result<(), DeviceError> {
        let verified = self.0.borrow().verified;
        self.receive_with(&mut |frame| f(frame, verified))
    }

    fn receive_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<(), DeviceError> {
        let frame = self
            .0
            .borrow_mut()
            .rx
            .pop_front()
            .unwrap_or(Err(DeviceError::WouldBlock))?;
        self.start_lend();
        self.0.borrow_mut().lent_at = Some(frame.as_ptr() as usize);
        f(&frame);
        self.0.borrow_mut().lending = false;
        Ok(())
    }

    fn transmit_with(
        &mut self,
        len: usize,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError> {
        if self.0.borrow().tx_room == 0 {
            return Err(DeviceError::WouldBlock);
        }
        self.start_lend();
        let mut buffer = vec![0u8; len];
        self.0.borrow_mut().built_at = Some(buffer.as_ptr() as usize);
        f(&mut buffer);
        let mut state = self.0.borrow_mut();
        state.lending = false;
        state.tx_room -= 1;
        state.sent.push(buffer);
        Ok(())
    }

    fn receive(&mut self, buffer: &mut [u8]) -> Result<usize, DeviceError> {
        self.0.borrow_mut().copies += 1;
        let len = buffer.len();
        let mut copied = 0;
        self.receive_with(&mut |frame| {
            copied = frame.len().min(len);
            buffer[..copied].copy_from_slice(&frame[..copied]);
        })?;
        Ok(copied)
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), DeviceError> {
        self.0.borrow_mut().copies += 1;
        self.transmit_with(frame.len(), &mut |buffer| buffer.copy_from_slice(frame))
    }
}

fn adapter(tx_room: usize) -> (DeviceAdapter, Rc<RefCell<State>>) {
    let (fake, state) = Fake::new(tx_room);
    (DeviceAdapter::new(alloc::boxed::Box::new(fake)), state)
}

/// A minimal ARP frame (passes the adapter's checks).
fn arp_frame(tag: u8) -> Vec<u8> {
    let mut frame = vec![tag; 60];
    frame[12] = 0x08;
    frame[13] = 0x06;
    frame
}

/// An IPv4 frame with a sound 20-byte header.
fn ipv4_frame() -> Vec<u8> {
    let mut frame = vec![0u8; 60];
    frame[12] = 0x08;
    frame[14] = 0x45;
    frame[16..18].copy_from_slice(&46u16.to_be_bytes());
    smoltcp::wire::Ipv4Packet::new_unchecked(&mut frame[14..]).fill_checksum();
    frame
}

/// An IPv4 TCP segment (10.0.2.2:5201 -> 10.0.2.15:40000, 6 bytes of data) with sound
/// IPv4 and TCP checksums.
fn tcp_frame() -> Vec<u8> {
    use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, TcpPacket};
    let (src, dst) = (
        Ipv4Address::new(10, 0, 2, 2),
        Ipv4Address::new(10, 0, 2, 15),
    );
    let mut frame = vec![0u8; 14 + 20 + 20 + 6];
    frame[12] = 0x08;
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_total_len(46);
    ip.set_hop_limit(64);
    ip.set_next_header(IpProtocol::Tcp);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
    let mut tcp = TcpPacket::new_unchecked(&mut frame[34..]);
    tcp.set_src_port(5201);
    tcp.set_dst_port(40000);
    tcp.set_header_len(20);
    tcp.set_ack(true);
    tcp.set_window_len(1000);
    tcp.payload_mut().copy_from_slice(b"tesser");
    tcp.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
    frame
}

const NOW: Instant = Instant::ZERO;

#[test]
fn a_received_frame_reaches_the_stack_in_the_device_buffer() {
    let (mut adapter, state) = adapter(4);
    state.borrow_mut().rx.push_back(Ok(ipv4_frame()));
    let (rx, _tx) = adapter.receive(NOW).expect("a frame is ready");
    let (seen_at, seen) = rx.consume(|frame| (frame.as_ptr() as usize, frame.to_vec()));
    assert_eq!(seen, ipv4_frame());
    assert_eq!(
        Some(seen_at),
        state.borrow().lent_at,
        "the frame was copied"
    );
    assert_eq!((state.borrow().lends, state.borrow().copies), (1, 0));
    assert_eq!(
        adapter.counters(),
        NetCounters {
            rx_frames: 1,
            ..NetCounters::default()
        }
    );
    assert!(adapter.receive(NOW).is_none());
}

#[test]
fn malformed_frames_are_dropped_and_counted() {
    let (mut adapter, state) = adapter(4);
    let mut bad_ipv4 = ipv4_frame();
    bad_ipv4[14] = 0x65; // version 6 in an IPv4 frame
    let mut short_header = ipv4_frame();
    short_header[14] = 0x42; // 8-byte header
    for frame in [vec![1, 2, 3], bad_ipv4, short_header, vec![0; 1515]] {
        state.borrow_mut().rx.push_back(Ok(frame));
    }
    state.borrow_mut().rx.push_back(Err(DeviceError::Truncated));
    for _ in 0..5 {
        let (rx, _tx) = adapter.receive(NOW).expect("an entry is ready");
        // The stack sees an empty frame, which it skips.
        assert_eq!(rx.consume(|frame| frame.len()), 0);
    }
    assert!(adapter.receive(NOW).is_none());
    assert_eq!(
        adapter.counters(),
        NetCounters {
            rx_malformed: 5,
            ..NetCounters::default()
        }
    );
    assert_eq!(state.borrow().copies, 0);
}

#[test]
fn an_entry_the_device_drops_gives_the_stack_nothing_and_counts_nothing() {
    let (mut adapter, state) = adapter(4);
    state
        .borrow_mut()
        .rx
        .push_back(Err(DeviceError::WouldBlock));
    state.borrow_mut().rx.push_back(Err(DeviceError::Failed));
    for _ in 0..2 {
        let (rx, _tx) = adapter.receive(NOW).expect("an entry is ready");
        assert_eq!(rx.consume(|frame| frame.len()), 0);
    }
    assert!(adapter.receive(NOW).is_none());
    assert_eq!(adapter.counters(), NetCounters::default());
}

#[test]
fn a_flood_of_malformed_frames_lets_the_poll_return() {
    let (mut adapter, state) = adapter(4);
    for _ in 0..100 {
        state.borrow_mut().rx.push_back(Ok(vec![0; 10]));
    }
    let mut taken = 0;
    while let Some((rx, _tx)) = adapter.receive(NOW) {
        rx.consume(|frame| assert!(frame.is_empty()));
        taken += 1;
    }
    assert_eq!(taken, super::MAX_SKIPPED_PER_CALL);
    // The next poll goes on where this one stopped.
    assert!(adapter.receive(NOW).is_some());
    // A good frame resets the run.
    let (mut adapter, state) = self::adapter(4);
    for i in 0..100 {
        let frame = if i % 50 == 49 {
            arp_frame(1)
        } else {
            vec![0; 10]
        };
        state.borrow_mut().rx.push_back(Ok(frame));
    }
    let mut taken = 0;
    while let Some((rx, _tx)) = adapter.receive(NOW) {
        rx.consume(|_| ());
        taken += 1;
    }
    assert_eq!(taken, 100);
    assert_eq!(adapter.counters().rx_frames, 2);
    assert_eq!(adapter.counters().rx_malformed, 98);
}

#[test]
fn a_transmitted_frame_is_built_in_the_device_buffer() {
    let (mut adapter, state) = adapter(4);
    let tx = adapter.transmit(NOW).expect("transmit is always offered");
    let built_at = tx.consume(60, |buffer| {
        buffer.copy_from_slice(&arp_frame(7));
        buffer.as_ptr() as usize
    });
    assert_eq!(
        Some(built_at),
        state.borrow().built_at,
        "built outside the device"
    );
    assert_eq!(state.borrow().sent, [arp_frame(7)]);
    assert_eq!((state.borrow().lends, state.borrow().copies), (1, 0));
    assert_eq!(adapter.counters().tx_frames, 1);
}

#[test]
fn a_full_transmit_queue_drops_the_frame_and_counts_it() {
    let (mut adapter, state) = adapter(0);
    let tx = adapter.transmit(NOW).expect("transmit is always offered");
    // The stack still gets a buffer to build in, and its result back.
    assert_eq!(tx.consume(60, |buffer| buffer.len()), 60);
    assert!(state.borrow().sent.is_empty());
    assert_eq!(
        adapter.counters(),
        NetCounters {
            tx_dropped: 1,
            ..NetCounters::default()
        }
    );
}

#[test]
fn an_answer_built_during_a_receive_lend_is_sent_after_it() {
    let (mut adapter, state) = adapter(4);
    state.borrow_mut().rx.push_back(Ok(arp_frame(1)));
    let (rx, tx) = adapter.receive(NOW).expect("a frame is ready");
    rx.consume(|frame| {
        assert_eq!(frame, arp_frame(1));
        tx.consume(60, |buffer| buffer.copy_from_slice(&arp_frame(2)));
        // Not sent while the device is lending.
        assert!(state.borrow().sent.is_empty());
    });
    assert_eq!(state.borrow().sent, [arp_frame(2)]);
    // One lend for the received frame, one copy for the answer.
    assert_eq!((state.borrow().lends, state.borrow().copies), (2, 1));
    assert_eq!(
        adapter.counters(),
        NetCounters {
            rx_frames: 1,
            tx_frames: 1,
            ..NetCounters::default()
        }
    );
}

#[test]
fn interrupts_go_off_while_polls_find_frames_and_on_at_the_first_idle_poll() {
    let (adapter, state) = adapter(4);
    // Idle polls with interrupts on: nothing to switch.
    adapter.polled(false);
    adapter.polled(false);
    assert!(state.borrow().interrupt_switches.is_empty());
    // A busy stretch: off once, however long it lasts.
    for _ in 0..5 {
        adapter.polled(true);
    }
    assert_eq!(state.borrow().interrupt_switches, [false]);
    // The first idle poll re-arms, once.
    adapter.polled(false);
    adapter.polled(false);
    adapter.polled(true);
    adapter.polled(false);
    assert_eq!(
        state.borrow().interrupt_switches,
        [false, true, false, true]
    );
    let c = adapter.counters();
    assert_eq!((c.polls, c.busy_polls, c.interrupt_rearms), (11, 6, 2));
}

#[test]
fn checksums_the_device_did_not_verify_are_verified_here() {
    let (mut adapter, state) = adapter(4);
    let mut bad_tcp = tcp_frame();
    bad_tcp[59] ^= 0xFF; // a payload byte: the TCP checksum no longer matches
    let mut bad_ip = tcp_frame();
    bad_ip[22] ^= 0x01; // the TTL: the IPv4 header checksum no longer matches
    let deliver = |adapter: &mut DeviceAdapter, frame: Vec<u8>, verified| {
        state.borrow_mut().verified = verified;
        state.borrow_mut().rx.push_back(Ok(frame));
        let (rx, _tx) = adapter.receive(NOW).expect("a frame is ready");
        rx.consume(|frame| frame.len())
    };
    let none = RxChecksums::default();
    let l4 = RxChecksums {
        ipv4: false,
        l4: true,
    };
    // Sound frames pass; the corrupted ones do not, unless the device vouched for the part
    // that was corrupted (it would have dropped a bad one itself).
    assert_eq!(deliver(&mut adapter, tcp_frame(), none), 60);
    assert_eq!(deliver(&mut adapter, bad_tcp.clone(), none), 0);
    assert_eq!(deliver(&mut adapter, bad_ip.clone(), l4), 0);
    assert_eq!(deliver(&mut adapter, bad_tcp, l4), 60);
    let c = adapter.counters();
    assert_eq!(
        (
            c.rx_frames,
            c.rx_bad_checksum,
            c.rx_checksum_offloaded,
            c.rx_malformed
        ),
        (2, 2, 1, 0)
    );
}

#[test]
fn a_frame_that_arrived_before_the_re_arm_is_reported() {
    let (adapter, state) = adapter(4);
    assert!(
        !adapter.polled(true),
        "turning interrupts off reports nothing"
    );
    state.borrow_mut().rx.push_back(Ok(ipv4_frame()));
    assert!(
        adapter.polled(false),
        "re-armed with a frame waiting: poll again"
    );
    assert!(!adapter.polled(false), "already armed: nothing to report");
    assert_eq!(state.borrow().interrupt_switches, [false, true]);
}
