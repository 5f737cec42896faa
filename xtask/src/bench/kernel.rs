//! The kernel's share of the CPU by entry kind, per interrupt delivery method (issue 5,
//! item 3; the paper's Figure 5).
//!
//! For each method (e1000e with MSI, through the IOAPIC, through the PIC) the iperf
//! unikernel is built with the entry-tracking kernel (`bench=entries`, plus `irq=pic` for
//! the PIC) and a `kernel_log_ms` window, booted behind a TAP device, and loaded with an
//! unpaced `iperf3 -c` from the private namespace. The component prints one
//! `KERNEL-SHARE` line per window (`kernel-log` defines it); the lines of the steady state
//! (after the first `skip_s` seconds of the client's run, before its end) are summed:
//! kernel share = cycles of all entries / summed windows, per kind and per IRQ.
//!
//! Results: `target/bench/kernel.json` ([`SCHEMA`], documented on [`json`]) and a bar chart
//! `target/bench/kernel.png` (`xtask/plot/kernel.py`, python3-matplotlib).
//!
//! Caveats: under TCG every kernel entry costs far more than on hardware, so only the
//! ratios between methods measured in one run mean much. The log holds 43690 entries:
//! at top load a window may fill it early (`full`), which shortens that window but
//! does not bias its shares.

use super::shared::{self, Profile};
use crate::qemu::net::{self, Mode};
use crate::qemu::{Boot, Session};
use crate::{build, host, step, target_dir, workspace_root, Result};
use kernel_log::{Kind, Summary};
use kernel_support::Variant;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The schema name written into `kernel.json`.
pub const SCHEMA: &str = "tessera-bench-kernel/1";

/// The guest address the iperf unikernel serves on (as in `systems/net-unikernel.toml`).
pub const GUEST_ADDRESS: &str = "10.0.2.15";

/// How the NIC's interrupt reaches the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    /// The name used in reports: `msi`, `ioapic`, `pic` or `msix`.
    pub name: &'static str,
    /// The kernel's interrupt controller (`irq` variant axis).
    pub controller: &'static str,
    /// The NIC's `irq` in the system description.
    pub nic_irq: &'static str,
}

/// Every method, in report order.
pub const METHODS: [Method; 4] = [
    Method {
        name: "msi",
        controller: "ioapic",
        nic_irq: "msi",
    },
    Method {
        name: "ioapic",
        controller: "ioapic",
        nic_irq: "ioapic",
    },
    Method {
        name: "pic",
        controller: "pic",
        nic_irq: "pic",
    },
    Method {
        name: "msix",
        controller: "ioapic",
        nic_irq: "msix",
    },
];

impl Method {
    /// The method called `name`.
    pub fn parse(name: &str) -> Result<Method> {
        METHODS.into_iter().find(|m| m.name == name).ok_or_else(|| {
            format!("unknown interrupt delivery method `{name}` (msi, ioapic, pic or msix)")
        })
    }

    /// The kernel variant it runs on: entry tracking and its interrupt controller.
    pub fn variant(&self) -> Variant {
        Variant::default()
            .with("bench", "entries")
            .with("irq", self.controller)
    }
}

/// What to measure and how long.
#[derive(Debug, Clone)]
pub struct Options {
    /// The methods to measure.
    pub methods: Vec<Method>,
    /// The system the measured ones are derived from.
    pub system: PathBuf,
    /// Seconds the iperf3 client sends.
    pub seconds: u64,
    /// Seconds at the start of the client's run left out (ramp-up).
    pub skip_s: u64,
    /// The component's window (`kernel_log_ms`). Short: at top load the 43690-entry log
    /// fills within a few hundred milliseconds.
    pub window_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options::for_profile(Profile::Default)
    }
}

impl Options {
    /// The options of a run profile: `Quick` measures MSI only for 5 s; `Default` every
    /// method for 10 s (the first 2 left out); `Full` every method for 20 s with the first
    /// 10 left out (the paper's runs).
    pub fn for_profile(profile: Profile) -> Options {
        let (methods, seconds, skip_s) = match profile {
            Profile::Quick => (vec![METHODS[0]], 5, 1),
            Profile::Default => (METHODS.to_vec(), 10, 2),
            Profile::Full => (METHODS.to_vec(), 20, 10),
        };
        Options {
            methods,
            system: workspace_root().join("systems/net-unikernel.toml"),
            seconds,
            skip_s,
            window_ms: 100,
        }
    }
}

/// One method's measurement.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The method.
    pub method: Method,
    /// The kernel variant it ran on (`bench=entries,irq=...`).
    pub variant: String,
    /// The steady-state windows, summed.
    pub total: Summary,
    /// Each steady-state window's kernel share, in order.
    pub window_shares: Vec<f64>,
    /// Steady-state windows whose log filled up.
    pub full_windows: usize,
    /// iperf3's received throughput (bits per second), if its report had one.
    pub throughput_bps: Option<f64>,
    /// The TSC frequency the component reported (MHz), if it did.
    pub tsc_mhz: Option<u64>,
}

/// Measures every method in `options`, writes `target/bench/kernel.json` and
/// `target/bench/kernel.png`, and prints a table. Needs root (TAP), QEMU, iperf3 and
/// python3-matplotlib (installed when missing and possible).
pub fn run(options: &Options) -> Result<Vec<Measured>> {
    if options.methods.is_empty() {
        return Err("no interrupt delivery method to measure".into());
    }
    if options.window_ms == 0 || options.seconds <= options.skip_s {
        return Err(format!(
            "bad timing: window {} ms, {} s of load with the first {} s skipped",
            options.window_ms, options.seconds, options.skip_s
        ));
    }
    net::require_root()?;
    host::ensure(host::Purpose::Qemu)?;
    host::ensure(host::Purpose::Iperf)?;
    let mut results = Vec::new();
    for method in &options.methods {
        results.push(measure(*method, options)?);
    }
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let json_path = dir.join("kernel.json");
    let text = serde_json::to_string_pretty(&json(options, &results)).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    step(&format!("wrote {}", json_path.display()));
    print!("{}", table(&results));
    let png = dir.join("kernel.png");
    match plot(&json_path, &png) {
        Ok(()) => step(&format!("wrote {}", png.display())),
        Err(e) => step(&format!("bench kernel: no plot: {e}")),
    }
    Ok(results)
}

/// Builds, boots and loads one method; returns its steady-state summary.
pub fn measure(method: Method, options: &Options) -> Result<Measured> {
    step(&format!(
        "kernel share, {} interrupts: building",
        method.name
    ));
    let base = std::fs::read_to_string(&options.system)
        .map_err(|e| format!("{}: {e}", options.system.display()))?;
    let base_name = build::load_system(&options.system)?.name;
    let name = format!("{base_name}-kernel-{}", method.name);
    let window = options.window_ms.to_string();
    let file = options.system.display().to_string();
    let text = crate::derive::derive_system(
        &base,
        &file,
        &name,
        method.nic_irq,
        &[("kernel_log_ms", &window)],
    )?;
    let dir = target_dir().join("bench/systems");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    let system = build::load_system(&path)?;
    check_derived(&system, method, options.window_ms)?;
    let variant = method.variant();
    let image = build::image(&variant, Some(&path))?;

    let log = target_dir()
        .join("logs")
        .join(format!("bench-kernel-{}.log", method.name));
    let mut boot = Boot::new(image.kernel.elf32.clone(), image.root.clone(), log);
    boot.extra = net::qemu_args(&system, Mode::Tap)?;
    boot.timeout = Duration::from_secs(options.seconds + 300);
    step(&format!(
        "kernel share, {} interrupts: booting (serial log {})",
        method.name,
        boot.log.display()
    ));
    let session = Session::start(&boot, false)?;
    session.wait_for("iperf: listening on port", Duration::from_secs(180))?;
    session.wait_for(kernel_log::LINE_PREFIX, Duration::from_secs(30))?;
    let tap = session
        .tap_net()
        .ok_or("the system has no TAP device (does it describe a NIC?)")?;
    step(&format!(
        "kernel share, {} interrupts: iperf3 -c {GUEST_ADDRESS} for {} s",
        method.name, options.seconds
    ));
    let mut client = tap
        .command("iperf3")
        .args(["-c", GUEST_ADDRESS, "-J", "-t"])
        .arg(options.seconds.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start iperf3: {e}"))?;
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(options.skip_s));
    let from = session.output().len();
    // Wait for the client, bounded: it should end after `seconds`.
    let deadline = started + Duration::from_secs(options.seconds + 60);
    let status = loop {
        if let Some(status) = client.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = client.kill();
            let _ = client.wait();
            return Err(format!(
                "iperf3 did not finish within {} s (serial log: {})",
                options.seconds + 60,
                session.log_path().display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let to = session.output().len();
    let out = client
        .wait_with_output()
        .map_err(|e| format!("iperf3: {e}"))?;
    let report = String::from_utf8_lossy(&out.stdout);
    if !status.success() {
        return Err(format!(
            "iperf3 failed ({status}): {}{}",
            report.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let output = session.output();
    let windows = steady_windows(&output[from..to]);
    if windows.is_empty() {
        return Err(format!(
            "no KERNEL-SHARE line in the steady state (serial log: {})",
            session.log_path().display()
        ));
    }
    let measured = Measured {
        method,
        variant: variant.to_env_string(),
        total: sum(&windows),
        window_shares: windows.iter().map(Summary::kernel_share).collect(),
        full_windows: windows.iter().filter(|w| w.full).count(),
        throughput_bps: received_bps(&report),
        tsc_mhz: tsc_mhz(&output),
    };
    step(&format!(
        "kernel share, {} interrupts: {:.1} % of the CPU over {} windows ({} full), {:.0} Mbit/s",
        method.name,
        measured.total.kernel_share() * 100.0,
        windows.len(),
        measured.full_windows,
        measured.throughput_bps.unwrap_or(0.0) / 1e6
    ));
    Ok(measured)
}

/// Checks that `system` (loaded from a derived description) asks for what `method` and
/// `window_ms` need.
fn check_derived(system: &sysdesc::System, method: Method, window_ms: u64) -> Result<()> {
    let (nic, driver) = crate::derive::nic(system)?;
    let window = window_ms.to_string();
    if driver.args.get("kernel_log_ms").map(|s| s.as_str()) != Some(window.as_str()) {
        return Err("the derived system lost its kernel_log_ms argument".into());
    }
    let expected = match method.nic_irq {
        "msi" => sysdesc::Irq::Msi,
        "msix" => sysdesc::Irq::MsiX,
        "ioapic" => sysdesc::Irq::IoApic { line: None },
        _ => sysdesc::Irq::Pic { line: None },
    };
    if nic.irq != Some(expected) {
        return Err(format!(
            "the derived system's NIC {} has irq {:?}, not {expected:?}",
            nic.name, nic.irq
        ));
    }
    Ok(())
}

/// The `KERNEL-SHARE` lines in `output`, parsed; garbled lines (e.g. interleaved with
/// another component's output) are left out.
pub fn steady_windows(output: &str) -> Vec<Summary> {
    output
        .lines()
        .filter(|l| l.contains(kernel_log::LINE_PREFIX))
        .filter_map(|l| Summary::parse(l).ok())
        .collect()
}

/// The windows summed.
pub fn sum(windows: &[Summary]) -> Summary {
    let mut total = Summary::new();
    for w in windows {
        total.merge(w);
    }
    total
}

/// `end.sum_received.bits_per_second` of an iperf3 `-J` report.
pub fn received_bps(report: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(report.trim()).ok()?;
    v["end"]["sum_received"]["bits_per_second"].as_f64()
}

/// The TSC frequency in the component's start-up line (`..., TSC 2400 MHz, ...`).
pub fn tsc_mhz(output: &str) -> Option<u64> {
    let at = output.find("TSC ")? + 4;
    let digits: String = output[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    output[at + digits.len()..]
        .starts_with(" MHz")
        .then(|| digits.parse().ok())
        .flatten()
}

fn tally_json(cycles: u64, count: u64, window: u64) -> serde_json::Value {
    let share = if window == 0 {
        0.0
    } else {
        cycles as f64 / window as f64
    };
    serde_json::json!({ "cycles": cycles, "count": count, "share": share })
}

/// The report as JSON (`target/bench/kernel.json`):
///
/// ```text
/// {
///   "schema": "tessera-bench-kernel/1",
///   "system": "net-unikernel",       // the description the measured systems derive from
///   "seconds": 10, "skip_seconds": 2, // iperf3 -t; leading seconds left out
///   "window_ms": 100,                 // the component's kernel_log_ms
///   "kinds": ["interrupt", ...],      // every kind, in report order
///   "methods": [{
///     "method": "msi" | "ioapic" | "pic" | "msix",
///     "kernel_variant": "bench=entries,irq=ioapic",
///     "nic_irq": "msi" | "ioapic" | "pic" | "msix", // nic0's irq in the description
///     "throughput_bps": 6.1e8 | null,         // iperf3's received rate
///     "tsc_mhz": 2400 | null,                 // cycles -> time, as the component calibrated
///     "windows": 57, "full_windows": 3,       // steady-state windows; those whose log filled
///     "window_cycles": 1.3e10,                // summed windows (TSC cycles)
///     "entries": 912345,                      // kernel entries in them
///     "kernel": {"cycles": .., "count": .., "share": 0.31},   // share = cycles / window_cycles
///     "kernel_share_per_window": {"median": .., "min": .., "max": ..},
///     "by_kind": {"interrupt": {"cycles": .., "count": .., "share": ..}, ...},  // every kind
///     "by_irq": {"11": {"cycles": .., "count": .., "share": ..}, ...}  // IRQ = vector - 0x20
///   }, ...]
/// }
/// ```
pub fn json(options: &Options, results: &[Measured]) -> serde_json::Value {
    let system = build::load_system(&options.system)
        .map(|s| s.name)
        .unwrap_or_else(|_| options.system.display().to_string());
    let methods: Vec<serde_json::Value> = results
        .iter()
        .map(|m| {
            let t = &m.total;
            let w = t.window_cycles;
            let kernel = t.kernel();
            let by_kind: serde_json::Map<String, serde_json::Value> = Kind::ALL
                .into_iter()
                .map(|k| {
                    let x = t.tally(k);
                    (k.name().to_string(), tally_json(x.cycles, x.count, w))
                })
                .collect();
            let by_irq: serde_json::Map<String, serde_json::Value> = t
                .irqs()
                .map(|(irq, x)| (irq.to_string(), tally_json(x.cycles, x.count, w)))
                .collect();
            let per_window = shared::Summary::of(&m.window_shares)
                .map(|s| serde_json::json!({ "median": s.median, "min": s.min, "max": s.max }));
            serde_json::json!({
                "method": m.method.name,
                "kernel_variant": m.variant,
                "nic_irq": m.method.nic_irq,
                "throughput_bps": m.throughput_bps,
                "tsc_mhz": m.tsc_mhz,
                "windows": m.window_shares.len(),
                "full_windows": m.full_windows,
                "window_cycles": w,
                "entries": t.entries,
                "kernel": tally_json(kernel.cycles, kernel.count, w),
                "kernel_share_per_window": per_window,
                "by_kind": by_kind,
                "by_irq": by_irq,
            })
        })
        .collect();
    serde_json::json!({
        "schema": SCHEMA,
        "system": system,
        "seconds": options.seconds,
        "skip_seconds": options.skip_s,
        "window_ms": options.window_ms,
        "kinds": Kind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "methods": methods,
    })
}

/// A plain-text table: one row per kind with a share of at least 0.05 % in any method,
/// columns per method (percent of the CPU), then the totals.
pub fn table(results: &[Measured]) -> String {
    let mut s = format!("{:<16}", "kernel entry");
    for m in results {
        s.push_str(&format!("{:>12}", m.method.name));
    }
    s.push('\n');
    for kind in Kind::ALL {
        if results.iter().all(|m| m.total.share(kind) < 0.0005) {
            continue;
        }
        s.push_str(&format!("{:<16}", kind.name()));
        for m in results {
            s.push_str(&format!("{:>11.2}%", m.total.share(kind) * 100.0));
        }
        s.push('\n');
    }
    s.push_str(&format!("{:<16}", "kernel total"));
    for m in results {
        s.push_str(&format!("{:>11.2}%", m.total.kernel_share() * 100.0));
    }
    s.push('\n');
    s.push_str(&format!("{:<16}", "Mbit/s"));
    for m in results {
        s.push_str(&format!("{:>12.0}", m.throughput_bps.unwrap_or(0.0) / 1e6));
    }
    s.push('\n');
    s
}

/// Draws `json` (a `kernel.json` report) into `png` with `xtask/plot/kernel.py`: one
/// stacked bar per method, a segment per kind (python3 with matplotlib).
pub fn plot(json: &Path, png: &Path) -> Result<()> {
    host::ensure(host::Purpose::Plot)?;
    let script = workspace_root().join("xtask/plot/kernel.py");
    let out = std::process::Command::new(host::PLOT_PYTHON)
        .arg(&script)
        .arg(json)
        .arg(png)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", host::PLOT_PYTHON))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> String {
        std::fs::read_to_string(workspace_root().join("systems/net-unikernel.toml")).unwrap()
    }

    fn load(text: &str, name: &str) -> sysdesc::System {
        let dir = std::env::temp_dir().join(format!("bench-kernel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        build::load_system(&path).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn derive_system(base: &str, name: &str, method: Method, window_ms: u64) -> Result<String> {
        let window = window_ms.to_string();
        crate::derive::derive_system(
            base,
            "net-unikernel.toml",
            name,
            method.nic_irq,
            &[("kernel_log_ms", &window)],
        )
    }

    #[test]
    fn derived_systems_ask_for_the_window_and_the_methods_interrupt() {
        for method in METHODS {
            let name = format!("nu-{}", method.name);
            let text = derive_system(&base(), &name, method, 50).unwrap();
            let system = load(&text, &name);
            assert_eq!(system.name, name);
            check_derived(&system, method, 50).unwrap();
            let iperf = system
                .components
                .iter()
                .find(|c| c.binary == "iperf-sel4")
                .unwrap();
            assert_eq!(iperf.args.get("port").map(|s| s.as_str()), Some("5201"));
            if method.controller == "pic" {
                let pit = system.devices.iter().find(|d| d.name == "pit").unwrap();
                assert_eq!(pit.irq, Some(sysdesc::Irq::Pic { line: Some(0) }));
            }
        }
        // Twice: the window is replaced, not repeated.
        let once = derive_system(&base(), "a", METHODS[0], 50).unwrap();
        let twice = derive_system(&once, "a", METHODS[0], 70).unwrap();
        check_derived(&load(&twice, "a"), METHODS[0], 70).unwrap();
        assert_eq!(twice.matches("kernel_log_ms").count(), 1);
    }

    #[test]
    fn derivation_fails_without_the_parts_it_rewrites() {
        let no_nic = base().replace("name = \"nic0\"", "name = \"nic1\"");
        assert!(derive_system(&no_nic, "x", METHODS[0], 50)
            .unwrap_err()
            .contains("nic0"));
        // The driver is the component given the NIC, whatever its binary.
        let no_driver = base().replace("devices = [\"nic0\", ", "devices = [");
        assert!(derive_system(&no_driver, "x", METHODS[0], 50)
            .unwrap_err()
            .contains("\"nic0\" is not driven"));
        let other_binary = base().replace("iperf-sel4", "iperf-other");
        let text = derive_system(&other_binary, "y", METHODS[0], 50).unwrap();
        check_derived(&load(&text, "y"), METHODS[0], 50).unwrap();
        assert!(Method::parse("apic").is_err());
        assert_eq!(
            Method::parse("pic").unwrap().variant().get("irq"),
            Some("pic")
        );
    }

    /// A line as the component prints it, with interrupts on IRQ 11 only.
    fn line(window: u64, interrupt: (u64, u64), full: bool) -> String {
        let kinds: Vec<String> = Kind::ALL
            .iter()
            .map(|k| {
                let t = if *k == Kind::Interrupt {
                    interrupt
                } else {
                    (0, 0)
                };
                format!("{}={}/{}", k.name(), t.0, t.1)
            })
            .collect();
        format!(
            "KERNEL-SHARE window_cycles={window} entries={} full={} {} irq11={}/{}",
            interrupt.1,
            u8::from(full),
            kinds.join(" "),
            interrupt.0,
            interrupt.1
        )
    }

    #[test]
    fn steady_state_windows_are_summed_and_garbled_lines_skipped() {
        let out = format!(
            "iperf: t=1\n{}\n{}\nKERNEL-SHARE window_cycles=5 entr\n{}\n",
            line(1000, (100, 4), false),
            line(1000, (300, 6), true),
            line(2000, (200, 5), false)
        );
        let windows = steady_windows(&out);
        assert_eq!(windows.len(), 3);
        let total = sum(&windows);
        assert_eq!(total.window_cycles, 4000);
        assert_eq!(total.tally(Kind::Interrupt).cycles, 600);
        assert_eq!(total.irq(11).count, 15);
        assert!((total.kernel_share() - 0.15).abs() < 1e-12);
        let shares: Vec<f64> = windows.iter().map(Summary::kernel_share).collect();
        let spread = shared::Summary::of(&shares).unwrap();
        assert_eq!((spread.median, spread.min, spread.max), (0.1, 0.1, 0.3));
    }

    #[test]
    fn json_has_every_kind_and_the_documented_fields() {
        let windows = steady_windows(&line(1000, (250, 5), false));
        let m = Measured {
            method: METHODS[1],
            variant: METHODS[1].variant().to_env_string(),
            total: sum(&windows),
            window_shares: vec![0.25],
            full_windows: 0,
            throughput_bps: Some(5e8),
            tsc_mhz: Some(2400),
        };
        let v = json(&Options::default(), std::slice::from_ref(&m));
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["system"], "net-unikernel");
        let r = &v["methods"][0];
        assert_eq!(r["method"], "ioapic");
        assert_eq!(r["nic_irq"], "ioapic");
        assert_eq!(r["windows"], 1);
        assert_eq!(r["kernel"]["share"], 0.25);
        assert_eq!(r["by_kind"]["interrupt"]["cycles"], 250);
        assert_eq!(r["by_kind"].as_object().unwrap().len(), Kind::COUNT);
        assert_eq!(r["by_irq"]["11"]["count"], 5);
        assert_eq!(r["kernel_share_per_window"]["median"], 0.25);
        let t = table(std::slice::from_ref(&m));
        assert!(t.contains("interrupt") && t.contains("25.00%"), "{t}");
        assert!(!t.contains("yield"), "kinds without time are left out: {t}");
    }

    /// Plots a canned report when matplotlib is there (the chart is checked by eye; here
    /// only that the script accepts the schema and writes a PNG).
    #[test]
    fn the_plot_script_reads_the_schema() {
        if std::process::Command::new(host::PLOT_PYTHON)
            .args(["-c", "import matplotlib"])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("skipped: no matplotlib for {}", host::PLOT_PYTHON);
            return;
        }
        let windows = steady_windows(&line(1000, (250, 5), true));
        let results: Vec<Measured> = METHODS
            .iter()
            .map(|&method| Measured {
                method,
                variant: method.variant().to_env_string(),
                total: sum(&windows),
                window_shares: vec![0.25],
                full_windows: 1,
                throughput_bps: None,
                tsc_mhz: None,
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("bench-kernel-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kernel.json");
        std::fs::write(&path, json(&Options::default(), &results).to_string()).unwrap();
        plot(&path, &dir.join("kernel.png")).unwrap();
        let bytes = std::fs::read(dir.join("kernel.png")).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn profiles_scale_the_run() {
        let quick = Options::for_profile(Profile::Quick);
        assert_eq!(quick.methods, [METHODS[0]]);
        let full = Options::for_profile(Profile::Full);
        assert_eq!((full.seconds, full.skip_s, full.methods.len()), (20, 10, 4));
        assert!(Options::default().seconds > Options::default().skip_s);
    }

    #[test]
    fn reads_iperf3_and_the_components_start_up_line() {
        let report = r#"{"end": {"sum_received": {"bytes": 10, "bits_per_second": 612345678.5}}}"#;
        assert_eq!(received_bps(report), Some(612345678.5));
        assert_eq!(received_bps("not json"), None);
        let out = "iperf: nic0 e1000e ..., DMA at 0x1000, TSC 2394 MHz, PIT deadlines";
        assert_eq!(tsc_mhz(out), Some(2394));
        assert_eq!(tsc_mhz("TSC unknown"), None);
    }
}
