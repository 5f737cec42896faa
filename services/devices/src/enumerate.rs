//! PCI enumeration: every function reachable from bus 0, with its decoded BARs, interrupt pin
//! and MSI/MSI-X capabilities.

use alloc::vec::Vec;

use crate::config::{reg, ConfigSpace, PciAddress};

/// One base address register, decoded and sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Bar {
    /// Not implemented (reads back zero when all ones are written), or not part of this header
    /// layout.
    #[default]
    Unused,
    /// A memory window.
    Memory {
        /// Physical base address the firmware placed it at.
        base: u64,
        /// Size in bytes, a power of two; the window is naturally aligned.
        size: u64,
        /// Whether reads have no side effects (the device may be mapped cacheable).
        prefetchable: bool,
        /// Whether it is a 64-bit BAR, taking this slot and the next.
        wide: bool,
    },
    /// The upper half of the 64-bit memory BAR in the previous slot.
    Upper,
    /// An I/O port window.
    Io {
        /// First port.
        base: u32,
        /// Number of ports, a power of two.
        size: u32,
    },
}

impl Bar {
    /// Whether this is a memory window.
    pub fn is_memory(&self) -> bool {
        matches!(self, Bar::Memory { .. })
    }

    /// Whether this is an I/O port window.
    pub fn is_io(&self) -> bool {
        matches!(self, Bar::Io { .. })
    }
}

/// Where a function's interrupt capabilities are in its configuration space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Offset of the MSI capability, if present.
    pub msi: Option<u8>,
    /// Offset of the MSI-X capability, if present.
    pub msix: Option<u8>,
}

/// One PCI function as enumeration found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciDevice {
    /// Its location.
    pub addr: PciAddress,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Base class.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Revision id.
    pub revision: u8,
    /// The raw header type byte: layout in bits 0..=6, multifunction in bit 7.
    pub header_type: u8,
    /// The base address registers (a bridge has two, the rest are [`Bar::Unused`]).
    pub bars: [Bar; 6],
    /// The interrupt line the firmware routed INTx to; `0xFF` for none.
    pub irq_line: u8,
    /// The interrupt pin: 0 none, 1..=4 INTA..INTD.
    pub irq_pin: u8,
    /// Its MSI and MSI-X capabilities.
    pub capabilities: Capabilities,
    /// For a PCI-to-PCI bridge, the bus behind it.
    pub secondary_bus: Option<u8>,
}

/// Header layout 0: an ordinary function with six BARs.
pub const HEADER_GENERAL: u8 = 0;
/// Header layout 1: a PCI-to-PCI bridge with two BARs.
pub const HEADER_BRIDGE: u8 = 1;

impl PciDevice {
    /// The header layout (the header type without the multifunction bit).
    pub fn layout(&self) -> u8 {
        self.header_type & 0x7F
    }

    /// Whether the header type's multifunction bit is set.
    pub fn is_multifunction(&self) -> bool {
        self.header_type & 0x80 != 0
    }

    /// Whether any BAR is an I/O port window.
    pub fn has_io_bars(&self) -> bool {
        self.bars.iter().any(Bar::is_io)
    }

    /// Whether any BAR is a memory window.
    pub fn has_memory_bars(&self) -> bool {
        self.bars.iter().any(Bar::is_memory)
    }
}

/// Enumerates every function reachable from bus 0, following PCI-to-PCI bridges to their
/// secondary buses (each bus is scanned at most once, so a misconfigured bridge cannot loop).
///
/// Probing sizes the BARs by writing all ones, with the function's memory and I/O decoding
/// turned off meanwhile; each BAR and the command register are restored afterwards.
/// Returns the functions sorted by bus, device and function ("bus order").
pub fn enumerate(cfg: &mut impl ConfigSpace) -> Vec<PciDevice> {
    let mut found = Vec::new();
    let mut scanned = [false; 256];
    let mut pending = Vec::from([0u8]);
    while let Some(bus) = pending.pop() {
        if core::mem::replace(&mut scanned[usize::from(bus)], true) {
            continue;
        }
        for device in 0..32 {
            scan_slot(cfg, bus, device, &mut found, &mut pending);
        }
    }
    found.sort_by_key(|d: &PciDevice| d.addr);
    found
}

/// Scans one slot: function 0, and 1..=7 when function 0 says it is multifunction.
fn scan_slot(
    cfg: &mut impl ConfigSpace,
    bus: u8,
    device: u8,
    found: &mut Vec<PciDevice>,
    pending: &mut Vec<u8>,
) {
    let first = PciAddress {
        bus,
        device,
        function: 0,
    };
    let Some(zero) = probe(cfg, first) else {
        return;
    };
    let functions = if zero.is_multifunction() { 8 } else { 1 };
    let mut record = |d: PciDevice, pending: &mut Vec<u8>| {
        if let Some(secondary) = d.secondary_bus {
            pending.push(secondary);
        }
        found.push(d);
    };
    record(zero, pending);
    for function in 1..functions {
        let addr = PciAddress {
            bus,
            device,
            function,
        };
        if let Some(d) = probe(cfg, addr) {
            record(d, pending);
        }
    }
}

/// Reads one function, or `None` if nothing answers at `addr`.
pub fn probe(cfg: &mut impl ConfigSpace, addr: PciAddress) -> Option<PciDevice> {
    let id = cfg.read32(addr, reg::VENDOR_ID);
    let vendor = id as u16;
    if vendor == 0xFFFF || vendor == 0 {
        return None;
    }
    let class_word = cfg.read32(addr, reg::REVISION);
    let header_type = cfg.read8(addr, reg::HEADER_TYPE);
    let layout = header_type & 0x7F;
    let bar_count = match layout {
        HEADER_GENERAL => 6,
        HEADER_BRIDGE => 2,
        _ => 0,
    };
    let bars = if bar_count > 0 {
        probe_bars(cfg, addr, bar_count)
    } else {
        [Bar::Unused; 6]
    };
    let (irq_line, irq_pin, capabilities) = if layout <= HEADER_BRIDGE {
        (
            cfg.read8(addr, reg::INTERRUPT_LINE),
            cfg.read8(addr, reg::INTERRUPT_PIN),
            find_capabilities(cfg, addr),
        )
    } else {
        (0xFF, 0, Capabilities::default())
    };
    let secondary_bus = (layout == HEADER_BRIDGE)
        .then(|| cfg.read8(addr, reg::SECONDARY_BUS))
        .filter(|&bus| bus != 0);
    Some(PciDevice {
        addr,
        vendor,
        device: (id >> 16) as u16,
        class: (class_word >> 24) as u8,
        subclass: (class_word >> 16) as u8,
        prog_if: (class_word >> 8) as u8,
        revision: class_word as u8,
        header_type,
        bars,
        irq_line,
        irq_pin,
        capabilities,
        secondary_bus,
    })
}

/// Decodes and sizes the first `count` BARs with decoding disabled, then restores the command
/// register.
fn probe_bars(cfg: &mut impl ConfigSpace, addr: PciAddress, count: usize) -> [Bar; 6] {
    let command = cfg.read16(addr, reg::COMMAND);
    let decoding = reg::COMMAND_IO | reg::COMMAND_MEMORY;
    if command & decoding != 0 {
        cfg.write16(addr, reg::COMMAND, command & !decoding);
    }
    let mut bars = [Bar::Unused; 6];
    let mut slot = 0;
    while slot < count {
        let wide = decode_bar(cfg, addr, slot, count, &mut bars);
        slot += if wide { 2 } else { 1 };
    }
    if command & decoding != 0 {
        cfg.write16(addr, reg::COMMAND, command);
    }
    bars
}

/// Offset of BAR `slot`.
fn bar_offset(slot: usize) -> u16 {
    reg::BAR0 + 4 * slot as u16
}

/// Writes all ones to the BAR at `offset`, returns what reads back, restores the original.
fn size_mask(cfg: &mut impl ConfigSpace, addr: PciAddress, offset: u16, original: u32) -> u32 {
    cfg.write32(addr, offset, u32::MAX);
    let mask = cfg.read32(addr, offset);
    cfg.write32(addr, offset, original);
    mask
}

/// Decodes BAR `slot` into `bars`; returns whether it was 64-bit (and filled the next slot too).
fn decode_bar(
    cfg: &mut impl ConfigSpace,
    addr: PciAddress,
    slot: usize,
    count: usize,
    bars: &mut [Bar; 6],
) -> bool {
    let offset = bar_offset(slot);
    let low = cfg.read32(addr, offset);
    if low & 1 == 1 {
        let mask = size_mask(cfg, addr, offset, low) & !0x3;
        if mask != 0 {
            bars[slot] = Bar::Io {
                base: low & !0x3,
                size: 1 << mask.trailing_zeros(),
            };
        }
        return false;
    }
    let kind = (low >> 1) & 0x3;
    let prefetchable = low & 0x8 != 0;
    if kind == 0b10 {
        if slot + 1 >= count {
            return false; // a 64-bit BAR in the last slot: malformed, leave it unused
        }
        let high_offset = offset + 4;
        let high = cfg.read32(addr, high_offset);
        let mask_low = size_mask(cfg, addr, offset, low) & !0xF;
        let mask_high = size_mask(cfg, addr, high_offset, high);
        let mask = u64::from(mask_high) << 32 | u64::from(mask_low);
        if mask != 0 {
            bars[slot] = Bar::Memory {
                base: u64::from(high) << 32 | u64::from(low & !0xF),
                size: 1 << mask.trailing_zeros(),
                prefetchable,
                wide: true,
            };
            bars[slot + 1] = Bar::Upper;
        }
        return true;
    }
    if kind == 0b11 {
        return false; // reserved memory type
    }
    let mask = size_mask(cfg, addr, offset, low) & !0xF;
    if mask != 0 {
        bars[slot] = Bar::Memory {
            base: u64::from(low & !0xF),
            size: 1 << mask.trailing_zeros(),
            prefetchable,
            wide: false,
        };
    }
    false
}

/// Walks the capability list for MSI and MSI-X. Stops after 48 entries, so a looping list
/// ends.
fn find_capabilities(cfg: &mut impl ConfigSpace, addr: PciAddress) -> Capabilities {
    let mut caps = Capabilities::default();
    if cfg.read16(addr, reg::STATUS) & reg::STATUS_CAPABILITIES == 0 {
        return caps;
    }
    let mut pointer = cfg.read8(addr, reg::CAPABILITIES) & 0xFC;
    for _ in 0..48 {
        if pointer < 0x40 {
            break;
        }
        let header = cfg.read16(addr, u16::from(pointer));
        match header as u8 {
            reg::CAP_MSI if caps.msi.is_none() => caps.msi = Some(pointer),
            reg::CAP_MSIX if caps.msix.is_none() => caps.msix = Some(pointer),
            _ => {}
        }
        pointer = (header >> 8) as u8 & 0xFC;
    }
    caps
}
