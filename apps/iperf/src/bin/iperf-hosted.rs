//! `iperf-hosted`: the iperf3-compatible server on the hosted library OS, attached to a
//! Linux TAP device.
//!
//! `iperf-hosted --tap tap0 (--ip 10.0.2.15/24 [--gateway A.B.C.D] | --dhcp)
//! [--port 5201] [--max-tests N] [--idle-timeout SECS] [--quiet]`

use std::net::Ipv4Addr;
use std::process::ExitCode;

use iperf::ServerConfig;
use libos_core::{Ipv4Config, Net, NetConfig, Runtime};
use libos_hosted::tap::TapDevice;
use libos_hosted::HostedPal;

const USAGE: &str =
    "usage: iperf-hosted --tap NAME (--ip ADDR/PREFIX [--gateway ADDR] | --dhcp) [--port N] [--max-tests N] [--idle-timeout SECS] [--quiet]";

/// Longest wait for a DHCP lease.
const DHCP_TIMEOUT_S: u64 = 30;

struct Args {
    tap: String,
    /// The static address; `None` with `--dhcp`.
    ipv4: Option<Ipv4Config>,
    port: u16,
    max_tests: Option<u64>,
    idle_timeout_s: Option<u64>,
    verbose: bool,
}

fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (address, prefix) = text.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some(())?;
    Some((address.parse().ok()?, prefix))
}

fn parse_args() -> Result<Args, String> {
    let mut tap = None;
    let mut cidr = None;
    let mut gateway = None;
    let mut port = iperf::protocol::DEFAULT_PORT;
    let mut max_tests = None;
    let mut idle_timeout_s = None;
    let mut dhcp = false;
    let mut verbose = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--tap" => tap = Some(value()?),
            "--ip" => cidr = Some(parse_cidr(&value()?).ok_or("--ip wants ADDR/PREFIX")?),
            "--gateway" => {
                gateway = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--gateway wants an IPv4 address")?,
                )
            }
            "--port" => port = value()?.parse().map_err(|_| "--port wants a number")?,
            "--max-tests" => {
                max_tests = Some(value()?.parse().map_err(|_| "--max-tests wants a number")?)
            }
            "--idle-timeout" => {
                idle_timeout_s = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--idle-timeout wants a number of seconds")?,
                )
            }
            "--dhcp" => dhcp = true,
            "--quiet" => verbose = false,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let tap = tap.ok_or(USAGE)?;
    let ipv4 = match (cidr, dhcp) {
        (Some((address, prefix_len)), false) => Some(Ipv4Config {
            address,
            prefix_len,
            gateway,
        }),
        (None, true) if gateway.is_none() => None,
        (None, true) => return Err("--gateway comes from DHCP with --dhcp".into()),
        (Some(_), true) => return Err(format!("--ip and --dhcp exclude each other\n{USAGE}")),
        (None, false) => return Err(format!("--ip or --dhcp is needed\n{USAGE}")),
    };
    Ok(Args {
        tap,
        ipv4,
        port,
        max_tests,
        idle_timeout_s,
        verbose,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    // A locally administered MAC derived from the address (or, with DHCP, the TAP
    // device's name), stable across runs.
    let octets = match &args.ipv4 {
        Some(ipv4) => ipv4.address.octets(),
        None => args
            .tap
            .bytes()
            .fold(0x811c_9dc5u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            })
            .to_be_bytes(),
    };
    let mac = [0x02, 0x54, octets[0], octets[1], octets[2], octets[3]];
    let tap = match TapDevice::open(&args.tap, mac) {
        Ok(tap) => tap,
        Err(error) => {
            eprintln!("iperf-hosted: cannot open TAP {}: {error}", args.tap);
            return ExitCode::from(1);
        }
    };
    match &args.ipv4 {
        Some(ipv4) => println!(
            "iperf-hosted: TAP {} as {}/{}",
            tap.name(),
            ipv4.address,
            ipv4.prefix_len
        ),
        None => println!(
            "iperf-hosted: TAP {}, asking DHCP for an address",
            tap.name()
        ),
    }
    let runtime = Runtime::new(HostedPal::new(tap.events()));
    let net = Net::new(
        &runtime,
        Box::new(tap),
        NetConfig {
            ipv4: args.ipv4,
            dhcp: args.ipv4.is_none(),
            ..NetConfig::default()
        },
    );
    if args.ipv4.is_none() {
        let leased = runtime.block_on(net.wait_for_ipv4(DHCP_TIMEOUT_S * libos_core::NS_PER_SEC));
        let Ok(address) = leased else {
            eprintln!("iperf-hosted: no DHCP lease within {DHCP_TIMEOUT_S} s");
            return ExitCode::from(1);
        };
        println!(
            "iperf-hosted: DHCP lease {address}/{}, gateway {}",
            net.ipv4_prefix_len().unwrap_or(32),
            net.ipv4_gateway()
                .map_or_else(|| "none".to_string(), |g| g.to_string())
        );
    }
    let config = ServerConfig {
        port: args.port,
        max_tests: args.max_tests,
        idle_timeout_ns: args
            .idle_timeout_s
            .map(|s| s.saturating_mul(libos_core::NS_PER_SEC)),
        verbose: args.verbose,
        ..ServerConfig::default()
    };
    match runtime.block_on(iperf::serve(&net, config)) {
        Ok(stats) => {
            println!("iperf-hosted: {stats:?}, frames {:?}", net.counters());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("iperf-hosted: {error}");
            ExitCode::from(1)
        }
    }
}
