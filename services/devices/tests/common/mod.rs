//! A simulated PC for the tests: configuration space behind ports 0xCF8/0xCFC modelled after
//! QEMU's `-machine pc` (PIIX3) with an e1000e and a virtio-net, byte-granular write masks
//! (so BARs size like real ones), and a check that no BAR is written while the function
//! decodes.
#![allow(dead_code)]

pub mod system;

use std::collections::BTreeMap;

use devices::{enumerate, PciAddress, PciDevice, PortConfigSpace, PortIo};

/// One function's configuration space.
#[derive(Clone)]
pub struct Function {
    pub config: [u8; 256],
    pub writable: [u8; 256],
    last_cap: Option<u8>,
}

impl Function {
    pub fn new(vendor: u16, device: u16, class: [u8; 3], header_type: u8) -> Self {
        let mut f = Function {
            config: [0; 256],
            writable: [0; 256],
            last_cap: None,
        };
        f.set16(0x00, vendor);
        f.set16(0x02, device);
        f.config[0x09] = class[2];
        f.config[0x0A] = class[1];
        f.config[0x0B] = class[0];
        f.config[0x0E] = header_type;
        f.config[0x3C] = 0xFF;
        f.writable[0x04] = 0x07; // I/O, memory, bus master
        f.writable[0x05] = 0x04; // INTx disable
        f.writable[0x3C] = 0xFF;
        f
    }

    pub fn set16(&mut self, at: usize, v: u16) {
        self.config[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    pub fn set32(&mut self, at: usize, v: u32) {
        self.config[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    pub fn get16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.config[at], self.config[at + 1]])
    }

    pub fn get32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.config[at..at + 4].try_into().unwrap())
    }

    fn mask32(&mut self, at: usize, mask: u32) {
        self.writable[at..at + 4].copy_from_slice(&mask.to_le_bytes());
    }

    pub fn command(&self) -> u16 {
        self.get16(0x04)
    }

    pub fn with_command(mut self, command: u16) -> Self {
        self.set16(0x04, command);
        self
    }

    pub fn mem32(mut self, slot: usize, base: u32, size: u32, prefetchable: bool) -> Self {
        let at = 0x10 + 4 * slot;
        self.set32(at, base | if prefetchable { 0x8 } else { 0 });
        self.mask32(at, !(size - 1) & !0xF);
        self
    }

    pub fn mem64(mut self, slot: usize, base: u64, size: u64, prefetchable: bool) -> Self {
        let at = 0x10 + 4 * slot;
        let mask = !(size - 1);
        self.set32(at, base as u32 | 0x4 | if prefetchable { 0x8 } else { 0 });
        self.set32(at + 4, (base >> 32) as u32);
        self.mask32(at, mask as u32 & !0xF);
        self.mask32(at + 4, (mask >> 32) as u32);
        self
    }

    pub fn io(mut self, slot: usize, base: u32, size: u32) -> Self {
        let at = 0x10 + 4 * slot;
        self.set32(at, base | 1);
        self.mask32(at, !(size - 1) & !0x3);
        self
    }

    pub fn irq(mut self, pin: u8, line: u8) -> Self {
        self.config[0x3D] = pin;
        self.config[0x3C] = line;
        self
    }

    pub fn secondary_bus(mut self, bus: u8) -> Self {
        self.config[0x18] = 0;
        self.config[0x19] = bus;
        self.config[0x1A] = bus;
        self.writable[0x18..0x1B].fill(0xFF);
        self
    }

    /// Appends a capability with `id` at `at`, `len` bytes long, chained after the last one.
    fn cap(&mut self, at: u8, id: u8) {
        match self.last_cap {
            None => {
                self.config[0x34] = at;
                let status = self.get16(0x06) | 1 << 4;
                self.set16(0x06, status);
            }
            Some(prev) => self.config[usize::from(prev) + 1] = at,
        }
        self.config[usize::from(at)] = id;
        self.config[usize::from(at) + 1] = 0;
        self.last_cap = Some(at);
    }

    pub fn other_cap(mut self, at: u8, id: u8) -> Self {
        self.cap(at, id);
        self
    }

    /// An MSI capability with one vector; 64-bit addresses and per-vector masking as asked.
    pub fn msi(mut self, at: u8, wide: bool, per_vector_mask: bool) -> Self {
        self.cap(at, 0x05);
        let a = usize::from(at);
        let control = if wide { 0x80 } else { 0 } | if per_vector_mask { 0x100 } else { 0 };
        self.set16(a + 2, control);
        self.writable[a + 2] = 0x71; // enable, multiple message enable
        self.mask32(a + 4, 0xFFFF_FFFC);
        let mut next = a + 8;
        if wide {
            self.mask32(next, 0xFFFF_FFFF);
            next += 4;
        }
        self.writable[next] = 0xFF;
        self.writable[next + 1] = 0xFF;
        if per_vector_mask {
            self.set32(next + 4, 1); // masked at reset
            self.mask32(next + 4, 1);
        }
        self
    }

    /// An MSI-X capability with `table_size` entries, its table at `table` (BAR, offset) and
    /// its pending bits at `pba`.
    pub fn msix(mut self, at: u8, table_size: u16, table: (u8, u32), pba: (u8, u32)) -> Self {
        self.cap(at, 0x11);
        let a = usize::from(at);
        self.set16(a + 2, table_size - 1);
        self.set32(a + 4, table.1 | u32::from(table.0));
        self.set32(a + 8, pba.1 | u32::from(pba.0));
        self.writable[a + 3] = 0xC0; // enable, function mask
        self
    }
}

/// A port operation, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortOp {
    In(u8, u16),
    Out(u8, u16, u32),
}

/// The simulated machine: functions by address, the 0xCF8 latch, and a record of what
/// happened.
#[derive(Clone, Default)]
pub struct Machine {
    pub functions: BTreeMap<(u8, u8, u8), Function>,
    address: u32,
    /// BAR writes made while the function decoded memory or I/O.
    pub violations: u32,
    /// Every port access, in order.
    pub log: Vec<PortOp>,
}

impl Machine {
    pub fn add(&mut self, bus: u8, device: u8, function: u8, f: Function) -> &mut Self {
        self.functions.insert((bus, device, function), f);
        self
    }

    pub fn function(&self, bus: u8, device: u8, function: u8) -> &Function {
        &self.functions[&(bus, device, function)]
    }

    fn target(&self) -> Option<((u8, u8, u8), usize)> {
        if self.address & 0x8000_0000 == 0 {
            return None;
        }
        let key = (
            (self.address >> 16) as u8,
            ((self.address >> 11) & 0x1F) as u8,
            ((self.address >> 8) & 0x7) as u8,
        );
        Some((key, (self.address & 0xFC) as usize))
    }

    fn read(&self, port: u16, width: usize) -> u32 {
        assert!((0xCFC..=0xCFF).contains(&port), "read from port {port:#x}");
        let offset = usize::from(port - 0xCFC);
        assert!(offset + width <= 4, "access crosses the data window");
        let Some((key, reg)) = self.target() else {
            return u32::MAX;
        };
        let Some(f) = self.functions.get(&key) else {
            return u32::MAX;
        };
        let mut bytes = [0u8; 4];
        bytes[..width].copy_from_slice(&f.config[reg + offset..reg + offset + width]);
        u32::from_le_bytes(bytes)
    }

    fn write(&mut self, port: u16, width: usize, value: u32) {
        if port == 0xCF8 {
            assert_eq!(width, 4, "0xCF8 takes 32-bit writes only");
            self.address = value;
            return;
        }
        assert!((0xCFC..=0xCFF).contains(&port), "write to port {port:#x}");
        let offset = usize::from(port - 0xCFC);
        assert!(offset + width <= 4, "access crosses the data window");
        let Some((key, reg)) = self.target() else {
            return;
        };
        let Some(f) = self.functions.get_mut(&key) else {
            return;
        };
        let start = reg + offset;
        let bars_end = if f.config[0x0E] & 0x7F == 1 {
            0x18
        } else {
            0x28
        };
        if (0x10..bars_end).contains(&start) && f.command() & 0x3 != 0 {
            self.violations += 1;
        }
        for (i, byte) in value.to_le_bytes()[..width].iter().enumerate() {
            let at = start + i;
            f.config[at] = (byte & f.writable[at]) | (f.config[at] & !f.writable[at]);
        }
    }
}

impl PortIo for Machine {
    fn in8(&mut self, port: u16) -> u8 {
        self.log.push(PortOp::In(8, port));
        self.read(port, 1) as u8
    }
    fn in16(&mut self, port: u16) -> u16 {
        self.log.push(PortOp::In(16, port));
        self.read(port, 2) as u16
    }
    fn in32(&mut self, port: u16) -> u32 {
        self.log.push(PortOp::In(32, port));
        self.read(port, 4)
    }
    fn out8(&mut self, port: u16, value: u8) {
        self.log.push(PortOp::Out(8, port, value.into()));
        self.write(port, 1, value.into());
    }
    fn out16(&mut self, port: u16, value: u16) {
        self.log.push(PortOp::Out(16, port, value.into()));
        self.write(port, 2, value.into());
    }
    fn out32(&mut self, port: u16, value: u32) {
        self.log.push(PortOp::Out(32, port, value));
        self.write(port, 4, value);
    }
}

/// Command register as SeaBIOS leaves a function: I/O and memory decoding on.
pub const FIRMWARE_COMMAND: u16 = 0x0003;

/// QEMU's e1000e (82574L) with its BARs where the `pc` machine's firmware puts them.
pub fn e1000e(bar0: u32, io: u32, line: u8) -> Function {
    Function::new(0x8086, 0x10D3, [0x02, 0x00, 0x00], 0x00)
        .with_command(FIRMWARE_COMMAND)
        .mem32(0, bar0, 128 << 10, false)
        .mem32(1, bar0 + (128 << 10), 128 << 10, false)
        .io(2, io, 32)
        .mem32(3, bar0 + (256 << 10), 16 << 10, false)
        .irq(1, line)
        .other_cap(0xC8, 0x01) // power management
        .msi(0xD0, true, false)
        .other_cap(0xE0, 0x10) // PCI Express
        .msix(0xA0, 5, (3, 0), (3, 0x2000))
}

/// QEMU's transitional virtio-net: legacy I/O BAR0, MSI-X BAR1, 64-bit modern BAR4.
pub fn virtio_net() -> Function {
    Function::new(0x1AF4, 0x1000, [0x02, 0x00, 0x00], 0x00)
        .with_command(FIRMWARE_COMMAND)
        .io(0, 0xC020, 32)
        .mem32(1, 0xFEBC_5000, 4 << 10, false)
        .mem64(4, 0xFE00_0000, 16 << 10, true)
        .irq(1, 10)
        .msix(0x98, 3, (1, 0), (1, 0x800))
        .other_cap(0x84, 0x09) // vendor specific (virtio structures)
}

/// `qemu-system-x86_64 -machine pc -device e1000e -device virtio-net-pci`: host bridge, the
/// PIIX3 (multifunction: ISA, IDE, ACPI PM; no function 2), the standard VGA, the e1000e at
/// 00:03.0 and the virtio-net at 00:04.0.
pub fn qemu_pc() -> Machine {
    let mut m = Machine::default();
    m.add(
        0,
        0,
        0,
        Function::new(0x8086, 0x1237, [0x06, 0x00, 0x00], 0x00),
    );
    m.add(
        0,
        1,
        0,
        Function::new(0x8086, 0x7000, [0x06, 0x01, 0x00], 0x80),
    );
    m.add(
        0,
        1,
        1,
        Function::new(0x8086, 0x7010, [0x01, 0x01, 0x80], 0x00)
            .with_command(0x0001)
            .io(4, 0xC040, 16),
    );
    m.add(
        0,
        1,
        3,
        Function::new(0x8086, 0x7113, [0x06, 0x80, 0x00], 0x00).irq(1, 9),
    );
    m.add(
        0,
        2,
        0,
        Function::new(0x1234, 0x1111, [0x03, 0x00, 0x00], 0x00)
            .with_command(FIRMWARE_COMMAND)
            .mem32(0, 0xFD00_0000, 16 << 20, true)
            .mem32(2, 0xFEBC_4000, 4 << 10, false),
    );
    m.add(0, 3, 0, e1000e(0xFEB8_0000, 0xC000, 11));
    m.add(0, 4, 0, virtio_net());
    m
}

/// [`qemu_pc`] plus a PCI-to-PCI bridge at 00:05.0 leading to bus 1, where a second e1000e
/// sits at 01:00.0.
pub fn qemu_pc_with_bridge() -> Machine {
    let mut m = qemu_pc();
    m.add(
        0,
        5,
        0,
        Function::new(0x1B36, 0x0001, [0x06, 0x04, 0x00], 0x01)
            .with_command(FIRMWARE_COMMAND)
            .secondary_bus(1),
    );
    m.add(1, 0, 0, e1000e(0xFE80_0000, 0xD000, 10));
    m
}

/// Enumerates `machine` through mechanism #1; returns the functions and the machine back.
pub fn scan(machine: Machine) -> (Vec<PciDevice>, Machine) {
    let mut cfg = PortConfigSpace::new(machine);
    let found = enumerate(&mut cfg);
    (found, cfg.into_inner())
}

/// The address `bus:device.function`.
pub fn at(bus: u8, device: u8, function: u8) -> PciAddress {
    PciAddress::new(bus, device, function).unwrap()
}
