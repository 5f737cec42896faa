//! Host packages the build needs: found, installed (as root on Debian), or asked for.

use crate::Result;
use std::process::Command;
use std::sync::Once;

/// One host requirement: how to detect it and which Debian package provides it.
struct Need {
    what: &'static str,
    present: fn() -> bool,
    package: &'static str,
}

fn has_command(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(name).is_file()))
        .unwrap_or(false)
}

/// The Python interpreter the kernel's generators run with (needs `tempita` and `ply`).
pub fn kernel_python() -> Option<String> {
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import tempita, ply"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(candidate.to_string());
        }
    }
    None
}

const KERNEL_NEEDS: &[Need] = &[
    Need {
        what: "gcc",
        present: || has_command("gcc"),
        package: "gcc",
    },
    Need {
        what: "make",
        present: || has_command("make"),
        package: "make",
    },
    Need {
        what: "objcopy",
        present: || has_command("objcopy"),
        package: "binutils",
    },
    Need {
        what: "xmllint",
        present: || has_command("xmllint"),
        package: "libxml2-utils",
    },
    Need {
        what: "python3 with tempita",
        present: || kernel_python().is_some(),
        package: "python3-tempita",
    },
    Need {
        what: "python3 with ply",
        present: || kernel_python().is_some(),
        package: "python3-ply",
    },
];

const QEMU_NEEDS: &[Need] = &[Need {
    what: "qemu-system-x86_64",
    present: || has_command("qemu-system-x86_64"),
    package: "qemu-system-x86",
}];

const IPERF_NEEDS: &[Need] = &[
    Need {
        what: "iperf3",
        present: || has_command("iperf3"),
        package: "iperf3",
    },
    // The DHCP test's server (apps/iperf/tests/dhcp_tap.rs).
    Need {
        what: "dnsmasq",
        present: || has_command("dnsmasq"),
        package: "dnsmasq-base",
    },
];

/// dosfstools installs to /usr/sbin, which an ordinary user's PATH may lack.
const FAT_NEEDS: &[Need] = &[
    Need {
        what: "mkfs.fat and fsck.fat",
        present: || has_command("fsck.fat") || std::path::Path::new("/usr/sbin/fsck.fat").is_file(),
        package: "dosfstools",
    },
    Need {
        what: "mcopy, mdir, mtype, mmd",
        present: || has_command("mcopy"),
        package: "mtools",
    },
];

/// The `libos-linux` tests load Debian's iperf3 (with its libraries) and busybox-static,
/// and compare the syscall sites they find with `objdump -d`.
const LINUX_NEEDS: &[Need] = &[
    Need {
        what: "iperf3",
        present: || has_command("iperf3"),
        package: "iperf3",
    },
    Need {
        what: "/bin/busybox (busybox-static)",
        present: || std::path::Path::new("/bin/busybox").is_file(),
        package: "busybox-static",
    },
    Need {
        what: "objdump",
        present: || has_command("objdump"),
        package: "binutils",
    },
];

/// The Python interpreter the benchmark plots run with (Debian's, where apt installs
/// matplotlib).
pub const PLOT_PYTHON: &str = "/usr/bin/python3";

const PLOT_NEEDS: &[Need] = &[Need {
    what: "python3 with matplotlib",
    present: || {
        Command::new(PLOT_PYTHON)
            .args(["-c", "import matplotlib"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    },
    package: "python3-matplotlib",
}];

/// The Python interpreter that checks the key store's signatures (Debian's, where apt
/// installs PyNaCl).
pub const NACL_PYTHON: &str = "/usr/bin/python3";

const NACL_NEEDS: &[Need] = &[Need {
    what: "python3 with nacl",
    present: || {
        Command::new(NACL_PYTHON)
            .args(["-c", "import nacl.signing"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    },
    package: "python3-nacl",
}];

/// What a step needs from the host.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// Building the seL4 kernel.
    Kernel,
    /// Booting the system.
    Qemu,
    /// Driving the network tests and benchmarks.
    Iperf,
    /// Drawing the benchmark charts.
    Plot,
    /// Checking Ed25519 signatures off the machine with a stock library (PyNaCl).
    Nacl,
    /// Making and checking FAT images (the `fat` crate's tests).
    Fat,
    /// Debian's own Linux binaries and a disassembler to check against (the
    /// `libos-linux` crate's tests).
    Linux,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

static APT_UPDATE: Once = Once::new();

/// Makes sure the host has what `purpose` needs: installs missing Debian packages when
/// running as root on Debian, otherwise fails with the exact command to run.
pub fn ensure(purpose: Purpose) -> Result<()> {
    let needs = match purpose {
        Purpose::Kernel => KERNEL_NEEDS,
        Purpose::Qemu => QEMU_NEEDS,
        Purpose::Iperf => IPERF_NEEDS,
        Purpose::Plot => PLOT_NEEDS,
        Purpose::Nacl => NACL_NEEDS,
        Purpose::Fat => FAT_NEEDS,
        Purpose::Linux => LINUX_NEEDS,
    };
    let mut missing: Vec<&str> = needs
        .iter()
        .filter(|n| !(n.present)())
        .map(|n| n.package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!("apt-get install -y {}", missing.join(" "));
    let debian = std::path::Path::new("/etc/debian_version").exists();
    if !(debian && is_root()) {
        let what: Vec<&str> = needs
            .iter()
            .filter(|n| !(n.present)())
            .map(|n| n.what)
            .collect();
        return Err(format!(
            "missing host tools: {}. Install them with:\n    sudo apt-get update && sudo {command}",
            what.join(", ")
        ));
    }
    crate::step(&format!("installing host packages: {}", missing.join(" ")));
    APT_UPDATE.call_once(|| {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    });
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !status.success() {
        return Err(format!("`{command}` failed ({status})"));
    }
    let still: Vec<&str> = needs
        .iter()
        .filter(|n| !(n.present)())
        .map(|n| n.what)
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "still missing after `{command}`: {}",
            still.join(", ")
        ))
    }
}
