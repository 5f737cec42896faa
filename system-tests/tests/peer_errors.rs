//! A peer's error reply is handled: components whose peers refuse them (naming: not routed;
//! devices: not your device) end with one line `serial: cannot claim com1: REASON` instead
//! of panicking (systems/tests/peer-errors.toml).

use std::time::Duration;
use system_tests::boot_system;

const WAIT: Duration = Duration::from_secs(90);

#[test]
fn refused_start_up_requests_end_with_a_reason_not_a_panic() {
    let s = boot_system("peer-errors", "peer-errors");
    for line in [
        "serial: cannot claim com1: lookup devices: NotFound",
        "serial: cannot claim com1: claim: NotFound",
    ] {
        s.wait_for(line, WAIT)
            .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    }
    s.wait_for("proc: ready", WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    let out = s.output();
    assert!(!out.contains("panic"), "{out}");
}
