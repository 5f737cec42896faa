//! The device access service component: the only component that touches PCI configuration
//! space. Serves `proto::devices` (and `::ports`, `::message`, `::config`) on its endpoint.
//!
//! A thin shell over the `devices` library: `sel4_kernel` implements the library's `Kernel`
//! with seL4 invocations (the I/O port capability, grant slot 8; IRQ control, slot 9; the
//! device untypeds, slots 10..; retypes and deletes in its own CNode; the memory service for
//! DMA; its own mappings of MSI-X tables), and `main` hands it to `DevicesServer::start` (enumerate, resolve, quiet, carve), registers `devices`
//! with naming and serves.
//!
//! Capabilities it hands out (BAR frames, IRQ handlers, the I/O port capability) stay in its
//! own CNode and travel as copies, so a restarted driver that claims again gets the same
//! ones. IRQ handlers are made on the first `irq` request.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::cell::RefCell;
use devices::server::dispatch;
use devices::{DeviceUntyped, DevicesServer, InterruptController};
use proto::naming::NamingClient;
use proto::sel4_transport::{serve, EndpointTransport, ReceiveSlot, Reply};
use proto::{CapSlot, Name};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sysdesc::System;

mod sel4_kernel;

use sel4_kernel::Sel4;

rt::entry!(main);

#[cfg(irq_pic)]
const CONTROLLER: InterruptController = InterruptController::Pic;
#[cfg(not(irq_pic))]
const CONTROLLER: InterruptController = InterruptController::IoApic;

fn main(info: &'static StartInfo) {
    let image = bootimage::Image::parse(info.data()).expect("devices' data blob is a boot image");
    let system = System::decode(
        image
            .system()
            .expect("the data blob holds the system description"),
    )
    .expect("the system description decodes");
    let untypeds: Vec<DeviceUntyped> = image
        .untypeds()
        .map(|u| DeviceUntyped {
            paddr: u.paddr,
            size_bits: u.size_bits,
        })
        .collect();
    // The grants run past slot 63 (over a hundred device untypeds on QEMU), so the slot
    // allocator starts above them and the receive slot is one of its own.
    let mut slot_alloc = Slots::new();
    let first_free = slots::GRANTS + info.grants;
    let receive = (0..)
        .map_while(|_| slot_alloc.alloc())
        .find(|&s| s >= first_free)
        .expect("devices has a free slot above its grants");
    let kernel = Sel4::new(slot_alloc);
    let server = DevicesServer::start(&system, &untypeds, CONTROLLER, kernel);
    // Registers its endpoint with naming (naming copies it).
    let mut naming = NamingClient::new(EndpointTransport::new(slots::NAMING));
    naming
        .register(
            Name::new("devices").expect("a valid name"),
            CapSlot(slots::SERVICE),
        )
        .expect("naming accepts devices as the provider of devices");
    println!("devices: ready");
    let server = RefCell::new(server);
    serve(
        slots::SERVICE,
        ReceiveSlot::own(receive),
        Reply::InThread,
        |badge, request| dispatch(&mut server.borrow_mut(), badge, request),
        || {},
    )
}
