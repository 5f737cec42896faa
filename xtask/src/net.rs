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
    /// A TAP device (needs privileges; not implemented yet).
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

/// The guest address (without prefix) and port the component driving `device` serves on.
fn forward_of(system: &System, device: &str) -> Option<(String, u16)> {
    let c = system
        .components
        .iter()
        .find(|c| c.devices.iter().any(|d| d == device))?;
    let address = c.args.get("address")?.split('/').next()?.to_string();
    let port = c.args.get("port")?.parse().ok()?;
    Some((address, port))
}

/// The host ports forwarded to the guest under `user` networking (for tests and messages).
pub fn forwarded_ports(system: &System) -> Vec<u16> {
    nics(system)
        .filter_map(|(name, _)| forward_of(system, name).map(|(_, p)| p))
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
                if let Some((address, port)) = forward_of(system, name) {
                    b.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-{address}:{port}"));
                }
                b
            }
            Mode::Tap => {
                return Err(
                    "--net tap is not implemented yet (use --net user, see docs/NETWORK.md)".into(),
                )
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
    }
}
