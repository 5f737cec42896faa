//! Debian's unmodified static busybox on the library OS (systems/tests/linux-busybox.toml):
//! the `linux` component loads it at its fixed address with every `syscall` rewritten into a
//! call through the page-0 trampoline into libos-linux, and the program's own output and
//! its `exit_group` status come out as on Linux.

use std::time::Duration;
use system_tests::{boot_system, component_faults};

const WAIT: Duration = Duration::from_secs(120);

#[test]
fn debian_busybox_echo_runs_unmodified_and_exits_with_status_0() {
    let session = boot_system("linux-busybox", "linux-busybox");
    let exit = session.wait_for("proc: exit: component=busybox status=", WAIT);
    let out = session.output();
    exit.unwrap_or_else(|e| panic!("{e}\n{out}"));
    let loaded = out
        .lines()
        .find(|l| l.contains("linux: loaded /bin/busybox ("))
        .unwrap_or_else(|| panic!("no load line:\n{out}"));
    // Debian 12's busybox-static has a few hundred syscall sites; all are rewritten.
    let sites: u64 = loaded
        .split(", ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{loaded}"));
    assert!(sites > 100, "{loaded}");
    assert!(
        out.lines()
            .any(|l| l.trim() == "hello from an unmodified Debian busybox"),
        "the program's own output:\n{out}"
    );
    assert!(
        out.contains("proc: exit: component=busybox status=0"),
        "{out}"
    );
    assert!(component_faults(&out).is_empty(), "{out}");
}
