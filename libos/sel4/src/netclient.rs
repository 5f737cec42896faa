//! An application's side of the shared network service: the library OS's sockets served by
//! `net` (naming route `net`) instead of a stack of its own.
//!
//! [`connect`] maps the shared region the description gives the application with `net`,
//! clears it, writes its header with a fresh nonce, attaches over IPC
//! (`proto::net::attach`, sending a badged copy of this thread's notification for `net` to
//! signal) and returns a runtime whose `Net` is remote: every socket operation goes through
//! the rings of the region (`libos_core::net::shmlink`). The application needs no device:
//! its clock runs on the TSC frequency the kernel measured at boot (its start info), and its
//! deadlines are noticed on `net`'s periodic tick ([`Timer::Tick`]).

use alloc::boxed::Box;
use alloc::rc::Rc;
use core::sync::atomic::Ordering;

use libos_core::net::remote::RemoteConfig;
use libos_core::net::shmlink::{write_header, ShmLink, Side};
use libos_core::{Net, Runtime};
use proto::naming::NamingClient;
use proto::net::NetClient;
use proto::sel4_transport::EndpointTransport;
use proto::{CapSlot, Name};
use rt::startinfo::{slots, StartInfo};
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
}

/// Attaches to `net` over shared region `region`: looks up `net` with naming, maps the
/// region from `memory` (the service's endpoint) with slots and paging structures from
/// `pool`, and returns
/// the runtime and the remote interface. `tick_ns` is the longest gap between `net`'s
/// ticks. Ends the component with a one-line reason if a step fails.
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
    let slot = |pool: &mut Pool<F>| {
        pool.slot()
            .unwrap_or_else(|e| fail("find a slot", &format_args!("{e:?}")))
    };
    let (net_slot, reply_slot, wake_slot) = (slot(pool), slot(pool), slot(pool));
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, net_slot));
    let net_ep = setup(component, "look up net", || {
        naming.lookup(Name::new("net").expect("a name"))
    })
    .endpoint
    .0;

    let mapped = shared::map(pool, vspace, memory, region, component);
    let words = mapped.words();
    for word in words {
        word.store(0, Ordering::Relaxed);
    }
    // The nonce proves to `net` that the caller can write the region: only its members can.
    let nonce = rdtsc().rotate_left(17) ^ (info.generation << 48) ^ (mapped.base() as u64);
    write_header(words, nonce);

    // `net` signals a badged copy of this thread's notification.
    let own = Cap::<CNode>::from_raw(slots::CNODE);
    own.cnode_mint(
        wake_slot,
        64,
        own,
        slots::NOTIFICATION,
        64,
        CapRights::all(),
        CapData::new_badge(NET_BADGE),
    )
    .unwrap_or_else(|e| fail("mint the wake-up notification", &format_args!("{e:?}")));
    let mut client = NetClient::new(EndpointTransport::receiving(net_ep, reply_slot));
    let signal = setup(
        component,
        format_args!("attach to net over {region}"),
        || client.attach(region, nonce, CapSlot(wake_slot)),
    );
    let net_notification = Cap::<Notification>::from_raw(signal.0);
    let link = ShmLink::new(
        words,
        Side::Client,
        Box::new(move || sel4::syscall::nb_signal(net_notification)),
    )
    .unwrap_or_else(|| fail("use its shared region", &"too small for the rings"));

    if info.tsc_mhz == 0 {
        fail("keep time", &"the start info gives no TSC frequency");
    }
    let clock = TscClock::new(info.tsc_mhz * 1_000_000, rdtsc());
    let wait = Cap::from_raw(slots::NOTIFICATION);
    let pal = Rc::new(Sel4Pal::new(
        clock,
        wait,
        Some(Timer::Tick { period_ns: tick_ns }),
    ));
    let runtime = Runtime::new(pal.clone());
    let net = Net::remote(&runtime, Box::new(link), RemoteConfig::default());
    Connected {
        runtime,
        pal,
        net,
        region_bytes: mapped.len(),
    }
}
