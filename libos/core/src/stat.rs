//! The `STAT up_us=U idle_us=I` line: a guest's CPU accounting on its serial console. Tessera
//! components with a `stat_ms` arg (the iperf component, `net`) and the Linux baseline guest
//! print it; `cargo xtask bench` reads it. The guest's CPU utilisation between two lines is 1 − Δidle/Δup.
//!
//! Tessera adds its poll loop's counters ([`NetStat`]): ` irqs=N polls=P busy_polls=B
//! frames=F` (all four or none), from which [`Stat::net_rates_until`] gives interrupts per
//! second and frames per busy poll.
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
/// The keys of [`NetStat`]'s counters, in the order they are printed.
pub const NET_KEYS: [&str; 4] = ["irqs", "polls", "busy_polls", "frames"];

/// A network poll loop's counters since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStat {
    /// NIC interrupts delivered.
    pub irqs: u64,
    /// Polls of the network stack.
    pub polls: u64,
    /// Polls that moved frames.
    pub busy_polls: u64,
    /// Frames received and transmitted.
    pub frames: u64,
}

/// [`NetStat`] between two samples, per second of guest time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetRates {
    /// NIC interrupts per second.
    pub irqs_per_s: f64,
    /// Polls per second.
    pub polls_per_s: f64,
    /// Frames per poll that moved frames (`None` without such polls).
    pub frames_per_busy_poll: Option<f64>,
    /// Frames per interrupt (`None` without interrupts).
    pub frames_per_irq: Option<f64>,
}

/// One CPU accounting sample, as a `STAT` line carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Microseconds since the guest booted.
    pub up_us: u64,
    /// Microseconds the guest's CPU was idle (Linux: idle + iowait) since it booted.
    pub idle_us: u64,
    /// The poll loop's counters, when the guest reports them (Tessera does).
    pub net: Option<NetStat>,
}

impl Stat {
    /// The sample of `up_ns` nanoseconds since boot, `idle_ns` of them idle (rounded down to
    /// microseconds).
    pub fn from_ns(up_ns: u64, idle_ns: u64) -> Stat {
        Stat {
            up_us: up_ns / 1_000,
            idle_us: idle_ns / 1_000,
            net: None,
        }
    }

    /// The same sample with the poll loop's counters.
    pub fn with_net(self, net: NetStat) -> Stat {
        Stat {
            net: Some(net),
            ..self
        }
    }

    /// Parses one line (surrounding whitespace and a trailing `\r` allowed); `None` unless it
    /// is exactly a `STAT` line with both time keys, either all of [`NET_KEYS`] or none,
    /// and nothing else.
    pub fn parse(line: &str) -> Option<Stat> {
        let rest = line.trim().strip_prefix(PREFIX)?;
        let mut up = None;
        let mut idle = None;
        let mut net: [Option<u64>; 4] = [None; 4];
        for word in rest.split_whitespace() {
            let (key, value) = word.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            match key {
                UP_KEY => up = Some(value),
                IDLE_KEY => idle = Some(value),
                _ => *net.get_mut(NET_KEYS.iter().position(|k| *k == key)?)? = Some(value),
            }
        }
        let net = match net {
            [None, None, None, None] => None,
            [Some(irqs), Some(polls), Some(busy_polls), Some(frames)] => Some(NetStat {
                irqs,
                polls,
                busy_polls,
                frames,
            }),
            _ => return None,
        };
        Some(Stat {
            up_us: up?,
            idle_us: idle?,
            net,
        })
    }

    /// The poll loop's rates between `self` and a later sample; `None` when either lacks
    /// the counters, no guest time passed or a counter went backwards (a reboot).
    pub fn net_rates_until(&self, later: &Stat) -> Option<NetRates> {
        let (a, b) = (self.net?, later.net?);
        let secs = later.up_us.checked_sub(self.up_us)? as f64 / 1e6;
        if secs <= 0.0 {
            return None;
        }
        let irqs = b.irqs.checked_sub(a.irqs)? as f64;
        let polls = b.polls.checked_sub(a.polls)? as f64;
        let busy = b.busy_polls.checked_sub(a.busy_polls)? as f64;
        let frames = b.frames.checked_sub(a.frames)? as f64;
        Some(NetRates {
            irqs_per_s: irqs / secs,
            polls_per_s: polls / secs,
            frames_per_busy_poll: (busy > 0.0).then(|| frames / busy),
            frames_per_irq: (irqs > 0.0).then(|| frames / irqs),
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
        )?;
        if let Some(n) = self.net {
            let [irqs, polls, busy, frames] = NET_KEYS;
            write!(
                f,
                " {irqs}={} {polls}={} {busy}={} {frames}={}",
                n.irqs, n.polls, n.busy_polls, n.frames
            )?;
        }
        Ok(())
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
                net: None,
            },
            Stat {
                up_us: 0,
                idle_us: 0,
                net: None,
            },
            Stat::from_ns(5_000, 0).with_net(NetStat {
                irqs: 1,
                polls: 2,
                busy_polls: 3,
                frames: u64::MAX,
            }),
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
                idle_us: 3_050_000,
                net: None,
            })
        );
        assert_eq!(Stat::parse("STAT up_us=1"), None);
        assert_eq!(Stat::parse("STAT up_us=x idle_us=2"), None);
        assert_eq!(Stat::parse("STAT up_us=1 idle_us=2 extra=3"), None);
        assert_eq!(Stat::parse("iperf: STAT up_us=1 idle_us=2"), None);
        // The poll loop's counters come all together or not at all.
        assert_eq!(Stat::parse("STAT up_us=1 idle_us=2 irqs=3 polls=4"), None);
        assert_eq!(
            Stat::parse("STAT up_us=1 idle_us=2 irqs=3 polls=4 busy_polls=5 frames=x"),
            None
        );
        assert_eq!(
            Stat::parse("STAT up_us=1 idle_us=2 irqs=3 polls=4 busy_polls=5 frames=6")
                .and_then(|s| s.net),
            Some(NetStat {
                irqs: 3,
                polls: 4,
                busy_polls: 5,
                frames: 6
            })
        );
    }

    #[test]
    fn net_rates_are_per_second_and_per_busy_poll() {
        let at = |up_us, irqs, polls, busy_polls, frames| Stat {
            up_us,
            idle_us: 0,
            net: Some(NetStat {
                irqs,
                polls,
                busy_polls,
                frames,
            }),
        };
        let rates = at(1_000_000, 10, 100, 50, 1000)
            .net_rates_until(&at(3_000_000, 2010, 10_100, 1050, 33_000))
            .unwrap();
        assert_eq!(rates.irqs_per_s, 1000.0);
        assert_eq!(rates.polls_per_s, 5000.0);
        assert_eq!(rates.frames_per_busy_poll, Some(32.0));
        assert_eq!(rates.frames_per_irq, Some(16.0));
        let idle = at(1_000_000, 5, 5, 5, 5).net_rates_until(&at(2_000_000, 5, 9, 5, 5));
        assert_eq!(idle.unwrap().frames_per_busy_poll, None);
        assert_eq!(idle.unwrap().frames_per_irq, None);
        // A reboot, the same instant, or a sample without counters: no rates.
        assert!(at(2, 9, 9, 9, 9)
            .net_rates_until(&at(3, 1, 9, 9, 9))
            .is_none());
        assert!(at(2, 1, 1, 1, 1)
            .net_rates_until(&at(2, 1, 1, 1, 1))
            .is_none());
        assert!(Stat::from_ns(0, 0)
            .net_rates_until(&at(2, 1, 1, 1, 1))
            .is_none());
    }

    #[test]
    fn utilisation_is_one_minus_idle_over_uptime() {
        let a = Stat {
            up_us: 1_000_000,
            idle_us: 900_000,
            net: None,
        };
        let b = Stat {
            up_us: 3_000_000,
            idle_us: 2_400_000,
            net: None,
        };
        assert!((a.utilisation_until(&b).unwrap() - 25.0).abs() < 1e-9);
        assert_eq!(a.utilisation_until(&a), None);
        assert_eq!(b.utilisation_until(&a), None);
    }
}
