//! Boots the default system (serial has `restart = "always"`), kills `serial` from the shell
//! and shows the shell's console client recovers: proc brings serial back (a new generation
//! in naming), and the commands typed afterwards get their answers.

use std::time::{Duration, Instant};
use system_tests::boot_system;
use xtask::qemu::{Outcome, Session};

const WAIT: Duration = Duration::from_secs(90);
use system_tests::PROMPT;

/// Types `line` and returns what the shell printed up to its next prompt.
fn command(s: &mut Session, line: &str) -> String {
    system_tests::shell_command(s, line, WAIT)
}

/// The generation `lookup serial` reports.
fn generation(s: &mut Session) -> u64 {
    let out = command(s, "lookup serial");
    out.split("generation ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no generation in {out:?}"))
}

#[test]
fn the_shell_keeps_working_after_serial_restarts() {
    let mut s = boot_system("default", "serial-restart");
    s.wait_for(PROMPT, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    let before = generation(&mut s);

    for round in 1..=2u64 {
        let start = s.output().len();
        s.send("kill serial\r").unwrap();
        // proc stops serial and restarts it after its back-off; the shell's next console
        // call reaches the new instance.
        s.wait_for_from("killed serial", start, WAIT)
            .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", s.output()));
        s.wait_for_from(PROMPT, start, WAIT)
            .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", s.output()));
        let out = s.output();
        assert_eq!(
            out.matches("proc: started serial (id").count() as u64,
            1 + round,
            "{out}"
        );
        // A command typed after the restart gets its answer.
        let deadline = Instant::now() + WAIT;
        let ps = loop {
            let ps = command(&mut s, "ps");
            if ps
                .lines()
                .any(|l| l.split_whitespace().any(|w| w == "serial") && l.contains("running"))
            {
                break ps;
            }
            assert!(Instant::now() < deadline, "serial not running again:\n{ps}");
        };
        assert!(ps.contains("shell"), "{ps}");
        assert_eq!(generation(&mut s), before + round, "{}", s.output());
        let mem = command(&mut s, "mem");
        assert!(mem.contains("free memory:"), "{mem}");
    }
    assert!(
        system_tests::component_faults(&s.output()).is_empty(),
        "{}",
        s.output()
    );

    s.send("halt\r").unwrap();
    assert_eq!(s.wait_exit(), Outcome::Exited(0), "{}", s.output());
}
