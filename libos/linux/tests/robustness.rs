//! Hostile arguments: every call with random numbers, pointers at and across the edges of
//! mapped memory, huge sizes and bad flags. The layer must answer each with a value or an
//! errno and never touch memory it has not checked (the fake platform panics if it does).

mod common;

use common::*;
use libos_linux::fs::{Node, Tree};
use libos_linux::{Config, Linux, Platform};

/// Calls made.
const ROUNDS: usize = 200_000;

#[test]
fn random_arguments_never_panic_and_always_get_a_value_or_an_errno() {
    let mut tree = Tree::new();
    tree.add("/etc/hostname", Node::File(b"tessera\n"));
    tree.add(
        "/bin/prog",
        Node::File(leak(static_program(&[0x0f, 0x05, 0xc3], 0x1000))),
    );
    tree.add("/bin/loop", Node::Link("/bin/loop".into()));
    let config = Config {
        budget: 4 << 20,
        tmp_budget: 64 << 10,
        ..Config::default()
    };
    let mut linux = Linux::new(FakePlatform::default(), tree, "/bin/prog", config);
    linux.exec("/bin/prog", &["prog"], &[]).unwrap();
    let scratch = linux.syscall(9, [0, 4 * PAGE, 3, 0x22, u64::MAX, 0]) as u64;
    let paths: [&[u8]; 7] = [
        b"/etc/hostname\0",
        b"/tmp/x\0",
        b"/dev/zero\0",
        b"/\0",
        b"/bin/loop\0",
        b"/proc/self/exe\0",
        b"relative/../etc\0",
    ];
    for (i, path) in paths.iter().enumerate() {
        linux.platform.write(scratch + i as u64 * 64, path);
    }
    let rng = fastrand::Rng::with_seed(0x7e55e7a);
    let numbers: Vec<u64> = (0..335).chain([439, 999, u64::MAX]).collect();
    let mut rng = rng;
    let mut answered = 0;
    let mut succeeded = 0;
    for _ in 0..ROUNDS {
        let number = numbers[rng.usize(..numbers.len())];
        if number == 231 || number == 60 {
            continue; // exit: would end the run early (tested elsewhere)
        }
        let mut args = [0u64; 6];
        for a in &mut args {
            *a = match rng.u8(..10) {
                0 => 0,
                1 => rng.u64(..16),
                2 => scratch + rng.u64(..7) * 64,        // a path
                3 => scratch + rng.u64(..4 * PAGE),      // inside the scratch pages
                4 => scratch + 4 * PAGE - rng.u64(..32), // across the end of them
                5 => rng.u64(..2 * PAGE),                // page 0 and the page after
                6 => u64::MAX - rng.u64(..4096),         // negative numbers, wrap-around
                7 => 1 << rng.u32(..64),
                8 => rng.u64(..),
                _ => -100i64 as u64, // AT_FDCWD
            };
        }
        let result = linux.syscall(number, args);
        assert!(
            result >= 0 || (-4095..0).contains(&result),
            "call {number} {args:x?} gave {result}"
        );
        answered += 1;
        if result >= 0 {
            succeeded += 1;
        }
        assert!(linux.memory.used() <= linux.memory.budget());
    }
    assert!(answered > ROUNDS * 9 / 10);
    println!("{answered} calls, {succeeded} succeeded");
    assert!(
        succeeded > ROUNDS / 50,
        "the run reaches past the argument checks"
    );
    // Still serving afterwards: with the mmap window emptied and every descriptor
    // closed, a fresh mapping, an open and a read work.
    let layout = libos_linux::Layout::default();
    let window = layout.mmap_high - layout.mmap_low;
    assert_eq!(linux.syscall(11, [layout.mmap_low, window, 0, 0, 0, 0]), 0);
    for fd in 0..1024 {
        linux.syscall(3, [fd, 0, 0, 0, 0, 0]);
    }
    let page = linux.syscall(9, [0, PAGE, 3, 0x22, u64::MAX, 0]);
    assert!(page > 0, "{page}");
    let page = page as u64;
    linux.platform.write(page, b"/etc/hostname\0");
    assert_eq!(linux.syscall(257, [-100i64 as u64, page, 0, 0, 0, 0]), 0);
    assert_eq!(linux.syscall(0, [0, page + 64, 7, 0, 0, 0]), 7);
    assert_eq!(linux.platform.bytes(page + 64, 7), b"tessera");
}
