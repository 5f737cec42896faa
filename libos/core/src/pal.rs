//! The platform adaptation layer: everything the library OS needs from the platform.

/// Services the library OS needs from the platform it runs on.
///
/// A PAL is the only platform-specific code under the library OS: the hosted PAL
/// (a Linux process) lives in `libos-hosted`, an seL4 PAL maps these calls to a timer
/// service, a notification bound to the network driver, and a serial console.
///
/// Invariants every implementation keeps:
/// - `now_ns` is monotonic (never goes backwards) and starts near zero at some
///   platform-chosen epoch;
/// - `wait_until` never blocks past its deadline by more than the platform's timer
///   resolution, and returns early when a device the library OS drives may have work.
pub trait Pal {
    /// Returns the monotonic time in nanoseconds since a platform-chosen epoch.
    fn now_ns(&self) -> u64;

    /// Blocks until `deadline_ns` (on the `now_ns` clock) or until an event arrives
    /// (a frame from the network device, a wake-up from another thread), whichever
    /// comes first. `None` waits for an event only. Spurious early returns are allowed.
    fn wait_until(&self, deadline_ns: Option<u64>);

    /// Writes text to the platform console (best effort, never fails).
    fn console_write(&self, text: &str);

    /// Called by the executor just before it idles in [`Pal::wait_until`].
    ///
    /// Platforms that account idle time themselves (e.g. in an idle thread) hook in here.
    fn idle_enter(&self) {}

    /// Called by the executor right after [`Pal::wait_until`] returns, with the
    /// nanoseconds spent idle.
    fn idle_exit(&self, _idle_ns: u64) {}
}

impl<P: Pal + ?Sized> Pal for alloc::rc::Rc<P> {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
    fn wait_until(&self, deadline_ns: Option<u64>) {
        (**self).wait_until(deadline_ns)
    }
    fn console_write(&self, text: &str) {
        (**self).console_write(text)
    }
    fn idle_enter(&self) {
        (**self).idle_enter()
    }
    fn idle_exit(&self, idle_ns: u64) {
        (**self).idle_exit(idle_ns)
    }
}
