//! Checksum offload through the `virtio_net_hdr` that precedes every frame (virtio 1.1,
//! 5.1.6): `VIRTIO_NET_F_CSUM` lets the driver hand over TCP/UDP segments whose checksum
//! field holds only the pseudo-header sum (`NEEDS_CSUM`, the device completes it), and
//! `VIRTIO_NET_F_GUEST_CSUM` lets the device hand over frames it vouches for (`DATA_VALID`)
//! or whose checksum is partial because they came from the host's own stack
//! (`NEEDS_CSUM`). `virtio-drivers` negotiates neither and always writes an empty header;
//! [`crate::transport::Negotiated`] asks for both and this module reads and writes the
//! header in the driver's own buffers.

#![deny(unsafe_code)]

use netdev::RxChecksums;

/// Feature bit: the device completes partial checksums of transmitted frames.
pub const CSUM: u64 = 1 << 0;
/// Feature bit: the driver accepts frames with partial or device-checked checksums.
pub const GUEST_CSUM: u64 = 1 << 1;
/// Header flag: the checksum from `csum_start` to the end is partial.
pub const NEEDS_CSUM: u8 = 1;
/// Header flag: the device verified the frame's checksum.
pub const DATA_VALID: u8 = 2;
/// Bytes of the header with `VIRTIO_F_VERSION_1` (flags, gso_type, hdr_len, gso_size,
/// csum_start, csum_offset, num_buffers).
pub const HEADER_LEN: usize = 12;

const ETHERNET_LEN: usize = 14;
const TCP: u8 = 6;
const UDP: u8 = 17;

/// What a received frame's header (`GUEST_CSUM` negotiated) says was checked: the
/// TCP/UDP checksum when the device vouches for it or it is partial (the frame came from
/// the host's stack, which leaves the rest to the receiver's hardware); never the IPv4
/// header's (cheap, and always complete). Without `GUEST_CSUM`, nothing.
pub fn rx_checksums(header: &[u8], guest_csum: bool) -> RxChecksums {
    let flags = header.first().copied().unwrap_or(0);
    RxChecksums {
        ipv4: false,
        l4: guest_csum && flags & (NEEDS_CSUM | DATA_VALID) != 0,
    }
}

/// The ones' complement sum of `data` as big-endian 16-bit words, not folded.
fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Prepares `frame` (an Ethernet frame the stack built with its TCP/UDP checksum field left
/// to the device) for `NEEDS_CSUM`: writes the pseudo-header sum into the checksum field
/// and returns `(csum_start, csum_offset)` for the header. `None` (frame untouched) for
/// anything but a whole, well-formed IPv4 TCP or UDP datagram: the stack fills those
/// checksums itself.
pub fn tx_partial(frame: &mut [u8]) -> Option<(u16, u16)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(ETHERNET_LEN..)?;
    let version_ihl = *ip.first()?;
    let header_len = usize::from(version_ihl & 0x0F) * 4;
    if version_ihl >> 4 != 4 || header_len < 20 || ip.len() < header_len {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let fragment = u16::from_be_bytes([ip[6], ip[7]]);
    if fragment & 0x3FFF != 0 || total_len < header_len || total_len > ip.len() {
        return None;
    }
    let protocol = ip[9];
    let offset = match protocol {
        TCP => 16,
        UDP => 6,
        _ => return None,
    };
    let l4_len = total_len - header_len;
    if l4_len < offset + 2 {
        return None;
    }
    let pseudo = sum16(&ip[12..20]) + u32::from(protocol) + l4_len as u32;
    let start = ETHERNET_LEN + header_len;
    frame[start + offset..start + offset + 2].copy_from_slice(&fold(pseudo).to_be_bytes());
    Some((u16::try_from(start).ok()?, offset as u16))
}

/// Writes a transmit header: `NEEDS_CSUM` with `partial`'s `(csum_start, csum_offset)`, or
/// an empty one.
pub fn write_tx_header(header: &mut [u8], partial: Option<(u16, u16)>) {
    let header = &mut header[..HEADER_LEN];
    header.fill(0);
    if let Some((start, offset)) = partial {
        header[0] = NEEDS_CSUM;
        header[6..8].copy_from_slice(&start.to_le_bytes());
        header[8..10].copy_from_slice(&offset.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// An IPv4 TCP segment 10.0.2.15:5201 -> 10.0.2.2:40000 with `payload`, checksum 0.
    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[
            0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
        ]);
        let total = (20 + 20 + payload.len()) as u16;
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            TCP,
            0,
            0,
        ]);
        f.extend_from_slice(&[10, 0, 2, 15, 10, 0, 2, 2]);
        f.extend_from_slice(&[
            0x14, 0x51, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 4, 0,
        ]);
        f.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        f.extend_from_slice(payload);
        f
    }

    /// What the device does with a partial checksum: the sum from `start` on, complemented.
    fn complete(frame: &mut [u8], start: usize, offset: usize) {
        let sum = !fold(sum16(&frame[start..]));
        frame[start + offset..start + offset + 2].copy_from_slice(&sum.to_be_bytes());
    }

    /// The full TCP checksum the stack would have written.
    fn full_checksum(frame: &[u8]) -> u16 {
        let l4 = &frame[34..];
        let pseudo = sum16(&frame[26..34]) + u32::from(TCP) + l4.len() as u32;
        let mut zeroed = l4.to_vec();
        zeroed[16] = 0;
        zeroed[17] = 0;
        !fold(pseudo + sum16(&zeroed))
    }

    #[test]
    fn a_partial_checksum_completed_by_the_device_is_the_full_one() {
        for payload in [&b""[..], b"odd", b"tessera!", &[0xFF; 1000]] {
            let mut frame = tcp_frame(payload);
            let expected = full_checksum(&frame);
            assert_eq!(tx_partial(&mut frame), Some((34, 16)));
            complete(&mut frame, 34, 16);
            assert_eq!(
                u16::from_be_bytes([frame[50], frame[51]]),
                expected,
                "{payload:?}"
            );
        }
    }

    #[test]
    fn other_frames_are_left_to_the_stack() {
        let mut arp = tcp_frame(b"x");
        arp[13] = 0x06;
        let mut fragment = tcp_frame(b"x");
        fragment[20] = 0x20; // more fragments
        let mut icmp = tcp_frame(b"x");
        icmp[23] = 1;
        let mut short = tcp_frame(b"x");
        short[17] = 200; // total length past the frame
        let mut options = tcp_frame(b"x");
        options[14] = 0x44; // header length 16
        for mut frame in [
            arp,
            fragment,
            icmp,
            short,
            options,
            Vec::new(),
            std::vec![0; 20],
        ] {
            let before = frame.clone();
            assert_eq!(tx_partial(&mut frame), None);
            assert_eq!(frame, before);
        }
    }

    #[test]
    fn headers_say_what_was_checked() {
        let mut header = [0xAAu8; HEADER_LEN];
        write_tx_header(&mut header, Some((34, 16)));
        assert_eq!(header, [1, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0]);
        write_tx_header(&mut header, None);
        assert_eq!(header, [0; HEADER_LEN]);
        let l4 = |flags: u8, negotiated| rx_checksums(&[flags, 0, 0], negotiated).l4;
        assert!(l4(DATA_VALID, true) && l4(NEEDS_CSUM, true));
        assert!(!l4(0, true) && !l4(DATA_VALID, false));
        assert!(!rx_checksums(&[DATA_VALID], true).ipv4);
    }
}
