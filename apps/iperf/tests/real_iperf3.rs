//! The stock `iperf3` client against `iperf-hosted` over a TAP device, inside a private
//! network namespace this test creates (and always removes).
//!
//! Skips (passing, with a printed reason) when not root or when `ip` or `iperf3` is
//! missing.

mod netns;

use std::process::{Output, Stdio};

use netns::{is_root, tool, Namespace};
use serde_json::Value;

const TAP: &str = "tesstap0";
const HOST_CIDR: &str = "10.77.0.1/24";
const GUEST_IP: &str = "10.77.0.2";

/// Runs the stock client against the server; tests run for one second unless `extra`
/// limits bytes (`-n`) or blocks (`-k`).
fn client(setup: &Namespace, iperf3: &str, extra: &[&str]) -> (Output, Value) {
    let limited = extra.iter().any(|a| *a == "-n" || *a == "-k");
    let time: &[&str] = if limited { &[] } else { &["-t", "1"] };
    setup.client(iperf3, GUEST_IP, &[time, extra].concat())
}

#[test]
fn stock_iperf3_client_over_tap() {
    let (Some(ip), Some(iperf3)) = (tool("ip"), tool("iperf3")) else {
        println!("skipping: `ip` or `iperf3` not installed");
        return;
    };
    if !is_root() {
        println!("skipping: needs root for network namespaces and TAP devices");
        return;
    }
    let mut setup = Namespace::new(&ip, format!("tessiperf{}", std::process::id()));
    let server = setup
        .exec(env!("CARGO_BIN_EXE_iperf-hosted"))
        .args([
            "--tap",
            TAP,
            "--ip",
            &format!("{GUEST_IP}/24"),
            "--max-tests",
            "9",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start iperf-hosted");
    setup.children.push(server);
    setup.host_side(TAP, HOST_CIDR);

    for (args, streams) in [
        (&[][..], 1),
        (&["-P", "4"][..], 4),
        (&["-R"][..], 1),
        (&["-l", "8K", "-b", "50M"][..], 1),
    ] {
        let (output, json) = client(&setup, &iperf3, args);
        assert!(output.status.success(), "iperf3 {args:?} failed: {json}");
        let end = &json["end"];
        let received = end["sum_received"]["bytes"].as_u64().unwrap_or(0);
        let sent = end["sum_sent"]["bytes"].as_u64().unwrap_or(0);
        assert!(received > 0 && sent > 0, "iperf3 {args:?}: no bytes: {end}");
        assert_eq!(
            json["intervals"][0]["streams"].as_array().map(Vec::len),
            Some(streams)
        );
        let remote_cpu = end["cpu_utilization_percent"]["remote_total"].as_f64();
        assert!(
            remote_cpu.is_some_and(|c| (0.0..=100.0).contains(&c)),
            "remote cpu: {remote_cpu:?}"
        );
        let rate = end["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0);
        println!(
            "iperf3 {args:?}: {:.0} Mbit/s, server CPU {:.1} %",
            rate / 1e6,
            remote_cpu.unwrap_or(0.0)
        );
    }

    // Byte (-n) and block (-k) limits: the client ends the test once it has sent, or
    // with -R received, that much, counting a block per write or read call (however
    // short); a reverse server sends no more than the limit (blocks of `-l` bytes).
    for (args, limit) in [
        (&["-n", "3M"][..], 3 << 20),
        (&["-R", "-n", "3M"][..], 3 << 20),
        (&["-k", "40", "-l", "32K"][..], 40 << 15),
        (&["-R", "-k", "40", "-l", "32K"][..], 40 << 15),
    ] {
        let (output, json) = client(&setup, &iperf3, args);
        assert!(output.status.success(), "iperf3 {args:?} failed: {json}");
        assert!(json.get("error").is_none(), "iperf3 {args:?}: {json}");
        let end = &json["end"];
        let sent = end["sum_sent"]["bytes"].as_u64().unwrap_or(0);
        let received = end["sum_received"]["bytes"].as_u64().unwrap_or(0);
        let (reverse, bytes) = (args.contains(&"-R"), args.contains(&"-n"));
        assert!(sent > 0 && received > 0, "iperf3 {args:?}: no bytes: {end}");
        match (reverse, bytes) {
            (false, true) => assert!(sent >= limit, "iperf3 {args:?}: {end}"),
            (true, true) => {
                assert_eq!(received, limit, "iperf3 {args:?}: {end}");
                assert_eq!(sent, limit, "iperf3 {args:?}: {end}");
            }
            (true, false) => assert!(sent <= limit, "iperf3 {args:?}: overshot: {end}"),
            (false, false) => {}
        }
        println!("iperf3 {args:?}: sent {sent}, received {received} bytes");
    }

    // iperf3 3.12 exits 0 with -J even on errors; the JSON's "error" tells.
    let (_, json) = client(&setup, &iperf3, &["-u"]);
    let error = json["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not implemented"),
        "unexpected error: {json}"
    );

    // The server stops by itself after its nine tests.
    setup.server_stops();
}
