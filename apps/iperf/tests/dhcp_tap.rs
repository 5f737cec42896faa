//! `iperf-hosted --dhcp` leases its address from `dnsmasq` over a TAP device, inside a
//! private network namespace this test creates (and always removes), then serves the
//! stock `iperf3` client at that address.
//!
//! Skips (passing, with a printed reason) when not root or when `ip`, `iperf3` or
//! `dnsmasq` is missing.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use serde_json::Value;

const TAP: &str = "tessdhcp0";
const HOST_CIDR: &str = "10.77.5.1/24";
const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 5, 1);
const POOL: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::new(10, 77, 5, 50), Ipv4Addr::new(10, 77, 5, 59));

fn tool(name: &str) -> Option<String> {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|path| Path::new(path).exists())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The namespace with the server and dnsmasq in it; dropping kills both and deletes
/// the namespace (the TAP device goes with the server process).
struct Setup {
    ip: String,
    namespace: String,
    children: Vec<Child>,
    lease_file: std::path::PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new(&self.ip)
            .args(["netns", "del", &self.namespace])
            .status();
        let _ = std::fs::remove_file(&self.lease_file);
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

    fn spawn_in_ns(&self, program: &str, args: &[&str], stdout: Stdio) -> Child {
        Command::new(&self.ip)
            .args(["netns", "exec", &self.namespace, program])
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"))
    }
}

/// Parses the server's lease line: "iperf-hosted: DHCP lease A/P, gateway G".
fn parse_lease(line: &str) -> Option<(Ipv4Addr, u8, String)> {
    let rest = line.strip_prefix("iperf-hosted: DHCP lease ")?;
    let (cidr, gateway) = rest.split_once(", gateway ")?;
    let (address, prefix) = cidr.split_once('/')?;
    Some((
        address.parse().ok()?,
        prefix.parse().ok()?,
        gateway.trim().to_string(),
    ))
}

#[test]
fn lease_line_parses() {
    assert_eq!(
        parse_lease("iperf-hosted: DHCP lease 10.77.5.50/24, gateway 10.77.5.1"),
        Some((Ipv4Addr::new(10, 77, 5, 50), 24, "10.77.5.1".to_string()))
    );
    assert_eq!(parse_lease("iperf-hosted: TAP x as 1.2.3.4/24"), None);
}

#[test]
fn dhcp_lease_from_dnsmasq_then_stock_iperf3() {
    let (Some(ip), Some(iperf3), Some(dnsmasq)) = (tool("ip"), tool("iperf3"), tool("dnsmasq"))
    else {
        println!("skipping: `ip`, `iperf3` or `dnsmasq` not installed");
        return;
    };
    if !is_root() {
        println!("skipping: needs root for network namespaces and TAP devices");
        return;
    }
    let namespace = format!("tessdhcp{}", std::process::id());
    let mut setup = Setup {
        ip: ip.clone(),
        lease_file: std::env::temp_dir().join(format!("{namespace}.leases")),
        namespace,
        children: Vec::new(),
    };
    assert!(
        Command::new(&ip)
            .args(["netns", "add", &setup.namespace])
            .status()
            .unwrap()
            .success(),
        "ip netns add"
    );
    let mut server = setup.spawn_in_ns(
        env!("CARGO_BIN_EXE_iperf-hosted"),
        &["--tap", TAP, "--dhcp", "--max-tests", "1"],
        Stdio::piped(),
    );
    let stdout = server.stdout.take().expect("piped stdout");
    setup.children.push(server);
    let (lines_tx, lines_rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !setup.ip_ns(&["link", "show", TAP]) {
        assert!(Instant::now() < deadline, "TAP device never appeared");
        sleep(Duration::from_millis(20));
    }
    assert!(setup.ip_ns(&["addr", "add", HOST_CIDR, "dev", TAP]));
    assert!(setup.ip_ns(&["link", "set", TAP, "up"]));
    assert!(setup.ip_ns(&["link", "set", "lo", "up"]));
    let range = format!("--dhcp-range={},{},255.255.255.0,10m", POOL.0, POOL.1);
    let lease_file = format!("--dhcp-leasefile={}", setup.lease_file.display());
    let interface = format!("--interface={TAP}");
    let router = format!("--dhcp-option=option:router,{HOST_IP}");
    let dnsmasq = setup.spawn_in_ns(
        &dnsmasq,
        &[
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
            "--bind-interfaces",
            &interface,
            &range,
            &router,
            &lease_file,
            "--dhcp-authoritative",
        ],
        Stdio::null(),
    );
    setup.children.push(dnsmasq);

    // The server prints its lease once DHCP configured the interface.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (address, prefix, gateway) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines_rx
            .recv_timeout(left)
            .expect("no DHCP lease line from iperf-hosted within 30 s");
        if let Some(lease) = parse_lease(&line) {
            break lease;
        }
    };
    assert!(
        (POOL.0..=POOL.1).contains(&address),
        "{address} is outside the pool"
    );
    assert_eq!(prefix, 24);
    assert_eq!(gateway, HOST_IP.to_string());

    let output = Command::new("timeout")
        .args(["30", &ip, "netns", "exec", &setup.namespace, &iperf3])
        .args(["-c", &address.to_string(), "-t", "1", "-J"])
        .output()
        .expect("run iperf3");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "iperf3 printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert!(json.get("error").is_none(), "iperf3: {json}");
    let received = json["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(received > 0, "no bytes: {json}");

    // The server stops by itself after its one test.
    let deadline = Instant::now() + Duration::from_secs(10);
    let server = &mut setup.children[0];
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "iperf-hosted exited with {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "iperf-hosted did not stop after its test"
        );
        sleep(Duration::from_millis(50));
    }
}
