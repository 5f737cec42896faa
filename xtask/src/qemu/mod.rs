//! Booting a system under QEMU: every boot has a timeout, its serial output is
//! kept in a log file, and the system's own exit status comes back through
//! QEMU's `isa-debug-exit` device.

use crate::Result;

/// Disks for systems with a virtio-blk device (`--disk PATH`, `target/disk.img`).
pub mod disk;
/// NICs and network back ends for systems that describe a NIC (`--net user|tap`).
pub mod net;
/// Holding piped input until the guest's console is ready.
pub mod type_ahead;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// I/O port of the `isa-debug-exit` device; a write of `v` ends QEMU with status `(v << 1) | 1`.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// How QEMU executes guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation: works everywhere (the default; nested KVM hangs here).
    Tcg,
    /// Hardware virtualisation, where it works.
    Kvm,
}

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The kernel (32-bit ELF for the multiboot loader).
    pub kernel: PathBuf,
    /// The root task image: the first multiboot module.
    pub initrd: PathBuf,
    /// Execution engine.
    pub accel: Accel,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Extra QEMU arguments (devices, networking).
    pub extra: Vec<String>,
    /// Where the serial log goes.
    pub log: PathBuf,
    /// The whole boot is stopped after this long.
    pub timeout: Duration,
    /// A kernel command line (`-append`), for kernels that take one (the Linux guest).
    pub append: Option<String>,
}

impl Boot {
    /// A boot of `kernel` + `initrd` with the defaults: TCG, 512 MiB, 120 s.
    pub fn new(kernel: PathBuf, initrd: PathBuf, log: PathBuf) -> Boot {
        Boot {
            kernel,
            initrd,
            accel: Accel::Tcg,
            memory_mib: 512,
            extra: Vec::new(),
            log,
            timeout: Duration::from_secs(120),
            append: None,
        }
    }

    /// The QEMU command; inside `tap`'s namespace when the arguments ask for TAP devices.
    fn command(&self, interactive: bool, tap: Option<&net::TapNet>) -> Command {
        let mut cmd = match tap {
            Some(t) => t.command("qemu-system-x86_64"),
            None => Command::new("qemu-system-x86_64"),
        };
        cmd.args(["-machine", "pc", "-no-reboot"]);
        // Lets HPET timers deliver their interrupt as a message (FSB), the library OS's
        // deadline timer (systems/net-unikernel.toml).
        cmd.args(["-global", "hpet.msi=on"]);
        match self.accel {
            Accel::Tcg => cmd.args(["-accel", "tcg", "-cpu", "qemu64,+fsgsbase,+syscall,+lm"]),
            Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
        };
        cmd.args(["-m", &self.memory_mib.to_string()]);
        cmd.arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd);
        if let Some(line) = &self.append {
            cmd.arg("-append").arg(line);
        }
        cmd.args([
            "-device",
            &format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04"),
        ]);
        if interactive {
            cmd.args(["-nographic", "-serial", "mon:stdio"]);
        } else {
            cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
        }
        cmd.args(&self.extra);
        cmd
    }

    /// The private namespace for the TAP devices `extra` asks for, if any (needs root).
    fn tap_net(&self) -> Result<Option<net::TapNet>> {
        let taps = net::taps_in(&self.extra);
        if taps.is_empty() {
            return Ok(None);
        }
        net::TapNet::create(&taps).map(Some)
    }
}

/// How a boot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The system wrote this status to the debug-exit port.
    Exited(u32),
    /// QEMU ended on its own with this exit code (e.g. 0 after `quit`), or by a signal (`None`).
    Qemu(Option<i32>),
    /// The timeout ran out and QEMU was stopped.
    TimedOut,
}

impl Outcome {
    fn from_code(code: Option<i32>) -> Outcome {
        match code {
            Some(c) if c & 1 == 1 => Outcome::Exited((c >> 1) as u32),
            other => Outcome::Qemu(other),
        }
    }
}

#[derive(Default)]
struct Shared {
    text: String,
    closed: bool,
}

/// A running QEMU whose serial output is collected (and logged) as it arrives.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Arc<(Mutex<Shared>, Condvar)>,
    started: Instant,
    timeout: Duration,
    log: PathBuf,
    echo: bool,
    /// Dropped after QEMU is stopped (see `Drop`).
    tap: Option<net::TapNet>,
}

impl Session {
    /// Starts QEMU non-interactively: serial on a pipe, `echo` copies it to our stderr.
    pub fn start(boot: &Boot, echo: bool) -> Result<Session> {
        crate::host::ensure(crate::host::Purpose::Qemu)?;
        if let Some(parent) = boot.log.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let tap = boot.tap_net()?;
        let mut cmd = boot.command(false, tap.as_ref());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
        let output = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let mut log =
            std::fs::File::create(&boot.log).map_err(|e| format!("{}: {e}", boot.log.display()))?;
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let _ = log.write_all(&buf[..n]);
                let _ = log.flush();
                if echo {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                }
                let (lock, cv) = &*sink;
                lock.lock()
                    .unwrap()
                    .text
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
                cv.notify_all();
            }
            let (lock, cv) = &*sink;
            lock.lock().unwrap().closed = true;
            cv.notify_all();
        });
        let err_sink = output.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            if !text.trim().is_empty() {
                let (lock, cv) = &*err_sink;
                lock.lock()
                    .unwrap()
                    .text
                    .push_str(&format!("\n[qemu stderr] {text}"));
                cv.notify_all();
            }
        });
        Ok(Session {
            stdin: child.stdin.take(),
            child,
            output,
            started: Instant::now(),
            timeout: boot.timeout,
            log: boot.log.clone(),
            echo,
            tap,
        })
    }

    /// Everything the system printed so far.
    pub fn output(&self) -> String {
        self.output.0.lock().unwrap().text.clone()
    }

    /// Whether the system stopped (QEMU's output ended).
    pub fn stopped(&self) -> bool {
        self.output.0.lock().unwrap().closed
    }

    /// The serial log file.
    pub fn log_path(&self) -> &PathBuf {
        &self.log
    }

    /// Types `text` into the serial console.
    pub fn send(&mut self, text: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or("QEMU's input is closed")?;
        stdin
            .write_all(text.as_bytes())
            .and_then(|_| stdin.flush())
            .map_err(|e| e.to_string())
    }

    fn deadline(&self, wait: Duration) -> Instant {
        (Instant::now() + wait).min(self.started + self.timeout)
    }

    /// Waits until the output contains `needle` (searching from byte `from`), returning
    /// the offset just past it; fails when the system stops or time runs out first.
    pub fn wait_for_from(&self, needle: &str, from: usize, wait: Duration) -> Result<usize> {
        self.wait_until(needle, wait, |text| {
            let i = text.get(from..)?.find(needle)?;
            Some(from + i + needle.len())
        })
    }

    /// Waits until `needle` was [`printed`] after byte `from` (other components' output may
    /// have cut into it, up to [`INTERLEAVE_SLACK`] bytes); fails when the system stops or
    /// time runs out first.
    pub fn wait_printed_from(&self, needle: &str, from: usize, wait: Duration) -> Result<()> {
        self.wait_until(needle, wait, |text| {
            printed(text.get(from..).unwrap_or(""), needle, INTERLEAVE_SLACK).then_some(())
        })
    }

    /// Waits until `found` finds something in the output; the error names `needle`.
    fn wait_until<T>(
        &self,
        needle: &str,
        wait: Duration,
        found: impl Fn(&str) -> Option<T>,
    ) -> Result<T> {
        let deadline = self.deadline(wait);
        let (lock, cv) = &*self.output;
        let mut shared = lock.lock().unwrap();
        loop {
            if let Some(hit) = found(&shared.text) {
                return Ok(hit);
            }
            let now = Instant::now();
            if shared.closed || now >= deadline {
                let why = if shared.closed {
                    "the system stopped"
                } else {
                    "timed out"
                };
                return Err(format!(
                    "{why} before printing {needle:?} (serial log: {})",
                    self.log.display()
                ));
            }
            shared = cv.wait_timeout(shared, deadline - now).unwrap().0;
        }
    }

    /// Waits until the output contains `needle`; see [`Session::wait_for_from`].
    pub fn wait_for(&self, needle: &str, wait: Duration) -> Result<usize> {
        self.wait_for_from(needle, 0, wait)
    }

    /// Waits for QEMU to end (at most until the boot's timeout) and says how it ended.
    pub fn wait_exit(&mut self) -> Outcome {
        let deadline = self.started + self.timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader thread drain what is left.
                let (lock, cv) = &*self.output;
                let guard = lock.lock().unwrap();
                let _ = cv.wait_timeout_while(guard, Duration::from_secs(2), |s| !s.closed);
                return Outcome::from_code(status.code());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Outcome::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The network namespace holding this session's TAP devices (`--net tap`), if any.
    pub fn tap_net(&self) -> Option<&net::TapNet> {
        self.tap.as_ref()
    }

    /// The QEMU process's id (`ip netns exec` execs QEMU, so under `--net tap` too).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether this session copies the serial output to the terminal.
    pub fn echoes(&self) -> bool {
        self.echo
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What [`run_interactive`] does with input that is not a terminal (a pipe, a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipedInput {
    /// Held until Tessera's serial driver is ready, then passed on ([`run_fed`]).
    UntilConsoleReady,
    /// Passed to QEMU as it comes (a guest that is not Tessera: the Linux baseline).
    Direct,
}

/// Boots interactively on this terminal (serial and QEMU monitor on stdio, `Ctrl-A X`
/// quits), copying the serial output to the log; returns how it ended. Input that is not a
/// terminal goes as `piped` says.
pub fn run_interactive(boot: &Boot, piped: PipedInput) -> Result<Outcome> {
    if piped == PipedInput::UntilConsoleReady && !std::io::stdin().is_terminal() {
        return run_fed(boot, std::io::stdin(), std::io::stdout());
    }
    run_with(boot, Stdio::inherit(), std::io::stdout(), |_| ())
}

/// Boots like [`run_interactive`], with `input` as what is typed: it is held until the
/// guest's console driver says it is ready ([`type_ahead`]), then passed to QEMU in order.
/// The serial output goes to `output` and the log.
pub fn run_fed(
    boot: &Boot,
    mut input: impl Read + Send + 'static,
    output: impl Write + Send + 'static,
) -> Result<Outcome> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<ChildStdin>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<ChildStdin>();
    let feeder = std::thread::spawn(move || {
        // Nothing is read from `input` before the console is ready: it waits where it is.
        let Ok(mut stdin) = ready_rx.recv() else {
            return;
        };
        let _ = std::io::copy(&mut input, &mut stdin).and_then(|_| stdin.flush());
        // QEMU's input stays open (as a terminal's would) until QEMU ends.
        let _ = done_tx.send(stdin);
    });
    let mut watch = type_ahead::ConsoleReady::new();
    let mut qemu_stdin = None;
    let outcome = run_with(boot, Stdio::piped(), output, |event| match event {
        Event::Started(stdin) => qemu_stdin = stdin,
        Event::Output(bytes) => {
            if !watch.is_ready() && watch.output(bytes) {
                if let Some(stdin) = qemu_stdin.take() {
                    let _ = ready_tx.send(stdin);
                }
            }
        }
    });
    // A feeder still waiting for the console stops; one still reading `input` (a pipe whose
    // writer never ends it) is left behind rather than waited for.
    drop(ready_tx);
    drop(qemu_stdin);
    drop(done_rx);
    drop(feeder);
    outcome
}

/// What [`run_with`] tells its caller as QEMU runs.
enum Event<'a> {
    /// QEMU started; its input, if it was asked for a pipe.
    Started(Option<ChildStdin>),
    /// QEMU printed this (already copied to the output and the log).
    Output(&'a [u8]),
}

/// Runs QEMU in interactive mode with `stdin`, copying its output to `output` and the log
/// and telling `events` about it; returns how it ended.
fn run_with(
    boot: &Boot,
    stdin: Stdio,
    mut output: impl Write + Send + 'static,
    mut events: impl FnMut(Event),
) -> Result<Outcome> {
    crate::host::ensure(crate::host::Purpose::Qemu)?;
    if let Some(parent) = boot.log.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let tap = boot.tap_net()?;
    if let Some(t) = &tap {
        println!(
            "==> TAP devices in network namespace {0} (removed when QEMU ends); the guest's \
             peer there is {1}: e.g. `ip netns exec {0} iperf3 -c 10.0.2.15`",
            t.name(),
            net::TAP_HOST_ADDRESS
        );
    }
    let mut cmd = boot.command(true, tap.as_ref());
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
    events(Event::Started(child.stdin.take()));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut log =
        std::fs::File::create(&boot.log).map_err(|e| format!("{}: {e}", boot.log.display()))?;
    let (out_tx, out_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let copier = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            let _ = output.write_all(&buf[..n]);
            let _ = output.flush();
            let _ = log.write_all(&buf[..n]);
            let _ = out_tx.send(buf[..n].to_vec());
        }
    });
    let deadline = Instant::now() + boot.timeout;
    let outcome = loop {
        while let Ok(bytes) = out_rx.try_recv() {
            events(Event::Output(&bytes));
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Outcome::from_code(status.code());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break Outcome::TimedOut;
        }
        let _ = out_rx.recv_timeout(Duration::from_millis(50)).map(|bytes| {
            events(Event::Output(&bytes));
        });
    };
    let _ = copier.join();
    Ok(outcome)
}

/// How many characters of other output may cut into a line [`printed`] looks for.
pub const INTERLEAVE_SLACK: usize = 512;

/// Fault report lines in `output`, other than the root task's own demonstration fault
/// (`root.worker`, part of its foundation checks before it starts a system).
pub fn component_faults(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|l| l.contains("fault: component=") && !l.contains("component=root.worker"))
        .collect()
}

/// Whether `needle` was printed in `output`, allowing other components' output to cut into
/// it: they share the kernel's debug console, so a component of higher priority can print
/// its lines in the middle of another's line. `needle` may be split in up to
/// [`MAX_CUTS`] + 1 pieces, each gap between them ending with a line end (whole lines of
/// someone else's), `slack` bytes of gaps in all.
pub fn printed(output: &str, needle: &str, slack: usize) -> bool {
    if output.contains(needle) {
        return true;
    }
    let (hay, want) = (output.as_bytes(), needle.as_bytes());
    let Some(&first) = want.first() else {
        return true;
    };
    (0..hay.len())
        .filter(|&at| hay[at] == first)
        .any(|at| printed_from(hay, at, want, MAX_CUTS, slack))
}

/// How many times another component's lines may cut into a line [`printed`] looks for.
pub const MAX_CUTS: usize = 3;

/// Whether `want` starts at byte `at` of `hay`, cut at most `cuts` times by gaps that end
/// with a line end, `slack` bytes of gaps in all.
fn printed_from(hay: &[u8], at: usize, want: &[u8], cuts: usize, slack: usize) -> bool {
    let run = hay[at..]
        .iter()
        .zip(want)
        .take_while(|(h, w)| h == w)
        .count();
    if run == want.len() {
        return true;
    }
    if run == 0 || cuts == 0 {
        return false;
    }
    let from = at + run;
    let end = (from + slack).min(hay.len());
    (from..end)
        .filter(|&i| hay[i] == b'\n')
        .any(|nl| printed_from(hay, nl + 1, &want[run..], cuts - 1, slack - (nl + 1 - from)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_cut_into_by_another_still_counts_as_printed() {
        let out = "iperf: serving\niperf: listennet: front FrontCounters { attached: 2 }\n\
                   iperf: listening on port 5201\ning on port 5202\n";
        assert!(printed(
            out,
            "iperf: listening on port 5202",
            INTERLEAVE_SLACK
        ));
        assert!(printed(out, "iperf: listening on port 5201", 0));
        assert!(!printed(
            out,
            "iperf: listening on port 5203",
            INTERLEAVE_SLACK
        ));
        // Scattered characters far apart are not a line.
        let scattered = "i p e r f".to_string() + &"x".repeat(600) + ": listening on port 5202";
        assert!(!printed(&scattered, "iperf: listening on port 5202", 16));
        assert!(printed("anything", "", 0));
        // The kernel's own lines cut in too, twice here.
        let out = "tessera> kil<<seL4(CPU 0) [decode]: Source slot invalid or empty.>>\n\
                   proc: killed: component=blk (restart in 100 ms)\nl bl<<seL4 again>>\nk\n";
        assert!(printed(out, "kill blk\n", INTERLEAVE_SLACK));
        // A line that was never printed is not made of the letters of others: its pieces
        // must be whole runs, each gap whole lines.
        let out = "records: a: attached to fs over records-a-fs\nfs: ready (3 clients)\n\
                   blk: disk0 done\n";
        assert!(!printed(out, "records: a: done", INTERLEAVE_SLACK));
        let out = "records: a: attached\nrecords: a: done, 2 of 2 checks passed\n";
        assert!(printed(out, "records: a: done", INTERLEAVE_SLACK));
        // More cuts than MAX_CUTS are not one line.
        let out = "a\nx\nb\nx\nc\nx\nd\nx\ne";
        assert!(printed(out, "abcd", INTERLEAVE_SLACK));
        assert!(!printed(out, "abcde", INTERLEAVE_SLACK));
    }

    #[test]
    fn debug_exit_codes_map_to_the_system_status() {
        assert_eq!(Outcome::from_code(Some(1)), Outcome::Exited(0));
        assert_eq!(Outcome::from_code(Some(3)), Outcome::Exited(1));
        assert_eq!(Outcome::from_code(Some(5)), Outcome::Exited(2));
        assert_eq!(Outcome::from_code(Some(0)), Outcome::Qemu(Some(0)));
        assert_eq!(Outcome::from_code(Some(2)), Outcome::Qemu(Some(2)));
        assert_eq!(Outcome::from_code(None), Outcome::Qemu(None));
    }

    #[test]
    fn boot_command_uses_tcg_and_the_debug_exit_device() {
        let boot = Boot::new("k.elf".into(), "root".into(), "log".into());
        let cmd = boot.command(false, None);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("-accel tcg"), "{joined}");
        assert!(joined.contains("-kernel k.elf -initrd root"), "{joined}");
        assert!(joined.contains("isa-debug-exit,iobase=0xf4"), "{joined}");
        assert!(joined.contains("-serial stdio"), "{joined}");
        assert!(
            !joined.contains("mon:stdio"),
            "tests must not get the monitor: {joined}"
        );
    }
}
