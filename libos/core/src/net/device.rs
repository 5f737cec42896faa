//! The network device interface drivers implement, and its adapter to smoltcp.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetFrame, EthernetProtocol, Ipv4Packet};

/// Length of an Ethernet header (no VLAN tag, no FCS).
pub const ETHERNET_HEADER_LEN: usize = 14;

/// Why a [`NetDevice`] could not receive or transmit a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// Nothing to receive, or no room to transmit, right now.
    WouldBlock,
    /// A received frame did not fit the buffer and was dropped.
    Truncated,
    /// The device failed (link down, I/O error); the frame is lost.
    Failed,
}

/// Checksum work the device does itself, so the stack can skip it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChecksumOffload {
    /// The device verifies IPv4/TCP/UDP checksums of received frames and drops bad ones.
    pub rx: bool,
    /// The device fills in IPv4/TCP/UDP checksums of transmitted frames.
    pub tx: bool,
}

/// An Ethernet device: e1000e, virtio-net, a TAP device, an in-process wire.
///
/// Frames are whole Ethernet frames without FCS. Both calls are non-blocking; the
/// platform's [`crate::Pal::wait_until`] is where the library OS waits for the device.
pub trait NetDevice {
    /// Returns the device's MAC address.
    fn mac_address(&self) -> [u8; 6];

    /// Returns the largest IP packet the device carries (Ethernet payload), e.g. 1500.
    fn mtu(&self) -> usize;

    /// Returns the checksum work the device does itself (none by default).
    fn checksum_offload(&self) -> ChecksumOffload {
        ChecksumOffload::default()
    }

    /// Copies the next received frame into `buffer` and returns its length.
    ///
    /// Fails with `WouldBlock` when no frame is pending, `Truncated` when the frame was
    /// larger than `buffer` (it is dropped), `Failed` on a device error.
    fn receive(&mut self, buffer: &mut [u8]) -> Result<usize, DeviceError>;

    /// Queues `frame` for transmission.
    ///
    /// Fails with `WouldBlock` when the transmit queue is full (the frame is not sent;
    /// TCP retransmits it) or `Failed` on a device error.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), DeviceError>;
}

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

/// Wraps a [`NetDevice`] as a smoltcp device, with one receive and one transmit buffer.
pub(crate) struct DeviceAdapter {
    device: Box<dyn NetDevice>,
    mtu: usize,
    rx_buffer: Vec<u8>,
    tx_buffer: Vec<u8>,
    pub(crate) counters: NetCounters,
}

impl DeviceAdapter {
    pub(crate) fn new(device: Box<dyn NetDevice>) -> DeviceAdapter {
        let mtu = device.mtu();
        let frame_max = mtu + ETHERNET_HEADER_LEN;
        DeviceAdapter {
            device,
            mtu,
            rx_buffer: vec![0; frame_max],
            tx_buffer: vec![0; frame_max],
            counters: NetCounters::default(),
        }
    }

    pub(crate) fn mac_address(&self) -> [u8; 6] {
        self.device.mac_address()
    }
}

/// Most malformed frames skipped in one `receive` call, so a flood cannot starve tasks.
const MAX_SKIPPED_PER_CALL: usize = 64;

impl phy::Device for DeviceAdapter {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        for _ in 0..MAX_SKIPPED_PER_CALL {
            match self.device.receive(&mut self.rx_buffer) {
                Ok(len)
                    if len <= self.rx_buffer.len()
                        && frame_is_well_formed(&self.rx_buffer[..len], self.mtu) =>
                {
                    self.counters.rx_frames += 1;
                    let rx = RxToken {
                        frame: &self.rx_buffer[..len],
                    };
                    let tx = TxToken {
                        device: &mut *self.device,
                        buffer: &mut self.tx_buffer,
                        counters: &mut self.counters,
                    };
                    return Some((rx, tx));
                }
                Ok(_) | Err(DeviceError::Truncated) => self.counters.rx_malformed += 1,
                Err(DeviceError::WouldBlock) | Err(DeviceError::Failed) => return None,
            }
        }
        None
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            device: &mut *self.device,
            buffer: &mut self.tx_buffer,
            counters: &mut self.counters,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let offload = self.device.checksum_offload();
        let checksum = match (offload.rx, offload.tx) {
            (false, false) => Checksum::Both,
            (true, false) => Checksum::Tx,
            (false, true) => Checksum::Rx,
            (true, true) => Checksum::None,
        };
        let mut checksums = ChecksumCapabilities::default();
        checksums.ipv4 = checksum;
        checksums.tcp = checksum;
        checksums.udp = checksum;
        checksums.icmpv4 = checksum;
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + ETHERNET_HEADER_LEN;
        caps.checksum = checksums;
        caps
    }
}

/// A received frame, borrowed from the adapter's receive buffer.
pub(crate) struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

/// Permission to transmit one frame, built in the adapter's transmit buffer.
pub(crate) struct TxToken<'a> {
    device: &'a mut dyn NetDevice,
    buffer: &'a mut Vec<u8>,
    counters: &'a mut NetCounters,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if self.buffer.len() < len {
            self.buffer.resize(len, 0);
        }
        let result = f(&mut self.buffer[..len]);
        match self.device.transmit(&self.buffer[..len]) {
            Ok(()) => self.counters.tx_frames += 1,
            Err(_) => self.counters.tx_dropped += 1,
        }
        result
    }
}

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
