//! An application's side of the shared network service: the library OS's sockets served by
//! `net` (naming route `net`) instead of a stack of its own.
//!
//! [`connect`] maps the shared region the description gives the application with `net`,
//! clears it, writes its header with a fresh nonce, attaches over IPC
//! (`proto::net::attach`, sending a badged copy of this thread's notification for `net` to
//! signal) and returns a runtime whose `Net` is remote: every socket operation goes through
//! the rings of the region (`libos_core::net::shmlink`). The application needs no device:
//! its clock runs on the TSC frequency the kernel measured at boot (its start info), and its
//! deadlines are noticed on `net`'s periodic tick ([`Timer::Tick`]). When `net` restarts,
//! `proc` signals the notification with `SERVICE_RESTARTED_BADGE`; the component then
//! attaches again (its sockets on the old instance fail with `ConnectionReset`).

use alloc::boxed::Box;
use alloc::rc::Rc;
use core::cell::{Cell, RefCell};
use core::sync::atomic::{AtomicU32, Ordering};

use libos_core::executor::Reactor;
use libos_core::net::remote::RemoteConfig;
use libos_core::net::shmlink::{write_header, ShmLink, Side};
use libos_core::{Net, Runtime};
use proto::naming::NamingClient;
use proto::net::NetClient;
use proto::sel4_transport::EndpointTransport;
use proto::{CapSlot, Name};
use rt::startinfo::{slots, StartInfo, SERVICE_RESTARTED_BADGE};
use sel4::cap_type::{CNode, Notification};
use sel4::{CPtr, Cap, CapData, CapRights};
use vspace::{Pool, VSpace};

use crate::device::setup;
use crate::{rdtsc, shared, Sel4Pal, Timer, TscClock};

/// The badge `net`'s signals carry on this thread's notification.
pub const NET_BADGE: u64 = 1 << 2;

/// What [`connect`] set up.
pub struct Connected {
    /// The library OS's executor.
    pub runtime: Runtime,
    /// Its PAL (clock, idle accounting).
    pub pal: Rc<Sel4Pal>,
    /// The remote interface: sockets on `net`.
    pub net: Net,
    /// Bytes of the shared region.
    pub region_bytes: usize,
    /// Times `net` was restarted and this component attached again.
    pub reattached: Rc<Cell<u64>>,
}

/// The application's attachment to `net` over its region: enough to attach again.
struct Attachment {
    component: &'static str,
    words: &'static [AtomicU32],
    base: usize,
    generation: u64,
    region: Name,
    client: NetClient<EndpointTransport>,
    /// Where `net`'s notification lands.
    reply: CPtr,
    /// The badged copy of this thread's notification sent to `net`.
    wake: CPtr,
}

impl Attachment {
    /// Clears the region, writes a header with a fresh nonce, attaches, and returns this
    /// side's link. Asks again while `net` restarts; ends the component if `net` refuses.
    fn attach(&mut self) -> ShmLink {
        let component = self.component;
        for word in self.words {
            word.store(0, Ordering::Relaxed);
        }
        // The nonce proves to `net` that the caller can write the region: only its members
        // can.
        let nonce = rdtsc().rotate_left(17) ^ (self.generation << 48) ^ self.base as u64;
        write_header(self.words, nonce);
        let own = Cap::<CNode>::from_raw(slots::CNODE);
        let _ = own.cnode_delete(self.reply, 64);
        let (region, wake) = (self.region, self.wake);
        let client = &mut self.client;
        let signal = setup(
            component,
            format_args!("attach to net over {region}"),
            || client.attach(region, nonce, CapSlot(wake)),
        );
        let net_notification = Cap::<Notification>::from_raw(signal.0);
        ShmLink::new(
            self.words,
            Side::Client,
            Box::new(move || sel4::syscall::nb_signal(net_notification)),
        )
        .unwrap_or_else(|| {
            rt::fail(
                component,
                "use its shared region",
                "too small for the rings",
            )
        })
    }
}

/// Attaches again when `proc` says `net` restarted ([`SERVICE_RESTARTED_BADGE`]): the old
/// link's sockets fail with `ConnectionReset`, new ones use the new link.
struct Watch {
    pal: Rc<Sel4Pal>,
    net: Net,
    attachment: RefCell<Attachment>,
    reattached: Rc<Cell<u64>>,
}

impl Reactor for Watch {
    fn poll(&self, _now_ns: u64) -> bool {
        if self.pal.take_badges() & SERVICE_RESTARTED_BADGE == 0 {
            return false;
        }
        self.net.link_reset();
        let mut attachment = self.attachment.borrow_mut();
        rt::println!(
            "{}: net restarted: attaching again over {}",
            attachment.component,
            attachment.region
        );
        let link = attachment.attach();
        // Cannot fail: the interface is remote.
        let _ = self.net.attach(Box::new(link));
        self.reattached.set(self.reattached.get() + 1);
        true
    }

    fn poll_at(&self, _now_ns: u64) -> Option<u64> {
        None
    }
}

/// Attaches to `net` over shared region `region`: looks up `net` with naming, maps the
/// region from `memory` (the service's endpoint) with slots and paging structures from
/// `pool`, and returns the runtime and the remote interface. `tick_ns` is the longest gap
/// between `net`'s ticks. When `net` restarts, attaches again by itself (sockets of the
/// old link fail with `ConnectionReset`). Ends the component with a one-line reason if a
/// step fails.
pub fn connect<F: FnMut(u8) -> Option<CPtr>>(
    component: &'static str,
    info: &'static StartInfo,
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    memory: CPtr,
    region: Name,
    tick_ns: u64,
) -> Connected {
    let fail = |action: &str, reason: &dyn core::fmt::Display| -> ! {
        rt::fail(component, action, reason)
    };
    if info.tsc_mhz == 0 {
        fail("keep time", &"the start info gives no TSC frequency");
    }
    let slot = |pool: &mut Pool<F>| {
        pool.slot()
            .unwrap_or_else(|e| fail("find a slot", &format_args!("{e:?}")))
    };
    let (net_slot, reply, wake) = (slot(pool), slot(pool), slot(pool));
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, net_slot));
    let net_ep = setup(component, "look up net", || {
        naming.lookup(Name::new("net").expect("a name"))
    })
    .endpoint
    .0;
    let mapped = shared::map(pool, vspace, memory, region, component);

    // `net` signals a badged copy of this thread's notification.
    let own = Cap::<CNode>::from_raw(slots::CNODE);
    own.cnode_mint(
        wake,
        64,
        own,
        slots::NOTIFICATION,
        64,
        CapRights::all(),
        CapData::new_badge(NET_BADGE),
    )
    .unwrap_or_else(|e| fail("mint the wake-up notification", &format_args!("{e:?}")));
    let mut attachment = Attachment {
        component,
        words: mapped.words(),
        base: mapped.base(),
        generation: info.generation,
        region,
        client: NetClient::new(EndpointTransport::receiving(net_ep, reply)),
        reply,
        wake,
    };
    let link = attachment.attach();

    let clock = TscClock::new(info.tsc_mhz * 1_000_000, rdtsc());
    let wait = Cap::from_raw(slots::NOTIFICATION);
    let pal = Rc::new(Sel4Pal::new(
        clock,
        wait,
        Some(Timer::Tick { period_ns: tick_ns }),
    ));
    let runtime = Runtime::new(pal.clone());
    let net = Net::remote(&runtime, Box::new(link), RemoteConfig::default());
    let reattached = Rc::new(Cell::new(0));
    let watch: Rc<dyn Reactor> = Rc::new(Watch {
        pal: pal.clone(),
        net: net.clone(),
        attachment: RefCell::new(attachment),
        reattached: reattached.clone(),
    });
    runtime.add_reactor(Rc::downgrade(&watch));
    // The runtime holds reactors weakly: keep the watch for the rest of the program.
    core::mem::forget(watch);
    Connected {
        runtime,
        pal,
        net,
        region_bytes: mapped.len(),
        reattached,
    }
}
