//! The stock `iperf3` client against `iperf-hosted` over a TAP device, inside a private
//! network namespace this test creates (and always removes).
//!
//! Skips (passing, with a printed reason) when not root or when `ip` or `iperf3` is
//! missing.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

const TAP: &str = "tesstap0";
const HOST_CIDR: &str = "10.77.0.1/24";
const GUEST_IP: &str = "10.77.0.2";

fn tool(name: &str) -> Option<String> {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|path| Path::new(path).exists())
}

/// The namespace and the server in it; dropping kills the server and deletes both
/// (the TAP device goes with the server process).
struct Setup {
    ip: String,
    namespace: String,
    server: Option<Child>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = Command::new(&self.ip)
            .args(["netns", "del", &self.namespace])
            .status();
    }
}

impl Setup {
    fn ip_ns(&self, args: &[&str]) -> bool {
        Command::new(&self.ip)
            .arg("-n")
            .arg(&self.namespace)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs the stock client in the namespace (bounded by `timeout`), returns its JSON.
    /// Tests run for one second unless `extra` limits bytes (`-n`) or blocks (`-k`).
    fn client(&self, iperf3: &str, extra: &[&str]) -> (Output, Value) {
        let limited = extra.iter().any(|a| *a == "-n" || *a == "-k");
        let time: &[&str] = if limited { &[] } else { &["-t", "1"] };
        let output = Command::new("timeout")
            .args([
                "30",
                &self.ip,
                "netns",
                "exec",
                &self.namespace,
                iperf3,
                "-c",
                GUEST_IP,
                "-J",
            ])
            .args(time)
            .args(extra)
            .output()
            .expect("run iperf3");
        let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "iperf3 {extra:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        (output, json)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
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
    let mut setup = Setup {
        ip: ip.clone(),
        namespace: format!("tessiperf{}", std::process::id()),
        server: None,
    };
    assert!(
        Command::new(&ip)
            .args(["netns", "add", &setup.namespace])
            .status()
            .unwrap()
            .success(),
        "ip netns add"
    );
    let server = Command::new(&ip)
        .args([
            "netns",
            "exec",
            &setup.namespace,
            env!("CARGO_BIN_EXE_iperf-hosted"),
        ])
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
    setup.server = Some(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !setup.ip_ns(&["link", "show", TAP]) {
        assert!(Instant::now() < deadline, "TAP device never appeared");
        sleep(Duration::from_millis(20));
    }
    assert!(setup.ip_ns(&["addr", "add", HOST_CIDR, "dev", TAP]));
    assert!(setup.ip_ns(&["link", "set", TAP, "up"]));
    assert!(setup.ip_ns(&["link", "set", "lo", "up"]));

    for (args, streams) in [
        (&[][..], 1),
        (&["-P", "4"][..], 4),
        (&["-R"][..], 1),
        (&["-l", "8K", "-b", "50M"][..], 1),
    ] {
        let (output, json) = setup.client(&iperf3, args);
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
        let (output, json) = setup.client(&iperf3, args);
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
    let (_, json) = setup.client(&iperf3, &["-u"]);
    let error = json["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not implemented"),
        "unexpected error: {json}"
    );

    // The server stops by itself after its nine tests.
    let deadline = Instant::now() + Duration::from_secs(10);
    let server = setup.server.as_mut().unwrap();
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "iperf-hosted exited with {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "iperf-hosted did not stop after its tests"
        );
        sleep(Duration::from_millis(50));
    }
}
