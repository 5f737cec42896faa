//! Waiting for a service whose server is restarting.
//!
//! `proc` restarts a server after its back-off with a timer thread that runs only when
//! nothing more important is runnable (docs/SERVICES.md, "Time"). A client that asks again
//! and again in a loop of yields while the server is away keeps that thread off the
//! processor, and the restart never comes. So between short bursts of attempts a client
//! blocks until `proc`'s news that a server it routes to has a new instance
//! ([`SERVICE_RESTARTED_BADGE`] on its notification).

use rt::startinfo::{slots, SERVICE_RESTARTED_BADGE};
use sel4::cap_type::Notification;
use sel4::Cap;

/// Blocks until `proc` signals [`SERVICE_RESTARTED_BADGE`] on the component's
/// notification (at once if it did since the last wait). Other bits that arrive meanwhile
/// are dropped: call it only in a component that uses its notification for nothing else
/// while it waits.
pub fn wait_for_news() {
    let own = Cap::<Notification>::from_raw(slots::NOTIFICATION);
    while sel4::syscall::wait(own) & SERVICE_RESTARTED_BADGE == 0 {}
}

/// Drops news of a restart that already happened (call after a successful attach, which
/// follows the new instance already).
pub fn forget_news() {
    let own = Cap::<Notification>::from_raw(slots::NOTIFICATION);
    let _ = sel4::syscall::poll(own);
}

/// Runs `attempt` until it succeeds: `burst` tries 50 yields apart (a server that is
/// starting registers within them), then, while it still fails, a block in
/// [`wait_for_news`] and another burst, `waits` times at most. Returns the first success
/// (after [`forget_news`]) or the last error.
pub fn patiently<T, E>(
    burst: u32,
    waits: u32,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut waited = 0;
    loop {
        let mut tries = 0;
        let last = loop {
            match attempt() {
                Ok(done) => {
                    forget_news();
                    return Ok(done);
                }
                Err(e) if tries + 1 >= burst.max(1) => break e,
                Err(_) => {
                    tries += 1;
                    rt::yield_times(50);
                }
            }
        };
        if waited >= waits {
            return Err(last);
        }
        waited += 1;
        wait_for_news();
    }
}
