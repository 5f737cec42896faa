//! Boots systems/tests/procsup.toml: proc starts the non-fundamental components, reports a
//! faulting, panicking or heap-exhausted one in one line and restarts it until its policy
//! gives up, reports an exit with its status, brings a killed one
//! back, lists exactly what it granted, and spawn/kill cycles leave no memory behind.

use std::time::{Duration, Instant};
use system_tests::boot_system;
use xtask::qemu::{Outcome, Session};

const WAIT: Duration = Duration::from_secs(90);
use system_tests::PROMPT;

/// Types `line` and returns what the shell printed up to its next prompt.
fn command(s: &mut Session, line: &str) -> String {
    system_tests::shell_command(s, line, WAIT)
}

/// The `ps` line of component `name`.
fn ps_line(s: &mut Session, name: &str) -> String {
    let ps = command(s, "ps");
    ps.lines()
        .find(|l| l.split_whitespace().any(|w| w == name))
        .unwrap_or_else(|| panic!("{name} missing from ps:\n{ps}"))
        .to_string()
}

/// The number after `restarts` in a `ps` line (the column header names it).
fn restarts(s: &mut Session, name: &str) -> (String, u64) {
    let ps = command(s, "ps");
    let header: Vec<&str> = ps
        .lines()
        .find(|l| l.contains("NAME"))
        .unwrap_or_else(|| panic!("no header in ps:\n{ps}"))
        .split_whitespace()
        .collect();
    let column = header
        .iter()
        .position(|h| h.eq_ignore_ascii_case("restarts"))
        .unwrap_or_else(|| panic!("no RESTARTS column in ps:\n{ps}"));
    let line = ps
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == name))
        .unwrap_or_else(|| panic!("{name} missing from ps:\n{ps}"));
    let n = line.split_whitespace().nth(column).unwrap_or("?");
    (
        line.to_string(),
        n.parse()
            .unwrap_or_else(|_| panic!("restarts of {name} in {line:?}")),
    )
}

/// The `free memory:` line of `mem`.
fn free_memory(s: &mut Session) -> String {
    let mem = command(s, "mem");
    mem.lines()
        .find(|l| l.starts_with("free memory:"))
        .unwrap_or_else(|| panic!("no free memory line:\n{mem}"))
        .to_string()
}

fn boot() -> Session {
    let s = boot_system("procsup", "proc-supervision");
    s.wait_for(PROMPT, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    s
}

#[test]
fn proc_supervises_the_components_it_starts() {
    let mut s = boot();
    let boot = s.output();
    for c in ["naming", "proc", "memory", "devices"] {
        assert!(boot.contains(&format!("root: started {c} (id")), "{boot}");
    }
    // proc starts the others, in description order.
    let order: Vec<usize> = ["serial", "shell", "hello", "crasher", "once"]
        .iter()
        .map(|c| {
            boot.find(&format!("proc: started {c} (id"))
                .unwrap_or_else(|| panic!("{c} not started by proc:\n{boot}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{boot}");
    assert!(!boot.contains("root: started serial"), "{boot}");

    // Two members of shared region `pair` each read the name the other wrote into it.
    for (me, peer) in [("left", "right"), ("right", "left")] {
        s.wait_for(&format!("{me}: done"), WAIT)
            .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
        let out = s.output();
        let line = out
            .lines()
            .filter(|l| l.contains("CHECK hello-shared-pair:"))
            .find(|l| l.contains(&format!("(peer {peer})")));
        assert!(line.is_some_and(|l| l.contains("PASS")), "{me}:\n{out}");
    }

    // (a) crasher faults at every start: one line per fault, two restarts, then stopped.
    let stopped = "stopped: component=crasher after 2 restarts in a row";
    s.wait_for(stopped, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    let out = s.output();
    let faults: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("fault: component=crasher"))
        .collect();
    assert_eq!(faults.len(), 3, "{out}");
    for f in &faults {
        assert!(
            f.trim_end()
                .ends_with("fault: component=crasher kind=VmFault addr=0x10"),
            "{f}"
        );
    }
    assert_eq!(out.matches("proc: started crasher (id").count(), 3, "{out}");
    let (line, n) = restarts(&mut s, "crasher");
    assert_eq!(n, 2, "{line}");
    assert!(!line.contains("running"), "{line}");

    // (a2) a panic and an exhausted heap end like a fault: one line each, restarted per
    // policy, then stopped; an exit is reported with its status and not restarted.
    for (name, max, panic_line) in [
        ("panicker", 2, "asked to panic"),
        ("hoarder", 1, "memory allocation of"),
    ] {
        let stopped = format!("stopped: component={name} after {max} restarts in a row");
        s.wait_for(&stopped, WAIT)
            .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
        let out = s.output();
        let faults = out
            .lines()
            .filter(|l| l.contains(&format!("fault: component={name} kind=Panic addr=0x")))
            .count();
        assert_eq!(faults, max + 1, "{out}");
        let panics = out.lines().filter(|l| l.contains(panic_line)).count();
        assert!(
            panics > max,
            "{name}: {panic_line:?} printed {panics} times\n{out}"
        );
        assert_eq!(
            out.matches(&format!("proc: started {name} (id")).count(),
            max + 1,
            "{out}"
        );
    }
    // A stack overflow hits the unmapped page below the stack (256 KiB budget: 32 KiB of
    // stack ending at rt's STACK_TOP): a VM fault there, not a write into the heap.
    let guard = rt::startinfo::STACK_TOP - 32 * 1024 - 4096;
    s.wait_for("stopped: component=stacker after 1 restarts in a row", WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    let out = s.output();
    let overflows: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("fault: component=stacker kind=VmFault addr="))
        .collect();
    assert_eq!(overflows.len(), 2, "{out}");
    for l in &overflows {
        let addr = l
            .rsplit("addr=0x")
            .next()
            .and_then(|a| u64::from_str_radix(a.trim(), 16).ok());
        let addr = addr.unwrap_or_else(|| panic!("no address in {l}"));
        // seL4 5.0.0's x86 handleVMFault keeps the fault address in a uint32_t, so a VM
        // fault report carries only its low 32 bits (docs/RELIABILITY.md).
        let low = |a: u64| a & 0xffff_ffff;
        assert!(
            (low(guard)..low(guard) + 4096).contains(&low(addr)),
            "{l}: not in the guard page {guard:#x}"
        );
    }
    s.wait_for("exit: component=quitter status=3", WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    let quitter = ps_line(&mut s, "quitter");
    assert!(quitter.contains("exited"), "{quitter}");
    assert_eq!(s.output().matches("proc: started quitter (id").count(), 1);

    // (b) kill hello: it comes back (policy always) with one more restart.
    let (line, before) = restarts(&mut s, "hello");
    assert!(line.contains("running"), "{line}");
    let killed = command(&mut s, "kill hello");
    assert!(killed.contains("killed hello"), "{killed}");
    let deadline = Instant::now() + WAIT;
    loop {
        let (line, n) = restarts(&mut s, "hello");
        if line.contains("running") && n == before + 1 {
            break;
        }
        assert!(Instant::now() < deadline, "hello did not come back: {line}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        s.output().matches("proc: started hello (id").count(),
        2,
        "{}",
        s.output()
    );
    // Fundamental services are refused.
    let refused = command(&mut s, "kill memory");
    assert!(refused.contains("error"), "{refused}");
    assert!(ps_line(&mut s, "memory").contains("running"));

    // (c) caps hello: what proc placed, and nothing the description does not grant.
    let caps = command(&mut s, "caps hello");
    let rows: Vec<Vec<&str>> = caps
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let slots: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(slots, ["1", "2", "3", "4", "5", "7"], "{caps}");
    let naming = rows.iter().find(|r| r[0] == "5").unwrap();
    assert!(naming.contains(&"naming"), "{caps}");
    // hello is component 6: naming's capability is badged 7.
    assert!(naming.contains(&"7"), "{caps}");
    assert!(
        rows.iter().all(|r| r[0].parse::<u64>().unwrap() < 8),
        "{caps}"
    );
    // serial provides a service: its endpoint is listed too.
    let serial = command(&mut s, "caps serial");
    assert!(
        serial
            .lines()
            .any(|l| l.trim_start().starts_with("6 ") && l.contains("serial")),
        "{serial}"
    );

    // (d) spawn/kill `once` (never restarted) 100 times: memory's free total is unchanged.
    let killed = command(&mut s, "kill once");
    assert!(killed.contains("killed once"), "{killed}");
    let start = free_memory(&mut s);
    for i in 0..100 {
        let spawned = command(&mut s, "spawn once");
        assert!(spawned.contains("spawned once"), "cycle {i}: {spawned}");
        let killed = command(&mut s, "kill once");
        assert!(killed.contains("killed once"), "cycle {i}: {killed}");
    }
    assert_eq!(free_memory(&mut s), start);
    assert!(!s.output().contains("cannot start"), "{}", s.output());

    s.send("halt\r").unwrap();
    assert_eq!(s.wait_exit(), Outcome::Exited(0), "{}", s.output());
}
