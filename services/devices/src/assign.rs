//! Assignment: each `[[device]]` of the system description resolved to concrete hardware, and
//! the grant its driver (and only its driver) may have.

use alloc::string::String;
use alloc::vec::Vec;

use sysdesc::{ComponentId, DeviceSelector, Irq, System};

use crate::config::{PciAddress, CONFIG_ADDRESS_PORT, CONFIG_LAST_PORT};
use crate::enumerate::{Bar, PciDevice};
use crate::program::{GetIoApicArgs, MAX_USER_IRQ};

/// The interrupt controller the kernel was built for; decides where `irq = "legacy"` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptController {
    /// The IOAPIC (seL4's `IRQ_IOAPIC` configuration).
    IoApic,
    /// The 8259 PIC (seL4's `IRQ_PIC` configuration).
    Pic,
}

/// When an interrupt input fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// On an edge (ISA devices).
    Edge,
    /// While the line is asserted (PCI INTx).
    Level,
}

/// Which level of an interrupt input is asserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    /// Active high.
    High,
    /// Active low.
    Low,
}

/// An inclusive range of x86 I/O ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port, inclusive.
    pub last: u16,
}

impl PortRange {
    /// Whether the two ranges share a port.
    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// One memory BAR a driver may map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Which BAR (0..=5).
    pub bar: u8,
    /// Physical base address.
    pub base: u64,
    /// Size in bytes (a power of two; the region is naturally aligned).
    pub size: u64,
    /// Whether the BAR is prefetchable.
    pub prefetchable: bool,
}

/// How a device's interrupt reaches its driver, with what the kernel call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqGrant {
    /// One MSI; the devices service programs the capability (see [`crate::program_msi`]).
    Msi {
        /// The function, for `IRQControl_GetMSI`.
        addr: PciAddress,
        /// Offset of its MSI capability.
        capability: u8,
    },
    /// MSI-X entry 0; the devices service programs the table (see [`crate::program_msix`])
    /// and keeps the table's and pending bits' pages from the driver.
    MsiX {
        /// The function, for `IRQControl_GetMSI`.
        addr: PciAddress,
        /// Offset of its MSI-X capability.
        capability: u8,
    },
    /// An IOAPIC input.
    IoApic {
        /// Which IOAPIC.
        ioapic: u8,
        /// Its input pin.
        pin: u8,
        /// Edge or level.
        trigger: Trigger,
        /// Active high or low.
        polarity: Polarity,
    },
    /// A PIC line, 0..=15.
    Pic {
        /// The line.
        line: u8,
    },
    /// One message-signalled interrupt of a platform (MMIO) device: the driver writes the
    /// message `devices` hands out into the device itself (the HPET's FSB route).
    Message,
}

impl IrqGrant {
    /// The arguments of `IRQControl_GetIOAPIC` for this interrupt on user IRQ `vector`, or
    /// `None` if it is not an IOAPIC input or `vector` is above [`MAX_USER_IRQ`].
    pub fn ioapic_args(&self, vector: u8) -> Option<GetIoApicArgs> {
        match *self {
            IrqGrant::IoApic {
                ioapic,
                pin,
                trigger,
                polarity,
            } if vector <= MAX_USER_IRQ => Some(GetIoApicArgs {
                ioapic,
                pin,
                level: u8::from(trigger == Trigger::Level),
                polarity: u8::from(polarity == Polarity::Low),
                vector,
            }),
            _ => None,
        }
    }
}

/// The hardware a `[[device]]` resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hardware {
    /// A PCI function.
    Pci(PciDevice),
    /// A legacy device at fixed I/O ports.
    IoPorts(PortRange),
    /// A platform device at a fixed range of physical memory, offered as memory BAR 0.
    Mmio {
        /// First byte (page aligned).
        base: u64,
        /// Size in bytes, rounded up to whole pages.
        size: u64,
    },
}

/// A `[[device]]` resolved to hardware and an interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The hardware.
    pub hardware: Hardware,
    /// Its interrupt; `None` for a polled device.
    pub irq: Option<IrqGrant>,
}

/// Everything a driver may have of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The PCI function, for a PCI device.
    pub pci: Option<PciAddress>,
    /// Memory BARs, by BAR number.
    pub memory: Vec<MemoryRegion>,
    /// I/O ports: the fixed range of a legacy device, or a PCI function's I/O BARs.
    pub ports: Vec<PortRange>,
    /// The interrupt, if the description asks for one.
    pub irq: Option<IrqGrant>,
}

impl Grant {
    /// The memory BARs as a bit set (bit i: BAR i), as the devices interface reports them.
    pub fn memory_bars(&self) -> u8 {
        self.memory.iter().fold(0, |set, r| set | 1 << r.bar)
    }

    /// Memory BAR `bar`, if the grant has it.
    pub fn region(&self, bar: u8) -> Option<&MemoryRegion> {
        self.memory.iter().find(|r| r.bar == bar)
    }
}

/// Why a `[[device]]` could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignError {
    /// No PCI function matches the selector at that index.
    NotFound,
    /// The selector matches a function another `[[device]]` (named here) already selected: the
    /// description is ambiguous about who owns it.
    Ambiguous {
        /// The device that selected it first.
        other: String,
    },
    /// The I/O port range includes the PCI configuration ports `0xCF8..=0xCFF`.
    ConfigPorts,
    /// MSI was asked for but the function has no MSI capability.
    NoMsi,
    /// MSI-X was asked for but the function has no MSI-X capability.
    NoMsiX,
    /// INTx was asked for but the function has no interrupt pin, the firmware routed it
    /// nowhere, or the line is beyond the interrupt controller's inputs.
    NoInterruptLine,
    /// The firmware left this BAR unplaced (at address 0).
    BarUnplaced {
        /// The BAR number.
        bar: u8,
    },
    /// This I/O BAR lies beyond port `0xFFFF`.
    PortsOutOfRange {
        /// The BAR number.
        bar: u8,
    },
}

/// Why [`Assignments::grant_for`] refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// The component does not drive a device of that name (including: there is no such
    /// device; the two are not told apart, so a component learns nothing of others' devices).
    NotAssigned,
    /// The component drives it, but it could not be resolved.
    Unresolved(AssignError),
}

/// IOAPIC inputs on the PC (one IOAPIC).
const IOAPIC_PINS: u8 = 24;
/// PIC lines.
const PIC_LINES: u8 = 16;

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    driver: Option<ComponentId>,
    outcome: Result<Resolved, AssignError>,
}

/// Every `[[device]]` of a system, resolved against the functions enumeration found.
#[derive(Clone, Debug)]
pub struct Assignments {
    entries: Vec<Entry>,
}

impl Assignments {
    /// Resolves each `[[device]]` of `system` in description order: `pci` and `class`
    /// selectors pick the `index`th match of `found` (in bus order, as [`crate::enumerate`]
    /// returns it), I/O port selectors stand for themselves; then the interrupt is resolved,
    /// `legacy` through `controller`.
    ///
    /// Never fails as a whole: a device that cannot be resolved carries its [`AssignError`]
    /// (see [`Assignments::problems`]) and is refused to its driver; the others are usable.
    pub fn resolve(system: &System, found: &[PciDevice], controller: InterruptController) -> Self {
        let mut entries: Vec<Entry> = Vec::with_capacity(system.devices.len());
        for d in &system.devices {
            let outcome = resolve_hardware(d.selector, found)
                .and_then(|hardware| check_taken(&entries, hardware))
                .and_then(check_bars)
                .and_then(|hardware| {
                    let irq = d
                        .irq
                        .map(|irq| resolve_irq(irq, &hardware, controller))
                        .transpose()?;
                    Ok(Resolved { hardware, irq })
                });
            entries.push(Entry {
                name: d.name.clone(),
                driver: system.driver_of(&d.name),
                outcome,
            });
        }
        Self { entries }
    }

    /// What `component` may have of the device called `device`.
    ///
    /// `Err(NotAssigned)` when the description does not give that device to that component
    /// (or names no such device); `Err(Unresolved)` when it does but the device could not be
    /// resolved.
    pub fn grant_for(&self, component: ComponentId, device: &str) -> Result<Grant, GrantError> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.name == device && e.driver == Some(component))
            .ok_or(GrantError::NotAssigned)?;
        let resolved = entry
            .outcome
            .as_ref()
            .map_err(|e| GrantError::Unresolved(e.clone()))?;
        Ok(grant(resolved))
    }

    /// The device called `name` as resolved, with its driver; `None` if there is no such device
    /// or it could not be resolved.
    pub fn get(&self, name: &str) -> Option<(ComponentId, &Resolved)> {
        let e = self.entries.iter().find(|e| e.name == name)?;
        Some((e.driver?, e.outcome.as_ref().ok()?))
    }

    /// The resolved devices with their names and drivers, in description order.
    pub fn resolved(&self) -> impl Iterator<Item = (&str, ComponentId, &Resolved)> + '_ {
        self.entries
            .iter()
            .filter_map(|e| Some((e.name.as_str(), e.driver?, e.outcome.as_ref().ok()?)))
    }

    /// The devices that could not be resolved, with the reason, in description order.
    pub fn problems(&self) -> impl Iterator<Item = (&str, &AssignError)> + '_ {
        self.entries
            .iter()
            .filter_map(|e| Some((e.name.as_str(), e.outcome.as_ref().err()?)))
    }

    /// The functions of `found` no device resolved to, bridges (class 0x06) left out: the ones
    /// to quiet with [`crate::disable`].
    pub fn unassigned<'a>(
        &'a self,
        found: &'a [PciDevice],
    ) -> impl Iterator<Item = &'a PciDevice> + 'a {
        found.iter().filter(move |f| {
            f.class != 0x06
                && !self
                    .resolved()
                    .any(|(_, _, r)| pci_addr(&r.hardware) == Some(f.addr))
        })
    }
}

/// The PCI address of `hardware`, if it is PCI.
fn pci_addr(hardware: &Hardware) -> Option<PciAddress> {
    match hardware {
        Hardware::Pci(d) => Some(d.addr),
        Hardware::IoPorts(_) | Hardware::Mmio { .. } => None,
    }
}

/// Picks the hardware `selector` names.
fn resolve_hardware(
    selector: DeviceSelector,
    found: &[PciDevice],
) -> Result<Hardware, AssignError> {
    let (index, pick): (u16, &dyn Fn(&PciDevice) -> bool) = match selector {
        DeviceSelector::IoPort { first, last } => {
            let range = PortRange { first, last };
            let config = PortRange {
                first: CONFIG_ADDRESS_PORT,
                last: CONFIG_LAST_PORT,
            };
            return if range.overlaps(&config) {
                Err(AssignError::ConfigPorts)
            } else {
                Ok(Hardware::IoPorts(range))
            };
        }
        DeviceSelector::Mmio { base, last } => {
            let size = (last - base + 1).next_multiple_of(crate::FRAME_SIZE);
            return Ok(Hardware::Mmio { base, size });
        }
        DeviceSelector::Pci {
            vendor,
            device,
            index,
        } => (index, &move |d| d.vendor == vendor && d.device == device),
        DeviceSelector::Class {
            class,
            subclass,
            prog_if,
            index,
        } => (index, &move |d| {
            d.class == class && d.subclass == subclass && prog_if.is_none_or(|p| d.prog_if == p)
        }),
    };
    found
        .iter()
        .filter(|d| pick(d))
        .nth(usize::from(index))
        .map(|d| Hardware::Pci(*d))
        .ok_or(AssignError::NotFound)
}

/// Refuses a function an earlier device already resolved to.
fn check_taken(earlier: &[Entry], hardware: Hardware) -> Result<Hardware, AssignError> {
    let Some(addr) = pci_addr(&hardware) else {
        return Ok(hardware);
    };
    match earlier.iter().find(|e| {
        e.outcome
            .as_ref()
            .is_ok_and(|r| pci_addr(&r.hardware) == Some(addr))
    }) {
        Some(e) => Err(AssignError::Ambiguous {
            other: e.name.clone(),
        }),
        None => Ok(hardware),
    }
}

/// Refuses a function with an unplaced BAR or an I/O BAR beyond the 16-bit port space.
fn check_bars(hardware: Hardware) -> Result<Hardware, AssignError> {
    if let Hardware::Pci(d) = &hardware {
        for (bar, b) in (0u8..).zip(d.bars.iter()) {
            match *b {
                Bar::Memory { base: 0, .. } | Bar::Io { base: 0, .. } => {
                    return Err(AssignError::BarUnplaced { bar })
                }
                Bar::Io { base, size } if u64::from(base) + u64::from(size) > 0x1_0000 => {
                    return Err(AssignError::PortsOutOfRange { bar })
                }
                _ => {}
            }
        }
    }
    Ok(hardware)
}

/// Resolves the interrupt the description asks for on `hardware`.
///
/// PCI INTx is level triggered and active high, as QEMU's `pc` ACPI tables declare for the
/// PCI interrupt links; fixed lines of legacy (I/O port) devices are ISA: edge, active high.
fn resolve_irq(
    irq: Irq,
    hardware: &Hardware,
    controller: InterruptController,
) -> Result<IrqGrant, AssignError> {
    let (pci, trigger) = match hardware {
        Hardware::Pci(d) => (Some(d), Trigger::Level),
        Hardware::IoPorts(_) => (None, Trigger::Edge),
        Hardware::Mmio { .. } => {
            if irq == Irq::Msi {
                return Ok(IrqGrant::Message);
            }
            (None, Trigger::Edge)
        }
    };
    let routed_line = || match pci {
        Some(d) if d.irq_pin != 0 && d.irq_line != 0xFF => Ok(d.irq_line),
        _ => Err(AssignError::NoInterruptLine),
    };
    let ioapic = |pin: u8| {
        if pin < IOAPIC_PINS {
            Ok(IrqGrant::IoApic {
                ioapic: 0,
                pin,
                trigger,
                polarity: Polarity::High,
            })
        } else {
            Err(AssignError::NoInterruptLine)
        }
    };
    let pic = |line: u8| {
        if line < PIC_LINES {
            Ok(IrqGrant::Pic { line })
        } else {
            Err(AssignError::NoInterruptLine)
        }
    };
    match irq {
        Irq::Msi => match pci.and_then(|d| Some((d.addr, d.capabilities.msi?))) {
            Some((addr, capability)) => Ok(IrqGrant::Msi { addr, capability }),
            None => Err(AssignError::NoMsi),
        },
        Irq::MsiX => match pci.and_then(|d| Some((d.addr, d.capabilities.msix?))) {
            Some((addr, capability)) => Ok(IrqGrant::MsiX { addr, capability }),
            None => Err(AssignError::NoMsiX),
        },
        Irq::IoApic { line: Some(pin) } => ioapic(pin),
        Irq::IoApic { line: None } => ioapic(routed_line()?),
        Irq::Pic { line: Some(line) } => pic(line),
        Irq::Pic { line: None } => pic(routed_line()?),
        Irq::Legacy => match controller {
            InterruptController::IoApic => ioapic(routed_line()?),
            InterruptController::Pic => pic(routed_line()?),
        },
    }
}

/// The grant for a resolved device.
fn grant(resolved: &Resolved) -> Grant {
    let mut g = Grant {
        pci: pci_addr(&resolved.hardware),
        memory: Vec::new(),
        ports: Vec::new(),
        irq: resolved.irq,
    };
    match &resolved.hardware {
        Hardware::IoPorts(range) => g.ports.push(*range),
        &Hardware::Mmio { base, size } => g.memory.push(MemoryRegion {
            bar: 0,
            base,
            size,
            prefetchable: false,
        }),
        Hardware::Pci(d) => {
            for (bar, b) in (0u8..).zip(d.bars.iter()) {
                match *b {
                    Bar::Memory {
                        base,
                        size,
                        prefetchable,
                        ..
                    } => g.memory.push(MemoryRegion {
                        bar,
                        base,
                        size,
                        prefetchable,
                    }),
                    // check_bars keeps I/O BARs within 0..=0xFFFF.
                    Bar::Io { base, size } => g.ports.push(PortRange {
                        first: base as u16,
                        last: (base + size - 1) as u16,
                    }),
                    Bar::Unused | Bar::Upper => {}
                }
            }
        }
    }
    g
}
