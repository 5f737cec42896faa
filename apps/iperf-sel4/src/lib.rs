//! The iperf unikernel's host-testable parts: its start arguments.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

use core::net::Ipv4Addr;

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

/// Reads the arguments through `arg` (a lookup by key, e.g. `StartInfo::arg`).
pub fn parse<'a>(arg: impl Fn(&str) -> Option<&'a str>) -> Result<Args, ArgError> {
    let port = match arg("port") {
        Some(p) => p.parse().map_err(|_| ArgError::Bad("port"))?,
        None => 5201,
    };
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
