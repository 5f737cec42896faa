//! What `proc` places in the CNode of a component it builds, and how it tells a fault from
//! a request on its endpoint.
//!
//! [`spec`] is what the binary asks the loader to build and [`granted`] what `caps` answers;
//! the host tests hold the two to the same table, so the listing is exactly what the
//! component holds. A non-fundamental component
//! gets its own objects, the fault and naming endpoints, the endpoint of the service it
//! provides (if any) and a notification: no role grants (slot 8 on is empty). Everything else
//! it gets by asking services that naming routes it to.

use alloc::vec::Vec;

use loader::build::{Grant, Spec};
use proto::proc::{CapInfo, CapKind};
use proto::{ComponentId, Name};
use rt::startinfo::slots;
use sysdesc::{Component, System};

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

/// Component `c`'s arguments as the loader takes them.
pub fn arguments(c: &Component) -> Vec<(&str, &str)> {
    c.args
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// What proc asks the loader to build for instance `generation` (1 for the first) of
/// component `c` with id `id`, from `elf`, with `args` ([`arguments`]): its fault capability
/// a copy of proc's endpoint (`slots::SERVICE`) badged [`fault_badge`], naming's endpoint
/// (`naming`, in proc's CNode) badged with its client badge, the service endpoint proc keeps
/// for it (`service`) if any, no role grants and no data blob, the heap and stack its budget
/// gives, and threads up to its own priority (a driver's interrupt thread above its main
/// thread, never above). The same table as [`granted`].
pub fn spec<'a>(
    c: &'a Component,
    id: ComponentId,
    generation: u32,
    elf: &'a [u8],
    naming: u64,
    service: Option<u64>,
    args: &'a [(&'a str, &'a str)],
) -> Spec<'a> {
    Spec {
        id: u64::from(id.0),
        generation: u64::from(generation.saturating_sub(1)),
        name: &c.name,
        priority: c.priority,
        mcp: c.priority,
        elf,
        fault: Grant::badged(slots::SERVICE, fault_badge(id)),
        naming: Some(Grant::badged(naming, proto::badge(id))),
        service: service.map(Grant::copy),
        grants: &[],
        args,
        data: &[],
        heap: c.heap_bytes(),
        stack: c.stack_bytes(),
        tsc_mhz: 0,
    }
}
