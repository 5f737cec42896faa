//! The memory service component: serves `proto::memory` (and `proc`'s
//! `proto::memory::supervise`) on its endpoint.
//!
//! A thin shell over the `memory` library: it reads the system description and the
//! table of its granted untypeds from its data blob, adds the untypeds (slots 8..) to
//! the pool, registers with naming and carries out the pool's retypes and revokes in
//! its own CNode.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use memory::{Kernel, KernelError, MemoryServer};
use proto::naming::NamingClient;
use proto::sel4_transport::{serve, EndpointTransport, ReceiveSlot, Reply};
use proto::{CapSlot, Name};
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use sel4::cap_type::{CNode, Untyped};
use sel4::{Cap, ObjectType};
use sysdesc::System;

rt::entry!(main);

/// The slot requests' capabilities arrive in (just below the allocatable ones).
const RECEIVE: u64 = slots::FIRST_FREE - 1;
const OWN: Cap<CNode> = Cap::from_raw(slots::CNODE);

/// Retypes and revokes in memory's own CNode.
struct Caps {
    slots: Slots,
}

impl Caps {
    fn retype(&mut self, untyped: u64, ty: ObjectType, size_bits: u8) -> Result<u64, KernelError> {
        let slot = self.slots.alloc().ok_or(KernelError)?;
        let r = Cap::<Untyped>::from_raw(untyped).untyped_retype(
            ty.word(),
            u64::from(size_bits),
            OWN,
            0,
            0,
            slot,
            1,
        );
        match r {
            Ok(()) => Ok(slot),
            Err(e) => {
                println!("memory: retype of {untyped} failed: {e:?}");
                self.slots.free(slot);
                Err(KernelError)
            }
        }
    }
}

impl Kernel for Caps {
    fn split(&mut self, parent: u64, size_bits: u8) -> Result<[u64; 2], KernelError> {
        let low = self.retype(parent, ObjectType::Untyped, size_bits)?;
        match self.retype(parent, ObjectType::Untyped, size_bits) {
            Ok(high) => Ok([low, high]),
            Err(e) => {
                let _ = OWN.cnode_delete(low, 64);
                self.slots.free(low);
                Err(e)
            }
        }
    }

    fn revoke(&mut self, cap: u64) {
        if let Err(e) = OWN.cnode_revoke(cap, 64) {
            println!("memory: revoke of {cap} failed: {e:?}");
        }
    }

    fn forget(&mut self, slot: u64) {
        // Already deleted by a revoke; deleting an empty slot is harmless.
        let _ = OWN.cnode_delete(slot, 64);
        if slot >= slots::FIRST_FREE {
            self.slots.free(slot);
        }
    }

    fn frames(&mut self, block: u64, size_bits: u8) -> Result<Vec<u64>, KernelError> {
        let count = 1u64 << (size_bits - 12);
        let mut frames = Vec::new();
        for _ in 0..count {
            match self.retype(block, ObjectType::X86Page, 0) {
                Ok(f) => frames.push(f),
                Err(e) => {
                    for f in frames {
                        self.forget(f);
                    }
                    return Err(e);
                }
            }
        }
        Ok(frames)
    }

    fn free_slots(&self) -> usize {
        usize::try_from(self.slots.available()).unwrap_or(usize::MAX)
    }
}

fn main(info: &'static StartInfo) {
    let image = bootimage::Image::parse(info.data()).expect("memory's data blob is a boot image");
    let system = System::decode(
        image
            .system()
            .expect("the data blob holds the system description"),
    )
    .expect("the system description decodes");
    let instance = u32::try_from(info.generation + 1).unwrap_or(u32::MAX);
    let mut server = MemoryServer::new(
        system,
        Caps {
            slots: Slots::new(),
        },
        instance,
    );
    let (mut added, mut skipped) = (0u64, 0u64);
    for (i, u) in image.untypeds().enumerate().take(info.grants as usize) {
        let cap = slots::GRANTS + i as u64;
        match server.add_untyped(cap, u.paddr, u.size_bits) {
            Ok(()) => added += 1 << u.size_bits,
            // Smaller than a page, or not aligned: left unused.
            Err(_) => skipped += 1 << u.size_bits,
        }
    }
    println!(
        "memory: {} untypeds, {} KiB in the pool ({} bytes unusable)",
        info.grants,
        added / 1024,
        skipped
    );

    let mut naming = NamingClient::new(EndpointTransport::new(slots::NAMING));
    let name = Name::new("memory").expect("a valid name");
    match naming.register(name, CapSlot(slots::SERVICE)) {
        Ok(()) => println!("memory: ready"),
        Err(e) => println!("memory: cannot register with naming: {e:?}"),
    }

    let receive = ReceiveSlot::own(RECEIVE);
    let server = core::cell::RefCell::new(server);
    serve(
        slots::SERVICE,
        receive,
        Reply::InThread,
        |badge, request| memory::server::dispatch(&mut server.borrow_mut(), badge, request),
        || {},
    )
}
