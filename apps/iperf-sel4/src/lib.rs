//! The iperf unikernel's host-testable parts: its start arguments, the network, server
//! and driver configuration they imply, and its console lines.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;
use core::net::Ipv4Addr;

use libos_core::{Ipv4Config, NetConfig};

/// Which NIC driver the component runs (`nic` arg).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Nic {
    /// Intel 82574L (`e1000e`, the default).
    #[default]
    E1000e,
    /// virtio-net over PCI (`virtio-net`).
    VirtioNet,
}

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

/// What the system description's `args` say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args {
    /// TCP port to serve iperf3 on (`port`, default 5201).
    pub port: u16,
    /// Static address and prefix (`address`, e.g. `10.0.2.15/24`).
    pub address: Ipv4Addr,
    /// Prefix length of `address`.
    pub prefix_len: u8,
    /// Default gateway (`gateway`), if any.
    pub gateway: Option<Ipv4Addr>,
    /// TSC frequency in MHz (`tsc_mhz`); `None`: calibrate against the PIT.
    pub tsc_mhz: Option<u64>,
    /// The NIC driver (`nic`: `e1000e` or `virtio-net`; default `e1000e`).
    pub nic: Nic,
    /// The deadline timer (`timer`: `auto`, `hpet`, `pit` or `poll`).
    pub timer: TimerChoice,
    /// The e1000e's interrupt moderation (`itr`): the minimum gap between interrupts in
    /// 256 ns units, 0 for none; `None`: the driver's default.
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

/// Parses `ADDR/PREFIX`.
pub fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (address, prefix) = text.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some(())?;
    Some((address.parse().ok()?, prefix))
}

/// Reads the `port` argument (default 5201).
pub fn parse_port<'a>(arg: impl Fn(&str) -> Option<&'a str>) -> Result<u16, ArgError> {
    match arg("port") {
        Some(p) => p.parse().map_err(|_| ArgError::Bad("port")),
        None => Ok(5201),
    }
}

/// Reads the arguments through `arg` (a lookup by key, e.g. `StartInfo::arg`).
pub fn parse<'a>(arg: impl Fn(&str) -> Option<&'a str>) -> Result<Args, ArgError> {
    let port = parse_port(&arg)?;
    let (address, prefix_len) =
        parse_cidr(arg("address").ok_or(ArgError::NoAddress)?).ok_or(ArgError::Bad("address"))?;
    let gateway = match arg("gateway") {
        Some(g) => Some(g.parse().map_err(|_| ArgError::Bad("gateway"))?),
        None => None,
    };
    let tsc_mhz = match arg("tsc_mhz") {
        Some(t) => Some(t.parse().map_err(|_| ArgError::Bad("tsc_mhz"))?),
        None => None,
    };
    let nic = match arg("nic") {
        None | Some("e1000e") => Nic::E1000e,
        Some("virtio-net") => Nic::VirtioNet,
        Some(_) => return Err(ArgError::Bad("nic")),
    };
    let itr = match arg("itr") {
        Some(t) => Some(t.parse().map_err(|_| ArgError::Bad("itr"))?),
        None => None,
    };
    let timer = match arg("timer") {
        None | Some("auto") => TimerChoice::Auto,
        Some("hpet") => TimerChoice::Hpet,
        Some("pit") => TimerChoice::Pit,
        Some("poll") => TimerChoice::Poll,
        Some(_) => return Err(ArgError::Bad("timer")),
    };
    Ok(Args {
        timer,
        itr,
        nic,
        port,
        address,
        prefix_len,
        gateway,
        tsc_mhz,
    })
}

/// The e1000e driver's configuration: the defaults (adaptive moderation from 128 us),
/// or, when `itr` is given, that fixed interrupt moderation.
pub fn e1000e_config(args: &Args) -> e1000e::Config {
    let default = e1000e::Config::default();
    e1000e::Config {
        interrupt_throttle: args.itr.map_or(default.interrupt_throttle, u32::from),
        adaptive_moderation: args.itr.is_none(),
        ..default
    }
}

/// Whether to claim the HPET for deadlines (`auto` or `hpet`).
pub fn wants_hpet(timer: TimerChoice) -> bool {
    matches!(timer, TimerChoice::Hpet | TimerChoice::Auto)
}

/// Whether the PIT's tick times the deadlines: asked for (`pit`), or `auto` without a
/// usable HPET.
pub fn wants_pit(timer: TimerChoice, have_hpet: bool) -> bool {
    match timer {
        TimerChoice::Pit => true,
        TimerChoice::Hpet | TimerChoice::Poll => false,
        TimerChoice::Auto => !have_hpet,
    }
}

/// The network configuration: the static address from `args`, 256 KiB receive and
/// 64 KiB transmit buffers per TCP socket, and as many TCP sockets as fit in half of
/// `heap` bytes (the heap is half the budget), so that a client past the limit is reset,
/// never the cause of an allocation failure.
pub fn net_config(args: &Args, heap: usize) -> NetConfig {
    let mut config = NetConfig {
        ipv4: Some(Ipv4Config {
            address: args.address,
            prefix_len: args.prefix_len,
            gateway: args.gateway,
        }),
        tcp_rx_buffer: 256 * 1024,
        tcp_tx_buffer: 64 * 1024,
        ..NetConfig::default()
    };
    config.max_tcp_sockets = config.tcp_sockets_within(heap / 2);
    config
}

/// The iperf3 server's configuration: `port`, at most 8 parallel streams, one line per
/// test.
pub fn server_config(port: u16) -> iperf::ServerConfig {
    iperf::ServerConfig {
        port,
        max_parallel: 8,
        verbose: true,
        ..iperf::ServerConfig::default()
    }
}

/// `iperf: heap N KiB, up to M TCP sockets` (tests read the limit after `up to `).
pub struct HeapLine {
    /// Heap size in bytes.
    pub heap: usize,
    /// The TCP socket limit.
    pub sockets: usize,
}

impl fmt::Display for HeapLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "iperf: heap {} KiB, up to {} TCP sockets",
            self.heap / 1024,
            self.sockets
        )
    }
}

/// `STAT up_us=.. idle_us=.. irqs=.. polls=.. busy_polls=.. frames=..`: the benchmark's
/// CPU utilisation is 1 - Δidle/Δup between two lines (the Linux baseline prints the first
/// two keys only), the rest are the poll loop's counters (the format is [`iperf::stat`]).
pub struct StatLine {
    /// Time since boot, ns.
    pub up_ns: u64,
    /// Time spent idle, ns.
    pub idle_ns: u64,
    /// The NIC's interrupts so far.
    pub irqs: u64,
    /// The stack's frame and poll counters.
    pub counters: libos_core::NetCounters,
}

impl fmt::Display for StatLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        let net = iperf::stat::NetStat {
            irqs: self.irqs,
            polls: c.polls,
            busy_polls: c.busy_polls,
            frames: c.rx_frames + c.tx_frames,
        };
        let stat = iperf::stat::Stat::from_ns(self.up_ns, self.idle_ns).with_net(net);
        fmt::Display::fmt(&stat, f)
    }
}

/// `iperf: nic0 MSI-X: ...`: what the driver wrote to route the device's interrupts to
/// MSI-X table entry 0 (which `devices` programmed), as read back from the device; the
/// system test looks for it. `None` prints nothing (not MSI-X).
pub struct MsixLine {
    /// The e1000e's IVAR, or virtio-net's receive, transmit and configuration vectors.
    pub routing: Option<Result<u32, [u16; 3]>>,
}

impl From<libos_sel4::nic::MsixRouting> for MsixLine {
    fn from(routing: libos_sel4::nic::MsixRouting) -> MsixLine {
        use libos_sel4::nic::MsixRouting::*;
        MsixLine {
            routing: match routing {
                None => Option::None,
                E1000e { ivar } => Some(Ok(ivar)),
                Virtio(v) => Some(Err([v.receive, v.transmit, v.config])),
            },
        }
    }
}

/// `iperf: nic0 virtio-net offloads: csum on|off, guest_csum on|off`: the checksum
/// offloads virtio-net negotiated (QEMU offers them only over a backend with a
/// `vnet_hdr`, such as TAP).
pub struct OffloadLine {
    /// `CSUM` (sent frames' TCP/UDP checksums completed by the device).
    pub csum: bool,
    /// `GUEST_CSUM` (received frames checked or partial).
    pub guest_csum: bool,
}

impl fmt::Display for OffloadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "iperf: nic0 virtio-net offloads: csum {}, guest_csum {}",
            on(self.csum),
            on(self.guest_csum)
        )
    }
}

/// `iperf: rx_malformed N, rx_bad_checksum M, frames {..}`: the received frames the
/// component dropped, printed when a count changes (the tests read the numbers after the
/// two keys).
pub struct DropLine {
    /// The stack's counters.
    pub counters: libos_core::NetCounters,
}

impl fmt::Display for DropLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        write!(
            f,
            "iperf: rx_malformed {}, rx_bad_checksum {}, frames {c:?}",
            c.rx_malformed, c.rx_bad_checksum
        )
    }
}

impl fmt::Display for MsixLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.routing {
            None => Ok(()),
            Some(Ok(ivar)) => write!(f, "iperf: nic0 MSI-X: IVAR {ivar:#010x} (every cause to vector 0)"),
            Some(Err([rx, tx, config])) => write!(
                f,
                "iperf: nic0 MSI-X: receive queue vector {rx}, transmit queue vector {tx}, config vector {config:#x}"
            ),
        }
    }
}

/// What times the deadlines, as the start-up line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerName {
    /// The HPET's timer `timer` counting at `hz`.
    Hpet {
        /// Which of the HPET's timers.
        timer: u8,
        /// Its counter's frequency.
        hz: u64,
    },
    /// The PIT's tick.
    Pit,
    /// No timer.
    Poll,
}

impl fmt::Display for TimerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerName::Hpet { timer, hz } => {
                write!(f, "HPET deadlines (timer {timer}, {} MHz)", hz / 1_000_000)
            }
            TimerName::Pit => f.write_str("PIT tick deadlines"),
            TimerName::Poll => f.write_str("poll+yield deadlines"),
        }
    }
}

/// The start-up line: `iperf: nic0 DRIVER MAC at BUS:DEV.FN IRQ MODE, BARn at VADDR, DMA
/// at PADDR, TSC N MHz, TIMER, irq thread priority P` (the benchmarks read the TSC and
/// timer parts).
pub struct NicLine<'a, I: fmt::Debug> {
    /// The driver's name.
    pub driver: &'a str,
    /// The MAC address.
    pub mac: [u8; 6],
    /// PCI bus, device and function.
    pub pci: (u8, u8, u8),
    /// How its interrupt arrives.
    pub irq: I,
    /// The mapped BAR's index.
    pub bar: u8,
    /// Where it is mapped.
    pub bar_base: usize,
    /// Physical address of the DMA memory.
    pub dma: u64,
    /// The TSC frequency, Hz.
    pub tsc_hz: u64,
    /// What times the deadlines.
    pub timer: TimerName,
    /// The interrupt thread's priority.
    pub irq_priority: u8,
}

impl<I: fmt::Debug> fmt::Display for NicLine<'_, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.mac;
        write!(
            f,
            "iperf: nic0 {} {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} at {:02x}:{:02x}.{} IRQ {:?}, BAR{} at {:#x}, DMA at {:#x}, TSC {} MHz, {}, irq thread priority {}",
            self.driver, m[0], m[1], m[2], m[3], m[4], m[5],
            self.pci.0, self.pci.1, self.pci.2, self.irq,
            self.bar, self.bar_base, self.dma,
            self.tsc_hz / 1_000_000,
            self.timer,
            self.irq_priority,
        )
    }
}

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn from<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    #[test]
    fn parses_the_description_args() {
        let args = parse(from(&[
            ("port", "5201"),
            ("address", "10.0.2.15/24"),
            ("gateway", "10.0.2.2"),
        ]))
        .unwrap();
        assert_eq!(args.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(args.prefix_len, 24);
        assert_eq!(args.gateway, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(args.tsc_mhz, None);
        assert_eq!(args.nic, Nic::E1000e);
        let virtio = parse(from(&[("address", "10.0.2.15/24"), ("nic", "virtio-net")]));
        assert_eq!(virtio.unwrap().nic, Nic::VirtioNet);
        assert_eq!(
            parse(from(&[("address", "10.0.2.15/24"), ("nic", "rtl8139")])),
            Err(ArgError::Bad("nic"))
        );
        assert_eq!(args.itr, None);
        assert_eq!(args.timer, TimerChoice::Auto);
        let pit = parse(from(&[("address", "10.0.2.15/24"), ("timer", "pit")]));
        assert_eq!(pit.unwrap().timer, TimerChoice::Pit);
        assert_eq!(
            parse(from(&[("address", "10.0.2.15/24"), ("timer", "hpett")])),
            Err(ArgError::Bad("timer"))
        );
        let moderated = parse(from(&[("address", "10.0.2.15/24"), ("itr", "0")]));
        assert_eq!(moderated.unwrap().itr, Some(0));
        assert_eq!(
            parse(from(&[("address", "10.0.2.15/24"), ("itr", "70000")])),
            Err(ArgError::Bad("itr"))
        );
        assert_eq!(parse(from(&[])), Err(ArgError::NoAddress));
        assert_eq!(
            parse(from(&[("address", "10.0.2.15/33")])),
            Err(ArgError::Bad("address"))
        );
        assert_eq!(
            parse(from(&[("address", "1.2.3.4/8"), ("port", "x")])),
            Err(ArgError::Bad("port"))
        );
    }

    fn args() -> Args {
        parse(from(&[
            ("address", "10.0.2.15/24"),
            ("gateway", "10.0.2.2"),
            ("port", "5202"),
        ]))
        .unwrap()
    }

    #[test]
    fn the_socket_limit_follows_half_the_heap() {
        let config = net_config(&args(), 64 << 20);
        let ipv4 = config.ipv4.unwrap();
        assert_eq!(ipv4.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(ipv4.prefix_len, 24);
        assert_eq!(ipv4.gateway, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(
            (config.tcp_rx_buffer, config.tcp_tx_buffer),
            (256 << 10, 64 << 10)
        );
        // 32 MiB for sockets of 320 KiB buffers plus 4 KiB each: 101.
        assert_eq!(config.max_tcp_sockets, (32 << 20) / ((320 << 10) + 4096));
        assert_eq!(config.max_tcp_sockets, config.tcp_sockets_within(32 << 20));
        // Twice the heap, about twice the sockets; a tiny heap still allows one.
        assert!(net_config(&args(), 128 << 20).max_tcp_sockets >= 2 * config.max_tcp_sockets);
        assert_eq!(net_config(&args(), 4096).max_tcp_sockets, 1);
    }

    #[test]
    fn the_server_and_driver_configurations_follow_the_args() {
        let server = server_config(args().port);
        assert_eq!(
            (server.port, server.max_parallel, server.verbose),
            (5202, 8, true)
        );
        let default = e1000e::Config::default();
        assert_eq!(e1000e_config(&args()), default);
        let moderated = Args {
            itr: Some(0),
            ..args()
        };
        assert_eq!(e1000e_config(&moderated).interrupt_throttle, 0);
        assert!(!e1000e_config(&moderated).adaptive_moderation);
        assert!(e1000e_config(&args()).adaptive_moderation);
        assert_eq!(
            e1000e_config(&moderated).rx_descriptors,
            default.rx_descriptors
        );
    }

    #[test]
    fn the_timer_choice_picks_the_devices() {
        assert!(wants_hpet(TimerChoice::Auto) && wants_hpet(TimerChoice::Hpet));
        assert!(!wants_hpet(TimerChoice::Pit) && !wants_hpet(TimerChoice::Poll));
        assert!(wants_pit(TimerChoice::Auto, false));
        assert!(!wants_pit(TimerChoice::Auto, true));
        assert!(wants_pit(TimerChoice::Pit, true));
        assert!(!wants_pit(TimerChoice::Hpet, false));
        assert!(!wants_pit(TimerChoice::Poll, false));
    }

    #[test]
    fn console_lines_keep_the_format_the_tests_and_benchmarks_read() {
        let heap = HeapLine {
            heap: 64 << 20,
            sockets: 101,
        };
        assert_eq!(
            heap.to_string(),
            "iperf: heap 65536 KiB, up to 101 TCP sockets"
        );
        let stat = StatLine {
            up_ns: 12_345_678,
            idle_ns: 999,
            irqs: 7,
            counters: libos_core::NetCounters {
                rx_frames: 30,
                tx_frames: 12,
                polls: 90,
                busy_polls: 20,
                ..Default::default()
            },
        };
        assert_eq!(
            stat.to_string(),
            "STAT up_us=12345 idle_us=0 irqs=7 polls=90 busy_polls=20 frames=42"
        );
        let parsed = iperf::stat::Stat::parse(&stat.to_string()).unwrap();
        assert_eq!(parsed.net.map(|n| (n.irqs, n.frames)), Some((7, 42)));
        let e1000e = MsixLine {
            routing: Some(Ok(0x8008_0808)),
        };
        assert_eq!(
            e1000e.to_string(),
            "iperf: nic0 MSI-X: IVAR 0x80080808 (every cause to vector 0)"
        );
        let virtio = MsixLine {
            routing: Some(Err([0, 0, 0xFFFF])),
        };
        assert_eq!(
            virtio.to_string(),
            "iperf: nic0 MSI-X: receive queue vector 0, transmit queue vector 0, config vector 0xffff"
        );
        assert_eq!(MsixLine { routing: None }.to_string(), "");
        let from_e1000e =
            MsixLine::from(libos_sel4::nic::MsixRouting::E1000e { ivar: 0x8008_0808 });
        assert_eq!(from_e1000e.to_string(), e1000e.to_string());
        let offloads = OffloadLine {
            csum: true,
            guest_csum: false,
        };
        assert_eq!(
            offloads.to_string(),
            "iperf: nic0 virtio-net offloads: csum on, guest_csum off"
        );
        let drops = DropLine {
            counters: libos_core::NetCounters {
                rx_malformed: 3,
                rx_bad_checksum: 5,
                ..Default::default()
            },
        };
        assert!(drops
            .to_string()
            .starts_with("iperf: rx_malformed 3, rx_bad_checksum 5, frames NetCounters {"));
        let hpet = TimerName::Hpet {
            timer: 2,
            hz: 100_000_000,
        };
        assert_eq!(hpet.to_string(), "HPET deadlines (timer 2, 100 MHz)");
        assert_eq!(TimerName::Pit.to_string(), "PIT tick deadlines");
        assert_eq!(TimerName::Poll.to_string(), "poll+yield deadlines");
        let line = NicLine {
            driver: "e1000e",
            mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            pci: (0, 3, 0),
            irq: "Msi",
            bar: 0,
            bar_base: 0x1000_0000,
            dma: 0x20_0000,
            tsc_hz: 2_394_000_000,
            timer: TimerName::Pit,
            irq_priority: 254,
        };
        assert_eq!(
            line.to_string(),
            "iperf: nic0 e1000e 52:54:00:12:34:56 at 00:03.0 IRQ \"Msi\", BAR0 at 0x10000000, DMA at 0x200000, TSC 2394 MHz, PIT tick deadlines, irq thread priority 254"
        );
    }
}
