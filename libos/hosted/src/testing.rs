//! Helpers for tests that run library OS instances on threads.

use std::panic;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

/// How long one test that runs library OS instances may take before it fails.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Runs `body` on its own thread and returns its result; fails (panics) if `body` panics
/// or has not finished within `limit`.
///
/// A lost wake-up or a peer that never answers then fails the test with a message
/// instead of hanging the whole test run. On a timeout the stuck thread is left
/// behind; the test binary still exits once every test has finished.
pub fn bounded<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let name = thread::current()
        .name()
        .map_or_else(|| "bounded".to_string(), str::to_string);
    let (done_tx, done_rx) = mpsc::channel();
    let worker = thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let output = body();
            // The receiver is gone only if the test already failed by timing out.
            let _ = done_tx.send(());
            output
        })
        .expect("spawn the test body");
    match done_rx.recv_timeout(limit) {
        // Disconnected: the body panicked; join returns its panic.
        Ok(()) | Err(RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(output) => output,
            Err(payload) => panic::resume_unwind(payload),
        },
        Err(RecvTimeoutError::Timeout) => {
            panic!("{name}: did not finish within {limit:?} (hung: lost wake-up or a peer that never answers?)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_output_and_propagates_panics() {
        assert_eq!(bounded(TEST_LIMIT, || 6 * 7), 42);
        let panicked = panic::catch_unwind(|| bounded(TEST_LIMIT, || panic!("inner")));
        let payload = panicked.expect_err("the body's panic propagates");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"inner"));
    }

    #[test]
    fn a_body_that_never_finishes_fails_in_time() {
        let (_keep, park) = mpsc::channel::<()>();
        let started = std::time::Instant::now();
        let result = panic::catch_unwind(|| {
            bounded(Duration::from_millis(50), move || {
                // Blocks forever: nobody sends.
                let _ = park.recv();
            })
        });
        assert!(result.is_err());
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
