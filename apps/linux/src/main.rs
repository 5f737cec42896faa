//! The linux component: runs Debian's unmodified static busybox on the library OS.
//!
//! Wiring only. The program's file (embedded at build time from the `busybox-static`
//! package) becomes `/bin/busybox` in a read-only tree; `libos_linux` loads it at its
//! fixed address with every `syscall` rewritten, builds its stack and serves its system
//! calls over [`libos_sel4::linux::Sel4Platform`] (pages from this component's budget).
//! Arguments: `argv` (space-separated; default `busybox echo hello from busybox`),
//! `trace` (`true`: one line per system call), `bench_null` (rounds: first time that many
//! rewritten null system calls and print a `BENCH linux_null_syscall` line as
//! `microbench` does). Prints `linux: loaded ...` and then what
//! the program prints; the program's `exit_group` ends the component with its status.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use libos_linux::fs::{Node, Tree};
use libos_linux::{Config, Linux};
use libos_sel4::device::setup;
use libos_sel4::linux::Sel4Platform;
use proto::naming::NamingClient;
use proto::sel4_transport::EndpointTransport;
use proto::Name;
use rt::println;
use rt::slots_alloc::Slots;
use rt::startinfo::{slots, StartInfo};
use vspace::VSpace;

rt::entry!(main);

/// The program, as Debian ships it.
static BUSYBOX: &[u8] = include_bytes!(env!("TESSERA_BUSYBOX"));
/// Where it is in the program's file tree.
const PATH: &str = "/bin/busybox";
/// 1 MiB blocks of memory the component may ask `memory` for (16 MiB): the program's
/// pages. The rest of the budget is the heap (the loader's copies, /tmp) and the image.
const BLOCKS: usize = 16;

/// The FS-base helper thread's stack.
static mut HELPER_STACK: [u8; 16384] = [0; 16384];

#[allow(unsafe_code, reason = "hands the helper thread its stack, once")]
fn helper_stack() -> &'static mut [u8] {
    // SAFETY: called once, before the helper exists; nothing else names the array.
    unsafe { &mut *core::ptr::addr_of_mut!(HELPER_STACK) }
}

fn main(info: &'static StartInfo) {
    let argv_text = info
        .arg("argv")
        .unwrap_or("busybox echo hello from busybox");
    let argv: Vec<&str> = argv_text.split_whitespace().collect();
    let mut free = Slots::new();
    let memory_slot = free.alloc().expect("a free slot");
    let mut naming = NamingClient::new(EndpointTransport::receiving(slots::NAMING, memory_slot));
    let memory = setup("linux", "look up memory", || {
        naming.lookup(Name::new("memory").expect("a valid name"))
    })
    .endpoint
    .0;
    let pool = libos_sel4::budget::pool_of(free, memory, BLOCKS, 20, "linux");
    let priority = u8::try_from(info.priority).unwrap_or(0);
    let platform = Sel4Platform::new(pool, VSpace::own(), info.tsc_mhz, priority, helper_stack())
        .unwrap_or_else(|e| rt::fail("linux", "set up the platform", format_args!("{e:?}")));
    let mut tree = Tree::new();
    tree.add(PATH, Node::File(BUSYBOX));
    let config = Config {
        trace: info.arg("trace") == Some("true"),
        budget: (BLOCKS as u64) << 20,
        ..Config::default()
    };
    let mut linux = Linux::new(platform, tree, PATH, config);
    let start = linux
        .exec(PATH, &argv, &["PATH=/bin", "HOME=/"])
        .unwrap_or_else(|e| rt::fail("linux", "load the program", format_args!("{e:?}")));
    println!(
        "linux: loaded {PATH} ({} KiB, {} syscall sites rewritten), running `{argv_text}`",
        BUSYBOX.len() / 1024,
        start.rewritten
    );
    if let Some(rounds) = info.arg("bench_null") {
        // The way in, measured (`cargo xtask bench micro`): rewritten `getpid` calls.
        let Some(rounds) = rounds
            .parse::<usize>()
            .ok()
            .filter(|r| (1..=1_000_000).contains(r))
        else {
            rt::fail("linux", "start", "bench_null: not 1..=1000000")
        };
        libos_sel4::linux::install(linux);
        let mut samples = alloc::vec![0u64; rounds];
        libos_sel4::linux::time_null_syscalls(&mut samples[..rounds.min(100)]);
        libos_sel4::linux::time_null_syscalls(&mut samples);
        match microbench::Summary::of(&mut samples) {
            Some(summary) => println!(
                "{}",
                microbench::Report {
                    name: "linux_null_syscall",
                    summary
                }
            ),
            None => println!("BENCH-ERROR linux_null_syscall: no samples"),
        }
        libos_sel4::linux::enter(start)
    }
    libos_sel4::linux::run(linux, start)
}
