//! The network device interface: what an Ethernet driver (e1000e, virtio-net, a TAP
//! device, an in-process wire) offers whoever moves its frames (the library OS's stack,
//! a network service, a test).
//!
//! It sits below both sides: drivers implement [`NetDevice`], the library OS drives it,
//! and neither imports the other. It needs nothing but `core`.
//!
//! Frames are whole Ethernet frames without FCS. Every call is non-blocking; waiting for
//! the device is the platform's business. The device lends its own buffers
//! ([`NetDevice::receive_with`], [`NetDevice::transmit_with`]) so a frame need not be
//! copied between the device's memory and the stack; [`NetDevice::receive`] and
//! [`NetDevice::transmit`] copy, for callers that hold their own buffers.
//!
//! Invariants every implementation keeps:
//! - a `*_with` call that returns `Ok` called its closure exactly once; a
//!   [`NetDevice::receive_with`] that fails did not call it, and a
//!   [`NetDevice::transmit_with`] that fails did not call it unless the device learnt of
//!   the failure only when handing the built frame over (which is then lost);
//! - a lent buffer is the device's only while the closure runs: the device does not
//!   touch a receive buffer until the closure returns, and sends a transmit buffer only
//!   after it returns;
//! - nothing a peer or the hardware sends makes an implementation panic.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Length of an Ethernet header (no VLAN tag, no FCS).
pub const ETHERNET_HEADER_LEN: usize = 14;

/// Why a [`NetDevice`] could not receive or transmit a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// Nothing to receive, or no room to transmit, right now.
    WouldBlock,
    /// A received frame did not fit the buffer and was dropped.
    Truncated,
    /// The device failed (link down, I/O error) or refused the frame's length; the frame
    /// is lost.
    Failed,
}

/// Checksum work the device does itself, so the stack can skip it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChecksumOffload {
    /// The device verifies IPv4/TCP/UDP checksums of received frames and drops bad ones.
    pub rx: bool,
    /// The device fills in TCP/UDP checksums of transmitted frames (the stack leaves them;
    /// it always fills in IPv4 header and ICMP checksums).
    pub tx: bool,
}

/// What the device verified of one received frame (receive checksum offload). A frame
/// whose checksum the device found bad is not lent at all (the device drops and counts
/// it); a field that is false means "not checked": the stack verifies that part itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxChecksums {
    /// The device verified the IPv4 header checksum.
    pub ipv4: bool,
    /// The device verified the TCP or UDP checksum.
    pub l4: bool,
}

/// An Ethernet device. Object-safe: the stack holds it as `Box<dyn NetDevice>`.
pub trait NetDevice {
    /// Returns the device's MAC address.
    fn mac_address(&self) -> [u8; 6];

    /// Returns the largest IP packet the device carries (Ethernet payload), e.g. 1500.
    fn mtu(&self) -> usize;

    /// Returns the checksum work the device does itself (none by default).
    fn checksum_offload(&self) -> ChecksumOffload {
        ChecksumOffload::default()
    }

    /// Turns the device's interrupts on or off. A poll loop turns them off while it finds
    /// frames and back on when it finds none (NAPI-style), so a busy device interrupts
    /// once per burst; an event raised while they were off fires when they come back on.
    /// Devices without such control ignore it (the default).
    fn set_interrupts(&mut self, on: bool) {
        let _ = on;
    }

    /// Returns true when something is waiting to be received: the next
    /// [`NetDevice::receive_with`] will lend a frame, or find that what was waiting was
    /// an entry the device drops (it then fails with `WouldBlock`). False means it would
    /// fail with `WouldBlock`.
    fn rx_ready(&mut self) -> bool;

    /// Lends the next received frame to `f`, in the device's own buffer where it can; the
    /// buffer goes back to the device when `f` returns.
    ///
    /// Errors (`f` not called): `WouldBlock` when no frame is pending, `Truncated` when
    /// the frame did not fit the device's buffer (it is dropped), `Failed` on a device
    /// error.
    fn receive_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<(), DeviceError>;

    /// As [`NetDevice::receive_with`], and tells `f` which checksums of the frame the
    /// device verified. The default verified none.
    fn receive_with_checksums(
        &mut self,
        f: &mut dyn FnMut(&[u8], RxChecksums),
    ) -> Result<(), DeviceError> {
        self.receive_with(&mut |frame| f(frame, RxChecksums::default()))
    }

    /// Lends `f` a transmit buffer of exactly `len` bytes, in the device's own memory
    /// where it can; `f` writes a whole frame into it, which is queued for transmission
    /// when `f` returns.
    ///
    /// Errors (the frame is not sent; `f` is not called unless the device learns of the
    /// error only when handing the frame over, as a TAP device's `write` does):
    /// `WouldBlock` when the transmit queue is full (TCP retransmits what is not sent),
    /// `Failed` when `len` is 0 or more than the device carries, or on a device error.
    fn transmit_with(
        &mut self,
        len: usize,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError>;

    /// Ends a batch of transmissions: frames queued since the last call are handed over now
    /// if the device holds them back to hand over in batches (one doorbell or signal per
    /// batch). The stack calls it after every poll. Nothing by default (the device hands
    /// each frame over at once).
    fn flush(&mut self) {}

    /// Copies the next received frame into `buffer` and returns its length.
    ///
    /// Errors: `WouldBlock` when no frame is pending, `Truncated` when the frame was
    /// larger than `buffer` (it is dropped), `Failed` on a device error.
    fn receive(&mut self, buffer: &mut [u8]) -> Result<usize, DeviceError> {
        let mut copied = Err(DeviceError::Truncated);
        self.receive_with(&mut |frame| {
            if let Some(target) = buffer.get_mut(..frame.len()) {
                target.copy_from_slice(frame);
                copied = Ok(frame.len());
            }
        })?;
        copied
    }

    /// Copies `frame` into a transmit buffer and queues it.
    ///
    /// Errors: as [`NetDevice::transmit_with`] with `frame.len()`.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), DeviceError> {
        self.transmit_with(frame.len(), &mut |buffer| buffer.copy_from_slice(frame))
    }
}
