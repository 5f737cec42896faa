//! Composition 3: one network service shared by two applications (systems/net-shared.toml).
//!
//! - Two stock `iperf3 -c` runs, one against each iperf3 server (guest ports 5201 and 5202,
//!   each an application attached to `net` over its own shared region), at the same time:
//!   both complete and both servers received bytes.
//! - `kill iperf-a` during a transfer to iperf-b: iperf-b's transfer completes; iperf-a is
//!   restarted, attaches again over its region (net resets its old sockets) and serves a
//!   new test.
//! - systems/net-shared-isolated.toml (the driver in its own `nic` component): both clients
//!   at once complete; `kill nic` during a transfer: proc restarts it, net attaches to it
//!   again, and the transfer completes (TCP retransmits what was lost); the applications
//!   hold no device and nothing but what proc grants every component (`caps`).
//! - systems/tests/net-hostile.toml: a hostile client (`netfuzz`) fills its rings with
//!   garbage and scribbles over their indices while iperf-a serves a test: the test
//!   completes, net counts the garbage and cuts the client off (it attaches again and
//!   goes on), and nothing faults.
//! - `kill net` during a transfer: that transfer fails (the stack's state is gone); proc
//!   restarts net and tells its clients, which attach again by themselves, and both
//!   servers serve new tests.

use std::thread;
use std::time::Duration;
use system_tests::{assert_iperf3_received, free_port, have_iperf3, run_iperf3, shell_command};
use xtask::qemu::{Boot, Session};

/// Boots net-shared with two free host ports forwarded to the guest's 5201 and 5202 and
/// waits until both servers listen and the shell prompts.
fn boot() -> (Session, [u16; 2]) {
    boot_system("net-shared")
}

/// Boots `system` (net-shared or net-shared-isolated) as [`boot`] does.
fn boot_system(system: &str) -> (Session, [u16; 2]) {
    let (kernel, root) = system_tests::system_image(system);
    let ports = [free_port(), free_port()];
    let log = xtask::target_dir()
        .join("logs")
        .join(format!("{system}.log"));
    let mut boot = Boot::new(kernel, root, log);
    boot.timeout = Duration::from_secs(300);
    boot.extra = vec![
        "-device".to_string(),
        "e1000e,netdev=n0".to_string(),
        "-netdev".to_string(),
        format!(
            "user,id=n0,hostfwd=tcp:127.0.0.1:{}-10.0.2.15:5201,hostfwd=tcp:127.0.0.1:{}-10.0.2.15:5202",
            ports[0], ports[1]
        ),
    ];
    let session = Session::start(&boot, false).expect("QEMU starts");
    // Two applications and net print at once: a line may be cut into by another's.
    for line in [
        "iperf: listening on port 5201",
        "iperf: listening on port 5202",
        system_tests::PROMPT,
    ] {
        if let Err(e) = system_tests::wait_printed(&session, line, 0, Duration::from_secs(150)) {
            panic!("{e}");
        }
    }
    // A remote listener is bound once net has taken the application's request, a moment
    // after the application says it listens.
    thread::sleep(Duration::from_secs(2));
    (session, ports)
}

fn client(port: u16, secs: u64) -> Vec<String> {
    ["iperf3", "-c", "127.0.0.1", "-J", "-p", &port.to_string()]
        .into_iter()
        .map(String::from)
        .chain(["-t".to_string(), secs.to_string()])
        .collect()
}

/// A client paced to 50 Mbit/s: a transfer that leaves the guest idle time. The shell polls
/// the console at the lowest priority, so a command typed during a saturating transfer
/// would only run after it; the tests that kill a component mid-transfer use this.
fn paced(port: u16, secs: u64) -> Vec<String> {
    let mut args = client(port, secs);
    args.extend(["-b".to_string(), "50M".to_string()]);
    args
}

#[test]
fn two_applications_share_the_stack_and_one_survives_the_other() {
    if !have_iperf3() {
        eprintln!("iperf3 is not installed: skipped");
        return;
    }
    let (mut session, [a, b]) = boot();

    // Both at once.
    let first = thread::spawn(move || run_iperf3(&client(a, 3), 90));
    let (ok_b, json_b) = run_iperf3(&client(b, 3), 90);
    let (ok_a, json_a) = first.join().unwrap();
    let serial = session.output();
    let bytes_a = assert_iperf3_received("client of iperf-a", ok_a, &json_a, &serial);
    let bytes_b = assert_iperf3_received("client of iperf-b", ok_b, &json_b, &serial);
    eprintln!("concurrent: iperf-a received {bytes_a} bytes, iperf-b {bytes_b}");

    // iperf-a dies while iperf-b's transfer runs; iperf-b's completes.
    let long = thread::spawn(move || run_iperf3(&paced(b, 6), 120));
    thread::sleep(Duration::from_secs(3));
    let before = session.output().len();
    shell_command(&mut session, "kill iperf-a", Duration::from_secs(30));
    let (ok, json) = long.join().unwrap();
    assert_iperf3_received(
        "iperf-b while iperf-a was killed",
        ok,
        &json,
        &session.output(),
    );

    // iperf-a comes back, attaches again and serves.
    if let Err(e) = system_tests::wait_printed(
        &session,
        "iperf: listening on port 5201",
        before,
        Duration::from_secs(60),
    ) {
        panic!("iperf-a did not come back: {e}");
    }
    let (ok, json) = run_iperf3(&client(a, 2), 90);
    assert_iperf3_received("iperf-a after its restart", ok, &json, &session.output());
    assert!(
        session.output().contains("reattached: 1"),
        "net attached iperf-a again over its region:\n{}",
        session.output()
    );
}

#[test]
fn killing_net_resets_its_clients_which_attach_again_and_serve() {
    if !have_iperf3() {
        eprintln!("iperf3 is not installed: skipped");
        return;
    }
    let (mut session, [a, b]) = boot();
    let doomed = thread::spawn(move || run_iperf3(&paced(a, 8), 60));
    thread::sleep(Duration::from_secs(3));
    let before = session.output().len();
    shell_command(&mut session, "kill net", Duration::from_secs(30));
    let (ok, report) = doomed.join().unwrap();
    assert!(
        !ok,
        "a transfer through the killed stack cannot complete:\n{report}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while session.output()[before..]
        .matches("net restarted: attaching again")
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "both applications attach again after net's restart:\n{}",
            session.output()
        );
        thread::sleep(Duration::from_millis(500));
    }
    for (name, port) in [("iperf-a", a), ("iperf-b", b)] {
        let (ok, json) = run_iperf3(&client(port, 2), 90);
        assert_iperf3_received(
            &format!("{name} after net's restart"),
            ok,
            &json,
            &session.output(),
        );
    }
}

/// The rows `caps NAME` prints, as (slot, kind) pairs.
fn caps(session: &mut Session, name: &str) -> Vec<(String, String)> {
    let out = shell_command(session, &format!("caps {name}"), Duration::from_secs(30));
    out.lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            Some((fields.next()?.to_string(), fields.next()?.to_string()))
        })
        .collect()
}

#[test]
fn the_driver_in_its_own_component_restarts_under_a_transfer() {
    if !have_iperf3() {
        eprintln!("iperf3 is not installed: skipped");
        return;
    }
    let (mut session, [a, b]) = boot_system("net-shared-isolated");

    let first = thread::spawn(move || run_iperf3(&client(a, 3), 90));
    let (ok_b, json_b) = run_iperf3(&client(b, 3), 90);
    let (ok_a, json_a) = first.join().unwrap();
    let serial = session.output();
    assert_iperf3_received("client of iperf-a", ok_a, &json_a, &serial);
    assert_iperf3_received("client of iperf-b", ok_b, &json_b, &serial);

    // The driver dies under a transfer; proc restarts it, net attaches again, TCP carries on.
    // The transfer is long enough that the restart (a few seconds under TCG, more on a slow
    // machine) and TCP's retransmission back-off fit well inside it.
    let long = thread::spawn(move || run_iperf3(&paced(b, 20), 180));
    thread::sleep(Duration::from_secs(3));
    let before = session.output().len();
    shell_command(&mut session, "kill nic", Duration::from_secs(60));
    if let Err(e) = system_tests::wait_printed(
        &session,
        "net: nic restarted: attaching again",
        before,
        Duration::from_secs(120),
    ) {
        panic!("net attached to the restarted nic: {e}");
    }
    let (ok, json) = long.join().unwrap();
    let serial = session.output();
    assert_iperf3_received("iperf-b across the nic's restart", ok, &json, &serial);

    // Applications hold what every component gets and nothing else: no device, no region
    // capability, nothing from slot 8 on.
    for name in ["iperf-a", "iperf-b"] {
        let kinds: Vec<String> = caps(&mut session, name)
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        assert_eq!(
            kinds,
            [
                "tcb",
                "cnode",
                "vspace",
                "endpoint",
                "endpoint",
                "notification"
            ],
            "caps {name}"
        );
    }
}

/// The last `ServerCounters` field `key` net printed (its `report_s` line), if any. Only a
/// line that carries both the counters' name and the field counts: other components' output
/// can cut into a report line on the shared serial port.
fn server_counter(output: &str, key: &str) -> Option<u64> {
    let key = format!("{key}:");
    output
        .lines()
        .rev()
        .filter(|l| l.contains("server ServerCounters") && l.contains(&key))
        .find_map(|l| system_tests::last_number_after(l, &key))
}

/// Waits (up to a minute) for a report line after `from` with both `cut_off` and
/// `malformed`, and returns them.
fn counters_after(session: &Session, from: usize) -> (u64, u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let output = session.output();
        let tail = output.get(from..).unwrap_or("");
        if let (Some(cut), Some(bad)) = (
            server_counter(tail, "cut_off"),
            server_counter(tail, "malformed"),
        ) {
            return (cut, bad);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no complete ServerCounters report after the test:\n{output}"
        );
        thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_hostile_client_is_counted_and_cut_off_while_the_other_is_served() {
    if !have_iperf3() {
        eprintln!("iperf3 is not installed: skipped");
        return;
    }
    let (kernel, root) = system_tests::system_image("net-hostile");
    let port = free_port();
    let log = xtask::target_dir().join("logs").join("net-hostile.log");
    let mut boot = Boot::new(kernel, root, log);
    boot.timeout = Duration::from_secs(300);
    boot.extra = vec![
        "-device".to_string(),
        "e1000e,netdev=n0".to_string(),
        "-netdev".to_string(),
        format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:5201"),
    ];
    let session = Session::start(&boot, false).expect("QEMU starts");
    for line in [
        "iperf: listening on port 5201",
        "netfuzz: round 500",
        "server ServerCounters",
    ] {
        if let Err(e) = system_tests::wait_printed(&session, line, 0, Duration::from_secs(150)) {
            panic!("{e}");
        }
    }
    thread::sleep(Duration::from_secs(2));
    let before = session.output();
    let (cut_before, bad_before) = (
        server_counter(&before, "cut_off").unwrap_or(0),
        server_counter(&before, "malformed").unwrap_or(0),
    );
    let (ok, json) = run_iperf3(&client(port, 4), 90);
    assert_iperf3_received(
        "iperf-a beside the hostile client",
        ok,
        &json,
        &session.output(),
    );
    let at = session.output().len();
    let (cut, bad) = counters_after(&session, at);
    let after = session.output();
    assert!(
        cut > cut_before && bad > bad_before,
        "the garbage went on during the test and was counted: cut_off {cut_before} -> {cut}, \
         malformed {bad_before} -> {bad}\n{after}"
    );
    assert!(
        system_tests::component_faults(&after).is_empty(),
        "no component faulted:\n{after}"
    );
}
