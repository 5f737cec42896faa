//! What a component does when a peer answers with an error: one policy for all of them.
//!
//! A peer is never trusted to succeed, not even a fundamental service. An error another try
//! may cure ([`Transient`]: the server restarted since the handle was issued) is retried
//! with exponential back-off, a bounded number of times; any other error, or a transient one
//! that outlasts the bound, ends with a [`Failure`] whose `Display` is the one-line reason a
//! component prints before it exits (`NAME: cannot ACTION: REASON`, see `rt::fail`).
//!
//! Waiting is the caller's: [`retry`] calls `pause(n)` between attempts and does not know
//! what `n` means (a component without a timer yields `n` times, `rt::yield_times`), so
//! the policy stays testable on the host.

use core::fmt;

/// Errors that say whether another try may succeed.
pub trait Transient {
    /// Whether the same request may succeed if made again (after a pause).
    fn is_transient(&self) -> bool;
}

/// How often and how patiently [`retry`] tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first included (at least 1 is made).
    pub attempts: u32,
    /// The pause before the second attempt; each later pause doubles it.
    pub first_pause: u32,
    /// No pause is longer than this.
    pub max_pause: u32,
}

impl Backoff {
    /// For the requests a component makes while it starts (lookups, device claims): ten
    /// attempts, pauses 1, 2, 4 .. 256 (about 1,000 in all).
    pub const STARTUP: Backoff = Backoff {
        attempts: 10,
        first_pause: 1,
        max_pause: 256,
    };

    /// The pause after failed attempt `attempt` (1-based): `first_pause` doubled
    /// `attempt - 1` times, at most `max_pause`.
    pub fn pause_after(&self, attempt: u32) -> u32 {
        let doublings = attempt.saturating_sub(1).min(31);
        self.first_pause
            .saturating_mul(1 << doublings)
            .min(self.max_pause)
    }
}

/// Why [`retry`] gave up: the last error and how many attempts were made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure<E> {
    /// The last attempt's error.
    pub error: E,
    /// Attempts made, the last included.
    pub attempts: u32,
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    /// The error, and after how many attempts when there was more than one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attempts > 1 {
            write!(f, "{} (after {} attempts)", self.error, self.attempts)
        } else {
            write!(f, "{}", self.error)
        }
    }
}

/// Runs `attempt` until it succeeds, fails with an error that is not [`Transient`], or has
/// been made `policy.attempts` times; calls `pause` with [`Backoff::pause_after`] between
/// attempts.
///
/// `Ok` with the first success; `Err(Failure)` with the last error otherwise.
pub fn retry<T, E: Transient>(
    policy: &Backoff,
    pause: impl FnMut(u32),
    attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, Failure<E>> {
    retry_if(policy, E::is_transient, pause, attempt)
}

/// [`retry`] with the caller's own idea of which errors are worth another try (say,
/// `NotFound` from a lookup of a service that registers late).
pub fn retry_if<T, E>(
    policy: &Backoff,
    transient: impl Fn(&E) -> bool,
    mut pause: impl FnMut(u32),
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, Failure<E>> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt() {
            Ok(value) => return Ok(value),
            Err(error) if transient(&error) && attempts < policy.attempts => {
                pause(policy.pause_after(attempts));
            }
            Err(error) => return Err(Failure { error, attempts }),
        }
    }
}
