//! Soak case `flood`: the connection flood against the seL4 iperf unikernel
//! (systems/net-unikernel.toml under QEMU user networking, the guest's port 5201 forwarded
//! from a free host port on 127.0.0.1). It opens `connections` TCP connections and keeps
//! them idle, then runs a normal `iperf3 -c` test while they are held, then closes them and
//! runs one more, and a reverse test with 8 streams of 1 MiB blocks (`-R -P 8 -l 1M`, the
//! other way to ask the server for a lot of memory at once).
//!
//! tried = the normal tests (3), survived = those that succeeded, crashed = panic and fault
//! reports of the component; notes say how many connections opened and whether proc
//! restarted it.

use super::{shell, Case, CaseResult};
use crate::qemu::{Boot, Session};
use crate::Result;
use kernel_support::Variant;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The system booted.
pub const SYSTEM: &str = "systems/net-unikernel.toml";
/// The component holding the server.
pub const COMPONENT: &str = "iperf";
/// How long the idle connections are held before the normal test.
pub const HOLD: Duration = Duration::from_secs(5);
/// Seconds of the normal test.
pub const TEST_SECONDS: u64 = 3;

/// The bytes `iperf3 -J` reports as received (`end.sum_received.bytes`), if its output is
/// such a report.
pub fn received_bytes(json: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
    value["end"]["sum_received"]["bytes"].as_u64()
}

/// Runs `iperf3 -c 127.0.0.1 -p port` with `extra` arguments for [`TEST_SECONDS`] (30 s
/// at most); `Ok(bytes)` or why it failed.
pub fn normal_test(port: u16, extra: &[&str]) -> std::result::Result<u64, String> {
    let out = std::process::Command::new("timeout")
        .arg("30")
        .args(["iperf3", "-c", "127.0.0.1", "-p", &port.to_string(), "-J"])
        .args(["-t", &TEST_SECONDS.to_string()])
        .args(extra)
        .output()
        .map_err(|e| format!("cannot run iperf3: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match received_bytes(&text) {
        Some(bytes) if out.status.success() && bytes > 0 => Ok(bytes),
        _ => {
            let error = serde_json::from_str::<serde_json::Value>(text.trim())
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.chars().take(200).collect());
            Err(format!("iperf3 failed ({}): {error}", out.status))
        }
    }
}

/// Runs the case with `connections` idle connections.
pub fn run(connections: u64) -> Result<Vec<CaseResult>> {
    if let Err(e) = crate::host::ensure(crate::host::Purpose::Iperf) {
        return Ok(vec![CaseResult::skipped(Case::Flood, COMPONENT, &e)]);
    }
    let image = crate::build::image(
        &Variant::default(),
        Some(&crate::workspace_root().join(SYSTEM)),
    )?;
    let port = crate::qemu::net::free_port()?;
    let mut boot = Boot::new(
        image.kernel.elf32.clone(),
        image.root.clone(),
        crate::target_dir().join("logs/soak-flood.log"),
    );
    boot.timeout = Duration::from_secs(600);
    boot.extra = vec![
        "-device".into(),
        "e1000e,netdev=n0".into(),
        "-netdev".into(),
        format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:5201"),
    ];
    let session = Session::start(&boot, false)?;
    session.wait_for("iperf: listening on port 5201", Duration::from_secs(180))?;
    let clock = Instant::now();
    let mut r = CaseResult::new(Case::Flood, COMPONENT);
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut held = Vec::new();
    let mut failed = 0;
    for _ in 0..connections {
        match TcpStream::connect_timeout(&address, Duration::from_secs(5)) {
            Ok(stream) => held.push(stream),
            Err(_) => failed += 1,
        }
    }
    crate::step(&format!(
        "flood: {} of {connections} idle connections open to 127.0.0.1:{port}; holding them {} s",
        held.len(),
        HOLD.as_secs()
    ));
    r.notes.push(format!(
        "{} of {connections} connections opened ({failed} failed)",
        held.len()
    ));
    std::thread::sleep(HOLD);
    for (what, hold, extra) in [
        ("with the connections held", true, &[][..]),
        ("after closing them", false, &[][..]),
        (
            "in reverse, 8 streams of 1 MiB blocks",
            false,
            &["-R", "-P", "8", "-l", "1M"][..],
        ),
    ] {
        if !hold && !held.is_empty() {
            held.clear();
            std::thread::sleep(Duration::from_secs(2));
        }
        r.tried += 1;
        match normal_test(port, extra) {
            Ok(bytes) => {
                r.survived += 1;
                r.notes
                    .push(format!("normal iperf3 test {what}: ok ({bytes} bytes)"));
            }
            Err(e) => r.notes.push(format!("normal iperf3 test {what}: {e}")),
        }
        crate::step(&format!(
            "[{}] flood: {}",
            super::elapsed(clock),
            r.notes.last().map_or("", String::as_str)
        ));
    }
    let output = session.output();
    r.crashed = (shell::panics(&output) + shell::faults_of(&output, COMPONENT)) as u64;
    let starts = output
        .matches(&format!("proc: started {COMPONENT} (id"))
        .count();
    r.notes.push(format!(
        "proc started {COMPONENT} {starts} time(s) ({} restart(s)); {} panic line(s), {} fault report(s)",
        starts.saturating_sub(1),
        shell::panics(&output),
        shell::faults_of(&output, COMPONENT)
    ));
    if let Some(line) = output
        .lines()
        .find(|l| l.contains("panicked at") || l.contains("panic at"))
    {
        r.notes.push(format!("first panic: {}", line.trim()));
    }
    r.duration_s = clock.elapsed().as_secs_f64();
    Ok(vec![r])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_bytes_come_from_the_json_report() {
        let json = r#"{"start":{},"end":{"sum_received":{"bytes":12345,"seconds":3.0}}}"#;
        assert_eq!(received_bytes(json), Some(12345));
        assert_eq!(received_bytes(r#"{"error":"unable to connect"}"#), None);
        assert_eq!(received_bytes("iperf3: error"), None);
    }
}
