//! What every benchmark shares: the run profiles (`--quick`, default, `--full`), where
//! results go, the guest's `STAT` CPU accounting lines, the QEMU process's host CPU time,
//! and median/spread summaries.

use crate::Result;
use iperf::stat::{NetRates, Stat};
use std::path::PathBuf;

/// How much time a benchmark may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A few minutes: fewer systems, loads and shorter runs; for checking the harness.
    Quick,
    /// The default: the whole `cargo xtask bench` in under an hour on a 2-core host.
    Default,
    /// The paper's method (20 s runs, the first 10 s ignored, 5 repetitions).
    Full,
}

impl Profile {
    /// The name used in result files (`quick`, `default`, `full`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Quick => "quick",
            Profile::Default => "default",
            Profile::Full => "full",
        }
    }
}

/// Where results go: `target/bench/`.
pub fn dir() -> PathBuf {
    crate::target_dir().join("bench")
}

/// Every `STAT` line in `text` ([`iperf::stat`]), in order (other lines are skipped).
pub fn stats_in(text: &str) -> Vec<Stat> {
    text.lines().filter_map(Stat::parse).collect()
}

/// Guest CPU utilisation (per cent) over the `STAT` lines in `text`: from the first to the
/// last; `None` with fewer than two lines.
pub fn guest_utilisation(text: &str) -> Option<f64> {
    let stats = stats_in(text);
    stats.first()?.utilisation_until(stats.last()?)
}

/// The poll loop's rates over the `STAT` lines in `text` (first to last); `None` with
/// fewer than two lines or without the counters (the Linux guest prints none).
pub fn guest_net_rates(text: &str) -> Option<NetRates> {
    let stats = stats_in(text);
    stats.first()?.net_rates_until(stats.last()?)
}

/// The user + system CPU time (in clock ticks) in a `/proc/<pid>/stat` line.
pub fn cpu_ticks_of_stat_line(line: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 3.. of the line: state is fields[0], so utime (14) and stime (15) are 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, else 100).
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// The CPU time process `pid` has used so far (user + system), in seconds.
pub fn process_cpu_seconds(pid: u32, ticks_per_second: u64) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let line = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let ticks = cpu_ticks_of_stat_line(&line).ok_or_else(|| format!("{path}: unreadable"))?;
    Ok(ticks as f64 / ticks_per_second as f64)
}

/// The median and range of repeated measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values.
    pub count: usize,
}

impl Summary {
    /// Summarises `values` (non-finite values are ignored); `None` when none is left.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: v[0],
            max: v[n - 1],
            count: n,
        })
    }

    /// As JSON: `{"median": .., "min": .., "max": .., "n": ..}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "median": round(self.median),
            "min": round(self.min),
            "max": round(self.max),
            "n": self.count,
        })
    }
}

/// A summary as JSON, `null` when there is none.
pub fn summary_json(values: &[f64]) -> serde_json::Value {
    Summary::of(values).map_or(serde_json::Value::Null, |s| s.to_json())
}

/// Rounds to three decimals for the result files.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilisation_is_one_minus_idle_over_uptime() {
        let text = "boot\nSTAT up_us=1000000 idle_us=900000\nnoise\n\
                    STAT up_us=1500000 idle_us=1200000\nSTAT up_us=3000000 idle_us=2400000\n";
        // From the first to the last line: 2 s up, 1.5 s idle.
        assert!((guest_utilisation(text).unwrap() - 25.0).abs() < 1e-9);
        assert_eq!(guest_utilisation("STAT up_us=1 idle_us=0\n"), None);
        let a = Stat {
            up_us: 10,
            idle_us: 5,
            net: None,
        };
        assert_eq!(a.utilisation_until(&a), None);
        let reboot = Stat {
            up_us: 2,
            idle_us: 1,
            net: None,
        };
        assert_eq!(a.utilisation_until(&reboot), None);
    }

    #[test]
    fn net_rates_come_from_the_first_and_last_line() {
        let text = "STAT up_us=1000000 idle_us=0 irqs=10 polls=20 busy_polls=10 frames=100\n\
                    STAT up_us=1500000 idle_us=0 irqs=11 polls=21 busy_polls=11 frames=101\n\
                    STAT up_us=3000000 idle_us=0 irqs=2010 polls=4020 busy_polls=1010 frames=20100\n";
        let rates = guest_net_rates(text).unwrap();
        assert_eq!(rates.irqs_per_s, 1000.0);
        assert_eq!(rates.frames_per_busy_poll, Some(20.0));
        assert!(guest_net_rates("STAT up_us=1 idle_us=0\nSTAT up_us=9 idle_us=0\n").is_none());
    }

    #[test]
    fn proc_stat_cpu_time_skips_a_command_name_with_spaces() {
        let line = "4242 (qemu system x86) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 75 0 0 20 0 3 0 100 1000000 5000 18446744073709551615";
        assert_eq!(cpu_ticks_of_stat_line(line), Some(325));
        assert_eq!(cpu_ticks_of_stat_line("4242 (short) S 1"), None);
        let own = process_cpu_seconds(std::process::id(), clock_ticks_per_second());
        assert!(own.is_ok_and(|s| s >= 0.0));
    }

    #[test]
    fn summaries_give_median_and_range() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.count), (2.0, 1.0, 3.0, 3));
        let even = Summary::of(&[4.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!(even.median, 3.0);
        assert_eq!(Summary::of(&[f64::NAN]), None);
        assert_eq!(summary_json(&[]), serde_json::Value::Null);
        assert_eq!(summary_json(&[1.23456])["median"], 1.235);
    }
}
