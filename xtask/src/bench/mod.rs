//! `cargo xtask bench`: the evaluation's measurements, side by side with a Linux guest.
//!
//! [`net`] is the network benchmark (the paper's Figure 4), [`kernel`] the kernel's share by
//! entry kind (Figure 5), [`micro`] the IPC, notification and interrupt latencies, [`files`]
//! (run alone: `bench files`) file service and block driver throughput; what they
//! share (run profiles, CPU accounting, summaries) is in [`shared`]. Results go to
//! `target/bench/`.

pub mod files;
pub mod kernel;
pub mod micro;
pub mod net;
pub mod shared;

pub use shared::Profile;

use crate::Result;

/// Runs every benchmark with `profile`: the network benchmark, the kernel's share, the
/// microbenchmarks, then prints the lines-of-code table; a failing one does not stop the
/// others (the error lists every failure).
pub fn all(profile: Profile) -> Result<()> {
    let clock = std::time::Instant::now();
    let mut failed = Vec::new();
    if let Err(e) = net::run(profile, &[], None) {
        failed.push(format!("net: {e}"));
    }
    let kernel = kernel::Options::for_profile(profile);
    if let Err(e) = kernel::run(&kernel) {
        failed.push(format!("kernel: {e}"));
    }
    if let Err(e) = micro::run() {
        failed.push(format!("micro: {e}"));
    }
    crate::step("lines of code (the paper's Table 1)");
    crate::loc::run()?;
    crate::step(&format!(
        "cargo xtask bench ({}) took {:.1} min",
        profile.name(),
        clock.elapsed().as_secs_f64() / 60.0
    ));
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}
