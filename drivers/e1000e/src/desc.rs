//! Legacy receive and transmit descriptors (16 bytes each), read and written as 32-bit
//! words through a [`DmaRegion`].
//!
//! Layout of both kinds: bytes 0..8 buffer address; receive: 8..10 length, 10..12 checksum,
//! 12 status, 13 errors, 14..16 special; transmit: 8..10 length, 10 CSO, 11 command,
//! 12 status, 13 CSS, 14..16 special.

use crate::DmaRegion;

/// Size of one descriptor in bytes.
pub const DESCRIPTOR_SIZE: usize = 16;

/// Receive status: descriptor done.
pub const RX_STATUS_DD: u8 = 1 << 0;
/// Receive status: end of packet.
pub const RX_STATUS_EOP: u8 = 1 << 1;
/// Receive status: ignore the checksum indications.
pub const RX_STATUS_IXSM: u8 = 1 << 2;
/// Receive status: the TCP/UDP checksum was calculated (and is good unless `TCPE`).
pub const RX_STATUS_TCPCS: u8 = 1 << 5;
/// Receive status: the IPv4 header checksum was calculated (good unless `IPE`).
pub const RX_STATUS_IPCS: u8 = 1 << 6;
/// Receive errors: TCP/UDP checksum error.
pub const RX_ERROR_TCPE: u8 = 1 << 5;
/// Receive errors: IPv4 header checksum error.
pub const RX_ERROR_IPE: u8 = 1 << 6;
/// Receive errors: CRC, symbol, sequence, carrier extension, TCP/UDP checksum, IP checksum
/// and data errors (every bit of the errors byte except the reserved bit 3).
pub const RX_ERRORS_ANY: u8 = 0xF7;

/// Transmit command: end of packet.
pub const TX_CMD_EOP: u8 = 1 << 0;
/// Transmit command: insert the FCS.
pub const TX_CMD_IFCS: u8 = 1 << 1;
/// Transmit command: report status (write `DD` back when done).
pub const TX_CMD_RS: u8 = 1 << 3;
/// Transmit status: descriptor done.
pub const TX_STATUS_DD: u8 = 1 << 0;

/// The fields of a receive descriptor the driver acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxStatus {
    /// Bytes the device wrote into the buffer.
    pub length: u16,
    /// Status bits (`RX_STATUS_*`).
    pub status: u8,
    /// Error bits.
    pub errors: u8,
}

fn offset(index: usize) -> usize {
    index * DESCRIPTOR_SIZE
}

/// Writes a receive descriptor that hands the buffer at `buffer` to the device.
pub fn rx_arm(ring: &mut impl DmaRegion, index: usize, buffer: u64) {
    let at = offset(index);
    ring.write_u32(at, buffer as u32);
    ring.write_u32(at + 4, (buffer >> 32) as u32);
    ring.write_u32(at + 8, 0);
    ring.write_u32(at + 12, 0);
}

/// Reads the written-back fields of a receive descriptor.
pub fn rx_status(ring: &impl DmaRegion, index: usize) -> RxStatus {
    let at = offset(index);
    let word3 = ring.read_u32(at + 12);
    let status = word3 as u8;
    // Read the length only after the status: the device writes status last.
    core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
    let word2 = ring.read_u32(at + 8);
    RxStatus {
        length: word2 as u16,
        status,
        errors: (word3 >> 8) as u8,
    }
}

/// Reads only the status byte of a receive descriptor.
pub fn rx_done(ring: &impl DmaRegion, index: usize) -> bool {
    ring.read_u32(offset(index) + 12) as u8 & RX_STATUS_DD != 0
}

/// Writes a transmit descriptor for `length` bytes at `buffer` with command `command`;
/// clears its status.
pub fn tx_write(ring: &mut impl DmaRegion, index: usize, buffer: u64, length: u16, command: u8) {
    let at = offset(index);
    ring.write_u32(at, buffer as u32);
    ring.write_u32(at + 4, (buffer >> 32) as u32);
    ring.write_u32(at + 8, u32::from(length) | (u32::from(command) << 24));
    ring.write_u32(at + 12, 0);
}

/// Whether the device has written `DD` back into a transmit descriptor.
pub fn tx_done(ring: &impl DmaRegion, index: usize) -> bool {
    ring.read_u32(offset(index) + 12) as u8 & TX_STATUS_DD != 0
}

/// Clears a transmit descriptor (length, command and status zero).
pub fn tx_clear(ring: &mut impl DmaRegion, index: usize) {
    let at = offset(index);
    ring.write_u32(at + 8, 0);
    ring.write_u32(at + 12, 0);
}
