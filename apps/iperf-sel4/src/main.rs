//! The iperf unikernel (composition 1 of the paper): the iperf3 server, the library OS,
//! smoltcp and the e1000e driver in one seL4 component; a packet crosses no IPC.
//!
//! Start-up: looks up `devices` and `memory`; claims `nic0` (BAR0 frames mapped uncached
//! with `vspace`, its MSI handler) and `pit` (ports 0x40-0x43 for TSC calibration and
//! one-shot deadlines, IOAPIC pin 2); starts the interrupt thread (`libos_sel4::irq`);
//! takes 2 MiB of DMA memory from its own budget (`memory` `alloc`, retyped into frames,
//! physically contiguous); starts the driver; then serves iperf3 on `port` at `address`.
//!
//! The NIC driver follows the `nic` arg: `e1000e` (default; BAR0, MSI) or `virtio-net`
//! (the BAR holding the virtio structures, found through `devices`' read-only
//! configuration space; INTx through the IOAPIC, lowered by reading the ISR byte).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use e1000e::{Delay, Dma, DmaRegion, E1000e, Mmio};
use iperf_sel4::{Nic, TimerChoice};
use libos::{Ipv4Config, Net, NetConfig, Pal, Runtime};
use libos_sel4::{clock, irq, rdtsc, Hpet, HpetRegisters, PitPorts, Sel4Pal, Timer, TscClock};
use proto::devices::config::ConfigClient;
use proto::devices::message::MessageClient;
use proto::devices::ports::PortsClient;
use proto::devices::DevicesClient;
use proto::memory::MemoryClient;
use proto::naming::NamingClient;
use proto::retry::{retry, Backoff, Transient};
use proto::sel4_transport::EndpointTransport;
use proto::Name;
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::{CNode, IrqHandler, Notification};
use sel4::{CPtr, Cap, CapData, CapRights};
use vspace::{Pool, VSpace};

mod kernel_share;

rt::entry!(main);

const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);
/// Offset of the interrupt cause register (ICR) in BAR0.
const ICR: usize = 0xC0;

/// BAR0 mapped uncached.
struct Bar0 {
    base: usize,
}

impl Mmio for Bar0 {
    fn read32(&mut self, offset: usize) -> u32 {
        // SAFETY: `base` maps all of BAR0 (128 KiB) uncached; the driver passes offsets
        // of registers inside it, 4-byte aligned.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }
    fn write32(&mut self, offset: usize, value: u32) {
        // SAFETY: as in `read32`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }
}

/// The interrupt thread's hook: read (and so clear) ICR, which re-arms MSI.
fn read_icr(base: usize) {
    // SAFETY: `base` is BAR0's mapping (see `Bar0`); reading ICR only clears causes.
    let _ = unsafe { core::ptr::read_volatile((base + ICR) as *const u32) };
}

/// A piece of the DMA arena.
struct Region {
    vaddr: usize,
    paddr: u64,
    size: usize,
}

impl DmaRegion for Region {
    fn physical_address(&self) -> u64 {
        self.paddr
    }
    fn size(&self) -> usize {
        self.size
    }
    fn read_u32(&self, offset: usize) -> u32 {
        assert!(offset + 4 <= self.size);
        // SAFETY: inside this region of the mapped, never-freed DMA arena.
        unsafe { core::ptr::read_volatile((self.vaddr + offset) as *const u32) }
    }
    fn write_u32(&mut self, offset: usize, value: u32) {
        assert!(offset + 4 <= self.size);
        // SAFETY: as in `read_u32`.
        unsafe { core::ptr::write_volatile((self.vaddr + offset) as *mut u32, value) }
    }
    fn with_bytes<T>(&self, offset: usize, len: usize, f: impl FnOnce(&[u8]) -> T) -> T {
        assert!(offset + len <= self.size);
        // SAFETY: inside the region; the driver only asks for buffers the device does
        // not own at the moment.
        f(unsafe { core::slice::from_raw_parts((self.vaddr + offset) as *const u8, len) })
    }
    fn write_bytes(&mut self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.size);
        // SAFETY: as in `with_bytes`.
        let dst = unsafe {
            core::slice::from_raw_parts_mut((self.vaddr + offset) as *mut u8, data.len())
        };
        dst.copy_from_slice(data);
    }
}

/// A bump allocator over physically contiguous, mapped memory.
struct Arena {
    vaddr: usize,
    paddr: u64,
    size: usize,
    next: usize,
}

impl Dma for Arena {
    type Region = Region;
    fn allocate(&mut self, size: usize, align: usize) -> Option<Region> {
        let start = (self.paddr as usize + self.next).next_multiple_of(align) - self.paddr as usize;
        let end = start.checked_add(size)?;
        (end <= self.size).then(|| {
            self.next = end;
            Region {
                vaddr: self.vaddr + start,
                paddr: self.paddr + start as u64,
                size,
            }
        })
    }
}

/// The virtio-net driver's platform: one mapped register BAR and a bump DMA arena, in
/// statics because `virtio-drivers` asks through associated functions (one NIC per
/// component).
mod virtio {
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

    static MMIO_PADDR: AtomicU64 = AtomicU64::new(0);
    static MMIO_VADDR: AtomicUsize = AtomicUsize::new(0);
    static MMIO_SIZE: AtomicUsize = AtomicUsize::new(0);
    static DMA_PADDR: AtomicU64 = AtomicU64::new(0);
    static DMA_VADDR: AtomicUsize = AtomicUsize::new(0);
    static DMA_SIZE: AtomicUsize = AtomicUsize::new(0);
    static DMA_NEXT: AtomicUsize = AtomicUsize::new(0);

    /// Records the BAR mapping (`size` bytes at `paddr` mapped at `vaddr`).
    pub fn set_mmio(paddr: u64, vaddr: usize, size: usize) {
        MMIO_PADDR.store(paddr, Relaxed);
        MMIO_VADDR.store(vaddr, Relaxed);
        MMIO_SIZE.store(size, Relaxed);
    }

    /// Records the DMA arena (zeroed, mapped, physically contiguous).
    pub fn set_dma(paddr: u64, vaddr: usize, size: usize) {
        DMA_PADDR.store(paddr, Relaxed);
        DMA_VADDR.store(vaddr, Relaxed);
        DMA_SIZE.store(size, Relaxed);
        DMA_NEXT.store(0, Relaxed);
    }

    /// The interrupt thread's hook: read the ISR byte at `isr`, which lowers INTx.
    pub fn read_isr(isr: usize) {
        // SAFETY: `isr` is the ISR status byte inside the mapped, uncached BAR.
        let _ = unsafe { core::ptr::read_volatile(isr as *const u8) };
    }

    pub struct Sel4;

    impl virtio_net::Platform for Sel4 {
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
        fn virt_to_phys(vaddr: usize) -> Option<u64> {
            let offset = vaddr.checked_sub(DMA_VADDR.load(Relaxed))?;
            (offset < DMA_SIZE.load(Relaxed)).then(|| DMA_PADDR.load(Relaxed) + offset as u64)
        }
        fn mmio_phys_to_virt(paddr: u64, size: usize) -> Option<NonNull<u8>> {
            let offset = usize::try_from(paddr.checked_sub(MMIO_PADDR.load(Relaxed))?).ok()?;
            (offset + size <= MMIO_SIZE.load(Relaxed))
                .then(|| NonNull::new((MMIO_VADDR.load(Relaxed) + offset) as *mut u8))?
        }
    }
}

/// `devices`' read-only configuration space of the claimed NIC.
struct DevicesConfig {
    client: ConfigClient<EndpointTransport>,
    device: Name,
}

impl virtio_net::ConfigSpace for DevicesConfig {
    fn read32(&mut self, offset: u8) -> u32 {
        setup("read nic0's configuration space", || {
            self.client.read_config(self.device, offset)
        })
    }
}

/// A request to naming or devices while the component sets up: asked again while the peer
/// restarts (`proto::retry`), else the component ends with `iperf: cannot ACTION: REASON`.
fn setup<T, E: Transient + core::fmt::Display>(
    action: impl core::fmt::Display,
    request: impl FnMut() -> Result<T, E>,
) -> T {
    retry(&Backoff::STARTUP, rt::yield_times, request)
        .unwrap_or_else(|e| rt::fail("iperf", action, e))
}

struct TscDelay(TscClock);

impl Delay for TscDelay {
    fn delay_us(&mut self, micros: u32) {
        let end = self.0.ns(rdtsc()) + u64::from(micros) * 1_000;
        while self.0.ns(rdtsc()) < end {
            core::hint::spin_loop();
        }
    }
}

fn main(arg: usize) {
    // SAFETY: `arg` is the start-up argument the loader gave this thread.
    let info = unsafe { StartInfo::begin(arg) };
    let args = iperf_sel4::parse(|k| info.arg(k)).expect("valid iperf arguments");
    let mut free = Slots::new();
    let mut slot = || free.alloc().expect("a free slot");

    // Services.
    let (devices_slot, memory_slot) = (slot(), slot());
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, devices_slot));
    let devices_ep = setup("look up devices", || {
        naming.lookup(Name::new("devices").expect("name"))
    })
    .endpoint
    .0;
    naming.transport().receive_in(memory_slot);
    let memory_ep = setup("look up memory", || {
        naming.lookup(Name::new("memory").expect("name"))
    })
    .endpoint
    .0;

    // Untyped memory from our own budget, into slots kept for it.
    let memory_slots: Vec<u64> = (0..32).map(|_| slot()).collect();
    let mut memory = MemoryClient::new(EndpointTransport::new(memory_ep));
    let mut memory_slots = memory_slots.into_iter();
    let refill = move |bits: u8| -> Option<CPtr> {
        let s = memory_slots.next()?;
        memory.transport().receive_in(s);
        match memory.alloc(bits) {
            Ok(a) => Some(a.untyped.0),
            Err(e) => {
                println!("iperf: memory alloc of 2^{bits} bytes failed: {e:?}");
                None
            }
        }
    };
    let mut pool = Pool::new(free, 16, refill);
    let mut vspace = VSpace::own();

    // The NIC: claim, BAR0 frames, MSI.
    let nic = Name::new("nic0").expect("name");
    let mut devices = DevicesClient::new(EndpointTransport::new(devices_ep));
    let dev = setup("claim nic0", || devices.claim(nic));
    // virtio: the shadow configuration space and the one BAR holding its structures.
    let shadow = (args.nic == Nic::VirtioNet).then(|| {
        virtio_net::ShadowConfig::read(&mut DevicesConfig {
            client: ConfigClient::new(EndpointTransport::new(devices_ep)),
            device: nic,
        })
    });
    let (bar_index, bar_size) = match &shadow {
        None => (0, e1000e::pci::BAR0_SIZE as u64),
        Some(shadow) => {
            let layout = shadow.layout();
            let bar = layout.isr.expect("virtio-net has an ISR structure").bar;
            assert!(
                layout.regions().all(|r| r.bar == bar),
                "iperf: virtio structures in more than one BAR"
            );
            (bar, layout.bar_size(bar))
        }
    };
    let mut bar_frames = Vec::new();
    for page in 0..(bar_size / 4096) {
        let s = pool.slot().expect("slot");
        devices.transport().receive_in(s);
        let frame = setup(format_args!("map nic0's BAR{bar_index}"), || {
            devices.bar(nic, bar_index, page)
        });
        bar_frames.push(frame.frame.0);
    }
    let bar0 = vspace
        .map(
            &mut pool,
            &bar_frames,
            CapRights::read_write(),
            sel4::consts::X86_UNCACHEABLE,
        )
        .expect("map BAR0") as usize;
    let s = pool.slot().expect("slot");
    devices.transport().receive_in(s);
    let nic_irq: Cap<IrqHandler> =
        Cap::from_raw(setup("take nic0's interrupt", || devices.irq(nic)).0);

    // Deadlines (`timer` arg, see `TimerChoice`).
    let timer_arg = args.timer;
    // The HPET: its register page and a message-signalled interrupt, programmed into the
    // deadline timer's FSB route.
    let hpet = Name::new("hpet").expect("name");
    let hpet_parts = match matches!(timer_arg, TimerChoice::Hpet | TimerChoice::Auto)
        .then(|| devices.claim(hpet))
    {
        None | Some(Err(_)) => None,
        Some(Ok(_)) => (|| {
            let s = pool.slot().ok()?;
            devices.transport().receive_in(s);
            let page = devices.bar(hpet, 0, 0).ok()?;
            let base = vspace
                .map(
                    &mut pool,
                    &[page.frame.0],
                    CapRights::read_write(),
                    sel4::consts::X86_UNCACHEABLE,
                )
                .ok()? as usize;
            let s = pool.slot().ok()?;
            devices.transport().receive_in(s);
            let handler = Cap::<IrqHandler>::from_raw(devices.irq(hpet).ok()?.0);
            let message = MessageClient::new(EndpointTransport::new(devices_ep))
                .msi_message(hpet)
                .ok()?;
            // SAFETY: `base` maps the HPET's register page uncached, never unmapped.
            let regs = unsafe { HpetRegisters::new(base) };
            match Hpet::new(regs) {
                Ok(mut timer) => {
                    timer.route_message(message.address as u32, message.data);
                    Some((timer, handler))
                }
                Err(e) => {
                    println!("iperf: the HPET is unusable ({e:?}); falling back");
                    None
                }
            }
        })(),
    };
    // The PIT: ports for the TSC's calibration; its IRQ 0 (IOAPIC pin 2, PIC line 0) only
    // when it times the deadlines.
    let pit = Name::new("pit").expect("name");
    let pit_ports = devices.claim(pit).ok().and_then(|_| {
        let ports = pool.slot().ok()?;
        let mut client = PortsClient::new(EndpointTransport::new(devices_ep));
        client.transport().receive_in(ports);
        client.ioport(pit).ok()?;
        Some(Cap::<sel4::cap_type::IoPort>::from_raw(ports))
    });
    let want_pit = match timer_arg {
        TimerChoice::Pit => true,
        TimerChoice::Hpet | TimerChoice::Poll => false,
        TimerChoice::Auto => hpet_parts.is_none(),
    };
    let pit_irq = pit_ports.filter(|_| want_pit).and_then(|_| {
        let irq_slot = pool.slot().ok()?;
        devices.transport().receive_in(irq_slot);
        match devices.irq(pit) {
            Ok(irq) => Some(Cap::<IrqHandler>::from_raw(irq.0)),
            Err(e) => {
                println!("iperf: no PIT interrupt ({e:?}): no PIT deadlines");
                None
            }
        }
    });
    let pit_parts = pit_ports.zip(pit_irq);
    let hz = match (args.tsc_mhz, pit_ports) {
        (Some(mhz), _) => mhz * 1_000_000,
        (None, Some(ports)) => {
            clock::calibrate(&mut PitPorts(ports), rdtsc, 50_000_000).expect("the PIT counts")
        }
        (None, None) => panic!("iperf: no tsc_mhz argument and no pit device to calibrate"),
    };
    let clock = TscClock::new(hz, rdtsc());

    // The interrupt thread wakes us through a badged copy of our notification.
    let wake_badged = pool.slot().expect("slot");
    OWN.cnode_mint(
        wake_badged,
        64,
        OWN,
        slots::NOTIFICATION,
        64,
        CapRights::all(),
        CapData::new_badge(1),
    )
    .expect("mint the wake-up notification");
    let (hook, context): (fn(usize), usize) = match &shadow {
        None => (read_icr, bar0),
        Some(shadow) => {
            let paddr = shadow.bar_address(bar_index).expect("a memory BAR");
            virtio::set_mmio(paddr, bar0, bar_size as usize);
            let isr = shadow.layout().isr.expect("an ISR structure").offset as usize;
            (virtio::read_isr, bar0 + isr)
        }
    };
    let mut sources = vec![irq::Source {
        handler: nic_irq,
        hook: Some(hook),
        context,
    }];
    let timer = match (hpet_parts, pit_parts) {
        (Some((hpet, handler)), _) => Some((Timer::Hpet(hpet), handler)),
        (None, Some((ports, handler))) => Some((Timer::Pit(PitPorts(ports)), handler)),
        _ => None,
    };
    let timer_name = match &timer {
        Some((Timer::Hpet(h), _)) => {
            alloc::format!(
                "HPET deadlines (timer {}, {} MHz)",
                h.timer(),
                h.hz() / 1_000_000
            )
        }
        Some((Timer::Pit(_), _)) => String::from("PIT tick deadlines"),
        None => String::from("poll+yield deadlines"),
    };
    let timer = timer.map(|(timer, handler)| {
        sources.push(irq::Source {
            handler,
            hook: None,
            context: 0,
        });
        timer
    });
    // The paper's arrangement: the interrupt thread above the library OS thread. The
    // component may use priorities up to its own (its MCP): the interrupt thread gets
    // that, and this thread steps one below.
    let irq_priority = irq::start(
        &mut pool,
        &mut vspace,
        sources,
        Cap::<Notification>::from_raw(wake_badged),
        info.mcp as u8,
    )
    .expect("start the interrupt thread");
    if irq_priority > 0 {
        let own = Cap::<sel4::cap_type::Tcb>::from_raw(rt::startinfo::slots::TCB);
        if let Err(e) = own.tcb_set_priority(irq_priority - 1) {
            println!("iperf: cannot step below the interrupt thread: {e:?}");
        }
    }

    // DMA memory: 2 MiB of our own, physically contiguous.
    let (dma_vaddr, dma_paddr, _) = vspace
        .map_new(&mut pool, 21, sel4::consts::X86_DEFAULT_VM_ATTRIBUTES)
        .expect("DMA memory");
    let (driver, mac, name): (Box<dyn libos::NetDevice>, [u8; 6], &str) = match shadow {
        None => {
            let mut arena = Arena {
                vaddr: dma_vaddr as usize,
                paddr: dma_paddr,
                size: 1 << 21,
                next: 0,
            };
            let driver = E1000e::new(
                Bar0 { base: bar0 },
                &mut arena,
                &mut TscDelay(clock),
                e1000e::Config {
                    interrupt_throttle: args
                        .itr
                        .map_or(e1000e::Config::default().interrupt_throttle, u32::from),
                    ..e1000e::Config::default()
                },
            )
            .expect("e1000e initialises");
            let mac = driver.mac_address();
            (Box::new(driver), mac, "e1000e")
        }
        Some(shadow) => {
            virtio::set_dma(dma_paddr, dma_vaddr as usize, 1 << 21);
            let driver =
                virtio_net::VirtioNet::<virtio::Sel4>::new(shadow).expect("virtio-net initialises");
            let mac = driver.mac_address();
            (Box::new(driver), mac, "virtio-net")
        }
    };
    println!(
        "iperf: nic0 {name} {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} at {:02x}:{:02x}.{} IRQ {:?}, BAR{bar_index} at {bar0:#x}, DMA at {dma_paddr:#x}, TSC {} MHz, {}, irq thread priority {irq_priority}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
        dev.pci.bus, dev.pci.dev, dev.pci.func, dev.irq,
        hz / 1_000_000,
        timer_name,
    );

    let pal = alloc::rc::Rc::new(Sel4Pal::new(
        clock,
        Cap::from_raw(slots::NOTIFICATION),
        timer,
    ));
    let runtime = Runtime::new(pal.clone());
    // Kernel-entry tracking (the `bench=entries` kernel): one KERNEL-SHARE line per window.
    kernel_share::start(info.arg("kernel_log_ms"), &runtime, &mut pool, &mut vspace);
    let mut net_config = NetConfig {
        ipv4: Some(Ipv4Config {
            address: args.address,
            prefix_len: args.prefix_len,
            gateway: args.gateway,
        }),
        tcp_rx_buffer: 256 * 1024,
        tcp_tx_buffer: 64 * 1024,
        ..NetConfig::default()
    };
    // Sockets get half the heap (which is half the budget); a client past the limit is
    // reset, never the cause of an allocation failure.
    let heap = rt::heap::size();
    net_config.max_tcp_sockets = net_config.tcp_sockets_within(heap / 2);
    println!(
        "iperf: heap {} KiB, up to {} TCP sockets",
        heap / 1024,
        net_config.max_tcp_sockets
    );
    let net = Net::new(&runtime, driver, net_config);
    let config = iperf::ServerConfig {
        port: args.port,
        max_parallel: 8,
        verbose: true,
        ..iperf::ServerConfig::default()
    };
    println!(
        "iperf: serving iperf3 on {}/{} port {}",
        args.address, args.prefix_len, args.port
    );
    if let Some(secs) = info.arg("report_s").and_then(|s| s.parse::<u64>().ok()) {
        let (rt2, pal2, net2) = (runtime.clone(), pal.clone(), net.clone());
        runtime.spawn(async move {
            loop {
                rt2.sleep(secs * libos::NS_PER_SEC).await;
                println!(
                    "iperf: t={} ms frames {:?} pal {:?}",
                    rt2.now_ns() / 1_000_000,
                    net2.counters(),
                    pal2.stats()
                );
            }
        });
    }
    // `STAT up_us=.. idle_us=..` every `stat_ms`: the benchmark's CPU utilisation is
    // 1 - Δidle/Δup between two lines (the same line the Linux baseline prints).
    if let Some(ms) = info.arg("stat_ms").and_then(|s| s.parse::<u64>().ok()) {
        let (rt4, pal4) = (runtime.clone(), pal.clone());
        runtime.spawn(async move {
            loop {
                rt4.sleep(ms.max(1) * 1_000_000).await;
                println!(
                    "STAT up_us={} idle_us={}",
                    pal4.now_ns() / 1_000,
                    pal4.stats().idle_ns / 1_000
                );
            }
        });
    }
    // Malformed frames are dropped and counted; print the count whenever it changes
    // (checked every second) so tests can watch it.
    let (rt3, net3) = (runtime.clone(), net.clone());
    runtime.spawn(async move {
        let mut seen = 0;
        loop {
            rt3.sleep(libos::NS_PER_SEC).await;
            let c = net3.counters();
            if c.rx_malformed != seen {
                seen = c.rx_malformed;
                println!("iperf: rx_malformed {seen}, frames {c:?}");
            }
        }
    });
    let stats = RefCell::new(None);
    match runtime.block_on(iperf::serve(&net, config)) {
        Ok(s) => *stats.borrow_mut() = Some(s),
        Err(e) => println!("iperf: server stopped: {e}"),
    }
    println!(
        "iperf: done {:?}, frames {:?}, pal {:?}, now {} ns",
        stats.borrow(),
        net.counters(),
        pal.stats(),
        pal.now_ns()
    );
}
