//! A NIC for the library OS in a few lines: [`ClaimedNic::claim`] claims the device from
//! `devices` and maps its register BAR uncached; [`ClaimedNic::interrupt`] is the
//! interrupt thread's source for it (its hook acknowledges the device); [`ClaimedNic::start`]
//! maps 2 MiB of physically contiguous DMA memory and starts the driver (`e1000e` or
//! `virtio-net` from `drivers/`) as a `libos_core::NetDevice`.
//!
//! ```text
//! let nic = ClaimedNic::claim(&mut devices, &mut pool, &mut vspace, name, NicKind::E1000e);
//! sources.push(nic.interrupt());            // then irq::start(..)
//! let started = nic.start(&mut pool, &mut vspace, TscDelay(clock), e1000e::Config::default());
//! ```
//!
//! The e1000e uses BAR0 (128 KiB) and MSI or MSI-X; its hook reads ICR, which clears the
//! causes and re-arms MSI (under MSI-X it writes them back, as reading does not clear
//! them there). virtio-net uses the one BAR holding its virtio structures (found in the
//! configuration space `devices` shows read-only) and INTx, whose hook reads the ISR byte
//! (which lowers the line), or MSI-X, which needs no hook. With MSI-X (`devices` programs
//! table entry 0) [`ClaimedNic::start`] routes the device's causes to entry 0: the
//! e1000e's IVAR, virtio's queue vectors ([`MsixRouting`] says what was written). One NIC
//! per component: `virtio-drivers` asks for memory through associated functions, so its
//! platform lives in statics.

use alloc::boxed::Box;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use e1000e::E1000e;
use proto::devices::{DeviceInfo, IrqMode};
use proto::Name;
use sel4::cap_type::IrqHandler;
use sel4::{CPtr, Cap};
use virtio_net::{Layout, ShadowConfig, VirtioNet};
use vspace::{Pool, VSpace};

use crate::device::{Devices, Registers, TscDelay};
use crate::dma::DmaArena;
use crate::irq;

/// Size of the DMA memory a started NIC gets, as a power of two (2 MiB).
pub const DMA_BITS: u8 = 21;

/// Which driver runs the NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NicKind {
    /// Intel 82574L (`drivers/e1000e`).
    E1000e,
    /// virtio-net over PCI, modern layout (`drivers/virtio-net`).
    VirtioNet,
}

impl NicKind {
    /// The driver's name as the console lines print it.
    pub fn name(self) -> &'static str {
        match self {
            NicKind::E1000e => "e1000e",
            NicKind::VirtioNet => "virtio-net",
        }
    }
}

/// Why a virtio-net function's register BAR cannot be chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarError {
    /// The capabilities describe no ISR structure (so no interrupt acknowledgement).
    NoIsr,
    /// The structures lie in more than one BAR (only one is mapped).
    SeveralBars,
}

impl core::fmt::Display for BarError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            BarError::NoIsr => "virtio-net has no ISR structure",
            BarError::SeveralBars => "virtio structures in more than one BAR",
        })
    }
}

/// The BAR a driver maps and how many bytes of it: BAR0's 128 KiB for the e1000e
/// (`layout` `None`), else the one BAR holding every virtio structure, as large as they
/// need (`Layout::bar_size`).
pub fn register_bar(layout: Option<&Layout>) -> Result<(u8, u64), BarError> {
    let Some(layout) = layout else {
        return Ok((0, e1000e::pci::BAR0_SIZE as u64));
    };
    let bar = layout.isr.ok_or(BarError::NoIsr)?.bar;
    if layout.regions().any(|r| r.bar != bar) {
        return Err(BarError::SeveralBars);
    }
    Ok((bar, layout.bar_size(bar)))
}

/// The interrupt thread's hook for an e1000e: reads (and so clears) ICR at `base` (BAR0's
/// mapping), which re-arms MSI.
pub fn acknowledge_e1000e(base: usize) {
    // SAFETY: `ClaimedNic::interrupt` passes BAR0's uncached mapping, which stays mapped;
    // ICR is inside it and reading it only clears causes.
    let _ = unsafe { core::ptr::read_volatile((base + e1000e::regs::ICR) as *const u32) };
}

/// The interrupt thread's hook for an e1000e under MSI-X: reads ICR at `base` (BAR0's
/// mapping) and writes the causes back, which clears them (reading alone does not under
/// MSI-X), so the next cause raises a new message.
pub fn acknowledge_e1000e_msix(base: usize) {
    let icr = (base + e1000e::regs::ICR) as *mut u32;
    // SAFETY: as in `acknowledge_e1000e`; writing ICR only clears the causes written.
    unsafe {
        let causes = core::ptr::read_volatile(icr);
        if causes != 0 {
            core::ptr::write_volatile(icr, causes);
        }
    }
}

/// The interrupt thread's hook for virtio-net: reads the ISR status byte at `isr`, which
/// lowers INTx.
pub fn acknowledge_virtio(isr: usize) {
    // SAFETY: `ClaimedNic::interrupt` passes the ISR byte's address inside the mapped,
    // uncached register BAR.
    let _ = unsafe { core::ptr::read_volatile(isr as *const u8) };
}

/// The interrupt hook and its argument for a NIC whose register BAR is mapped at `base`:
/// ICR's BAR for the e1000e (`layout` `None`), else the ISR byte's address.
pub fn acknowledgement(layout: Option<&Layout>, base: usize) -> (fn(usize), usize) {
    match layout {
        None => (acknowledge_e1000e, base),
        Some(layout) => {
            let isr = layout.isr.map_or(0, |r| r.offset as usize);
            (acknowledge_virtio, base + isr)
        }
    }
}

/// The interrupt hook and its argument for a NIC whose register BAR is mapped at `base`
/// and whose interrupt arrives as `irq`: as [`acknowledgement`], except under MSI-X, where
/// the e1000e writes its causes back ([`acknowledge_e1000e_msix`]) and virtio-net needs
/// no hook (`None`).
pub fn acknowledgement_for(
    layout: Option<&Layout>,
    base: usize,
    irq: IrqMode,
) -> Option<(fn(usize), usize)> {
    match (layout, irq) {
        (None, IrqMode::MsiX) => Some((acknowledge_e1000e_msix, base)),
        (Some(_), IrqMode::MsiX) => None,
        _ => Some(acknowledgement(layout, base)),
    }
}

/// What [`ClaimedNic::start`] wrote to route the device's interrupts to MSI-X entry 0,
/// read back from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsixRouting {
    /// Not MSI-X.
    None,
    /// The e1000e's IVAR register.
    E1000e {
        /// IVAR as read back.
        ivar: u32,
    },
    /// virtio-net's queue vectors.
    Virtio(virtio_net::msix::Vectors),
}

/// A claimed NIC with its registers mapped, its driver not started yet.
pub struct ClaimedNic {
    kind: NicKind,
    info: DeviceInfo,
    shadow: Option<ShadowConfig>,
    bar: u8,
    registers: Registers,
    handler: Cap<IrqHandler>,
}

/// A NIC whose driver runs.
pub struct StartedNic {
    /// The driver, for `libos_core::Net::new`.
    pub device: Box<dyn libos_core::NetDevice>,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Physical address of its DMA memory.
    pub dma_paddr: u64,
    /// How its interrupts were routed to MSI-X entry 0.
    pub msix: MsixRouting,
    /// virtio-net's checksum offloads as negotiated (`CSUM`, `GUEST_CSUM`); `None` for
    /// the e1000e (whose receive checksum offload is always on).
    pub virtio_offloads: Option<(bool, bool)>,
}

impl ClaimedNic {
    /// Claims `device` (a `kind` NIC), maps its register BAR uncached and takes its
    /// interrupt handler; ends the component (see [`crate::device`]) if any step fails.
    pub fn claim<F: FnMut(u8) -> Option<CPtr>>(
        devices: &mut Devices,
        pool: &mut Pool<F>,
        vspace: &mut VSpace,
        device: Name,
        kind: NicKind,
    ) -> ClaimedNic {
        let info = devices.claim(device);
        let shadow = (kind == NicKind::VirtioNet).then(|| {
            ShadowConfig::read(&mut ConfigReader(|offset| {
                devices.read_config(device, offset)
            }))
        });
        let (bar, size) = register_bar(shadow.as_ref().map(|s| s.layout()).as_ref())
            .unwrap_or_else(|e| rt::fail(devices.component(), format_args!("use {device}"), e));
        let (registers, _) = devices.map_bar(pool, vspace, device, bar, size);
        let handler = devices.irq(pool, device);
        ClaimedNic {
            kind,
            info,
            shadow,
            bar,
            registers,
            handler,
        }
    }

    /// The driver.
    pub fn kind(&self) -> NicKind {
        self.kind
    }

    /// What `devices` said when it granted the claim.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The index of the mapped BAR.
    pub fn bar(&self) -> u8 {
        self.bar
    }

    /// The mapped BAR.
    pub fn registers(&self) -> Registers {
        self.registers
    }

    /// The NIC as an interrupt thread source: its handler, with the hook that
    /// acknowledges the device.
    pub fn interrupt(&self) -> irq::Source {
        let layout = self.shadow.as_ref().map(|s| s.layout());
        let hook = acknowledgement_for(layout.as_ref(), self.registers.base(), self.info.irq);
        irq::Source {
            handler: self.handler,
            hook: hook.map(|(hook, _)| hook),
            context: hook.map_or(0, |(_, context)| context),
        }
    }

    /// Maps 2^[`DMA_BITS`] bytes of physically contiguous memory from the component's
    /// budget and starts the driver on it (`config` applies to the e1000e; `delay` times
    /// its reset; its `msix` is set from the claim). Panics when the memory cannot be had,
    /// the driver refuses the device or the device refuses its MSI-X vectors.
    pub fn start<F: FnMut(u8) -> Option<CPtr>>(
        self,
        pool: &mut Pool<F>,
        vspace: &mut VSpace,
        mut delay: TscDelay,
        mut config: e1000e::Config,
    ) -> StartedNic {
        let msix = self.info.irq == IrqMode::MsiX;
        let mut routing = MsixRouting::None;
        let mut virtio_offloads = None;
        let (vaddr, paddr, _) = vspace
            .map_new(pool, DMA_BITS, sel4::consts::X86_DEFAULT_VM_ATTRIBUTES)
            .expect("DMA memory");
        let size = 1usize << DMA_BITS;
        let (device, mac): (Box<dyn libos_core::NetDevice>, [u8; 6]) = match self.shadow {
            None => {
                // SAFETY: `map_new` mapped `size` fresh bytes at `vaddr`, physically
                // contiguous from `paddr`, never unmapped; only this arena uses them.
                let mut arena = unsafe { DmaArena::new(vaddr as usize, paddr, size) };
                config.msix = msix;
                let mut driver = E1000e::new(self.registers, &mut arena, &mut delay, config)
                    .expect("e1000e initialises");
                if msix {
                    let ivar = driver.registers().read32(e1000e::regs::IVAR);
                    routing = MsixRouting::E1000e { ivar };
                }
                let mac = driver.mac_address();
                (Box::new(driver), mac)
            }
            Some(shadow) => {
                let bar_paddr = shadow.bar_address(self.bar).expect("a memory BAR");
                assert!(
                    !VIRTIO_STARTED.swap(true, Relaxed),
                    "one virtio-net NIC per component"
                );
                // SAFETY: the BAR's registers are mapped for good at `registers`; the DMA
                // memory as above; the assertion keeps this the only virtio-net NIC, so
                // nothing else uses either.
                unsafe {
                    VirtioPlatform::install(
                        (bar_paddr, self.registers.base(), self.registers.size()),
                        (paddr, vaddr as usize, size),
                    )
                };
                let mut driver =
                    VirtioNet::<VirtioPlatform>::new(shadow).expect("virtio-net initialises");
                if msix {
                    let vectors = driver.use_msix(0).expect("virtio-net takes MSI-X vector 0");
                    routing = MsixRouting::Virtio(vectors);
                }
                virtio_offloads = Some(driver.checksum_offloads());
                let mac = driver.mac_address();
                (Box::new(driver), mac)
            }
        };
        StartedNic {
            device,
            mac,
            dma_paddr: paddr,
            msix: routing,
            virtio_offloads,
        }
    }
}

/// A configuration space read through a function (on Tessera, `devices`' `read_config`).
pub struct ConfigReader<F: FnMut(u8) -> u32>(pub F);

impl<F: FnMut(u8) -> u32> virtio_net::ConfigSpace for ConfigReader<F> {
    fn read32(&mut self, offset: u8) -> u32 {
        (self.0)(offset)
    }
}

/// Set by the first virtio-net [`ClaimedNic::start`]: the platform's statics serve one NIC.
static VIRTIO_STARTED: AtomicBool = AtomicBool::new(false);
static MMIO_PADDR: AtomicU64 = AtomicU64::new(0);
static MMIO_VADDR: AtomicUsize = AtomicUsize::new(0);
static MMIO_SIZE: AtomicUsize = AtomicUsize::new(0);
static DMA_PADDR: AtomicU64 = AtomicU64::new(0);
static DMA_VADDR: AtomicUsize = AtomicUsize::new(0);
static DMA_SIZE: AtomicUsize = AtomicUsize::new(0);
static DMA_NEXT: AtomicUsize = AtomicUsize::new(0);

/// The virtio-net driver's platform: one mapped register BAR and a bump DMA arena, in
/// statics (one NIC per component).
pub struct VirtioPlatform;

impl VirtioPlatform {
    /// Records the register BAR `(paddr, vaddr, size)` and the DMA memory
    /// `(paddr, vaddr, size)`; the arena starts empty.
    ///
    /// # Safety
    /// The BAR must be mapped uncached and the DMA memory mapped, zeroed and physically
    /// contiguous, both for good; nothing but the driver may use the DMA memory.
    pub unsafe fn install(mmio: (u64, usize, usize), dma: (u64, usize, usize)) {
        MMIO_PADDR.store(mmio.0, Relaxed);
        MMIO_VADDR.store(mmio.1, Relaxed);
        MMIO_SIZE.store(mmio.2, Relaxed);
        DMA_PADDR.store(dma.0, Relaxed);
        DMA_VADDR.store(dma.1, Relaxed);
        DMA_SIZE.store(dma.2, Relaxed);
        DMA_NEXT.store(0, Relaxed);
    }
}

impl virtio_net::Platform for VirtioPlatform {
    #[inline]
    fn dma_alloc(pages: usize) -> Option<(u64, NonNull<u8>)> {
        let size = pages.checked_mul(virtio_net::PAGE_SIZE)?;
        let start = DMA_NEXT.fetch_add(size, Relaxed);
        if start + size > DMA_SIZE.load(Relaxed) {
            return None;
        }
        let vaddr = DMA_VADDR.load(Relaxed) + start;
        Some((
            DMA_PADDR.load(Relaxed) + start as u64,
            NonNull::new(vaddr as *mut u8)?,
        ))
    }
    #[inline]
    fn virt_to_phys(vaddr: usize) -> Option<u64> {
        let offset = vaddr.checked_sub(DMA_VADDR.load(Relaxed))?;
        (offset < DMA_SIZE.load(Relaxed)).then(|| DMA_PADDR.load(Relaxed) + offset as u64)
    }
    #[inline]
    fn mmio_phys_to_virt(paddr: u64, size: usize) -> Option<NonNull<u8>> {
        let offset = usize::try_from(paddr.checked_sub(MMIO_PADDR.load(Relaxed))?).ok()?;
        (offset + size <= MMIO_SIZE.load(Relaxed))
            .then(|| NonNull::new((MMIO_VADDR.load(Relaxed) + offset) as *mut u8))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use virtio_net::{ConfigSpace, Platform, Region};

    fn region(bar: u8, offset: u32, length: u32) -> Option<Region> {
        Some(Region {
            bar,
            offset,
            length,
        })
    }

    #[test]
    fn the_register_bar_follows_the_nic() {
        assert_eq!(register_bar(None), Ok((0, 128 * 1024)));
        let layout = Layout {
            common: region(4, 0, 0x38),
            isr: region(4, 0x1000, 4),
            device: region(4, 0x2000, 0x20),
            notify: region(4, 0x3000, 0x1000),
        };
        assert_eq!(register_bar(Some(&layout)), Ok((4, 0x4000)));
        let split = Layout {
            notify: region(2, 0, 0x1000),
            ..layout
        };
        assert_eq!(register_bar(Some(&split)), Err(BarError::SeveralBars));
        let no_isr = Layout {
            isr: None,
            ..layout
        };
        assert_eq!(register_bar(Some(&no_isr)), Err(BarError::NoIsr));
    }

    #[test]
    fn each_nic_is_acknowledged_through_its_own_register() {
        let (hook, context) = acknowledgement(None, 0x8000);
        assert_eq!(
            (hook as usize, context),
            (acknowledge_e1000e as fn(usize) as usize, 0x8000)
        );
        let layout = Layout {
            isr: region(4, 0x1000, 4),
            ..Layout::default()
        };
        let (hook, context) = acknowledgement(Some(&layout), 0x8000);
        assert_eq!(
            (hook as usize, context),
            (acknowledge_virtio as fn(usize) as usize, 0x9000)
        );
        // Reading the cause registers of a stand-in BAR must not fault or write.
        let bar = vec![0xFFFF_FFFFu32; 0x1000];
        let base = bar.as_ptr() as usize;
        for (hook, context) in [
            acknowledgement(None, base),
            acknowledgement(Some(&layout), base),
        ] {
            hook(context);
        }
        assert!(bar.iter().all(|&word| word == 0xFFFF_FFFF));
    }

    #[test]
    fn under_msix_the_e1000e_writes_its_causes_back_and_virtio_needs_no_hook() {
        let layout = Layout {
            isr: region(4, 0x1000, 4),
            ..Layout::default()
        };
        let (hook, context) = acknowledgement_for(None, 0x8000, IrqMode::MsiX).unwrap();
        assert_eq!(
            (hook as usize, context),
            (acknowledge_e1000e_msix as fn(usize) as usize, 0x8000)
        );
        assert!(acknowledgement_for(Some(&layout), 0x8000, IrqMode::MsiX).is_none());
        for mode in [IrqMode::Msi, IrqMode::IoApic, IrqMode::Pic] {
            assert_eq!(
                acknowledgement_for(Some(&layout), 0x8000, mode),
                Some(acknowledgement(Some(&layout), 0x8000))
            );
        }
        // A stand-in BAR: the causes read are written back (a real ICR clears them then).
        let mut bar = vec![0u32; 0x1000];
        bar[e1000e::regs::ICR / 4] = 0x0010_0000;
        acknowledge_e1000e_msix(bar.as_mut_ptr() as usize);
        assert_eq!(
            bar[e1000e::regs::ICR / 4],
            0x0010_0000,
            "written back as read"
        );
        assert!(bar
            .iter()
            .enumerate()
            .all(|(i, &w)| w == 0 || i == e1000e::regs::ICR / 4));
    }

    #[test]
    fn config_reader_answers_from_its_function() {
        let mut asked = vec![];
        {
            let mut reader = ConfigReader(|offset| {
                asked.push(offset);
                u32::from(offset) * 2
            });
            assert_eq!(reader.read32(0x10), 0x20);
            assert_eq!(reader.read32(0x34), 0x68);
        }
        assert_eq!(asked, [0x10, 0x34]);
    }

    #[test]
    fn the_virtio_platform_translates_only_inside_its_memory() {
        let mut dma = vec![0u64; 1024]; // 8 KiB: two pages
        let mut bar = vec![0u32; 1024]; // 4 KiB
        let (dma_v, bar_v) = (dma.as_mut_ptr() as usize, bar.as_mut_ptr() as usize);
        // SAFETY: both vectors outlive the platform's use in this test (the only one that
        // installs it).
        unsafe { VirtioPlatform::install((0xFE00_0000, bar_v, 4096), (0x20_0000, dma_v, 8192)) };
        let (p0, v0) = VirtioPlatform::dma_alloc(1).unwrap();
        let (p1, v1) = VirtioPlatform::dma_alloc(1).unwrap();
        assert_eq!((p0, v0.as_ptr() as usize), (0x20_0000, dma_v));
        assert_eq!((p1, v1.as_ptr() as usize), (0x20_1000, dma_v + 4096));
        assert!(VirtioPlatform::dma_alloc(1).is_none());
        assert_eq!(
            VirtioPlatform::virt_to_phys(dma_v + 0x1234),
            Some(0x20_1234)
        );
        assert_eq!(VirtioPlatform::virt_to_phys(dma_v + 8192), None);
        assert_eq!(VirtioPlatform::virt_to_phys(dma_v.wrapping_sub(1)), None);
        let isr = VirtioPlatform::mmio_phys_to_virt(0xFE00_0800, 4).unwrap();
        assert_eq!(isr.as_ptr() as usize, bar_v + 0x800);
        assert!(VirtioPlatform::mmio_phys_to_virt(0xFE00_0FFE, 4).is_none());
        assert!(VirtioPlatform::mmio_phys_to_virt(0xFD00_0000, 4).is_none());
        drop((dma, bar));
    }
}
