//! The device-access interface: PCI enumeration, and for each driver exactly its device's
//! registers, interrupt and DMA memory.
//!
//! A driver names its device by the name the system description gives it; any other device
//! is `NotFound`, whether it exists or not.

use crate::{CapSlot, Name};

crate::record! {
    /// One PCI function.
    pub struct PciFunction {
        /// Bus number.
        pub bus: u8,
        /// Device number on the bus.
        pub dev: u8,
        /// Function number.
        pub func: u8,
        /// Vendor id.
        pub vendor: u16,
        /// Device id.
        pub device: u16,
        /// Class code: base class << 16 | subclass << 8 | programming interface.
        pub class: u32,
    }
}

crate::word_enum! {
    /// How a device's interrupt is delivered.
    pub enum IrqMode {
        /// Polled: no interrupt.
        None = 0,
        /// Message-signalled.
        Msi = 1,
        /// Through the IOAPIC.
        IoApic = 2,
        /// Through the 8259 PIC.
        Pic = 3,
        /// MSI-X entry 0 (the devices service programs the table; the driver routes the
        /// device's causes to entry 0 where the device needs that, e.g. the e1000e's IVAR).
        MsiX = 4,
    }
}

crate::record! {
    /// What a driver learns when it claims its device.
    pub struct DeviceInfo {
        /// Whether it is a PCI function (else a legacy I/O-port device).
        pub is_pci: bool,
        /// The PCI function (zero for an I/O-port device).
        pub pci: PciFunction,
        /// Memory BARs the driver may map with `bar`, as a bit set (bit i: BAR i).
        pub bars: u8,
        /// First I/O port (0 with `last_port` 0 if none).
        pub first_port: u16,
        /// Last I/O port, inclusive.
        pub last_port: u16,
        /// How its interrupt arrives.
        pub irq: IrqMode,
    }
}

impl DeviceInfo {
    /// A legacy I/O-port device: ports `first_port..=last_port`, no PCI function, no BARs.
    pub const fn ports(first_port: u16, last_port: u16, irq: IrqMode) -> DeviceInfo {
        DeviceInfo {
            is_pci: false,
            pci: PciFunction {
                bus: 0,
                dev: 0,
                func: 0,
                vendor: 0,
                device: 0,
                class: 0,
            },
            bars: 0,
            first_port,
            last_port,
            irq,
        }
    }
}

crate::record! {
    /// A frame with its physical address, for device registers or DMA.
    pub struct PhysFrame {
        /// The frame; lands in the receive slot.
        pub frame: CapSlot,
        /// Its physical (bus) address.
        pub paddr: u64,
    }
}

crate::interface! {
    client DevicesClient;
    errors {
        /// No such device, or the description does not assign it to the caller (alike).
        NotFound = 16,
        /// The index is past the last entry.
        NoEntry = 17,
        /// The device has not been claimed by the caller yet.
        NotClaimed = 18,
        /// The BAR is not a memory BAR of the device, or the page is past its end.
        OutOfRange = 19,
        /// The device has no interrupt.
        NoIrq = 20,
        /// No DMA memory of that size is left in the caller's budget.
        OutOfMemory = 21,
        /// The size is outside 12..=21 bits.
        InvalidSize = 22,
    }
    ops {
        /// The `index`th PCI function in bus order.
        ///
        /// `Ok(function)`; `Err(NoEntry)` past the last.
        List = 1 => fn list(index: u32) -> PciFunction;
        /// Claims the device `device` for the caller (again after a restart is fine).
        ///
        /// `Ok(info)`; `Err(NotFound)` unless the description assigns it to the caller.
        Claim = 2 => fn claim(device: Name) -> DeviceInfo;
        /// Page `page` of memory BAR `bar` of the claimed device.
        ///
        /// `Ok(frame)` (uncached); `Err(NotFound)`; `Err(NotClaimed)`; `Err(OutOfRange)`.
        Bar = 3 => fn bar(device: Name, bar: u8, page: u64) -> PhysFrame;
        /// The interrupt handler of the claimed device.
        ///
        /// `Ok(handler)`; `Err(NotFound)`; `Err(NotClaimed)`; `Err(NoIrq)` for a polled one.
        Irq = 4 => fn irq(device: Name) -> CapSlot;
        /// A DMA buffer of 2^`size_bits` bytes, physically contiguous, from the caller's
        /// budget.
        ///
        /// `Ok(frame)`; `Err(InvalidSize)`; `Err(OutOfMemory)`; `Err(NotClaimed)` before the
        /// caller has claimed a device.
        Dma = 5 => fn dma(size_bits: u8) -> PhysFrame;
    }
}

/// The I/O port operation of the device access service: a second interface on the same
/// endpoint (label 6, after the five above), kept apart because it exists only for a
/// limitation of seL4 5.0.
///
/// seL4 5.0 has one I/O port capability, for every port (later kernels issue capabilities
/// for port ranges with `X86IOPortControl_Issue`). So a driver of an I/O-port device (the
/// PC's COM1, say) gets a copy of that global capability: it *could* reach every port,
/// including PCI configuration space at `0xCF8..=0xCFF`. `claim` tells it which ports are its
/// own; staying in them is up to the driver. When the kernel can issue per-range
/// capabilities this operation returns one of exactly the device's range instead, and the
/// callers do not change.
pub mod ports {
    use crate::{CapSlot, Name};

    crate::interface! {
        client PortsClient;
        errors {
            /// No such device, or the description does not assign it to the caller (alike).
            NotFound = 16,
            /// The device has not been claimed by the caller yet.
            NotClaimed = 18,
            /// The device has no I/O ports (a PCI function without I/O BARs).
            NoPorts = 23,
        }
        ops {
            /// The I/O port capability for the claimed device `device`. On seL4 5.0 this is
            /// a copy of the kernel's global I/O port capability (see the module docs).
            ///
            /// `Ok(ports)`; `Err(NotFound)`; `Err(NotClaimed)`; `Err(NoPorts)`.
            IoPort = 6 => fn ioport(device: Name) -> CapSlot;
        }
    }
}

/// Read-only access to the claimed PCI function's configuration space: a third interface
/// on the same endpoint (label 7), for drivers (virtio over PCI) that walk the function's
/// capability list. `devices` stays the only component that touches configuration space:
/// it reads the word for the caller and writes nothing.
pub mod config {
    use crate::Name;

    crate::interface! {
        client ConfigClient;
        errors {
            /// No such device, or the description does not assign it to the caller (alike).
            NotFound = 16,
            /// The device has not been claimed by the caller yet.
            NotClaimed = 18,
            /// The offset is not a multiple of 4, or the device is not a PCI function.
            OutOfRange = 19,
        }
        ops {
            /// The 32-bit word at byte `offset` (a multiple of 4) of the claimed PCI
            /// function's configuration space (the first 256 bytes).
            ///
            /// `Ok(word)`; `Err(NotFound)`; `Err(NotClaimed)`; `Err(OutOfRange)`.
            ReadConfig = 7 => fn read_config(device: Name, offset: u8) -> u32;
        }
    }
}

/// The interrupt message of a claimed platform (MMIO) device whose description asks for
/// `irq = "msi"`: a fourth interface on the same endpoint (label 8). `devices` issues the
/// handler (`irq`) and picks the vector; the driver writes this address/data pair into its
/// device (for the HPET, a timer's FSB route), since only the driver maps the registers.
pub mod message {
    use crate::Name;

    crate::record! {
        /// What the device writes, and where, to raise its interrupt.
        pub struct MsiMessage {
            /// The physical address to write (the local APIC's message window).
            pub address: u64,
            /// The 32-bit value to write (the CPU vector).
            pub data: u32,
        }
    }

    crate::interface! {
        client MessageClient;
        errors {
            /// No such device, or the description does not assign it to the caller (alike).
            NotFound = 16,
            /// The device has not been claimed by the caller yet.
            NotClaimed = 18,
            /// The device has no message-signalled interrupt of its own to program, or its
            /// handler has not been issued yet (call `irq` first).
            NoIrq = 20,
        }
        ops {
            /// The message of the claimed device `device`, after `irq` issued its handler.
            ///
            /// `Ok(message)`; `Err(NotFound)`; `Err(NotClaimed)`; `Err(NoIrq)`.
            MsiMessage = 8 => fn msi_message(device: Name) -> MsiMessage;
        }
    }
}
