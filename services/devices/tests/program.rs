//! Programming functions for their drivers: command register bits and MSI capabilities, down
//! to the bytes in configuration space.

mod common;

use common::{qemu_pc, scan, Function, Machine, PortOp};
use devices::{
    disable, driver_command_bits, enable, plan_msi, probe, program_msi, GetMsiArgs, MsiError,
    MsiMessage, PciDevice, PortConfigSpace, FIRST_USER_VECTOR,
};

fn device(found: &[PciDevice], vendor: u16, dev: u16) -> PciDevice {
    *found
        .iter()
        .find(|d| d.vendor == vendor && d.device == dev)
        .unwrap()
}

#[test]
fn enable_sets_memory_bus_master_and_io_when_there_are_io_bars() {
    let (found, machine) = scan(qemu_pc());
    let e1000e = device(&found, 0x8086, 0x10D3);
    assert_eq!(driver_command_bits(&e1000e), 0x0007);
    let mut cfg = PortConfigSpace::new(machine);
    cfg.ports().log.clear();
    assert_eq!(enable(&mut cfg, &e1000e), 0x0007);
    let m = cfg.into_inner();
    assert_eq!(m.function(0, 3, 0).command(), 0x0007);
    // A 16-bit write of the command register alone, never a dword that would also write status.
    assert!(m.log.contains(&PortOp::Out(16, 0xCFC, 0x0007)));
    assert!(!m
        .log
        .iter()
        .any(|op| matches!(op, PortOp::Out(32, 0xCFC, _))));
}

#[test]
fn enable_leaves_io_off_for_memory_only_functions_and_keeps_other_bits() {
    let mut m = Machine::default();
    m.add(
        0,
        0,
        0,
        Function::new(0x1234, 0x0001, [0x02, 0, 0], 0)
            .mem32(0, 0xFEB0_0000, 4096, false)
            .with_command(0x0400),
    );
    let (found, m) = scan(m);
    let mut cfg = PortConfigSpace::new(m);
    assert_eq!(enable(&mut cfg, &found[0]), 0x0406);
    assert_eq!(cfg.into_inner().function(0, 0, 0).command(), 0x0406);
}

#[test]
fn disable_quiets_a_function() {
    let (found, m) = scan(qemu_pc());
    let virtio = device(&found, 0x1AF4, 0x1000);
    let mut cfg = PortConfigSpace::new(m);
    enable(&mut cfg, &virtio);
    assert_eq!(disable(&mut cfg, virtio.addr), 0x0400);
    assert_eq!(cfg.into_inner().function(0, 4, 0).command(), 0x0400);
}

#[test]
fn msi_plan_gives_get_msi_arguments_and_message() {
    let (found, _) = scan(qemu_pc());
    let nic = device(&found, 0x8086, 0x10D3);
    let setup = plan_msi(&nic, 3, 0, 7).unwrap();
    assert_eq!(
        setup.get_msi,
        GetMsiArgs {
            pci_bus: 0,
            pci_dev: 3,
            pci_func: 0,
            handle: 7,
            vector: 3
        }
    );
    assert_eq!(
        setup.message,
        MsiMessage {
            address: 0xFEE0_0000,
            data: u16::from(FIRST_USER_VECTOR) + 3
        }
    );
    assert_eq!(MsiMessage::new(2, 0x40).address, 0xFEE0_2000);
    assert_eq!(plan_msi(&nic, 108, 0, 0), Err(MsiError::IrqOutOfRange));
    assert!(plan_msi(&nic, 107, 0, 0).is_ok());
    let virtio = device(&found, 0x1AF4, 0x1000);
    assert_eq!(plan_msi(&virtio, 0, 0, 0), Err(MsiError::NoCapability));
}

#[test]
fn e1000e_msi_bytes_64_bit_capability() {
    let (found, m) = scan(qemu_pc());
    let nic = device(&found, 0x8086, 0x10D3);
    let mut cfg = PortConfigSpace::new(m);
    program_msi(&mut cfg, &nic, MsiMessage::new(1, 0x33)).unwrap();
    let f = cfg.into_inner().function(0, 3, 0).clone();
    assert_eq!(
        f.config[0xD0..0xDE],
        [
            0x05, 0xE0, // MSI, next capability
            0x81, 0x00, // 64-bit capable, one vector, enabled
            0x00, 0x10, 0xE0, 0xFE, // address low: 0xFEE01000
            0x00, 0x00, 0x00, 0x00, // address high
            0x33, 0x00, // data: the vector
        ]
    );
    assert_eq!(f.command() & 0x0400, 0x0400, "INTx disabled");
    assert_eq!(f.get16(0xA2) & 0x8000, 0, "MSI-X stays off");
}

#[test]
fn msi_32_bit_with_per_vector_masking_and_msix_turned_off() {
    let mut m = Machine::default();
    m.add(
        0,
        2,
        0,
        Function::new(0x1234, 0x0002, [0x02, 0, 0], 0)
            .with_command(0x0006)
            .mem32(0, 0xFEB0_0000, 4096, false)
            .msix(0x40, 2, (0, 0), (0, 0x800))
            .msi(0x50, false, true),
    );
    // MSI-X left enabled, and a multi-vector MSI setting, by someone before us.
    m.functions.get_mut(&(0, 2, 0)).unwrap().set16(0x42, 0x8001);
    m.functions.get_mut(&(0, 2, 0)).unwrap().config[0x52] = 0x20;
    let mut cfg = PortConfigSpace::new(m);
    let d = probe(&mut cfg, common::at(0, 2, 0)).unwrap();
    program_msi(&mut cfg, &d, MsiMessage::new(0, 0x31)).unwrap();
    let f = cfg.into_inner().function(0, 2, 0).clone();
    assert_eq!(
        f.config[0x50..0x60],
        [
            0x05, 0x00, // MSI, end of list
            0x01, 0x01, // per-vector masking, one vector, enabled
            0x00, 0x00, 0xE0, 0xFE, // address
            0x31, 0x00, 0x00, 0x00, // data
            0x00, 0x00, 0x00, 0x00, // mask bits: vector 0 unmasked
        ]
    );
    assert_eq!(f.get16(0x42), 0x0001, "MSI-X disabled");
}

#[test]
fn program_msi_without_capability_writes_nothing() {
    let (found, m) = scan(qemu_pc());
    let virtio = device(&found, 0x1AF4, 0x1000);
    let mut cfg = PortConfigSpace::new(m);
    cfg.ports().log.clear();
    assert_eq!(
        program_msi(&mut cfg, &virtio, MsiMessage::new(0, 0x30)),
        Err(MsiError::NoCapability)
    );
    assert!(cfg.into_inner().log.is_empty());
}
