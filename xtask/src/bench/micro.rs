//! The microbenchmarks (issue 5, item 4): boots `systems/bench/micro.toml` under QEMU,
//! where the `microbench` component (apps/microbench) measures in TSC cycles the IPC round
//! trip (Call + ReplyRecv) within one address space and across two, the notification
//! signal-to-wake latency within one and across two, and the interrupt-to-driver latency
//! (an e1000e raises its MSI, the driver thread waiting on the notification wakes); and
//! the `linux` component times a Linux program's null system call (a rewritten `getpid`
//! through the page-0 trampoline into the Linux layer, docs/LINUX.md) before it runs
//! busybox; then reads the `BENCH` lines they print.
//!
//! Line format (one per benchmark, after the warm-up rounds):
//! `BENCH <name> n=<count> median=<c> min=<c> p10=<c> p90=<c> max=<c> unit=cycles`.
//! A benchmark that fails prints `BENCH-ERROR <name>: <why>` instead; the system then
//! halts with status 1.

use super::shared;
use crate::qemu::{self, Boot, Outcome, Session};
use crate::{build, step, workspace_root, Result};
use kernel_support::Variant;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The system description the microbenchmarks run in (relative to the workspace root).
pub const SYSTEM: &str = "systems/bench/micro.toml";
/// The benchmarks, in the order they are printed: the `linux` component's (it runs at a
/// higher priority and finishes first), then `microbench`'s (`microbench::BENCHMARKS`).
pub const BENCHMARKS: [&str; 6] = [
    "linux_null_syscall",
    "ipc_same_as",
    "ipc_cross_as",
    "notify_same_as",
    "notify_cross_as",
    "irq_to_driver",
];
/// The component in [`SYSTEM`] that measures, and whose arguments set the round counts.
pub const COMPONENT: &str = "microbench";
/// The component in [`SYSTEM`] that times the Linux null system call (`bench_null` rounds).
pub const LINUX_COMPONENT: &str = "linux";
/// How long one boot may take, build excluded (under TCG on a loaded 2-core host the
/// benchmarks take well under a minute).
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// One benchmark's result, in TSC cycles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroResult {
    /// The benchmark (one of [`BENCHMARKS`]).
    pub name: String,
    /// Timed rounds.
    pub n: u64,
    /// Median (nearest rank: the lower middle of an even count).
    pub median: u64,
    /// Smallest round.
    pub min: u64,
    /// 10th percentile (nearest rank).
    pub p10: u64,
    /// 90th percentile (nearest rank).
    pub p90: u64,
    /// Largest round.
    pub max: u64,
    /// The unit of the figures (`cycles`).
    pub unit: String,
    /// The TSC frequency in MHz as the kernel calibrated it at boot (printed by the root
    /// task), to turn cycles into time; `None` when the output did not say.
    pub tsc_mhz: Option<u64>,
}

impl MicroResult {
    /// Parses a `BENCH` line (surrounding whitespace and `\r` allowed); `Ok(None)` for any
    /// other line, an error naming the problem for a malformed `BENCH` line.
    pub fn parse(line: &str) -> Result<Option<MicroResult>> {
        let Some(rest) = line.trim().strip_prefix("BENCH") else {
            return Ok(None);
        };
        // `BENCH-ERROR`, `BENCHMARK`, ...: another line.
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            return Ok(None);
        }
        let bad = |why: &str| format!("malformed benchmark line {:?}: {why}", line.trim());
        let mut words = rest.split_whitespace();
        let name = words.next().ok_or_else(|| bad("no name"))?;
        if name.contains('=') {
            return Err(bad("no name"));
        }
        let mut fields: Vec<(&str, &str)> = Vec::new();
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| bad(&format!("`{word}` is not key=value")))?;
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(bad(&format!("`{key}` twice")));
            }
            fields.push((key, value));
        }
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .ok_or_else(|| bad(&format!("no `{key}`")))
        };
        let number = |key: &str| -> Result<u64> {
            let value = get(key)?;
            value
                .parse()
                .map_err(|_| bad(&format!("`{key}={value}` is not a whole number")))
        };
        let known = ["n", "median", "min", "p10", "p90", "max", "unit"];
        if let Some((key, _)) = fields.iter().find(|(k, _)| !known.contains(k)) {
            return Err(bad(&format!("unknown field `{key}`")));
        }
        Ok(Some(MicroResult {
            name: name.to_string(),
            n: number("n")?,
            median: number("median")?,
            min: number("min")?,
            p10: number("p10")?,
            p90: number("p90")?,
            max: number("max")?,
            unit: get("unit")?.to_string(),
            tsc_mhz: None,
        }))
    }

    /// Checks the figures are consistent: at least one round, `0 < min <= p10 <= median
    /// <= p90 <= max`, in cycles. Says what is wrong otherwise.
    pub fn check(&self) -> Result<()> {
        let ordered = self.min <= self.p10
            && self.p10 <= self.median
            && self.median <= self.p90
            && self.p90 <= self.max;
        if self.n == 0 {
            Err(format!("{}: no rounds", self.name))
        } else if self.unit != "cycles" {
            Err(format!("{}: unit `{}`, not cycles", self.name, self.unit))
        } else if self.min == 0 {
            Err(format!("{}: a round of 0 cycles", self.name))
        } else if !ordered {
            Err(format!(
                "{}: min {} p10 {} median {} p90 {} max {} are out of order",
                self.name, self.min, self.p10, self.median, self.p90, self.max
            ))
        } else {
            Ok(())
        }
    }

    /// `cycles` in nanoseconds at the boot's TSC frequency, if known.
    pub fn ns(&self, cycles: u64) -> Option<f64> {
        self.tsc_mhz
            .filter(|&mhz| mhz > 0)
            .map(|mhz| cycles as f64 * 1000.0 / mhz as f64)
    }

    /// The result as a JSON object: `name`, `n`, `median`, `min`, `p10`, `p90`, `max`,
    /// `unit`, and `tsc_mhz` (null when unknown).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "n": self.n,
            "median": self.median,
            "min": self.min,
            "p10": self.p10,
            "p90": self.p90,
            "max": self.max,
            "unit": self.unit,
            "tsc_mhz": self.tsc_mhz,
        })
    }
}

/// The TSC frequency the root task printed (`tsc: N MHz`), if any.
fn tsc_mhz(output: &str) -> Option<u64> {
    output.lines().find_map(|l| {
        l.trim()
            .strip_prefix("tsc: ")?
            .strip_suffix(" MHz")?
            .parse()
            .ok()
    })
}

/// Every `BENCH` line of a boot's serial `output`, in order, with the boot's TSC
/// frequency. Fails on a malformed `BENCH` line and on a `BENCH-ERROR` line.
pub fn parse(output: &str) -> Result<Vec<MicroResult>> {
    let tsc = tsc_mhz(output);
    let mut results = Vec::new();
    for line in output.lines() {
        if let Some(error) = line.trim().strip_prefix("BENCH-ERROR ") {
            return Err(format!("a microbenchmark failed: {error}"));
        }
        if let Some(mut r) = MicroResult::parse(line)? {
            r.tsc_mhz = tsc;
            results.push(r);
        }
    }
    Ok(results)
}

/// The timed rounds `system` asks the measuring component for, per benchmark: its
/// `iterations` argument (default 10000) for IPC and notifications, `irq_iterations` for
/// the interrupt, and the `linux` component's `bench_null` for the Linux null system call.
pub fn expected_rounds(system: &sysdesc::System, benchmark: &str) -> Result<u64> {
    if benchmark == "linux_null_syscall" {
        let linux = system
            .components
            .iter()
            .find(|c| c.name == LINUX_COMPONENT)
            .ok_or_else(|| {
                format!(
                    "system `{}` has no component `{LINUX_COMPONENT}`",
                    system.name
                )
            })?;
        let v = linux
            .args
            .get("bench_null")
            .ok_or_else(|| format!("{LINUX_COMPONENT}: no bench_null argument"))?;
        return v
            .trim()
            .parse()
            .map_err(|_| format!("{LINUX_COMPONENT}: argument bench_null={v:?} is not a number"));
    }
    let component = system
        .components
        .iter()
        .find(|c| c.name == COMPONENT)
        .ok_or_else(|| format!("system `{}` has no component `{COMPONENT}`", system.name))?;
    let key = if benchmark == "irq_to_driver" {
        "irq_iterations"
    } else {
        "iterations"
    };
    match component.args.get(key) {
        None => Ok(10_000),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{COMPONENT}: argument {key}={v:?} is not a number")),
    }
}

/// Checks `results` hold every benchmark of [`BENCHMARKS`] once, in order, each
/// consistent ([`MicroResult::check`]) and with the rounds `system` asks for.
pub fn check_complete(system: &sysdesc::System, results: &[MicroResult]) -> Result<()> {
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    if names != BENCHMARKS {
        return Err(format!(
            "expected the benchmarks {BENCHMARKS:?}, got {names:?}"
        ));
    }
    for r in results {
        r.check()?;
        let expected = expected_rounds(system, &r.name)?;
        if r.n != expected {
            return Err(format!(
                "{}: {} rounds, the description asks for {expected}",
                r.name, r.n
            ));
        }
    }
    Ok(())
}

/// The description at [`SYSTEM`].
pub fn system() -> Result<sysdesc::System> {
    build::load_system(&workspace_root().join(SYSTEM))
}

/// A boot of the microbenchmark image (`kernel` + `root`, built from [`SYSTEM`]) with the
/// NIC its description names (on user networking, nothing forwarded), its serial log at
/// `log`, and [`TIMEOUT`].
pub fn boot(kernel: PathBuf, root: PathBuf, log: PathBuf) -> Result<Boot> {
    let mut boot = Boot::new(kernel, root, log);
    boot.timeout = TIMEOUT;
    boot.extra = qemu::net::qemu_args(&system()?, qemu::net::Mode::User)?;
    Ok(boot)
}

/// Builds [`SYSTEM`] (default kernel variant), boots it until it halts, and returns the
/// results, checked with [`check_complete`]. The serial log is kept in
/// `target/logs/bench-micro.log`.
pub fn measure() -> Result<Vec<MicroResult>> {
    let path = workspace_root().join(SYSTEM);
    let system = system()?;
    let image = build::image(&Variant::default(), Some(&path))?;
    let log = crate::target_dir().join("logs").join("bench-micro.log");
    step(&format!(
        "microbenchmarks: booting {SYSTEM} (serial log {})",
        log.display()
    ));
    let mut session = Session::start(
        &boot(image.kernel.elf32.clone(), image.root.clone(), log.clone())?,
        false,
    )?;
    let outcome = session.wait_exit();
    let output = session.output();
    let results = parse(&output).map_err(|e| with_log(e, &log))?;
    if outcome != Outcome::Exited(0) {
        return Err(with_log(
            format!("the microbenchmark system ended with {outcome:?}"),
            &log,
        ));
    }
    check_complete(&system, &results).map_err(|e| with_log(e, &log))?;
    for r in &results {
        step(&format!(
            "{}: median {} cycles (min {}, p10 {}, p90 {}, max {}; {} rounds)",
            r.name, r.median, r.min, r.p10, r.p90, r.max, r.n
        ));
    }
    Ok(results)
}

/// Runs the microbenchmarks (`systems/bench/micro.toml`: IPC round trips, notification
/// and interrupt-to-driver latencies, in TSC cycles), prints them and writes
/// `target/bench/micro.json`: `{"schema": "tessera-bench-micro/1", "results": [..]}` with
/// one object per benchmark as [`MicroResult::to_json`] describes.
pub fn run() -> Result<()> {
    let results = measure()?;
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "benchmark", "median", "min", "p10", "p90", "max", "median ns"
    );
    for r in &results {
        let ns = r
            .ns(r.median)
            .map_or("-".to_string(), |ns| format!("{ns:.0}"));
        println!(
            "{:<16} {:>10} {:>10} {:>10} {:>10} {:>12} {:>10}",
            r.name, r.median, r.min, r.p10, r.p90, r.max, ns
        );
    }
    let json = serde_json::json!({
        "schema": "tessera-bench-micro/1",
        "unit": "TSC cycles",
        "results": results.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
    });
    let dir = shared::dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("micro.json");
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::step(&format!("wrote {}", path.display()));
    Ok(())
}

fn with_log(e: String, log: &Path) -> String {
    format!("{e} (serial log: {})", log.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str =
        "BENCH ipc_same_as n=10000 median=3822 min=3562 p10=3718 p90=3926 max=497328 unit=cycles\r";

    fn result(name: &str, n: u64) -> MicroResult {
        MicroResult {
            name: name.into(),
            n,
            median: 100,
            min: 10,
            p10: 50,
            p90: 200,
            max: 900,
            unit: "cycles".into(),
            tsc_mhz: Some(2000),
        }
    }

    #[test]
    fn a_bench_line_parses_into_its_fields() {
        let r = MicroResult::parse(LINE).unwrap().unwrap();
        assert_eq!(
            r,
            MicroResult {
                name: "ipc_same_as".into(),
                n: 10_000,
                median: 3822,
                min: 3562,
                p10: 3718,
                p90: 3926,
                max: 497_328,
                unit: "cycles".into(),
                tsc_mhz: None,
            }
        );
        assert_eq!(r.check(), Ok(()));
        assert_eq!(MicroResult::parse("microbench: done").unwrap(), None);
        assert_eq!(MicroResult::parse("BENCHMARK x").unwrap(), None);
        assert_eq!(MicroResult::parse("BENCH-ERROR x: lost").unwrap(), None);
    }

    #[test]
    fn malformed_bench_lines_are_errors() {
        for (line, why) in [
            ("BENCH ", "no name"),
            ("BENCH", "no name"),
            ("BENCH n=1", "no name"),
            ("BENCH x n=1 median=2 min=1 p10=1 p90=2 max=3", "no `unit`"),
            (
                "BENCH x n=1 median=two min=1 p10=1 p90=2 max=3 unit=cycles",
                "`median=two`",
            ),
            (
                "BENCH x n=1 median=2 min=1 p10=1 p90=2 max=3 unit=cycles n=2",
                "`n` twice",
            ),
            (
                "BENCH x n=1 median=2 min=1 p10=1 p90=2 max=3 unit=cycles mean=2",
                "`mean`",
            ),
            (
                "BENCH x n=1 median=2 min=1 p10 p90=2 max=3 unit=cycles",
                "`p10` is not",
            ),
        ] {
            let e = MicroResult::parse(line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn check_finds_inconsistent_figures() {
        assert_eq!(result("a", 5).check(), Ok(()));
        let mut r = result("a", 0);
        assert!(r.check().unwrap_err().contains("no rounds"));
        r = result("a", 5);
        r.min = 0;
        r.p10 = 0;
        assert!(r.check().unwrap_err().contains("0 cycles"));
        r = result("a", 5);
        r.p90 = 50_000;
        assert!(r.check().unwrap_err().contains("out of order"));
        r = result("a", 5);
        r.unit = "ns".into();
        assert!(r.check().unwrap_err().contains("unit"));
    }

    #[test]
    fn output_parses_with_the_tsc_frequency_and_errors_fail() {
        let output = format!("tsc: 2594 MHz\r\nproc: ready\r\n{LINE}\nmicrobench: done\n");
        let results = parse(&output).unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].tsc_mhz, Some(2594));
        let ns = results[0].ns(2594).unwrap();
        assert!((ns - 1000.0).abs() < 1e-9, "{ns}");
        assert_eq!(result("a", 1).to_json()["tsc_mhz"], 2000);
        assert_eq!(result("a", 1).to_json()["median"], 100);

        let failed =
            format!("{LINE}\nBENCH-ERROR irq_to_driver: round 3: the event never arrived\n");
        assert!(parse(&failed).unwrap_err().contains("round 3"));
        assert_eq!(parse("no benchmarks here").unwrap(), []);
    }

    #[test]
    fn the_description_is_valid_and_gets_an_e1000e() {
        let system = system().unwrap();
        let args = qemu::net::qemu_args(&system, qemu::net::Mode::User).unwrap();
        assert_eq!(args[..2], ["-device", "e1000e,netdev=n0"]);
        assert!(!args[3].contains("hostfwd"), "{args:?}");
        for name in BENCHMARKS {
            assert!(expected_rounds(&system, name).unwrap() > 0);
        }
    }

    #[test]
    fn completeness_needs_every_benchmark_once_with_its_rounds() {
        let system = system().unwrap();
        let all: Vec<MicroResult> = BENCHMARKS
            .iter()
            .map(|n| result(n, expected_rounds(&system, n).unwrap()))
            .collect();
        assert_eq!(check_complete(&system, &all), Ok(()));
        assert!(check_complete(&system, &all[1..]).is_err());
        let mut twice = all.clone();
        twice.push(all[0].clone());
        assert!(check_complete(&system, &twice).is_err());
        let mut short = all.clone();
        short[2].n -= 1;
        assert!(check_complete(&system, &short)
            .unwrap_err()
            .contains("rounds"));
    }
}
