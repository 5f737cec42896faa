//! Enumeration of the simulated QEMU `pc` machine: functions found, BAR decoding and sizing,
//! bridges, capabilities, and that probing leaves the machine as it was.

mod common;

use common::{at, qemu_pc, qemu_pc_with_bridge, scan, Function, Machine, PortOp};
use devices::{enumerate, Bar, ConfigSpace, PciDevice, PortConfigSpace};

fn find(found: &[PciDevice], vendor: u16, device: u16) -> &PciDevice {
    found
        .iter()
        .find(|d| d.vendor == vendor && d.device == device)
        .expect("device found")
}

#[test]
fn mechanism_one_encodes_address_and_narrow_data_port() {
    let mut cfg = PortConfigSpace::new(Machine::default());
    cfg.read16(at(1, 2, 3), 0x3E);
    cfg.write8(at(0, 31, 7), 0x3D, 0x5A);
    cfg.read32(at(255, 0, 0), 0x10);
    assert_eq!(
        cfg.into_inner().log,
        [
            PortOp::Out(32, 0xCF8, 0x8001_133C),
            PortOp::In(16, 0xCFE),
            PortOp::Out(32, 0xCF8, 0x8000_FF3C),
            PortOp::Out(8, 0xCFD, 0x5A),
            PortOp::Out(32, 0xCF8, 0x80FF_0010),
            PortOp::In(32, 0xCFC),
        ]
    );
}

#[test]
fn offsets_beyond_legacy_space_read_all_ones_without_port_access() {
    let mut cfg = PortConfigSpace::new(qemu_pc());
    assert_eq!(cfg.read32(at(0, 3, 0), 0x100), u32::MAX);
    assert_eq!(cfg.read8(at(0, 3, 0), 0x1FF), u8::MAX);
    cfg.write32(at(0, 3, 0), 0x100, 0);
    assert!(cfg.into_inner().log.is_empty());
}

#[test]
fn qemu_pc_functions_in_bus_order() {
    let (found, _) = scan(qemu_pc());
    let ids: Vec<_> = found
        .iter()
        .map(|d| (d.addr.to_string(), d.vendor, d.device))
        .collect();
    assert_eq!(
        ids,
        [
            ("00:00.0".to_string(), 0x8086, 0x1237),
            ("00:01.0".to_string(), 0x8086, 0x7000),
            ("00:01.1".to_string(), 0x8086, 0x7010),
            ("00:01.3".to_string(), 0x8086, 0x7113),
            ("00:02.0".to_string(), 0x1234, 0x1111),
            ("00:03.0".to_string(), 0x8086, 0x10D3),
            ("00:04.0".to_string(), 0x1AF4, 0x1000),
        ]
    );
}

#[test]
fn e1000e_header_bars_interrupt_and_capabilities() {
    let (found, _) = scan(qemu_pc());
    let nic = find(&found, 0x8086, 0x10D3);
    assert_eq!((nic.class, nic.subclass, nic.prog_if), (0x02, 0x00, 0x00));
    assert_eq!(nic.layout(), 0);
    assert!(!nic.is_multifunction());
    let memory = |base, size| Bar::Memory {
        base,
        size,
        prefetchable: false,
        wide: false,
    };
    assert_eq!(
        nic.bars,
        [
            memory(0xFEB8_0000, 128 << 10),
            memory(0xFEBA_0000, 128 << 10),
            Bar::Io {
                base: 0xC000,
                size: 32
            },
            memory(0xFEBC_0000, 16 << 10),
            Bar::Unused,
            Bar::Unused,
        ]
    );
    assert_eq!((nic.irq_pin, nic.irq_line), (1, 11));
    assert_eq!(nic.capabilities.msi, Some(0xD0));
    assert_eq!(nic.capabilities.msix, Some(0xA0));
    assert!(nic.has_io_bars() && nic.has_memory_bars());
    assert_eq!(nic.secondary_bus, None);
}

#[test]
fn virtio_net_io_bar_and_64_bit_prefetchable_bar() {
    let (found, _) = scan(qemu_pc());
    let nic = find(&found, 0x1AF4, 0x1000);
    assert_eq!(
        nic.bars[0],
        Bar::Io {
            base: 0xC020,
            size: 32
        }
    );
    assert!(matches!(nic.bars[1], Bar::Memory { size: 4096, .. }));
    assert_eq!(nic.bars[2], Bar::Unused);
    assert_eq!(nic.bars[3], Bar::Unused);
    assert_eq!(
        nic.bars[4],
        Bar::Memory {
            base: 0xFE00_0000,
            size: 16 << 10,
            prefetchable: true,
            wide: true
        }
    );
    assert_eq!(nic.bars[5], Bar::Upper);
    assert_eq!(nic.capabilities.msi, None);
    assert_eq!(nic.capabilities.msix, Some(0x98));
}

#[test]
fn bar_above_4gib_and_larger_than_4gib() {
    let mut m = Machine::default();
    m.add(
        0,
        0,
        0,
        Function::new(0x1234, 0x5678, [0x03, 0x80, 0x00], 0)
            .mem64(0, 0x80_0000_0000, 8 << 30, true)
            .mem64(2, 0x1_2345_0000, 64 << 10, false)
            .mem64(4, 0, 0x10, false),
    );
    let (found, _) = scan(m);
    let bars = found[0].bars;
    assert!(matches!(
        bars[0],
        Bar::Memory { base: 0x80_0000_0000, size, wide: true, .. } if size == 8 << 30
    ));
    assert!(matches!(
        bars[2],
        Bar::Memory {
            base: 0x1_2345_0000,
            size: 0x10000,
            prefetchable: false,
            ..
        }
    ));
    assert!(matches!(
        bars[4],
        Bar::Memory {
            base: 0,
            size: 16,
            ..
        }
    ));
    assert_eq!([bars[1], bars[3], bars[5]], [Bar::Upper; 3]);
}

#[test]
fn multifunction_scans_other_functions_only_when_flagged() {
    let (found, _) = scan(qemu_pc());
    let piix: Vec<u8> = found
        .iter()
        .filter(|d| d.addr.device == 1)
        .map(|d| d.addr.function)
        .collect();
    assert_eq!(piix, [0, 1, 3], "function 2 is absent, 3 is still found");
    assert!(found[1].is_multifunction());

    // Without the multifunction bit on function 0, functions 1..7 are not looked at, even
    // if something answers there (a device that decodes the function number loosely).
    let mut m = Machine::default();
    m.add(0, 7, 0, Function::new(0x1111, 0x0001, [0xFF, 0, 0], 0x00));
    m.add(0, 7, 1, Function::new(0x1111, 0x0002, [0xFF, 0, 0], 0x00));
    let (found, _) = scan(m);
    assert_eq!(found.len(), 1);
}

#[test]
fn bridges_are_followed_to_their_secondary_bus() {
    let (found, _) = scan(qemu_pc_with_bridge());
    let bridge = find(&found, 0x1B36, 0x0001);
    assert_eq!(bridge.layout(), 1);
    assert_eq!(bridge.secondary_bus, Some(1));
    let nics: Vec<String> = found
        .iter()
        .filter(|d| d.device == 0x10D3)
        .map(|d| d.addr.to_string())
        .collect();
    assert_eq!(nics, ["00:03.0", "01:00.0"]);
    let second = found.last().unwrap();
    assert!(matches!(
        second.bars[0],
        Bar::Memory {
            base: 0xFE80_0000,
            ..
        }
    ));
    assert_eq!(second.irq_line, 10);
}

#[test]
fn a_bridge_looping_back_is_scanned_once() {
    let mut m = Machine::default();
    m.add(
        0,
        0,
        0,
        Function::new(0x1B36, 1, [6, 4, 0], 1).secondary_bus(1),
    );
    m.add(
        1,
        0,
        0,
        Function::new(0x1B36, 1, [6, 4, 0], 1).secondary_bus(0),
    );
    m.add(
        1,
        1,
        0,
        Function::new(0x1B36, 1, [6, 4, 0], 1).secondary_bus(1),
    );
    let (found, _) = scan(m);
    assert_eq!(found.len(), 3);
}

#[test]
fn probing_disables_decoding_and_restores_everything() {
    let before = qemu_pc_with_bridge();
    let (_, after) = scan(before.clone());
    assert_eq!(after.violations, 0, "a BAR was written while decoding");
    for (key, f) in &before.functions {
        assert_eq!(
            f.config[..],
            after.functions[key].config[..],
            "{key:?} changed"
        );
    }
    // Decoding was really on before, and probing did turn it off at some point.
    assert_eq!(before.function(0, 3, 0).command(), 0x0003);
    let turned_off = after.log.contains(&PortOp::Out(16, 0xCFC, 0x0000));
    assert!(turned_off);
}

#[test]
fn enumerate_works_over_the_default_narrow_accesses() {
    /// Configuration space with only the required 32-bit accesses.
    struct Wide(PortConfigSpace<Machine>);
    impl ConfigSpace for Wide {
        fn read32(&mut self, addr: devices::PciAddress, offset: u16) -> u32 {
            self.0.read32(addr, offset)
        }
        fn write32(&mut self, addr: devices::PciAddress, offset: u16, value: u32) {
            self.0.write32(addr, offset, value)
        }
    }
    let mut wide = Wide(PortConfigSpace::new(qemu_pc()));
    let found = enumerate(&mut wide);
    let (direct, _) = scan(qemu_pc());
    assert_eq!(found, direct);
}
