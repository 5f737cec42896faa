//! The results of `cargo xtask bench net`: the JSON result file, its table and its plot.
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
//!     "irq": "msi" | "msix" | "ioapic" | "pic" | null, // Tessera's delivery; null: Linux
//!     "composition": "unikernel" | "shared" | "shared-isolated", // one client per server
//!     "supported": bool,                 // false: not measured, "error" says why
//!     "error": string | null,            // why the system was skipped or stopped
//!     "max": Point | null,               // the unpaced runs
//!     "points": [Point, ...],            // one per offered load, in order
//!     "reverse_max": Point | null        // unpaced iperf3 -R (the guest sends); default
//!                                        // and full profiles only
//!   }]
//! }
//! Point = {
//!   "offered_mbps": x | null,            // null: unpaced
//!   "throughput_mbps": Summary | null,   // receiver side, whole run
//!   "sender_window_mbps": Summary | null,// sender side, intervals inside the window
//!   "guest_cpu_pct": Summary | null,     // null: the guest printed no STAT lines
//!   "host_cpu_pct": Summary | null,      // % of one host CPU (may exceed 100)
//!   "irqs_per_s": Summary | null,        // the guest's poll loop (Tessera unikernel)
//!   "frames_per_busy_poll": Summary | null,
//!   "min_share_pct": Summary | null,     // the smallest client's share (two clients)
//!   "signals_per_frame": Summary | null, // net's signals to its clients per frame
//!   "runs": [{ "throughput_mbps": x, "sender_window_mbps": x | null,
//!              "guest_cpu_pct": x | null, "host_cpu_pct": x, "window_s": x,
//!              "irqs_per_s": x | null, "frames_per_busy_poll": x | null,
//!              "clients_mbps": [x, ...],     // each client's receiver side
//!              "signals_per_frame": x | null }
//!            | { "error": string }]
//! }
//! Summary = { "median": x, "min": x, "max": x, "n": n }
//! ```
//!
//! `target/bench/net.png` plots guest CPU (median, min–max error bars) against achieved
//! throughput, one line per system (`xtask/plot/net.py`, Python with matplotlib).

use super::guest::Run;
use super::plan::{Composition, Os, Plan, SystemSpec, STAT_MS};
use crate::bench::shared::{round, summary_json, Profile, Summary};
use crate::{workspace_root, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A system's results so far.
pub(super) struct Outcome {
    pub(super) spec: SystemSpec,
    pub(super) error: Option<String>,
    pub(super) supported: bool,
    pub(super) max: Vec<Result<Run>>,
    pub(super) points: Vec<Vec<Result<Run>>>,
    pub(super) reverse_max: Vec<Result<Run>>,
}

impl Outcome {
    pub(super) fn max_median(&self) -> Option<f64> {
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
        "irqs_per_s": summary_json(&pick(&|r| r.net.map(|n| n.irqs_per_s))),
        "frames_per_busy_poll": summary_json(&pick(&|r| r.net.and_then(|n| n.frames_per_busy_poll))),
        "min_share_pct": summary_json(&pick(&Run::min_share_pct)),
        "signals_per_frame": summary_json(&pick(&|r| r.signals_per_frame)),
        "runs": runs.iter().map(|r| match r {
            Ok(r) => json!({
                "throughput_mbps": round(r.throughput_mbps),
                "sender_window_mbps": r.sender_window_mbps.map(round),
                "guest_cpu_pct": r.guest_cpu_pct.map(round),
                "host_cpu_pct": round(r.host_cpu_pct),
                "window_s": round(r.window_s),
                "irqs_per_s": r.net.map(|n| round(n.irqs_per_s)),
                "frames_per_busy_poll": r.net.and_then(|n| n.frames_per_busy_poll).map(round),
                "clients_mbps": r.clients_mbps.iter().map(|c| round(*c)).collect::<Vec<_>>(),
                "signals_per_frame": r.signals_per_frame.map(round),
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
pub(super) fn loadavg() -> Value {
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
pub(super) fn report_json(
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
            "composition": match o.spec.composition {
                Composition::Unikernel => "unikernel",
                Composition::Shared => "shared",
                Composition::SharedIsolated => "shared-isolated",
            },
            "supported": o.supported,
            "error": o.error,
            "max": if o.max.is_empty() { Value::Null } else { point_json(None, &o.max) },
            "points": o.points.iter().zip(loads).map(|(runs, load)| point_json(Some(*load), runs)).collect::<Vec<_>>(),
            "reverse_max": if o.reverse_max.is_empty() { Value::Null } else { point_json(None, &o.reverse_max) },
        })).collect::<Vec<_>>(),
    })
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

/// One table row: the median throughput, guest CPU (with range), QEMU's host CPU and
/// the guest's interrupts/s and frames per busy poll of point `p`.
fn row(name: &str, offered: &str, p: &Value) -> String {
    let med = |v: &Value| v["median"].as_f64();
    let cell = match (
        med(&p["guest_cpu_pct"]),
        p["guest_cpu_pct"]["min"].as_f64(),
        p["guest_cpu_pct"]["max"].as_f64(),
    ) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:5.1} [{lo:.1}-{hi:.1}]"),
        _ => "-".into(),
    };
    format!(
        "{name:<26} {offered:>10} {:>12} {cell:>22} {:>10} {:>8} {:>8}\n",
        med(&p["throughput_mbps"]).map_or("-".into(), |t| format!("{t:.0}")),
        med(&p["host_cpu_pct"]).map_or("-".into(), |h| format!("{h:.0}")),
        med(&p["irqs_per_s"]).map_or("-".into(), |h| format!("{h:.0}")),
        med(&p["frames_per_busy_poll"]).map_or("-".into(), |h| format!("{h:.1}")),
    )
}

/// The header of the tables.
fn header() -> String {
    format!(
        "{:<26} {:>10} {:>12} {:>22} {:>10} {:>8} {:>8}\n",
        "system", "offered", "achieved", "guest CPU % [range]", "QEMU CPU %", "irq/s", "fr/poll"
    )
}

/// The summary tables of a `net.json` report: per system and load, the median throughput,
/// guest CPU (with range), QEMU's host CPU and the guest's interrupts per second and frames
/// per busy poll (Tessera only); then Tessera's utilisation against Linux's on the same
/// NIC; then, when measured, the reverse maxima (`-R`, the guest sending).
pub fn table(report: &Value) -> String {
    let mut out = String::new();
    let med = |v: &Value| v["median"].as_f64();
    out.push('\n');
    out.push_str(&header());
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
            out.push_str(&row(name, &offered, p));
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
    out.push_str(&shared_table(&systems));
    let reverse: Vec<&Value> = systems
        .iter()
        .filter(|s| !s["reverse_max"].is_null())
        .collect();
    if !reverse.is_empty() {
        out.push_str("\nreverse (iperf3 -R: the guest sends), unpaced:\n");
        out.push_str(&header());
        for s in reverse {
            out.push_str(&row(
                s["name"].as_str().unwrap_or("?"),
                "max -R",
                &s["reverse_max"],
            ));
        }
    }
    out
}

/// The shared compositions against the unikernel on the same NIC and interrupt delivery:
/// aggregate maximum as a share of the unikernel's, guest CPU at each offered load as a
/// multiple of the unikernel's, and the smallest client's share of the throughput (median)
/// at the maximum and at each load. Empty when no shared composition was measured.
fn shared_table(systems: &[Value]) -> String {
    let med = |v: &Value| v["median"].as_f64();
    let mut out = String::new();
    for s in systems
        .iter()
        .filter(|s| s["os"] == "tessera" && s["composition"] != "unikernel")
    {
        let Some(u) = systems.iter().find(|u| {
            u["os"] == "tessera"
                && u["composition"] == "unikernel"
                && u["nic"] == s["nic"]
                && u["irq"] == s["irq"]
        }) else {
            continue;
        };
        let max = match (
            med(&s["max"]["throughput_mbps"]),
            med(&u["max"]["throughput_mbps"]),
        ) {
            (Some(a), Some(b)) if b > 0.0 => format!("{a:.0} Mbit/s = {:.0} %", 100.0 * a / b),
            _ => "-".into(),
        };
        let cpu: Vec<String> = s["points"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(u["points"].as_array().into_iter().flatten())
            .map(
                |(a, b)| match (med(&a["guest_cpu_pct"]), med(&b["guest_cpu_pct"])) {
                    (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
                    _ => "-".into(),
                },
            )
            .collect();
        let points =
            || std::iter::once(&s["max"]).chain(s["points"].as_array().into_iter().flatten());
        let shares: Vec<String> = points()
            .map(|p| med(&p["min_share_pct"]).map_or("-".into(), |m| format!("{m:.0}")))
            .collect();
        let signals: Vec<String> = points()
            .map(|p| med(&p["signals_per_frame"]).map_or("-".into(), |m| format!("{m:.2}")))
            .collect();
        out.push_str(&format!(
            "{:<34} max {max} of {}; guest CPU x{} at each load; smallest client's share % (max, loads): {}; signals per frame: {}\n",
            s["name"].as_str().unwrap_or("?"),
            u["name"].as_str().unwrap_or("?"),
            if cpu.is_empty() { "-".to_string() } else { cpu.join(" x") },
            shares.join(" "),
            signals.join(" "),
        ));
    }
    if out.is_empty() {
        return out;
    }
    format!("\nshared compositions (two clients at once) against the unikernel:\n{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canned_report() -> Value {
        let run = |t: f64, g: f64| {
            Ok(Run {
                throughput_mbps: t,
                sender_window_mbps: Some(t),
                guest_cpu_pct: Some(g),
                host_cpu_pct: 90.0,
                window_s: 5.0,
                net: None,
                clients_mbps: vec![t],
                signals_per_frame: None,
            })
        };
        let outcome = |os, nic, irq, cpu: f64| Outcome {
            spec: SystemSpec {
                os,
                nic,
                irq,
                composition: Composition::Unikernel,
            },
            error: None,
            supported: true,
            max: vec![run(800.0, 100.0), run(820.0, 99.0)],
            points: vec![
                vec![run(160.0, cpu), run(161.0, cpu + 2.0)],
                vec![run(480.0, 3.0 * cpu), Err("iperf3: timed out".into())],
            ],
            reverse_max: vec![],
        };
        let unsupported = Outcome {
            spec: SystemSpec {
                os: Os::Tessera,
                nic: "virtio-net",
                irq: Some("msi"),
                composition: Composition::Unikernel,
            },
            error: Some("unsupported: no MSI".into()),
            supported: false,
            max: vec![],
            points: vec![],
            reverse_max: vec![],
        };
        let mut tessera = outcome(Os::Tessera, "e1000e", Some("msi"), 10.0);
        tessera.reverse_max = vec![Ok(Run {
            throughput_mbps: 600.0,
            sender_window_mbps: None,
            guest_cpu_pct: Some(97.0),
            host_cpu_pct: 80.0,
            window_s: 5.0,
            net: Some(iperf::stat::NetRates {
                irqs_per_s: 4000.0,
                polls_per_s: 9000.0,
                frames_per_busy_poll: Some(12.5),
                frames_per_irq: Some(30.0),
            }),
            clients_mbps: vec![600.0],
            signals_per_frame: None,
        })];
        // Two clients: 300 + 300 at the maximum, 100 + 62 and 250 + 230 at the loads.
        let two = |a: f64, b: f64, cpu: f64| {
            Ok(Run {
                throughput_mbps: a + b,
                sender_window_mbps: Some(a + b),
                guest_cpu_pct: Some(cpu),
                host_cpu_pct: 95.0,
                window_s: 5.0,
                net: None,
                clients_mbps: vec![a, b],
                signals_per_frame: Some(0.05),
            })
        };
        let shared = Outcome {
            spec: SystemSpec {
                os: Os::Tessera,
                nic: "e1000e",
                irq: Some("msi"),
                composition: Composition::Shared,
            },
            error: None,
            supported: true,
            max: vec![two(300.0, 300.0, 100.0)],
            points: vec![vec![two(100.0, 62.0, 16.5)], vec![two(250.0, 230.0, 45.0)]],
            reverse_max: vec![],
        };
        let outcomes = vec![
            tessera,
            shared,
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
        assert_eq!(report["systems"][3]["supported"], false);
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
        // The reverse maximum has its own table, with the poll loop's figures.
        assert_eq!(t["reverse_max"]["irqs_per_s"]["median"], 4000.0);
        assert!(report["systems"][2]["reverse_max"].is_null());
        let reverse = &text[text.find("reverse (iperf3 -R").expect("a reverse table")..];
        assert!(
            reverse.contains("tessera-e1000e-msi             max -R          600"),
            "{text}"
        );
        assert!(reverse.contains("4000"), "{text}");
        assert!(reverse.contains("12.5"), "{text}");
        assert!(!reverse.contains("linux-e1000e"), "{text}");
        // The shared composition against the unikernel: 600 of 810 Mbit/s (74 %), CPU 16.5
        // against 11 (x1.50) and 45 against 30 (x1.50); shares 50, 38 and 48 %.
        let shared = &report["systems"][1];
        assert_eq!(shared["composition"], "shared");
        assert_eq!(
            shared["max"]["runs"][0]["clients_mbps"],
            json!([300.0, 300.0])
        );
        assert_eq!(shared["points"][0]["min_share_pct"]["median"], 38.272);
        let section = &text[text.find("shared compositions").expect("a shared table")..];
        assert!(
            section.contains("tessera-shared-e1000e-msi          max 600 Mbit/s = 74 % of tessera-e1000e-msi; guest CPU x1.50 x1.50 at each load; smallest client's share % (max, loads): 50 38 48; signals per frame: 0.05 0.05 0.05"),
            "{text}"
        );
        assert!(!section.contains("linux"), "{text}");
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
