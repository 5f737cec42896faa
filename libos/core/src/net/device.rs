//! The adapter that drives a [`NetDevice`] as a smoltcp device, lending frames in place.
//!
//! smoltcp's `Device::receive` hands out a receive and a transmit token at once, and
//! consumes the transmit token (to answer an ARP request, a ping, an out-of-order TCP
//! segment) from inside the receive token's closure, while the device is still lending
//! the received frame. So both tokens hold a shared reference to the adapter, whose
//! device sits in a `RefCell`:
//!
//! - the receive token borrows the device for the length of [`NetDevice::receive_with`],
//!   checks the lent frame and passes it straight to smoltcp (no copy);
//! - a transmit token borrows the device for [`NetDevice::transmit_with`], so smoltcp
//!   builds the frame in the device's buffer (no copy). Only when the device is busy
//!   lending a received frame does it build the frame in the adapter's `deferred`
//!   buffer, which the receive token hands to the device (one copy) once the lend ends;
//! - `Device::receive` returns tokens only when [`NetDevice::rx_ready`] says a frame
//!   waits. A lend that yields no acceptable frame (malformed, or an entry the device
//!   drops) gives smoltcp an empty frame, which it skips without effect.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet, TcpPacket,
    UdpPacket,
};

pub use netdev::{ChecksumOffload, DeviceError, NetDevice, RxChecksums, ETHERNET_HEADER_LEN};

/// Frame counters of one network interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Frames received and handed to the stack.
    pub rx_frames: u64,
    /// Frames transmitted.
    pub tx_frames: u64,
    /// Received frames dropped as malformed (too short, too long, bad IPv4 header).
    pub rx_malformed: u64,
    /// Frames the device refused to transmit (queue full or failure).
    pub tx_dropped: u64,
    /// Polls of the stack (each runs smoltcp over everything the device holds).
    pub polls: u64,
    /// Polls that moved frames (frames per poll = frames / busy polls).
    pub busy_polls: u64,
    /// Times the device's interrupts were turned back on after a busy stretch (the poll
    /// loop turns them off while polls find frames and on at the first idle poll).
    pub interrupt_rearms: u64,
    /// Received frames dropped because a checksum the device had not verified was wrong.
    pub rx_bad_checksum: u64,
    /// Received frames whose TCP/UDP checksum the device had verified (not verified again).
    pub rx_checksum_offloaded: u64,
}

/// Returns true when `frame` passes the checks done before the stack sees it.
fn frame_is_well_formed(frame: &[u8], mtu: usize) -> bool {
    if frame.len() < ETHERNET_HEADER_LEN || frame.len() > mtu + ETHERNET_HEADER_LEN {
        return false;
    }
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    match ethernet.ethertype() {
        EthernetProtocol::Ipv4 => match Ipv4Packet::new_checked(ethernet.payload()) {
            Ok(packet) => packet.version() == 4 && packet.header_len() >= 20,
            Err(_) => false,
        },
        _ => true,
    }
}

/// Returns true unless a checksum of `frame` that `verified` does not cover is wrong: the
/// IPv4 header's, and TCP's, UDP's or ICMP's (whole datagrams only; the stack drops
/// fragments). Parts that do not parse are left to the stack, which drops them.
fn checksums_ok(frame: &[u8], verified: RxChecksums) -> bool {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return true;
    };
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return true;
    }
    let Ok(ip) = Ipv4Packet::new_checked(ethernet.payload()) else {
        return true;
    };
    if !verified.ipv4 && !ip.verify_checksum() {
        return false;
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return true;
    }
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    match ip.next_header() {
        IpProtocol::Tcp if !verified.l4 => {
            TcpPacket::new_checked(ip.payload()).map_or(true, |p| p.verify_checksum(&src, &dst))
        }
        IpProtocol::Udp if !verified.l4 => {
            UdpPacket::new_checked(ip.payload()).map_or(true, |p| p.verify_checksum(&src, &dst))
        }
        IpProtocol::Icmp => {
            Icmpv4Packet::new_checked(ip.payload()).map_or(true, |p| p.verify_checksum())
        }
        _ => true,
    }
}

/// A frame smoltcp built while the device was lending a received one.
struct Deferred {
    buffer: Vec<u8>,
    len: Option<usize>,
}

/// Wraps a [`NetDevice`] as a smoltcp device; frames stay in the device's buffers.
pub(crate) struct DeviceAdapter {
    device: RefCell<Box<dyn NetDevice>>,
    mtu: usize,
    deferred: RefCell<Deferred>,
    /// Malformed frames received since the stack last saw a good one or was told "none".
    skipped: Cell<usize>,
    counters: Cell<NetCounters>,
    /// Whether the device's interrupts are on (they are when it starts).
    interrupts_on: Cell<bool>,
}

impl DeviceAdapter {
    pub(crate) fn new(device: Box<dyn NetDevice>) -> DeviceAdapter {
        let mtu = device.mtu();
        DeviceAdapter {
            device: RefCell::new(device),
            mtu,
            deferred: RefCell::new(Deferred {
                buffer: vec![0; mtu + ETHERNET_HEADER_LEN],
                len: None,
            }),
            skipped: Cell::new(0),
            counters: Cell::new(NetCounters::default()),
            interrupts_on: Cell::new(true),
        }
    }

    /// Counts one poll of the stack that moved frames (`busy`) or none, and applies the
    /// NAPI rule: a busy poll turns the device's interrupts off (the loop polls again
    /// anyway), an idle one turns them back on before the loop may wait. Each switch is
    /// one call into the device, made only on a change. Returns true when a frame arrived
    /// between the idle poll and the re-arm: a device need not interrupt for it (virtio
    /// does not), so the loop must poll again before it waits.
    pub(crate) fn polled(&self, busy: bool) -> bool {
        self.count(|c| {
            c.polls += 1;
            c.busy_polls += u64::from(busy);
        });
        if busy != self.interrupts_on.get() {
            return false;
        }
        let mut device = self.device.borrow_mut();
        device.set_interrupts(!busy);
        self.interrupts_on.set(!busy);
        if busy {
            return false;
        }
        self.count(|c| c.interrupt_rearms += 1);
        device.rx_ready()
    }

    pub(crate) fn mac_address(&self) -> [u8; 6] {
        self.device.borrow().mac_address()
    }

    /// Ends the poll's batch of transmissions (see `NetDevice::flush`).
    pub(crate) fn flush(&mut self) {
        self.device.get_mut().flush();
    }

    /// Returns the frame counters.
    pub(crate) fn counters(&self) -> NetCounters {
        self.counters.get()
    }

    fn count(&self, update: impl FnOnce(&mut NetCounters)) {
        let mut counters = self.counters.get();
        update(&mut counters);
        self.counters.set(counters);
    }

    fn count_transmit(&self, result: Result<(), DeviceError>) {
        match result {
            Ok(()) => self.count(|c| c.tx_frames += 1),
            Err(_) => self.count(|c| c.tx_dropped += 1),
        }
    }

    /// Hands the deferred frame, if any, to the device.
    fn send_deferred(&self) {
        let mut deferred = self.deferred.borrow_mut();
        if let Some(len) = deferred.len.take() {
            let result = self.device.borrow_mut().transmit(&deferred.buffer[..len]);
            self.count_transmit(result);
        }
    }
}

/// Most malformed frames received in a row before `receive` reports nothing pending, so
/// a flood cannot keep the stack's poll from returning to the tasks.
const MAX_SKIPPED_PER_CALL: usize = 64;

impl phy::Device for DeviceAdapter {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        if self.skipped.get() >= MAX_SKIPPED_PER_CALL || !self.device.get_mut().rx_ready() {
            self.skipped.set(0);
            return None;
        }
        let adapter: &DeviceAdapter = self;
        Some((RxToken { adapter }, TxToken { adapter }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        Some(TxToken { adapter: self })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        // Received checksums are verified here, frame by frame, where the device did not
        // ([`checksums_ok`]); the stack only computes transmitted ones, TCP's and UDP's
        // only unless the device fills them in.
        let offload = self.device.borrow().checksum_offload();
        let transport = if offload.tx {
            Checksum::None
        } else {
            Checksum::Tx
        };
        let mut checksums = ChecksumCapabilities::default();
        checksums.ipv4 = Checksum::Tx;
        checksums.tcp = transport;
        checksums.udp = transport;
        checksums.icmpv4 = Checksum::Tx;
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + ETHERNET_HEADER_LEN;
        caps.checksum = checksums;
        caps
    }
}

/// Permission to receive one frame, lent by the device when the token is consumed.
pub(crate) struct RxToken<'a> {
    adapter: &'a DeviceAdapter,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let adapter = self.adapter;
        let mut f = Some(f);
        let mut result = None;
        let device_verifies = adapter.device.borrow().checksum_offload().rx;
        let lent =
            adapter
                .device
                .borrow_mut()
                .receive_with_checksums(&mut |frame, mut verified| {
                    if device_verifies {
                        verified = RxChecksums {
                            ipv4: true,
                            l4: true,
                        };
                    }
                    if !frame_is_well_formed(frame, adapter.mtu) {
                        adapter.count(|c| c.rx_malformed += 1);
                        adapter.skipped.set(adapter.skipped.get() + 1);
                    } else if !checksums_ok(frame, verified) {
                        adapter.count(|c| c.rx_bad_checksum += 1);
                        adapter.skipped.set(adapter.skipped.get() + 1);
                    } else {
                        if verified.l4 {
                            adapter.count(|c| c.rx_checksum_offloaded += 1);
                        }
                        adapter.count(|c| c.rx_frames += 1);
                        adapter.skipped.set(0);
                        if let Some(f) = f.take() {
                            result = Some(f(frame));
                        }
                    }
                });
        if lent == Err(DeviceError::Truncated) {
            adapter.count(|c| c.rx_malformed += 1);
            adapter.skipped.set(adapter.skipped.get() + 1);
        }
        adapter.send_deferred();
        match (result, f) {
            (Some(result), _) => result,
            // No acceptable frame: smoltcp skips an empty one.
            (None, Some(f)) => f(&[]),
            (None, None) => unreachable!("the stack's closure ran without a result"),
        }
    }
}

/// Permission to transmit one frame, built in the device's transmit buffer.
pub(crate) struct TxToken<'a> {
    adapter: &'a DeviceAdapter,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let adapter = self.adapter;
        let mut f = Some(f);
        let mut result = None;
        let sent = match adapter.device.try_borrow_mut() {
            Ok(mut device) => device.transmit_with(len, &mut |buffer| {
                if let Some(f) = f.take() {
                    result = Some(f(buffer));
                }
            }),
            // The device is lending a received frame: build this one aside.
            Err(_) => {
                let mut deferred = adapter.deferred.borrow_mut();
                if deferred.buffer.len() < len {
                    deferred.buffer.resize(len, 0);
                }
                deferred.len = Some(len);
                let f = f.take().expect("the closure is taken once");
                return f(&mut deferred.buffer[..len]);
            }
        };
        adapter.count_transmit(sent);
        match (result, f) {
            (Some(result), _) => result,
            // Refused: smoltcp still builds the frame; it is dropped (TCP retransmits).
            (None, Some(f)) => {
                let mut deferred = adapter.deferred.borrow_mut();
                if deferred.buffer.len() < len {
                    deferred.buffer.resize(len, 0);
                }
                f(&mut deferred.buffer[..len])
            }
            (None, None) => unreachable!("the stack's closure ran without a result"),
        }
    }
}

#[cfg(test)]
mod adapter_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_frames_are_malformed() {
        assert!(!frame_is_well_formed(&[0; 10], 1500));
        assert!(!frame_is_well_formed(&vec![0; 1600], 1500));
        // ARP-typed frame of minimum size passes the frame checks.
        let mut frame = [0u8; 60];
        frame[12] = 0x08;
        frame[13] = 0x06;
        assert!(frame_is_well_formed(&frame, 1500));
        // IPv4-typed frame with a garbage header is malformed.
        frame[13] = 0x00;
        assert!(!frame_is_well_formed(&frame, 1500));
    }
}
