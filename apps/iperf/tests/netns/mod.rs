//! Helpers for the tests that run `iperf-hosted` on a TAP device inside a private network
//! namespace: finding the tools, the namespace (removed on drop) and the stock client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The path of the installed tool `name`, if any.
pub fn tool(name: &str) -> Option<String> {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|path| Path::new(path).exists())
}

/// Whether the test runs as root (needed for namespaces and TAP devices).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A private network namespace and what the test started in it; dropping kills the
/// children, deletes the namespace (a TAP device goes with the process that made it)
/// and removes `files`.
pub struct Namespace {
    /// The `ip` tool.
    pub ip: String,
    /// The namespace's name.
    pub name: String,
    /// Processes to kill on drop.
    pub children: Vec<Child>,
    /// Files to remove on drop.
    pub files: Vec<PathBuf>,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new(&self.ip)
            .args(["netns", "del", &self.name])
            .status();
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Namespace {
    /// Creates the namespace `name` with the `ip` tool at `ip`.
    pub fn new(ip: &str, name: String) -> Namespace {
        let namespace = Namespace {
            ip: ip.to_string(),
            name,
            children: Vec::new(),
            files: Vec::new(),
        };
        assert!(
            Command::new(ip)
                .args(["netns", "add", &namespace.name])
                .status()
                .unwrap()
                .success(),
            "ip netns add"
        );
        namespace
    }

    /// Runs `ip -n NAME args`; whether it succeeded.
    pub fn ip_ns(&self, args: &[&str]) -> bool {
        Command::new(&self.ip)
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A command running `program` in the namespace.
    pub fn exec(&self, program: &str) -> Command {
        let mut command = Command::new(&self.ip);
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Waits (10 s at most) for the server to make the TAP device `tap`, then gives it
    /// the host side's `host_cidr` and brings it and loopback up.
    pub fn host_side(&self, tap: &str, host_cidr: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.ip_ns(&["link", "show", tap]) {
            assert!(Instant::now() < deadline, "TAP device never appeared");
            sleep(Duration::from_millis(20));
        }
        assert!(self.ip_ns(&["addr", "add", host_cidr, "dev", tap]));
        assert!(self.ip_ns(&["link", "set", tap, "up"]));
        assert!(self.ip_ns(&["link", "set", "lo", "up"]));
    }

    /// Runs the stock client `iperf3 -c server -J args` in the namespace (30 s at most);
    /// returns its output and JSON.
    pub fn client(&self, iperf3: &str, server: &str, args: &[&str]) -> (Output, Value) {
        let output = Command::new("timeout")
            .args(["30", &self.ip, "netns", "exec", &self.name, iperf3])
            .args(["-c", server, "-J"])
            .args(args)
            .output()
            .expect("run iperf3");
        let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "iperf3 {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        (output, json)
    }

    /// Waits (10 s at most) for the server, `children[0]`, to stop by itself after its
    /// tests, and checks it succeeded.
    pub fn server_stops(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let server = &mut self.children[0];
        loop {
            if let Some(status) = server.try_wait().unwrap() {
                assert!(status.success(), "iperf-hosted exited with {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "iperf-hosted did not stop after its tests"
            );
            sleep(Duration::from_millis(50));
        }
    }
}
