//! Boots systems/tests/ipcfuzz.toml: the `ipcfuzz` component sends 1,000 malformed or random
//! requests to each of naming, proc, memory, devices and serial (random labels, lengths up to
//! the IPC buffer's 120 words, bogus names, out-of-range arguments, capabilities where none
//! belong and none where one does), checks that every reply is `Malformed` for an
//! undecodable request and otherwise `Ok` or a declared error, and that one valid request
//! still succeeds. Afterwards every service still answers the shell.

use std::time::Duration;
use system_tests::{boot_system, lines_with};
use xtask::qemu::{Outcome, Session};

const WAIT: Duration = Duration::from_secs(120);
use system_tests::PROMPT;
const SERVICES: [&str; 5] = ["naming", "proc", "memory", "devices", "serial"];

/// Types `line` and returns what the shell printed up to its next prompt.
fn command(s: &mut Session, line: &str) -> String {
    system_tests::shell_command(s, line, WAIT)
}

#[test]
fn malformed_ipc_gets_errors_and_the_services_keep_answering() {
    let mut s = boot_system("ipcfuzz", "ipc-fuzz");
    s.wait_for("ipcfuzz: done", WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    s.wait_for(PROMPT, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    let out = s.output();
    for service in SERVICES {
        let lines = lines_with(&out, &format!("CHECK ipcfuzz-{service}: "));
        assert_eq!(lines.len(), 1, "{service}:\n{out}");
        let line = lines[0].trim_end();
        let errors: u64 = line
            .strip_prefix("PASS (1000 messages, ")
            .and_then(|r| r.strip_suffix(" error replies)"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{service}: {line}\n{out}"));
        // Most of what ipcfuzz sends is undecodable.
        assert!(errors >= 500, "{service}: {line}");
    }
    assert_eq!(
        lines_with(&out, "CHECK ipcfuzz-").len(),
        SERVICES.len(),
        "{out}"
    );
    // Nobody faulted, nothing was restarted, and ipcfuzz was never stopped by its own requests.
    assert!(system_tests::component_faults(&out).is_empty(), "{out}");
    assert!(!out.contains("stopped:"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    assert_eq!(out.matches("proc: started ").count(), 3, "{out}");

    // Every service still answers: proc, memory, devices and naming through the shell, and
    // serial by carrying the shell's output.
    let ps = command(&mut s, "ps");
    for c in ["naming", "proc", "memory", "devices", "serial", "shell"] {
        assert!(
            ps.lines()
                .any(|l| l.split_whitespace().any(|w| w == c) && l.contains("running")),
            "{c}:\n{ps}"
        );
    }
    let mem = command(&mut s, "mem");
    assert!(mem.contains("free memory:"), "{mem}");
    let devices = command(&mut s, "devices");
    assert!(devices.contains("8086:1237"), "{devices}");
    let lookup = command(&mut s, "lookup serial");
    assert!(lookup.contains("serial: found"), "{lookup}");

    s.send("halt\r").unwrap();
    assert_eq!(s.wait_exit(), Outcome::Exited(0), "{}", s.output());
}
