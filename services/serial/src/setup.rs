//! What serial asks of other components before it can serve, with every answer checked:
//! find `devices` through naming, claim the device, take its I/O ports and its interrupt;
//! later, register `serial` with naming.
//!
//! A peer's error is never a panic. The whole sequence is retried with back-off when a peer
//! restarted ([`proto::retry`]); any other error ends with a [`Failure`] naming the step,
//! which the component prints as `serial: cannot claim com1: irq: NoIrq` before it exits.

use core::fmt;
use proto::devices::{self, ports, DeviceInfo};
use proto::naming;
use proto::retry::{retry, Backoff, Failure, Transient};
use proto::Name;

/// The requests serial makes while it starts; the component implements them over its
/// endpoints, host tests over fakes. Each method checks its reply (a capability must land
/// where it was asked to, else `InvalidReply`).
pub trait Peers {
    /// Looks `devices` up with naming (its endpoint replaces any earlier one).
    fn lookup_devices(&mut self) -> Result<(), naming::Error>;
    /// Claims `device` from devices.
    fn claim(&mut self, device: Name) -> Result<DeviceInfo, devices::Error>;
    /// Takes the I/O port capability of `device`.
    fn ioport(&mut self, device: Name) -> Result<(), ports::Error>;
    /// Takes the interrupt handler of `device`.
    fn irq(&mut self, device: Name) -> Result<(), devices::Error>;
    /// Registers the component's endpoint as the provider of `serial`.
    fn register(&mut self) -> Result<(), naming::Error>;
}

/// Which start-up step failed, with the peer's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// naming's `lookup` of `devices`.
    LookupDevices(naming::Error),
    /// devices' `claim`.
    Claim(devices::Error),
    /// devices' `ioport`.
    Ports(ports::Error),
    /// devices' `irq`.
    Irq(devices::Error),
    /// naming's `register` of `serial`.
    Register(naming::Error),
}

impl Transient for SetupError {
    fn is_transient(&self) -> bool {
        match self {
            SetupError::LookupDevices(e) | SetupError::Register(e) => e.is_transient(),
            SetupError::Claim(e) | SetupError::Irq(e) => e.is_transient(),
            SetupError::Ports(e) => e.is_transient(),
        }
    }
}

impl fmt::Display for SetupError {
    /// `STEP: ERROR`, e.g. `lookup devices: NotFound`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::LookupDevices(e) => write!(f, "lookup devices: {e}"),
            SetupError::Claim(e) => write!(f, "claim: {e}"),
            SetupError::Ports(e) => write!(f, "ioport: {e}"),
            SetupError::Irq(e) => write!(f, "irq: {e}"),
            SetupError::Register(e) => write!(f, "register serial: {e}"),
        }
    }
}

/// Finds devices and takes `device` with its ports and interrupt, starting over from the
/// lookup while a peer answers `ServerRestarted` (a restarted devices forgets the claim);
/// `pause` waits between attempts.
///
/// `Ok` with what the claim said; `Err` with the step and error that ended it.
pub fn claim_device(
    peers: &mut impl Peers,
    device: Name,
    policy: &Backoff,
    pause: impl FnMut(u32),
) -> Result<DeviceInfo, Failure<SetupError>> {
    retry(policy, pause, || {
        peers.lookup_devices().map_err(SetupError::LookupDevices)?;
        let info = peers.claim(device).map_err(SetupError::Claim)?;
        peers.ioport(device).map_err(SetupError::Ports)?;
        peers.irq(device).map_err(SetupError::Irq)?;
        Ok(info)
    })
}

/// Registers `serial` with naming, again while naming answers `ServerRestarted`.
///
/// `Ok(())`; `Err` with naming's last error.
pub fn register(
    peers: &mut impl Peers,
    policy: &Backoff,
    pause: impl FnMut(u32),
) -> Result<(), Failure<SetupError>> {
    retry(policy, pause, || {
        peers.register().map_err(SetupError::Register)
    })
}
