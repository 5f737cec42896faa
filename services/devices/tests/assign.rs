//! Assignment of `[[device]]`s to the simulated machine's functions, and the grants drivers get
//! (or are refused).

mod common;

use common::system::{device, driver, system};
use common::{at, qemu_pc, qemu_pc_with_bridge, scan, Function, Machine};
use devices::{
    AssignError, Assignments, GrantError, Hardware, InterruptController, IrqGrant, MemoryRegion,
    PciDevice, Polarity, PortRange, Trigger,
};
use sysdesc::{ComponentId, System};

fn id(system: &System, name: &str) -> ComponentId {
    system.component_id(name).unwrap()
}

fn resolve(system: &System, found: &[PciDevice]) -> Assignments {
    Assignments::resolve(system, found, InterruptController::IoApic)
}

#[test]
fn e1000e_by_vendor_device_with_msi() {
    let s = system(
        &(driver("net", &["nic0"]) + &device("nic0", "pci = \"8086:10d3\"", Some("\"msi\""))),
    );
    let (found, _) = scan(qemu_pc());
    let a = resolve(&s, &found);
    assert_eq!(a.problems().count(), 0);
    let g = a.grant_for(id(&s, "net"), "nic0").unwrap();
    assert_eq!(g.pci, Some(at(0, 3, 0)));
    let region = |bar, base, size| MemoryRegion {
        bar,
        base,
        size,
        prefetchable: false,
    };
    assert_eq!(
        g.memory,
        [
            region(0, 0xFEB8_0000, 128 << 10),
            region(1, 0xFEBA_0000, 128 << 10),
            region(3, 0xFEBC_0000, 16 << 10),
        ]
    );
    assert_eq!(g.memory_bars(), 0b1011);
    assert_eq!(g.region(3).map(|r| r.size), Some(16 << 10));
    assert_eq!(g.region(2), None);
    assert_eq!(
        g.ports,
        [PortRange {
            first: 0xC000,
            last: 0xC01F
        }]
    );
    assert_eq!(
        g.irq,
        Some(IrqGrant::Msi {
            addr: at(0, 3, 0),
            capability: 0xD0
        })
    );
}

#[test]
fn virtio_net_by_class_with_legacy_interrupt() {
    // Class 02:00 index 1 is the virtio-net (the e1000e is index 0).
    let s = system(
        &(driver("net", &["nic1"])
            + &device("nic1", "class = \"02:00\"\nindex = 1", Some("\"legacy\""))),
    );
    let (found, _) = scan(qemu_pc());
    let a = resolve(&s, &found);
    let g = a.grant_for(id(&s, "net"), "nic1").unwrap();
    assert_eq!(g.pci, Some(at(0, 4, 0)));
    assert_eq!(
        g.memory
            .iter()
            .map(|r| (r.bar, r.base, r.size, r.prefetchable))
            .collect::<Vec<_>>(),
        [
            (1, 0xFEBC_5000, 4096, false),
            (4, 0xFE00_0000, 16 << 10, true)
        ]
    );
    assert_eq!(
        g.ports,
        [PortRange {
            first: 0xC020,
            last: 0xC03F
        }]
    );
    let irq = g.irq.unwrap();
    assert_eq!(
        irq,
        IrqGrant::IoApic {
            ioapic: 0,
            pin: 10,
            trigger: Trigger::Level,
            polarity: Polarity::High
        }
    );
    let args = irq.ioapic_args(5).unwrap();
    assert_eq!(
        (
            args.ioapic,
            args.pin,
            args.level,
            args.polarity,
            args.vector
        ),
        (0, 10, 1, 0, 5)
    );
    assert_eq!(irq.ioapic_args(200), None);

    // The same description on a PIC kernel routes `legacy` to the PIC line.
    let pic = Assignments::resolve(&s, &found, InterruptController::Pic);
    let g = pic.grant_for(id(&s, "net"), "nic1").unwrap();
    assert_eq!(g.irq, Some(IrqGrant::Pic { line: 10 }));
    assert_eq!(g.irq.unwrap().ioapic_args(0), None);
}

#[test]
fn index_counts_in_bus_order_across_bridges() {
    let s = system(
        &(driver("net", &["a", "b"])
            + &device(
                "a",
                "pci = \"8086:10d3\"\nindex = 1",
                Some("{ ioapic = 16 }"),
            )
            + &device("b", "class = \"02:00\"\nindex = 1", None)),
    );
    let (found, _) = scan(qemu_pc_with_bridge());
    let a = resolve(&s, &found);
    assert_eq!(a.problems().count(), 0);
    let net = id(&s, "net");
    assert_eq!(a.grant_for(net, "a").unwrap().pci, Some(at(1, 0, 0)));
    // class 02:00 in bus order: 00:03.0 e1000e, 00:04.0 virtio, 01:00.0 e1000e.
    let b = a.grant_for(net, "b").unwrap();
    assert_eq!(b.pci, Some(at(0, 4, 0)));
    assert_eq!(b.irq, None);
    let fixed = a.grant_for(net, "a").unwrap().irq;
    assert!(matches!(
        fixed,
        Some(IrqGrant::IoApic {
            pin: 16,
            trigger: Trigger::Level,
            ..
        })
    ));
}

#[test]
fn class_with_programming_interface() {
    let s = system(&(driver("disk", &["ide"]) + &device("ide", "class = \"01:01:80\"", None)));
    let (found, _) = scan(qemu_pc());
    let a = resolve(&s, &found);
    let g = a.grant_for(id(&s, "disk"), "ide").unwrap();
    assert_eq!(g.pci, Some(at(0, 1, 1)));
    let wrong = system(&(driver("disk", &["ide"]) + &device("ide", "class = \"01:01:8a\"", None)));
    let a = resolve(&wrong, &found);
    assert_eq!(
        a.grant_for(id(&wrong, "disk"), "ide"),
        Err(GrantError::Unresolved(AssignError::NotFound))
    );
}

#[test]
fn legacy_io_port_device() {
    let s = system(
        &(driver("serial", &["com1"])
            + &device("com1", "ioport = \"0x3f8-0x3ff\"", Some("{ ioapic = 4 }"))),
    );
    let a = resolve(&s, &[]);
    let g = a.grant_for(id(&s, "serial"), "com1").unwrap();
    assert_eq!(g.pci, None);
    assert!(g.memory.is_empty());
    assert_eq!(
        g.ports,
        [PortRange {
            first: 0x3F8,
            last: 0x3FF
        }]
    );
    assert_eq!(
        g.irq,
        Some(IrqGrant::IoApic {
            ioapic: 0,
            pin: 4,
            trigger: Trigger::Edge,
            polarity: Polarity::High
        })
    );
    let (name, driver, resolved) = a.resolved().next().unwrap();
    assert_eq!((name, driver), ("com1", id(&s, "serial")));
    assert!(matches!(resolved.hardware, Hardware::IoPorts(_)));
}

#[test]
fn refusals_other_component_and_unknown_device_look_the_same() {
    let s = system(
        &(driver("net", &["nic0"])
            + &driver("serial", &["com1"])
            + &device("nic0", "pci = \"8086:10d3\"", Some("\"msi\""))
            + &device("com1", "ioport = \"0x3f8-0x3ff\"", None)),
    );
    let (found, _) = scan(qemu_pc());
    let a = resolve(&s, &found);
    let serial = id(&s, "serial");
    assert_eq!(a.grant_for(serial, "nic0"), Err(GrantError::NotAssigned));
    assert_eq!(a.grant_for(serial, "nic9"), Err(GrantError::NotAssigned));
    assert_eq!(
        a.grant_for(id(&s, "devices"), "nic0"),
        Err(GrantError::NotAssigned)
    );
    assert_eq!(
        a.grant_for(ComponentId(999), "nic0"),
        Err(GrantError::NotAssigned)
    );
    assert!(a.grant_for(serial, "com1").is_ok());
    assert!(a.grant_for(id(&s, "net"), "nic0").is_ok());
}

#[test]
fn missing_hardware_is_an_error_value_and_others_still_resolve() {
    let s = system(
        &(driver("net", &["nic0", "nic1"])
            + &device("nic0", "pci = \"8086:10d3\"\nindex = 1", None)
            + &device("nic1", "pci = \"1af4:1000\"", None)),
    );
    let (found, _) = scan(qemu_pc());
    let a = resolve(&s, &found);
    let problems: Vec<_> = a.problems().collect();
    assert_eq!(problems, [("nic0", &AssignError::NotFound)]);
    let net = id(&s, "net");
    assert_eq!(
        a.grant_for(net, "nic0"),
        Err(GrantError::Unresolved(AssignError::NotFound))
    );
    assert!(a.grant_for(net, "nic1").is_ok());
    assert!(a.get("nic0").is_none());
    assert!(a.get("nic1").is_some());
}

#[test]
fn two_selectors_of_one_function_are_ambiguous() {
    let s = system(
        &(driver("net", &["by-id"])
            + &driver("other", &["by-class"])
            + &device("by-id", "pci = \"8086:10d3\"", None)
            + &device("by-class", "class = \"02:00\"", None)),
    );
    let (found, _) = scan(qemu_pc());
    let a = resolve(&s, &found);
    assert_eq!(
        a.grant_for(id(&s, "other"), "by-class"),
        Err(GrantError::Unresolved(AssignError::Ambiguous {
            other: "by-id".into()
        }))
    );
    assert!(a.grant_for(id(&s, "net"), "by-id").is_ok());
}

#[test]
fn interrupt_refusals() {
    let s = system(
        &(driver("net", &["virtio-msi", "no-pin"])
            + &device("virtio-msi", "pci = \"1af4:1000\"", Some("\"msi\""))
            + &device("no-pin", "pci = \"1234:1111\"", Some("\"legacy\""))),
    );
    let (found, _) = scan(qemu_pc());
    let a = resolve(&s, &found);
    let problems: Vec<_> = a.problems().map(|(n, e)| (n, e.clone())).collect();
    assert_eq!(
        problems,
        [
            ("virtio-msi", AssignError::NoMsi),
            ("no-pin", AssignError::NoInterruptLine)
        ]
    );
}

#[test]
fn configuration_ports_are_never_granted() {
    let s = system(
        &(driver("sneaky", &["pci-ports"])
            + &device("pci-ports", "ioport = \"0xcf0-0xcfb\"", None)),
    );
    let a = resolve(&s, &[]);
    assert_eq!(
        a.grant_for(id(&s, "sneaky"), "pci-ports"),
        Err(GrantError::Unresolved(AssignError::ConfigPorts))
    );
}

#[test]
fn unplaced_bars_are_refused() {
    let mut m = Machine::default();
    m.add(
        0,
        0,
        0,
        Function::new(0x1234, 0x0001, [0xFF, 0, 0], 0).mem32(0, 0, 4096, false),
    );
    let s = system(&(driver("d", &["x"]) + &device("x", "pci = \"1234:0001\"", None)));
    let (found, _) = scan(m);
    let a = resolve(&s, &found);
    assert_eq!(
        a.grant_for(id(&s, "d"), "x"),
        Err(GrantError::Unresolved(AssignError::BarUnplaced { bar: 0 }))
    );
}

#[test]
fn unassigned_functions_leave_out_bridges() {
    let s = system(&(driver("net", &["nic0"]) + &device("nic0", "pci = \"8086:10d3\"", None)));
    let (found, _) = scan(qemu_pc());
    let a = resolve(&s, &found);
    let left: Vec<String> = a.unassigned(&found).map(|d| d.addr.to_string()).collect();
    assert_eq!(left, ["00:01.1", "00:02.0", "00:04.0"]);
}

#[test]
fn memory_mapped_platform_device() {
    let s = system(
        &(driver("timer", &["hpet"])
            + &device("hpet", "mmio = \"0xfed00000-0xfed003ff\"", Some("\"msi\""))),
    );
    let a = resolve(&s, &[]);
    let g = a.grant_for(id(&s, "timer"), "hpet").unwrap();
    assert_eq!(g.pci, None);
    assert!(g.ports.is_empty());
    // The 1 KiB block is offered as BAR 0, a whole page.
    assert_eq!(
        g.memory,
        [MemoryRegion {
            bar: 0,
            base: 0xfed0_0000,
            size: 0x1000,
            prefetchable: false
        }]
    );
    assert_eq!(g.memory_bars(), 1);
    assert_eq!(g.irq, Some(IrqGrant::Message));
}

#[test]
fn memory_mapped_device_with_a_fixed_line_is_edge_triggered() {
    let s = system(
        &(driver("timer", &["hpet"])
            + &device(
                "hpet",
                "mmio = \"0xfed00000-0xfed003ff\"",
                Some("{ ioapic = 2 }"),
            )),
    );
    let g = resolve(&s, &[]).grant_for(id(&s, "timer"), "hpet").unwrap();
    assert_eq!(
        g.irq,
        Some(IrqGrant::IoApic {
            ioapic: 0,
            pin: 2,
            trigger: Trigger::Edge,
            polarity: Polarity::High
        })
    );
}
