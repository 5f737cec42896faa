//! Boots the default system (systems/default.toml) and drives it the way a newcomer
//! would: through the shell on the serial console.

use std::time::Duration;
use system_tests::{boot_system, lines_with};
use xtask::qemu::{Outcome, Session};

const WAIT: Duration = Duration::from_secs(90);
use system_tests::PROMPT;

/// Types `line` and returns what the shell printed up to its next prompt.
fn command(s: &mut Session, line: &str) -> String {
    system_tests::shell_command(s, line, WAIT)
}

#[test]
fn the_shell_answers_and_halts_the_system() {
    let mut s = boot_system("default", "default-system");
    s.wait_for(PROMPT, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    let boot = s.output();
    // The root task starts the fundamental services, proc the others.
    for c in ["naming", "proc", "memory", "devices"] {
        assert!(
            boot.contains(&format!("root: started {c} (id")),
            "{c} not started:\n{boot}"
        );
    }
    for c in ["serial", "shell", "hello"] {
        assert!(
            boot.contains(&format!("proc: started {c} (id")),
            "{c} not started:\n{boot}"
        );
    }
    assert!(boot.contains("hello: hello from Tessera"), "{boot}");
    // hello's own lookups: routed found, unrouted-but-existing and nonexistent refused.
    for check in [
        "hello-lookup-serial",
        "hello-refused-proc",
        "hello-refused-nosuch",
    ] {
        let line = lines_with(&boot, &format!("CHECK {check}: "));
        assert!(
            line.len() == 1 && line[0].starts_with("PASS"),
            "{check}:\n{boot}"
        );
    }
    assert!(
        lines_with(&boot, "CHECK ")
            .iter()
            .all(|l| l.contains("PASS")),
        "{boot}"
    );
    assert!(!boot.contains("cannot start"), "{boot}");

    let ps = command(&mut s, "ps");
    for c in [
        "naming", "proc", "memory", "devices", "serial", "shell", "hello",
    ] {
        assert!(
            ps.lines().any(|l| l.contains(c) && l.contains("running")),
            "ps:\n{ps}"
        );
    }

    // Routed: found. Not routed and nonexistent: the same refusal.
    let routed = command(&mut s, "lookup serial");
    assert!(routed.contains("serial: found"), "{routed}");
    let unrouted = command(&mut s, "lookup keys");
    let missing = command(&mut s, "lookup nosuch");
    assert!(unrouted.contains("keys: not found"), "{unrouted}");
    assert_eq!(
        unrouted.replace("keys", "X"),
        missing.replace("nosuch", "X"),
        "unrouted and nonexistent must look the same"
    );

    let devices = command(&mut s, "devices");
    assert!(
        devices.contains("8086:1237"),
        "host bridge missing:\n{devices}"
    );
    let mem = command(&mut s, "mem");
    assert!(mem.contains("free memory:"), "{mem}");

    let bad = command(&mut s, "frobnicate");
    assert_eq!(
        bad.trim_start_matches("frobnicate\n").lines().count(),
        1,
        "one error line: {bad}"
    );
    assert!(bad.contains("unknown command"), "{bad}");
    let usage = command(&mut s, "kill");
    assert!(usage.contains("error"), "{usage}");

    s.send("halt\r").unwrap();
    assert_eq!(s.wait_exit(), Outcome::Exited(0), "{}", s.output());
}
