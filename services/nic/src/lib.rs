//! The NIC driver component's decisions, host-tested: its arguments ([`Config`]) and who
//! may attach to it ([`admit`]).
//!
//! The component drives one NIC and moves its frames to and from one stack, over the
//! shared region its `region` argument names (`libos_core::net::frames`). The stack
//! attaches over IPC (`proto::net`'s `attach`, service `nic`) naming that region and the
//! nonce it wrote into the region's header; attaching again (the stack restarted) starts
//! the region afresh.

#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;

use libos_sel4::nic::NicKind;
use proto::net::Error;
use proto::Name;

/// What the system description's `args` say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The shared region the frames cross (`region`).
    pub region: Name,
    /// The driver (`nic`: `e1000e`, the default, or `virtio-net`).
    pub nic: NicKind,
    /// The e1000e's interrupt moderation (`itr`, 256 ns units, 0 for none); `None`: the
    /// driver's default.
    pub itr: Option<u16>,
}

/// Why the arguments were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `region` is missing.
    NoRegion,
    /// The named argument does not parse.
    Bad(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoRegion => write!(f, "no region argument (the frames' shared region)"),
            ConfigError::Bad(key) => write!(f, "argument {key} does not parse"),
        }
    }
}

impl Config {
    /// Reads the arguments through `arg` (a lookup by key, e.g. `StartInfo::arg`).
    pub fn parse<'a>(arg: impl Fn(&str) -> Option<&'a str>) -> Result<Config, ConfigError> {
        let region = arg("region").ok_or(ConfigError::NoRegion)?;
        let region = Name::new(region).map_err(|_| ConfigError::Bad("region"))?;
        let nic = match arg("nic") {
            None | Some("e1000e") => NicKind::E1000e,
            Some("virtio-net") => NicKind::VirtioNet,
            Some(_) => return Err(ConfigError::Bad("nic")),
        };
        let itr = arg("itr")
            .map(|v| v.parse().map_err(|_| ConfigError::Bad("itr")))
            .transpose()?;
        Ok(Config { region, nic, itr })
    }

    /// The e1000e driver's configuration: the defaults, with `itr` when given.
    pub fn e1000e_config(&self) -> e1000e::Config {
        let default = e1000e::Config::default();
        e1000e::Config {
            interrupt_throttle: self.itr.map_or(default.interrupt_throttle, u32::from),
            ..default
        }
    }
}

/// Whether a stack asking to attach over `asked` with `nonce` may: only over the
/// component's own region `ours`, whose header (`header_nonce`, `None` if it is not a
/// frame region's) holds that nonce. Anything else is `NotFound`, as for a region that
/// does not exist; a header that is not a frame region's is `BadRegion`.
pub fn admit(ours: Name, asked: Name, header_nonce: Option<u64>, nonce: u64) -> Result<(), Error> {
    if asked != ours {
        return Err(Error::NotFound);
    }
    match header_nonce {
        None => Err(Error::BadRegion),
        Some(n) if n == nonce => Ok(()),
        Some(_) => Err(Error::NotFound),
    }
}
