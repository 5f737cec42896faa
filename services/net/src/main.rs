//! The network service (composition 3 of the paper): one TCP/IP stack on the NIC it drives,
//! shared by the applications of its `clients` argument, each over its own shared region.
//!
//! This binary wires capabilities and serves: it brings the stack up on `nic0`
//! (`libos_sel4::stack`), maps every client's region, registers `net` with naming, and runs
//! the socket server (`libos_core::SocketServer`) in the library OS's executor. Its endpoint
//! is looked at every few milliseconds (`proto::sel4_transport::serve_waiting`) for
//! `attach` requests, which `net::Front` decides; every `tick_ms` each attached client's
//! notification is signalled, which is how clients without a timer keep their deadlines.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::sync::atomic::AtomicU32;

use libos_core::net::shmlink::{read_nonce, ShmLink, Side};
use libos_core::{ClientId, ClientLimits, Link, SocketServer, NS_PER_SEC};
use libos_sel4::device::{setup, Devices};
use libos_sel4::nicclient;
use libos_sel4::stack::{bring_up, NicSource, StackArgs};
use net::{Config, Front, Platform};
use proto::naming::NamingClient;
use proto::sel4_transport::{serve_waiting, EndpointTransport, ReceiveSlot, Reply};
use proto::{CapSlot, Name};
use rt::println;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::{CNode, Notification};
use sel4::{CPtr, Cap, CapData, CapRights};
use vspace::VSpace;

rt::entry!(main);

/// How often the endpoint is looked at for `attach` requests.
const ATTACH_POLL_NS: u64 = 5_000_000;

/// Badges of the notification copies clients signal (bit 32 up, one per client; the
/// interrupt thread's is `irq::IRQ_BADGE`).
const CLIENT_BADGE: u64 = 1 << 32;

fn name(text: &str) -> Name {
    Name::new(text).expect("a valid name")
}

/// The seL4 side of the front door.
struct Sel4 {
    regions: Vec<&'static [AtomicU32]>,
    /// Per client: the slot its notification is kept in, the slot of its badged copy of ours.
    slots: Vec<(CPtr, CPtr)>,
    attached: Vec<bool>,
    server: SocketServer,
}

fn own() -> Cap<CNode> {
    Cap::from_raw(slots::CNODE)
}

impl Platform for Sel4 {
    type Client = ClientId;

    fn header_nonce(&self, index: usize) -> Option<u64> {
        read_nonce(self.regions[index])
    }

    fn keep_wake(&mut self, index: usize, wake: CapSlot) -> bool {
        let kept = self.slots[index].0;
        let _ = own().cnode_delete(kept, 64);
        own().cnode_move(kept, 64, own(), wake.0, 64).is_ok()
    }

    fn link(&mut self, index: usize) -> Option<Box<dyn Link>> {
        let wake = Cap::<Notification>::from_raw(self.slots[index].0);
        let signal = Box::new(move || sel4::syscall::nb_signal(wake));
        let link = ShmLink::new(self.regions[index], Side::Server, signal)?;
        self.attached[index] = true;
        Some(Box::new(link))
    }

    fn attach(&mut self, link: Box<dyn Link>, limits: ClientLimits) -> ClientId {
        self.server.attach(link, limits)
    }

    fn reattach(&mut self, client: ClientId, link: Box<dyn Link>) {
        self.server.reattach(client, link);
    }

    fn signal_cap(&mut self, index: usize) -> Option<CapSlot> {
        let copy = self.slots[index].1;
        let _ = own().cnode_delete(copy, 64);
        let badge = CapData::new_badge(CLIENT_BADGE << index);
        (own().cnode_mint(
            copy,
            64,
            own(),
            slots::NOTIFICATION,
            64,
            CapRights::all(),
            badge,
        ))
        .ok()
        .map(|_| CapSlot(copy))
    }
}

fn main(info: &'static StartInfo) {
    let config = Config::parse(|k| info.arg(k)).unwrap_or_else(|e| rt::fail("net", "start", e));
    let mut free = rt::slots_alloc::Slots::new();
    let (devices_slot, memory_slot) = (free.alloc(), free.alloc());
    let (devices_slot, memory_slot) = (devices_slot.expect("a slot"), memory_slot.expect("a slot"));
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, devices_slot));
    let lookup = |naming: &mut NamingClient<EndpointTransport>, what: &str| {
        setup("net", format_args!("look up {what}"), || {
            naming.lookup(name(what))
        })
        .endpoint
        .0
    };
    let devices_ep = lookup(&mut naming, "devices");
    naming.transport().receive_in(memory_slot);
    let memory_ep = lookup(&mut naming, "memory");

    let mut pool = libos_sel4::budget::pool(free, memory_ep, 32, "net");
    let mut vspace = VSpace::own();
    let mut devices = Devices::new("net", devices_ep);
    let stack_args: &StackArgs = &config.stack;
    let net_config = stack_args.net_config(rt::heap::size() / 2);
    // The NIC: driven here, or by a `nic` component over the region `nic_region` names.
    let (nic, nic_link) = match info.arg("nic_region") {
        None => (NicSource::Claim(name("nic0")), None),
        Some(region) => {
            let (device, link) =
                nicclient::connect("net", info, &mut pool, &mut vspace, memory_ep, name(region));
            (NicSource::Device(device, "nic component"), Some(link))
        }
    };
    let stack = bring_up(
        "net",
        info.mcp as u8,
        &mut devices,
        &mut pool,
        &mut vspace,
        (nic, name("hpet"), name("pit")),
        stack_args,
        net_config,
    );
    if let Some(link) = nic_link {
        link.watch(&stack.runtime, stack.pal.clone());
    }
    println!("{}", stack.line);

    // Every client's region, mapped now: a region net is not a member of ends it here.
    let mut regions = Vec::new();
    let mut client_slots = Vec::new();
    for client in &config.clients {
        let region =
            libos_sel4::shared::map(&mut pool, &mut vspace, memory_ep, client.region, "net");
        regions.push(region.words());
        let kept = pool.slot().expect("a slot");
        client_slots.push((kept, pool.slot().expect("a slot")));
    }
    let receive = pool.slot().expect("a slot");
    let server = SocketServer::new(&stack.net).expect("a local stack");
    let count = config.clients.len();
    let (tick_ns, runtime) = (config.tick_ms * 1_000_000, stack.runtime.clone());
    let front = Rc::new(RefCell::new(Front::new(
        Sel4 {
            regions,
            slots: client_slots,
            attached: alloc::vec![false; count],
            server: server.clone(),
        },
        config,
    )));

    let naming_name = name("net");
    setup("net", "register net", || {
        naming.register(naming_name, CapSlot(slots::SERVICE))
    });
    println!(
        "net: serving {count} client region(s), tick {} ms",
        tick_ns / 1_000_000
    );

    // Attach requests, looked at every ATTACH_POLL_NS.
    let (rt1, front1) = (runtime.clone(), front.clone());
    runtime.spawn(async move {
        loop {
            let served = serve_waiting(
                slots::SERVICE,
                ReceiveSlot::own(receive),
                Reply::Saved,
                |badge, m| proto::net::dispatch(&mut *front1.borrow_mut(), badge, m),
            );
            if served > 0 {
                println!("net: front {:?}", front1.borrow().counters());
            }
            rt1.sleep(ATTACH_POLL_NS).await;
        }
    });
    // The clients' tick.
    let (rt2, front2) = (runtime.clone(), front.clone());
    runtime.spawn(async move {
        loop {
            rt2.sleep(tick_ns).await;
            let mut f = front2.borrow_mut();
            let p = f.platform();
            for (i, &(kept, _)) in p.slots.iter().enumerate() {
                if p.attached[i] && sel4::syscall::cap_present(kept) {
                    sel4::syscall::nb_signal(Cap::from_raw(kept));
                }
            }
        }
    });
    // What the socket server did, when asked (`report_s`).
    if let Some(secs) = info.arg("report_s").and_then(|s| s.parse::<u64>().ok()) {
        let (rt3, net3) = (runtime.clone(), stack.net.clone());
        runtime.spawn(async move {
            loop {
                rt3.sleep(secs.max(1) * NS_PER_SEC).await;
                println!(
                    "net: frames {:?} server {:?}",
                    net3.counters(),
                    server.total_counters()
                );
            }
        });
    }
    // The whole guest's CPU time (`STAT` lines) every `stat_ms`, from the kernel's own
    // accounting: several components are busy here, so no one's idle time is the guest's.
    if let Some(ms) = info.arg("stat_ms").and_then(|s| s.parse::<u64>().ok()) {
        match libos_sel4::cpu::KernelCpu::start() {
            Some(mut cpu) => {
                let (rt4, tsc_mhz) = (runtime.clone(), info.tsc_mhz);
                runtime.spawn(async move {
                    loop {
                        rt4.sleep(ms.max(1) * 1_000_000).await;
                        let (up_ns, idle_ns) = cpu.sample().as_ns(tsc_mhz);
                        println!("{}", libos_core::stat::Stat::from_ns(up_ns, idle_ns));
                    }
                });
            }
            None => println!(
                "net: stat_ms needs a kernel that tracks utilisation (variant bench=utilisation): no STAT lines"
            ),
        }
    }
    runtime.block_on(core::future::pending::<()>());
}
