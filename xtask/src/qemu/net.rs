//! Networking for systems with a NIC: the QEMU devices and back ends that
//! `cargo xtask run --net user|tap` adds.
//!
//! The NIC model follows the system description: every `[[device]]` that selects a PCI id
//! QEMU can emulate as a NIC (`8086:10d3` e1000e, `1af4:1000`/`1af4:1041` virtio-net) gets
//! a `-device MODEL,netdev=nN` and a back end. With `user` networking (no privileges) the
//! back end forwards `127.0.0.1:PORT` on the host to `ADDRESS:PORT` in the guest, where
//! `PORT` and `ADDRESS` are the `port` and `address` args of the component driving that
//! device (so `iperf3 -c 127.0.0.1` reaches the iperf component).

use crate::Result;
use sysdesc::{DeviceSelector, System};

/// Which QEMU network back end a NIC gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// QEMU's user-mode networking (slirp) with host port forwarding; no privileges.
    User,
    /// A TAP device inside a private network namespace the tool creates and removes
    /// ([`TapNet`]); needs root.
    Tap,
}

impl Mode {
    /// Parses `user` or `tap`.
    pub fn parse(text: &str) -> Result<Mode> {
        match text {
            "user" => Ok(Mode::User),
            "tap" => Ok(Mode::Tap),
            other => Err(format!("unknown network `{other}` (user or tap)")),
        }
    }
}

/// The QEMU model of a PCI id, if it is a NIC QEMU emulates.
pub fn nic_model(vendor: u16, device: u16) -> Option<&'static str> {
    match (vendor, device) {
        (0x8086, 0x10d3) => Some("e1000e"),
        (0x1af4, 0x1000) => Some("virtio-net-pci"),
        (0x1af4, 0x1041) => Some("virtio-net-pci,disable-legacy=on"),
        _ => None,
    }
}

/// The guest address (without prefix) of the component driving `device`, and the ports
/// served there: its own `port` arg, and the `port` args of the components routed to a
/// service it provides (the applications of a shared network service), in description
/// order. A driver without an address (a `nic` component) leads to the stack routed to it.
fn forwards_of(system: &System, device: &str) -> Vec<(String, u16)> {
    match (system.components.iter()).find(|c| c.devices.iter().any(|d| d == device)) {
        Some(driver) => served_by(system, driver, 0),
        None => Vec::new(),
    }
}

/// The components routed to a service `c` provides.
fn clients_of<'a>(
    system: &'a System,
    c: &'a sysdesc::Component,
) -> impl Iterator<Item = &'a sysdesc::Component> {
    (system.components.iter()).filter(|other| other.routes.iter().any(|r| c.provides.contains(r)))
}

/// What `c` serves (see [`forwards_of`]); `depth` bounds the search through drivers.
fn served_by(system: &System, c: &sysdesc::Component, depth: usize) -> Vec<(String, u16)> {
    let Some(address) = c.args.get("address").and_then(|a| a.split('/').next()) else {
        if depth > 2 {
            return Vec::new();
        }
        return (clients_of(system, c))
            .flat_map(|stack| served_by(system, stack, depth + 1))
            .collect();
    };
    std::iter::once(c)
        .chain(clients_of(system, c))
        .filter_map(|c| c.args.get("port")?.parse().ok())
        .map(|port| (address.to_string(), port))
        .collect()
}

/// The host ports forwarded to the guest under `user` networking (for tests and messages).
pub fn forwarded_ports(system: &System) -> Vec<u16> {
    nics(system)
        .flat_map(|(name, _)| forwards_of(system, name).into_iter().map(|(_, p)| p))
        .collect()
}

/// The NICs among `system`'s devices: (device name, QEMU model).
fn nics(system: &System) -> impl Iterator<Item = (&str, &'static str)> {
    system.devices.iter().filter_map(|d| match d.selector {
        DeviceSelector::Pci { vendor, device, .. } => {
            nic_model(vendor, device).map(|m| (d.name.as_str(), m))
        }
        _ => None,
    })
}

/// QEMU arguments for the NICs `system` describes (none if it has none).
pub fn qemu_args(system: &System, mode: Mode) -> Result<Vec<String>> {
    let mut args = Vec::new();
    for (n, (name, model)) in nics(system).enumerate() {
        let id = format!("n{n}");
        let backend = match mode {
            Mode::User => {
                let mut b = format!("user,id={id}");
                for (address, port) in forwards_of(system, name) {
                    b.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-{address}:{port}"));
                }
                b
            }
            Mode::Tap => {
                require_root()?;
                format!("tap,id={id},ifname={},script=no,downscript=no", tap_name(n))
            }
        };
        args.extend([
            "-device".to_string(),
            format!("{model},netdev={id}"),
            "-netdev".to_string(),
            backend,
        ]);
    }
    Ok(args)
}

/// The name of the `n`th TAP device inside a [`TapNet`] namespace.
pub fn tap_name(n: usize) -> String {
    format!("tap{n}")
}

/// The namespace's own address on the first TAP device: the guest's gateway (10.0.2.2,
/// as under user networking); the only address the tool ever configures.
pub const TAP_HOST_ADDRESS: &str = "10.0.2.2/24";

/// Fails unless this process runs as root (effective uid 0), which `--net tap` needs.
pub fn require_root() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string));
    if euid.as_deref() == Some("0") {
        Ok(())
    } else {
        Err(
            "--net tap needs root (it creates a network namespace and a TAP device in it); \
             run as root or use --net user"
                .into(),
        )
    }
}

/// The TAP devices that the QEMU arguments `extra` ask for (`-netdev tap,...,ifname=X`).
pub fn taps_in(extra: &[String]) -> Vec<String> {
    extra
        .iter()
        .filter(|a| a.starts_with("tap,"))
        .filter_map(|a| {
            a.split(',')
                .find_map(|kv| kv.strip_prefix("ifname="))
                .map(str::to_string)
        })
        .collect()
}

/// A private network namespace holding TAP devices for QEMU; QEMU runs inside it
/// (`ip netns exec`), so the devices and their one address ([`TAP_HOST_ADDRESS`]) exist
/// only there. Dropping it deletes the devices and the namespace.
#[derive(Debug)]
pub struct TapNet {
    name: String,
    taps: Vec<String>,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TapNet {
    /// Creates namespace `tessera-PID-N` with the TAP devices `taps`, all up, the first
    /// with [`TAP_HOST_ADDRESS`]. Needs root.
    pub fn create(taps: &[String]) -> Result<TapNet> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        require_root()?;
        let name = format!(
            "tessera-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        // From here on, Drop removes whatever was made.
        let net = TapNet {
            name,
            taps: taps.to_vec(),
        };
        let ns = net.name.as_str();
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        for (i, tap) in taps.iter().enumerate() {
            ip(&["-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"])?;
            if i == 0 {
                ip(&["-n", ns, "addr", "add", TAP_HOST_ADDRESS, "dev", tap])?;
            }
            ip(&["-n", ns, "link", "set", tap, "up"])?;
        }
        Ok(net)
    }

    /// The namespace's name (for `ip netns exec NAME ...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }
}

impl Drop for TapNet {
    fn drop(&mut self) {
        for tap in &self.taps {
            let _ = ip(&["-n", &self.name, "link", "del", tap]);
        }
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A TCP port on 127.0.0.1 that is free now (for a user-networking forward).
pub fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free host port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_unikernel_gets_an_e1000e_with_the_iperf_port_forwarded() {
        let path = crate::workspace_root().join("systems/net-unikernel.toml");
        let system = sysdesc_toml::load(&path).expect("a valid description");
        let args = qemu_args(&system, Mode::User).unwrap();
        assert_eq!(
            args,
            [
                "-device",
                "e1000e,netdev=n0",
                "-netdev",
                "user,id=n0,hostfwd=tcp:127.0.0.1:5201-10.0.2.15:5201"
            ]
        );
        assert_eq!(forwarded_ports(&system), [5201]);
        let default = sysdesc_toml::load(crate::workspace_root().join("systems/default.toml"))
            .expect("a valid description");
        assert!(qemu_args(&default, Mode::User).unwrap().is_empty());
        assert!(Mode::parse("slirp").is_err());
        if require_root().is_ok() {
            let tap = qemu_args(&system, Mode::Tap).unwrap();
            assert_eq!(tap[3], "tap,id=n0,ifname=tap0,script=no,downscript=no");
            assert_eq!(taps_in(&tap), ["tap0"]);
        } else {
            assert!(qemu_args(&system, Mode::Tap).is_err());
        }
    }

    #[test]
    fn net_unikernel_virtio_gets_a_virtio_net_pci() {
        let path = crate::workspace_root().join("systems/net-unikernel-virtio.toml");
        let system = sysdesc_toml::load(&path).expect("a valid description");
        let args = qemu_args(&system, Mode::User).unwrap();
        assert_eq!(
            args,
            [
                "-device",
                "virtio-net-pci,netdev=n0",
                "-netdev",
                "user,id=n0,hostfwd=tcp:127.0.0.1:5201-10.0.2.15:5201"
            ]
        );
    }

    #[test]
    fn net_shared_forwards_every_application_port_to_the_stack_address() {
        let path = crate::workspace_root().join("systems/net-shared.toml");
        let system = sysdesc_toml::load(&path).expect("a valid description");
        let args = qemu_args(&system, Mode::User).unwrap();
        assert_eq!(
            args[3],
            "user,id=n0,hostfwd=tcp:127.0.0.1:5201-10.0.2.15:5201,\
             hostfwd=tcp:127.0.0.1:5202-10.0.2.15:5202"
        );
        assert_eq!(forwarded_ports(&system), [5201, 5202]);
    }

    #[test]
    fn net_shared_isolated_forwards_through_the_nic_component_to_the_stack() {
        let path = crate::workspace_root().join("systems/net-shared-isolated.toml");
        let system = sysdesc_toml::load(&path).expect("a valid description");
        assert_eq!(forwarded_ports(&system), [5201, 5202]);
        let args = qemu_args(&system, Mode::User).unwrap();
        assert_eq!(args[1], "e1000e,netdev=n0");
    }
}
