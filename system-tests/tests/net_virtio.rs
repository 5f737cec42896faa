//! The iperf unikernel with a virtio-net NIC (systems/net-unikernel-virtio.toml) serves the
//! stock iperf3 client over QEMU user networking: `iperf3 -c 127.0.0.1 -p PORT -t 2 -J`
//! completes, normal and reverse, and the server received bytes. PORT is a free host port
//! forwarded to the guest's 5201. User networking offers no checksum offloads, so this is
//! also the driver's path without them.

use std::process::Command;
use std::time::Duration;

/// The receiver's rate in Mbit/s, for the log.
fn received_mbits(json: &str) -> Option<f64> {
    let sum = &json[json.find("\"sum_received\"")?..];
    let rate = &sum[sum.find("\"bits_per_second\"")? + "\"bits_per_second\"".len()..];
    let number: String = rate
        .trim_start_matches(|c: char| c == ':' || c.is_whitespace())
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == 'e' || *c == '+')
        .collect();
    number.parse::<f64>().ok().map(|b| b / 1e6)
}

#[test]
fn stock_iperf3_client_completes_a_test_over_virtio_net() {
    if Command::new("iperf3").arg("--version").output().is_err() {
        eprintln!("iperf3 is not installed: skipped");
        return;
    }
    let (session, port) =
        system_tests::boot_iperf_unikernel("net-unikernel-virtio", "virtio-net-pci");
    assert!(
        session.output().contains("iperf: nic0 virtio-net"),
        "the component runs the virtio-net driver:\n{}",
        session.output()
    );
    // User networking has no vnet_hdr: QEMU offers no checksum offloads, and the driver
    // runs without them (every checksum computed and verified by the library OS).
    assert!(
        session
            .output()
            .contains("iperf: nic0 virtio-net offloads: csum off, guest_csum off"),
        "no offloads over user networking:\n{}",
        session.output()
    );
    for (what, extra) in [("normal", &[][..]), ("reverse", &["-R"][..])] {
        let port = port.to_string();
        let mut args = vec![
            "60",
            "iperf3",
            "-c",
            "127.0.0.1",
            "-t",
            "2",
            "-J",
            "-p",
            &port,
        ];
        args.extend(extra);
        let out = Command::new("timeout")
            .args(&args)
            .output()
            .expect("run iperf3");
        let json = String::from_utf8_lossy(&out.stdout).into_owned();
        let bytes = system_tests::assert_iperf3_received(
            what,
            out.status.success(),
            &json,
            &session.output(),
        );
        let trimmed = json.trim();
        eprintln!(
            "virtio-net {what}: {bytes} bytes, {:.0} Mbit/s",
            received_mbits(trimmed).unwrap_or(0.0)
        );
    }
    session
        .wait_for("iperf: done:", Duration::from_secs(20))
        .expect("the server reports the test");
}
