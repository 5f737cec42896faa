//! Programming a function for its driver: the command register and the MSI capability, and
//! the arguments seL4's `IRQControl` invocations need.

use crate::config::{reg, ConfigSpace, PciAddress};
use crate::enumerate::PciDevice;

/// The command register bits a driver's function gets: memory space and bus master always,
/// I/O space when the function has an I/O BAR.
pub fn driver_command_bits(device: &PciDevice) -> u16 {
    let io = if device.has_io_bars() {
        reg::COMMAND_IO
    } else {
        0
    };
    reg::COMMAND_MEMORY | reg::COMMAND_BUS_MASTER | io
}

/// Enables `device` for its driver: sets the bits of [`driver_command_bits`] in its command
/// register, keeping the others. Returns the command register as written.
pub fn enable(cfg: &mut impl ConfigSpace, device: &PciDevice) -> u16 {
    let command = cfg.read16(device.addr, reg::COMMAND) | driver_command_bits(device);
    cfg.write16(device.addr, reg::COMMAND, command);
    command
}

/// Quiets a function no driver is assigned: clears I/O space, memory space and bus master
/// (so it can neither be reached nor do DMA) and disables INTx. Returns the command register
/// as written.
pub fn disable(cfg: &mut impl ConfigSpace, addr: PciAddress) -> u16 {
    let command = (cfg.read16(addr, reg::COMMAND)
        & !(reg::COMMAND_IO | reg::COMMAND_MEMORY | reg::COMMAND_BUS_MASTER))
        | reg::COMMAND_INTX_DISABLE;
    cfg.write16(addr, reg::COMMAND, command);
    command
}

/// The physical address window the local APICs receive MSI writes in.
pub const MSI_ADDRESS_BASE: u32 = 0xFEE0_0000;

/// The first CPU vector of seL4's user interrupts on x86: the kernel adds it to the `vector`
/// argument of `IRQControl_GetMSI` / `GetIOAPIC` (`IRQ_INT_OFFSET` 0x20 plus the 16 PIC lines).
pub const FIRST_USER_VECTOR: u8 = 0x30;

/// The largest `vector` argument seL4 5.0 accepts (`irq_user_max - irq_user_min`, 155 - 48).
pub const MAX_USER_IRQ: u8 = 107;

/// The address and data a function writes to raise its interrupt (fixed delivery, physical
/// destination, edge triggered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiMessage {
    /// `0xFEE00000 | destination APIC id << 12`.
    pub address: u32,
    /// The CPU vector.
    pub data: u16,
}

impl MsiMessage {
    /// The message raising CPU `vector` at the local APIC with id `apic_id`.
    pub fn new(apic_id: u8, vector: u8) -> Self {
        Self {
            address: MSI_ADDRESS_BASE | u32::from(apic_id) << 12,
            data: u16::from(vector),
        }
    }
}

/// The arguments of seL4's `X86IRQIssueIRQHandlerMSI` (`IRQControl_GetMSI`) for one function,
/// besides the destination slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetMsiArgs {
    /// PCI bus.
    pub pci_bus: u8,
    /// PCI device.
    pub pci_dev: u8,
    /// PCI function.
    pub pci_func: u8,
    /// An opaque value the kernel keeps with the handler (used with an IOMMU only).
    pub handle: u64,
    /// The user IRQ number, 0..=[`MAX_USER_IRQ`]; the CPU vector is
    /// `FIRST_USER_VECTOR + vector`.
    pub vector: u8,
}

/// What it takes to give a function one MSI: the kernel call's arguments and the message to
/// program into the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiSetup {
    /// For `IRQControl_GetMSI`.
    pub get_msi: GetMsiArgs,
    /// For [`program_msi`].
    pub message: MsiMessage,
}

/// Why an MSI cannot be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiError {
    /// The function has no MSI capability.
    NoCapability,
    /// The user IRQ number is above [`MAX_USER_IRQ`].
    IrqOutOfRange,
}

/// Plans an MSI for `device` on seL4 user IRQ `irq` (0..=[`MAX_USER_IRQ`]) delivered to the
/// local APIC `apic_id`, with `handle` as the kernel's opaque handle.
///
/// Returns `Err(NoCapability)` if the function has no MSI capability, `Err(IrqOutOfRange)` if
/// `irq` is above the kernel's range.
pub fn plan_msi(
    device: &PciDevice,
    irq: u8,
    apic_id: u8,
    handle: u64,
) -> Result<MsiSetup, MsiError> {
    if device.capabilities.msi.is_none() {
        return Err(MsiError::NoCapability);
    }
    if irq > MAX_USER_IRQ {
        return Err(MsiError::IrqOutOfRange);
    }
    Ok(MsiSetup {
        get_msi: GetMsiArgs {
            pci_bus: device.addr.bus,
            pci_dev: device.addr.device,
            pci_func: device.addr.function,
            handle,
            vector: irq,
        },
        message: MsiMessage::new(apic_id, FIRST_USER_VECTOR + irq),
    })
}

/// MSI message control bits.
const MSI_ENABLE: u16 = 1 << 0;
const MSI_MULTIPLE_ENABLE: u16 = 0b111 << 4;
const MSI_64BIT: u16 = 1 << 7;
const MSI_PER_VECTOR_MASK: u16 = 1 << 8;
/// MSI-X message control: enable.
const MSIX_ENABLE: u16 = 1 << 15;

/// Programs `device`'s MSI capability with `message` for one vector and enables it: writes
/// the address (and a zero upper address on 64-bit capable functions), the data, one vector
/// in Multiple Message Enable, unmasks vector 0 where per-vector masking exists, then sets the
/// enable bit. Also disables MSI-X and INTx so that MSI is the function's only interrupt.
///
/// Returns `Err(NoCapability)` if the function has no MSI capability (nothing is written).
pub fn program_msi(
    cfg: &mut impl ConfigSpace,
    device: &PciDevice,
    message: MsiMessage,
) -> Result<(), MsiError> {
    let cap = u16::from(device.capabilities.msi.ok_or(MsiError::NoCapability)?);
    let addr = device.addr;
    if let Some(msix) = device.capabilities.msix {
        let control = u16::from(msix) + 2;
        let value = cfg.read16(addr, control);
        if value & MSIX_ENABLE != 0 {
            cfg.write16(addr, control, value & !MSIX_ENABLE);
        }
    }
    let control = cfg.read16(addr, cap + 2) & !(MSI_ENABLE | MSI_MULTIPLE_ENABLE);
    cfg.write16(addr, cap + 2, control);
    cfg.write32(addr, cap + 4, message.address);
    let (data, mask) = if control & MSI_64BIT != 0 {
        cfg.write32(addr, cap + 8, 0);
        (cap + 0xC, cap + 0x10)
    } else {
        (cap + 8, cap + 0xC)
    };
    cfg.write16(addr, data, message.data);
    if control & MSI_PER_VECTOR_MASK != 0 {
        let bits = cfg.read32(addr, mask);
        cfg.write32(addr, mask, bits & !1);
    }
    let command = cfg.read16(addr, reg::COMMAND) | reg::COMMAND_INTX_DISABLE;
    cfg.write16(addr, reg::COMMAND, command);
    cfg.write16(addr, cap + 2, control | MSI_ENABLE);
    Ok(())
}

/// The arguments of seL4's `X86IRQIssueIRQHandlerIOAPIC` (`IRQControl_GetIOAPIC`) besides the
/// destination slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetIoApicArgs {
    /// Which IOAPIC (0 on QEMU's `pc`).
    pub ioapic: u8,
    /// Its input pin, 0..=23.
    pub pin: u8,
    /// 1 for level triggered, 0 for edge.
    pub level: u8,
    /// 1 for active low, 0 for active high.
    pub polarity: u8,
    /// The user IRQ number, 0..=[`MAX_USER_IRQ`].
    pub vector: u8,
}
