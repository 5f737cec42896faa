//! A virtio-blk disk for a driver component (`services/blk`): [`ClaimedDisk::claim`] claims
//! the device from `devices`, maps the BAR holding its virtio structures uncached (found in
//! the configuration space `devices` shows read-only), takes its interrupt handler and sets
//! up `virtio-drivers`' PCI transport; [`queue_memory`] maps physically contiguous memory
//! for the driver's virtqueue ([`DmaQueue`]). Interrupts arrive as INTx (IOAPIC or PIC),
//! where reading the ISR byte ([`virtio_blk::BlkTransport::ack_interrupt`]) lowers the line,
//! or, with `irq = "msix"`, as MSI-X entry 0 (which `devices` programs; [`Transport`] routes
//! the queue to it).
//!
//! One disk per component: `virtio-drivers` finds the mapped BAR through an associated
//! function of its `Hal`, so the mapping lives in statics here (apart from the NIC's in
//! [`crate::nic`], so a component could hold both).
//!
//! Invariants: a [`DmaQueue`] is made only over memory mapped for good and used by nothing
//! else; every access is checked against its size.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use proto::devices::DeviceInfo;
use proto::devices::IrqMode;
use proto::Name;
use rt::startinfo::slots;
use sel4::cap_type::{CNode, IrqHandler, Tcb};
use sel4::{CPtr, Cap, CapData, CapRights};
use virtio_blk::{Adapter, QueueMemory};
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};
use virtio_net::ShadowConfig;
use vspace::{Pool, VSpace};

use crate::device::{Devices, Registers};
use crate::nic::ConfigReader;

/// No MSI-X vector (virtio 1.2, section 4.1.4.3): the device raises INTx instead.
pub const NO_VECTOR: u16 = 0xFFFF;
/// Offsets in the common configuration structure (virtio 1.2, section 4.1.4.3).
const QUEUE_SELECT: usize = 0x16;
const QUEUE_MSIX_VECTOR: usize = 0x1A;

/// The transport the block driver runs over: `virtio-drivers`' PCI transport, plus the one
/// register it does not expose, the queue's MSI-X vector (set when the device's interrupt is
/// MSI-X, whose entry 0 `devices` programs).
pub struct Transport {
    pci: Adapter<PciTransport>,
    /// The common configuration structure's address in the mapped BAR.
    common: usize,
    /// The vector to route queues to (`None`: INTx).
    vector: Option<u16>,
    /// The vector the device accepted for queue 0 (`NO_VECTOR` if none).
    accepted: u16,
}

impl Transport {
    /// The MSI-X vector the device took for its queue: `None` under INTx or if it refused.
    pub fn msix_vector(&self) -> Option<u16> {
        (self.accepted != NO_VECTOR).then_some(self.accepted)
    }

    fn common16(&self, offset: usize) -> *mut u16 {
        (self.common + offset) as *mut u16
    }
}

impl virtio_blk::BlkTransport for Transport {
    fn device_features(&mut self) -> u64 {
        self.pci.device_features()
    }
    fn set_driver_features(&mut self, features: u64) {
        self.pci.set_driver_features(features)
    }
    fn status(&self) -> u8 {
        self.pci.status()
    }
    fn set_status(&mut self, status: u8) {
        self.pci.set_status(status)
    }
    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.pci.max_queue_size(queue)
    }
    fn queue_set(&mut self, queue: u16, size: u32, descriptors: u64, driver: u64, device: u64) {
        self.pci.queue_set(queue, size, descriptors, driver, device);
        if let Some(vector) = self.vector {
            // SAFETY: `claim` found the common configuration inside the BAR it mapped
            // uncached for good; both fields are naturally aligned 16-bit registers.
            unsafe {
                self.common16(QUEUE_SELECT).write_volatile(queue);
                self.common16(QUEUE_MSIX_VECTOR).write_volatile(vector);
                self.accepted = self.common16(QUEUE_MSIX_VECTOR).read_volatile();
            }
        }
    }
    fn notify(&mut self, queue: u16) {
        self.pci.notify(queue)
    }
    fn ack_interrupt(&mut self) -> bool {
        self.pci.ack_interrupt()
    }
    fn config32(&self, offset: usize) -> Option<u32> {
        self.pci.config32(offset)
    }
}

/// Queue memory: virtio-blk's descriptor table, rings and request headers, mapped cached
/// (x86 DMA is coherent), accessed volatile by offset.
#[derive(Debug)]
pub struct DmaQueue {
    vaddr: usize,
    size: usize,
}

impl DmaQueue {
    fn at<T>(&self, offset: usize) -> *mut T {
        let size = core::mem::size_of::<T>();
        assert!(offset + size <= self.size && offset.is_multiple_of(size));
        (self.vaddr + offset) as *mut T
    }
}

// Each access: SAFETY: `queue_memory` made the mapping (`size` bytes at `vaddr`, never
// unmapped, used by this value and the device only); `at` checks the offset and alignment.
impl QueueMemory for DmaQueue {
    fn read8(&self, offset: usize) -> u8 {
        // SAFETY: see above.
        unsafe { self.at::<u8>(offset).read_volatile() }
    }
    fn read16(&self, offset: usize) -> u16 {
        // SAFETY: see above.
        unsafe { self.at::<u16>(offset).read_volatile() }
    }
    fn read32(&self, offset: usize) -> u32 {
        // SAFETY: see above.
        unsafe { self.at::<u32>(offset).read_volatile() }
    }
    fn write8(&mut self, offset: usize, value: u8) {
        // SAFETY: see above.
        unsafe { self.at::<u8>(offset).write_volatile(value) }
    }
    fn write16(&mut self, offset: usize, value: u16) {
        // SAFETY: see above.
        unsafe { self.at::<u16>(offset).write_volatile(value) }
    }
    fn write32(&mut self, offset: usize, value: u32) {
        // SAFETY: see above.
        unsafe { self.at::<u32>(offset).write_volatile(value) }
    }
    fn write64(&mut self, offset: usize, value: u64) {
        // SAFETY: see above.
        unsafe { self.at::<u64>(offset).write_volatile(value) }
    }
}

/// Maps `bytes` (rounded up to a power of two pages) of fresh, zeroed, physically
/// contiguous memory from the component's budget for a virtqueue: the memory, its size
/// and its physical address. Ends the component (`component: cannot map queue memory`) if
/// it cannot.
pub fn queue_memory<F: FnMut(u8) -> Option<CPtr>>(
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    bytes: usize,
    component: &'static str,
) -> (DmaQueue, usize, u64) {
    let size = bytes.max(4096).next_power_of_two();
    let bits = size.trailing_zeros() as u8;
    let (vaddr, paddr, _) = vspace
        .map_new(pool, bits, sel4::consts::X86_DEFAULT_VM_ATTRIBUTES)
        .unwrap_or_else(|e| rt::fail(component, "map queue memory", format_args!("{e:?}")));
    (
        DmaQueue {
            vaddr: vaddr as usize,
            size,
        },
        size,
        paddr,
    )
}

static MMIO_PADDR: AtomicU64 = AtomicU64::new(0);
static MMIO_VADDR: AtomicUsize = AtomicUsize::new(0);
static MMIO_SIZE: AtomicUsize = AtomicUsize::new(0);

/// `virtio-drivers`' `Hal` for the block transport: only the BAR translation is used (the
/// block driver brings its own queue memory).
pub struct BlkHal;

// SAFETY: `dma_alloc` never hands out memory (the transport does not ask for any; the
// block driver maps its own), and `mmio_phys_to_virt` translates only inside the BAR
// mapping `ClaimedDisk::claim` recorded.
unsafe impl Hal for BlkHal {
    fn dma_alloc(_: usize, _: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        panic!("blk: the virtio transport asked for DMA memory")
    }
    unsafe fn dma_dealloc(_: PhysAddr, _: NonNull<u8>, _: usize) -> i32 {
        0
    }
    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let translate = || {
            let offset = usize::try_from(paddr.checked_sub(MMIO_PADDR.load(Relaxed))?).ok()?;
            (offset + size <= MMIO_SIZE.load(Relaxed))
                .then(|| NonNull::new((MMIO_VADDR.load(Relaxed) + offset) as *mut u8))?
        };
        translate().expect("blk: virtio structure outside the mapped BAR")
    }
    unsafe fn share(_: NonNull<[u8]>, _: BufferDirection) -> PhysAddr {
        panic!("blk: the virtio transport asked to share a buffer")
    }
    unsafe fn unshare(_: PhysAddr, _: NonNull<[u8]>, _: BufferDirection) {}
}

/// A claimed virtio-blk device: its transport set up, its interrupt handler taken.
pub struct ClaimedDisk {
    /// What `devices` said when it granted the claim.
    pub info: DeviceInfo,
    /// The transport for `virtio_blk::VirtioBlk::new`.
    pub transport: Transport,
    /// The interrupt handler.
    pub handler: Cap<IrqHandler>,
    /// The mapped BAR (index, physical address).
    pub bar: (u8, u64),
}

impl ClaimedDisk {
    /// Claims `device`, maps the one BAR holding its virtio structures and sets up the
    /// PCI transport; ends the component (see [`crate::device`]) if any step fails.
    pub fn claim<F: FnMut(u8) -> Option<CPtr>>(
        devices: &mut Devices,
        pool: &mut Pool<F>,
        vspace: &mut VSpace,
        device: Name,
    ) -> ClaimedDisk {
        let component = devices.component();
        let info = devices.claim(device);
        let shadow = ShadowConfig::read(&mut ConfigReader(|offset| {
            devices.read_config(device, offset)
        }));
        let (vendor, id) = shadow.ids();
        let fail = |reason: &dyn core::fmt::Display| -> ! {
            rt::fail(component, format_args!("use {device}"), reason)
        };
        if (vendor, id) != (virtio_blk::VENDOR_ID, virtio_blk::DEVICE_ID_MODERN) {
            fail(&format_args!(
                "{vendor:04x}:{id:04x} is not a modern virtio-blk"
            ));
        }
        let layout = shadow.layout();
        let (bar, common) = match layout.common {
            Some(r) if layout.regions().all(|o| o.bar == r.bar) && r.length >= 0x38 => {
                (r.bar, r.offset as usize)
            }
            _ => fail(&"virtio structures missing or in more than one BAR"),
        };
        let paddr = shadow
            .bar_address(bar)
            .unwrap_or_else(|| fail(&"not a memory BAR"));
        let (registers, _): (Registers, u64) =
            devices.map_bar(pool, vspace, device, bar, layout.bar_size(bar));
        MMIO_PADDR.store(paddr, Relaxed);
        MMIO_VADDR.store(registers.base(), Relaxed);
        MMIO_SIZE.store(registers.size(), Relaxed);
        let handler = devices.irq(pool, device);
        let mut root = PciRoot::new(shadow);
        let function = DeviceFunction {
            bus: 0,
            device: 0,
            function: 0,
        };
        let transport = PciTransport::new::<BlkHal, _>(&mut root, function)
            .unwrap_or_else(|e| fail(&format_args!("virtio transport: {e:?}")));
        let vector = (info.irq == IrqMode::MsiX).then_some(0);
        ClaimedDisk {
            info,
            transport: Transport {
                pci: Adapter(transport),
                common: registers.base() + common,
                vector,
                accepted: NO_VECTOR,
            },
            handler,
            bar: (bar, paddr),
        }
    }
}

/// A copy of this component's notification (`slots::NOTIFICATION`) badged `badge`, in a
/// fresh slot of `pool`: a doorbell for clients, or an interrupt's target. Ends the
/// component (`component: cannot mint a notification`) if it cannot.
pub fn badged_notification<F: FnMut(u8) -> Option<CPtr>>(
    pool: &mut Pool<F>,
    badge: u64,
    component: &'static str,
) -> CPtr {
    let own: Cap<CNode> = Cap::from_raw(slots::CNODE);
    let slot = pool
        .slot()
        .unwrap_or_else(|e| rt::fail(component, "mint a notification", format_args!("{e:?}")));
    own.cnode_mint(
        slot,
        64,
        own,
        slots::NOTIFICATION,
        64,
        CapRights::all(),
        CapData::new_badge(badge),
    )
    .unwrap_or_else(|e| rt::fail(component, "mint a notification", format_args!("{e:?}")));
    slot
}

impl ClaimedDisk {
    /// Delivers the disk's interrupt to the calling thread: its handler signals a copy of
    /// the component's notification badged `badge`, and that notification is bound to the
    /// thread, so a `Recv` on any endpoint also returns for the interrupt (with the badge).
    /// Ends the component if a step fails.
    pub fn interrupt_to_thread<F: FnMut(u8) -> Option<CPtr>>(
        &self,
        pool: &mut Pool<F>,
        badge: u64,
        component: &'static str,
    ) {
        let target = badged_notification(pool, badge, component);
        let fail =
            |what: &str, e: sel4::Error| -> ! { rt::fail(component, what, format_args!("{e:?}")) };
        self.handler
            .irq_handler_set_notification(Cap::from_raw(target))
            .unwrap_or_else(|e| fail("set the IRQ's notification", e));
        Cap::<Tcb>::from_raw(slots::TCB)
            .tcb_bind_notification(Cap::from_raw(slots::NOTIFICATION))
            .unwrap_or_else(|e| fail("bind the notification", e));
        let _ = self.handler.irq_handler_ack();
    }
}
