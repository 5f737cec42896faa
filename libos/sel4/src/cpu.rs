//! The whole guest's CPU time from the kernel's own accounting: how long the idle thread ran
//! among all cycles, on a kernel built with `bench=utilisation`
//! (`BENCHMARK_TRACK_UTILISATION`).
//!
//! A component's own idle time (`Sel4Pal::stats`) says how long *it* waited, which is the
//! guest's idle time only when it is the one busy component (the unikernel). A system of
//! several busy components (the shared network service) needs the idle thread's figure.
//!
//! The kernel keeps one tracking period for the whole machine: this sampler closes it and
//! opens the next on every [`KernelCpu::sample`], so one component per system may use it
//! (nor may [`crate::kernel_log::KernelLog`] run beside it).

use rt::startinfo::slots;
use sel4::Cap;

/// Cycles since [`KernelCpu::start`]: all of them and the idle thread's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cycles {
    /// Every cycle of the tracked periods.
    pub total: u64,
    /// Cycles the idle thread ran.
    pub idle: u64,
}

impl Cycles {
    /// The two figures (total, idle) in nanoseconds at `tsc_mhz` (0 when the frequency is
    /// unknown; `u64::MAX` past what a `u64` holds).
    pub fn as_ns(&self, tsc_mhz: u64) -> (u64, u64) {
        let ns = |cycles: u64| {
            if tsc_mhz == 0 {
                0
            } else {
                u64::try_from(u128::from(cycles) * 1000 / u128::from(tsc_mhz)).unwrap_or(u64::MAX)
            }
        };
        (ns(self.total), ns(self.idle))
    }
}

/// Sums the kernel's tracking periods since it started.
#[derive(Debug)]
pub struct KernelCpu {
    sum: Cycles,
}

impl KernelCpu {
    /// Opens the first tracking period; `None` when the kernel does not track utilisation
    /// or refuses.
    pub fn start() -> Option<KernelCpu> {
        if !sel4::syscall::TRACK_UTILISATION {
            return None;
        }
        sel4::syscall::benchmark_reset_log().ok()?;
        Some(KernelCpu {
            sum: Cycles::default(),
        })
    }

    /// Closes the current period, adds it, opens the next, and returns the sum so far.
    pub fn sample(&mut self) -> Cycles {
        let _ = sel4::syscall::benchmark_finalize_log();
        if let Some((idle, total)) =
            sel4::syscall::benchmark_idle_and_total(Cap::from_raw(slots::TCB))
        {
            self.sum.total += total;
            self.sum.idle += idle.min(total);
        }
        let _ = sel4::syscall::benchmark_reset_log();
        self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_convert_at_the_tsc_frequency() {
        let c = Cycles {
            total: 3_000_000_000,
            idle: 1_500_000_000,
        };
        assert_eq!(c.as_ns(3000), (1_000_000_000, 500_000_000));
        assert_eq!(c.as_ns(0), (0, 0));
        let big = Cycles {
            total: u64::MAX,
            idle: 0,
        };
        assert_eq!(big.as_ns(1000).0, u64::MAX);
        assert_eq!(big.as_ns(100).0, u64::MAX, "saturates, never wraps");
        assert_eq!(big.as_ns(2000).0, u64::MAX / 2);
    }
}
