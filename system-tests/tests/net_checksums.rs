//! Received checksums over `--net tap` (needs root, python3 and iperf3; skipped otherwise):
//! frames from the host whose IPv4 header or TCP checksum is wrong are dropped and counted
//! (`iperf: rx_malformed N, rx_bad_checksum M, ...`) on both NICs: the e1000e verifies
//! them itself (RXCSUM) and hands the bad ones over as "verified by nobody", virtio-net
//! (CSUM and GUEST_CSUM negotiated over TAP) marks them neither checked nor partial, and
//! in both cases the library OS checks what the device did not. A normal iperf3 test shows
//! the devices' verdicts used (`rx_checksum_offloaded` grows), and a test in each
//! direction succeeds afterwards (the reverse one with virtio-net's transmit checksums
//! completed by the device).

use std::time::{Duration, Instant};
use system_tests::{have_iperf3, last_number_after, run_iperf3, system_image};
use xtask::qemu::{Boot, Session};

/// Sends `count` frames to the guest (MAC 52:54:00:12:34:56, 10.0.2.15:5201) from a raw
/// socket on `tap`: alternately a TCP segment whose TCP checksum is off by one and one
/// whose IPv4 header checksum is, 2 ms apart.
const SEND_BAD_CHECKSUMS: &str = r#"
import socket, struct, sys, time
tap, count = sys.argv[1], int(sys.argv[2])
def csum(data):
    if len(data) % 2: data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src, dst = bytes([10, 0, 2, 2]), bytes([10, 0, 2, 15])
payload = b"bad checksum"
tcp = struct.pack("!HHIIBBHHH", 40000, 5201, 1, 0, 5 << 4, 0x10, 1000, 0, 0) + payload
tcp_sum = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
def ip(tcp_sum, ip_off):
    seg = tcp[:16] + struct.pack("!H", tcp_sum) + tcp[18:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 1, 0, 64, 6, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", (csum(hdr) + ip_off) & 0xffff) + hdr[12:]
    return bytes.fromhex("525400123456" "020000000001" "0800") + hdr + seg
bad = [ip((tcp_sum + 1) & 0xffff, 0), ip(tcp_sum, 1)]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((tap, 0))
for i in range(count):
    s.send(bad[i % 2])
    time.sleep(0.002)
"#;

fn boot_over_tap(system: &str, model: &str) -> Session {
    let (kernel, root) = system_image(system);
    let log = xtask::target_dir()
        .join("logs")
        .join(format!("{system}-checksums.log"));
    let mut boot = Boot::new(kernel, root, log);
    boot.timeout = Duration::from_secs(600);
    boot.extra = vec![
        "-device".into(),
        format!("{model},netdev=n0"),
        "-netdev".into(),
        format!(
            "tap,id=n0,ifname={},script=no,downscript=no",
            xtask::qemu::net::tap_name(0)
        ),
    ];
    let session = Session::start(&boot, false).unwrap_or_else(|e| panic!("QEMU starts: {e}"));
    session
        .wait_for("iperf: listening on port 5201", Duration::from_secs(120))
        .unwrap_or_else(|e| {
            panic!(
                "the iperf component did not come up: {e}\n{}",
                session.output()
            )
        });
    session
}

fn can_run() -> bool {
    if !have_iperf3() {
        eprintln!("iperf3 is not installed: skipped");
        return false;
    }
    if let Err(e) = xtask::qemu::net::require_root() {
        eprintln!("{e}: skipped");
        return false;
    }
    let python = std::process::Command::new("python3")
        .args(["-c", "import socket; socket.AF_PACKET"])
        .output();
    if python.map_or(true, |o| !o.status.success()) {
        eprintln!("python3 (for raw frames) is not installed: skipped");
        return false;
    }
    true
}

/// Boots `system`, runs a test, sends bad frames and checks they are counted; returns the
/// serial output.
fn bad_checksums_are_dropped_and_counted(system: &str, model: &str) -> String {
    let session = boot_over_tap(system, model);
    let ns = session
        .tap_net()
        .expect("a TAP boot has a namespace")
        .name()
        .to_string();
    let client = |extra: &[&str]| {
        let mut argv: Vec<String> = [
            "ip",
            "netns",
            "exec",
            &ns,
            "iperf3",
            "-c",
            "10.0.2.15",
            "-J",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.extend(extra.iter().map(|s| s.to_string()));
        run_iperf3(&argv, 30)
    };
    let (ok, out) = client(&["-t", "1"]);
    assert!(
        ok,
        "a test over TAP failed:\n{out}\nserial:\n{}",
        session.output()
    );
    let before = last_number_after(&session.output(), "rx_bad_checksum").unwrap_or(0);

    const COUNT: u64 = 200;
    let sent = std::process::Command::new("ip")
        .args(["netns", "exec", &ns, "python3", "-c", SEND_BAD_CHECKSUMS])
        .arg(xtask::qemu::net::tap_name(0))
        .arg(COUNT.to_string())
        .output()
        .expect("run python3");
    assert!(
        sent.status.success(),
        "sending raw frames failed: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let counted = loop {
        let now = last_number_after(&session.output(), "rx_bad_checksum").unwrap_or(0);
        if now >= before + COUNT || Instant::now() >= deadline {
            break now - before;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        counted,
        COUNT,
        "frames with bad checksums counted (of {COUNT} sent):\n{}",
        session.output()
    );
    for extra in [&["-t", "1"][..], &["-t", "1", "-R"][..]] {
        let (ok, out) = client(extra);
        assert!(
            ok,
            "{extra:?} after bad frames failed:\n{out}\nserial:\n{}",
            session.output()
        );
    }
    session.output()
}

#[test]
fn the_e1000e_verifies_checksums_and_bad_ones_are_counted() {
    if !can_run() {
        return;
    }
    let output = bad_checksums_are_dropped_and_counted("net-unikernel", "e1000e");
    let offloaded = last_number_after(&output, "rx_checksum_offloaded:").unwrap_or(0);
    assert!(
        offloaded > 1000,
        "the device's verdicts were used for the test's segments ({offloaded}):\n{output}"
    );
}

#[test]
fn virtio_net_offloads_checksums_over_tap_and_unchecked_frames_are_verified() {
    if !can_run() {
        return;
    }
    let output = bad_checksums_are_dropped_and_counted("net-unikernel-virtio", "virtio-net-pci");
    assert!(
        output.contains("iperf: nic0 virtio-net offloads: csum on, guest_csum on"),
        "QEMU offers CSUM and GUEST_CSUM over TAP and the driver takes them:\n{output}"
    );
    // GUEST_CSUM: the host's segments come partial or checked and are not verified again;
    // the raw frames with bad checksums came unchecked and were dropped (above).
    let offloaded = last_number_after(&output, "rx_checksum_offloaded:").unwrap_or(0);
    assert!(
        offloaded > 1000,
        "the device's checksum flags were used ({offloaded}):\n{output}"
    );
}
