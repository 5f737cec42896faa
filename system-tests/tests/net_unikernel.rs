//! The iperf unikernel (systems/net-unikernel.toml) serves the stock iperf3 client over
//! an e1000e with QEMU user networking: `iperf3 -c 127.0.0.1 -p PORT -t 2 -J` completes and
//! the server received bytes. PORT is a free host port forwarded to the guest's 5201.

use std::process::Command;
use std::time::Duration;

#[test]
fn stock_iperf3_client_completes_a_test() {
    if Command::new("iperf3").arg("--version").output().is_err() {
        eprintln!("iperf3 is not installed: skipped");
        return;
    }
    let (session, port) = system_tests::boot_iperf_unikernel("net-unikernel", "e1000e");
    let iperf3 = |extra: &[&str]| {
        let mut args = vec!["60", "iperf3", "-c", "127.0.0.1", "-t", "2", "-J"];
        let port = port.to_string();
        args.extend(["-p", &port]);
        args.extend(extra);
        let out = Command::new("timeout")
            .args(&args)
            .output()
            .expect("run iperf3");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    for (what, extra) in [
        ("normal", &[][..]),
        ("reverse", &["-R"][..]),
        ("four streams", &["-P", "4"][..]),
    ] {
        let (ok, json) = iperf3(extra);
        system_tests::assert_iperf3_received(what, ok, &json, &session.output());
    }
    // UDP is refused cleanly, and the server goes on serving. (iperf3 3.12 exits 0 with
    // -J even when the server refuses; its report carries the error.)
    let (_, json) = iperf3(&["-u"]);
    assert!(
        json.contains("not implemented"),
        "UDP must be refused: {json}"
    );
    let (ok, json) = iperf3(&[]);
    assert!(
        ok && system_tests::iperf3_received_bytes(json.trim()).is_some_and(|b| b > 0),
        "after UDP: {json}"
    );
    session
        .wait_for("iperf: done:", Duration::from_secs(20))
        .expect("the server reports the test");
}
