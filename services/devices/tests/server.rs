//! The device access service's four interfaces (`proto::devices`, `::ports`, `::message`,
//! `::config`) driven through their client stubs against the simulated QEMU `pc` and a fake
//! [`Kernel`] that records every capability operation.

mod common;

use std::collections::BTreeMap;

use common::system::{device, driver, system};
use common::{at, qemu_pc, Machine, PortOp};
use devices::server::dispatch;
use devices::{
    ConfigSpace, DeviceUntyped, DevicesServer, GetIoApicArgs, GetMsiArgs, InterruptController,
    IrqIssue, Kernel, KernelError, Object, PortConfigSpace, RetypeStep, FRAME_SIZE,
};
use proto::devices::{self as api, config, message, ports, IrqMode};
use proto::{CapSlot, Loopback, Message, Name};
use sysdesc::System;

/// The slot of the I/O port capability the fake reports.
const IO_PORT: u64 = 8;

/// Records what the shell would do with capabilities: fresh slots count up from 100.
struct Fake {
    cfg: PortConfigSpace<Machine>,
    next: u64,
    /// Every retype made, with the first slot it filled.
    retyped: Vec<(u64, RetypeStep)>,
    deleted: Vec<u64>,
    /// Every IRQ handler made, with its slot.
    irqs: Vec<(u64, IrqIssue)>,
    /// The sizes asked of the memory service.
    asked: Vec<u8>,
    /// DMA frames made: (untyped, frame, size_bits).
    dma: Vec<(u64, u64, u8)>,
    refuse_irq: bool,
    refuse_memory: bool,
    /// Frame retypes at this physical address fail.
    refuse_frames_at: Option<u64>,
    /// Every store into a device frame: (frame slot, offset, value).
    frame_writes: Vec<(u64, u16, u32)>,
    log: Vec<String>,
}

impl Fake {
    fn new(machine: Machine) -> Fake {
        Fake {
            cfg: PortConfigSpace::new(machine),
            next: 100,
            retyped: Vec::new(),
            deleted: Vec::new(),
            irqs: Vec::new(),
            asked: Vec::new(),
            dma: Vec::new(),
            refuse_irq: false,
            refuse_memory: false,
            refuse_frames_at: None,
            frame_writes: Vec::new(),
            log: Vec::new(),
        }
    }

    fn take(&mut self, count: u32) -> u64 {
        let first = self.next;
        self.next += u64::from(count);
        first
    }

    fn machine(&mut self) -> &mut Machine {
        self.cfg.ports()
    }

    /// The physical address of every frame carved at start, by slot.
    fn carved_frames(&self) -> BTreeMap<u64, u64> {
        let mut out = BTreeMap::new();
        for (first, step) in &self.retyped {
            if step.object == Object::Frame {
                for k in 0..u64::from(step.count) {
                    out.insert(first + k, step.paddr + k * FRAME_SIZE);
                }
            }
        }
        out
    }
}

impl Kernel for Fake {
    type Config = PortConfigSpace<Machine>;
    fn config(&mut self) -> &mut Self::Config {
        &mut self.cfg
    }
    fn retype(&mut self, step: &RetypeStep) -> Result<u64, KernelError> {
        if step.object == Object::Frame && self.refuse_frames_at == Some(step.paddr) {
            return Err(KernelError);
        }
        let first = self.take(step.count);
        self.retyped.push((first, *step));
        Ok(first)
    }
    fn delete(&mut self, slot: u64) {
        self.deleted.push(slot);
    }
    fn issue_irq(&mut self, how: IrqIssue) -> Result<u64, KernelError> {
        if self.refuse_irq {
            return Err(KernelError);
        }
        let slot = self.take(1);
        self.irqs.push((slot, how));
        Ok(slot)
    }
    fn io_port(&self) -> u64 {
        IO_PORT
    }
    fn alloc_untyped(&mut self, size_bits: u8) -> Result<u64, KernelError> {
        self.asked.push(size_bits);
        if self.refuse_memory {
            return Err(KernelError);
        }
        Ok(self.take(1))
    }
    fn retype_frame(&mut self, untyped: u64, size_bits: u8) -> Result<(u64, u64), KernelError> {
        let frame = self.take(1);
        self.dma.push((untyped, frame, size_bits));
        Ok((frame, 0x4000_0000 + (frame << 21)))
    }
    fn write_frame32(&mut self, frame: u64, offset: u16, value: u32) -> Result<(), KernelError> {
        self.frame_writes.push((frame, offset, value));
        Ok(())
    }
    fn log(&mut self, line: std::fmt::Arguments<'_>) {
        self.log.push(line.to_string());
    }
}

/// One device untyped of 16 MiB at 0xFE000000: the e1000e's, the VGA's register BAR and the
/// HPET are inside; the VGA's 16 MiB frame buffer at 0xFD000000 is not.
const UNTYPEDS: [DeviceUntyped; 1] = [DeviceUntyped {
    paddr: 0xFE00_0000,
    size_bits: 24,
}];

/// `net` drives the e1000e (MSI), `serial` COM1 (IOAPIC pin 4), `display` the VGA (polled),
/// `timer` the HPET (a platform MSI), and `other` drives nothing.
fn description() -> System {
    system(
        &(driver("net", &["nic0"])
            + &driver("serial", &["com1"])
            + &driver("display", &["vga"])
            + &driver("timer", &["hpet"])
            + &driver("other", &[])
            + &device("nic0", "pci = \"8086:10d3\"", Some("\"msi\""))
            + &device("com1", "ioport = \"0x3f8-0x3ff\"", Some("{ ioapic = 4 }"))
            + &device("vga", "pci = \"1234:1111\"", None)
            + &device("hpet", "mmio = \"0xfed00000-0xfed003ff\"", Some("\"msi\""))),
    )
}

fn server() -> DevicesServer<Fake> {
    start(Fake::new(qemu_pc()))
}

fn start(fake: Fake) -> DevicesServer<Fake> {
    DevicesServer::start(&description(), &UNTYPEDS, InterruptController::IoApic, fake)
}

fn badge(name: &str) -> u64 {
    proto::badge(description().component_id(name).unwrap())
}

fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn devices(
    s: &mut DevicesServer<Fake>,
    badge: u64,
) -> api::DevicesClient<Loopback<impl FnMut(&Message) -> Message + '_>> {
    api::DevicesClient::new(Loopback(move |m: &Message| dispatch(s, badge, m)))
}

fn ports(
    s: &mut DevicesServer<Fake>,
    badge: u64,
) -> ports::PortsClient<Loopback<impl FnMut(&Message) -> Message + '_>> {
    ports::PortsClient::new(Loopback(move |m: &Message| dispatch(s, badge, m)))
}

fn message(
    s: &mut DevicesServer<Fake>,
    badge: u64,
) -> message::MessageClient<Loopback<impl FnMut(&Message) -> Message + '_>> {
    message::MessageClient::new(Loopback(move |m: &Message| dispatch(s, badge, m)))
}

fn config(
    s: &mut DevicesServer<Fake>,
    badge: u64,
) -> config::ConfigClient<Loopback<impl FnMut(&Message) -> Message + '_>> {
    config::ConfigClient::new(Loopback(move |m: &Message| dispatch(s, badge, m)))
}

fn claim(s: &mut DevicesServer<Fake>, who: &str, dev: &str) -> api::DeviceInfo {
    devices(s, badge(who)).claim(n(dev)).unwrap()
}

#[test]
fn start_logs_quiets_unassigned_functions_and_carves_only_what_fits() {
    let mut s = server();
    let log = s.kernel().log.clone();
    assert!(log.contains(&"devices: nic0 = pci 00:03.0 for net".to_string()));
    assert!(log.contains(&"devices: com1 = ports 0x3f8-0x3ff for serial".to_string()));
    assert!(log.contains(&"devices: nic0: BAR 0: 32 frames at 0xfeb80000".to_string()));
    assert!(log.contains(&"devices: vga: BAR 2: 1 frames at 0xfebc4000".to_string()));
    assert!(
        log.iter()
            .any(|l| l.starts_with("devices: vga: BAR 0 at 0xfd000000: cannot carve")),
        "{log:#?}"
    );
    assert_eq!(
        log.last().unwrap(),
        "devices: 7 PCI functions, 4 devices resolved, 2 unassigned functions disabled, 1 device untypeds"
    );
    // The virtio-net and the IDE function belong to nobody: decoding and bus master off,
    // INTx disabled. The e1000e keeps the firmware's command register until it is claimed.
    let m = s.kernel_mut().machine();
    assert_eq!(m.function(0, 4, 0).command(), 0x0400);
    assert_eq!(m.function(0, 1, 1).command(), 0x0400);
    assert_eq!(m.function(0, 3, 0).command(), common::FIRMWARE_COMMAND);
    // Padding untypeds only move watermarks: all deleted; no frame is.
    let k = s.kernel();
    let frames = k.carved_frames();
    let padding: Vec<u64> = k
        .retyped
        .iter()
        .filter(|(_, step)| matches!(step.object, Object::Untyped { .. }))
        .flat_map(|(first, step)| *first..*first + u64::from(step.count))
        .collect();
    assert!(!padding.is_empty());
    assert_eq!(k.deleted, padding);
    assert!(k.deleted.iter().all(|slot| !frames.contains_key(slot)));
    assert!(k.irqs.is_empty(), "handlers are made on request only");
}

#[test]
fn a_bar_the_kernel_refuses_to_carve_costs_only_itself() {
    let mut fake = Fake::new(qemu_pc());
    fake.refuse_frames_at = Some(0xFEBA_0000);
    let mut s = start(fake);
    assert!(s
        .kernel()
        .log
        .iter()
        .any(|l| l.starts_with("devices: nic0: BAR 1: retype") && l.ends_with("failed")));
    assert!(!s.kernel().log.iter().any(|l| l.contains("BAR 1: 0 frames")));
    claim(&mut s, "net", "nic0");
    let mut client = devices(&mut s, badge("net"));
    assert_eq!(client.bar(n("nic0"), 1, 0), Err(api::Error::OutOfRange));
    assert_eq!(client.bar(n("nic0"), 0, 31).unwrap().paddr, 0xFEB9_F000);
    assert_eq!(client.bar(n("nic0"), 3, 0).unwrap().paddr, 0xFEBC_0000);
    drop(client);
    claim(&mut s, "timer", "hpet");
    assert_eq!(
        devices(&mut s, badge("timer"))
            .bar(n("hpet"), 0, 0)
            .unwrap()
            .paddr,
        0xFED0_0000
    );
}

#[test]
fn list_walks_the_functions_in_bus_order() {
    let mut s = server();
    let found: Vec<_> = s.found().iter().map(devices::server::function_of).collect();
    let mut client = devices(&mut s, badge("other"));
    for (i, f) in found.iter().enumerate() {
        assert_eq!(client.list(i as u32).unwrap(), *f);
    }
    let e1000e = client.list(5).unwrap();
    assert_eq!((e1000e.bus, e1000e.dev, e1000e.func), (0, 3, 0));
    assert_eq!(
        (e1000e.vendor, e1000e.device, e1000e.class),
        (0x8086, 0x10D3, 0x02_00_00)
    );
    assert_eq!(client.list(7), Err(api::Error::NoEntry));
    assert_eq!(client.list(u32::MAX), Err(api::Error::NoEntry));
}

#[test]
fn claim_by_the_driver_enables_and_describes_its_device() {
    let mut s = server();
    let info = claim(&mut s, "net", "nic0");
    assert!(info.is_pci);
    assert_eq!(
        (info.pci.dev, info.pci.vendor, info.pci.device),
        (3, 0x8086, 0x10D3)
    );
    assert_eq!(info.bars, 0b1011, "BARs 0, 1 and 3 are memory");
    assert_eq!((info.first_port, info.last_port), (0xC000, 0xC01F));
    assert_eq!(info.irq, IrqMode::Msi);
    // Memory, bus master and (it has an I/O BAR) I/O decoding.
    assert_eq!(s.kernel_mut().machine().function(0, 3, 0).command(), 0x0007);

    let com1 = claim(&mut s, "serial", "com1");
    assert!(!com1.is_pci);
    assert_eq!(com1.pci.vendor, 0);
    assert_eq!(
        (com1.bars, com1.first_port, com1.last_port),
        (0, 0x3F8, 0x3FF)
    );
    assert_eq!(com1.irq, IrqMode::IoApic);
    assert_eq!(claim(&mut s, "display", "vga").irq, IrqMode::None);
    let hpet = claim(&mut s, "timer", "hpet");
    assert!(!hpet.is_pci);
    assert_eq!((hpet.bars, hpet.irq), (1, IrqMode::Msi));
    // Claiming again (a restarted driver) is fine and answers the same.
    assert_eq!(claim(&mut s, "net", "nic0"), info);
}

#[test]
fn claim_by_any_other_client_is_not_found() {
    let mut s = server();
    for (who, dev) in [
        ("other", "nic0"),
        ("serial", "nic0"),
        ("net", "com1"),
        ("net", "nic9"),
    ] {
        assert_eq!(
            devices(&mut s, badge(who)).claim(n(dev)),
            Err(api::Error::NotFound),
            "{who} claims {dev}"
        );
    }
    // Unbadged, and a badge naming no component.
    assert_eq!(
        devices(&mut s, 0).claim(n("nic0")),
        Err(api::Error::NotFound)
    );
    assert_eq!(
        devices(&mut s, 999).claim(n("nic0")),
        Err(api::Error::NotFound)
    );
    // Nothing was enabled for them.
    assert_eq!(
        s.kernel_mut().machine().function(0, 3, 0).command(),
        common::FIRMWARE_COMMAND
    );
    // Nor did the refused claims count as claims.
    let mut net = devices(&mut s, badge("net"));
    assert_eq!(net.bar(n("nic0"), 0, 0), Err(api::Error::NotClaimed));
}

#[test]
fn bar_pages_in_and_out_of_range() {
    let mut s = server();
    assert_eq!(
        devices(&mut s, badge("net")).bar(n("nic0"), 0, 0),
        Err(api::Error::NotClaimed)
    );
    claim(&mut s, "net", "nic0");
    let frames = s.kernel().carved_frames();
    let mut client = devices(&mut s, badge("net"));
    for (bar, base, pages) in [
        (0u8, 0xFEB8_0000u64, 32u64),
        (1, 0xFEBA_0000, 32),
        (3, 0xFEBC_0000, 4),
    ] {
        for page in [0, 1, pages - 1] {
            let f = client.bar(n("nic0"), bar, page).unwrap();
            assert_eq!(f.paddr, base + page * FRAME_SIZE, "BAR {bar} page {page}");
            assert_eq!(
                frames.get(&f.frame.0),
                Some(&f.paddr),
                "a carved frame's slot"
            );
        }
        assert_eq!(
            client.bar(n("nic0"), bar, pages),
            Err(api::Error::OutOfRange)
        );
    }
    // BAR 2 is I/O, BAR 4 absent, and pages far past the end.
    assert_eq!(client.bar(n("nic0"), 2, 0), Err(api::Error::OutOfRange));
    assert_eq!(client.bar(n("nic0"), 4, 0), Err(api::Error::OutOfRange));
    assert_eq!(
        client.bar(n("nic0"), 0, u64::MAX),
        Err(api::Error::OutOfRange)
    );
    drop(client);
    // Another driver's device stays NotFound even when it is claimed.
    claim(&mut s, "display", "vga");
    let mut client = devices(&mut s, badge("net"));
    assert_eq!(client.bar(n("vga"), 2, 0), Err(api::Error::NotFound));
    drop(client);
    // The VGA's frame buffer could not be carved; its register BAR could.
    let mut display = devices(&mut s, badge("display"));
    assert_eq!(display.bar(n("vga"), 0, 0), Err(api::Error::OutOfRange));
    assert_eq!(display.bar(n("vga"), 2, 0).unwrap().paddr, 0xFEBC_4000);
    drop(display);
    // The HPET's 1 KiB block is one page, as BAR 0.
    claim(&mut s, "timer", "hpet");
    let mut timer = devices(&mut s, badge("timer"));
    assert_eq!(timer.bar(n("hpet"), 0, 0).unwrap().paddr, 0xFED0_0000);
    assert_eq!(timer.bar(n("hpet"), 0, 1), Err(api::Error::OutOfRange));
}

#[test]
fn irq_issues_one_handler_and_programs_msi() {
    let mut s = server();
    assert_eq!(
        devices(&mut s, badge("net")).irq(n("nic0")),
        Err(api::Error::NotClaimed)
    );
    claim(&mut s, "net", "nic0");
    let first = devices(&mut s, badge("net")).irq(n("nic0")).unwrap();
    assert_eq!(
        s.kernel().irqs,
        [(
            first.0,
            IrqIssue::Msi(GetMsiArgs {
                pci_bus: 0,
                pci_dev: 3,
                pci_func: 0,
                handle: 0,
                vector: 0
            })
        )]
    );
    // The function's MSI capability (at 0xD0, 64-bit): address, data, enabled; INTx off.
    let f = s.kernel_mut().machine().function(0, 3, 0).clone();
    assert_eq!(f.get32(0xD4), 0xFEE0_0000);
    assert_eq!(f.get16(0xDC), 0x30);
    assert_eq!(f.get16(0xD2) & 1, 1);
    assert_eq!(f.command() & 0x0400, 0x0400);
    // Asking again (a restarted driver) gives the same handler; none is made.
    assert_eq!(devices(&mut s, badge("net")).irq(n("nic0")), Ok(first));
    assert_eq!(s.kernel().irqs.len(), 1);
    // The next handler gets the next user IRQ: COM1 on IOAPIC pin 4, edge, active high.
    claim(&mut s, "serial", "com1");
    let com1 = devices(&mut s, badge("serial")).irq(n("com1")).unwrap();
    assert_ne!(com1, first);
    assert_eq!(
        s.kernel().irqs[1],
        (
            com1.0,
            IrqIssue::IoApic(GetIoApicArgs {
                ioapic: 0,
                pin: 4,
                level: 0,
                polarity: 0,
                vector: 1
            })
        )
    );
    // Someone else's device, or an unknown one.
    let mut other = devices(&mut s, badge("other"));
    assert_eq!(other.irq(n("nic0")), Err(api::Error::NotFound));
    assert_eq!(other.irq(n("nope")), Err(api::Error::NotFound));
}

#[test]
fn msix_programs_entry_zero_through_the_services_own_mapping_and_hides_the_table() {
    let described = system(
        &(driver("net", &["nic0"]) + &device("nic0", "pci = \"8086:10d3\"", Some("\"msix\""))),
    );
    let mut s = DevicesServer::start(
        &described,
        &UNTYPEDS,
        InterruptController::IoApic,
        Fake::new(qemu_pc()),
    );
    let net = proto::badge(described.component_id("net").unwrap());
    assert_eq!(devices(&mut s, net).claim(n("nic0")).unwrap().irq, IrqMode::MsiX);
    // The table (BAR3 page 0) and the pending bits (BAR3 page 2) stay with the service.
    assert_eq!(
        devices(&mut s, net).bar(n("nic0"), 3, 0),
        Err(api::Error::OutOfRange)
    );
    assert_eq!(
        devices(&mut s, net).bar(n("nic0"), 3, 2),
        Err(api::Error::OutOfRange)
    );
    assert!(devices(&mut s, net).bar(n("nic0"), 3, 1).is_ok());
    assert!(devices(&mut s, net).bar(n("nic0"), 0, 0).is_ok());
    let handler = devices(&mut s, net).irq(n("nic0")).unwrap();
    assert!(
        matches!(s.kernel().irqs[..], [(slot, IrqIssue::Msi(GetMsiArgs { pci_dev: 3, vector: 0, .. }))] if slot == handler.0)
    );
    // Entry 0 of the table, in BAR3's first frame: masked, address, data, unmasked; the
    // other four entries masked.
    let table_frame = s
        .kernel()
        .carved_frames()
        .into_iter()
        .find(|&(_, paddr)| paddr == 0xFEB8_0000 + (256 << 10))
        .unwrap()
        .0;
    let writes = s.kernel().frame_writes.clone();
    assert!(
        writes.iter().all(|&(frame, _, _)| frame == table_frame),
        "{writes:x?}"
    );
    let stores: Vec<(u16, u32)> = writes.iter().map(|&(_, o, v)| (o, v)).collect();
    assert_eq!(
        stores,
        [
            (0x1C, 1),
            (0x2C, 1),
            (0x3C, 1),
            (0x4C, 1),
            (0x0C, 1),
            (0x00, 0xFEE0_0000),
            (0x04, 0),
            (0x08, 0x30),
            (0x0C, 0)
        ]
    );
    // MSI-X enabled with the function mask lifted; MSI and INTx off.
    let f = s.kernel_mut().machine().function(0, 3, 0).clone();
    assert_eq!(f.get16(0xA2) & 0xC000, 0x8000);
    assert_eq!(f.get16(0xD2) & 1, 0);
    assert_eq!(f.command() & 0x0400, 0x0400);
}

#[test]
fn msix_asked_of_a_function_without_it_is_a_logged_problem() {
    let described = system(
        &(driver("display", &["vga"]) + &device("vga", "pci = \"1234:1111\"", Some("\"msix\""))),
    );
    let s = DevicesServer::start(
        &described,
        &UNTYPEDS,
        InterruptController::IoApic,
        Fake::new(qemu_pc()),
    );
    assert!(
        s.kernel()
            .log
            .iter()
            .any(|l| l.contains("vga") && l.contains("NoMsiX")),
        "{:?}",
        s.kernel().log
    );
}

#[test]
fn irq_of_a_polled_device_or_refused_by_the_kernel_is_no_irq() {
    let mut s = server();
    claim(&mut s, "display", "vga");
    assert_eq!(
        devices(&mut s, badge("display")).irq(n("vga")),
        Err(api::Error::NoIrq)
    );
    claim(&mut s, "net", "nic0");
    s.kernel_mut().refuse_irq = true;
    assert_eq!(
        devices(&mut s, badge("net")).irq(n("nic0")),
        Err(api::Error::NoIrq)
    );
    assert!(s
        .kernel()
        .log
        .iter()
        .any(|l| l.starts_with("devices: nic0: cannot make IRQ handler")));
    // Nothing was programmed, and the vector was not used up: the retry gets vector 0.
    assert_eq!(
        s.kernel_mut().machine().function(0, 3, 0).get16(0xD2) & 1,
        0
    );
    s.kernel_mut().refuse_irq = false;
    devices(&mut s, badge("net")).irq(n("nic0")).unwrap();
    assert!(matches!(
        s.kernel().irqs[..],
        [(_, IrqIssue::Msi(GetMsiArgs { vector: 0, .. }))]
    ));
}

#[test]
fn message_of_a_platform_msi_after_its_handler() {
    let mut s = server();
    let timer = badge("timer");
    assert_eq!(
        message(&mut s, timer).msi_message(n("hpet")),
        Err(message::Error::NotClaimed)
    );
    claim(&mut s, "timer", "hpet");
    assert_eq!(
        message(&mut s, timer).msi_message(n("hpet")),
        Err(message::Error::NoIrq),
        "no handler yet"
    );
    // Another handler first, so the HPET's vector is not the first one.
    claim(&mut s, "serial", "com1");
    devices(&mut s, badge("serial")).irq(n("com1")).unwrap();
    let handler = devices(&mut s, timer).irq(n("hpet")).unwrap();
    assert_eq!(
        s.kernel().irqs.last(),
        Some(&(
            handler.0,
            IrqIssue::Msi(GetMsiArgs {
                pci_bus: 0,
                pci_dev: 0,
                pci_func: 0,
                handle: 0,
                vector: 1
            })
        ))
    );
    let m = message(&mut s, timer).msi_message(n("hpet")).unwrap();
    assert_eq!((m.address, m.data), (0xFEE0_0000, 0x31));
    // A PCI function's MSI is programmed by devices itself: no message for its driver.
    claim(&mut s, "net", "nic0");
    devices(&mut s, badge("net")).irq(n("nic0")).unwrap();
    assert_eq!(
        message(&mut s, badge("net")).msi_message(n("nic0")),
        Err(message::Error::NoIrq)
    );
    assert_eq!(
        message(&mut s, badge("net")).msi_message(n("hpet")),
        Err(message::Error::NotFound)
    );
    assert_eq!(
        message(&mut s, 0).msi_message(n("hpet")),
        Err(message::Error::NotFound)
    );
}

#[test]
fn config_reads_of_the_claimed_function_only_and_never_a_write() {
    let mut s = server();
    let net = badge("net");
    assert_eq!(
        config(&mut s, net).read_config(n("nic0"), 0),
        Err(config::Error::NotClaimed)
    );
    claim(&mut s, "net", "nic0");
    s.kernel_mut().machine().log.clear();
    let before = s.kernel_mut().machine().function(0, 3, 0).config;
    let mut client = config(&mut s, net);
    assert_eq!(client.read_config(n("nic0"), 0), Ok(0x10D3_8086));
    assert_eq!(client.read_config(n("nic0"), 0x10), Ok(0xFEB8_0000));
    // The capability pointer at 0x34 leads the driver's walk.
    assert_eq!(
        client.read_config(n("nic0"), 0x34).map(|w| w & 0xFF),
        Ok(0xC8)
    );
    for offset in [1, 2, 3, 0xFF] {
        assert_eq!(
            client.read_config(n("nic0"), offset),
            Err(config::Error::OutOfRange),
            "offset {offset:#x}"
        );
    }
    assert_eq!(
        client.read_config(n("com1"), 0),
        Err(config::Error::NotFound)
    );
    drop(client);
    // Only the address latch is written; the function is unchanged.
    let m = s.kernel_mut().machine();
    assert!(m
        .log
        .iter()
        .all(|op| !matches!(op, PortOp::Out(_, 0xCFC..=0xCFF, _))));
    assert_eq!(m.function(0, 3, 0).config, before);
    // COM1 is not a PCI function: nothing to read.
    claim(&mut s, "serial", "com1");
    assert_eq!(
        config(&mut s, badge("serial")).read_config(n("com1"), 0),
        Err(config::Error::OutOfRange)
    );
    assert_eq!(
        config(&mut s, badge("other")).read_config(n("nic0"), 0),
        Err(config::Error::NotFound)
    );
    // The interface has no write operation: a made-up label after the four interfaces' is
    // refused and writes nothing.
    let before = s.kernel_mut().machine().functions.clone();
    let write = Message::with_words(9, &[0x10, 0xFFFF_FFFF]).unwrap();
    assert_eq!(
        dispatch(&mut s, net, &write).label,
        api::Error::Malformed as u64
    );
    let after = &s.kernel_mut().machine().functions;
    assert!(before.iter().all(|(k, f)| after[k].config == f.config));
}

#[test]
fn ioport_for_a_claimed_device_with_ports() {
    let mut s = server();
    let serial = badge("serial");
    assert_eq!(
        ports(&mut s, serial).ioport(n("com1")),
        Err(ports::Error::NotClaimed)
    );
    claim(&mut s, "serial", "com1");
    assert_eq!(
        ports(&mut s, serial).ioport(n("com1")),
        Ok(CapSlot(IO_PORT))
    );
    // The e1000e has an I/O BAR; the VGA has none.
    claim(&mut s, "net", "nic0");
    assert_eq!(
        ports(&mut s, badge("net")).ioport(n("nic0")),
        Ok(CapSlot(IO_PORT))
    );
    claim(&mut s, "display", "vga");
    assert_eq!(
        ports(&mut s, badge("display")).ioport(n("vga")),
        Err(ports::Error::NoPorts)
    );
    assert_eq!(
        ports(&mut s, badge("other")).ioport(n("com1")),
        Err(ports::Error::NotFound)
    );
}

#[test]
fn dma_for_a_client_that_has_claimed_a_device() {
    let mut s = server();
    let net = badge("net");
    assert_eq!(devices(&mut s, net).dma(12), Err(api::Error::NotClaimed));
    for bits in [0, 11, 13, 20, 22, 255] {
        assert_eq!(
            devices(&mut s, net).dma(bits),
            Err(api::Error::InvalidSize),
            "{bits}"
        );
    }
    assert!(s.kernel().asked.is_empty());
    claim(&mut s, "net", "nic0");
    let small = devices(&mut s, net).dma(12).unwrap();
    let large = devices(&mut s, net).dma(21).unwrap();
    let k = s.kernel();
    assert_eq!(k.asked, [12, 21]);
    assert_eq!(k.dma.len(), 2);
    assert_eq!((k.dma[0].1, k.dma[0].2), (small.frame.0, 12));
    assert_eq!((k.dma[1].1, k.dma[1].2), (large.frame.0, 21));
    assert_eq!(small.paddr, 0x4000_0000 + (small.frame.0 << 21));
    // Memory refuses: OutOfMemory, and no frame is made.
    s.kernel_mut().refuse_memory = true;
    assert_eq!(devices(&mut s, net).dma(12), Err(api::Error::OutOfMemory));
    assert_eq!(s.kernel().dma.len(), 2);
    // A client that claimed nothing gets none, even with a claim by someone else around.
    s.kernel_mut().refuse_memory = false;
    assert_eq!(
        devices(&mut s, badge("other")).dma(12),
        Err(api::Error::NotClaimed)
    );
    assert_eq!(devices(&mut s, 0).dma(12), Err(api::Error::NotClaimed));
}

#[test]
fn malformed_requests_are_refused_without_effect() {
    let mut s = server();
    let net = badge("net");
    let claim_request = api::Request::Claim { device: n("nic0") }.encode().unwrap();
    let truncated = |m: &Message| Message::with_words(m.label, &m.words()[..m.len() - 1]).unwrap();
    let extended = |m: &Message| {
        let mut m = *m;
        m.push(7).unwrap();
        m
    };
    let read = config::Request::ReadConfig {
        device: n("nic0"),
        offset: 0,
    }
    .encode()
    .unwrap();
    let ioport = ports::Request::IoPort { device: n("nic0") }
        .encode()
        .unwrap();
    let msi = message::Request::MsiMessage { device: n("nic0") }
        .encode()
        .unwrap();
    let cases = [
        (
            Message::with_words(0, &[]).unwrap(),
            api::Error::Malformed as u64,
        ),
        (
            Message::with_words(99, &[1, 2, 3]).unwrap(),
            api::Error::Malformed as u64,
        ),
        (
            Message::with_words(2, &[]).unwrap(),
            api::Error::Malformed as u64,
        ),
        (truncated(&claim_request), api::Error::Malformed as u64),
        (extended(&claim_request), api::Error::Malformed as u64),
        (truncated(&read), config::Error::Malformed as u64),
        (
            Message::with_words(6, &[]).unwrap(),
            ports::Error::Malformed as u64,
        ),
        (extended(&ioport), ports::Error::Malformed as u64),
        (truncated(&msi), message::Error::Malformed as u64),
        (
            Message::with_words(1, &[u64::MAX, 0]).unwrap(),
            api::Error::Malformed as u64,
        ),
    ];
    for (request, label) in &cases {
        assert_eq!(dispatch(&mut s, net, request).label, *label, "{request:?}");
    }
    // None of them claimed or enabled anything.
    assert_eq!(
        devices(&mut s, net).irq(n("nic0")),
        Err(api::Error::NotClaimed)
    );
    assert_eq!(
        s.kernel_mut().machine().function(0, 3, 0).command(),
        common::FIRMWARE_COMMAND
    );
    assert!(s.kernel().irqs.is_empty());
    // The server still answers well-formed requests.
    assert_eq!(dispatch(&mut s, net, &claim_request).label, 0);
    assert_eq!(
        config(&mut s, net).read_config(n("nic0"), 0),
        Ok(0x10D3_8086)
    );
}

#[test]
fn vendor_id_through_the_kernels_config_space() {
    // The server's reads go through the Kernel's configuration space, not a copy of it.
    let mut s = server();
    claim(&mut s, "net", "nic0");
    s.kernel_mut()
        .machine()
        .functions
        .get_mut(&(0, 3, 0))
        .unwrap()
        .set16(0x2C, 0xBEEF);
    assert_eq!(
        config(&mut s, badge("net"))
            .read_config(n("nic0"), 0x2C)
            .map(|w| w & 0xFFFF),
        Ok(0xBEEF)
    );
    assert_eq!(s.kernel_mut().config().read16(at(0, 3, 0), 0x2C), 0xBEEF);
}
