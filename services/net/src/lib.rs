//! The network service's decisions, host-tested: its arguments ([`Config`]: the stack's,
//! the clients it serves and their ports, the per-client limits, the tick) and its front
//! door ([`Front`], the `proto::net` server: who may attach over which region).
//!
//! Invariants:
//! - a client attaches only over a region listed in the `clients` argument, and only by
//!   naming the nonce its header holds (which only the region's members can write); any
//!   other request gets `NotFound`, the same as a region that does not exist;
//! - each region is one client: attaching again over it (the client restarted) resets that
//!   client's sockets and serves it over a fresh link, and nobody else's;
//! - a client listens only on the ports its entry in `clients` gives it.

#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::ops::RangeInclusive;

use libos_core::{ClientLimits, Link};
use libos_sel4::stack::{ArgError, StackArgs};
use proto::net::{Error, Server};
use proto::{CapSlot, Name};

/// The default period of the tick `net` sends its clients, in milliseconds.
pub const DEFAULT_TICK_MS: u64 = 10;

/// One client the description lets `net` serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSpec {
    /// The shared region the client attaches over.
    pub region: Name,
    /// The ports it may listen on.
    pub ports: RangeInclusive<u16>,
}

/// What the system description's `args` say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The stack: address, gateway, NIC driver, timer.
    pub stack: StackArgs,
    /// The clients (`clients = "REGION:PORT[-PORT], ..."`).
    pub clients: Vec<ClientSpec>,
    /// The limits every client gets (`max_sockets`, `max_listeners`, `rx_buffers`), with
    /// the ports of its own entry.
    pub limits: ClientLimits,
    /// How often clients are ticked, in milliseconds (`tick_ms`, default
    /// [`DEFAULT_TICK_MS`], 1..=1000): the lateness of their deadlines.
    pub tick_ms: u64,
}

/// Why the arguments were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The stack's arguments.
    Stack(ArgError),
    /// The named argument does not parse.
    Bad(&'static str),
    /// `clients` names no client, or one region twice.
    Clients,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Stack(e) => write!(f, "{e}"),
            ConfigError::Bad(key) => write!(f, "argument {key} does not parse"),
            ConfigError::Clients => write!(
                f,
                "argument clients must list REGION:PORT[-PORT] entries, each region once"
            ),
        }
    }
}

/// Parses `PORT` or `FIRST-LAST`.
fn parse_ports(text: &str) -> Option<RangeInclusive<u16>> {
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let (first, last): (u16, u16) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (first >= 1 && first <= last).then_some(first..=last)
}

/// Parses the `clients` list.
fn parse_clients(text: &str) -> Option<Vec<ClientSpec>> {
    let mut clients: Vec<ClientSpec> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (region, ports) = entry.split_once(':')?;
        let region = Name::new(region.trim()).ok()?;
        if clients.iter().any(|c| c.region == region) {
            return None;
        }
        clients.push(ClientSpec {
            region,
            ports: parse_ports(ports)?,
        });
    }
    (!clients.is_empty()).then_some(clients)
}

impl Config {
    /// Reads the arguments through `arg` (a lookup by key, e.g. `StartInfo::arg`).
    pub fn parse<'a>(arg: impl Fn(&str) -> Option<&'a str>) -> Result<Config, ConfigError> {
        let stack = StackArgs::parse(&arg).map_err(ConfigError::Stack)?;
        let clients = parse_clients(arg("clients").unwrap_or("")).ok_or(ConfigError::Clients)?;
        let number =
            |key: &'static str, default: usize, range: RangeInclusive<usize>| match arg(key) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or(ConfigError::Bad(key)),
            };
        let default = ClientLimits::default();
        let limits = ClientLimits {
            max_sockets: number("max_sockets", default.max_sockets, 1..=1024)?,
            max_listeners: number("max_listeners", default.max_listeners, 1..=64)?,
            rx_buffers_per_socket: number("rx_buffers", default.rx_buffers_per_socket, 1..=256)?,
            ..default
        };
        let tick_ms = number("tick_ms", DEFAULT_TICK_MS as usize, 1..=1000)? as u64;
        Ok(Config {
            stack,
            clients,
            limits,
            tick_ms,
        })
    }

    /// The limits of client `index`: the common ones with its own ports.
    pub fn limits_of(&self, index: usize) -> ClientLimits {
        ClientLimits {
            ports: self.clients[index].ports.clone(),
            ..self.limits.clone()
        }
    }
}

/// What the front door needs from the component: the regions' headers, the links over
/// them, the clients' notifications and the socket server (seL4 in the component, fakes in
/// the tests).
pub trait Platform {
    /// How the socket server names a client (`libos_core::ClientId` in the component).
    type Client: Copy;
    /// The nonce in client `index`'s region header, or `None` if the header is not one
    /// the link's layout understands.
    fn header_nonce(&self, index: usize) -> Option<u64>;
    /// Keeps the notification the client sent (`wake`, in the receive slot) as client
    /// `index`'s, replacing the one it had; `false` if it cannot be kept.
    fn keep_wake(&mut self, index: usize, wake: CapSlot) -> bool;
    /// The server's side of a link over client `index`'s region, signalling its kept
    /// notification; `None` if the region is too small for the layout.
    fn link(&mut self, index: usize) -> Option<Box<dyn Link>>;
    /// Serves a new client over `link`.
    fn attach(&mut self, link: Box<dyn Link>, limits: ClientLimits) -> Self::Client;
    /// Serves `client` afresh over `link` (its old sockets reset).
    fn reattach(&mut self, client: Self::Client, link: Box<dyn Link>);
    /// The notification clients signal, badged for client `index`, ready to go with the
    /// reply.
    fn signal_cap(&mut self, index: usize) -> Option<CapSlot>;
}

/// Counters of the front door.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrontCounters {
    /// Attachments served (first and again).
    pub attached: u64,
    /// Attachments that replaced an earlier one over the same region.
    pub reattached: u64,
    /// Requests refused (`NotFound`, `BadRegion`, `Full`, `Malformed`).
    pub refused: u64,
}

/// The `proto::net` server: attaches clients over their regions.
pub struct Front<P: Platform> {
    platform: P,
    config: Config,
    clients: Vec<Option<P::Client>>,
    counters: FrontCounters,
}

impl<P: Platform> Front<P> {
    /// A front door for the clients of `config`, none attached yet.
    pub fn new(platform: P, config: Config) -> Front<P> {
        let clients = config.clients.iter().map(|_| None).collect();
        Front {
            platform,
            config,
            clients,
            counters: FrontCounters::default(),
        }
    }

    /// The platform, for the component's own use.
    pub fn platform(&mut self) -> &mut P {
        &mut self.platform
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The socket server's id of each client, by its index in the configuration (`None`:
    /// never attached).
    pub fn clients(&self) -> &[Option<P::Client>] {
        &self.clients
    }

    /// What the front door did.
    pub fn counters(&self) -> FrontCounters {
        self.counters
    }

    fn try_attach(&mut self, region: Name, nonce: u64, wake: CapSlot) -> Result<CapSlot, Error> {
        let index = (self.config.clients.iter())
            .position(|c| c.region == region)
            .ok_or(Error::NotFound)?;
        match self.platform.header_nonce(index) {
            None => return Err(Error::BadRegion),
            Some(n) if n != nonce => return Err(Error::NotFound),
            Some(_) => {}
        }
        if !self.platform.keep_wake(index, wake) {
            return Err(Error::Full);
        }
        let link = self.platform.link(index).ok_or(Error::BadRegion)?;
        let reply = self.platform.signal_cap(index).ok_or(Error::Full)?;
        match self.clients[index] {
            Some(id) => {
                self.platform.reattach(id, link);
                self.counters.reattached += 1;
            }
            None => {
                let limits = self.config.limits_of(index);
                self.clients[index] = Some(self.platform.attach(link, limits));
            }
        }
        self.counters.attached += 1;
        Ok(reply)
    }
}

impl<P: Platform> Server for Front<P> {
    fn attach(
        &mut self,
        _badge: u64,
        region: Name,
        nonce: u64,
        wake: CapSlot,
    ) -> Result<CapSlot, Error> {
        let result = self.try_attach(region, nonce, wake);
        if result.is_err() {
            self.counters.refused += 1;
        }
        result
    }
}
