//! Process system calls: identity, time, limits, signals, TLS, randomness, exit.

use super::{Linux, SigAction};
use crate::errno::{Errno, SysResult};
use crate::image::USER_LIMIT;
use crate::{Clock, Platform};
use alloc::vec;

/// `ARCH_SET_GS`.
const ARCH_SET_GS: u64 = 0x1001;
/// `ARCH_SET_FS`.
const ARCH_SET_FS: u64 = 0x1002;
/// `ARCH_GET_FS`.
const ARCH_GET_FS: u64 = 0x1003;
/// `ARCH_GET_GS`.
const ARCH_GET_GS: u64 = 0x1004;
/// Signal numbers that cannot be caught: `SIGKILL`, `SIGSTOP`.
const UNCATCHABLE: [u64; 2] = [9, 19];
/// Most bytes one `getrandom` returns (Linux's cap, `INT_MAX >> 6` rounded).
const GETRANDOM_MAX: usize = 33_554_431;
/// Nanoseconds per second.
const NS: u64 = 1_000_000_000;

fn clock_of(id: u64) -> Result<Clock, Errno> {
    match id {
        0 | 5 => Ok(Clock::Realtime),          // REALTIME, REALTIME_COARSE
        1 | 4 | 6 | 7 => Ok(Clock::Monotonic), // MONOTONIC, _RAW, _COARSE, BOOTTIME
        2 | 3 => Ok(Clock::ProcessCpu),        // PROCESS_ and THREAD_CPUTIME_ID
        _ => Err(Errno::EINVAL),
    }
}

fn timespec(ns: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(ns / NS).to_le_bytes());
    b[8..].copy_from_slice(&(ns % NS).to_le_bytes());
    b
}

impl<P: Platform> Linux<P> {
    /// A `struct timespec` from the program, as nanoseconds; `EINVAL` if out of range.
    fn read_timespec(&self, at: u64) -> Result<u64, Errno> {
        let b = self.read_user(at, 16)?;
        let sec = i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let nsec = i64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
        if sec < 0 || !(0..NS as i64).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        Ok((sec as u64).saturating_mul(NS).saturating_add(nsec as u64))
    }

    pub(super) fn sys_getpid(&mut self, _: &[u64; 6]) -> SysResult {
        Ok(self.config.pid as u64)
    }

    pub(super) fn sys_getppid(&mut self, _: &[u64; 6]) -> SysResult {
        Ok(0)
    }

    pub(super) fn sys_getuid(&mut self, _: &[u64; 6]) -> SysResult {
        Ok(self.config.uid as u64)
    }

    pub(super) fn sys_exit_group(&mut self, a: &[u64; 6]) -> SysResult {
        let status = (a[0] & 0xff) as i32;
        self.exited = Some(status);
        self.platform.exit(status);
        Ok(0)
    }

    pub(super) fn sys_uname(&mut self, a: &[u64; 6]) -> SysResult {
        let fields: [&str; 6] = [
            "Linux",
            &self.config.nodename,
            "6.1.0-tessera",
            "#1 Tessera library OS",
            "x86_64",
            "(none)",
        ];
        let mut b = vec![0u8; 65 * 6];
        for (i, field) in fields.iter().enumerate() {
            let n = field.len().min(64);
            b[i * 65..i * 65 + n].copy_from_slice(&field.as_bytes()[..n]);
        }
        self.write_user(a[0], &b)?;
        Ok(0)
    }

    pub(super) fn sys_clock_gettime(&mut self, a: &[u64; 6]) -> SysResult {
        let clock = clock_of(a[0])?;
        let ns = self.platform.clock_ns(clock);
        self.write_user(a[1], &timespec(ns))?;
        Ok(0)
    }

    pub(super) fn sys_clock_getres(&mut self, a: &[u64; 6]) -> SysResult {
        clock_of(a[0])?;
        if a[1] != 0 {
            self.write_user(a[1], &timespec(1))?;
        }
        Ok(0)
    }

    pub(super) fn sys_gettimeofday(&mut self, a: &[u64; 6]) -> SysResult {
        if a[0] != 0 {
            let ns = self.platform.clock_ns(Clock::Realtime);
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&(ns / NS).to_le_bytes());
            b[8..].copy_from_slice(&((ns % NS) / 1000).to_le_bytes());
            self.write_user(a[0], &b)?;
        }
        if a[1] != 0 {
            self.write_user(a[1], &[0u8; 8])?;
        }
        Ok(0)
    }

    pub(super) fn sys_time(&mut self, a: &[u64; 6]) -> SysResult {
        let sec = self.platform.clock_ns(Clock::Realtime) / NS;
        if a[0] != 0 {
            self.write_user(a[0], &sec.to_le_bytes())?;
        }
        Ok(sec)
    }

    pub(super) fn sys_nanosleep(&mut self, a: &[u64; 6]) -> SysResult {
        let ns = self.read_timespec(a[0])?;
        self.platform.sleep_ns(ns);
        Ok(0)
    }

    pub(super) fn sys_clock_nanosleep(&mut self, a: &[u64; 6]) -> SysResult {
        const TIMER_ABSTIME: u64 = 1;
        let clock = clock_of(a[0])?;
        if clock == Clock::ProcessCpu || a[1] & !TIMER_ABSTIME != 0 {
            return Err(Errno::EINVAL);
        }
        let mut ns = self.read_timespec(a[2])?;
        if a[1] & TIMER_ABSTIME != 0 {
            ns = ns.saturating_sub(self.platform.clock_ns(clock));
        }
        self.platform.sleep_ns(ns);
        Ok(0)
    }

    pub(super) fn sys_getrusage(&mut self, a: &[u64; 6]) -> SysResult {
        const RUSAGE_SELF: i64 = 0;
        const RUSAGE_CHILDREN: i64 = -1;
        const RUSAGE_THREAD: i64 = 1;
        let who = a[0] as i64;
        if ![RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD].contains(&who) {
            return Err(Errno::EINVAL);
        }
        // The platform's CPU time is all the program's: its own code and the library
        // OS's work for it run in one thread, with no kernel time of Linux's kind. No
        // children ever exist.
        let ns = if who == RUSAGE_CHILDREN {
            0
        } else {
            self.platform.clock_ns(Clock::ProcessCpu)
        };
        let mut usage = [0u8; 144];
        usage[..8].copy_from_slice(&(ns / NS).to_le_bytes());
        usage[8..16].copy_from_slice(&((ns % NS) / 1000).to_le_bytes());
        self.write_user(a[1], &usage)?;
        Ok(0)
    }

    pub(super) fn sys_prctl(&mut self, a: &[u64; 6]) -> SysResult {
        const PR_SET_NAME: u64 = 15;
        const PR_GET_NAME: u64 = 16;
        match a[0] {
            PR_SET_NAME => {
                let mut name = [0u8; 16];
                for (i, byte) in name.iter_mut().take(15).enumerate() {
                    let b = self.read_user(a[1] + i as u64, 1)?[0];
                    if b == 0 {
                        break;
                    }
                    *byte = b;
                }
                self.name = name;
                Ok(0)
            }
            PR_GET_NAME => {
                let name = self.name;
                self.write_user(a[1], &name)?;
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    pub(super) fn sys_sched_yield(&mut self, _: &[u64; 6]) -> SysResult {
        Ok(0)
    }

    pub(super) fn sys_getrandom(&mut self, a: &[u64; 6]) -> SysResult {
        const GRND_ALL: u64 = 1 | 2 | 4; // NONBLOCK, RANDOM, INSECURE
        if a[2] & !GRND_ALL != 0 || a[2] & 6 == 6 {
            return Err(Errno::EINVAL);
        }
        let len = (a[1] as usize).min(GETRANDOM_MAX);
        self.memory
            .check(a[0], len as u64, crate::memory::Access::Write)?;
        let mut chunk = [0u8; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            self.platform.random(&mut chunk[..n]);
            self.platform.write(a[0] + done as u64, &chunk[..n]);
            done += n;
        }
        Ok(len as u64)
    }

    pub(super) fn sys_arch_prctl(&mut self, a: &[u64; 6]) -> SysResult {
        match a[0] {
            ARCH_SET_FS => {
                if a[1] >= USER_LIMIT {
                    return Err(Errno::EPERM);
                }
                self.fs_base = a[1];
                self.platform.set_fs_base(a[1]);
                Ok(0)
            }
            ARCH_GET_FS => {
                let base = self.fs_base;
                self.write_user(a[1], &base.to_le_bytes())?;
                Ok(0)
            }
            // GS belongs to the library OS (seL4 points it at the IPC buffer).
            ARCH_SET_GS | ARCH_GET_GS => Err(Errno::EPERM),
            _ => Err(Errno::EINVAL),
        }
    }

    pub(super) fn sys_set_tid_address(&mut self, a: &[u64; 6]) -> SysResult {
        self.tid_address = a[0];
        Ok(self.config.pid as u64)
    }

    fn limit_io(&mut self, resource: u64, new: u64, old: u64) -> SysResult {
        let index = usize::try_from(resource)
            .ok()
            .filter(|&r| r < self.limits.len())
            .ok_or(Errno::EINVAL)?;
        let wanted = if new != 0 {
            let b = self.read_user(new, 16)?;
            let cur = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
            let max = u64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
            if cur > max {
                return Err(Errno::EINVAL);
            }
            // Raising a hard limit needs privilege the program does not have.
            if max > self.limits[index].1 {
                return Err(Errno::EPERM);
            }
            Some((cur, max))
        } else {
            None
        };
        if old != 0 {
            let (cur, max) = self.limits[index];
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&cur.to_le_bytes());
            b[8..].copy_from_slice(&max.to_le_bytes());
            self.write_user(old, &b)?;
        }
        if let Some(limit) = wanted {
            self.limits[index] = limit;
        }
        Ok(0)
    }

    pub(super) fn sys_prlimit64(&mut self, a: &[u64; 6]) -> SysResult {
        if a[0] != 0 && a[0] != self.config.pid as u64 {
            return Err(Errno::ESRCH);
        }
        self.limit_io(a[1], a[2], a[3])
    }

    pub(super) fn sys_getrlimit(&mut self, a: &[u64; 6]) -> SysResult {
        self.limit_io(a[0], 0, a[1])
    }

    pub(super) fn sys_rt_sigaction(&mut self, a: &[u64; 6]) -> SysResult {
        let signal = a[0];
        if a[3] != 8 || !(1..=64).contains(&signal) {
            return Err(Errno::EINVAL);
        }
        if a[1] != 0 && UNCATCHABLE.contains(&signal) {
            return Err(Errno::EINVAL);
        }
        let index = (signal - 1) as usize;
        let new = if a[1] != 0 {
            let b = self.read_user(a[1], 32)?;
            let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
            Some(SigAction {
                handler: word(0),
                flags: word(8),
                restorer: word(16),
                mask: word(24),
            })
        } else {
            None
        };
        if a[2] != 0 {
            let old = self.actions[index];
            let mut b = [0u8; 32];
            for (i, w) in [old.handler, old.flags, old.restorer, old.mask]
                .iter()
                .enumerate()
            {
                b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
            }
            self.write_user(a[2], &b)?;
        }
        if let Some(action) = new {
            self.actions[index] = action;
        }
        Ok(0)
    }

    pub(super) fn sys_rt_sigprocmask(&mut self, a: &[u64; 6]) -> SysResult {
        const SIG_BLOCK: u64 = 0;
        const SIG_UNBLOCK: u64 = 1;
        const SIG_SETMASK: u64 = 2;
        // SIGKILL and SIGSTOP can never be blocked.
        const NEVER: u64 = 1 << 8 | 1 << 18;
        if a[3] != 8 {
            return Err(Errno::EINVAL);
        }
        let set = if a[1] != 0 {
            if a[0] > SIG_SETMASK {
                return Err(Errno::EINVAL);
            }
            Some(self.read_u64(a[1])?)
        } else {
            None
        };
        if a[2] != 0 {
            let mask = self.mask;
            self.write_user(a[2], &mask.to_le_bytes())?;
        }
        if let Some(set) = set {
            self.mask = match a[0] {
                SIG_BLOCK => self.mask | set,
                SIG_UNBLOCK => self.mask & !set,
                _ => set,
            } & !NEVER;
        }
        Ok(0)
    }
}
