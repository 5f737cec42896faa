//! MSI-X on both NICs (systems/tests/net-msix.toml: e1000e, net-msix-virtio.toml:
//! virtio-net): the component says what it wrote to route the device's interrupts to
//! MSI-X entry 0 (the e1000e's IVAR, virtio's queue vectors, read back from the device),
//! and its STAT lines show NIC interrupts delivered while the stock iperf3 client runs a
//! test, together with the poll loop's counters (polls, polls that moved frames, frames).

use std::process::Command;
use std::time::Duration;

use iperf::stat::{NetStat, Stat};

/// The poll loop's counters in the last whole STAT line of `output` after byte `from`.
fn last_net_stat(output: &str, from: usize) -> Option<NetStat> {
    let text = output.get(from..)?;
    // A line still being printed has no line end yet.
    let whole = &text[..text.rfind('\n')?];
    whole.lines().rev().find_map(Stat::parse)?.net
}

/// Waits (up to 10 s) for a whole STAT line printed after byte `from` of the output.
fn next_net_stat(session: &xtask::qemu::Session, from: usize) -> NetStat {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(stat) = last_net_stat(&session.output(), from) {
            return stat;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no STAT line with the counters:\n{}",
            session.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Boots `system` with `model`, checks its MSI-X line, runs one iperf3 test and returns
/// the counters before and after it.
fn interrupts_during_a_test(system: &str, model: &str, routing: &str) -> (NetStat, NetStat) {
    let (session, port) = system_tests::boot_iperf_unikernel(system, model);
    let output = session.output();
    assert!(
        output.contains("IRQ MsiX"),
        "devices granted an MSI-X interrupt:\n{output}"
    );
    assert!(
        output.contains(routing),
        "the driver routed the device's interrupts to entry 0 ({routing}):\n{output}"
    );
    let before = next_net_stat(&session, 0);
    let argv: Vec<String> = ["iperf3", "-c", "127.0.0.1", "-t", "2", "-J", "-p"]
        .iter()
        .map(|s| s.to_string())
        .chain([port.to_string()])
        .collect();
    let (ok, json) = system_tests::run_iperf3(&argv, 60);
    system_tests::assert_iperf3_received(system, ok, &json, &session.output());
    session
        .wait_for("iperf: done:", Duration::from_secs(20))
        .expect("the server reports the test");
    // The next STAT line comes within a second of the test's end.
    let after = next_net_stat(&session, session.output().len());
    (before, after)
}

fn check(system: &str, model: &str, routing: &str) {
    if Command::new("iperf3").arg("--version").output().is_err() {
        eprintln!("iperf3 is not installed: skipped");
        return;
    }
    let (before, after) = interrupts_during_a_test(system, model, routing);
    let irqs = after.irqs - before.irqs;
    let frames = after.frames - before.frames;
    let busy = after.busy_polls - before.busy_polls;
    eprintln!(
        "{system}: {irqs} interrupts, {frames} frames, {} polls ({busy} busy) during the test",
        after.polls - before.polls
    );
    assert!(
        irqs > 0,
        "MSI-X messages were delivered: {before:?} -> {after:?}"
    );
    assert!(
        frames > 1000,
        "the test moved frames: {before:?} -> {after:?}"
    );
    assert!(
        busy > 0 && busy <= after.polls - before.polls,
        "busy polls are counted among the polls: {before:?} -> {after:?}"
    );
}

#[test]
fn e1000e_interrupts_arrive_as_msix_through_ivar() {
    check(
        "net-msix",
        "e1000e",
        "iperf: nic0 MSI-X: IVAR 0x80080808 (every cause to vector 0)",
    );
}

#[test]
fn virtio_net_queue_interrupts_arrive_as_msix() {
    check(
        "net-msix-virtio",
        "virtio-net-pci",
        "iperf: nic0 MSI-X: receive queue vector 0, transmit queue vector 0",
    );
}
