//! Running one benchmarked system: building its image or guest, booting it behind a TAP
//! device, and measuring iperf3 runs against it.

use super::plan::{Composition, Os, Plan, SystemSpec, SETUP_S, STAT_MS};
use crate::bench::shared::{
    self, clock_ticks_per_second, guest_net_rates, guest_utilisation, process_cpu_seconds,
};
use crate::linux::{self, Nic};
use crate::qemu::net::{tap_name, Mode};
use crate::qemu::{Boot, Session};
use crate::{build, step, workspace_root, Result};
use iperf::stat::NetRates;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The line a Tessera iperf component prints once it listens on `port`.
fn tessera_ready(port: u16) -> String {
    format!("iperf: listening on port {port}")
}

/// One measured run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Receiver-side throughput over the whole run, Mbit/s.
    pub throughput_mbps: f64,
    /// Sender-side throughput over the report intervals inside the window, Mbit/s.
    pub sender_window_mbps: Option<f64>,
    /// Guest CPU utilisation over the window, per cent.
    pub guest_cpu_pct: Option<f64>,
    /// The QEMU process's CPU time over the window, per cent of one host CPU.
    pub host_cpu_pct: f64,
    /// The window's wall-clock length.
    pub window_s: f64,
    /// The guest's poll loop over the window (interrupts/s, frames per busy poll), when its
    /// STAT lines carry the counters (Tessera's do, Linux's do not).
    pub net: Option<NetRates>,
    /// Each client's receiver-side throughput, Mbit/s (one client per iperf3 server of the
    /// system: two for the shared compositions).
    pub clients_mbps: Vec<f64>,
    /// Signals `net` sent its clients per frame its stack moved, over the window (the
    /// shared compositions; from its `report_s` lines).
    pub signals_per_frame: Option<f64>,
}

/// `net`'s report line (`net: frames NetCounters { rx_frames: A, tx_frames: B, .. } server
/// ServerCounters { .., signals: S, .. }`) as (frames, signals); `None` for any other line or
/// one cut short.
pub fn net_report(line: &str) -> Option<(u64, u64)> {
    let rest = line.split("net: frames NetCounters {").nth(1)?;
    let (frames, server) = rest.split_once("server ServerCounters {")?;
    let field = |text: &str, key: &str| -> Option<u64> {
        let after = text.split(&format!("{key}: ")).nth(1)?;
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let moved = field(frames, "rx_frames")? + field(frames, "tx_frames")?;
    server.contains('}').then_some(())?;
    Some((moved, field(server, "signals")?))
}

/// Signals per frame between the first and last of `net`'s report lines in `text`.
pub fn signals_per_frame(text: &str) -> Option<f64> {
    let reports: Vec<(u64, u64)> = text.lines().filter_map(net_report).collect();
    let (first, last) = (reports.first()?, reports.last()?);
    let frames = last.0.checked_sub(first.0)?;
    let signals = last.1.checked_sub(first.1)?;
    (frames > 0).then(|| signals as f64 / frames as f64)
}

impl Run {
    /// The smallest client's share of the throughput, per cent (`None` with one client or
    /// nothing received).
    pub fn min_share_pct(&self) -> Option<f64> {
        if self.clients_mbps.len() < 2 || self.throughput_mbps <= 0.0 {
            return None;
        }
        let least = self
            .clients_mbps
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        Some(100.0 * least / self.throughput_mbps)
    }
}

/// Which way the data flows in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The host's client sends, the guest receives (iperf3's default).
    Normal,
    /// The guest sends (`iperf3 -R`).
    Reverse,
}

/// What an iperf3 `-J` client report says: (receiver Mbit/s over the run, sender Mbit/s
/// over the intervals that lie inside `[from_s, to_s]` of the test).
pub fn parse_iperf3_report(text: &str, from_s: f64, to_s: f64) -> Result<(f64, Option<f64>)> {
    let report: Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("iperf3 printed no JSON report ({e}): {}", text.trim()))?;
    if let Some(error) = report.get("error").and_then(Value::as_str) {
        return Err(format!("iperf3: {error}"));
    }
    let received = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or("the iperf3 report has no end.sum_received.bits_per_second")?;
    let (mut bits, mut secs) = (0.0, 0.0);
    for interval in report["intervals"].as_array().into_iter().flatten() {
        let sum = &interval["sum"];
        let (Some(start), Some(end), Some(bps)) = (
            sum["start"].as_f64(),
            sum["end"].as_f64(),
            sum["bits_per_second"].as_f64(),
        ) else {
            continue;
        };
        if start >= from_s - 0.05 && end <= to_s + 0.05 && end > start {
            bits += bps * (end - start);
            secs += end - start;
        }
    }
    let window = (secs > 0.0).then(|| bits / secs / 1e6);
    Ok((received / 1e6, window))
}

/// A booted system under test.
pub(super) struct Guest {
    session: Session,
    ticks_per_second: u64,
    composition: Composition,
}

impl Guest {
    /// Runs one iperf3 client per server of the system at once (`rate_mbps`: `-b`, shared
    /// equally among them; `None`: unpaced) and measures them together.
    fn measure(&self, plan: &Plan, rate_mbps: Option<f64>, direction: Direction) -> Result<Run> {
        let tap = self
            .session
            .tap_net()
            .ok_or("the system has no TAP network")?;
        let run_s = plan.run_s();
        let ports = self.composition.ports();
        let mut children = Vec::new();
        let started = Instant::now();
        for port in ports {
            let mut cmd = tap.command("timeout");
            cmd.arg((run_s + 30).to_string()).args([
                "iperf3",
                "-c",
                linux::init::GUEST_ADDRESS,
                "-p",
                &port.to_string(),
                "-J",
                "-t",
                &run_s.to_string(),
            ]);
            if let Some(rate) = rate_mbps {
                let each = rate / ports.len() as f64;
                cmd.args(["-b", &format!("{}", (each * 1e6).round() as u64)]);
            }
            if direction == Direction::Reverse {
                cmd.arg("-R");
            }
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            children.push(
                cmd.spawn()
                    .map_err(|e| format!("cannot run iperf3 in the namespace: {e}"))?,
            );
        }
        let pid = self.session.pid();
        sleep_until(started + Duration::from_secs_f64(plan.skip_s()));
        let (out0, cpu0, t0) = (
            self.session.output().len(),
            process_cpu_seconds(pid, self.ticks_per_second),
            Instant::now(),
        );
        sleep_until(t0 + Duration::from_secs_f64(plan.window_s));
        let (out1, cpu1, t1) = (
            self.session.output().len(),
            process_cpu_seconds(pid, self.ticks_per_second),
            Instant::now(),
        );
        // Wait for every client (bounded by `timeout`) before reporting any failure.
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().map_err(|e| e.to_string()))
            .collect::<Result<_>>()?;
        let (cpu0, cpu1) = (cpu0?, cpu1?);
        let window_s = (t1 - t0).as_secs_f64();
        let from = plan.skip_s() - SETUP_S;
        let mut clients_mbps = Vec::new();
        let mut sender_window = Some(0.0);
        for (port, output) in ports.iter().zip(&outputs) {
            let text = String::from_utf8_lossy(&output.stdout);
            let (received, window) = parse_iperf3_report(&text, from, from + plan.window_s)
                .map_err(|e| {
                    format!(
                        "port {port}: {e} {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    )
                })?;
            clients_mbps.push(received);
            sender_window = sender_window.zip(window).map(|(a, b)| a + b);
        }
        let serial = self.session.output();
        let window = serial.get(out0..out1);
        Ok(Run {
            throughput_mbps: clients_mbps.iter().sum(),
            sender_window_mbps: sender_window,
            guest_cpu_pct: window.and_then(guest_utilisation),
            host_cpu_pct: 100.0 * (cpu1 - cpu0) / window_s,
            window_s,
            net: window.and_then(guest_net_rates),
            clients_mbps,
            signals_per_frame: window.and_then(signals_per_frame),
        })
    }
}

fn sleep_until(when: Instant) {
    let now = Instant::now();
    if when > now {
        std::thread::sleep(when - now);
    }
}

/// What a system boots from.
pub(super) enum Prepared {
    Tessera(build::Image),
    Linux(linux::Guest),
}

/// The system description of a Tessera system, written to `target/bench/systems/`: the
/// unikernel for its NIC with its interrupt delivery and `stat_ms`; or a shared composition
/// with `stat_ms` on `net` (the guest's CPU from the kernel's accounting), `report_s` (its
/// counters, for signals per frame) and without the
/// shell (the unikernel has none either, so like is measured against like).
fn tessera_description(spec: &SystemSpec) -> Result<PathBuf> {
    let stat_ms = STAT_MS.to_string();
    let irq = spec.irq.unwrap_or("msi");
    let derived = match spec.composition {
        Composition::Unikernel => {
            let base = match spec.nic {
                "e1000e" => "systems/net-unikernel.toml",
                "virtio-net" => "systems/net-unikernel-virtio.toml",
                other => return Err(format!("no Tessera system for NIC {other}")),
            };
            let text = std::fs::read_to_string(workspace_root().join(base))
                .map_err(|e| format!("{base}: {e}"))?;
            crate::derive::derive_system(&text, base, &spec.name(), irq, &[("stat_ms", &stat_ms)])?
        }
        Composition::Shared | Composition::SharedIsolated => {
            let base = if spec.composition == Composition::Shared {
                "systems/net-shared.toml"
            } else {
                "systems/net-shared-isolated.toml"
            };
            let text = std::fs::read_to_string(workspace_root().join(base))
                .map_err(|e| format!("{base}: {e}"))?;
            let mut d = crate::derive::Description::parse(&text, base)?;
            d.rename(&spec.name())?;
            d.set_args("net", &[("stat_ms", &stat_ms), ("report_s", "1")])?;
            d.remove_component("shell")?;
            d.finish()?
        }
    };
    let dir = shared::dir().join("systems");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{}.toml", spec.name()));
    std::fs::write(&path, derived).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

pub(super) fn prepare(spec: &SystemSpec) -> Result<Prepared> {
    if let Some(why) = spec.known_unsupported() {
        return Err(why.to_string());
    }
    match spec.os {
        Os::Linux => linux::build().map(Prepared::Linux),
        Os::Tessera => {
            let mut variant = kernel_support::Variant::default();
            if spec.irq == Some("pic") {
                variant = variant.with("irq", "pic");
            }
            // Several components are busy in a shared composition: the guest's CPU comes
            // from the kernel's own accounting (`libos_sel4::cpu`).
            if spec.composition != Composition::Unikernel {
                variant = variant.with("bench", "utilisation");
            }
            let description = tessera_description(spec)?;
            build::image(&variant, Some(&description)).map(Prepared::Tessera)
        }
    }
}

/// Boots `prepared` behind a TAP device and waits until its iperf3 servers listen.
pub(super) fn boot(spec: &SystemSpec, prepared: &Prepared, phase: &str) -> Result<Guest> {
    let log = crate::target_dir()
        .join("logs")
        .join(format!("bench-net-{}-{phase}.log", spec.name()));
    let nic = Nic::parse(spec.nic)?;
    let (mut boot, ready) = match prepared {
        Prepared::Linux(guest) => (
            linux::boot(guest, nic, Mode::Tap, 0, STAT_MS, log)?,
            vec![linux::init::READY.to_string()],
        ),
        Prepared::Tessera(image) => {
            crate::qemu::net::require_root()?;
            let mut boot = Boot::new(image.kernel.elf32.clone(), image.root.clone(), log);
            boot.extra = vec![
                "-device".into(),
                format!("{},netdev=n0", nic.qemu_model()),
                "-netdev".into(),
                format!("tap,id=n0,ifname={},script=no,downscript=no", tap_name(0)),
            ];
            let ready = spec.composition.ports().iter().map(|&p| tessera_ready(p));
            (boot, ready.collect())
        }
    };
    boot.timeout = Duration::from_secs(6 * 3600);
    let session = Session::start(&boot, false)?;
    for line in &ready {
        wait_ready(&session, line, Duration::from_secs(240))?;
    }
    // Let the boot's last work settle (a remote listener is bound a moment after its
    // line) before measuring.
    std::thread::sleep(Duration::from_secs(2));
    Ok(Guest {
        session,
        ticks_per_second: clock_ticks_per_second(),
        composition: spec.composition,
    })
}

/// Lines that mean a guest will never come up: seL4's and Linux's panics.
const FATAL: &[&str] = &["Halting...", "Kernel panic"];

/// Waits up to `limit` for `ready`, failing early when the guest prints a [`FATAL`] line.
fn wait_ready(session: &Session, ready: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let err = match session.wait_for(ready, Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let output = session.output();
        // Several components print at once: another's output may have cut into the line.
        if crate::qemu::printed(&output, ready, crate::qemu::INTERLEAVE_SLACK) {
            return Ok(());
        }
        if let Some(fatal) = FATAL.iter().find(|f| output.contains(*f)) {
            return Err(format!(
                "the guest stopped ({fatal:?}) before printing {ready:?} (serial log: {})",
                session.log_path().display()
            ));
        }
        if Instant::now() >= deadline || err.contains("stopped") {
            return Err(err);
        }
    }
}

/// Runs `plan.repetitions` of each rate in `rates` (interleaved: every rate once, then
/// again) in `direction`, retrying a failed run once; stops early when the guest is gone.
pub(super) fn measure_all(
    guest: &Guest,
    plan: &Plan,
    rates: &[Option<f64>],
    repetitions: usize,
    label: &str,
    direction: Direction,
) -> Vec<Vec<Result<Run>>> {
    let mut results: Vec<Vec<Result<Run>>> = rates.iter().map(|_| Vec::new()).collect();
    for rep in 0..repetitions {
        for (i, rate) in rates.iter().enumerate() {
            let what = match (rate, direction) {
                (Some(r), _) => format!("{r:.0} Mbit/s"),
                (None, Direction::Normal) => "unpaced".into(),
                (None, Direction::Reverse) => "unpaced -R".into(),
            };
            let mut run = guest.measure(plan, *rate, direction);
            if run.is_err() {
                std::thread::sleep(Duration::from_secs(2));
                run = guest.measure(plan, *rate, direction);
            }
            match &run {
                Ok(r) => step(&format!(
                    "{label} {what} #{}: {:.0} Mbit/s, guest CPU {}, QEMU {:.0} % of a host CPU{}",
                    rep + 1,
                    r.throughput_mbps,
                    r.guest_cpu_pct
                        .map_or("- (no STAT lines)".into(), |c| format!("{c:.1} %")),
                    r.host_cpu_pct,
                    r.net.map_or(String::new(), |n| format!(
                        ", {:.0} interrupts/s, {} frames per busy poll",
                        n.irqs_per_s,
                        n.frames_per_busy_poll
                            .map_or("-".into(), |f| format!("{f:.1}"))
                    )),
                )),
                Err(e) => step(&format!("{label} {what} #{}: failed: {e}", rep + 1)),
            }
            results[i].push(run);
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"{"start":{},"intervals":[
        {"sum":{"start":0,"end":1.0,"bits_per_second":1e8}},
        {"sum":{"start":1.0,"end":2.0,"bits_per_second":2e8}},
        {"sum":{"start":2.0,"end":3.0,"bits_per_second":4e8}},
        {"sum":{"start":3.0,"end":4.0,"bits_per_second":8e8}}],
        "end":{"sum_sent":{"bits_per_second":3.8e8},"sum_received":{"bits_per_second":3.75e8}}}"#;

    #[test]
    fn signals_per_frame_come_from_whole_report_lines() {
        let line = |frames: u64, signals: u64| {
            format!(
                "net: frames NetCounters {{ rx_frames: {frames}, tx_frames: 100, rx_malformed: 0 }} \
                 server ServerCounters {{ requests: 5, signals: {signals}, malformed: 0 }}"
            )
        };
        assert_eq!(net_report(&line(900, 7)), Some((1000, 7)));
        assert_eq!(net_report("net: front FrontCounters { attached: 1 }"), None);
        let cut = line(900, 7);
        assert_eq!(net_report(&cut[..cut.len() - 20]), None, "a line cut short");
        let text = [
            line(900, 7),
            "STAT up_us=1 idle_us=0".to_string(),
            line(1900, 207),
            line(2900, 507),
        ]
        .join("\n");
        assert_eq!(signals_per_frame(&text), Some(0.25));
        assert_eq!(
            signals_per_frame(&line(900, 7)),
            None,
            "one line is no interval"
        );
    }

    #[test]
    fn iperf3_reports_give_receiver_and_window_rates() {
        let (received, window) = parse_iperf3_report(REPORT, 1.0, 3.0).unwrap();
        assert_eq!(received, 375.0);
        assert_eq!(window, Some(300.0));
        assert_eq!(parse_iperf3_report(REPORT, 10.0, 12.0).unwrap().1, None);
        let refused =
            r#"{"start":{},"intervals":[],"end":{},"error":"the server is busy running a test"}"#;
        assert!(parse_iperf3_report(refused, 0.0, 1.0)
            .unwrap_err()
            .contains("busy"));
        assert!(parse_iperf3_report("iperf3: error - unable to connect", 0.0, 1.0).is_err());
    }
}
