//! The device access service component: the only component that touches PCI configuration
//! space. Serves `proto::devices` (and `proto::devices::ports`) on its endpoint.
//!
//! A thin shell over the `devices` library. At start it enumerates PCI through the I/O port
//! capability (grant slot 8), resolves the description's `[[device]]`s, carves the frames of
//! every assigned device's memory BARs out of the device untypeds (slots 10..) — all at once,
//! because the untypeds' watermarks are shared — and quiets every function no device
//! resolved to. Then it registers `devices` with naming and serves.
//!
//! Capabilities it hands out (BAR frames, IRQ handlers, the I/O port capability) stay in its
//! own CNode and travel as copies, so a restarted driver that claims again gets the same
//! ones. IRQ handlers are made on the first `irq` request, with IRQ control (slot 9).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use devices::{
    disable, enable, enumerate, plan_msi, program_msi, Assignments, Carver, ConfigSpace,
    DeviceUntyped, Grant, GrantError, Hardware, InterruptController, IrqGrant, MsiMessage, Object,
    PciDevice, PortConfigSpace, PortIo, FIRST_USER_VECTOR,
};
use proto::devices::{DeviceInfo, Error, IrqMode, PciFunction, PhysFrame};
use proto::sel4_transport::{serve, EndpointTransport, ReceiveSlot};
use proto::{CapSlot, Name};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::{CNode, IoPort, IrqControl, Untyped, X86Page};
use sel4::{Cap, ObjectType};
use sysdesc::System;

rt::entry!(main);

const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);
/// Grant 8: the kernel's (global) I/O port capability.
const IO_PORT: Cap<IoPort> = Cap::from_raw(slots::GRANTS);
/// Grant 9: IRQ control.
const IRQ_CONTROL: Cap<IrqControl> = Cap::from_raw(slots::GRANTS + 1);
/// Grant 10 on: the device untypeds, in the order of the data blob's `untypeds` table.
const FIRST_UNTYPED: u64 = slots::GRANTS + 2;

#[cfg(irq_pic)]
const CONTROLLER: InterruptController = InterruptController::Pic;
#[cfg(not(irq_pic))]
const CONTROLLER: InterruptController = InterruptController::IoApic;

/// The I/O port capability as the library's port access. A failed invocation reads as all
/// ones (what an absent device reads as) and drops the write.
struct Ports;

impl PortIo for Ports {
    fn in8(&mut self, port: u16) -> u8 {
        IO_PORT.x86_io_port_in8(port).unwrap_or(u8::MAX)
    }
    fn in16(&mut self, port: u16) -> u16 {
        IO_PORT.x86_io_port_in16(port).unwrap_or(u16::MAX)
    }
    fn in32(&mut self, port: u16) -> u32 {
        IO_PORT.x86_io_port_in32(port).unwrap_or(u32::MAX)
    }
    fn out8(&mut self, port: u16, value: u8) {
        let _ = IO_PORT.x86_io_port_out8(port.into(), value.into());
    }
    fn out16(&mut self, port: u16, value: u16) {
        let _ = IO_PORT.x86_io_port_out16(port.into(), value.into());
    }
    fn out32(&mut self, port: u16, value: u32) {
        let _ = IO_PORT.x86_io_port_out32(port.into(), value.into());
    }
}

/// The frames carved for one memory BAR: (slot, physical address) per page.
type BarFrames = Vec<(u64, u64)>;

struct Service {
    cfg: PortConfigSpace<Ports>,
    found: Vec<PciDevice>,
    assignments: Assignments,
    /// Per device name, per BAR number, its frames.
    frames: BTreeMap<String, BTreeMap<u8, BarFrames>>,
    /// Per device name, its IRQ handler's slot, once made.
    irqs: BTreeMap<String, u64>,
    /// Per platform device name with a driver-programmed MSI, the message to program.
    messages: BTreeMap<String, MsiMessage>,
    /// (client, device) pairs claimed.
    claimed: BTreeSet<(u16, String)>,
    slots: Slots,
    /// The next user IRQ number (vector argument) to give a handler.
    next_irq: u8,
    /// The memory service, once looked up (for DMA).
    memory: Option<u64>,
}

impl Service {
    /// The grant of `device` for the client with `badge`, with the claim checked when
    /// `need_claim`. Unresolved devices are `NotFound` too (their problem was printed at
    /// start).
    fn grant(&self, badge: u64, device: &Name, need_claim: bool) -> Result<Grant, Error> {
        let client = proto::client(badge).ok_or(Error::NotFound)?;
        let grant = self
            .assignments
            .grant_for(client, device.as_str())
            .map_err(|_: GrantError| Error::NotFound)?;
        if need_claim
            && !self
                .claimed
                .contains(&(client.0, String::from(device.as_str())))
        {
            return Err(Error::NotClaimed);
        }
        Ok(grant)
    }

    fn pci_device(&self, device: &str) -> Option<PciDevice> {
        match self.assignments.get(device)?.1.hardware {
            Hardware::Pci(d) => Some(d),
            Hardware::IoPorts(_) | Hardware::Mmio { .. } => None,
        }
    }

    /// Makes the IRQ handler of `device` in a fresh slot.
    fn make_irq(&mut self, device: &str, irq: IrqGrant) -> Result<u64, Error> {
        let slot = self.slots.alloc().ok_or(Error::NoIrq)?;
        let vector = self.next_irq;
        let made = match irq {
            IrqGrant::IoApic { .. } => {
                let a = irq.ioapic_args(vector).ok_or(Error::NoIrq)?;
                IRQ_CONTROL.irq_control_get_ioapic(
                    OWN,
                    slot,
                    64,
                    a.ioapic.into(),
                    a.pin.into(),
                    a.level.into(),
                    a.polarity.into(),
                    a.vector.into(),
                )
            }
            IrqGrant::Pic { line } => IRQ_CONTROL.irq_control_get(line.into(), OWN, slot, 64),
            IrqGrant::Message => {
                // No PCI function: seL4 records the bus/device/function/handle only.
                let made =
                    IRQ_CONTROL.irq_control_get_msi(OWN, slot, 64, 0, 0, 0, 0, vector.into());
                if made.is_ok() {
                    let m = MsiMessage::new(0, FIRST_USER_VECTOR + vector);
                    self.messages.insert(String::from(device), m);
                }
                made
            }
            IrqGrant::Msi { .. } => {
                let d = self.pci_device(device).ok_or(Error::NoIrq)?;
                let setup = plan_msi(&d, vector, 0, 0).map_err(|_| Error::NoIrq)?;
                let m = setup.get_msi;
                IRQ_CONTROL
                    .irq_control_get_msi(
                        OWN,
                        slot,
                        64,
                        m.pci_bus.into(),
                        m.pci_dev.into(),
                        m.pci_func.into(),
                        m.handle,
                        m.vector.into(),
                    )
                    .and_then(|()| {
                        program_msi(&mut self.cfg, &d, setup.message)
                            .map_err(|_| sel4::Error::IllegalOperation)
                    })
            }
        };
        match made {
            Ok(()) => {
                if !matches!(irq, IrqGrant::Pic { .. }) {
                    self.next_irq += 1;
                }
                println!("devices: {device}: IRQ handler {irq:?} (user IRQ {vector})");
                Ok(slot)
            }
            Err(e) => {
                println!("devices: {device}: cannot make IRQ handler {irq:?}: {e:?}");
                let _ = OWN.cnode_delete(slot, 64);
                self.slots.free(slot);
                Err(Error::NoIrq)
            }
        }
    }

    /// The memory service's endpoint, looked up through naming on first use.
    fn memory(&mut self) -> Option<u64> {
        if self.memory.is_none() {
            let slot = self.slots.alloc()?;
            let mut naming =
                proto::naming::NamingClient::new(EndpointTransport::receiving(slots::NAMING, slot));
            match naming.lookup(Name::new("memory").ok()?) {
                Ok(binding) => self.memory = Some(binding.endpoint.0),
                Err(e) => {
                    println!("devices: no memory service for DMA: {e:?}");
                    self.slots.free(slot);
                }
            }
        }
        self.memory
    }
}

impl proto::devices::Server for Service {
    fn list(&mut self, _: u64, index: u32) -> Result<PciFunction, Error> {
        let d = self.found.get(index as usize).ok_or(Error::NoEntry)?;
        Ok(function_of(d))
    }

    fn claim(&mut self, badge: u64, device: Name) -> Result<DeviceInfo, Error> {
        let grant = self.grant(badge, &device, false)?;
        let pci = self.pci_device(device.as_str());
        if let Some(d) = &pci {
            enable(&mut self.cfg, d);
        }
        let client = proto::client(badge).ok_or(Error::NotFound)?;
        self.claimed
            .insert((client.0, String::from(device.as_str())));
        let (first_port, last_port) = grant
            .ports
            .first()
            .map(|r| (r.first, r.last))
            .unwrap_or((0, 0));
        Ok(DeviceInfo {
            is_pci: pci.is_some(),
            pci: pci.as_ref().map(function_of).unwrap_or(PciFunction {
                bus: 0,
                dev: 0,
                func: 0,
                vendor: 0,
                device: 0,
                class: 0,
            }),
            bars: grant.memory_bars(),
            first_port,
            last_port,
            irq: match grant.irq {
                None => IrqMode::None,
                Some(IrqGrant::Msi { .. } | IrqGrant::Message) => IrqMode::Msi,
                Some(IrqGrant::IoApic { .. }) => IrqMode::IoApic,
                Some(IrqGrant::Pic { .. }) => IrqMode::Pic,
            },
        })
    }

    fn bar(&mut self, badge: u64, device: Name, bar: u8, page: u64) -> Result<PhysFrame, Error> {
        self.grant(badge, &device, true)?;
        let frames = self
            .frames
            .get(device.as_str())
            .and_then(|bars| bars.get(&bar))
            .ok_or(Error::OutOfRange)?;
        let &(slot, paddr) = usize::try_from(page)
            .ok()
            .and_then(|p| frames.get(p))
            .ok_or(Error::OutOfRange)?;
        Ok(PhysFrame {
            frame: CapSlot(slot),
            paddr,
        })
    }

    fn irq(&mut self, badge: u64, device: Name) -> Result<CapSlot, Error> {
        let grant = self.grant(badge, &device, true)?;
        let irq = grant.irq.ok_or(Error::NoIrq)?;
        let slot = match self.irqs.get(device.as_str()) {
            Some(&slot) => slot,
            None => {
                let slot = self.make_irq(device.as_str(), irq)?;
                self.irqs.insert(String::from(device.as_str()), slot);
                slot
            }
        };
        Ok(CapSlot(slot))
    }

    /// DMA memory comes from the memory service (charged to devices' own budget for now:
    /// memory has no "allocate for that client" operation open to devices), retyped into one
    /// frame: 2^12 (a 4 KiB page) or 2^21 (a 2 MiB page) bytes. Sizes in between are
    /// `InvalidSize` until a frame-list result exists.
    fn dma(&mut self, badge: u64, size_bits: u8) -> Result<PhysFrame, Error> {
        let object = match size_bits {
            12 => ObjectType::X86Page,
            21 => ObjectType::X86LargePage,
            _ => return Err(Error::InvalidSize),
        };
        let client = proto::client(badge).ok_or(Error::NotClaimed)?;
        if !self.claimed.iter().any(|(c, _)| *c == client.0) {
            return Err(Error::NotClaimed);
        }
        let memory = self.memory().ok_or(Error::OutOfMemory)?;
        let untyped_slot = self.slots.alloc().ok_or(Error::OutOfMemory)?;
        let mut client_of_memory =
            proto::memory::MemoryClient::new(EndpointTransport::receiving(memory, untyped_slot));
        let allocation = match client_of_memory.alloc(size_bits) {
            Ok(a) => a,
            Err(e) => {
                println!("devices: memory refused {size_bits} bits of DMA memory: {e:?}");
                self.slots.free(untyped_slot);
                return Err(Error::OutOfMemory);
            }
        };
        let frame = self.slots.alloc().ok_or(Error::OutOfMemory)?;
        let untyped: Cap<Untyped> = Cap::from_raw(allocation.untyped.0);
        untyped
            .untyped_retype(object.word(), 0, OWN, 0, 0, frame, 1)
            .map_err(|_| Error::OutOfMemory)?;
        let paddr = Cap::<X86Page>::from_raw(frame)
            .x86_page_get_address()
            .map_err(|_| Error::OutOfMemory)?;
        Ok(PhysFrame {
            frame: CapSlot(frame),
            paddr,
        })
    }
}

impl proto::devices::ports::Server for Service {
    fn ioport(
        &mut self,
        badge: u64,
        device: Name,
    ) -> Result<CapSlot, proto::devices::ports::Error> {
        use proto::devices::ports::Error as E;
        let grant = self.grant(badge, &device, true).map_err(|e| match e {
            Error::NotClaimed => E::NotClaimed,
            _ => E::NotFound,
        })?;
        if grant.ports.is_empty() {
            return Err(E::NoPorts);
        }
        // seL4 5.0: the one global I/O port capability (see proto::devices::ports).
        Ok(CapSlot(IO_PORT.raw()))
    }
}

impl proto::devices::message::Server for Service {
    fn msi_message(
        &mut self,
        badge: u64,
        device: Name,
    ) -> Result<proto::devices::message::MsiMessage, proto::devices::message::Error> {
        use proto::devices::message::Error as E;
        self.grant(badge, &device, true).map_err(|e| match e {
            Error::NotClaimed => E::NotClaimed,
            _ => E::NotFound,
        })?;
        let m = self.messages.get(device.as_str()).ok_or(E::NoIrq)?;
        Ok(proto::devices::message::MsiMessage {
            address: u64::from(m.address),
            data: u32::from(m.data),
        })
    }
}

impl proto::devices::config::Server for Service {
    /// Reads only: writes to configuration space stay with `devices` (`enable`, MSI).
    fn read_config(
        &mut self,
        badge: u64,
        device: Name,
        offset: u8,
    ) -> Result<u32, proto::devices::config::Error> {
        use proto::devices::config::Error as E;
        self.grant(badge, &device, true).map_err(|e| match e {
            Error::NotClaimed => E::NotClaimed,
            _ => E::NotFound,
        })?;
        let d = self.pci_device(device.as_str()).ok_or(E::OutOfRange)?;
        if !offset.is_multiple_of(4) {
            return Err(E::OutOfRange);
        }
        Ok(self.cfg.read32(d.addr, u16::from(offset)))
    }
}

fn function_of(d: &PciDevice) -> PciFunction {
    PciFunction {
        bus: d.addr.bus,
        dev: d.addr.device,
        func: d.addr.function,
        vendor: d.vendor,
        device: d.device,
        class: u32::from(d.class) << 16 | u32::from(d.subclass) << 8 | u32::from(d.prog_if),
    }
}

/// Carves the frames of every memory BAR of every resolved PCI device.
fn carve(
    assignments: &Assignments,
    untypeds: &[DeviceUntyped],
    slots: &mut Slots,
) -> BTreeMap<String, BTreeMap<u8, BarFrames>> {
    let mut carver = Carver::new(untypeds);
    let mut ranges = Vec::new();
    let mut owners = Vec::new();
    for (name, _, resolved) in assignments.resolved() {
        let d = match resolved.hardware {
            Hardware::Pci(d) => d,
            Hardware::Mmio { base, size } => {
                ranges.push((base, size));
                owners.push((String::from(name), 0));
                continue;
            }
            Hardware::IoPorts(_) => continue,
        };
        for (bar, b) in (0u8..).zip(d.bars.iter()) {
            if let devices::Bar::Memory { base, size, .. } = *b {
                // A BAR smaller than a page still occupies (at least) its page.
                ranges.push((base & !0xFFF, size.max(devices::FRAME_SIZE)));
                owners.push((String::from(name), bar));
            }
        }
    }
    let mut out: BTreeMap<String, BTreeMap<u8, BarFrames>> = BTreeMap::new();
    // One range at a time (in address order, as the carver needs), so a BAR that cannot be
    // carved costs only itself.
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| ranges[i].0);
    let mut padding = Vec::new();
    for i in order {
        let (base, size) = ranges[i];
        let (name, bar) = &owners[i];
        let steps = match carver.plan(base, size) {
            Ok(s) => s,
            Err(e) => {
                println!("devices: {name}: BAR {bar} at {base:#x}: cannot carve: {e:?}");
                continue;
            }
        };
        let mut frames = Vec::new();
        let mut ok = true;
        for step in &steps {
            let first = slots.alloc();
            for _ in 1..step.count {
                slots.alloc();
            }
            let Some(first) = first else {
                ok = false;
                break;
            };
            let (object, bits) = match step.object {
                Object::Untyped { size_bits } => (ObjectType::Untyped, size_bits),
                Object::Frame => (ObjectType::X86Page, 0),
            };
            let untyped: Cap<Untyped> = Cap::from_raw(FIRST_UNTYPED + step.untyped as u64);
            if let Err(e) = untyped.untyped_retype(
                object.word(),
                bits.into(),
                OWN,
                0,
                0,
                first,
                step.count.into(),
            ) {
                println!("devices: {name}: BAR {bar}: retype {step:?} failed: {e:?}");
                ok = false;
                break;
            }
            for k in 0..u64::from(step.count) {
                match step.object {
                    Object::Untyped { .. } => padding.push(first + k),
                    Object::Frame => frames.push((first + k, step.paddr + k * devices::FRAME_SIZE)),
                }
            }
        }
        if ok {
            println!(
                "devices: {name}: BAR {bar}: {} frames at {base:#x}",
                frames.len()
            );
            out.entry(name.clone()).or_default().insert(*bar, frames);
        }
    }
    // The padding only moved watermarks; the frames after it keep them where they are.
    for slot in padding {
        let _ = OWN.cnode_delete(slot, 64);
        slots.free(slot);
    }
    out
}

fn main(arg: usize) {
    // SAFETY: `arg` is the start-up argument the loader gave this thread.
    let info = unsafe { StartInfo::begin(arg) };
    let image = bootimage::Image::parse(info.data()).expect("devices' data blob is a boot image");
    let system = System::decode(
        image
            .system()
            .expect("the data blob holds the system description"),
    )
    .expect("the system description decodes");
    let untypeds: Vec<DeviceUntyped> = image
        .untypeds()
        .map(|u| DeviceUntyped {
            paddr: u.paddr,
            size_bits: u.size_bits,
        })
        .collect();
    let mut cfg = PortConfigSpace::new(Ports);
    let found = enumerate(&mut cfg);
    for d in &found {
        println!(
            "devices: pci {} {:04x}:{:04x} class {:02x}{:02x}{:02x}",
            d.addr, d.vendor, d.device, d.class, d.subclass, d.prog_if
        );
    }
    let assignments = Assignments::resolve(&system, &found, CONTROLLER);
    for (name, problem) in assignments.problems() {
        println!("devices: {name}: cannot resolve: {problem:?}");
    }
    for (name, driver, resolved) in assignments.resolved() {
        let driver = system.get(driver).map(|c| c.name.as_str()).unwrap_or("?");
        match resolved.hardware {
            Hardware::Pci(d) => println!("devices: {name} = pci {} for {driver}", d.addr),
            Hardware::IoPorts(r) => println!(
                "devices: {name} = ports {:#x}-{:#x} for {driver}",
                r.first, r.last
            ),
            Hardware::Mmio { base, size } => {
                println!("devices: {name} = memory {base:#x}+{size:#x} for {driver}",)
            }
        }
    }
    let mut quieted = 0;
    for d in assignments.unassigned(&found) {
        disable(&mut cfg, d.addr);
        quieted += 1;
    }
    // The grants run past slot 63 (over a hundred device untypeds on QEMU), so the slot
    // allocator starts above them and the receive slot is one of its own.
    let mut slot_alloc = Slots::new();
    let first_free = slots::GRANTS + info.grants;
    let receive = loop {
        match slot_alloc.alloc() {
            Some(s) if s >= first_free => break s,
            Some(_) => {}
            None => panic!("devices: no free slot above its {} grants", info.grants),
        }
    };
    let frames = carve(&assignments, &untypeds, &mut slot_alloc);
    println!(
        "devices: {} PCI functions, {} devices resolved, {quieted} unassigned functions disabled, {} device untypeds",
        found.len(),
        assignments.resolved().count(),
        untypeds.len()
    );
    // Registers its endpoint with naming (naming copies it).
    let mut naming = proto::naming::NamingClient::new(EndpointTransport::new(slots::NAMING));
    naming
        .register(
            Name::new("devices").expect("a valid name"),
            CapSlot(slots::SERVICE),
        )
        .expect("naming accepts devices as the provider of devices");
    println!("devices: ready");
    let service = RefCell::new(Service {
        cfg,
        found,
        assignments,
        frames,
        irqs: BTreeMap::new(),
        messages: BTreeMap::new(),
        claimed: BTreeSet::new(),
        slots: slot_alloc,
        next_irq: 0,
        memory: None,
    });
    serve(
        slots::SERVICE,
        ReceiveSlot::own(receive),
        |badge, request| {
            let mut s = service.borrow_mut();
            if proto::devices::ports::Op::from_label(request.label).is_some() {
                proto::devices::ports::dispatch(&mut *s, badge, request)
            } else if proto::devices::message::Op::from_label(request.label).is_some() {
                proto::devices::message::dispatch(&mut *s, badge, request)
            } else if proto::devices::config::Op::from_label(request.label).is_some() {
                proto::devices::config::dispatch(&mut *s, badge, request)
            } else {
                proto::devices::dispatch(&mut *s, badge, request)
            }
        },
        || {},
    )
}
