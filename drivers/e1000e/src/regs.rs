//! Register offsets (from BAR0) and bit fields of the 82574L used by this driver.

/// Device control.
pub const CTRL: usize = 0x0000;
/// Device status.
pub const STATUS: usize = 0x0008;
/// Extended device control.
pub const CTRL_EXT: usize = 0x0018;
/// Interrupt cause read (reading clears it without MSI-X).
pub const ICR: usize = 0x00C0;
/// Interrupt throttling rate (256 ns units between interrupts).
pub const ITR: usize = 0x00C4;
/// Interrupt cause set.
pub const ICS: usize = 0x00C8;
/// Interrupt mask set (write 1 to enable a cause).
pub const IMS: usize = 0x00D0;
/// Interrupt mask clear (write 1 to disable a cause).
pub const IMC: usize = 0x00D8;
/// Extended interrupt auto clear: causes cleared from `ICR` when their MSI-X message is
/// sent (the driver leaves it 0 and clears `ICR` itself).
pub const EIAC: usize = 0x00DC;
/// Interrupt vector allocation (MSI-X): which vector each cause raises.
pub const IVAR: usize = 0x00E4;
/// Extended interrupt throttling of MSI-X vector 0 (256 ns units; vector n at `+ 4 * n`).
pub const EITR0: usize = 0x00E8;
/// Receive control.
pub const RCTL: usize = 0x0100;
/// Transmit control.
pub const TCTL: usize = 0x0400;
/// Transmit inter-packet gap.
pub const TIPG: usize = 0x0410;
/// Receive descriptor ring base, low 32 bits.
pub const RDBAL: usize = 0x2800;
/// Receive descriptor ring base, high 32 bits.
pub const RDBAH: usize = 0x2804;
/// Receive descriptor ring length in bytes (a multiple of 128).
pub const RDLEN: usize = 0x2808;
/// Receive descriptor head.
pub const RDH: usize = 0x2810;
/// Receive descriptor tail.
pub const RDT: usize = 0x2818;
/// Receive interrupt packet delay timer.
pub const RDTR: usize = 0x2820;
/// Receive interrupt absolute delay timer.
pub const RADV: usize = 0x282C;
/// Transmit descriptor ring base, low 32 bits.
pub const TDBAL: usize = 0x3800;
/// Transmit descriptor ring base, high 32 bits.
pub const TDBAH: usize = 0x3804;
/// Transmit descriptor ring length in bytes (a multiple of 128).
pub const TDLEN: usize = 0x3808;
/// Transmit descriptor head.
pub const TDH: usize = 0x3810;
/// Transmit descriptor tail.
pub const TDT: usize = 0x3818;
/// Transmit interrupt delay value.
pub const TIDV: usize = 0x3820;
/// Transmit absolute interrupt delay value.
pub const TADV: usize = 0x382C;
/// Receive checksum control.
pub const RXCSUM: usize = 0x5000;
/// Receive filter control (descriptor format; must be written before `RCTL`).
pub const RFCTL: usize = 0x5008;
/// Multicast table array: 128 32-bit entries.
pub const MTA: usize = 0x5200;
/// Number of entries in the multicast table array.
pub const MTA_ENTRIES: usize = 128;
/// Receive address 0, low (MAC bytes 0..4).
pub const RAL0: usize = 0x5400;
/// Receive address 0, high (MAC bytes 4..6 and the address-valid bit).
pub const RAH0: usize = 0x5404;

/// Statistics (clear on read): CRC errors.
pub const CRCERRS: usize = 0x4000;
/// Statistics: missed packets (receive FIFO full).
pub const MPC: usize = 0x4010;
/// Statistics: good packets received.
pub const GPRC: usize = 0x4074;
/// Statistics: good packets transmitted.
pub const GPTC: usize = 0x4080;
/// Statistics: good octets received, low (read before the high half).
pub const GORCL: usize = 0x4088;
/// Statistics: good octets received, high.
pub const GORCH: usize = 0x408C;
/// Statistics: good octets transmitted, low.
pub const GOTCL: usize = 0x4090;
/// Statistics: good octets transmitted, high.
pub const GOTCH: usize = 0x4094;
/// Statistics: receive no buffers (the ring was full).
pub const RNBC: usize = 0x40A0;

/// CTRL: full duplex.
pub const CTRL_FD: u32 = 1 << 0;
/// CTRL: auto-speed detection enable.
pub const CTRL_ASDE: u32 = 1 << 5;
/// CTRL: set link up.
pub const CTRL_SLU: u32 = 1 << 6;
/// CTRL: device reset (self-clearing).
pub const CTRL_RST: u32 = 1 << 26;
/// CTRL bits the driver clears when it sets the link up, whatever survived the reset:
/// GIO master disable (2), link reset (3), invert loss-of-signal (7), forced speed (11)
/// and duplex (12), VLAN mode (30), PHY reset (31), and `RST` itself.
pub const CTRL_CLEAR_AT_INIT: u32 =
    (1 << 2) | (1 << 3) | (1 << 7) | (1 << 11) | (1 << 12) | (1 << 30) | (1 << 31) | CTRL_RST;

/// CTRL_EXT: PBA support: with MSI-X, unmasking a cause in `IMS` clears its vector's
/// pending bit (the datasheet asks for it whenever MSI-X is used).
pub const CTRL_EXT_PBA_SUPPORT: u32 = 1 << 31;

/// IVAR: a 4-bit field's "allocation valid" bit (the low three bits are the vector).
pub const IVAR_VALID: u32 = 0x8;
/// IVAR: shift of the receive queue 0 field.
pub const IVAR_RXQ0_SHIFT: u32 = 0;
/// IVAR: shift of the transmit queue 0 field.
pub const IVAR_TXQ0_SHIFT: u32 = 8;
/// IVAR: shift of the "other causes" field (link status and the rest).
pub const IVAR_OTHER_SHIFT: u32 = 16;
/// IVAR: raise the transmit interrupt on every descriptor write-back.
pub const IVAR_TX_EVERY_WRITEBACK: u32 = 1 << 31;

/// The IVAR value that sends every cause (receive, transmit, other) to MSI-X `vector`
/// (0..=4), transmit interrupts on every write-back.
pub const fn ivar_all_to(vector: u32) -> u32 {
    let field = IVAR_VALID | (vector & 0x7);
    (field << IVAR_RXQ0_SHIFT)
        | (field << IVAR_TXQ0_SHIFT)
        | (field << IVAR_OTHER_SHIFT)
        | IVAR_TX_EVERY_WRITEBACK
}

/// STATUS: link up.
pub const STATUS_LU: u32 = 1 << 1;

/// Interrupt cause: transmit descriptor written back.
pub const INT_TXDW: u32 = 1 << 0;
/// Interrupt cause: link status change.
pub const INT_LSC: u32 = 1 << 2;
/// Interrupt cause: receive descriptors below the minimum threshold.
pub const INT_RXDMT0: u32 = 1 << 4;
/// Interrupt cause: receiver overrun.
pub const INT_RXO: u32 = 1 << 6;
/// Interrupt cause: receive timer (a frame was received).
pub const INT_RXT0: u32 = 1 << 7;
/// Interrupt cause (MSI-X): receive queue 0.
pub const INT_RXQ0: u32 = 1 << 20;
/// Interrupt cause (MSI-X): transmit queue 0.
pub const INT_TXQ0: u32 = 1 << 22;
/// Interrupt cause (MSI-X): other causes.
pub const INT_OTHER: u32 = 1 << 24;
/// ICR: the interrupt line is asserted.
pub const INT_ASSERTED: u32 = 1 << 31;
/// The causes enabled in MSI-X mode: QEMU's model raises `RXQ0`/`TXQ0` instead of
/// `RXT0`/`TXDW` there, and `OTHER` with the link change.
pub const MSIX_INTERRUPTS: u32 = INT_RXQ0 | INT_TXQ0 | INT_OTHER | INT_LSC;
/// Every interrupt cause (for `IMC`).
pub const INT_ALL: u32 = 0xFFFF_FFFF;

/// RXCSUM: IPv4 header checksum offload (the device checks it and reports `IPCS`/`IPE`).
pub const RXCSUM_IPOFLD: u32 = 1 << 8;
/// RXCSUM: TCP/UDP checksum offload (reports `TCPCS`/`TCPE`).
pub const RXCSUM_TUOFLD: u32 = 1 << 9;

/// RCTL: receiver enable.
pub const RCTL_EN: u32 = 1 << 1;
/// RCTL: accept broadcast.
pub const RCTL_BAM: u32 = 1 << 15;
/// RCTL: buffer size field (bits 16..=17); 00 with `BSEX` clear is 2048 bytes.
pub const RCTL_BSIZE_2048: u32 = 0 << 16;
/// RCTL: strip the Ethernet CRC.
pub const RCTL_SECRC: u32 = 1 << 26;

/// RFCTL: extended status (extended descriptor formats); clear for legacy descriptors.
pub const RFCTL_EXSTEN: u32 = 1 << 15;

/// TCTL: transmitter enable.
pub const TCTL_EN: u32 = 1 << 1;
/// TCTL: pad short packets.
pub const TCTL_PSP: u32 = 1 << 3;
/// TCTL: collision threshold 15.
pub const TCTL_CT: u32 = 0x0F << 4;
/// TCTL: collision distance 63 (full duplex).
pub const TCTL_COLD: u32 = 0x3F << 12;

/// TIPG value for copper links (IPGT 8, IPGR1 8, IPGR2 6).
pub const TIPG_DEFAULT: u32 = 0x0060_2008;

/// RAH: address valid.
pub const RAH_AV: u32 = 1 << 31;
