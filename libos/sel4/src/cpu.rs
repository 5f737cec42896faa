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

/// A benchmark's clock that also samples the guest's CPU ([`KernelCpu`]) at every reading:
/// pass [`Marks::now`] as the `now` of a measurement, then ask [`Marks::busy`] for the
/// guest's busy share between two readings. Without utilisation tracking in the kernel it
/// is a plain TSC clock and `busy` says `None`.
#[derive(Debug)]
pub struct Marks {
    cpu: Option<KernelCpu>,
    marks: alloc::vec::Vec<Cycles>,
}

impl Marks {
    /// Starts sampling (see [`KernelCpu::start`]).
    pub fn start() -> Marks {
        Marks {
            cpu: KernelCpu::start(),
            marks: alloc::vec::Vec::new(),
        }
    }

    /// The TSC now; also marks the CPU figures of this moment.
    pub fn now(&mut self) -> u64 {
        if let Some(cpu) = self.cpu.as_mut() {
            self.marks.push(cpu.sample());
        }
        rt::rdtsc()
    }

    /// The guest's busy share between readings `from` and `to` (0-based, in the order
    /// [`Marks::now`] was called), in thousandths.
    pub fn busy(&self, from: usize, to: usize) -> Option<u64> {
        let (a, b) = (self.marks.get(from)?, self.marks.get(to)?);
        busy_permille(*a, *b)
    }
}

impl Marks {
    /// ` busy_permille=N` for a benchmark line ([`Marks::busy`]), or nothing.
    pub fn field(&self, from: usize, to: usize) -> alloc::string::String {
        self.busy(from, to)
            .map_or(alloc::string::String::new(), |b| {
                alloc::format!(" busy_permille={b}")
            })
    }
}

/// The busy share between two sums of [`KernelCpu::sample`], in thousandths: 1000 less the
/// idle thread's share of the cycles between them; `None` when no cycle passed.
pub fn busy_permille(from: Cycles, to: Cycles) -> Option<u64> {
    let total = to.total.checked_sub(from.total).filter(|&t| t > 0)?;
    let idle = to.idle.saturating_sub(from.idle).min(total);
    Some(1000 - u64::try_from(u128::from(idle) * 1000 / u128::from(total)).unwrap_or(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_the_share_the_idle_thread_did_not_take() {
        let a = Cycles {
            total: 1000,
            idle: 100,
        };
        let b = Cycles {
            total: 3000,
            idle: 600,
        };
        assert_eq!(busy_permille(a, b), Some(750));
        assert_eq!(busy_permille(a, a), None, "no cycle passed");
        let all_idle = Cycles {
            total: 2000,
            idle: 5000,
        };
        assert_eq!(
            busy_permille(a, all_idle),
            Some(0),
            "idle never counts past the total"
        );
    }

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
