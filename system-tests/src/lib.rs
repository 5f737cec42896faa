//! The harness for whole-system tests: boots the image that `cargo xtask test`
//! built (paths in `TESSERA_TEST_KERNEL` / `TESSERA_TEST_ROOT`) under QEMU with a
//! timeout, keeps the serial log under `target/logs/`, and lets a test wait for
//! lines and read `PASS`/`FAIL` check lines.

use std::path::PathBuf;
use std::time::Duration;
use xtask::qemu::{Boot, Outcome, Session};
use xtask::test::{KERNEL_ENV, ROOT_ENV, SYSTEMS_ENV, VARIANTS_ENV};

/// The kernel and root image to boot, from the environment `cargo xtask test` sets.
pub fn image() -> (PathBuf, PathBuf) {
    let get = |name: &str| {
        std::env::var_os(name).map(PathBuf::from).unwrap_or_else(|| {
            panic!("{name} is not set: run the system tests with `cargo xtask test`, which builds the image first")
        })
    };
    (get(KERNEL_ENV), get(ROOT_ENV))
}

/// The images of the system descriptions the tests boot: (system name, kernel, root).
pub fn system_images() -> Vec<(String, PathBuf, PathBuf)> {
    triples(SYSTEMS_ENV)
}

/// Boots the system image built from the description named `system`.
pub fn boot_system(system: &str, log: &str) -> Session {
    let (kernel, root) = system_image(system);
    boot_image(log, kernel, root)
}

/// Boots an iperf unikernel system (`system`) with QEMU NIC model `nic` on user
/// networking, a free host port forwarded to the guest's 5201, and waits until the
/// server listens; returns the session and the host port.
pub fn boot_iperf_unikernel(system: &str, nic: &str) -> (Session, u16) {
    let (kernel, root) = system_image(system);
    let port = free_port();
    let log = xtask::target_dir()
        .join("logs")
        .join(format!("{system}.log"));
    let mut boot = Boot::new(kernel, root, log);
    boot.timeout = Duration::from_secs(180);
    boot.extra = vec![
        "-device".to_string(),
        format!("{nic},netdev=n0"),
        "-netdev".to_string(),
        format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-10.0.2.15:5201"),
    ];
    let session = Session::start(&boot, false).expect("QEMU starts");
    session
        .wait_for("iperf: listening on port 5201", Duration::from_secs(120))
        .unwrap_or_else(|e| {
            panic!(
                "the iperf component did not come up: {e}\n{}",
                session.output()
            )
        });
    (session, port)
}

/// The other kernel variants' images: (variant, kernel, root).
pub fn variant_images() -> Vec<(String, PathBuf, PathBuf)> {
    triples(VARIANTS_ENV)
}

fn triples(var: &str) -> Vec<(String, PathBuf, PathBuf)> {
    let text = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the system tests with `cargo xtask test`")
    });
    text.split(';')
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let parts: Vec<&str> = entry.split('|').collect();
            assert_eq!(parts.len(), 3, "malformed {var} entry {entry:?}");
            (
                parts[0].to_string(),
                PathBuf::from(parts[1]),
                PathBuf::from(parts[2]),
            )
        })
        .collect()
}

/// Boots the default image; `name` names the serial log (`target/logs/<name>.log`).
pub fn boot(name: &str) -> Session {
    let (kernel, root) = image();
    boot_image(name, kernel, root)
}

/// Boots `kernel` with `root`; `name` names the serial log (`target/logs/<name>.log`).
pub fn boot_image(name: &str, kernel: PathBuf, root: PathBuf) -> Session {
    let log = xtask::target_dir().join("logs").join(format!("{name}.log"));
    let mut boot = Boot::new(kernel, root, log);
    boot.timeout = Duration::from_secs(180);
    Session::start(&boot, false).unwrap_or_else(|e| panic!("cannot boot: {e}"))
}

/// Boots the image built from `system` with `image` as its virtio-blk disk `disk0`, logs
/// to `target/logs/<log>.log`, lets the whole session take `timeout`, and waits (`wait`
/// at most) for the shell's prompt; panics with the output if it never comes.
pub fn boot_with_disk(
    system: &str,
    image: &std::path::Path,
    log: &str,
    timeout: Duration,
    wait: Duration,
) -> Session {
    let (kernel, root) = system_image(system);
    let log = xtask::target_dir().join("logs").join(format!("{log}.log"));
    let mut boot = Boot::new(kernel, root, log);
    boot.timeout = timeout;
    boot.extra = xtask::qemu::disk::qemu_args(image, "disk0");
    let session = Session::start(&boot, false).expect("QEMU starts");
    session
        .wait_for(PROMPT, wait)
        .unwrap_or_else(|e| panic!("{e}\n{}", session.output()));
    session
}

/// Boots, waits for the system to halt by itself, and returns its output and status.
pub fn boot_to_halt(name: &str) -> (String, Outcome) {
    let mut session = boot(name);
    let outcome = session.wait_exit();
    (session.output(), outcome)
}

/// The lines of `output` that start with `prefix`, with the prefix removed.
pub fn lines_with<'a>(output: &'a str, prefix: &str) -> Vec<&'a str> {
    output
        .lines()
        .filter_map(|l| l.trim_matches('\r').strip_prefix(prefix))
        .collect()
}

/// The kernel and root image built from the description named `system`.
pub fn system_image(system: &str) -> (PathBuf, PathBuf) {
    system_images()
        .into_iter()
        .find(|(name, _, _)| name == system)
        .map(|(_, kernel, root)| (kernel, root))
        .unwrap_or_else(|| {
            panic!("no image of system `{system}` was built (see xtask::test::TEST_SYSTEMS)")
        })
}

/// A host TCP port that is free right now (for QEMU's user-networking forwards).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free host port")
        .port()
}

/// Whether the stock iperf3 client is installed.
pub fn have_iperf3() -> bool {
    std::process::Command::new("iperf3")
        .arg("--version")
        .output()
        .is_ok()
}

/// The number after `"bytes":` in the `sum_received` object of iperf3's JSON report.
pub fn iperf3_received_bytes(json: &str) -> Option<u64> {
    let sum = &json[json.find("\"sum_received\"")?..];
    let bytes = &sum[sum.find("\"bytes\"")? + "\"bytes\"".len()..];
    let digits: String = bytes
        .trim_start_matches(|c: char| c == ':' || c.is_whitespace())
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Checks one stock-client run (`ok`: its exit status, `json`: its `-J` report) of the
/// test `what`: it succeeded, printed a JSON object and received bytes; returns them.
/// `serial` (the guest's output) is shown on failure.
pub fn assert_iperf3_received(what: &str, ok: bool, json: &str, serial: &str) -> u64 {
    assert!(ok, "{what}: iperf3 failed:\n{json}\nserial:\n{serial}");
    let trimmed = json.trim();
    assert!(
        trimmed.starts_with('{') && trimmed.ends_with('}'),
        "{what}: not JSON: {json}"
    );
    let bytes = iperf3_received_bytes(trimmed)
        .unwrap_or_else(|| panic!("{what}: no sum_received.bytes: {json}"));
    assert!(bytes > 0, "{what}: nothing received: {json}");
    bytes
}

/// Runs the command line `argv` (an iperf3 client with `-J`, perhaps behind
/// `ip netns exec`) under `timeout SECS`; returns whether it succeeded with a JSON report
/// whose `sum_received.bytes` > 0, and its output.
pub fn run_iperf3(argv: &[String], secs: u64) -> (bool, String) {
    let out = std::process::Command::new("timeout")
        .arg(secs.to_string())
        .args(argv)
        .output()
        .expect("run timeout/iperf3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = out.status.success() && iperf3_received_bytes(text.trim()).is_some_and(|b| b > 0);
    (ok, text)
}

/// The last value printed on a line containing `key` followed by a number
/// (e.g. `rx_malformed 12`), if any.
pub fn last_number_after(output: &str, key: &str) -> Option<u64> {
    output.rmatch_indices(key).find_map(|(i, _)| {
        let digits: String = output[i + key.len()..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    })
}

/// The shell's prompt.
pub const PROMPT: &str = "tessera> ";

/// Types `line` into the shell on `session` and returns what it printed up to its next
/// prompt (line endings normalised to `\n`); panics with the serial output after `wait`.
pub fn shell_command(session: &mut Session, line: &str, wait: Duration) -> String {
    let before = session.output().len();
    session.send(&format!("{line}\r")).unwrap();
    let end = session
        .wait_for_from(PROMPT, before, wait)
        .unwrap_or_else(|e| panic!("`{line}`: {e}\n{}", session.output()));
    session.output()[before..end - PROMPT.len()]
        .replace("\r\n", "\n")
        .replace('\r', "")
}

pub use xtask::qemu::{component_faults, printed, INTERLEAVE_SLACK};

/// Waits up to `wait` until `needle` was [`printed`] in the session's output after byte
/// `from` ([`Session::wait_printed_from`]); the error carries the output.
pub fn wait_printed(
    session: &Session,
    needle: &str,
    from: usize,
    wait: Duration,
) -> Result<(), String> {
    session
        .wait_printed_from(needle, from, wait)
        .map_err(|e| format!("{e}:\n{}", session.output()))
}
