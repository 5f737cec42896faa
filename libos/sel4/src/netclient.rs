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
pub const NET_BADGE: u64 = 1 << 17;

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

/// A client's side of a region it shares with a service that serves clients over shared
/// regions (`proto::net`'s `attach`: the `net` service, a `nic` driver): enough to attach,
/// and to attach again after the service restarted.
pub struct RegionClient {
    component: &'static str,
    service: Name,
    words: &'static [AtomicU32],
    base: usize,
    generation: u64,
    region: Name,
    client: NetClient<EndpointTransport>,
    /// Where the service's notification lands.
    reply: CPtr,
    /// The badged copy of this thread's notification sent to the service.
    wake: CPtr,
}

impl RegionClient {
    /// Looks up `service` with naming, maps shared `region` from `memory` (the service's
    /// endpoint) and mints a copy of this thread's notification badged `badge` for the
    /// service to signal, with slots and paging structures from `pool`. Ends the component
    /// with a one-line reason if a step fails.
    #[allow(
        clippy::too_many_arguments,
        reason = "the capabilities an attachment needs"
    )]
    pub fn new<F: FnMut(u8) -> Option<CPtr>>(
        component: &'static str,
        info: &'static StartInfo,
        pool: &mut Pool<F>,
        vspace: &mut VSpace,
        memory: CPtr,
        service: Name,
        region: Name,
        badge: u64,
    ) -> RegionClient {
        let fail = |action: &str, reason: &dyn core::fmt::Display| -> ! {
            rt::fail(component, action, reason)
        };
        let slot = |pool: &mut Pool<F>| {
            pool.slot()
                .unwrap_or_else(|e| fail("find a slot", &format_args!("{e:?}")))
        };
        let (service_slot, reply, wake) = (slot(pool), slot(pool), slot(pool));
        let mut naming =
            NamingClient::new(EndpointTransport::receiving(slots::NAMING, service_slot));
        let endpoint = setup(component, format_args!("look up {service}"), || {
            naming.lookup(service)
        })
        .endpoint
        .0;
        let mapped = shared::map(pool, vspace, memory, region, component);
        let own = Cap::<CNode>::from_raw(slots::CNODE);
        own.cnode_mint(
            wake,
            64,
            own,
            slots::NOTIFICATION,
            64,
            CapRights::all(),
            CapData::new_badge(badge),
        )
        .unwrap_or_else(|e| fail("mint the wake-up notification", &format_args!("{e:?}")));
        RegionClient {
            component,
            service,
            words: mapped.words(),
            base: mapped.base(),
            generation: info.generation,
            region,
            client: NetClient::new(EndpointTransport::receiving(endpoint, reply)),
            reply,
            wake,
        }
    }

    /// The region's words.
    pub fn words(&self) -> &'static [AtomicU32] {
        self.words
    }

    /// The region's name.
    pub fn region(&self) -> Name {
        self.region
    }

    /// Clears the region, writes its header with a fresh nonce (`write_header`: the
    /// protocol's), attaches, and returns the service's notification. Asks again while the
    /// service restarts; ends the component if the service refuses.
    pub fn attach(&mut self, write_header: fn(&[AtomicU32], u64)) -> Cap<Notification> {
        for word in self.words {
            word.store(0, Ordering::Relaxed);
        }
        // The nonce proves to the service that the caller can write the region: only its
        // members can.
        let nonce = rdtsc().rotate_left(17) ^ (self.generation << 48) ^ self.base as u64;
        write_header(self.words, nonce);
        let own = Cap::<CNode>::from_raw(slots::CNODE);
        let _ = own.cnode_delete(self.reply, 64);
        let (region, wake, service) = (self.region, self.wake, self.service);
        let client = &mut self.client;
        let action = format_args!("attach to {service} over {region}");
        let signal = setup(self.component, action, || {
            client.attach(region, nonce, CapSlot(wake))
        });
        Cap::from_raw(signal.0)
    }
}

/// The application's link to `net` over a region it attached (again).
fn socket_link(attachment: &mut RegionClient) -> ShmLink {
    let net = attachment.attach(write_header);
    ShmLink::new(
        attachment.words,
        Side::Client,
        Box::new(move || sel4::syscall::nb_signal(net)),
    )
    .unwrap_or_else(|| {
        rt::fail(
            attachment.component,
            "use its shared region",
            "too small for the rings",
        )
    })
}

/// Attaches again when `proc` says `net` restarted ([`SERVICE_RESTARTED_BADGE`]): the old
/// link's sockets fail with `ConnectionReset`, new ones use the new link.
struct Watch {
    pal: Rc<Sel4Pal>,
    net: Net,
    attachment: RefCell<RegionClient>,
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
        let link = socket_link(&mut attachment);
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
    if info.tsc_mhz == 0 {
        rt::fail(
            component,
            "keep time",
            "the start info gives no TSC frequency",
        );
    }
    let net = Name::new("net").expect("a name");
    let mut attachment = RegionClient::new(
        component, info, pool, vspace, memory, net, region, NET_BADGE,
    );
    let link = socket_link(&mut attachment);
    let region_bytes = attachment.words.len() * 4;

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
        region_bytes,
        reattached,
    }
}
