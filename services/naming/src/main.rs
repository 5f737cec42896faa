//! The naming service component: serves `proto::naming` on its endpoint.
//!
//! A thin shell over the `naming` library: it reads the system description from
//! its data blob, keeps registered endpoints in its own CNode, and mints badged
//! copies for the clients the description routes to them.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use naming::{CapOps, NamingServer, NoRoom};
use proto::sel4_transport::{serve, ReceiveSlot, Reply};
use proto::{CapSlot, ComponentId};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::CNode;
use sel4::{Cap, CapData, CapRights};
use sysdesc::System;

rt::entry!(main);

/// The slot requests' capabilities arrive in (just below the allocatable ones).
const RECEIVE: u64 = slots::FIRST_FREE - 1;
const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);

/// Endpoints kept in naming's CNode; minted copies are deleted once replied.
struct SlotCaps {
    slots: Slots,
    pending: Vec<u64>,
}

impl SlotCaps {
    /// Deletes the minted copies the last reply carried.
    fn flush(&mut self) {
        for slot in self.pending.drain(..) {
            let _ = OWN.cnode_delete(slot, 64);
            self.slots.free(slot);
        }
    }
}

impl CapOps for SlotCaps {
    type Handle = u64;

    fn keep(&mut self, received: CapSlot) -> Result<u64, NoRoom> {
        let slot = self.slots.alloc().ok_or(NoRoom)?;
        match OWN.cnode_move(slot, 64, OWN, received.0, 64) {
            Ok(()) => Ok(slot),
            Err(_) => {
                self.slots.free(slot);
                Err(NoRoom)
            }
        }
    }

    fn mint(&mut self, endpoint: u64, badge: u64) -> Result<CapSlot, NoRoom> {
        let slot = self.slots.alloc().ok_or(NoRoom)?;
        match OWN.cnode_mint(
            slot,
            64,
            OWN,
            endpoint,
            64,
            CapRights::all(),
            CapData::new_badge(badge),
        ) {
            Ok(()) => {
                self.pending.push(slot);
                Ok(CapSlot(slot))
            }
            Err(_) => {
                self.slots.free(slot);
                Err(NoRoom)
            }
        }
    }

    fn release(&mut self, endpoint: u64) {
        // Naming's own endpoint is not in the allocator's range: never freed.
        if endpoint >= slots::FIRST_FREE {
            let _ = OWN.cnode_delete(endpoint, 64);
            self.slots.free(endpoint);
        }
    }
}

fn main(info: &'static StartInfo) {
    let image = bootimage::Image::parse(info.data()).expect("naming's data blob is a boot image");
    let system = System::decode(
        image
            .system()
            .expect("the data blob holds the system description"),
    )
    .expect("the system description decodes");
    let me = ComponentId(info.id as u16);
    let mut server = NamingServer::new(
        system,
        SlotCaps {
            slots: Slots::new(),
            pending: Vec::new(),
        },
    );
    server
        .register_as(me, "naming", slots::SERVICE)
        .expect("naming provides naming");
    println!("naming: ready");
    let receive = ReceiveSlot::own(RECEIVE);
    let server = core::cell::RefCell::new(server);
    serve(
        slots::SERVICE,
        receive,
        Reply::InThread,
        |badge, request| proto::naming::dispatch(&mut *server.borrow_mut(), badge, request),
        || server.borrow_mut().caps_mut().flush(),
    )
}
