//! What `proc` places in the CNode of a component it builds, and how it tells a fault from
//! a request on its endpoint.
//!
//! One table ([`granted`]) is both the plan the binary builds the CNode from and what `caps`
//! answers, so the listing is exactly what the component holds. A non-fundamental component
//! gets its own objects, the fault and naming endpoints, the endpoint of the service it
//! provides (if any) and a notification: no role grants (slot 8 on is empty). Everything else
//! it gets by asking services that naming routes it to.

use alloc::vec::Vec;

use proto::proc::{CapInfo, CapKind};
use proto::{ComponentId, Name};
use rt::startinfo::slots;
use sysdesc::System;

/// The badge bit of the fault capabilities proc gives the components it builds. Faults
/// arrive on proc's own service endpoint, badged `FAULT_BADGE | (id + 1)`; client badges
/// (`id + 1`, minted by naming) never have this bit.
pub const FAULT_BADGE: u64 = 1 << 26;

/// The badge bit of the notification proc's timer thread signals (bound to proc's thread,
/// so it wakes the `Recv` on the service endpoint).
pub const TICK_BADGE: u64 = 1 << 27;

/// All rights: bit 0 write, bit 1 read, bit 2 grant (seL4's order).
const ALL_RIGHTS: u8 = 0b111;

/// The badge of component `id`'s fault capability.
pub fn fault_badge(id: ComponentId) -> u64 {
    FAULT_BADGE | proto::badge(id)
}

/// The component a fault badge names, `None` for any other badge (a client's or the
/// timer's).
pub fn fault_source(badge: u64) -> Option<ComponentId> {
    if badge & FAULT_BADGE == 0 || badge & TICK_BADGE != 0 {
        return None;
    }
    proto::client(badge & !FAULT_BADGE)
}

/// The capabilities proc places in component `id`'s CNode, by slot, or `None` for an unknown
/// id. The service endpoint is listed for a component that provides a service.
pub fn granted(system: &System, id: ComponentId) -> Option<Vec<CapInfo>> {
    let c = system.get(id)?;
    let own = |slot: u64, kind: CapKind| CapInfo {
        slot,
        kind,
        rights: ALL_RIGHTS,
        badge: 0,
        grant: None,
    };
    let mut caps = alloc::vec![
        own(slots::TCB, CapKind::Tcb),
        own(slots::CNODE, CapKind::CNode),
        own(slots::VSPACE, CapKind::VSpace),
        CapInfo {
            slot: slots::FAULT,
            kind: CapKind::Endpoint,
            rights: ALL_RIGHTS,
            badge: fault_badge(id),
            grant: Name::new("proc").ok(),
        },
        CapInfo {
            slot: slots::NAMING,
            kind: CapKind::Endpoint,
            rights: ALL_RIGHTS,
            badge: proto::badge(id),
            grant: Name::new("naming").ok(),
        },
    ];
    if let Some(service) = c.provides.first() {
        caps.push(CapInfo {
            slot: slots::SERVICE,
            kind: CapKind::Endpoint,
            rights: ALL_RIGHTS,
            badge: 0,
            grant: Name::new(service).ok(),
        });
    }
    caps.push(own(slots::NOTIFICATION, CapKind::Notification));
    Some(caps)
}
