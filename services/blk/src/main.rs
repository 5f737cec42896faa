//! The block driver component: a virtio-blk disk behind `proto::blk` and `blkring`'s rings.
//!
//! Start-up: looks up `devices` and `memory`, claims its device (`disk0` unless the `device`
//! argument says otherwise) through `libos_sel4::blk` (the virtio BAR mapped uncached, the
//! PCI transport, the interrupt handler), maps queue memory from its own budget, starts the
//! `virtio-blk` driver, registers `blk` with naming and serves.
//!
//! One thread serves IPC and events, as the serial driver does: the IRQ handler and every
//! client's doorbell signal copies of the component's notification badged [`IRQ_BADGE`] and
//! [`DOORBELL_BADGE`], bound to the thread, so the `Recv` on the service endpoint also
//! returns for them (client badges are component ids + 1, below 2^16). An attach maps the
//! client's region (after `memory` confirms this component is a member) with the physical
//! address of each page, so the device moves data straight into it; the `window` argument
//! (`REGION:FIRST+COUNT,...`) confines a region's client to those sectors. The serving logic
//! is the host-tested `blk` library.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::AtomicU32;

use blk::{ReadyLine, Server, Sessions};
use libos_sel4::blk::{badged_notification, queue_memory, ClaimedDisk, DmaQueue, Transport};
use libos_sel4::device::{setup, Devices};
use libos_sel4::shared::map_physical;
use proto::blk::{Error, Geometry};
use proto::devices::IrqMode;
use proto::memory::MemoryClient;
use proto::naming::NamingClient;
use proto::sel4_transport::{prepare, received, EndpointTransport, ReceiveSlot, Reply};
use proto::{CapSlot, Name};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::CNode;
use sel4::{CPtr, Cap};
use virtio_blk::VirtioBlk;
use vspace::{Pool, VSpace};

rt::entry!(main);

/// The badge of the interrupt's signals (no client badge has this bit; badges are 28 bits).
const IRQ_BADGE: u64 = 1 << 27;
/// The badge of the clients' doorbells.
const DOORBELL_BADGE: u64 = 1 << 26;
/// Entries of the virtqueue.
const QUEUE_SIZE: u16 = 256;
const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);

fn name(text: &str) -> Name {
    Name::new(text).expect("a valid name")
}

/// A region this component mapped: its name, words and page addresses.
type Mapped = (Name, &'static [AtomicU32], Vec<u64>);

struct Service<F: FnMut(u8) -> Option<CPtr>> {
    server: Server<VirtioBlk<Transport, DmaQueue>, CPtr>,
    sessions: Sessions<CPtr>,
    pool: Pool<F>,
    vspace: VSpace,
    memory: CPtr,
    regions: Vec<Mapped>,
    doorbell: CPtr,
    /// The `window` argument (checked at start).
    windows: Option<&'static str>,
}

impl<F: FnMut(u8) -> Option<CPtr>> Service<F> {
    /// An empty slot: a recycled one, else a new one from the pool.
    fn slot(&mut self) -> Option<CPtr> {
        match self.sessions.spare() {
            Some(slot) => {
                let _ = OWN.cnode_delete(slot, 64);
                Some(slot)
            }
            None => self.pool.slot().ok(),
        }
    }

    /// The region `region`, mapped on first use; `None` when this component is not a member
    /// (`memory` says so; asked first, so a bad name cannot end the component).
    fn region(&mut self, region: Name) -> Option<usize> {
        if let Some(i) = self.regions.iter().position(|r| r.0 == region) {
            return Some(i);
        }
        let probe = self.slot()?;
        let mut memory = MemoryClient::new(EndpointTransport::receiving(self.memory, probe));
        let member = memory.share(region, 0).is_ok();
        self.sessions.give_back(probe);
        if !member {
            return None;
        }
        let (pool, vspace) = (&mut self.pool, &mut self.vspace);
        let (mapped, frames) = map_physical(pool, vspace, self.memory, region, "blk");
        self.regions.push((region, mapped.words(), frames));
        Some(self.regions.len() - 1)
    }

    fn serve_events(&mut self) {
        loop {
            // Non-blocking: a client may have handed over an endpoint, not a notification
            // (a blocking seL4_Signal would then stall blk); NBSend signals a notification,
            // is dropped by an endpoint nobody waits on, and ignored by other objects. A
            // client that died took its notification with it: its slot is skipped (the
            // debug kernel would print a line for every signal to it).
            self.server.poll(|wake| {
                if sel4::syscall::cap_present(wake) {
                    sel4::syscall::nb_signal(Cap::from_raw(wake));
                }
            });
            if self.server.prepare_wait() {
                return;
            }
        }
    }
}

impl<F: FnMut(u8) -> Option<CPtr>> proto::blk::Server for Service<F> {
    fn attach(
        &mut self,
        badge: u64,
        region: Name,
        nonce: u64,
        wake: CapSlot,
    ) -> Result<CapSlot, Error> {
        let index = self.region(region).ok_or(Error::NotFound)?;
        let kept = self.slot().ok_or(Error::Full)?;
        if OWN.cnode_move(kept, 64, OWN, wake.0, 64).is_err() {
            self.sessions.give_back(kept);
            return Err(Error::Malformed);
        }
        let (_, words, frames) = &self.regions[index];
        let key = index as u64;
        let window = blk::window(self.windows, region.as_str()).ok().flatten();
        match self
            .server
            .attach(key, nonce, words, frames.clone(), window, kept)
        {
            Ok(client) => self.sessions.attached(badge, client, kept),
            Err(e) => {
                self.sessions.give_back(kept);
                return Err(e.into());
            }
        }
        Ok(CapSlot(self.doorbell))
    }

    fn geometry(&mut self, badge: u64) -> Result<Geometry, Error> {
        let client = self.sessions.client(badge).ok_or(Error::NotAttached)?;
        let (sectors, max_sectors, read_only) = self
            .server
            .client_geometry(client)
            .ok_or(Error::NotAttached)?;
        Ok(Geometry {
            sectors,
            max_sectors,
            read_only,
        })
    }
}

fn main(info: &'static StartInfo) {
    let args = blk::args(|key| info.arg(key)).unwrap_or_else(|e| rt::fail("blk", "start", e));
    let device = args.device;
    let mut free = Slots::new();
    let receive = free.alloc().expect("a free slot");
    let mut lookup = |service: &str| {
        let slot = free.alloc().expect("a free slot");
        let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, slot));
        let what = format_args!("look up {service}");
        setup("blk", what, || naming.lookup(name(service)))
            .endpoint
            .0
    };
    let (devices_ep, memory_ep) = (lookup("devices"), lookup("memory"));
    let mut pool = libos_sel4::budget::pool(free, memory_ep, 32, "blk");
    let mut vspace = VSpace::own();

    // The device, its queue memory and the driver.
    let mut devices = Devices::new("blk", devices_ep);
    let disk = ClaimedDisk::claim(&mut devices, &mut pool, &mut vspace, device);
    // Interrupts and doorbells arrive on our notification, bound to this thread.
    disk.interrupt_to_thread(&mut pool, IRQ_BADGE, "blk");
    let doorbell = badged_notification(&mut pool, DOORBELL_BADGE, "blk");
    let layout = virtio_blk::Layout::new(QUEUE_SIZE).expect("a valid queue size");
    let (memory, size, paddr) = queue_memory(&mut pool, &mut vspace, layout.bytes, "blk");
    let driver = VirtioBlk::new(disk.transport, memory, size, paddr, QUEUE_SIZE)
        .unwrap_or_else(|e| rt::fail("blk", format_args!("start {device}"), format_args!("{e:?}")));

    let pci = disk.info.pci;
    let line = ReadyLine {
        device: device.as_str(),
        pci: (pci.bus, pci.dev, pci.func),
        geometry: driver.geometry(),
        queue: driver.queue_size(),
        irq: disk.info.irq,
        msix: driver.transport().msix_vector(),
        bar: disk.bar,
    };
    if disk.info.irq == IrqMode::MsiX && line.msix.is_none() {
        rt::fail(
            "blk",
            format_args!("use {device}"),
            "it refused MSI-X vector 0",
        );
    }
    println!("{line}");
    let mut service = Service {
        server: Server::new(driver),
        pool,
        vspace,
        memory: memory_ep,
        regions: Vec::new(),
        sessions: Sessions::default(),
        doorbell,
        windows: args.windows,
    };
    NamingClient::new(EndpointTransport::new(slots::NAMING))
        .register(name("blk"), CapSlot(slots::SERVICE))
        .unwrap_or_else(|e| rt::fail("blk", "register blk", e));

    let receive = ReceiveSlot::own(receive);
    let mut interrupted = false;
    let mut mrs = [0; 4];
    receive.install();
    let (mut info, mut badge) = sel4::syscall::recv_with_mrs(slots::SERVICE, &mut mrs);
    loop {
        if badge & (IRQ_BADGE | DOORBELL_BADGE) != 0 {
            if badge & IRQ_BADGE != 0 {
                if !interrupted {
                    interrupted = true;
                    println!("blk: first interrupt from {device}");
                }
                service.server.disk().ack_interrupt();
                let _ = disk.handler.irq_handler_ack();
            }
            service.serve_events();
            receive.install();
            (info, badge) = sel4::syscall::recv_with_mrs(slots::SERVICE, &mut mrs);
            continue;
        }
        let request = received(info, &mrs, Some(receive.index));
        let kept = Reply::Saved.keep(badge);
        let reply = proto::blk::dispatch(&mut service, badge, &request);
        let _ = OWN.cnode_delete(receive.index, 64);
        // A new attachment's ring must say the server waits, or its first batch would not
        // signal us.
        service.serve_events();
        let (reply_info, reply_mrs) = prepare(&reply);
        mrs = reply_mrs;
        receive.install();
        (info, badge) = kept.reply_recv(slots::SERVICE, reply_info, &mut mrs);
    }
}
