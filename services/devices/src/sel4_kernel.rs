//! The device access service's [`Kernel`] over seL4: configuration space through the I/O
//! port capability (grant 8), IRQ handlers from IRQ control (grant 9), retypes of the device
//! untypeds (grants 10..) in its own CNode, DMA memory from the memory service, and its own
//! uncached mappings of device frames for MSI-X tables. Every decision is the library's
//! (`devices::DevicesServer`, host-tested against a fake `Kernel`); this module only performs
//! the invocations.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use devices::{IrqIssue, Kernel, KernelError, Object, PortConfigSpace, PortIo, RetypeStep};
use proto::memory::MemoryClient;
use proto::naming::NamingClient;
use proto::sel4_transport::EndpointTransport;
use proto::Name;
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::slots;
use sel4::cap_type::{CNode, IoPort, IrqControl, Untyped, X86Page};
use sel4::{Cap, CapRights, ObjectType};
use vspace::{MapError, Pool, VSpace};

const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);
/// Grant 8: the kernel's (global) I/O port capability.
const IO_PORT: Cap<IoPort> = Cap::from_raw(slots::GRANTS);
/// Grant 9: IRQ control.
const IRQ_CONTROL: Cap<IrqControl> = Cap::from_raw(slots::GRANTS + 1);
/// Grant 10 on: the device untypeds, in the order of the data blob's `untypeds` table.
const FIRST_UNTYPED: u64 = slots::GRANTS + 2;

/// The I/O port capability as the library's port access. A failed invocation reads as all
/// ones (what an absent device reads as) and drops the write.
pub struct Ports;

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

/// The seL4 side of the library's [`Kernel`]: slots of its own CNode, the I/O port
/// capability, IRQ control, and the memory service.
pub struct Sel4 {
    cfg: PortConfigSpace<Ports>,
    slots: Slots,
    /// The memory service's endpoint, looked up through naming on the first DMA request.
    memory: Option<u64>,
    /// The service's own mappings of device frames (MSI-X tables): frame slot -> address.
    mapped: BTreeMap<u64, u64>,
    /// Where those mappings go.
    vspace: VSpace,
    /// Slots for those mappings' frame copies and paging structures ([`MAPPING_SLOTS`]).
    map_slots: Slots,
}

/// Slots at the top of the CNode for the paging structures and frame copies of the service's
/// own mappings (MSI-X tables), apart from the slots of [`Sel4::slots`].
const MAPPING_SLOTS: core::ops::Range<u64> = 4000..4096;

impl Kernel for Sel4 {
    type Config = PortConfigSpace<Ports>;

    fn config(&mut self) -> &mut Self::Config {
        &mut self.cfg
    }

    fn retype(&mut self, step: &RetypeStep) -> Result<u64, KernelError> {
        // Consecutive slots: only a failed retype frees slots before the carving ends, and it
        // frees them in reverse so that they come back in order.
        let (object, bits) = match step.object {
            Object::Untyped { size_bits } => (ObjectType::Untyped, size_bits),
            Object::Frame => (ObjectType::X86Page, 0),
        };
        let taken: Vec<u64> = (0..step.count).map_while(|_| self.slots.alloc()).collect();
        let whole =
            taken.len() == step.count as usize && taken.windows(2).all(|w| w[1] == w[0] + 1);
        let untyped = FIRST_UNTYPED + step.untyped as u64;
        let made = match taken.first() {
            Some(&first) if whole => {
                retype(untyped, object, bits, first, step.count).map(|()| first)
            }
            _ => Err(sel4::Error::NotEnoughMemory),
        };
        made.map_err(|e| {
            println!("devices: retype {step:?}: {e:?}");
            taken.iter().rev().for_each(|&slot| self.slots.free(slot));
            KernelError
        })
    }

    fn delete(&mut self, slot: u64) {
        let _ = OWN.cnode_delete(slot, 64);
        self.slots.free(slot);
    }

    fn issue_irq(&mut self, how: IrqIssue) -> Result<u64, KernelError> {
        let slot = self.slots.alloc().ok_or(KernelError)?;
        let made = match how {
            IrqIssue::IoApic(a) => IRQ_CONTROL.irq_control_get_ioapic(
                OWN,
                slot,
                64,
                a.ioapic.into(),
                a.pin.into(),
                a.level.into(),
                a.polarity.into(),
                a.vector.into(),
            ),
            IrqIssue::Pic { line } => IRQ_CONTROL.irq_control_get(line.into(), OWN, slot, 64),
            IrqIssue::Msi(m) => IRQ_CONTROL.irq_control_get_msi(
                OWN,
                slot,
                64,
                m.pci_bus.into(),
                m.pci_dev.into(),
                m.pci_func.into(),
                m.handle,
                m.vector.into(),
            ),
        };
        made.map(|()| slot).map_err(|e| {
            println!("devices: {how:?}: {e:?}");
            self.delete(slot);
            KernelError
        })
    }

    fn io_port(&self) -> u64 {
        IO_PORT.raw()
    }

    fn alloc_untyped(&mut self, size_bits: u8) -> Result<u64, KernelError> {
        let memory = self.memory_endpoint()?;
        let slot = self.slots.alloc().ok_or(KernelError)?;
        let mut client = MemoryClient::new(EndpointTransport::receiving(memory, slot));
        client.alloc(size_bits).map(|a| a.untyped.0).map_err(|e| {
            println!("devices: memory refused {size_bits} bits of DMA memory: {e:?}");
            self.slots.free(slot);
            KernelError
        })
    }

    fn retype_frame(&mut self, untyped: u64, size_bits: u8) -> Result<(u64, u64), KernelError> {
        let object = match size_bits {
            12 => ObjectType::X86Page,
            21 => ObjectType::X86LargePage,
            _ => return Err(KernelError),
        };
        let frame = self.slots.alloc().ok_or(KernelError)?;
        let made = retype(untyped, object, 0, frame, 1)
            .and_then(|()| Cap::<X86Page>::from_raw(frame).x86_page_get_address());
        made.map(|paddr| (frame, paddr)).map_err(|e| {
            println!("devices: DMA frame of {size_bits} bits: {e:?}");
            self.delete(frame);
            KernelError
        })
    }

    #[allow(
        unsafe_code,
        reason = "stores into an MSI-X table through the service's own uncached mapping"
    )]
    fn write_frame32(&mut self, frame: u64, offset: u16, value: u32) -> Result<(), KernelError> {
        if !offset.is_multiple_of(4) || offset > 4092 {
            return Err(KernelError);
        }
        let base = match self.mapped.get(&frame) {
            Some(&base) => base,
            None => {
                let base = self.map_frame(frame)?;
                self.mapped.insert(frame, base);
                base
            }
        };
        // SAFETY: `base` maps device frame `frame` uncached, never unmapped; `offset` is a
        // 4-byte-aligned offset inside that page (checked above).
        unsafe { core::ptr::write_volatile((base + u64::from(offset)) as *mut u32, value) };
        Ok(())
    }

    fn log(&mut self, line: fmt::Arguments<'_>) {
        println!("{line}");
    }
}

impl Sel4 {
    /// The kernel operations over the slots `slots` hands out (above the grants).
    pub fn new(slots: Slots) -> Sel4 {
        Sel4 {
            cfg: PortConfigSpace::new(Ports),
            slots,
            memory: None,
            mapped: BTreeMap::new(),
            vspace: VSpace::own(),
            map_slots: Slots::within(MAPPING_SLOTS),
        }
    }

    /// The memory service's endpoint, looked up through naming the first time.
    fn memory_endpoint(&mut self) -> Result<u64, KernelError> {
        if let Some(memory) = self.memory {
            return Ok(memory);
        }
        let slot = self.slots.alloc().ok_or(KernelError)?;
        let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, slot));
        match naming.lookup(Name::new("memory").expect("a valid name")) {
            Ok(binding) => {
                self.memory = Some(binding.endpoint.0);
                Ok(binding.endpoint.0)
            }
            Err(e) => {
                println!("devices: no memory service: {e:?}");
                self.slots.free(slot);
                Err(KernelError)
            }
        }
    }

    /// Maps a copy of device frame `frame` uncached into the service's own address space.
    fn map_frame(&mut self, frame: u64) -> Result<u64, KernelError> {
        let memory = self.memory_endpoint()?;
        let map_slots = core::mem::take(&mut self.map_slots);
        let mut pool = Pool::new(map_slots, 12, |bits| {
            let slot = self.slots.alloc()?;
            let mut client = MemoryClient::new(EndpointTransport::receiving(memory, slot));
            client.alloc(bits).map(|a| a.untyped.0).ok()
        });
        let mapped = pool.slot().and_then(|copy| {
            OWN.cnode_copy(copy, 64, OWN, frame, 64, CapRights::read_write())
                .map_err(|error| MapError::Kernel {
                    step: "copy a device frame",
                    error,
                })?;
            let rights = CapRights::read_write();
            self.vspace
                .map(&mut pool, &[copy], rights, sel4::consts::X86_UNCACHEABLE)
        });
        self.map_slots = pool.into_slots();
        mapped.map_err(|e| {
            println!("devices: cannot map a device frame: {e:?}");
            KernelError
        })
    }
}

/// Retypes the untyped in slot `untyped` into `count` objects of `object` (`bits` for the
/// sizeable ones) in slots `first..` of the component's own CNode.
fn retype(
    untyped: u64,
    object: ObjectType,
    bits: u8,
    first: u64,
    count: u32,
) -> Result<(), sel4::Error> {
    Cap::<Untyped>::from_raw(untyped).untyped_retype(
        object.word(),
        bits.into(),
        OWN,
        0,
        0,
        first,
        count.into(),
    )
}
