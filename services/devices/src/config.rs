//! PCI configuration space access: the [`ConfigSpace`] trait and x86 configuration mechanism #1
//! over I/O ports ([`PortConfigSpace`]).

use core::fmt;

/// Offsets and bits of the configuration header this crate uses.
pub mod reg {
    /// Vendor id (16 bits); `0xFFFF` where no function answers.
    pub const VENDOR_ID: u16 = 0x00;
    /// Device id (16 bits).
    pub const DEVICE_ID: u16 = 0x02;
    /// Command register (16 bits).
    pub const COMMAND: u16 = 0x04;
    /// Status register (16 bits).
    pub const STATUS: u16 = 0x06;
    /// Revision id (8 bits).
    pub const REVISION: u16 = 0x08;
    /// Programming interface (8 bits).
    pub const PROG_IF: u16 = 0x09;
    /// Subclass (8 bits).
    pub const SUBCLASS: u16 = 0x0A;
    /// Base class (8 bits).
    pub const CLASS: u16 = 0x0B;
    /// Header type (8 bits): layout in bits 0..=6, multifunction in bit 7.
    pub const HEADER_TYPE: u16 = 0x0E;
    /// The first base address register; each is 4 bytes.
    pub const BAR0: u16 = 0x10;
    /// A PCI-to-PCI bridge's secondary bus number (8 bits).
    pub const SECONDARY_BUS: u16 = 0x19;
    /// Pointer to the first capability (8 bits), for header layouts 0 and 1.
    pub const CAPABILITIES: u16 = 0x34;
    /// Interrupt line the firmware routed INTx to (8 bits); `0xFF` for none.
    pub const INTERRUPT_LINE: u16 = 0x3C;
    /// Interrupt pin (8 bits): 0 none, 1..=4 INTA..INTD.
    pub const INTERRUPT_PIN: u16 = 0x3D;

    /// Command: respond to I/O space accesses.
    pub const COMMAND_IO: u16 = 1 << 0;
    /// Command: respond to memory space accesses.
    pub const COMMAND_MEMORY: u16 = 1 << 1;
    /// Command: may master the bus (DMA, and MSI writes).
    pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
    /// Command: INTx assertion disabled.
    pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
    /// Status: the function has a capability list.
    pub const STATUS_CAPABILITIES: u16 = 1 << 4;

    /// Capability id of MSI.
    pub const CAP_MSI: u8 = 0x05;
    /// Capability id of MSI-X.
    pub const CAP_MSIX: u8 = 0x11;
}

/// The first I/O port of mechanism #1: the 32-bit configuration address register.
pub const CONFIG_ADDRESS_PORT: u16 = 0xCF8;
/// The first port of the configuration data window (`0xCFC..=0xCFF`).
pub const CONFIG_DATA_PORT: u16 = 0xCFC;
/// The last I/O port mechanism #1 uses; no driver may be granted `0xCF8..=0xCFF`.
pub const CONFIG_LAST_PORT: u16 = 0xCFF;

/// A PCI function's location: bus, device (0..=31) and function (0..=7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    /// Bus number.
    pub bus: u8,
    /// Device number on the bus, 0..=31.
    pub device: u8,
    /// Function number in the device, 0..=7.
    pub function: u8,
}

impl PciAddress {
    /// The address `bus:device.function`, or `None` if `device > 31` or `function > 7`.
    pub fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        (device < 32 && function < 8).then_some(Self {
            bus,
            device,
            function,
        })
    }

    /// The mechanism #1 configuration address (enable bit set) of the dword holding `offset`.
    /// Bits of `device` and `function` beyond their ranges are dropped.
    pub fn config_address(self, offset: u16) -> u32 {
        0x8000_0000
            | u32::from(self.bus) << 16
            | u32::from(self.device & 0x1F) << 11
            | u32::from(self.function & 0x7) << 8
            | u32::from(offset & 0xFC)
    }
}

impl fmt::Display for PciAddress {
    /// Formats as `bb:dd.f` in hex, as `lspci` does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{:x}",
            self.bus, self.device, self.function
        )
    }
}

/// Access to PCI configuration space.
///
/// Only the 32-bit accesses are required; offsets of those are dword aligned. The narrow
/// accesses have defaults built on them, where a 16- or 8-bit write is a read-modify-write of
/// the enclosing dword (which writes back, for example, the status register next to the
/// command register): implementations that can access narrow fields directly should override
/// them, as [`PortConfigSpace`] does.
pub trait ConfigSpace {
    /// Reads the dword at `offset` (a multiple of 4). Absent functions read as all ones.
    fn read32(&mut self, addr: PciAddress, offset: u16) -> u32;

    /// Writes the dword at `offset` (a multiple of 4).
    fn write32(&mut self, addr: PciAddress, offset: u16, value: u32);

    /// Reads the 16 bits at `offset` (a multiple of 2).
    fn read16(&mut self, addr: PciAddress, offset: u16) -> u16 {
        let shift = u32::from(offset & 2) * 8;
        (self.read32(addr, offset & !3) >> shift) as u16
    }

    /// Reads the byte at `offset`.
    fn read8(&mut self, addr: PciAddress, offset: u16) -> u8 {
        let shift = u32::from(offset & 3) * 8;
        (self.read32(addr, offset & !3) >> shift) as u8
    }

    /// Writes the 16 bits at `offset` (a multiple of 2).
    fn write16(&mut self, addr: PciAddress, offset: u16, value: u16) {
        let shift = u32::from(offset & 2) * 8;
        let old = self.read32(addr, offset & !3) & !(0xFFFF << shift);
        self.write32(addr, offset & !3, old | u32::from(value) << shift);
    }

    /// Writes the byte at `offset`.
    fn write8(&mut self, addr: PciAddress, offset: u16, value: u8) {
        let shift = u32::from(offset & 3) * 8;
        let old = self.read32(addr, offset & !3) & !(0xFF << shift);
        self.write32(addr, offset & !3, old | u32::from(value) << shift);
    }
}

/// x86 I/O port access; the seL4 binary implements it with the kernel's I/O port invocations.
pub trait PortIo {
    /// Reads a byte from `port`.
    fn in8(&mut self, port: u16) -> u8;
    /// Reads 16 bits from `port`.
    fn in16(&mut self, port: u16) -> u16;
    /// Reads 32 bits from `port`.
    fn in32(&mut self, port: u16) -> u32;
    /// Writes a byte to `port`.
    fn out8(&mut self, port: u16, value: u8);
    /// Writes 16 bits to `port`.
    fn out16(&mut self, port: u16, value: u16);
    /// Writes 32 bits to `port`.
    fn out32(&mut self, port: u16, value: u32);
}

/// Configuration space through mechanism #1: the address goes to port `0xCF8`, the data is at
/// `0xCFC + (offset & 3)`. Reaches the first 256 bytes of each function; offsets beyond read
/// as all ones and ignore writes.
#[derive(Debug)]
pub struct PortConfigSpace<P> {
    ports: P,
}

impl<P: PortIo> PortConfigSpace<P> {
    /// Configuration space over `ports`.
    pub fn new(ports: P) -> Self {
        Self { ports }
    }

    /// The port access this uses.
    pub fn ports(&mut self) -> &mut P {
        &mut self.ports
    }

    /// Gives back the port access.
    pub fn into_inner(self) -> P {
        self.ports
    }

    /// Selects the dword holding `offset`; returns the data port for it, or `None` when
    /// `offset` lies beyond the 256 bytes mechanism #1 reaches.
    fn select(&mut self, addr: PciAddress, offset: u16) -> Option<u16> {
        if offset > 0xFF {
            return None;
        }
        self.ports
            .out32(CONFIG_ADDRESS_PORT, addr.config_address(offset));
        Some(CONFIG_DATA_PORT + (offset & 3))
    }
}

impl<P: PortIo> ConfigSpace for PortConfigSpace<P> {
    fn read32(&mut self, addr: PciAddress, offset: u16) -> u32 {
        match self.select(addr, offset & !3) {
            Some(port) => self.ports.in32(port),
            None => u32::MAX,
        }
    }

    fn write32(&mut self, addr: PciAddress, offset: u16, value: u32) {
        if let Some(port) = self.select(addr, offset & !3) {
            self.ports.out32(port, value);
        }
    }

    fn read16(&mut self, addr: PciAddress, offset: u16) -> u16 {
        match self.select(addr, offset & !1) {
            Some(port) => self.ports.in16(port),
            None => u16::MAX,
        }
    }

    fn read8(&mut self, addr: PciAddress, offset: u16) -> u8 {
        match self.select(addr, offset) {
            Some(port) => self.ports.in8(port),
            None => u8::MAX,
        }
    }

    fn write16(&mut self, addr: PciAddress, offset: u16, value: u16) {
        if let Some(port) = self.select(addr, offset & !1) {
            self.ports.out16(port, value);
        }
    }

    fn write8(&mut self, addr: PciAddress, offset: u16, value: u8) {
        if let Some(port) = self.select(addr, offset) {
            self.ports.out8(port, value);
        }
    }
}
