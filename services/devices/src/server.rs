//! `proto::devices` and its three companion interfaces (`ports`, `message`, `config`) served
//! over [`Assignments`] and the seL4 operations of [`Kernel`].
//!
//! The server keeps every capability it hands out (BAR frames, IRQ handlers) in the shell's
//! own CNode and replies with copies, so a driver that restarts and claims again gets the same
//! ones. It knows capabilities only as slot numbers the [`Kernel`] gave it.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use proto::devices::{self as api, config, message, ports};
use proto::devices::{DeviceInfo, Error, IrqMode, PciFunction, PhysFrame};
use proto::{CapSlot, Message, Name};
use sysdesc::System;

use crate::{
    disable, enable, enumerate, msix_begin, msix_finish, msix_layout, msix_table_writes, plan_msi,
    plan_msix, program_msi, Assignments, Bar, Carver, ConfigSpace, DeviceUntyped, GetIoApicArgs,
    GetMsiArgs, Grant, Hardware, InterruptController, IrqGrant, MsiMessage, MsixLayout, Object,
    PciDevice, RetypeStep, FIRST_USER_VECTOR, FRAME_SIZE,
};

/// A kernel operation failed, or the shell had no free slot for its result. The shell logs the
/// kernel's own error; the server answers with the interface's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelError;

/// Which `IRQControl` invocation makes an IRQ handler, with its arguments besides the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqIssue {
    /// `IRQControl_GetIOAPIC`: an IOAPIC pin.
    IoApic(GetIoApicArgs),
    /// `IRQControl_Get`: a line of the 8259 PIC.
    Pic {
        /// The PIC line, 0..=15.
        line: u8,
    },
    /// `IRQControl_GetMSI`: a message-signalled interrupt (all zero PCI fields for a platform
    /// device).
    Msi(GetMsiArgs),
}

/// The seL4 operations the device service needs; on seL4, invocations in the service's own
/// CNode, on the I/O port capability, on IRQ control and on the memory service.
///
/// Every slot a method returns is the shell's own; the server replies with it and seL4
/// transfers a copy.
pub trait Kernel {
    /// PCI configuration space (on the PC, [`crate::PortConfigSpace`] over the I/O port
    /// capability).
    type Config: ConfigSpace;
    /// PCI configuration space.
    fn config(&mut self) -> &mut Self::Config;
    /// Performs `step`: one retype of device untyped number `step.untyped` (in the order given
    /// to [`DevicesServer::start`]) into `step.count` objects in consecutive fresh slots.
    ///
    /// `Ok(first slot)`; `Err` if the kernel refused or no slots are left (none kept).
    fn retype(&mut self, step: &RetypeStep) -> Result<u64, KernelError>;
    /// Deletes the capability in `slot` and frees the slot.
    fn delete(&mut self, slot: u64);
    /// Makes an IRQ handler as `how` says, in a fresh slot.
    ///
    /// `Ok(slot)`; `Err` if the kernel refused or no slot is left (none kept).
    fn issue_irq(&mut self, how: IrqIssue) -> Result<u64, KernelError>;
    /// The slot of the I/O port capability (on seL4 5.0 the kernel's global one).
    fn io_port(&self) -> u64;
    /// Asks the memory service for an untyped of `2^size_bits` bytes, charged to this
    /// service's budget.
    ///
    /// `Ok(slot of the untyped)`; `Err` if memory is unreachable or refuses.
    fn alloc_untyped(&mut self, size_bits: u8) -> Result<u64, KernelError>;
    /// Retypes the untyped in `untyped` (`2^size_bits` bytes: 12 or 21) into one frame of its
    /// size.
    ///
    /// `Ok((slot of the frame, its physical address))`; `Err` if the kernel refused.
    fn retype_frame(&mut self, untyped: u64, size_bits: u8) -> Result<(u64, u64), KernelError>;
    /// Stores `value` at byte `offset` (a multiple of 4, below 4096) of the device frame in
    /// `frame` (one of the carved BAR frames), uncached: how the service writes a function's
    /// MSI-X table.
    ///
    /// `Err` if the frame cannot be mapped.
    fn write_frame32(&mut self, frame: u64, offset: u16, value: u32) -> Result<(), KernelError>;
    /// Prints one line of the service's log.
    fn log(&mut self, line: fmt::Arguments<'_>);
}

/// The frames carved for one memory BAR: (slot, physical address) per page, in page order.
type BarFrames = Vec<(u64, u64)>;

/// The device access service: the resolved description, the carved BAR frames and who has
/// claimed what, served as `proto::devices` (see [`dispatch`]).
///
/// Clients are identified by their badge ([`proto::client`]).
#[derive(Debug)]
pub struct DevicesServer<K: Kernel> {
    kernel: K,
    found: Vec<PciDevice>,
    assignments: Assignments,
    /// Per device name, per BAR number, its frames.
    frames: BTreeMap<String, BTreeMap<u8, BarFrames>>,
    /// Per device name, its IRQ handler's slot, once made.
    irqs: BTreeMap<String, u64>,
    /// Per platform device name with a driver-programmed MSI, the message to program.
    messages: BTreeMap<String, MsiMessage>,
    /// Per device name using MSI-X, where its table and pending bits are (pages kept from
    /// the driver).
    msix: BTreeMap<String, MsixLayout>,
    /// (client, device) pairs claimed.
    claimed: BTreeSet<(u16, String)>,
    /// The next user IRQ number (vector argument) to give a handler.
    next_irq: u8,
}

impl<K: Kernel> DevicesServer<K> {
    /// Starts the service: enumerates PCI through `kernel`'s configuration space, resolves
    /// `system`'s `[[device]]`s for `controller`, quiets every function no device resolved to
    /// ([`disable`]) and carves the frames of every resolved device's memory BARs out of
    /// `untypeds` (the device untypeds, in the order [`Kernel::retype`] numbers them), all at
    /// once because the untypeds' watermarks are shared. Logs what it found and did; a device
    /// or BAR that fails costs only itself.
    pub fn start(
        system: &System,
        untypeds: &[DeviceUntyped],
        controller: InterruptController,
        mut kernel: K,
    ) -> DevicesServer<K> {
        let found = enumerate(kernel.config());
        for d in &found {
            kernel.log(format_args!(
                "devices: pci {} {:04x}:{:04x} class {:02x}{:02x}{:02x}",
                d.addr, d.vendor, d.device, d.class, d.subclass, d.prog_if
            ));
        }
        let assignments = Assignments::resolve(system, &found, controller);
        for (name, problem) in assignments.problems() {
            kernel.log(format_args!("devices: {name}: cannot resolve: {problem:?}"));
        }
        for (name, driver, resolved) in assignments.resolved() {
            let driver = system.get(driver).map(|c| c.name.as_str()).unwrap_or("?");
            match resolved.hardware {
                Hardware::Pci(d) => kernel.log(format_args!(
                    "devices: {name} = pci {} for {driver}",
                    d.addr
                )),
                Hardware::IoPorts(r) => kernel.log(format_args!(
                    "devices: {name} = ports {:#x}-{:#x} for {driver}",
                    r.first, r.last
                )),
                Hardware::Mmio { base, size } => kernel.log(format_args!(
                    "devices: {name} = memory {base:#x}+{size:#x} for {driver}"
                )),
            }
        }
        let mut quieted = 0;
        for d in assignments.unassigned(&found) {
            disable(kernel.config(), d.addr);
            quieted += 1;
        }
        let frames = carve(&assignments, untypeds, &mut kernel);
        let mut msix = BTreeMap::new();
        for (name, _, resolved) in assignments.resolved() {
            if let (Some(IrqGrant::MsiX { .. }), Hardware::Pci(d)) =
                (resolved.irq, resolved.hardware)
            {
                match msix_layout(kernel.config(), &d) {
                    Ok(layout) => {
                        msix.insert(String::from(name), layout);
                    }
                    Err(e) => kernel.log(format_args!("devices: {name}: cannot use MSI-X: {e:?}")),
                }
            }
        }
        kernel.log(format_args!(
            "devices: {} PCI functions, {} devices resolved, {quieted} unassigned functions disabled, {} device untypeds",
            found.len(),
            assignments.resolved().count(),
            untypeds.len()
        ));
        DevicesServer {
            kernel,
            found,
            assignments,
            frames,
            irqs: BTreeMap::new(),
            messages: BTreeMap::new(),
            msix,
            claimed: BTreeSet::new(),
            next_irq: 0,
        }
    }

    /// The kernel operations.
    pub fn kernel(&self) -> &K {
        &self.kernel
    }

    /// The kernel operations, mutably.
    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    /// The PCI functions found at start, in bus order.
    pub fn found(&self) -> &[PciDevice] {
        &self.found
    }

    /// The description's devices as resolved at start.
    pub fn assignments(&self) -> &Assignments {
        &self.assignments
    }

    /// The grant of `device` for the client with `badge`, with the claim checked when
    /// `need_claim`. Unresolved devices are `NotFound` too (their problem was logged at
    /// start).
    fn grant(&self, badge: u64, device: &Name, need_claim: bool) -> Result<Grant, Error> {
        let client = proto::client(badge).ok_or(Error::NotFound)?;
        let grant = self
            .assignments
            .grant_for(client, device.as_str())
            .map_err(|_| Error::NotFound)?;
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

    /// Programs MSI-X entry 0 of `device` (function `d`, table `layout`) with `message`,
    /// storing the table through the service's own mapping of the BAR's frames. On a failed
    /// store the function stays masked.
    fn program_msix(
        &mut self,
        device: &str,
        d: &PciDevice,
        layout: MsixLayout,
        message: MsiMessage,
    ) -> Result<(), String> {
        let frames: Vec<u64> = self
            .frames
            .get(device)
            .and_then(|bars| bars.get(&layout.table_bar))
            .map(|f| f.iter().map(|&(slot, _)| slot).collect())
            .unwrap_or_default();
        let control = msix_begin(self.kernel.config(), d).map_err(|e| format!("{e:?}"))?;
        for (offset, value) in msix_table_writes(&layout, message) {
            let frame = usize::try_from(offset / 4096)
                .ok()
                .and_then(|page| frames.get(page))
                .ok_or_else(|| {
                    format!(
                        "MSI-X table at {offset:#x} is outside BAR{}",
                        layout.table_bar
                    )
                })?;
            self.kernel
                .write_frame32(*frame, (offset % 4096) as u16, value)
                .map_err(|_| format!("cannot store the MSI-X table at {offset:#x}"))?;
        }
        msix_finish(self.kernel.config(), d, control);
        Ok(())
    }

    /// Makes the IRQ handler of `device`; for a PCI MSI also programs the function, for a
    /// platform MSI keeps the message its driver asks for with `msi_message`.
    fn make_irq(&mut self, device: &str, irq: IrqGrant) -> Result<u64, Error> {
        let vector = self.next_irq;
        let mut keep_message = None;
        let mut program = None;
        let how = match irq {
            IrqGrant::IoApic { .. } => {
                IrqIssue::IoApic(irq.ioapic_args(vector).ok_or(Error::NoIrq)?)
            }
            IrqGrant::Pic { line } => IrqIssue::Pic { line },
            IrqGrant::Message => {
                keep_message = Some(MsiMessage::new(0, FIRST_USER_VECTOR + vector));
                // No PCI function: seL4 records the bus/device/function/handle only.
                IrqIssue::Msi(GetMsiArgs {
                    pci_bus: 0,
                    pci_dev: 0,
                    pci_func: 0,
                    handle: 0,
                    vector,
                })
            }
            IrqGrant::Msi { .. } => {
                let d = self.pci_device(device).ok_or(Error::NoIrq)?;
                let setup = plan_msi(&d, vector, 0, 0).map_err(|_| Error::NoIrq)?;
                program = Some((d, setup.message));
                IrqIssue::Msi(setup.get_msi)
            }
            IrqGrant::MsiX { .. } => {
                let d = self.pci_device(device).ok_or(Error::NoIrq)?;
                self.msix.get(device).ok_or(Error::NoIrq)?;
                let setup = plan_msix(&d, vector, 0, 0).map_err(|_| Error::NoIrq)?;
                program = Some((d, setup.message));
                IrqIssue::Msi(setup.get_msi)
            }
        };
        let Ok(slot) = self.kernel.issue_irq(how) else {
            self.kernel.log(format_args!(
                "devices: {device}: cannot make IRQ handler {irq:?}"
            ));
            return Err(Error::NoIrq);
        };
        if let Some((d, m)) = program {
            let programmed = match self.msix.get(device) {
                Some(layout) => self.program_msix(device, &d, *layout, m),
                None => program_msi(self.kernel.config(), &d, m).map_err(|e| format!("{e:?}")),
            };
            if let Err(e) = programmed {
                self.kernel.log(format_args!(
                    "devices: {device}: cannot program its interrupt: {e}"
                ));
                self.kernel.delete(slot);
                return Err(Error::NoIrq);
            }
        }
        if let Some(m) = keep_message {
            self.messages.insert(String::from(device), m);
        }
        if !matches!(irq, IrqGrant::Pic { .. }) {
            self.next_irq += 1;
        }
        self.kernel.log(format_args!(
            "devices: {device}: IRQ handler {irq:?} (user IRQ {vector})"
        ));
        Ok(slot)
    }
}

/// The `proto::devices::PciFunction` of a function found.
pub fn function_of(d: &PciDevice) -> PciFunction {
    PciFunction {
        bus: d.addr.bus,
        dev: d.addr.device,
        func: d.addr.function,
        vendor: d.vendor,
        device: d.device,
        class: u32::from(d.class) << 16 | u32::from(d.subclass) << 8 | u32::from(d.prog_if),
    }
}

impl<K: Kernel> api::Server for DevicesServer<K> {
    fn list(&mut self, _: u64, index: u32) -> Result<PciFunction, Error> {
        let d = self.found.get(index as usize).ok_or(Error::NoEntry)?;
        Ok(function_of(d))
    }

    fn claim(&mut self, badge: u64, device: Name) -> Result<DeviceInfo, Error> {
        let grant = self.grant(badge, &device, false)?;
        let pci = self.pci_device(device.as_str());
        if let Some(d) = &pci {
            enable(self.kernel.config(), d);
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
                Some(IrqGrant::MsiX { .. }) => IrqMode::MsiX,
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
        if self
            .msix
            .get(device.as_str())
            .is_some_and(|layout| layout.covers(bar, page))
        {
            // The MSI-X table decides where the function's messages go: only this service
            // writes it.
            return Err(Error::OutOfRange);
        }
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
        if size_bits != 12 && size_bits != 21 {
            return Err(Error::InvalidSize);
        }
        let client = proto::client(badge).ok_or(Error::NotClaimed)?;
        if !self.claimed.iter().any(|(c, _)| *c == client.0) {
            return Err(Error::NotClaimed);
        }
        let untyped = self
            .kernel
            .alloc_untyped(size_bits)
            .map_err(|_| Error::OutOfMemory)?;
        let (frame, paddr) = self
            .kernel
            .retype_frame(untyped, size_bits)
            .map_err(|_| Error::OutOfMemory)?;
        Ok(PhysFrame {
            frame: CapSlot(frame),
            paddr,
        })
    }
}

impl<K: Kernel> ports::Server for DevicesServer<K> {
    fn ioport(&mut self, badge: u64, device: Name) -> Result<CapSlot, ports::Error> {
        let grant = self.grant(badge, &device, true).map_err(|e| match e {
            Error::NotClaimed => ports::Error::NotClaimed,
            _ => ports::Error::NotFound,
        })?;
        if grant.ports.is_empty() {
            return Err(ports::Error::NoPorts);
        }
        // seL4 5.0: the one global I/O port capability (see proto::devices::ports).
        Ok(CapSlot(self.kernel.io_port()))
    }
}

impl<K: Kernel> message::Server for DevicesServer<K> {
    fn msi_message(
        &mut self,
        badge: u64,
        device: Name,
    ) -> Result<message::MsiMessage, message::Error> {
        self.grant(badge, &device, true).map_err(|e| match e {
            Error::NotClaimed => message::Error::NotClaimed,
            _ => message::Error::NotFound,
        })?;
        let m = self
            .messages
            .get(device.as_str())
            .ok_or(message::Error::NoIrq)?;
        Ok(message::MsiMessage {
            address: u64::from(m.address),
            data: u32::from(m.data),
        })
    }
}

impl<K: Kernel> config::Server for DevicesServer<K> {
    /// Reads only: writes to configuration space stay with `devices` (`enable`, MSI).
    fn read_config(&mut self, badge: u64, device: Name, offset: u8) -> Result<u32, config::Error> {
        self.grant(badge, &device, true).map_err(|e| match e {
            Error::NotClaimed => config::Error::NotClaimed,
            _ => config::Error::NotFound,
        })?;
        let d = self
            .pci_device(device.as_str())
            .ok_or(config::Error::OutOfRange)?;
        if !offset.is_multiple_of(4) {
            return Err(config::Error::OutOfRange);
        }
        Ok(self.kernel.config().read32(d.addr, u16::from(offset)))
    }
}

/// Serves one request on the devices endpoint: labels of `proto::devices::ports`, `::message`
/// and `::config` go to their dispatchers, everything else to `proto::devices`' (which
/// answers `Malformed` to an unknown label).
pub fn dispatch<K: Kernel>(
    server: &mut DevicesServer<K>,
    badge: u64,
    request: &Message,
) -> Message {
    if ports::Op::from_label(request.label).is_some() {
        ports::dispatch(server, badge, request)
    } else if message::Op::from_label(request.label).is_some() {
        message::dispatch(server, badge, request)
    } else if config::Op::from_label(request.label).is_some() {
        config::dispatch(server, badge, request)
    } else {
        api::dispatch(server, badge, request)
    }
}

/// Carves the frames of every memory BAR of every resolved PCI device, and the range of every
/// platform (MMIO) device as its BAR 0.
fn carve(
    assignments: &Assignments,
    untypeds: &[DeviceUntyped],
    kernel: &mut impl Kernel,
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
            if let Bar::Memory { base, size, .. } = *b {
                // A BAR smaller than a page still occupies (at least) its page.
                ranges.push((base & !0xFFF, size.max(FRAME_SIZE)));
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
                kernel.log(format_args!(
                    "devices: {name}: BAR {bar} at {base:#x}: cannot carve: {e:?}"
                ));
                continue;
            }
        };
        let mut frames = Vec::new();
        let mut ok = true;
        for step in &steps {
            let Ok(first) = kernel.retype(step) else {
                kernel.log(format_args!(
                    "devices: {name}: BAR {bar}: retype {step:?} failed"
                ));
                ok = false;
                break;
            };
            for k in 0..u64::from(step.count) {
                match step.object {
                    Object::Untyped { .. } => padding.push(first + k),
                    Object::Frame => frames.push((first + k, step.paddr + k * FRAME_SIZE)),
                }
            }
        }
        if ok {
            kernel.log(format_args!(
                "devices: {name}: BAR {bar}: {} frames at {base:#x}",
                frames.len()
            ));
            out.entry(name.clone()).or_default().insert(*bar, frames);
        }
    }
    // The padding only moved watermarks; the frames after it keep them where they are.
    for slot in padding {
        kernel.delete(slot);
    }
    out
}
