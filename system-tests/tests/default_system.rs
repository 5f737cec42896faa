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

/// One row of the shell's `mem` table, sizes in bytes (`used` is `None` for `-`).
struct MemRow {
    name: String,
    state: String,
    used: Option<u64>,
    /// How much more than `used` the true value may be (the printed rounding).
    used_slack: u64,
    budget: u64,
    heap: u64,
    stack: u64,
}

/// The shift of a unit the shell prints.
fn unit_shift(unit: &str) -> u32 {
    match unit {
        "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => panic!("unit {unit}"),
    }
}

/// A size as the shell prints it (`512 KiB`, `2.2 MiB`, `0 B`), in bytes: the printed
/// value, which is the true one rounded down to a tenth of the unit.
fn bytes(number: &str, unit: &str) -> u64 {
    let shift = unit_shift(unit);
    let (whole, tenths) = number.split_once('.').unwrap_or((number, "0"));
    let whole: u64 = whole.parse().unwrap();
    let tenths: u64 = tenths.parse().unwrap();
    (whole << shift) + ((tenths << shift) / 10)
}

/// The rows of `mem`'s table: after the `NAME STATE USED BUDGET HEAP STACK` header, each
/// row is a name, a state, then four sizes of two words each (or `-` for USED).
fn mem_rows(mem: &str) -> Vec<MemRow> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in mem.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"NAME") {
            assert_eq!(
                words,
                ["NAME", "STATE", "USED", "BUDGET", "HEAP", "STACK"],
                "{mem}"
            );
            in_table = true;
            continue;
        }
        if !in_table || words.len() < 8 {
            continue;
        }
        let (used, used_slack, rest) = if words[2] == "-" {
            (None, 0, &words[3..])
        } else {
            let slack = ((1u64 << unit_shift(words[3])) / 10) + 1;
            (Some(bytes(words[2], words[3])), slack, &words[4..])
        };
        rows.push(MemRow {
            name: words[0].into(),
            state: words[1].into(),
            used,
            used_slack,
            budget: bytes(rest[0], rest[1]),
            heap: bytes(rest[2], rest[3]),
            stack: bytes(rest[4], rest[5]),
        });
    }
    rows
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
    // `mem`: the free memory (memory answers the shell about itself), then one row per
    // component from proc, which asks memory with its own authority.
    let mem = command(&mut s, "mem");
    assert!(mem.contains("free memory:"), "{mem}");
    let rows = mem_rows(&mem);
    for c in [
        "naming", "proc", "memory", "devices", "serial", "shell", "hello",
    ] {
        let row = rows
            .iter()
            .find(|r| r.name == c)
            .unwrap_or_else(|| panic!("no mem row for {c}:\n{mem}"));
        assert_eq!(row.state, "running", "{mem}");
        let used = row.used.unwrap_or_else(|| panic!("{c} unmeasured:\n{mem}"));
        // The description's budget, heap (half) and stack (an eighth, 16-256 KiB).
        let budget = row.budget;
        assert!(budget >= 64 << 10, "{mem}");
        assert_eq!(row.heap, budget / 2, "{c}:\n{mem}");
        assert_eq!(
            row.stack,
            (budget / 8).clamp(16 << 10, 256 << 10),
            "{c}:\n{mem}"
        );
        assert!(used <= budget, "{c}:\n{mem}");
        // proc builds the others from their budgets: heap and stack count as used.
        if ["serial", "shell", "hello"].contains(&c) {
            assert!(used + row.used_slack >= row.heap + row.stack, "{c}:\n{mem}");
        }
    }
    let budget_of = |c: &str| rows.iter().find(|r| r.name == c).map(|r| r.budget);
    assert_eq!(budget_of("shell"), Some(4 << 20), "{mem}");
    assert_eq!(budget_of("proc"), Some(2 << 20), "{mem}");
    assert_eq!(budget_of("serial"), Some(256 << 10), "{mem}");
    assert!(!mem.contains("-: memory did not tell proc"), "{mem}");

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
