//! Boots systems/bench/micro.toml: the `microbench` component measures the IPC round trip
//! (same and across address spaces), notification signal-to-wake (same and across) and
//! interrupt-to-driver latency (an e1000e's MSI), prints one `BENCH` line per benchmark and
//! halts the system. Checks that every line is there once, in order, with the rounds the
//! description asks for and consistent figures. No speed is asserted: the numbers are
//! `cargo xtask bench`'s (under TCG even the cross-address-space round trip need not cost
//! more than the same-address-space one).

use system_tests::{component_faults, lines_with, system_image};
use xtask::bench::micro::{self as bench_micro, BENCHMARKS};
use xtask::qemu::{Outcome, Session};

#[test]
fn every_microbenchmark_reports_consistent_figures_and_the_system_halts() {
    let (kernel, root) = system_image("micro");
    let log = xtask::target_dir().join("logs").join("microbench.log");
    let boot = bench_micro::boot(kernel, root, log).expect("a boot of the micro system");
    let mut session = Session::start(&boot, false).expect("QEMU starts");
    let outcome = session.wait_exit();
    let out = session.output();
    assert_eq!(outcome, Outcome::Exited(0), "{out}");

    assert!(lines_with(&out, "BENCH-ERROR").is_empty(), "{out}");
    assert!(component_faults(&out).is_empty(), "{out}");
    assert!(!out.contains("panic"), "{out}");
    assert!(out.contains("microbench: done"), "{out}");

    let results = bench_micro::parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let system = bench_micro::system().unwrap();
    bench_micro::check_complete(&system, &results).unwrap_or_else(|e| panic!("{e}\n{out}"));
    for (r, name) in results.iter().zip(BENCHMARKS) {
        assert_eq!(r.name, name);
        assert!(r.n >= 1 && r.median > 0, "{r:?}");
        assert!(
            r.min <= r.p10 && r.p10 <= r.median && r.median <= r.p90 && r.p90 <= r.max,
            "{r:?}"
        );
        assert_eq!(r.n, bench_micro::expected_rounds(&system, name).unwrap());
        assert!(r.tsc_mhz.is_some_and(|mhz| mhz > 0), "{r:?}");
    }
    // Both roles ran: the peer registered its service, the bench its device.
    assert!(
        out.contains("microbench-peer: serving microbench-peer"),
        "{out}"
    );
    assert!(out.contains("microbench: nic0 "), "{out}");
}
