//! Soak case `iperf-fuzz`: fuzzed iperf3 control-channel inputs ([`super::control`])
//! against the iperf3 server on the hosted library OS (`iperf-hosted`, apps/iperf), then a
//! normal test with the stock `iperf3` client.
//!
//! The server runs on a TAP device inside a private network namespace this case creates and
//! removes (root only), so no traffic leaves it. The inputs are sent from inside the
//! namespace by this same program (`xtask soak-iperf-client`, [`client`]): per input one
//! connection, the input, the client's FIN, then the server must close the connection
//! within [`CLOSE_WAIT`].
//!
//! Row `control inputs`: tried = inputs sent, survived = connections the server closed in
//! time, crashed = 1 if the server process died (a panic; the rest are not tried), hung =
//! connections still open after [`CLOSE_WAIT`] (the case stops after [`MAX_HANGS`]). Row
//! `normal test after`: whether a stock client's one-second test succeeds afterwards.

use super::control::{self, Kind};
use super::{Case, CaseResult};
use crate::qemu::net::TapNet;
use crate::Result;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The generator's seed.
pub const SEED: u64 = 0x50a4_1fe3;
/// The TAP device the server attaches to inside the namespace (made by `TapNet`, which
/// gives the namespace `TAP_HOST_ADDRESS` on it).
pub const TAP: &str = "soak0";
/// The server's address (in `TAP_HOST_ADDRESS`'s subnet).
pub const SERVER_IP: &str = "10.0.2.15";
/// How long the server may take to close a connection after the client's FIN.
pub const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// The case stops after this many hung connections.
pub const MAX_HANGS: u64 = 5;
/// The client stops after this many connection attempts in a row that fail.
pub const MAX_REFUSED_IN_A_ROW: u64 = 20;
/// An input whose connection took longer than this (connect to close) counts as slow.
pub const SLOW: Duration = Duration::from_secs(1);

/// How one input's connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The server closed it (FIN or reset) in time.
    Closed,
    /// Still open after [`CLOSE_WAIT`].
    Hung,
    /// No connection (refused or timed out).
    Refused,
}

/// Sends one input on its own connection to `addr` and says how it ended.
pub fn send_one(addr: SocketAddr, bytes: &[u8]) -> Ended {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
        return Ended::Refused;
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(3)));
    let _ = stream.set_read_timeout(Some(CLOSE_WAIT));
    // The server may close or reset before taking it all: that is its right.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + CLOSE_WAIT;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ended::Closed,
            Ok(_) if Instant::now() < deadline => continue,
            Ok(_) => return Ended::Hung,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ended::Hung
            }
            Err(_) => return Ended::Closed,
        }
    }
}

/// The client side (`xtask soak-iperf-client`, run inside the namespace): sends inputs
/// `0..count` of `seed` to `addr`, printing `progress N closed=C hung=H refused=R slow=S`
/// lines, a `hang N KIND` or `refused N KIND` line for each such input (and `slow N KIND
/// MS` for the first slow ones, over [`SLOW`]), and finally
/// `done tried=T closed=C hung=H refused=R slow=S`. Stops early after [`MAX_HANGS`] hangs or
/// [`MAX_REFUSED_IN_A_ROW`] refusals in a row.
pub fn client(addr: SocketAddr, seed: u64, count: u64) -> Result<()> {
    let (mut closed, mut hung, mut refused, mut in_a_row) = (0u64, 0u64, 0u64, 0u64);
    let mut slow = 0u64;
    let tenth = (count / 10).max(1);
    let mut tried = 0;
    let mut out = std::io::stdout();
    for i in 0..count {
        let (kind, bytes) = control::nth(seed, i);
        tried += 1;
        let started = Instant::now();
        match send_one(addr, &bytes) {
            Ended::Closed => {
                closed += 1;
                in_a_row = 0;
                let took = started.elapsed();
                if took > SLOW {
                    slow += 1;
                    if slow <= 10 {
                        let _ = writeln!(out, "slow {i} {} {}", kind.name(), took.as_millis());
                    }
                }
            }
            Ended::Hung => {
                hung += 1;
                in_a_row = 0;
                let _ = writeln!(out, "hang {i} {}", kind.name());
            }
            Ended::Refused => {
                refused += 1;
                in_a_row += 1;
                if refused <= 20 {
                    let _ = writeln!(out, "refused {i} {}", kind.name());
                }
            }
        }
        if (i + 1) % tenth == 0 {
            let _ = writeln!(
                out,
                "progress {} closed={closed} hung={hung} refused={refused} slow={slow}",
                i + 1
            );
        }
        let _ = out.flush();
        if hung >= MAX_HANGS || in_a_row >= MAX_REFUSED_IN_A_ROW {
            break;
        }
    }
    let _ = writeln!(
        out,
        "done tried={tried} closed={closed} hung={hung} refused={refused} slow={slow}"
    );
    Ok(())
}

/// The counts in a `done` or `progress` line of [`client`]: (tried, closed, hung, refused).
pub fn parse_counts(line: &str) -> Option<(u64, u64, u64, u64)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let tried = match *words.first()? {
        "done" => words.get(1)?.strip_prefix("tried=")?.parse().ok()?,
        "progress" => words.get(1)?.parse().ok()?,
        _ => return None,
    };
    let get = |key: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|n| n.parse().ok())
    };
    Some((tried, get("closed=")?, get("hung=")?, get("refused=")?))
}

/// The `slow=` count of a `done` or `progress` line of [`client`].
pub fn slow_count(line: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("slow="))
        .and_then(|n| n.parse().ok())
}

/// The namespace with its TAP device, the server and the client: the processes are killed
/// on drop, then the namespace goes with its `TapNet`.
struct Setup {
    net: TapNet,
    children: Vec<Child>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Setup {
    fn exec(&self, program: &std::path::Path) -> Command {
        self.net.command(&program.to_string_lossy())
    }
}

/// Builds `iperf-hosted` (release, host) and returns its path.
fn build_server() -> Result<std::path::PathBuf> {
    crate::step("building iperf-hosted (host, release)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(crate::workspace_root())
        .args(["build", "--release", "-p", "iperf", "--bin", "iperf-hosted"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building iperf-hosted failed".into());
    }
    Ok(crate::target_dir().join("release/iperf-hosted"))
}

/// Runs the case with `count` inputs.
pub fn run(count: u64) -> Result<Vec<CaseResult>> {
    let target = "iperf-hosted";
    if let Err(e) = crate::qemu::net::require_root() {
        let why = format!("needs root for a network namespace and a TAP device ({e})");
        return Ok(vec![CaseResult::skipped(Case::IperfFuzz, target, &why)]);
    }
    if let Err(e) = crate::host::ensure(crate::host::Purpose::Iperf) {
        return Ok(vec![CaseResult::skipped(Case::IperfFuzz, target, &e)]);
    }
    let server = build_server()?;
    let me = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let mut setup = Setup {
        net: TapNet::create(&[TAP.to_string()])?,
        children: Vec::new(),
    };
    let log_path = crate::target_dir().join("logs/soak-iperf-hosted.log");
    std::fs::create_dir_all(log_path.parent().expect("a folder")).map_err(|e| e.to_string())?;
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let child = setup
        .exec(&server)
        .args(["--tap", TAP, "--ip", &format!("{SERVER_IP}/24"), "--quiet"])
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| format!("cannot start iperf-hosted: {e}"))?;
    setup.children.push(child);
    // Many short connections: let the client reuse ports in TIME_WAIT (this namespace only).
    for setting in [
        "net.ipv4.ip_local_port_range=1024 65535",
        "net.ipv4.tcp_tw_reuse=1",
    ] {
        let _ = setup
            .exec(std::path::Path::new("sysctl"))
            .args(["-qw", setting])
            .status();
    }

    let clock = Instant::now();
    let mut r = CaseResult::new(Case::IperfFuzz, "control inputs");
    let mut client = setup
        .exec(&me)
        .args(["soak-iperf-client", "--addr"])
        .arg(format!("{SERVER_IP}:5201"))
        .args(["--seed", &SEED.to_string(), "--count", &count.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the fuzz client: {e}"))?;
    let stdout = client.stdout.take().expect("piped");
    setup.children.push(client);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Generous: a few ms per input, plus the hangs' waits.
    let limit = Duration::from_secs(300) + Duration::from_millis(count * 20);
    let mut server_died = None;
    let mut last = (0, 0, 0, 0);
    let mut finished = false;
    let mut refused_kinds: Vec<String> = Vec::new();
    let (mut slow, mut slow_examples) = (0u64, Vec::new());
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                if let Some(counts) = parse_counts(&line) {
                    last = counts;
                    slow = slow_count(&line).unwrap_or(slow);
                    if line.starts_with("done") {
                        finished = true;
                        break;
                    }
                    crate::step(&format!(
                        "[{}] iperf-fuzz: {}/{count} inputs, {} closed, {} hung, {} refused",
                        super::elapsed(clock),
                        counts.0,
                        counts.1,
                        counts.2,
                        counts.3
                    ));
                } else if let Some(input) = line.strip_prefix("hang ") {
                    r.notes.push(format!("input {input} hung"));
                } else if let Some(input) = line.strip_prefix("slow ") {
                    if slow_examples.len() < 3 {
                        slow_examples.push(format!("{input} ms"));
                    }
                } else if let Some(input) = line.strip_prefix("refused ") {
                    if refused_kinds.len() < 3 {
                        refused_kinds.push(input.to_string());
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Ok(Some(status)) = setup.children[0].try_wait() {
            server_died = Some(status);
            break;
        }
        if clock.elapsed() >= limit {
            r.notes.push(format!(
                "stopped after {} s (the case's time limit)",
                limit.as_secs()
            ));
            break;
        }
    }
    // A panic may end the server just as the client finishes.
    std::thread::sleep(Duration::from_millis(200));
    if server_died.is_none() {
        if let Ok(Some(status)) = setup.children[0].try_wait() {
            server_died = Some(status);
        }
    }
    let (tried, closed, hung, refused) = last;
    r.tried = tried;
    r.survived = closed;
    r.hung = hung;
    if refused > 0 {
        r.notes.push(format!(
            "{refused} connections refused (first: input {})",
            refused_kinds.join("; input ")
        ));
    }
    if slow > 0 {
        r.notes.push(format!(
            "{slow} connections took over {} s from connect to close (first: input {})",
            SLOW.as_secs(),
            slow_examples.join("; input ")
        ));
    }
    if !finished && server_died.is_none() {
        r.notes
            .push("the fuzz client did not finish (see the notes above)".into());
    }
    let mut after = CaseResult::new(Case::IperfFuzz, "normal test after");
    after.tried = 1;
    match server_died {
        Some(status) => {
            r.crashed = 1;
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let why = log
                .lines()
                .find(|l| l.contains("panicked"))
                .unwrap_or("no panic line");
            r.notes.push(format!(
                "iperf-hosted died ({status}) after about {tried} inputs: {why}"
            ));
            after.crashed = 1;
            after.notes.push("the server was dead".into());
        }
        None => {
            let started = Instant::now();
            let out = Command::new("timeout")
                .arg("60")
                .args(["ip", "netns", "exec", setup.net.name()])
                .args(["iperf3", "-c", SERVER_IP, "-t", "1", "-J"])
                .output()
                .map_err(|e| format!("cannot run iperf3: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            match super::flood::received_bytes(&text) {
                Some(bytes) if out.status.success() && bytes > 0 => {
                    after.survived = 1;
                    after.notes.push(format!("ok ({bytes} bytes)"));
                }
                _ => after.notes.push(format!(
                    "iperf3 failed ({}): {}",
                    out.status,
                    text.chars().take(200).collect::<String>()
                )),
            }
            after.duration_s = started.elapsed().as_secs_f64();
        }
    }
    r.duration_s = clock.elapsed().as_secs_f64() - after.duration_s;
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    r.notes
        .push(format!("input kinds, evenly mixed: {}", kinds.join(", ")));
    drop(setup);
    Ok(vec![r, after])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_lines_are_parsed() {
        assert_eq!(
            parse_counts("progress 100 closed=97 hung=1 refused=2"),
            Some((100, 97, 1, 2))
        );
        assert_eq!(
            parse_counts("done tried=1000 closed=1000 hung=0 refused=0"),
            Some((1000, 1000, 0, 0))
        );
        assert_eq!(parse_counts("hang 5 bad-params"), None);
        assert_eq!(
            slow_count("done tried=9 closed=9 hung=0 refused=0 slow=3"),
            Some(3)
        );
        assert_eq!(slow_count("progress 9 closed=9 hung=0 refused=0"), None);
        assert_eq!(parse_counts("progress x closed=1 hung=0 refused=0"), None);
    }

    #[test]
    fn a_server_that_closes_counts_as_closed_and_no_listener_as_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Reads to the client's FIN, then closes.
        let closer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
            sink.len()
        });
        assert_eq!(send_one(addr, b"hello"), Ended::Closed);
        assert_eq!(closer.join().unwrap(), 5);
        // Nobody listens any more.
        assert_eq!(send_one(addr, b"x"), Ended::Refused);
    }
}
