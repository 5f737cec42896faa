//! A TCP/IP stack on a NIC this component drives, in one call: the arguments every component
//! that runs a stack reads ([`StackArgs`]: address, gateway, driver, timer) and the bring-up
//! ([`bring_up`]: the NIC claimed and started, the clock and deadline timer, the interrupt
//! thread, the runtime and the `libos_core::Net` over the driver).
//!
//! Used by the `net` service (the stack shared by several applications). The iperf
//! unikernel parses the same arguments in its own library today.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;

use libos_core::{Ipv4Config, Net, NetConfig, Runtime};
use proto::devices::IrqMode;
use proto::Name;
use sel4::{CPtr, Cap};
use vspace::{Pool, VSpace};

use crate::device::{Devices, TscDelay};
use crate::nic::{ClaimedNic, NicKind};
use crate::timer::deadlines;
use crate::{irq, Sel4Pal, Timer};

/// What times the library OS's deadlines (`timer` arg).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimerChoice {
    /// The HPET if the description gives one, else the PIT's tick (`auto`, the default).
    #[default]
    Auto,
    /// The HPET only (`hpet`).
    Hpet,
    /// The PIT's 1 ms tick (`pit`).
    Pit,
    /// No timer: poll and yield until the deadline (`poll`; burns the CPU).
    Poll,
}

/// The stack's arguments from the system description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackArgs {
    /// Static address (`address`, `ADDR/PREFIX`, e.g. `10.0.2.15/24`).
    pub address: Ipv4Addr,
    /// Prefix length of `address`.
    pub prefix_len: u8,
    /// Default gateway (`gateway`), if any.
    pub gateway: Option<Ipv4Addr>,
    /// TSC frequency in MHz (`tsc_mhz`); `None`: calibrate against the PIT.
    pub tsc_mhz: Option<u64>,
    /// The NIC driver (`nic`: `e1000e`, the default, or `virtio-net`).
    pub nic: NicKind,
    /// The deadline timer (`timer`: `auto`, `hpet`, `pit` or `poll`).
    pub timer: TimerChoice,
    /// The e1000e's interrupt moderation (`itr`, 256 ns units, 0 for none); `None`: the
    /// driver's default.
    pub itr: Option<u16>,
}

/// Why the arguments were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgError {
    /// `address` is missing.
    NoAddress,
    /// The named argument does not parse.
    Bad(&'static str),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::NoAddress => write!(f, "no address argument (ADDR/PREFIX)"),
            ArgError::Bad(key) => write!(f, "argument {key} does not parse"),
        }
    }
}

/// Parses `ADDR/PREFIX`.
pub fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (address, prefix) = text.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some(())?;
    Some((address.parse().ok()?, prefix))
}

/// Parses optional argument `key` with `FromStr`.
fn optional<'a, T: core::str::FromStr>(
    arg: &impl Fn(&str) -> Option<&'a str>,
    key: &'static str,
) -> Result<Option<T>, ArgError> {
    arg(key)
        .map(|v| v.parse().map_err(|_| ArgError::Bad(key)))
        .transpose()
}

impl StackArgs {
    /// Reads the arguments through `arg` (a lookup by key, e.g. `StartInfo::arg`).
    pub fn parse<'a>(arg: impl Fn(&str) -> Option<&'a str>) -> Result<StackArgs, ArgError> {
        let (address, prefix_len) = parse_cidr(arg("address").ok_or(ArgError::NoAddress)?)
            .ok_or(ArgError::Bad("address"))?;
        let nic = match arg("nic") {
            None | Some("e1000e") => NicKind::E1000e,
            Some("virtio-net") => NicKind::VirtioNet,
            Some(_) => return Err(ArgError::Bad("nic")),
        };
        let timer = match arg("timer") {
            None | Some("auto") => TimerChoice::Auto,
            Some("hpet") => TimerChoice::Hpet,
            Some("pit") => TimerChoice::Pit,
            Some("poll") => TimerChoice::Poll,
            Some(_) => return Err(ArgError::Bad("timer")),
        };
        Ok(StackArgs {
            address,
            prefix_len,
            gateway: optional(&arg, "gateway")?,
            tsc_mhz: optional(&arg, "tsc_mhz")?,
            nic,
            timer,
            itr: optional(&arg, "itr")?,
        })
    }

    /// The e1000e driver's configuration: the defaults, with `itr` when given.
    pub fn e1000e_config(&self) -> e1000e::Config {
        let default = e1000e::Config::default();
        e1000e::Config {
            interrupt_throttle: self.itr.map_or(default.interrupt_throttle, u32::from),
            ..default
        }
    }

    /// Whether to claim the HPET for deadlines (`auto` or `hpet`).
    pub fn wants_hpet(&self) -> bool {
        matches!(self.timer, TimerChoice::Hpet | TimerChoice::Auto)
    }

    /// Whether the PIT's tick times the deadlines: asked for (`pit`), or `auto` without a
    /// usable HPET.
    pub fn wants_pit(&self, have_hpet: bool) -> bool {
        match self.timer {
            TimerChoice::Pit => true,
            TimerChoice::Hpet | TimerChoice::Poll => false,
            TimerChoice::Auto => !have_hpet,
        }
    }

    /// The network configuration: the static address, 256 KiB receive and 64 KiB transmit
    /// buffers per TCP socket, and as many TCP sockets as fit in `bytes` of memory (so
    /// that a peer past the limit is reset, never the cause of an allocation failure).
    pub fn net_config(&self, bytes: usize) -> NetConfig {
        let mut config = NetConfig {
            ipv4: Some(Ipv4Config {
                address: self.address,
                prefix_len: self.prefix_len,
                gateway: self.gateway,
            }),
            tcp_rx_buffer: 256 * 1024,
            tcp_tx_buffer: 64 * 1024,
            ..NetConfig::default()
        };
        config.max_tcp_sockets = config.tcp_sockets_within(bytes);
        config
    }
}

/// How the deadlines are timed, for the start-up line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerName {
    /// HPET timer `timer` at `hz`.
    Hpet {
        /// The HPET comparator.
        timer: u8,
        /// Its counter's frequency.
        hz: u64,
    },
    /// The PIT's 1 ms tick.
    Pit,
    /// A peer's tick.
    Tick,
    /// Poll and yield.
    Poll,
}

impl TimerName {
    /// How `timer` is named on the start-up line.
    pub fn of(timer: Option<&Timer>) -> TimerName {
        match timer {
            Some(Timer::Hpet(h)) => TimerName::Hpet {
                timer: h.timer(),
                hz: h.hz(),
            },
            Some(Timer::Pit(_)) => TimerName::Pit,
            Some(Timer::Tick { .. }) => TimerName::Tick,
            None => TimerName::Poll,
        }
    }
}

impl fmt::Display for TimerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerName::Hpet { timer, hz } => write!(f, "hpet{timer} ({hz} Hz)"),
            TimerName::Pit => write!(f, "pit (1 ms tick)"),
            TimerName::Tick => write!(f, "peer tick"),
            TimerName::Poll => write!(f, "poll"),
        }
    }
}

/// Where the stack's frames go.
pub enum NicSource {
    /// A NIC this component claims (its device name) and drives.
    Claim(Name),
    /// A device from elsewhere (frames over a ring to a `nic` component), with the name the
    /// start-up line gives it.
    Device(Box<dyn libos_core::NetDevice>, &'static str),
}

/// What [`bring_up`] started, for the component's start-up line.
#[derive(Clone, Copy, Debug)]
pub struct StackLine {
    /// The component.
    pub component: &'static str,
    /// The driver.
    pub driver: &'static str,
    /// The NIC's MAC address.
    pub mac: [u8; 6],
    /// Its PCI function (bus, device, function), if this component drives it.
    pub pci: Option<(u8, u8, u8)>,
    /// How its interrupt arrives, if this component drives it.
    pub irq: Option<IrqMode>,
    /// What times deadlines.
    pub timer: TimerName,
    /// The TSC's frequency.
    pub tsc_hz: u64,
    /// The address served.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// TCP sockets the stack holds at most.
    pub sockets: usize,
}

impl fmt::Display for StackLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.mac;
        write!(
            f,
            "{}: {} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            self.component, self.driver, m[0], m[1], m[2], m[3], m[4], m[5],
        )?;
        if let (Some((bus, dev, func)), Some(irq)) = (self.pci, self.irq) {
            write!(f, " pci {bus:02x}:{dev:02x}.{func} irq {irq:?}")?;
        }
        write!(
            f,
            ", timer {}, tsc {} MHz, {}/{}, up to {} TCP sockets",
            self.timer,
            self.tsc_hz / 1_000_000,
            self.address,
            self.prefix_len,
            self.sockets
        )
    }
}

/// A running stack: the runtime, its PAL and the interface over the NIC.
pub struct Stack {
    /// The library OS's executor.
    pub runtime: Runtime,
    /// The seL4 PAL it runs on (clock, idle accounting).
    pub pal: Rc<Sel4Pal>,
    /// The interface over the NIC.
    pub net: Net,
    /// What was started.
    pub line: StackLine,
}

/// Brings up a stack on NIC device `nic` (with devices `hpet` and `pit` for time when the
/// description gives them): claims and starts the NIC (or takes the device given), sets up
/// the clock and deadline timer,
/// starts the interrupt thread above this one (within `mcp`), and creates the runtime on
/// this thread's notification and the interface with `config`. Ends the component with a
/// one-line reason if a step fails (see [`crate::device`]).
#[allow(
    clippy::too_many_arguments,
    reason = "the capabilities a stack is built from"
)]
pub fn bring_up<F: FnMut(u8) -> Option<CPtr>>(
    component: &'static str,
    mcp: u8,
    devices: &mut Devices,
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    (nic, hpet, pit): (NicSource, Name, Name),
    args: &StackArgs,
    config: NetConfig,
) -> Stack {
    let claimed = match nic {
        NicSource::Claim(name) => Ok(ClaimedNic::claim(devices, pool, vspace, name, args.nic)),
        NicSource::Device(device, driver) => Err((device, driver)),
    };
    let time = deadlines(
        devices,
        pool,
        vspace,
        (args.wants_hpet().then_some(hpet), pit),
        |have_hpet| args.wants_pit(have_hpet),
        args.tsc_mhz,
    );
    let clock = time.clock;
    let mut sources = Vec::new();
    if let Ok(claimed) = &claimed {
        sources.push(claimed.interrupt());
    }
    let timer = time.into_timer(&mut sources);
    let timer_name = TimerName::of(timer.as_ref());
    if let Err(e) = irq::start_above_caller(pool, vspace, sources, mcp, component) {
        rt::fail(
            component,
            "start the interrupt thread",
            format_args!("{e:?}"),
        );
    }
    let (device, mac, driver, pci, irq_mode) = match claimed {
        Ok(claimed) => {
            let (pci, irq_mode) = (claimed.info().pci, claimed.info().irq);
            let started = claimed.start(pool, vspace, TscDelay(clock), args.e1000e_config());
            let pci = Some((pci.bus, pci.dev, pci.func));
            (
                started.device,
                started.mac,
                args.nic.name(),
                pci,
                Some(irq_mode),
            )
        }
        Err((device, driver)) => {
            let mac = device.mac_address();
            (device, mac, driver, None, None)
        }
    };
    let wake = Cap::from_raw(rt::startinfo::slots::NOTIFICATION);
    let pal = Rc::new(Sel4Pal::new(clock, wake, timer));
    let runtime = Runtime::new(pal.clone());
    let sockets = config.max_tcp_sockets;
    let net = Net::new(&runtime, device, config);
    Stack {
        runtime,
        pal,
        net,
        line: StackLine {
            component,
            driver,
            mac,
            pci,
            irq: irq_mode,
            timer: timer_name,
            tsc_hz: clock.hz(),
            address: args.address,
            prefix_len: args.prefix_len,
            sockets,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn args<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
    }

    #[test]
    fn parses_the_defaults_and_every_choice() {
        let a = StackArgs::parse(args(&[("address", "10.0.2.15/24")])).unwrap();
        assert_eq!(a.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!((a.prefix_len, a.gateway, a.tsc_mhz), (24, None, None));
        assert_eq!(
            (a.nic, a.timer, a.itr),
            (NicKind::E1000e, TimerChoice::Auto, None)
        );
        let b = StackArgs::parse(args(&[
            ("address", "192.168.1.2/16"),
            ("gateway", "192.168.0.1"),
            ("nic", "virtio-net"),
            ("timer", "pit"),
            ("tsc_mhz", "2400"),
            ("itr", "0"),
        ]))
        .unwrap();
        assert_eq!(b.gateway, Some(Ipv4Addr::new(192, 168, 0, 1)));
        assert_eq!((b.nic, b.timer), (NicKind::VirtioNet, TimerChoice::Pit));
        assert_eq!((b.tsc_mhz, b.itr), (Some(2400), Some(0)));
        assert!(b.wants_pit(true) && !b.wants_hpet());
        assert_eq!(b.e1000e_config().interrupt_throttle, 0);
    }

    #[test]
    fn refuses_what_does_not_parse() {
        assert_eq!(StackArgs::parse(args(&[])), Err(ArgError::NoAddress));
        for (key, bad) in [
            ("address", "10.0.2.15"),
            ("address", "10.0.2.15/33"),
            ("gateway", "x"),
            ("nic", "rtl8139"),
            ("timer", "rtc"),
            ("tsc_mhz", "-1"),
            ("itr", "70000"),
        ] {
            let mut pairs = vec![("address", "10.0.2.15/24")];
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, bad));
            assert_eq!(
                StackArgs::parse(args(&pairs)),
                Err(ArgError::Bad(key)),
                "{key}={bad}"
            );
        }
    }

    #[test]
    fn the_auto_timer_falls_back_to_the_pit_without_an_hpet() {
        let a = StackArgs::parse(args(&[("address", "10.0.2.15/24")])).unwrap();
        assert!(a.wants_hpet() && a.wants_pit(false) && !a.wants_pit(true));
    }

    #[test]
    fn socket_count_follows_the_memory() {
        let a = StackArgs::parse(args(&[("address", "10.0.2.15/24")])).unwrap();
        let small = a.net_config(1 << 20).max_tcp_sockets;
        let large = a.net_config(16 << 20).max_tcp_sockets;
        assert!(large > small, "{large} > {small}");
    }
}
