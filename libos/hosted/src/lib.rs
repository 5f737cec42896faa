//! The hosted platform for the library OS: runs it inside an ordinary Linux process.
//!
//! Provides [`HostedPal`] (clock from `std::time::Instant`, waiting on an
//! [`EventSource`], console on stdout) and two [`libos_core::NetDevice`]s: an in-process
//! [`wire`] joining two library OS instances, and a Linux [`tap`] device; and
//! [`files::HostFiles`], the file API's backend over a host directory.
//!
//! Invariants: one `HostedPal` serves one runtime on one thread; the event source
//! it waits on is the receive side of the device that runtime drives.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod files;
#[allow(
    unsafe_code,
    reason = "the TAP device through libc: open, ioctl, ppoll, read, write"
)]
pub mod tap;
pub mod testing;
pub mod wire;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libos_core::Pal;

/// Something a hosted runtime can block on until a device has work.
pub trait EventSource: Send + Sync {
    /// Blocks until an event is pending or `deadline` passes (`None`: no deadline).
    /// Spurious early returns are allowed.
    fn wait(&self, deadline: Option<Instant>);
}

/// Longest single wait when there is neither an event source nor a deadline.
const IDLE_TICK: Duration = Duration::from_millis(100);

/// The hosted PAL: a Linux process.
pub struct HostedPal {
    epoch: Instant,
    events: Option<Arc<dyn EventSource>>,
}

impl HostedPal {
    /// Creates a PAL whose `wait_until` returns early when `events` signals.
    pub fn new(events: Arc<dyn EventSource>) -> HostedPal {
        HostedPal {
            epoch: Instant::now(),
            events: Some(events),
        }
    }

    /// Creates a PAL with no device: `wait_until` just sleeps.
    pub fn without_events() -> HostedPal {
        HostedPal {
            epoch: Instant::now(),
            events: None,
        }
    }

    fn instant_of(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }
}

impl Pal for HostedPal {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn wait_until(&self, deadline_ns: Option<u64>) {
        let deadline = deadline_ns.map(|ns| self.instant_of(ns));
        match &self.events {
            Some(events) => events.wait(deadline),
            None => {
                let now = Instant::now();
                let until = deadline.unwrap_or(now + IDLE_TICK).min(now + IDLE_TICK);
                if until > now {
                    std::thread::sleep(until - now);
                }
            }
        }
    }

    fn console_write(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_sleeps_until_deadline() {
        let pal = HostedPal::without_events();
        let a = pal.now_ns();
        pal.wait_until(Some(a + 5_000_000));
        let b = pal.now_ns();
        assert!(b >= a + 5_000_000, "woke after {} ns", b - a);
    }
}
