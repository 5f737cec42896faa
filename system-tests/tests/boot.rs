//! Boots the default image once and checks what the root task reports: the boot
//! summary, the second thread, IPC, the invalid invocation and the fault report.

use std::sync::OnceLock;
use system_tests::{boot_to_halt, lines_with};
use xtask::qemu::Outcome;

fn run() -> &'static (String, Outcome) {
    static RUN: OnceLock<(String, Outcome)> = OnceLock::new();
    RUN.get_or_init(|| boot_to_halt("boot"))
}

fn output() -> &'static str {
    &run().0
}

fn check_passed(name: &str) {
    let results = lines_with(output(), &format!("CHECK {name}: "));
    assert_eq!(
        results.len(),
        1,
        "expected one `CHECK {name}` line in:\n{}",
        output()
    );
    assert!(
        results[0].starts_with("PASS"),
        "CHECK {name}: {}",
        results[0]
    );
}

#[test]
fn system_halts_with_status_zero() {
    assert_eq!(run().1, Outcome::Exited(0), "output:\n{}", output());
    assert!(output().contains("root: all checks passed"), "{}", output());
}

#[test]
fn boot_summary_reports_memory_untypeds_slots_and_devices() {
    let out = output();
    let ram = lines_with(out, "memory: ");
    assert_eq!(ram.len(), 1, "{out}");
    // "memory: 503 MiB RAM in 41 untypeds, ..." — QEMU is given 512 MiB.
    let mib: u64 = ram[0].split_whitespace().next().unwrap().parse().unwrap();
    assert!((400..=512).contains(&mib), "RAM {mib} MiB: {}", ram[0]);
    let slots = lines_with(out, "free slots: ");
    assert_eq!(slots.len(), 1, "{out}");
    let range: Vec<u64> = slots[0]
        .split(|c: char| !c.is_ascii_hexdigit() && c != 'x')
        .filter_map(|w| w.strip_prefix("0x"))
        .map(|h| u64::from_str_radix(h, 16).unwrap())
        .collect();
    assert!(
        range.len() >= 2 && range[0] < range[1],
        "free slots: {}",
        slots[0]
    );
    assert!(
        !lines_with(out, "device region ").is_empty(),
        "no device regions listed:\n{out}"
    );
    let tsc = lines_with(out, "tsc: ");
    assert_eq!(tsc.len(), 1, "{out}");
}

#[test]
fn second_thread_runs_and_signals() {
    check_passed("second-thread");
    check_passed("notification");
    check_passed("call-reply");
}

#[test]
fn ipc_round_trip_is_measured() {
    let lines = lines_with(output(), "ipc round trip: median ");
    assert_eq!(lines.len(), 1, "{}", output());
    let cycles: u64 = lines[0].split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        cycles > 0 && cycles < 10_000_000,
        "implausible round trip: {cycles} cycles"
    );
    assert!(lines[0].contains("10000 iterations"), "{}", lines[0]);
}

#[test]
fn invalid_invocation_returns_the_kernel_error() {
    check_passed("invalid-invocation");
    let line = lines_with(output(), "CHECK invalid-invocation: ")[0];
    assert!(line.contains("InvalidArgument"), "{line}");
    check_passed("empty-slot-lookup");
}

#[test]
fn fault_is_reported_in_one_readable_line() {
    let faults = lines_with(output(), "fault: ");
    assert_eq!(faults.len(), 1, "{}", output());
    assert!(
        faults[0].starts_with("component=root.worker kind=VmFault addr=0xdead0000"),
        "{}",
        faults[0]
    );
    check_passed("fault-report");
}
