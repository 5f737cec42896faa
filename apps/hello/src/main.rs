//! A small demo component. It prints its greeting (argument `greeting`), then asks
//! naming for each service in its `expect` argument (comma-separated) and for each
//! in `refused`: a routed service must be found (its provider may still be starting,
//! so it asks a few times), an unrouted or unknown one must be refused with the same
//! `NotFound`. Each answer is a `CHECK hello-lookup-NAME: PASS|FAIL` line.
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
    println!("{}: done", info.name());
    match info.arg("fault") {
        Some("yes") => {
            // SAFETY: not safe, on purpose: nothing is mapped at address 16, so the kernel
            // stops this thread and reports a VM fault to its fault endpoint.
            #[allow(unsafe_code, reason = "a deliberate fault, for the supervision tests")]
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
