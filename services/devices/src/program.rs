//! Programming a function for its driver: the command register and the MSI capability, and
//! the arguments seL4's `IRQControl` invocations need.

use alloc::vec::Vec;

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

/// Plans MSI-X entry 0 for `device` on seL4 user IRQ `irq`, as [`plan_msi`] does for MSI.
///
/// Returns `Err(NoCapability)` if the function has no MSI-X capability, `Err(IrqOutOfRange)`
/// if `irq` is above the kernel's range.
pub fn plan_msix(
    device: &PciDevice,
    irq: u8,
    apic_id: u8,
    handle: u64,
) -> Result<MsiSetup, MsiError> {
    if device.capabilities.msix.is_none() {
        return Err(MsiError::NoCapability);
    }
    let mut with_msi = *device;
    with_msi.capabilities.msi = Some(device.capabilities.msix.unwrap_or(0));
    plan_msi(&with_msi, irq, apic_id, handle)
}

/// Where a function's MSI-X table and pending bit array live, as its capability says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixLayout {
    /// Entries in the table, 1..=2048.
    pub entries: u16,
    /// The memory BAR holding the table.
    pub table_bar: u8,
    /// The table's byte offset in that BAR (a multiple of 8).
    pub table_offset: u32,
    /// The memory BAR holding the pending bit array.
    pub pba_bar: u8,
    /// The array's byte offset in that BAR (a multiple of 8).
    pub pba_offset: u32,
}

/// Bytes of one MSI-X table entry: address low, address high, data, vector control.
pub const MSIX_ENTRY_BYTES: u32 = 16;
/// Bytes of a page of a BAR, the unit the devices service hands BARs out in.
const PAGE_BYTES: u64 = 4096;

impl MsixLayout {
    /// The BAR pages (BAR, page index) the table and the pending bits occupy: the devices
    /// service keeps them from the driver, so that only it decides where the function's
    /// messages go.
    pub fn pages(&self) -> impl Iterator<Item = (u8, u64)> {
        let table_end = u64::from(self.table_offset) + u64::from(self.entries) * 16;
        let pba_end = u64::from(self.pba_offset) + u64::from(self.entries).div_ceil(64) * 8;
        let span = |bar: u8, start: u32, end: u64| {
            (u64::from(start) / PAGE_BYTES..end.div_ceil(PAGE_BYTES)).map(move |p| (bar, p))
        };
        span(self.table_bar, self.table_offset, table_end).chain(span(
            self.pba_bar,
            self.pba_offset,
            pba_end,
        ))
    }

    /// Whether page `page` of BAR `bar` holds part of the table or the pending bits.
    pub fn covers(&self, bar: u8, page: u64) -> bool {
        self.pages().any(|p| p == (bar, page))
    }
}

/// Why a function's MSI-X capability cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsixError {
    /// The function has no MSI-X capability.
    NoCapability,
    /// The capability names a BAR register above 5 for the table or the pending bits.
    BadBar,
    /// Writing a table entry failed (its page cannot be mapped).
    TableWrite,
}

/// Reads `device`'s MSI-X layout from its capability.
pub fn msix_layout(
    cfg: &mut impl ConfigSpace,
    device: &PciDevice,
) -> Result<MsixLayout, MsixError> {
    let cap = u16::from(device.capabilities.msix.ok_or(MsixError::NoCapability)?);
    let control = cfg.read16(device.addr, cap + 2);
    let table = cfg.read32(device.addr, cap + 4);
    let pba = cfg.read32(device.addr, cap + 8);
    let (table_bar, pba_bar) = ((table & 7) as u8, (pba & 7) as u8);
    if table_bar > 5 || pba_bar > 5 {
        return Err(MsixError::BadBar);
    }
    Ok(MsixLayout {
        entries: (control & MSIX_TABLE_SIZE) + 1,
        table_bar,
        table_offset: table & !7,
        pba_bar,
        pba_offset: pba & !7,
    })
}

/// Starts programming `device`'s MSI-X: enables MSI-X with the whole function masked, and
/// disables MSI and INTx, so that nothing fires while [`msix_table_writes`] are stored.
/// Returns the message control register to hand to [`msix_finish`].
///
/// Returns `Err(NoCapability)` without an MSI-X capability (nothing written).
pub fn msix_begin(cfg: &mut impl ConfigSpace, device: &PciDevice) -> Result<u16, MsixError> {
    let cap = u16::from(device.capabilities.msix.ok_or(MsixError::NoCapability)?);
    let addr = device.addr;
    let control = cfg.read16(addr, cap + 2);
    cfg.write16(addr, cap + 2, control | MSIX_ENABLE | MSIX_FUNCTION_MASK);
    if let Some(msi) = device.capabilities.msi {
        let msi_control = cfg.read16(addr, u16::from(msi) + 2);
        cfg.write16(addr, u16::from(msi) + 2, msi_control & !MSI_ENABLE);
    }
    let command = cfg.read16(addr, reg::COMMAND) | reg::COMMAND_INTX_DISABLE;
    cfg.write16(addr, reg::COMMAND, command);
    Ok(control)
}

/// The table stores (byte offset in the table's BAR, value) that point entry 0 at `message`
/// and mask every other entry, in order: the others masked, entry 0 masked, its address,
/// upper address and data, then entry 0 unmasked.
pub fn msix_table_writes(layout: &MsixLayout, message: MsiMessage) -> Vec<(u32, u32)> {
    let entry = |index: u16, word: u32| {
        layout.table_offset + u32::from(index) * MSIX_ENTRY_BYTES + word * 4
    };
    let mut writes: Vec<(u32, u32)> = (1..layout.entries)
        .map(|index| (entry(index, 3), MSIX_VECTOR_MASKED))
        .collect();
    writes.extend([
        (entry(0, 3), MSIX_VECTOR_MASKED),
        (entry(0, 0), message.address),
        (entry(0, 1), 0),
        (entry(0, 2), u32::from(message.data)),
        (entry(0, 3), 0),
    ]);
    writes
}

/// Finishes programming `device`'s MSI-X: lifts the function mask and keeps MSI-X enabled
/// (`control` is what [`msix_begin`] returned).
pub fn msix_finish(cfg: &mut impl ConfigSpace, device: &PciDevice, control: u16) {
    if let Some(cap) = device.capabilities.msix {
        let cap = u16::from(cap);
        cfg.write16(
            device.addr,
            cap + 2,
            (control | MSIX_ENABLE) & !MSIX_FUNCTION_MASK,
        );
    }
}

/// MSI message control bits.
const MSI_ENABLE: u16 = 1 << 0;
const MSI_MULTIPLE_ENABLE: u16 = 0b111 << 4;
const MSI_64BIT: u16 = 1 << 7;
const MSI_PER_VECTOR_MASK: u16 = 1 << 8;
/// MSI-X message control: enable.
const MSIX_ENABLE: u16 = 1 << 15;
/// MSI-X message control: mask every vector of the function.
const MSIX_FUNCTION_MASK: u16 = 1 << 14;
/// MSI-X message control: table size minus one.
const MSIX_TABLE_SIZE: u16 = 0x7FF;
/// MSI-X vector control: the entry is masked.
const MSIX_VECTOR_MASKED: u32 = 1;

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
