//! `iperf-hosted --dhcp` leases its address from `dnsmasq` over a TAP device, inside a
//! private network namespace this test creates (and always removes), then serves the
//! stock `iperf3` client at that address.
//!
//! Skips (passing, with a printed reason) when not root or when `ip`, `iperf3` or
//! `dnsmasq` is missing.

mod netns;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netns::{is_root, tool, Namespace};

const TAP: &str = "tessdhcp0";
const HOST_CIDR: &str = "10.77.5.1/24";
const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 5, 1);
const POOL: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::new(10, 77, 5, 50), Ipv4Addr::new(10, 77, 5, 59));

/// Starts `program` in the namespace, its stderr discarded.
fn spawn_in_ns(setup: &Namespace, program: &str, args: &[&str], stdout: Stdio) -> Child {
    setup
        .exec(program)
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"))
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
    let lease_file = std::env::temp_dir().join(format!("{namespace}.leases"));
    let mut setup = Namespace::new(&ip, namespace);
    setup.files.push(lease_file.clone());
    let mut server = spawn_in_ns(
        &setup,
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
    setup.host_side(TAP, HOST_CIDR);
    let range = format!("--dhcp-range={},{},255.255.255.0,10m", POOL.0, POOL.1);
    let lease_file = format!("--dhcp-leasefile={}", lease_file.display());
    let interface = format!("--interface={TAP}");
    let router = format!("--dhcp-option=option:router,{HOST_IP}");
    let dnsmasq = spawn_in_ns(
        &setup,
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

    let (_, json) = setup.client(&iperf3, &address.to_string(), &["-t", "1"]);
    assert!(json.get("error").is_none(), "iperf3: {json}");
    let received = json["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(received > 0, "no bytes: {json}");

    // The server stops by itself after its one test.
    setup.server_stops();
}
