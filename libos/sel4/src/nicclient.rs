//! A stack's side of a `nic` driver component: the frames of a NIC driven elsewhere, as a
//! `libos_core::NetDevice` ([`connect`]), over the shared region the description gives the
//! two (`libos_core::net::frames`). When `proc` says `nic` restarted, [`NicLink::watch`]
//! attaches again and swaps the port under the stack, whose TCP connections carry on (what
//! was lost in the rings is retransmitted).

use alloc::boxed::Box;
use alloc::rc::Rc;
use core::cell::RefCell;

use libos_core::executor::Reactor;
use libos_core::net::frames::{read_device, write_header, SharedPort, StackPort};
use libos_core::{NetDevice, Runtime};
use proto::Name;
use rt::startinfo::{StartInfo, SERVICE_RESTARTED_BADGE};
use sel4::CPtr;
use vspace::{Pool, VSpace};

use crate::netclient::RegionClient;
use crate::Sel4Pal;

/// The badge `nic`'s signals carry on this thread's notification.
pub const NIC_BADGE: u64 = 1 << 18;

/// The attachment to `nic`, kept to attach again.
pub struct NicLink {
    client: RegionClient,
    port: SharedPort,
}

/// Attaches (again) and returns the stack's port.
fn port(client: &mut RegionClient) -> StackPort {
    let nic = client.attach(write_header);
    let words = client.words();
    let (mac, mtu) = read_device(words)
        .unwrap_or_else(|| rt::fail("net", "use the nic", "it wrote no device into the region"));
    let signal = Box::new(move || sel4::syscall::nb_signal(nic));
    StackPort::new(words, mac, mtu, signal)
        .unwrap_or_else(|| rt::fail("net", "use the nic's region", "too small for the rings"))
}

/// Attaches to the `nic` service over shared region `region` (mapped from `memory`, the
/// service's endpoint) and returns the device for the stack and the link to watch. Ends
/// the component with a one-line reason if a step fails.
pub fn connect<F: FnMut(u8) -> Option<CPtr>>(
    component: &'static str,
    info: &'static StartInfo,
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    memory: CPtr,
    region: Name,
) -> (Box<dyn NetDevice>, NicLink) {
    let nic = Name::new("nic").expect("a name");
    let mut client = RegionClient::new(
        component, info, pool, vspace, memory, nic, region, NIC_BADGE,
    );
    let port = SharedPort::new(port(&mut client));
    (Box::new(port.clone()), NicLink { client, port })
}

struct Watch {
    pal: Rc<Sel4Pal>,
    link: RefCell<NicLink>,
}

impl Reactor for Watch {
    fn poll(&self, _now_ns: u64) -> bool {
        if self.pal.take_badges() & SERVICE_RESTARTED_BADGE == 0 {
            return false;
        }
        let mut link = self.link.borrow_mut();
        rt::println!(
            "net: nic restarted: attaching again over {}",
            link.client.region()
        );
        let fresh = port(&mut link.client);
        link.port.replace(fresh);
        true
    }

    fn poll_at(&self, _now_ns: u64) -> Option<u64> {
        None
    }
}

impl NicLink {
    /// Attaches again whenever `proc` signals that `nic` restarted (its badge on the
    /// notification `pal` waits on), for the rest of the program.
    pub fn watch(self, runtime: &Runtime, pal: Rc<Sel4Pal>) {
        let watch: Rc<dyn Reactor> = Rc::new(Watch {
            pal,
            link: RefCell::new(self),
        });
        runtime.add_reactor(Rc::downgrade(&watch));
        // The runtime holds reactors weakly: keep the watch for the rest of the program.
        core::mem::forget(watch);
    }

    /// What the port did.
    pub fn counters(&self) -> libos_core::net::frames::PortCounters {
        self.port.counters()
    }
}
