//! The host-tested half of the `microbench` component: order statistics over TSC cycle
//! counts, the `BENCH` line each benchmark prints, the component's arguments, and the small
//! protocol between the measuring component and its peer in another address space.
//!
//! One binary plays two roles (argument `role`): `bench` measures and prints, `peer` serves
//! the other end of the cross-address-space benchmarks. Every benchmark runs `warmup` rounds
//! that are thrown away, then `iterations` timed rounds (`irq_iterations` for the interrupt),
//! and prints one line:
//!
//! ```text
//! BENCH ipc_same_as n=10000 median=812 min=790 p10=798 p90=850 max=20312 unit=cycles
//! ```
//!
//! Invariants: a [`Summary`] always has `min <= p10 <= median <= p90 <= max` and `n >= 1`;
//! percentiles are nearest-rank (the median of an even count is the lower middle sample).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

use alloc::vec::Vec;
use core::fmt;

/// The benchmarks' names, as printed after `BENCH`.
pub mod names {
    /// Call + ReplyRecv round trip between two threads of one component.
    pub const IPC_SAME_AS: &str = "ipc_same_as";
    /// Call + ReplyRecv round trip to a server in another component.
    pub const IPC_CROSS_AS: &str = "ipc_cross_as";
    /// Signal to the return from Wait of a higher-priority thread of the same component.
    pub const NOTIFY_SAME_AS: &str = "notify_same_as";
    /// Signal to the return from Wait of a higher-priority thread in another component.
    pub const NOTIFY_CROSS_AS: &str = "notify_cross_as";
    /// A device's interrupt (the write that raises it) to the return from Wait of the
    /// driver thread waiting on the interrupt's notification.
    pub const IRQ_TO_DRIVER: &str = "irq_to_driver";
}

/// Every benchmark, in the order the component runs and prints them.
pub const BENCHMARKS: [&str; 5] = [
    names::IPC_SAME_AS,
    names::IPC_CROSS_AS,
    names::NOTIFY_SAME_AS,
    names::NOTIFY_CROSS_AS,
    names::IRQ_TO_DRIVER,
];

/// The unit every benchmark reports in: time-stamp counter ticks.
pub const UNIT: &str = "cycles";

/// What the component prints when every benchmark has printed its line.
pub const DONE: &str = "microbench: done";

/// Median, spread and extremes of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Smallest sample.
    pub min: u64,
    /// 10th percentile (nearest rank).
    pub p10: u64,
    /// 50th percentile (nearest rank: the lower middle sample of an even count).
    pub median: u64,
    /// 90th percentile (nearest rank).
    pub p90: u64,
    /// Largest sample.
    pub max: u64,
}

/// The nearest-rank `percent`th percentile of `sorted` (non-empty, ascending).
fn nearest_rank(sorted: &[u64], percent: usize) -> u64 {
    let n = sorted.len();
    // The smallest rank r (1-based) with r >= percent/100 * n.
    let rank = (n * percent).div_ceil(100).max(1);
    sorted[rank.min(n) - 1]
}

impl Summary {
    /// Sorts `samples` in place and summarises them; `None` when there are none.
    pub fn of(samples: &mut [u64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        Some(Summary {
            n: samples.len(),
            min: samples[0],
            p10: nearest_rank(samples, 10),
            median: nearest_rank(samples, 50),
            p90: nearest_rank(samples, 90),
            max: samples[samples.len() - 1],
        })
    }
}

/// One benchmark's result line: `BENCH <name> n=.. median=.. min=.. p10=.. p90=.. max=..
/// unit=cycles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report<'a> {
    /// The benchmark's name (one of [`names`]).
    pub name: &'a str,
    /// Its samples' summary.
    pub summary: Summary,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        write!(
            f,
            "BENCH {} n={} median={} min={} p10={} p90={} max={} unit={UNIT}",
            self.name, s.n, s.median, s.min, s.p10, s.p90, s.max
        )
    }
}

/// Why a benchmark stopped before it had all its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundError {
    /// The event a round waits for did not come within the spin limit (round index).
    Lost(usize),
    /// The end reading was before the start reading (round index).
    Backwards(usize),
    /// The peer answered with an unexpected label (round index, label).
    Refused(usize, u64),
}

impl fmt::Display for RoundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoundError::Lost(i) => write!(f, "round {i}: the event never arrived"),
            RoundError::Backwards(i) => write!(f, "round {i}: the TSC went backwards"),
            RoundError::Refused(i, label) => {
                write!(f, "round {i}: the peer answered with label {label}")
            }
        }
    }
}

/// Cycles from `start` to `end`, two TSC readings; [`RoundError::Backwards`] for round
/// `round` if `end` is earlier.
pub fn elapsed(round: usize, start: u64, end: u64) -> Result<u64, RoundError> {
    end.checked_sub(start).ok_or(RoundError::Backwards(round))
}

/// Runs `warmup + count` rounds of `round(index)`, each returning one sample, and keeps the
/// last `count` samples (the warm-up rounds fill caches and TLBs and are thrown away).
/// Stops at the first round that fails and returns its error.
pub fn collect<E>(
    warmup: usize,
    count: usize,
    mut round: impl FnMut(usize) -> Result<u64, E>,
) -> Result<Vec<u64>, E> {
    let mut samples = Vec::with_capacity(count);
    for i in 0..warmup + count {
        let sample = round(i)?;
        if i >= warmup {
            samples.push(sample);
        }
    }
    Ok(samples)
}

/// Cycles a round may spin waiting for its event before it counts as lost (about 8 s at
/// 2.5 GHz: far beyond any latency, short enough to fail a run that would hang).
pub const SPIN_LIMIT_CYCLES: u64 = 20_000_000_000;

/// The component's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs the benchmarks and prints the results.
    Bench,
    /// Serves the far end of the cross-address-space benchmarks.
    Peer,
}

/// The component's arguments, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config<'a> {
    /// `role`: `bench` (the default) or `peer`.
    pub role: Role,
    /// `service`: the peer's service (the peer registers it, the bench looks it up);
    /// default `microbench-peer`.
    pub service: &'a str,
    /// `iterations`: timed rounds of each IPC and notification benchmark (default 10000).
    pub iterations: usize,
    /// `irq_iterations`: timed rounds of the interrupt benchmark (default 10000).
    pub irq_iterations: usize,
    /// `warmup`: rounds before each benchmark's timed ones (default 100).
    pub warmup: usize,
    /// `nic`: the e1000e device the interrupt benchmark claims (default `nic0`); `none`
    /// skips that benchmark.
    pub nic: Option<&'a str>,
    /// `irq_gap_cycles`: least TSC cycles from one interrupt round's start to the next
    /// (default [`IRQ_GAP_CYCLES`]), so the device's interrupt throttling never holds an
    /// interrupt back.
    pub irq_gap_cycles: u64,
}

/// The default spacing of interrupt rounds in TSC cycles. QEMU's e1000e throttles its
/// interrupts to one per ITR interval and keeps ITR at 500 or more (500 x 256 ns = 128 us)
/// whatever the driver writes; an interrupt raised sooner after the last is held back until
/// the interval ends. A million cycles is at least 128 us for any TSC up to 7.8 GHz.
pub const IRQ_GAP_CYCLES: u64 = 1_000_000;

/// Largest `irq_gap_cycles` (a few seconds per round at most).
pub const MAX_IRQ_GAP_CYCLES: u64 = 10_000_000_000;

/// An argument that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgError<'a> {
    /// The argument's key.
    pub key: &'static str,
    /// Its value.
    pub value: &'a str,
    /// What it should be.
    pub expected: &'static str,
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "argument {}={:?}: expected {}",
            self.key, self.value, self.expected
        )
    }
}

/// Most timed rounds a benchmark may ask for (its samples live on the heap).
pub const MAX_ITERATIONS: usize = 200_000;

impl<'a> Config<'a> {
    /// The configuration from `arg(key)` (the component's start arguments).
    ///
    /// Fails on an unknown role, a count that is not a number in `1..=MAX_ITERATIONS`
    /// (`warmup` may be 0) or an empty name.
    pub fn parse(
        arg: impl Fn(&'static str) -> Option<&'a str>,
    ) -> Result<Config<'a>, ArgError<'a>> {
        let count = |key: &'static str, default: usize, min: usize| match arg(key) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=MAX_ITERATIONS).contains(n))
                .ok_or(ArgError {
                    key,
                    value,
                    expected: if min == 0 {
                        "a number from 0 to 200000"
                    } else {
                        "a number from 1 to 200000"
                    },
                }),
        };
        let name = |key: &'static str, default: &'a str| match arg(key) {
            None => Ok(default),
            Some(value) if value.trim().is_empty() => Err(ArgError {
                key,
                value,
                expected: "a name",
            }),
            Some(value) => Ok(value.trim()),
        };
        let role = match arg("role") {
            None | Some("bench") => Role::Bench,
            Some("peer") => Role::Peer,
            Some(value) => {
                return Err(ArgError {
                    key: "role",
                    value,
                    expected: "bench or peer",
                })
            }
        };
        let nic = name("nic", "nic0")?;
        let irq_gap_cycles = match arg("irq_gap_cycles") {
            None => IRQ_GAP_CYCLES,
            Some(value) => value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= MAX_IRQ_GAP_CYCLES)
                .ok_or(ArgError {
                    key: "irq_gap_cycles",
                    value,
                    expected: "a number of cycles up to 10000000000",
                })?,
        };
        Ok(Config {
            role,
            service: name("service", "microbench-peer")?,
            iterations: count("iterations", 10_000, 1)?,
            irq_iterations: count("irq_iterations", 10_000, 1)?,
            warmup: count("warmup", 100, 0)?,
            nic: (nic != "none").then_some(nic),
            irq_gap_cycles,
        })
    }
}

/// The protocol between the bench and its peer: raw seL4 messages (labels below), so the
/// IPC round trip measures the kernel's path and no encoding.
pub mod protocol {
    /// Request: echo MR0 back (one word each way). Reply label [`OK`].
    pub const PING: u64 = 1;
    /// Request: a wake-up series. The capability sent along is a notification, MR0 the
    /// number of rounds. The peer replies [`OK`] at once, then for each round waits on the
    /// notification, reads the TSC, and answers the next [`REPORT`] with that reading.
    /// Reply label [`REFUSED`] without a capability or with zero rounds.
    pub const WAKE_SERIES: u64 = 2;
    /// Request (only inside a wake-up series): the TSC reading taken when the last wait
    /// returned, in MR0 of the reply.
    pub const REPORT: u64 = 3;
    /// Reply label: done.
    pub const OK: u64 = 0;
    /// Reply label: the request was not understood or not valid now.
    pub const REFUSED: u64 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::vec;

    #[test]
    fn summary_uses_nearest_rank_percentiles() {
        let mut s: Vec<u64> = (1..=10).rev().collect();
        let st = Summary::of(&mut s).unwrap();
        assert_eq!(
            st,
            Summary {
                n: 10,
                min: 1,
                p10: 1,
                median: 5,
                p90: 9,
                max: 10
            }
        );
        assert_eq!(s, (1..=10).collect::<Vec<u64>>(), "sorted in place");

        let mut hundred: Vec<u64> = (0..100).map(|i| (i * 37) % 100 + 1).collect();
        let st = Summary::of(&mut hundred).unwrap();
        assert_eq!((st.p10, st.median, st.p90), (10, 50, 90));

        let mut odd = [30, 10, 20];
        assert_eq!(Summary::of(&mut odd).unwrap().median, 20);
        let mut one = [7];
        let st = Summary::of(&mut one).unwrap();
        assert_eq!(
            (st.n, st.min, st.p10, st.median, st.p90, st.max),
            (1, 7, 7, 7, 7, 7)
        );
        assert_eq!(Summary::of(&mut []), None);
    }

    #[test]
    fn summary_is_ordered_for_any_samples() {
        // A fixed pseudo-random walk over many sizes and spreads.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for n in 1..200 {
            let mut v: Vec<u64> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % 10_000
                })
                .collect();
            let st = Summary::of(&mut v).unwrap();
            assert!(st.min <= st.p10 && st.p10 <= st.median, "{st:?}");
            assert!(st.median <= st.p90 && st.p90 <= st.max, "{st:?}");
            assert_eq!(st.n, n);
            let below = v.iter().filter(|&&s| s <= st.median).count();
            assert!(
                below * 2 >= n,
                "at least half the samples are <= the median"
            );
        }
    }

    #[test]
    fn report_line_names_every_field() {
        let r = Report {
            name: names::IPC_SAME_AS,
            summary: Summary {
                n: 10_000,
                min: 700,
                p10: 750,
                median: 800,
                p90: 900,
                max: 25_000,
            },
        };
        assert_eq!(
            format!("{r}"),
            "BENCH ipc_same_as n=10000 median=800 min=700 p10=750 p90=900 max=25000 unit=cycles"
        );
    }

    #[test]
    fn collect_drops_the_warm_up_and_stops_at_an_error() {
        let samples = collect::<()>(3, 4, |i| Ok(i as u64 * 10)).unwrap();
        assert_eq!(samples, [30, 40, 50, 60]);
        assert_eq!(collect::<()>(0, 2, |i| Ok(i as u64)).unwrap(), [0, 1]);
        let mut rounds = 0;
        let r = collect(2, 10, |i| {
            rounds += 1;
            if i == 5 {
                Err(RoundError::Lost(i))
            } else {
                Ok(1)
            }
        });
        assert_eq!(r, Err(RoundError::Lost(5)));
        assert_eq!(rounds, 6, "no round after the failing one");
    }

    #[test]
    fn elapsed_refuses_a_backwards_clock() {
        assert_eq!(elapsed(0, 100, 350), Ok(250));
        assert_eq!(elapsed(0, 100, 100), Ok(0));
        assert_eq!(elapsed(3, 100, 99), Err(RoundError::Backwards(3)));
        assert_eq!(
            format!("{}", RoundError::Refused(2, 9)),
            "round 2: the peer answered with label 9"
        );
    }

    fn args<'a>(pairs: &'a [(&'static str, &'a str)]) -> impl Fn(&'static str) -> Option<&'a str> {
        move |k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
    }

    #[test]
    fn config_defaults_and_overrides() {
        let c = Config::parse(args(&[])).unwrap();
        assert_eq!(
            c,
            Config {
                role: Role::Bench,
                service: "microbench-peer",
                iterations: 10_000,
                irq_iterations: 10_000,
                warmup: 100,
                nic: Some("nic0"),
                irq_gap_cycles: IRQ_GAP_CYCLES,
            }
        );
        let c = Config::parse(args(&[
            ("role", "peer"),
            ("service", "echo"),
            ("iterations", "500"),
            ("irq_iterations", " 20 "),
            ("warmup", "0"),
            ("nic", "none"),
            ("irq_gap_cycles", "0"),
        ]))
        .unwrap();
        assert_eq!(
            (
                c.role,
                c.service,
                c.iterations,
                c.irq_iterations,
                c.warmup,
                c.nic
            ),
            (Role::Peer, "echo", 500, 20, 0, None)
        );
        assert_eq!(c.irq_gap_cycles, 0);
    }

    #[test]
    fn config_rejects_bad_values() {
        for (key, value) in [
            ("role", "server"),
            ("iterations", "0"),
            ("iterations", "ten"),
            ("iterations", "200001"),
            ("irq_iterations", "-1"),
            ("warmup", "x"),
            ("service", " "),
            ("nic", ""),
            ("irq_gap_cycles", "10000000001"),
            ("irq_gap_cycles", "1e6"),
        ] {
            let pairs = vec![(key, value)];
            let e = Config::parse(args(&pairs)).unwrap_err();
            assert_eq!((e.key, e.value), (key, value));
            assert!(
                format!("{e}").starts_with(&format!("argument {key}=")),
                "{e}"
            );
        }
    }
}
