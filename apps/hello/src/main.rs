//! A small demo component. It prints its greeting (argument `greeting`), then asks
//! naming for each service in its `expect` argument (comma-separated) and for each
//! in `refused`: a routed service must be found (its provider may still be starting,
//! so it asks a few times), an unrouted or unknown one must be refused with the same
//! `NotFound`. Each answer is a `CHECK hello-lookup-NAME: PASS|FAIL` line.
//! With `shared = REGION` and `slot = N` (0..=7) it maps the shared region through `memory`
//! (it must route to `memory` and join the region), writes its name at byte 64*N, and waits
//! for a peer's name in another slot: `CHECK hello-shared-REGION: PASS (peer NAME)`, the
//! proof that two components see the same frames.
//! Then it ends the way its `fault` argument says, to show how proc reports each end:
//! `yes` touches an unmapped address (a VM fault), `panic` panics, `oom` allocates until
//! the heap is exhausted, `stack` recurses until the stack overflows. With `exit = N` it
//! exits with status N; otherwise it stays resident, waiting on its notification.

#![no_std]
#![no_main]

extern crate alloc;

use proto::naming::{Error, NamingClient};
use proto::sel4_transport::{EndpointTransport, ReceiveSlot};
use proto::Name;
use rt::println;
use rt::startinfo::{slots, StartInfo};

rt::entry!(main);

/// Where looked-up endpoints arrive.
const RECEIVE: u64 = slots::FIRST_FREE;
/// Times a routed lookup is retried while its provider starts.
const ATTEMPTS: usize = 200;

fn main(info: &'static StartInfo) {
    println!(
        "{}: {}",
        info.name(),
        info.arg("greeting").unwrap_or("hello")
    );

    let mut transport = EndpointTransport::new(slots::NAMING);
    transport.receive_into(ReceiveSlot::own(RECEIVE));
    let mut naming = NamingClient::new(transport);
    let own = sel4::Cap::<sel4::cap_type::CNode>::from_raw(slots::CNODE);
    let names = |key| {
        info.arg(key)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };

    for service in names("expect") {
        let Ok(name) = Name::new(service) else {
            println!("CHECK hello-lookup-{service}: FAIL (not a service name)");
            continue;
        };
        let mut result = naming.lookup(name);
        for _ in 1..ATTEMPTS {
            if result != Err(Error::NotFound) {
                break;
            }
            sel4::syscall::yield_now();
            result = naming.lookup(name);
        }
        match result {
            Ok(binding) => {
                println!(
                    "CHECK hello-lookup-{service}: PASS (endpoint in slot {}, generation {})",
                    binding.endpoint.0, binding.generation
                );
                let _ = own.cnode_delete(RECEIVE, 64);
            }
            Err(e) => println!("CHECK hello-lookup-{service}: FAIL ({e:?})"),
        }
    }
    for service in names("refused") {
        let result = Name::new(service)
            .map_err(|_| Error::Malformed)
            .and_then(|n| naming.lookup(n));
        let ok = result.as_ref().err() == Some(&Error::NotFound);
        println!(
            "CHECK hello-refused-{service}: {} ({:?})",
            if ok { "PASS" } else { "FAIL" },
            result.map(|_| ())
        );
        let _ = own.cnode_delete(RECEIVE, 64);
    }
    if let Some(region) = info.arg("shared") {
        let slot: usize = info.arg("slot").and_then(|s| s.parse().ok()).unwrap_or(0);
        share(info.name(), &mut naming, region, slot.min(SHARED_SLOTS - 1));
    }
    println!("{}: done", info.name());
    match info.arg("fault") {
        Some("yes") => {
            #[allow(unsafe_code, reason = "a deliberate fault, for the supervision tests")]
            // SAFETY: not safe, on purpose: nothing is mapped at address 16, so the kernel
            // stops this thread and reports a VM fault to its fault endpoint.
            unsafe {
                core::ptr::read_volatile(16 as *const u64)
            };
        }
        Some("panic") => panic!("asked to panic"),
        Some("oom") => {
            let mut hoard: alloc::vec::Vec<alloc::vec::Vec<u8>> = alloc::vec::Vec::new();
            loop {
                hoard.push(alloc::vec![1; 64 * 1024]);
            }
        }
        Some("stack") => {
            println!("{}: depth {}", info.name(), recurse(0));
        }
        _ => {}
    }
    if let Some(status) = info.arg("exit").and_then(|s| s.parse().ok()) {
        rt::exit(status);
    }
    let own = sel4::Cap::<sel4::cap_type::Notification>::from_raw(slots::NOTIFICATION);
    loop {
        sel4::syscall::wait(own);
    }
}

/// Name slots of 64 bytes at the start of a shared region the `shared` check uses.
const SHARED_SLOTS: usize = 8;

/// Maps shared region `region`, writes `name` into `slot` and waits for a peer's name in
/// another slot; prints one CHECK line.
#[allow(
    unsafe_code,
    reason = "volatile stores and loads in the shared region this function mapped"
)]
fn share(
    name: &'static str,
    naming: &mut NamingClient<EndpointTransport>,
    region: &str,
    slot: usize,
) {
    let check = |verdict: core::fmt::Arguments| println!("CHECK hello-shared-{region}: {verdict}");
    let (Ok(region_name), Ok(memory)) = (Name::new(region), Name::new("memory")) else {
        return check(format_args!("FAIL (not a region name)"));
    };
    let endpoint = match naming.lookup(memory) {
        Ok(binding) => binding.endpoint.0,
        Err(e) => return check(format_args!("FAIL (memory: {e:?})")),
    };
    let mut free = rt::slots_alloc::Slots::new();
    while free.alloc().is_some_and(|s| s <= endpoint) {}
    let mut pool = libos_sel4::budget::pool(free, endpoint, 4, name);
    let mut vspace = vspace::VSpace::own();
    let mapped = libos_sel4::shared::map(&mut pool, &mut vspace, endpoint, region_name, name);
    if mapped.len() < SHARED_SLOTS * 64 {
        return check(format_args!("FAIL (region of {} bytes)", mapped.len()));
    }
    let at = |i: usize| (mapped.base() + i * 64) as *mut u8;
    for (i, byte) in name.bytes().take(63).enumerate() {
        // SAFETY: the region is mapped read-write for the component's life and at least
        // SHARED_SLOTS * 64 bytes long (checked above); `i` < 63 stays inside slot `slot`.
        unsafe { core::ptr::write_volatile(at(slot).add(i), byte) };
    }
    for _ in 0..PEER_WAIT {
        for other in (0..SHARED_SLOTS).filter(|&o| o != slot) {
            let mut peer = [0u8; 63];
            for (i, byte) in peer.iter_mut().enumerate() {
                // SAFETY: as above; reads stay inside slot `other` of the mapped region.
                *byte = unsafe { core::ptr::read_volatile(at(other).add(i)) };
            }
            let len = peer.iter().position(|&b| b == 0).unwrap_or(peer.len());
            if len > 0 {
                let peer = core::str::from_utf8(&peer[..len]).unwrap_or("?");
                return check(format_args!("PASS (peer {peer})"));
            }
        }
        sel4::syscall::yield_now();
    }
    check(format_args!("FAIL (no peer wrote its name)"))
}

/// Yields the `shared` check waits for a peer before it gives up.
const PEER_WAIT: usize = 100_000;

/// Recurses 4 KiB of stack a level, for far longer than any component's stack (1 GiB).
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 4096];
    frame[depth as usize % 4096] = 1;
    // Keep the frame alive past the call, so the recursion is not a loop.
    core::hint::black_box(&mut frame);
    if depth >= 1 << 18 {
        return depth;
    }
    recurse(depth + 1) + u64::from(frame[0])
}
