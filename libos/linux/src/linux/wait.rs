//! Waiting for descriptors: `poll`, `ppoll`, `select`, `pselect6`.
//!
//! One loop serves all four: check every descriptor's readiness; return at once if any
//! is ready or the timeout is zero; else sleep on the platform until the deadline (a
//! platform may wake early when something may have changed) and check again. Without a
//! timeout the sleep has no deadline; if the platform returns from it with nothing
//! ready, the call ends with `EINTR`, as a Linux wait ends when a signal comes (today
//! no descriptor changes its readiness by itself, so nothing else could end it).

use super::Linux;
use crate::errno::{Errno, SysResult};
use crate::fs::MAX_FDS;
use crate::{Clock, Platform};
use alloc::vec;
use alloc::vec::Vec;

/// `POLLIN`.
const POLLIN: u16 = 0x001;
/// `POLLOUT`.
const POLLOUT: u16 = 0x004;
/// `POLLNVAL`: the descriptor is not open.
const POLLNVAL: u16 = 0x020;
/// `POLLRDNORM`.
const POLLRDNORM: u16 = 0x040;
/// `POLLWRNORM`.
const POLLWRNORM: u16 = 0x100;
/// Nanoseconds per second.
const NS: u64 = 1_000_000_000;

/// How long a call may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timeout {
    /// Until something is ready.
    Never,
    /// At most this many nanoseconds (0: do not wait).
    After(u64),
}

impl<P: Platform> Linux<P> {
    /// Runs `check` (which returns how many descriptors are ready) until it finds some
    /// or `timeout` passes; returns the last count and the nanoseconds left.
    fn wait_for(
        &mut self,
        timeout: Timeout,
        mut check: impl FnMut(&mut Self) -> Result<u64, Errno>,
    ) -> Result<(u64, u64), Errno> {
        let start = self.platform.clock_ns(Clock::Monotonic);
        let mut slept = false;
        let mut last = start;
        loop {
            let ready = check(self)?;
            let now = self.platform.clock_ns(Clock::Monotonic);
            let left = match timeout {
                Timeout::Never => u64::MAX,
                Timeout::After(ns) => ns.saturating_sub(now.saturating_sub(start)),
            };
            if ready > 0 || left == 0 {
                return Ok((ready, left));
            }
            // A clock that did not move across a sleep would spin here for ever: take
            // the time as passed.
            if slept && now == last {
                return Ok((ready, 0));
            }
            last = now;
            if timeout == Timeout::Never && slept {
                return Err(Errno::EINTR);
            }
            self.platform.sleep_ns(left);
            slept = true;
        }
    }

    /// A `struct timespec` timeout at `at` (NULL: none).
    fn timespec_timeout(&self, at: u64) -> Result<Timeout, Errno> {
        if at == 0 {
            return Ok(Timeout::Never);
        }
        let b = self.read_user(at, 16)?;
        let sec = i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let nsec = i64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
        if sec < 0 || !(0..NS as i64).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        Ok(Timeout::After(
            (sec as u64).saturating_mul(NS).saturating_add(nsec as u64),
        ))
    }

    fn poll_common(&mut self, fds: u64, count: u64, timeout: Timeout) -> SysResult {
        if count > MAX_FDS as u64 {
            return Err(Errno::EINVAL);
        }
        let len = count as usize * 8;
        let mut table = self.read_user(fds, len)?;
        // Written back even when nothing is ready: check that it can be.
        self.memory
            .check(fds, len as u64, crate::memory::Access::Write)?;
        let (ready, _) = self.wait_for(timeout, |linux| {
            let mut ready = 0;
            for entry in table.chunks_exact_mut(8) {
                let fd = i32::from_le_bytes(entry[..4].try_into().unwrap_or([0; 4]));
                let events = u16::from_le_bytes([entry[4], entry[5]]);
                let revents = if fd < 0 {
                    0
                } else {
                    match linux.files.readiness(fd) {
                        Err(_) => POLLNVAL,
                        Ok((read, write)) => {
                            let mut r = 0;
                            if read {
                                r |= POLLIN | POLLRDNORM;
                            }
                            if write {
                                r |= POLLOUT | POLLWRNORM;
                            }
                            r & events
                        }
                    }
                };
                entry[6..8].copy_from_slice(&revents.to_le_bytes());
                ready += u64::from(revents != 0);
            }
            Ok(ready)
        })?;
        self.write_user(fds, &table)?;
        Ok(ready)
    }

    pub(super) fn sys_poll(&mut self, a: &[u64; 6]) -> SysResult {
        let ms = a[2] as i32;
        let timeout = if ms < 0 {
            Timeout::Never
        } else {
            Timeout::After(ms as u64 * 1_000_000)
        };
        self.poll_common(a[0], a[1], timeout)
    }

    pub(super) fn sys_ppoll(&mut self, a: &[u64; 6]) -> SysResult {
        // A signal mask to use while waiting: checked, then moot (nothing is delivered).
        if a[3] != 0 && a[4] != 8 {
            return Err(Errno::EINVAL);
        }
        let timeout = self.timespec_timeout(a[2])?;
        self.poll_common(a[0], a[1], timeout)
    }

    /// `select`'s core: the three `fd_set`s at `sets` for `count` descriptors.
    fn select_common(
        &mut self,
        count: u64,
        sets: [u64; 3],
        timeout: Timeout,
    ) -> Result<(u64, u64), Errno> {
        if count > MAX_FDS as u64 {
            return Err(Errno::EINVAL);
        }
        let words = (count as usize).div_ceil(64);
        let mut wanted: [Vec<u64>; 3] = [vec![0; words], vec![0; words], vec![0; words]];
        for (set, at) in wanted.iter_mut().zip(sets) {
            if at != 0 {
                let bytes = self.read_user(at, words * 8)?;
                self.memory
                    .check(at, words as u64 * 8, crate::memory::Access::Write)?;
                for (w, chunk) in set.iter_mut().zip(bytes.chunks_exact(8)) {
                    *w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                }
            }
        }
        // Bits past `count` in the last word are not descriptors the call asked about.
        if !count.is_multiple_of(64) {
            let keep = (1u64 << (count % 64)) - 1;
            for set in &mut wanted {
                if let Some(last) = set.last_mut() {
                    *last &= keep;
                }
            }
        }
        let mut result: [Vec<u64>; 3] = [vec![0; words], vec![0; words], vec![0; words]];
        let (ready, left) = self.wait_for(timeout, |linux| {
            let mut ready = 0;
            for word in 0..words {
                let any = wanted[0][word] | wanted[1][word] | wanted[2][word];
                for bit in (0..64).filter(|b| any & (1 << b) != 0) {
                    let fd = (word * 64 + bit) as i32;
                    let (read, write) = linux.files.readiness(fd)?;
                    let hit = [read, write, false];
                    for set in 0..3 {
                        let on = wanted[set][word] & (1 << bit) != 0 && hit[set];
                        if on {
                            result[set][word] |= 1 << bit;
                            ready += 1;
                        } else {
                            result[set][word] &= !(1 << bit);
                        }
                    }
                }
            }
            Ok(ready)
        })?;
        for (set, at) in result.iter().zip(sets) {
            if at != 0 {
                let bytes: Vec<u8> = set.iter().flat_map(|w| w.to_le_bytes()).collect();
                self.write_user(at, &bytes)?;
            }
        }
        Ok((ready, left))
    }

    pub(super) fn sys_pselect6(&mut self, a: &[u64; 6]) -> SysResult {
        if a[5] != 0 {
            // { const sigset_t *ss; size_t ss_len }: checked, then moot.
            let b = self.read_user(a[5], 16)?;
            let set = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
            let len = u64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
            if set != 0 && len != 8 {
                return Err(Errno::EINVAL);
            }
        }
        let timeout = self.timespec_timeout(a[4])?;
        let (ready, left) = self.select_common(a[0], [a[1], a[2], a[3]], timeout)?;
        if a[4] != 0 {
            // Linux writes back the time not slept.
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&(left / NS).to_le_bytes());
            b[8..].copy_from_slice(&(left % NS).to_le_bytes());
            self.write_user(a[4], &b)?;
        }
        Ok(ready)
    }

    pub(super) fn sys_select(&mut self, a: &[u64; 6]) -> SysResult {
        let timeout = if a[4] == 0 {
            Timeout::Never
        } else {
            let b = self.read_user(a[4], 16)?;
            let sec = i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
            let usec = i64::from_le_bytes(b[8..].try_into().unwrap_or([0; 8]));
            if sec < 0 || !(0..1_000_000).contains(&usec) {
                return Err(Errno::EINVAL);
            }
            Timeout::After(
                (sec as u64)
                    .saturating_mul(NS)
                    .saturating_add(usec as u64 * 1000),
            )
        };
        let (ready, left) = self.select_common(a[0], [a[1], a[2], a[3]], timeout)?;
        if a[4] != 0 {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&(left / NS).to_le_bytes());
            b[8..].copy_from_slice(&((left % NS) / 1000).to_le_bytes());
            self.write_user(a[4], &b)?;
        }
        Ok(ready)
    }
}
