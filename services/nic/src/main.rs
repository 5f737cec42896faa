//! The NIC driver component: the driver alone, in a component of its own (the horizontal
//! boundary the paper's composition 3 does not draw). Frames cross to the stack (`net`) over
//! the rings of the region its `region` argument names (`libos_core::net::frames::NicPort`).
//!
//! This binary wires capabilities and serves: it claims `nic0` and starts its driver
//! (`libos_sel4::nic`), starts the interrupt thread, binds its notification to its thread
//! and then waits on its endpoint for the stack's `attach` (`proto::net`, service `nic`)
//! and on the notification for the device's interrupts and the stack's signals
//! (`proto::sel4_transport::serve_with_work`). The decisions are in the `nic` library.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec;
use core::cell::RefCell;
use core::sync::atomic::AtomicU32;

use libos_core::net::frames::{read_nonce, write_device, NicPort};
use libos_sel4::device::{setup, Devices, TscDelay};
use libos_sel4::nic::ClaimedNic;
use libos_sel4::{irq, rdtsc, shared, TscClock};
use nic::{admit, Config};
use proto::naming::NamingClient;
use proto::net::{Error, Server};
use proto::sel4_transport::{serve_with_work, EndpointTransport, ReceiveSlot, Reply};
use proto::{CapSlot, Name};
use rt::println;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::{CNode, Notification, Tcb};
use sel4::{CPtr, Cap, CapData, CapRights};
use vspace::VSpace;

rt::entry!(main);

/// The badge of the notification copy the stack signals.
const STACK_BADGE: u64 = 1 << 18;

fn name(text: &str) -> Name {
    Name::new(text).expect("a valid name")
}

fn own() -> Cap<CNode> {
    Cap::from_raw(slots::CNODE)
}

/// The front door: the stack attaches over the region.
struct Front {
    region: Name,
    words: &'static [AtomicU32],
    mac: [u8; 6],
    mtu: usize,
    /// Where the stack's notification is kept, and our badged copy for it.
    kept: CPtr,
    copy: CPtr,
    port: Option<NicPort>,
}

impl Server for Front {
    fn attach(
        &mut self,
        _badge: u64,
        region: Name,
        nonce: u64,
        wake: CapSlot,
    ) -> Result<CapSlot, Error> {
        admit(self.region, region, read_nonce(self.words), nonce)?;
        let _ = own().cnode_delete(self.kept, 64);
        own()
            .cnode_move(self.kept, 64, own(), wake.0, 64)
            .map_err(|_| Error::Full)?;
        let _ = own().cnode_delete(self.copy, 64);
        let badge = CapData::new_badge(STACK_BADGE);
        (own().cnode_mint(
            self.copy,
            64,
            own(),
            slots::NOTIFICATION,
            64,
            CapRights::all(),
            badge,
        ))
        .map_err(|_| Error::Full)?;
        write_device(self.words, self.mac, self.mtu);
        let stack = Cap::<Notification>::from_raw(self.kept);
        let signal = Box::new(move || sel4::syscall::nb_signal(stack));
        self.port = Some(NicPort::new(self.words, signal).ok_or(Error::BadRegion)?);
        println!("nic: the stack attached over {region}");
        Ok(CapSlot(self.copy))
    }
}

fn main(info: &'static StartInfo) {
    let config = Config::parse(|k| info.arg(k)).unwrap_or_else(|e| rt::fail("nic", "start", e));
    if info.tsc_mhz == 0 {
        rt::fail("nic", "keep time", "the start info gives no TSC frequency");
    }
    let mut free = rt::slots_alloc::Slots::new();
    let (devices_slot, memory_slot) =
        (free.alloc().expect("a slot"), free.alloc().expect("a slot"));
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, devices_slot));
    let devices_ep = setup("nic", "look up devices", || naming.lookup(name("devices")))
        .endpoint
        .0;
    naming.transport().receive_in(memory_slot);
    let memory_ep = setup("nic", "look up memory", || naming.lookup(name("memory")))
        .endpoint
        .0;
    let mut pool = libos_sel4::budget::pool(free, memory_ep, 16, "nic");
    let mut vspace = VSpace::own();
    let mut devices = Devices::new("nic", devices_ep);

    // The device, its interrupt thread (signalling our notification, which is bound to
    // this thread so that one receive waits for requests and signals alike), the driver.
    let claimed = ClaimedNic::claim(
        &mut devices,
        &mut pool,
        &mut vspace,
        name("nic0"),
        config.nic,
    );
    let sources = vec![claimed.interrupt()];
    if let Err(e) = irq::start_above_caller(&mut pool, &mut vspace, sources, info.mcp as u8, "nic")
    {
        rt::fail("nic", "start the interrupt thread", format_args!("{e:?}"));
    }
    let bound =
        Cap::<Tcb>::from_raw(slots::TCB).tcb_bind_notification(Cap::from_raw(slots::NOTIFICATION));
    if let Err(e) = bound {
        rt::fail("nic", "bind its notification", format_args!("{e:?}"));
    }
    let clock = TscClock::new(info.tsc_mhz * 1_000_000, rdtsc());
    let (pci, irq_mode) = (claimed.info().pci, claimed.info().irq);
    let started = claimed.start(
        &mut pool,
        &mut vspace,
        TscDelay(clock),
        config.e1000e_config(),
    );
    let mut device = started.device;

    let region = shared::map(&mut pool, &mut vspace, memory_ep, config.region, "nic");
    let front = RefCell::new(Front {
        region: config.region,
        words: region.words(),
        mac: started.mac,
        mtu: device.mtu(),
        kept: pool.slot().expect("a slot"),
        copy: pool.slot().expect("a slot"),
        port: None,
    });
    let receive = pool.slot().expect("a slot");
    setup("nic", "register nic", || {
        naming.register(name("nic"), CapSlot(slots::SERVICE))
    });
    let m = started.mac;
    println!(
        "nic: {} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} pci {:02x}:{:02x}.{} irq {:?}: frames over {}",
        config.nic.name(),
        m[0], m[1], m[2], m[3], m[4], m[5],
        pci.bus, pci.dev, pci.func, irq_mode, config.region
    );
    serve_with_work(
        slots::SERVICE,
        ReceiveSlot::own(receive),
        Reply::Saved,
        |badge, request| proto::net::dispatch(&mut *front.borrow_mut(), badge, request),
        |_signals| {
            let mut front = front.borrow_mut();
            front
                .port
                .as_mut()
                .is_some_and(|port| port.forward(&mut *device))
        },
    )
}
