//! The `STAT up_us=U idle_us=I` line: a guest's CPU accounting on its serial console. The
//! Tessera iperf component (arg `stat_ms`) and the Linux baseline guest print it; `cargo
//! xtask bench` reads it. The guest's CPU utilisation between two lines is 1 − Δidle/Δup.
//!
//! Defined here once, for the printer and the reader: [`Stat`]'s `Display` writes the line
//! and [`Stat::parse`] reads it back.

use core::fmt;

/// What a `STAT` line starts with (the word and one space).
pub const PREFIX: &str = "STAT ";
/// The key of the microseconds since boot.
pub const UP_KEY: &str = "up_us";
/// The key of the microseconds the CPU was idle since boot.
pub const IDLE_KEY: &str = "idle_us";

/// One CPU accounting sample, as a `STAT` line carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Microseconds since the guest booted.
    pub up_us: u64,
    /// Microseconds the guest's CPU was idle (Linux: idle + iowait) since it booted.
    pub idle_us: u64,
}

impl Stat {
    /// The sample of `up_ns` nanoseconds since boot, `idle_ns` of them idle (rounded down to
    /// microseconds).
    pub fn from_ns(up_ns: u64, idle_ns: u64) -> Stat {
        Stat {
            up_us: up_ns / 1_000,
            idle_us: idle_ns / 1_000,
        }
    }

    /// Parses one line (surrounding whitespace and a trailing `\r` allowed); `None` unless it
    /// is exactly a `STAT` line with both keys and nothing else.
    pub fn parse(line: &str) -> Option<Stat> {
        let rest = line.trim().strip_prefix(PREFIX)?;
        let mut up = None;
        let mut idle = None;
        for word in rest.split_whitespace() {
            match word.split_once('=') {
                Some((UP_KEY, v)) => up = v.parse().ok(),
                Some((IDLE_KEY, v)) => idle = v.parse().ok(),
                _ => return None,
            }
        }
        Some(Stat {
            up_us: up?,
            idle_us: idle?,
        })
    }

    /// CPU utilisation in per cent between `self` and a later sample: 100 · (1 − Δidle/Δup);
    /// `None` when no guest time passed or the samples go backwards (a reboot).
    pub fn utilisation_until(&self, later: &Stat) -> Option<f64> {
        let up = later.up_us.checked_sub(self.up_us)?;
        let idle = later.idle_us.checked_sub(self.idle_us)?;
        if up == 0 {
            return None;
        }
        Some((100.0 * (1.0 - idle as f64 / up as f64)).clamp(0.0, 100.0))
    }
}

impl fmt::Display for Stat {
    /// `STAT up_us=U idle_us=I`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{UP_KEY}={} {IDLE_KEY}={}",
            self.up_us, self.idle_us
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn a_printed_line_parses_back() {
        for stat in [
            Stat::from_ns(12_345_678, 999),
            Stat {
                up_us: u64::MAX,
                idle_us: 7,
            },
            Stat {
                up_us: 0,
                idle_us: 0,
            },
        ] {
            let line = stat.to_string();
            assert_eq!(Stat::parse(&line), Some(stat), "{line}");
            assert_eq!(Stat::parse(&(line.clone() + "\r\n")), Some(stat), "{line}");
        }
        assert_eq!(
            Stat::from_ns(12_345_678, 999).to_string(),
            "STAT up_us=12345 idle_us=0"
        );
    }

    #[test]
    fn other_lines_do_not_parse() {
        assert_eq!(
            Stat::parse("STAT up_us=7180000 idle_us=3050000\r"),
            Some(Stat {
                up_us: 7_180_000,
                idle_us: 3_050_000
            })
        );
        assert_eq!(Stat::parse("STAT up_us=1"), None);
        assert_eq!(Stat::parse("STAT up_us=x idle_us=2"), None);
        assert_eq!(Stat::parse("STAT up_us=1 idle_us=2 extra=3"), None);
        assert_eq!(Stat::parse("iperf: STAT up_us=1 idle_us=2"), None);
    }

    #[test]
    fn utilisation_is_one_minus_idle_over_uptime() {
        let a = Stat {
            up_us: 1_000_000,
            idle_us: 900_000,
        };
        let b = Stat {
            up_us: 3_000_000,
            idle_us: 2_400_000,
        };
        assert!((a.utilisation_until(&b).unwrap() - 25.0).abs() < 1e-9);
        assert_eq!(a.utilisation_until(&a), None);
        assert_eq!(b.utilisation_until(&a), None);
    }
}
