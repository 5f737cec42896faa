//! The iperf unikernel (composition 1 of the paper): the iperf3 server, the library OS,
//! smoltcp and the NIC driver in one seL4 component; a packet crosses no IPC.
//!
//! This binary only wires capabilities: it looks up `devices` and `memory`, claims `nic0`
//! through the seL4 PAL (`libos_sel4::nic`: the register BAR mapped uncached, the
//! interrupt, 2 MiB of physically contiguous DMA memory from its own budget, the driver),
//! the HPET or PIT for deadlines (the PIT's ports also calibrate the TSC), starts the
//! interrupt thread (`libos_sel4::irq`), then serves iperf3 on `port` at `address`. The
//! decisions (arguments, network and server configuration, console lines) are in the
//! host-tested `iperf_sel4` library.
//!
//! The NIC driver follows the `nic` arg: `e1000e` (default; BAR0, MSI) or `virtio-net`
//! (the BAR holding the virtio structures, found through `devices`' read-only
//! configuration space; INTx through the IOAPIC, lowered by reading the ISR byte).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::rc::Rc;
use alloc::vec;
use core::cell::RefCell;

use iperf_sel4::{DropLine, HeapLine, MsixLine, Nic, NicLine, OffloadLine, StatLine, TimerName};
use libos_core::{Net, Pal, Runtime};
use libos_sel4::device::{setup, Devices, TscDelay};
use libos_sel4::nic::{ClaimedNic, MsixRouting, NicKind};
use libos_sel4::timer::deadlines;
use libos_sel4::{irq, netclient, Sel4Pal, Timer};
use proto::naming::NamingClient;
use proto::sel4_transport::EndpointTransport;
use proto::Name;
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::IrqHandler;
use sel4::Cap;
use vspace::VSpace;

mod kernel_share;

rt::entry!(main);

fn name(text: &str) -> Name {
    Name::new(text).expect("a valid name")
}

/// How the start-up line names `timer`.
fn timer_name(timer: &Option<(Timer, Cap<IrqHandler>)>) -> TimerName {
    match timer {
        Some((Timer::Hpet(h), _)) => TimerName::Hpet {
            timer: h.timer(),
            hz: h.hz(),
        },
        Some((Timer::Pit(_), _)) => TimerName::Pit,
        Some((Timer::Tick { .. }, _)) => TimerName::Poll,
        None => TimerName::Poll,
    }
}

fn main(info: &'static StartInfo) {
    if let Some(region) = info.arg("net_region") {
        return remote(info, region);
    }
    let args = iperf_sel4::parse(|k| info.arg(k)).expect("valid iperf arguments");
    let mut free = Slots::new();

    // Services.
    let devices_slot = free.alloc().expect("a free slot");
    let memory_slot = free.alloc().expect("a free slot");
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, devices_slot));
    let devices_ep = setup("iperf", "look up devices", || {
        naming.lookup(name("devices"))
    })
    .endpoint
    .0;
    naming.transport().receive_in(memory_slot);
    let memory_ep = setup("iperf", "look up memory", || naming.lookup(name("memory")))
        .endpoint
        .0;

    // Kernel objects from our own budget (32 blocks of untyped memory at most).
    let mut pool = libos_sel4::budget::pool(free, memory_ep, 32, "iperf");
    let mut vspace = VSpace::own();

    // The NIC: claimed, its register BAR mapped, its interrupt taken.
    let mut devices = Devices::new("iperf", devices_ep);
    let kind = match args.nic {
        Nic::E1000e => NicKind::E1000e,
        Nic::VirtioNet => NicKind::VirtioNet,
    };
    let nic = ClaimedNic::claim(&mut devices, &mut pool, &mut vspace, name("nic0"), kind);

    // Deadlines (`timer` arg, see `TimerChoice`): the HPET's one-shots if wanted and
    // usable; the PIT's ports calibrate the TSC, and its IRQ 0 (IOAPIC pin 2, PIC line 0)
    // ticks only when it times the deadlines.
    let hpet = iperf_sel4::wants_hpet(args.timer).then(|| name("hpet"));
    let want_pit = |have_hpet| iperf_sel4::wants_pit(args.timer, have_hpet);
    let time = deadlines(
        &mut devices,
        &mut pool,
        &mut vspace,
        (hpet, name("pit")),
        want_pit,
        args.tsc_mhz,
    );
    let (clock, timer_name) = (time.clock, timer_name(&time.timer));

    // The interrupt thread (NIC and timer) above this one, the library OS thread.
    let mut sources = vec![nic.interrupt()];
    let timer = time.into_timer(&mut sources);
    let irq_priority =
        irq::start_above_caller(&mut pool, &mut vspace, sources, info.mcp as u8, "iperf")
            .expect("start the interrupt thread");

    // The driver, on 2 MiB of DMA memory of our own.
    let (pci, irq_mode) = (nic.info().pci, nic.info().irq);
    let (bar, bar_base) = (nic.bar(), nic.registers().base());
    let config = iperf_sel4::e1000e_config(&args);
    let started = nic.start(&mut pool, &mut vspace, TscDelay(clock), config);
    let line = NicLine {
        driver: kind.name(),
        mac: started.mac,
        pci: (pci.bus, pci.dev, pci.func),
        irq: irq_mode,
        bar,
        bar_base,
        dma: started.dma_paddr,
        tsc_hz: clock.hz(),
        timer: timer_name,
        irq_priority,
    };
    println!("{line}");
    if started.msix != MsixRouting::None {
        println!("{}", MsixLine::from(started.msix));
    }
    if let Some((csum, guest_csum)) = started.virtio_offloads {
        println!("{}", OffloadLine { csum, guest_csum });
    }

    let wait = Cap::from_raw(slots::NOTIFICATION);
    let pal = Rc::new(Sel4Pal::new(clock, wait, timer));
    let runtime = Runtime::new(pal.clone());
    // Kernel-entry tracking (the `bench=entries` kernel): one KERNEL-SHARE line per window.
    kernel_share::start(info.arg("kernel_log_ms"), &runtime, &mut pool, &mut vspace);
    let heap = rt::heap::size();
    let net_config = iperf_sel4::net_config(&args, heap);
    let sockets = net_config.max_tcp_sockets;
    println!("{}", HeapLine { heap, sockets });
    let net = Net::new(&runtime, started.device, net_config);
    println!(
        "iperf: serving iperf3 on {}/{} port {}",
        args.address, args.prefix_len, args.port
    );
    let report_s = info.arg("report_s").and_then(|s| s.parse::<u64>().ok());
    if let Some(secs) = report_s {
        let (rt2, pal2, net2) = (runtime.clone(), pal.clone(), net.clone());
        runtime.spawn(async move {
            loop {
                rt2.sleep(secs * libos_core::NS_PER_SEC).await;
                let (ms, frames, stats) = (rt2.now_ns() / 1_000_000, net2.counters(), pal2.stats());
                println!("iperf: t={ms} ms frames {frames:?} pal {stats:?}");
            }
        });
    }
    // `STAT up_us=.. idle_us=.. irqs=.. polls=..` every `stat_ms` (see `StatLine`); the
    // NIC is the interrupt thread's source 0.
    if let Some(ms) = info.arg("stat_ms").and_then(|s| s.parse::<u64>().ok()) {
        let (rt4, pal4, net4) = (runtime.clone(), pal.clone(), net.clone());
        runtime.spawn(async move {
            loop {
                rt4.sleep(ms.max(1) * 1_000_000).await;
                let (up_ns, idle_ns) = (pal4.now_ns(), pal4.stats().idle_ns);
                let (irqs, counters) = (irq::delivered(0), net4.counters());
                println!(
                    "{}",
                    StatLine {
                        up_ns,
                        idle_ns,
                        irqs,
                        counters
                    }
                );
            }
        });
    }
    // Malformed frames and frames with bad checksums are dropped and counted; print the
    // counts whenever they change (checked every second) so tests can watch them.
    let (rt3, net3) = (runtime.clone(), net.clone());
    runtime.spawn(async move {
        let mut seen = (0, 0);
        loop {
            rt3.sleep(libos_core::NS_PER_SEC).await;
            let counters = net3.counters();
            if (counters.rx_malformed, counters.rx_bad_checksum) != seen {
                seen = (counters.rx_malformed, counters.rx_bad_checksum);
                println!("{}", DropLine { counters });
            }
        }
    });
    let stats = RefCell::new(None);
    match runtime.block_on(iperf::serve(&net, iperf_sel4::server_config(args.port))) {
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

/// The iperf3 server as a client of the shared `net` service over shared region `region`
/// (`net_region` arg): no device of its own, its sockets on `net`'s stack.
fn remote(info: &'static StartInfo, region: &str) {
    let port = iperf_sel4::parse_port(|k| info.arg(k)).expect("a valid port");
    let mut free = Slots::new();
    let memory_slot = free.alloc().expect("a free slot");
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, memory_slot));
    let memory_ep = setup("iperf", "look up memory", || naming.lookup(name("memory")))
        .endpoint
        .0;
    let mut pool = libos_sel4::budget::pool(free, memory_ep, 32, "iperf");
    let mut vspace = VSpace::own();
    let tick_ns = 10 * 1_000_000; // net's default tick (its `tick_ms`)
    let c = netclient::connect(
        "iperf",
        info,
        &mut pool,
        &mut vspace,
        memory_ep,
        name(region),
        tick_ns,
    );
    println!(
        "iperf: serving iperf3 on port {port} through net (region {region}, {} KiB)",
        c.region_bytes / 1024
    );
    if let Some(ms) = info.arg("stat_ms").and_then(|s| s.parse::<u64>().ok()) {
        let (rt4, pal4) = (c.runtime.clone(), c.pal.clone());
        c.runtime.spawn(async move {
            loop {
                rt4.sleep(ms.max(1) * 1_000_000).await;
                let (up_ns, idle_ns) = (pal4.now_ns(), pal4.stats().idle_ns);
                // No NIC here: the guest's time only (the stack's counters are net's).
                println!("{}", iperf::stat::Stat::from_ns(up_ns, idle_ns));
            }
        });
    }
    match c
        .runtime
        .block_on(iperf::serve(&c.net, iperf_sel4::server_config(port)))
    {
        Ok(s) => println!("iperf: done {s:?}, link {:?}", c.net.remote_counters()),
        Err(e) => println!("iperf: server stopped: {e}"),
    }
}
