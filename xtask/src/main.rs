//! `cargo xtask`: the one front end for building, running and testing Tessera.

use clap::{Args, Parser, Subcommand};
use kernel_support::Variant;
use std::process::ExitCode;
use std::time::Duration;
use xtask::qemu::{self, Accel, Boot, Outcome};
use xtask::{build, step, target_dir, Result};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, run and test Tessera (seL4 + Rust components)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the kernel and the boot image.
    Build(KernelArgs),
    /// Build everything and boot it in QEMU on this terminal (Ctrl-A X quits QEMU).
    Run(RunArgs),
    /// Run every test: host unit tests, then whole-system tests under QEMU.
    Test(TestArgs),
    /// Check formatting and run clippy on the whole workspace with warnings as errors.
    Lint,
    /// Count seL4-specific against portable lines of code (the paper's Table 1).
    Loc,
    /// The Linux baseline guest (Debian's kernel, busybox and iperf3 in an initramfs).
    #[command(subcommand)]
    Linux(LinuxCmd),
    /// Measure Tessera against the Linux guest; every benchmark without a subcommand
    /// (results in target/bench/).
    Bench(BenchArgs),
    /// Measure how much abuse Tessera survives (not part of `test`): malformed IPC, kills,
    /// spawn/exit, iperf3 control fuzzing, a connection flood (target/soak/soak.json).
    Soak(SoakArgs),
    /// The `iperf-fuzz` case's client, run by `soak` inside its network namespace.
    #[command(hide = true)]
    SoakIperfClient(SoakClientArgs),
}

#[derive(Args)]
struct SoakArgs {
    /// Only these cases: ipc, kill, spawn, iperf-fuzz, flood (all without any).
    cases: Vec<String>,
    /// A few minutes: every count divided by 100 (each keeps a small minimum).
    #[arg(long)]
    quick: bool,
}

#[derive(Args)]
struct SoakClientArgs {
    /// The server's address and port.
    #[arg(long)]
    addr: std::net::SocketAddr,
    /// The input generator's seed.
    #[arg(long)]
    seed: u64,
    /// How many inputs to send.
    #[arg(long)]
    count: u64,
}

#[derive(Args)]
struct BenchArgs {
    #[command(subcommand)]
    what: Option<BenchWhat>,
    /// A few minutes: fewer systems, loads and repetitions, shorter runs.
    #[arg(long, global = true, conflicts_with = "full")]
    quick: bool,
    /// The paper's method: 20 s runs with the first 10 s ignored, 5 repetitions.
    #[arg(long, global = true)]
    full: bool,
}

impl BenchArgs {
    fn profile(&self) -> xtask::bench::Profile {
        use xtask::bench::Profile;
        match (self.quick, self.full) {
            (true, _) => Profile::Quick,
            (_, true) => Profile::Full,
            _ => Profile::Default,
        }
    }
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Guest CPU utilisation against TCP throughput, Tessera and Linux (Figure 4):
    /// target/bench/net.json and net.png.
    Net(BenchNetArgs),
    /// The kernel's share of the CPU by entry kind per interrupt delivery method
    /// (Figure 5): target/bench/kernel.json and kernel.png.
    Kernel,
    /// IPC round trips, notification and interrupt-to-driver latencies in cycles:
    /// target/bench/micro.json.
    Micro,
    /// Sequential write and read through the file service and raw through the block
    /// driver, 4 KiB and 64 KiB requests (Tessera only; not part of `bench`).
    Files,
}

#[derive(Args)]
struct BenchNetArgs {
    /// Measure only these systems (comma-separated, e.g. tessera-e1000e-msi,linux-e1000e).
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    /// Measure one NIC's systems only: e1000e or virtio-net (Tessera's and the Linux
    /// guest's on that NIC; with --quick those with message or IOAPIC interrupts).
    #[arg(long, conflicts_with = "systems")]
    nic: Option<String>,
    /// Only redraw target/bench/net.png and print the table from target/bench/net.json.
    #[arg(long)]
    plot: bool,
}

#[derive(Subcommand)]
enum LinuxCmd {
    /// Download the Debian packages (once) and assemble the kernel and initramfs.
    Build,
    /// Build the guest and boot it on this terminal (Ctrl-A X quits QEMU).
    Run(LinuxRunArgs),
}

#[derive(Args)]
struct LinuxRunArgs {
    /// The NIC QEMU gives the guest: e1000e or virtio-net.
    #[arg(long, default_value = "e1000e")]
    nic: String,
    /// Network back end: user (host 127.0.0.1:5201 forwarded to the guest's iperf3) or
    /// tap (a TAP device in a private network namespace; needs root).
    #[arg(long, default_value = "user")]
    net: String,
    /// Under user networking: the host port forwarded to the guest's iperf3 port 5201.
    #[arg(long, default_value_t = 5201)]
    port: u16,
    /// Period of the guest's `STAT up_us=.. idle_us=..` lines in ms (0: none).
    #[arg(long, default_value_t = 500)]
    stat_ms: u32,
    /// Stop QEMU after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Args, Clone)]
struct KernelArgs {
    /// The system description (systems/*.toml) to build into the boot image.
    #[arg(
        long,
        default_value = "systems/default.toml",
        conflicts_with = "foundation"
    )]
    system: std::path::PathBuf,
    /// Boot the root task alone (its foundation checks), without a system.
    #[arg(long)]
    foundation: bool,
    /// Interrupt controller the kernel drives: ioapic or pic.
    #[arg(long)]
    irq: Option<String>,
    /// Kernel benchmark support: none, entries (kernel-entry tracking) or utilisation.
    #[arg(long)]
    bench: Option<String>,
    /// Interrupt delivery of the system's NIC (the device whose PCI id is a NIC): msi,
    /// msix, ioapic or pic (pic also picks the irq=pic kernel). Builds a derived description under target/systems/.
    #[arg(long, conflicts_with = "foundation")]
    nic_irq: Option<String>,
    /// The disk image a system with a virtio-blk device gets (raw; default
    /// target/disk.img, made and formatted FAT32 on first use).
    #[arg(long, conflicts_with = "foundation")]
    disk: Option<std::path::PathBuf>,
}

impl KernelArgs {
    /// The system to build (a relative path that does not exist here is taken from the
    /// workspace root); `None` with `--foundation`.
    fn system(&self) -> Result<Option<std::path::PathBuf>> {
        if self.foundation {
            return Ok(None);
        }
        let path = if self.system.exists() {
            self.system.clone()
        } else {
            xtask::workspace_root().join(&self.system)
        };
        match &self.nic_irq {
            None => Ok(Some(path)),
            Some(irq) => derive_nic_irq(&path, irq).map(Some),
        }
    }

    fn variant(&self) -> Variant {
        let mut v = Variant::default();
        if let Some(irq) = &self.irq {
            v = v.with("irq", irq);
        } else if self.nic_irq.as_deref() == Some("pic") {
            v = v.with("irq", "pic");
        }
        if let Some(bench) = &self.bench {
            v = v.with("bench", bench);
        }
        v
    }
}

/// `path` with its NIC delivered by `irq`, written to `target/systems/NAME-IRQ.toml`.
fn derive_nic_irq(path: &std::path::Path, irq: &str) -> Result<std::path::PathBuf> {
    if !matches!(irq, "msi" | "msix" | "ioapic" | "pic") {
        return Err(format!(
            "unknown --nic-irq `{irq}` (msi, msix, ioapic or pic)"
        ));
    }
    let system = build::load_system(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = format!("{}-{irq}", system.name);
    let file = path.display().to_string();
    let derived = xtask::derive::derive_system(&text, &file, &name, irq, &[])
        .map_err(|e| format!("--nic-irq needs a description with one NIC: {e}"))?;
    let dir = target_dir().join("systems");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = dir.join(format!("{name}.toml"));
    std::fs::write(&out, derived).map_err(|e| format!("{}: {e}", out.display()))?;
    step(&format!("NIC delivered by {irq}: {}", out.display()));
    Ok(out)
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    kernel: KernelArgs,
    /// QEMU accelerator: tcg (default) or kvm.
    #[arg(long, default_value = "tcg")]
    accel: String,
    /// Stop QEMU after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Network back end for the system's NICs: user (default; host port forwarding, no
    /// privileges) or tap.
    #[arg(long, default_value = "user")]
    net: String,
}

#[derive(Args)]
struct TestArgs {
    /// Only run the host unit tests (no QEMU).
    #[arg(long)]
    host_only: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Build(k) => k
            .system()
            .and_then(|system| {
                let image = build::image(&k.variant(), system.as_deref())?;
                if let Some(path) = &system {
                    let args =
                        qemu::disk::system_args(&build::load_system(path)?, k.disk.as_deref())?;
                    if let Some(drive) = args.get(1) {
                        println!("disk:   {drive}");
                    }
                }
                Ok(image)
            })
            .map(|image| {
                println!("kernel: {}", image.kernel.elf32.display());
                println!("root:   {}", image.root.display());
            }),
        Cmd::Run(r) => run(r),
        Cmd::Test(t) => xtask::test::run(t.host_only),
        Cmd::Lint => xtask::test::lint(),
        Cmd::Loc => xtask::loc::run(),
        Cmd::Linux(LinuxCmd::Build) => xtask::linux::build().map(|_| ()),
        Cmd::Linux(LinuxCmd::Run(r)) => linux_run(r),
        Cmd::Bench(b) => bench(b),
        Cmd::Soak(s) => soak(s),
        Cmd::SoakIperfClient(c) => xtask::soak::iperf_fuzz::client(c.addr, c.seed, c.count),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> Result<()> {
    let accel = match args.accel.as_str() {
        "tcg" => Accel::Tcg,
        "kvm" => Accel::Kvm,
        other => return Err(format!("unknown accelerator `{other}` (tcg or kvm)")),
    };
    let system_path = args.kernel.system()?;
    let image = build::image(&args.kernel.variant(), system_path.as_deref())?;
    let log = target_dir().join("logs/run.log");
    let mut boot = Boot::new(image.kernel.elf32.clone(), image.root.clone(), log.clone());
    boot.accel = accel;
    boot.timeout = Duration::from_secs(args.timeout);
    if let Some(path) = &system_path {
        let system = build::load_system(path)?;
        boot.extra = qemu::net::qemu_args(&system, qemu::net::Mode::parse(&args.net)?)?;
        boot.extra.extend(qemu::disk::system_args(
            &system,
            args.kernel.disk.as_deref(),
        )?);
        let user = args.net == "user";
        for port in qemu::net::forwarded_ports(&system)
            .into_iter()
            .filter(|_| user)
        {
            step(&format!("host 127.0.0.1:{port} is forwarded to the guest"));
        }
    }
    step("booting in QEMU (Ctrl-A X quits; serial log in target/logs/run.log)");
    let outcome = qemu::run_interactive(&boot, qemu::PipedInput::UntilConsoleReady)?;
    restore_terminal();
    match outcome {
        Outcome::Exited(0) => {
            step("the system halted with status 0");
            Ok(())
        }
        Outcome::Exited(s) => Err(format!(
            "the system halted with status {s} (log: {})",
            log.display()
        )),
        Outcome::Qemu(Some(0)) => Ok(()),
        Outcome::Qemu(code) => Err(format!("QEMU ended with {code:?} (log: {})", log.display())),
        Outcome::TimedOut => Err(format!("stopped QEMU after {} s (--timeout)", args.timeout)),
    }
}

fn bench(args: BenchArgs) -> Result<()> {
    let profile = args.profile();
    match args.what {
        None => xtask::bench::all(profile),
        Some(BenchWhat::Net(n)) if n.plot => xtask::bench::net::replot(),
        Some(BenchWhat::Net(n)) => xtask::bench::net::run(profile, &n.systems, n.nic.as_deref()),
        Some(BenchWhat::Micro) => xtask::bench::micro::run(),
        Some(BenchWhat::Files) => xtask::bench::files::run(),
        Some(BenchWhat::Kernel) => {
            xtask::bench::kernel::run(&xtask::bench::kernel::Options::for_profile(profile))
                .map(|_| ())
        }
    }
}

fn soak(args: SoakArgs) -> Result<()> {
    use xtask::soak::{Case, Profile};
    let cases = args
        .cases
        .iter()
        .map(|c| Case::parse(c))
        .collect::<Result<Vec<Case>>>()?;
    let profile = if args.quick {
        Profile::Quick
    } else {
        Profile::Default
    };
    xtask::soak::run(profile, &cases)
}

fn linux_run(args: LinuxRunArgs) -> Result<()> {
    let options = xtask::linux::RunOptions {
        nic: xtask::linux::Nic::parse(&args.nic)?,
        mode: qemu::net::Mode::parse(&args.net)?,
        host_port: args.port,
        stat_ms: args.stat_ms,
        timeout: Duration::from_secs(args.timeout),
    };
    let result = xtask::linux::run(&options);
    restore_terminal();
    result
}

/// QEMU leaves a terminal in raw mode when it is killed: put it back.
fn restore_terminal() {
    let _ = std::process::Command::new("stty")
        .arg("sane")
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::Parser;

    /// The `cargo xtask` commands shown in the fenced code blocks of `text`.
    fn shown_commands(text: &str) -> Vec<String> {
        let mut fenced = false;
        let mut out = Vec::new();
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if let Some(at) = line.find("cargo xtask ").filter(|_| fenced) {
                let command = line[at..].split('#').next().unwrap_or("").trim();
                out.push(command.to_string());
            }
        }
        out
    }

    #[test]
    fn every_command_the_readme_and_docs_show_parses() {
        let root = xtask::workspace_root();
        let mut files = vec![root.join("README.md")];
        for entry in std::fs::read_dir(root.join("docs")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "md") {
                files.push(path);
            }
        }
        let mut checked = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            for command in shown_commands(&text) {
                let words = command.split_whitespace().skip(1); // "cargo"; "xtask" is argv[0]
                if let Err(e) = Cli::try_parse_from(words) {
                    panic!("{}: `{command}` does not parse:\n{e}", file.display());
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 5,
            "only {checked} commands found: is the scan broken?"
        );
    }

    #[test]
    fn a_command_with_an_unknown_option_is_caught() {
        let shown = shown_commands("```\ncargo xtask run --sytem x.toml   # typo\n```\n");
        assert_eq!(shown, ["cargo xtask run --sytem x.toml"]);
        let words = shown[0].split_whitespace().skip(1);
        assert!(Cli::try_parse_from(words).is_err());
    }
}

#[cfg(test)]
mod readme {
    #[test]
    fn the_readme_lists_every_system_test_file() {
        let root = xtask::workspace_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        for entry in std::fs::read_dir(root.join("system-tests/tests")).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".rs") {
                assert!(
                    readme.contains(&format!("`{name}`")),
                    "README.md's table of system tests does not name system-tests/tests/{name}"
                );
            }
        }
    }
}

#[cfg(test)]
mod layout {
    #[test]
    fn the_readme_names_every_workspace_crate() {
        let root = xtask::workspace_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let edges = xtask::lints::member_imports().unwrap();
        let mut folders: Vec<&String> = edges.iter().flat_map(|(a, b)| [a, b]).collect();
        folders.sort();
        folders.dedup();
        assert!(folders.len() > 20, "{folders:?}");
        for folder in folders {
            let manifest = std::fs::read_to_string(root.join(folder).join("Cargo.toml")).unwrap();
            let name = manifest
                .lines()
                .find_map(|l| l.strip_prefix("name = \""))
                .and_then(|l| l.strip_suffix('"'))
                .unwrap();
            assert!(
                readme.contains(&format!("`{name}`")) || readme.contains(&format!("`{folder}/`")),
                "README.md's layout does not name the crate {name} ({folder})"
            );
        }
    }
}
