//! `cargo xtask bench net`: guest CPU utilisation against TCP throughput for Tessera's
//! iperf unikernel (each NIC and interrupt delivery method) and the Linux guest (the
//! paper's Figure 4).
//!
//! Every system boots under QEMU behind a TAP device whose peer is a private network
//! namespace ([`crate::qemu::net::TapNet`]); the stock `iperf3` client runs there. The
//! benchmark first finds each system's maximum throughput (unpaced `iperf3 -c`), then
//! offers every system the same loads, fractions of the lowest maximum (`iperf3 -b`).
//! For each run it measures, over a window that leaves out the first seconds:
//! - the achieved throughput: the receiver side of the iperf3 report (`end.sum_received`,
//!   over the whole run), and the sender's own figure over the window;
//! - guest CPU utilisation from the guest's `STAT up_us=.. idle_us=..` lines (first to last
//!   line inside the window): 1 − Δidle/Δup;
//! - host CPU time of the QEMU process (`/proc/<pid>/stat` utime + stime) as a share of
//!   one host CPU over the window's wall time.
//!
//! # `target/bench/net.json`
//!
//! ```text
//! {
//!   "schema": "tessera-bench-net/1",
//!   "profile": "quick" | "default" | "full",
//!   "started_unix_s": u64,               // when the benchmark began
//!   "host": { "cpus": n, "qemu": "QEMU emulator version ...", "accel": "tcg",
//!             "loadavg_start": [x, x, x] | null, "loadavg_end": [...] | null },
//!   "method": {
//!     "run_s": n,                        // iperf3 -t of every run
//!     "skip_s": x,                       // seconds from the client's start to the window
//!     "window_s": x,                     // the measured window
//!     "repetitions": n,                  // runs per offered load
//!     "max_repetitions": n,              // unpaced runs per system
//!     "load_fractions": [x, ...],        // of the lowest maximum
//!     "stat_ms": n                       // period of the guest's STAT lines
//!   },
//!   "lowest_max_mbps": x | null,         // the lowest median maximum among the systems
//!   "loads_mbps": [x, ...],              // the offered loads (iperf3 -b)
//!   "systems": [{
//!     "name": "tessera-e1000e-msi",      // os-nic[-irq]
//!     "os": "tessera" | "linux",
//!     "nic": "e1000e" | "virtio-net",
//!     "irq": "msi" | "ioapic" | "pic" | null,   // Tessera's delivery method; null: Linux
//!     "supported": bool,                 // false: not measured, "error" says why
//!     "error": string | null,            // why the system was skipped or stopped
//!     "max": Point | null,               // the unpaced runs
//!     "points": [Point, ...]             // one per offered load, in order
//!   }]
//! }
//! Point = {
//!   "offered_mbps": x | null,            // null: unpaced
//!   "throughput_mbps": Summary | null,   // receiver side, whole run
//!   "sender_window_mbps": Summary | null,// sender side, intervals inside the window
//!   "guest_cpu_pct": Summary | null,     // null: the guest printed no STAT lines
//!   "host_cpu_pct": Summary | null,      // % of one host CPU (may exceed 100)
//!   "runs": [{ "throughput_mbps": x, "sender_window_mbps": x | null,
//!              "guest_cpu_pct": x | null, "host_cpu_pct": x, "window_s": x }
//!            | { "error": string }]
//! }
//! Summary = { "median": x, "min": x, "max": x, "n": n }
//! ```
//!
//! `target/bench/net.png` plots guest CPU (median, min–max error bars) against achieved
//! throughput, one line per system (`xtask/plot/net.py`, Python with matplotlib).

use super::{clock_ticks_per_second, guest_utilisation, process_cpu_seconds, round};
use super::{summary_json, Profile, Summary};
use crate::linux::{self, Nic};
use crate::qemu::net::{tap_name, Mode};
use crate::qemu::{Boot, Session};
use crate::{build, step, workspace_root, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Period of the guest's `STAT` lines during the benchmark, in ms.
pub const STAT_MS: u32 = 500;

/// Seconds from the client's start until the window, beyond the ignored warm-up: room for
/// the iperf3 control exchange, which takes a moment under TCG.
const SETUP_S: f64 = 1.0;
/// Seconds the client keeps sending after the window.
const TAIL_S: f64 = 1.0;

/// The line the Tessera iperf component prints once it listens.
const TESSERA_READY: &str = "iperf: listening on port 5201";

/// Which operating system a benchmarked system runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Tessera's iperf unikernel (`systems/net-unikernel*.toml`).
    Tessera,
    /// The Linux baseline guest ([`crate::linux`]).
    Linux,
}

/// One benchmarked system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemSpec {
    /// Operating system.
    pub os: Os,
    /// NIC: `e1000e` or `virtio-net`.
    pub nic: &'static str,
    /// Tessera's interrupt delivery: `msi`, `ioapic` or `pic` (`None` for Linux).
    pub irq: Option<&'static str>,
}

impl SystemSpec {
    /// `tessera-<nic>-<irq>` or `linux-<nic>`.
    pub fn name(&self) -> String {
        match (self.os, self.irq) {
            (Os::Tessera, Some(irq)) => format!("tessera-{}-{irq}", self.nic),
            (Os::Tessera, None) => format!("tessera-{}", self.nic),
            (Os::Linux, _) => format!("linux-{}", self.nic),
        }
    }

    /// Why this system cannot be measured, when that is known before building it.
    pub fn known_unsupported(&self) -> Option<&'static str> {
        (self.os == Os::Tessera && self.nic == "virtio-net" && self.irq == Some("msi")).then_some(
            "QEMU's virtio-net-pci offers MSI-X only (no MSI capability) and virtio-drivers \
             programs no MSI-X vectors",
        )
    }
}

/// Every system the benchmark knows, in the order it measures them.
pub fn all_systems() -> Vec<SystemSpec> {
    let tessera = |nic, irq| SystemSpec {
        os: Os::Tessera,
        nic,
        irq: Some(irq),
    };
    let linux = |nic| SystemSpec {
        os: Os::Linux,
        nic,
        irq: None,
    };
    vec![
        tessera("e1000e", "msi"),
        tessera("e1000e", "ioapic"),
        tessera("e1000e", "pic"),
        tessera("virtio-net", "ioapic"),
        tessera("virtio-net", "msi"),
        tessera("virtio-net", "pic"),
        linux("e1000e"),
        linux("virtio-net"),
    ]
}

/// How a profile measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Seconds of each run that are ignored before the window (after [`SETUP_S`]).
    pub warmup_s: f64,
    /// Seconds measured.
    pub window_s: f64,
    /// Runs per offered load.
    pub repetitions: usize,
    /// Unpaced runs per system.
    pub max_repetitions: usize,
    /// Offered loads as fractions of the lowest maximum.
    pub fractions: Vec<f64>,
    /// Names of the systems measured.
    pub systems: Vec<String>,
}

impl Plan {
    /// The plan of `profile`.
    ///
    /// - `full`: the paper's method: 20 s runs whose first 10 s are ignored, 5 repetitions,
    ///   loads at 20/40/60/80/100 % of the lowest maximum, every system.
    /// - default: the same systems and loads, 7 s runs with 2 s ignored (4 s measured),
    ///   3 repetitions; under 30 minutes on a 2-core host.
    /// - `quick`: Tessera and Linux on the e1000e (MSI for Tessera), loads at 20/60/100 %,
    ///   5 s runs with 1 s ignored (2 s measured), one repetition; a few minutes.
    pub fn of(profile: Profile) -> Plan {
        let every = || all_systems().iter().map(SystemSpec::name).collect();
        let fifths = vec![0.2, 0.4, 0.6, 0.8, 1.0];
        match profile {
            Profile::Full => Plan {
                warmup_s: 10.0 - SETUP_S,
                window_s: 10.0 - TAIL_S,
                repetitions: 5,
                max_repetitions: 5,
                fractions: fifths,
                systems: every(),
            },
            Profile::Default => Plan {
                warmup_s: 2.0 - SETUP_S,
                window_s: 4.0,
                repetitions: 3,
                max_repetitions: 3,
                fractions: fifths,
                systems: every(),
            },
            Profile::Quick => Plan {
                warmup_s: 1.0 - SETUP_S,
                window_s: 3.0,
                repetitions: 1,
                max_repetitions: 1,
                fractions: vec![0.2, 0.6, 1.0],
                systems: vec!["tessera-e1000e-msi".into(), "linux-e1000e".into()],
            },
        }
    }

    /// The `iperf3 -t` of every run: set-up, warm-up, window and tail, whole seconds.
    pub fn run_s(&self) -> u64 {
        (SETUP_S + self.warmup_s + self.window_s + TAIL_S).ceil() as u64
    }

    /// Seconds from the client's start to the window.
    pub fn skip_s(&self) -> f64 {
        SETUP_S + self.warmup_s
    }
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
struct Guest {
    session: Session,
    ticks_per_second: u64,
}

impl Guest {
    /// Runs one iperf3 client (`rate_mbps`: `-b`, `None`: unpaced) and measures it.
    fn measure(&self, plan: &Plan, rate_mbps: Option<f64>) -> Result<Run> {
        let tap = self
            .session
            .tap_net()
            .ok_or("the system has no TAP network")?;
        let run_s = plan.run_s();
        let mut cmd = tap.command("timeout");
        cmd.arg((run_s + 30).to_string()).args([
            "iperf3",
            "-c",
            linux::init::GUEST_ADDRESS,
            "-p",
            &linux::init::IPERF_PORT.to_string(),
            "-J",
            "-t",
            &run_s.to_string(),
        ]);
        if let Some(rate) = rate_mbps {
            cmd.args(["-b", &format!("{}", (rate * 1e6).round() as u64)]);
        }
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run iperf3 in the namespace: {e}"))?;
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
        // Wait for the client (bounded by `timeout`) before reporting any failure.
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        let (cpu0, cpu1) = (cpu0?, cpu1?);
        let text = String::from_utf8_lossy(&output.stdout);
        let window_s = (t1 - t0).as_secs_f64();
        let from = plan.skip_s() - SETUP_S;
        let (throughput_mbps, sender_window_mbps) =
            parse_iperf3_report(&text, from, from + plan.window_s)
                .map_err(|e| format!("{e} {}", String::from_utf8_lossy(&output.stderr).trim()))?;
        let serial = self.session.output();
        Ok(Run {
            throughput_mbps,
            sender_window_mbps,
            guest_cpu_pct: serial.get(out0..out1).and_then(guest_utilisation),
            host_cpu_pct: 100.0 * (cpu1 - cpu0) / window_s,
            window_s,
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
enum Prepared {
    Tessera(build::Image),
    Linux(linux::Guest),
}

/// The system description of a Tessera system: the unikernel for its NIC with its
/// interrupt delivery and `stat_ms`, written to `target/bench/systems/`.
fn tessera_description(spec: &SystemSpec) -> Result<PathBuf> {
    let base = match spec.nic {
        "e1000e" => "systems/net-unikernel.toml",
        "virtio-net" => "systems/net-unikernel-virtio.toml",
        other => return Err(format!("no Tessera system for NIC {other}")),
    };
    let text =
        std::fs::read_to_string(workspace_root().join(base)).map_err(|e| format!("{base}: {e}"))?;
    let irq = spec.irq.unwrap_or("msi");
    let stat_ms = STAT_MS.to_string();
    let derived =
        crate::derive::derive_system(&text, base, &spec.name(), irq, &[("stat_ms", &stat_ms)])?;
    let dir = super::dir().join("systems");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{}.toml", spec.name()));
    std::fs::write(&path, derived).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn prepare(spec: &SystemSpec) -> Result<Prepared> {
    if let Some(why) = spec.known_unsupported() {
        return Err(why.to_string());
    }
    match spec.os {
        Os::Linux => linux::build().map(Prepared::Linux),
        Os::Tessera => {
            let mut variant = tessera_kernel::Variant::default();
            if spec.irq == Some("pic") {
                variant = variant.with("irq", "pic");
            }
            let description = tessera_description(spec)?;
            build::image(&variant, Some(&description)).map(Prepared::Tessera)
        }
    }
}

/// Boots `prepared` behind a TAP device and waits until its iperf3 server listens.
fn boot(spec: &SystemSpec, prepared: &Prepared, phase: &str) -> Result<Guest> {
    let log = crate::target_dir()
        .join("logs")
        .join(format!("bench-net-{}-{phase}.log", spec.name()));
    let nic = Nic::parse(spec.nic)?;
    let (mut boot, ready) = match prepared {
        Prepared::Linux(guest) => (
            linux::boot(guest, nic, Mode::Tap, 0, STAT_MS, log)?,
            linux::init::READY,
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
            (boot, TESSERA_READY)
        }
    };
    boot.timeout = Duration::from_secs(6 * 3600);
    let session = Session::start(&boot, false)?;
    wait_ready(&session, ready, Duration::from_secs(240))?;
    // Let the boot's last work settle before measuring.
    std::thread::sleep(Duration::from_secs(2));
    Ok(Guest {
        session,
        ticks_per_second: clock_ticks_per_second(),
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

/// A system's results so far.
struct Outcome {
    spec: SystemSpec,
    error: Option<String>,
    supported: bool,
    max: Vec<Result<Run>>,
    points: Vec<Vec<Result<Run>>>,
}

impl Outcome {
    fn max_median(&self) -> Option<f64> {
        let values: Vec<f64> = self
            .max
            .iter()
            .flatten()
            .map(|r| r.throughput_mbps)
            .collect();
        Summary::of(&values).map(|s| s.median)
    }
}

/// Summaries and runs of one point as JSON.
fn point_json(offered: Option<f64>, runs: &[Result<Run>]) -> Value {
    let ok: Vec<&Run> = runs.iter().flatten().collect();
    let pick =
        |f: &dyn Fn(&Run) -> Option<f64>| -> Vec<f64> { ok.iter().filter_map(|r| f(r)).collect() };
    json!({
        "offered_mbps": offered.map(round),
        "throughput_mbps": summary_json(&pick(&|r| Some(r.throughput_mbps))),
        "sender_window_mbps": summary_json(&pick(&|r| r.sender_window_mbps)),
        "guest_cpu_pct": summary_json(&pick(&|r| r.guest_cpu_pct)),
        "host_cpu_pct": summary_json(&pick(&|r| Some(r.host_cpu_pct))),
        "runs": runs.iter().map(|r| match r {
            Ok(r) => json!({
                "throughput_mbps": round(r.throughput_mbps),
                "sender_window_mbps": r.sender_window_mbps.map(round),
                "guest_cpu_pct": r.guest_cpu_pct.map(round),
                "host_cpu_pct": round(r.host_cpu_pct),
                "window_s": round(r.window_s),
            }),
            Err(e) => json!({ "error": e }),
        }).collect::<Vec<_>>(),
    })
}

fn qemu_version() -> String {
    std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default()
}

/// The host's `/proc/loadavg` (1, 5 and 15 minute load averages), if readable.
fn loadavg() -> Value {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let values: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect();
    if values.len() == 3 {
        json!(values)
    } else {
        Value::Null
    }
}

/// The result file's contents.
fn report_json(
    profile: Profile,
    plan: &Plan,
    started: u64,
    loadavg_start: &Value,
    loads: &[f64],
    lowest: Option<f64>,
    outcomes: &[Outcome],
) -> Value {
    json!({
        "schema": "tessera-bench-net/1",
        "profile": profile.name(),
        "started_unix_s": started,
        "host": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "qemu": qemu_version(),
            "accel": "tcg",
            "loadavg_start": loadavg_start,
            "loadavg_end": loadavg(),
        },
        "method": {
            "run_s": plan.run_s(),
            "skip_s": round(plan.skip_s()),
            "window_s": round(plan.window_s),
            "repetitions": plan.repetitions,
            "max_repetitions": plan.max_repetitions,
            "load_fractions": plan.fractions,
            "stat_ms": STAT_MS,
        },
        "lowest_max_mbps": lowest.map(round),
        "loads_mbps": loads.iter().map(|l| round(*l)).collect::<Vec<_>>(),
        "systems": outcomes.iter().map(|o| json!({
            "name": o.spec.name(),
            "os": match o.spec.os { Os::Tessera => "tessera", Os::Linux => "linux" },
            "nic": o.spec.nic,
            "irq": o.spec.irq,
            "supported": o.supported,
            "error": o.error,
            "max": if o.max.is_empty() { Value::Null } else { point_json(None, &o.max) },
            "points": o.points.iter().zip(loads).map(|(runs, load)| point_json(Some(*load), runs)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Runs `plan.repetitions` of each rate in `rates` (interleaved: every rate once, then
/// again), retrying a failed run once; stops early when the guest is gone.
fn measure_all(
    guest: &Guest,
    plan: &Plan,
    rates: &[Option<f64>],
    repetitions: usize,
    label: &str,
) -> Vec<Vec<Result<Run>>> {
    let mut results: Vec<Vec<Result<Run>>> = rates.iter().map(|_| Vec::new()).collect();
    for rep in 0..repetitions {
        for (i, rate) in rates.iter().enumerate() {
            let what = match rate {
                Some(r) => format!("{r:.0} Mbit/s"),
                None => "unpaced".into(),
            };
            let mut run = guest.measure(plan, *rate);
            if run.is_err() {
                std::thread::sleep(Duration::from_secs(2));
                run = guest.measure(plan, *rate);
            }
            match &run {
                Ok(r) => step(&format!(
                    "{label} {what} #{}: {:.0} Mbit/s, guest CPU {}, QEMU {:.0} % of a host CPU",
                    rep + 1,
                    r.throughput_mbps,
                    r.guest_cpu_pct
                        .map_or("- (no STAT lines)".into(), |c| format!("{c:.1} %")),
                    r.host_cpu_pct
                )),
                Err(e) => step(&format!("{label} {what} #{}: failed: {e}", rep + 1)),
            }
            results[i].push(run);
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    results
}

/// `cargo xtask bench net`: measures the systems `only` names (all of the profile's when
/// empty), writes `target/bench/net.json` and `net.png`, and prints a table.
pub fn run(profile: Profile, only: &[String]) -> Result<()> {
    crate::qemu::net::require_root()
        .map_err(|_| "cargo xtask bench net needs root: it runs each system behind a TAP device in a private network namespace".to_string())?;
    crate::host::ensure(crate::host::Purpose::Qemu)?;
    crate::host::ensure(crate::host::Purpose::Iperf)?;
    let mut plan = Plan::of(profile);
    if !only.is_empty() {
        let known: Vec<String> = all_systems().iter().map(SystemSpec::name).collect();
        if let Some(bad) = only.iter().find(|n| !known.contains(n)) {
            return Err(format!(
                "unknown system `{bad}`; known: {}",
                known.join(", ")
            ));
        }
        plan.systems = only.to_vec();
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let clock = Instant::now();
    let load_start = loadavg();
    let specs: Vec<SystemSpec> = all_systems()
        .into_iter()
        .filter(|s| plan.systems.contains(&s.name()))
        .collect();
    step(&format!(
        "bench net ({}): {} systems, runs of {} s (window {:.0} s after {:.0} s), {} repetitions, loads {:?} of the lowest maximum",
        profile.name(),
        specs.len(),
        plan.run_s(),
        plan.window_s,
        plan.skip_s(),
        plan.repetitions,
        plan.fractions
    ));
    let mut outcomes = Vec::new();
    let mut prepared = Vec::new();
    for spec in &specs {
        step(&format!("bench net: preparing {}", spec.name()));
        let p = prepare(spec);
        let (supported, error) = match &p {
            Ok(_) => (true, None),
            Err(e) => {
                step(&format!("bench net: {} is not measured: {e}", spec.name()));
                (false, Some(e.clone()))
            }
        };
        outcomes.push(Outcome {
            spec: spec.clone(),
            error,
            supported,
            max: Vec::new(),
            points: Vec::new(),
        });
        prepared.push(p.ok());
    }
    // Phase 1: every system's maximum.
    for (outcome, p) in outcomes.iter_mut().zip(&prepared) {
        let Some(p) = p else { continue };
        let label = outcome.spec.name();
        step(&format!("bench net: {label}: booting for its maximum"));
        match boot(&outcome.spec, p, "max") {
            Ok(guest) => {
                outcome.max = measure_all(&guest, &plan, &[None], plan.max_repetitions, &label)
                    .pop()
                    .unwrap_or_default();
                if outcome.max_median().is_none() {
                    outcome.error = Some("no unpaced run succeeded".into());
                }
            }
            Err(e) => {
                step(&format!("bench net: {label}: {e}"));
                outcome.error = Some(e);
            }
        }
    }
    let lowest = outcomes
        .iter()
        .filter_map(Outcome::max_median)
        .min_by(f64::total_cmp);
    let loads: Vec<f64> = lowest
        .map(|l| plan.fractions.iter().map(|f| f * l).collect())
        .unwrap_or_default();
    if let Some(l) = lowest {
        step(&format!(
            "bench net: lowest maximum {l:.0} Mbit/s; offered loads {:?} Mbit/s",
            loads.iter().map(|x| x.round()).collect::<Vec<_>>()
        ));
    }
    // Phase 2: the same loads for every system.
    let rates: Vec<Option<f64>> = loads.iter().copied().map(Some).collect();
    for (outcome, p) in outcomes.iter_mut().zip(&prepared) {
        let (Some(p), None) = (p, &outcome.error) else {
            continue;
        };
        let label = outcome.spec.name();
        step(&format!(
            "bench net: {label}: booting for the offered loads"
        ));
        match boot(&outcome.spec, p, "loads") {
            Ok(guest) => {
                outcome.points = measure_all(&guest, &plan, &rates, plan.repetitions, &label)
            }
            Err(e) => {
                step(&format!("bench net: {label}: {e}"));
                outcome.error = Some(e);
            }
        }
    }
    let report = report_json(
        profile,
        &plan,
        started,
        &load_start,
        &loads,
        lowest,
        &outcomes,
    );
    let dir = super::dir();
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let json_path = dir.join("net.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    step(&format!("bench net: results in {}", json_path.display()));
    print!("{}", table(&report));
    match plot(&json_path, &dir.join("net.png")) {
        Ok(png) => step(&format!("bench net: plot in {}", png.display())),
        Err(e) => step(&format!("bench net: no plot: {e}")),
    }
    step(&format!(
        "bench net took {:.1} min",
        clock.elapsed().as_secs_f64() / 60.0
    ));
    Ok(())
}

/// `cargo xtask bench net --plot`: redraws `target/bench/net.png` and prints the table
/// from the last `target/bench/net.json`.
pub fn replot() -> Result<()> {
    let dir = super::dir();
    let json_path = dir.join("net.json");
    let text = std::fs::read_to_string(&json_path).map_err(|e| {
        format!(
            "{}: {e} (run `cargo xtask bench net` first)",
            json_path.display()
        )
    })?;
    let report: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json_path.display()))?;
    print!("{}", table(&report));
    let png = plot(&json_path, &dir.join("net.png"))?;
    step(&format!("bench net: plot in {}", png.display()));
    Ok(())
}

/// Draws `json` into `png` with `xtask/plot/net.py`.
pub fn plot(json: &Path, png: &Path) -> Result<PathBuf> {
    crate::host::ensure(crate::host::Purpose::Plot)?;
    let script = workspace_root().join("xtask/plot/net.py");
    let out = std::process::Command::new(crate::host::PLOT_PYTHON)
        .arg(&script)
        .arg(json)
        .arg(png)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", crate::host::PLOT_PYTHON))?;
    if out.status.success() {
        Ok(png.to_path_buf())
    } else {
        Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The summary table of a `net.json` report: per system and load, the median throughput,
/// guest CPU (with range) and QEMU's host CPU, then Tessera's utilisation against Linux's
/// on the same NIC.
pub fn table(report: &Value) -> String {
    let mut out = String::new();
    let med = |v: &Value| v["median"].as_f64();
    let cell = |v: &Value| match (v["median"].as_f64(), v["min"].as_f64(), v["max"].as_f64()) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:5.1} [{lo:.1}-{hi:.1}]"),
        _ => "-".into(),
    };
    out.push_str(&format!(
        "\n{:<26} {:>10} {:>12} {:>22} {:>10}\n",
        "system", "offered", "achieved", "guest CPU % [range]", "QEMU CPU %"
    ));
    let systems = report["systems"].as_array().cloned().unwrap_or_default();
    for s in &systems {
        let name = s["name"].as_str().unwrap_or("?");
        if s["supported"] == false {
            out.push_str(&format!(
                "{name:<26} unsupported: {}\n",
                s["error"].as_str().unwrap_or("")
            ));
            continue;
        }
        let rows = std::iter::once(&s["max"]).chain(s["points"].as_array().into_iter().flatten());
        for p in rows.filter(|p| !p.is_null()) {
            let offered = p["offered_mbps"]
                .as_f64()
                .map_or("max".into(), |o| format!("{o:.0}"));
            out.push_str(&format!(
                "{name:<26} {offered:>10} {:>12} {:>22} {:>10}\n",
                med(&p["throughput_mbps"]).map_or("-".into(), |t| format!("{t:.0}")),
                cell(&p["guest_cpu_pct"]),
                med(&p["host_cpu_pct"]).map_or("-".into(), |h| format!("{h:.0}")),
            ));
        }
        if let Some(e) = s["error"].as_str() {
            out.push_str(&format!("{name:<26} stopped: {e}\n"));
        }
    }
    // Tessera / Linux guest CPU at each load, same NIC.
    let mut ratios = String::new();
    for t in systems.iter().filter(|s| s["os"] == "tessera") {
        let Some(l) = systems
            .iter()
            .find(|s| s["os"] == "linux" && s["nic"] == t["nic"])
        else {
            continue;
        };
        let pairs: Vec<String> = t["points"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(l["points"].as_array().into_iter().flatten())
            .map(
                |(a, b)| match (med(&a["guest_cpu_pct"]), med(&b["guest_cpu_pct"])) {
                    (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
                    _ => "-".into(),
                },
            )
            .collect();
        if !pairs.is_empty() {
            ratios.push_str(&format!(
                "{:<26} {}\n",
                t["name"].as_str().unwrap_or("?"),
                pairs.join("  ")
            ));
        }
    }
    if !ratios.is_empty() {
        out.push_str("\nguest CPU, Tessera / Linux (same NIC), at each offered load:\n");
        out.push_str(&ratios);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_names_are_unique_and_virtio_msi_is_known_unsupported() {
        let names: Vec<String> = all_systems().iter().map(SystemSpec::name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(names.contains(&"tessera-e1000e-pic".to_string()));
        assert!(names.contains(&"linux-virtio-net".to_string()));
        let unsupported: Vec<String> = all_systems()
            .iter()
            .filter(|s| s.known_unsupported().is_some())
            .map(SystemSpec::name)
            .collect();
        assert_eq!(unsupported, ["tessera-virtio-net-msi"]);
    }

    #[test]
    fn plans_keep_the_paper_shape() {
        let full = Plan::of(Profile::Full);
        assert_eq!(full.run_s(), 20);
        assert_eq!(full.skip_s(), 10.0);
        assert_eq!(full.repetitions, 5);
        assert_eq!(full.fractions, [0.2, 0.4, 0.6, 0.8, 1.0]);
        let default = Plan::of(Profile::Default);
        assert_eq!(default.systems.len(), all_systems().len());
        assert!(default.run_s() < full.run_s());
        let quick = Plan::of(Profile::Quick);
        for name in &quick.systems {
            assert!(default.systems.contains(name), "{name}");
        }
        assert!(quick.skip_s() >= SETUP_S);
    }

    const REPORT: &str = r#"{"start":{},"intervals":[
        {"sum":{"start":0,"end":1.0,"bits_per_second":1e8}},
        {"sum":{"start":1.0,"end":2.0,"bits_per_second":2e8}},
        {"sum":{"start":2.0,"end":3.0,"bits_per_second":4e8}},
        {"sum":{"start":3.0,"end":4.0,"bits_per_second":8e8}}],
        "end":{"sum_sent":{"bits_per_second":3.8e8},"sum_received":{"bits_per_second":3.75e8}}}"#;

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

    fn canned_report() -> Value {
        let run = |t: f64, g: f64| {
            Ok(Run {
                throughput_mbps: t,
                sender_window_mbps: Some(t),
                guest_cpu_pct: Some(g),
                host_cpu_pct: 90.0,
                window_s: 5.0,
            })
        };
        let outcome = |os, nic, irq, cpu: f64| Outcome {
            spec: SystemSpec { os, nic, irq },
            error: None,
            supported: true,
            max: vec![run(800.0, 100.0), run(820.0, 99.0)],
            points: vec![
                vec![run(160.0, cpu), run(161.0, cpu + 2.0)],
                vec![run(480.0, 3.0 * cpu), Err("iperf3: timed out".into())],
            ],
        };
        let unsupported = Outcome {
            spec: SystemSpec {
                os: Os::Tessera,
                nic: "virtio-net",
                irq: Some("msi"),
            },
            error: Some("unsupported: no MSI".into()),
            supported: false,
            max: vec![],
            points: vec![],
        };
        let outcomes = vec![
            outcome(Os::Tessera, "e1000e", Some("msi"), 10.0),
            outcome(Os::Linux, "e1000e", None, 20.0),
            unsupported,
        ];
        let plan = Plan::of(Profile::Quick);
        report_json(
            Profile::Quick,
            &plan,
            0,
            &Value::Null,
            &[162.0, 486.0],
            Some(810.0),
            &outcomes,
        )
    }

    #[test]
    fn reports_follow_the_schema_and_tables_give_ratios() {
        let report = canned_report();
        assert_eq!(report["schema"], "tessera-bench-net/1");
        let t = &report["systems"][0];
        assert_eq!(t["name"], "tessera-e1000e-msi");
        assert_eq!(t["max"]["throughput_mbps"]["median"], 810.0);
        assert_eq!(t["points"][0]["guest_cpu_pct"]["median"], 11.0);
        assert_eq!(t["points"][0]["guest_cpu_pct"]["min"], 10.0);
        assert_eq!(t["points"][1]["throughput_mbps"]["n"], 1);
        assert_eq!(t["points"][1]["runs"][1]["error"], "iperf3: timed out");
        assert_eq!(report["systems"][2]["supported"], false);
        let text = table(&report);
        assert!(
            text.contains("tessera-virtio-net-msi     unsupported"),
            "{text}"
        );
        // Tessera 11 % against Linux 21 % at the first load, 30 % against 60 % at the second.
        assert!(
            text.contains("tessera-e1000e-msi         0.52  0.50"),
            "{text}"
        );
    }

    /// Plots the canned report when matplotlib is there (the plot is checked by eye; here
    /// only that the script accepts the schema and writes a PNG).
    #[test]
    fn the_plot_script_reads_the_schema() {
        if std::process::Command::new(crate::host::PLOT_PYTHON)
            .args(["-c", "import matplotlib"])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("skipped: no matplotlib for {}", crate::host::PLOT_PYTHON);
            return;
        }
        let dir = std::env::temp_dir().join(format!("bench-net-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("net.json");
        std::fs::write(&json, canned_report().to_string()).unwrap();
        let png = plot(&json, &dir.join("net.png")).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
