//! Boots systems/tests/ipcfuzz.toml: the `ipcfuzz` component sends 1,000 malformed or random
//! requests to each of naming, proc, memory, devices, serial and keystore (random labels, lengths up to
//! the IPC buffer's 120 words, bogus names, out-of-range arguments, capabilities where none
//! belong and none where one does), checks that every reply is `Malformed` for an
//! undecodable request and otherwise `Ok` or a declared error, and that one valid request
//! still succeeds. Afterwards every service still answers the shell. No key store reply holds
//! any 8 bytes of the key the description plants for ipcfuzz, and the public key ipcfuzz
//! reads for it is the one its secret gives (checked with PyNaCl where it can be installed).

use std::time::Duration;
use system_tests::{boot_system, lines_with};
use xtask::qemu::{Outcome, Session};

const WAIT: Duration = Duration::from_secs(120);
use system_tests::PROMPT;
const SERVICES: [&str; 6] = ["naming", "proc", "memory", "devices", "serial", "keystore"];

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
    let secret = lines_with(&out, "CHECK ipcfuzz-keystore-secret: ");
    assert_eq!(secret.len(), 1, "{out}");
    assert!(
        secret[0].starts_with("PASS (0 of 1000 replies"),
        "{}",
        secret[0]
    );
    assert_eq!(
        lines_with(&out, "CHECK ipcfuzz-").len(),
        SERVICES.len() + 1,
        "{out}"
    );
    planted_key_is_the_described_one(&out);
    // Nobody faulted, nothing was restarted, and ipcfuzz was never stopped by its own requests.
    assert!(system_tests::component_faults(&out).is_empty(), "{out}");
    assert!(!out.contains("stopped:"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    assert_eq!(out.matches("proc: started ").count(), 4, "{out}");

    // Every service still answers: proc, memory, devices and naming through the shell, and
    // serial by carrying the shell's output.
    let ps = command(&mut s, "ps");
    for c in [
        "naming", "proc", "memory", "devices", "serial", "shell", "keystore",
    ] {
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

/// The public key ipcfuzz printed for the planted key is the one the secret in the
/// description gives: so the key the fuzzer checked replies against is really in the store.
fn planted_key_is_the_described_one(out: &str) {
    let path = xtask::workspace_root().join("systems/tests/ipcfuzz.toml");
    let system = xtask::build::load_system(&path).unwrap();
    let fuzzer = system
        .components
        .iter()
        .find(|c| c.name == "ipcfuzz")
        .unwrap();
    let secret = &fuzzer.args["planted"];
    let printed = lines_with(out, "ipcfuzz: keystore planted pk=");
    assert_eq!(printed.len(), 1, "{out}");
    if let Err(e) = xtask::host::ensure(xtask::host::Purpose::Nacl) {
        eprintln!("SKIPPED: the planted key's check needs PyNaCl: {e}");
        return;
    }
    let derived = std::process::Command::new(xtask::host::NACL_PYTHON)
        .args([
            "-c",
            "import sys\nfrom nacl.signing import SigningKey\n\
             print(SigningKey(bytes.fromhex(sys.argv[1])).verify_key.encode().hex())",
            secret,
        ])
        .output()
        .expect("run python3");
    assert!(derived.status.success(), "{derived:?}");
    assert_eq!(
        String::from_utf8_lossy(&derived.stdout).trim(),
        printed[0].trim(),
        "the planted key's public key"
    );
}
