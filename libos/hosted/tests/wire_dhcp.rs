//! DHCP on the in-process wire: a library OS instance configured with `dhcp` leases
//! its address, prefix and gateway from a minimal DHCP server that this test runs on
//! the other end of the wire (raw frames, no privileges needed).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use libos_core::{Error, Net, NetConfig, NetDevice, Runtime, NS_PER_MS, NS_PER_SEC};
use libos_hosted::testing::TEST_LIMIT;
use libos_hosted::wire::{wire_pair, WireEnd};
use libos_hosted::HostedPal;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
    DHCP_CLIENT_PORT, DHCP_SERVER_PORT,
};

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 3, 1);
const OFFERED_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 3, 42);
const ROUTER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 3, 254);
const NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
const LEASE_S: u32 = 3600;

/// What the DHCP server saw from the client.
#[derive(Debug, Default)]
struct Seen {
    discovers: usize,
    /// (requested address, server identifier) of each REQUEST.
    requests: Vec<(Option<Ipv4Addr>, Option<Ipv4Addr>)>,
    acks: usize,
}

/// The fields of a client's DHCP message that the server uses.
#[derive(Debug)]
struct Message {
    message_type: DhcpMessageType,
    transaction_id: u32,
    client_hardware_address: EthernetAddress,
    requested_ip: Option<Ipv4Addr>,
    server_identifier: Option<Ipv4Addr>,
}

/// Parses a DHCP message sent to the server port out of an Ethernet frame.
fn parse_dhcp(frame: &[u8]) -> Option<Message> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    if ip.next_header() != IpProtocol::Udp {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    if udp.dst_port() != DHCP_SERVER_PORT {
        return None;
    }
    let packet = DhcpPacket::new_checked(udp.payload()).ok()?;
    let repr = DhcpRepr::parse(&packet).ok()?;
    Some(Message {
        message_type: repr.message_type,
        transaction_id: repr.transaction_id,
        client_hardware_address: repr.client_hardware_address,
        requested_ip: repr.requested_ip,
        server_identifier: repr.server_identifier,
    })
}

/// Builds the server's broadcast answer (`message_type`) to the client's `request`.
fn answer(
    server_mac: EthernetAddress,
    request: &Message,
    message_type: DhcpMessageType,
) -> Vec<u8> {
    let dhcp = DhcpRepr {
        message_type,
        transaction_id: request.transaction_id,
        secs: 0,
        client_hardware_address: request.client_hardware_address,
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: OFFERED_IP,
        server_ip: SERVER_IP,
        router: Some(ROUTER_IP),
        subnet_mask: Some(NETMASK),
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast: false,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(SERVER_IP),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: Some(LEASE_S),
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let udp = UdpRepr {
        src_port: DHCP_SERVER_PORT,
        dst_port: DHCP_CLIENT_PORT,
    };
    let ip = Ipv4Repr {
        src_addr: SERVER_IP,
        dst_addr: Ipv4Addr::BROADCAST,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + dhcp.buffer_len(),
        hop_limit: 64,
    };
    let ethernet = EthernetRepr {
        src_addr: server_mac,
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut frame = vec![0u8; ethernet.buffer_len() + ip.buffer_len() + ip.payload_len];
    let checksums = ChecksumCapabilities::default();
    let mut ethernet_frame = EthernetFrame::new_unchecked(&mut frame[..]);
    ethernet.emit(&mut ethernet_frame);
    let mut ip_packet = Ipv4Packet::new_unchecked(ethernet_frame.payload_mut());
    ip.emit(&mut ip_packet, &checksums);
    let mut udp_packet = UdpPacket::new_unchecked(ip_packet.payload_mut());
    udp.emit(
        &mut udp_packet,
        &IpAddress::Ipv4(ip.src_addr),
        &IpAddress::Ipv4(ip.dst_addr),
        dhcp.buffer_len(),
        |payload| {
            dhcp.emit(&mut DhcpPacket::new_unchecked(payload))
                .expect("DHCP answer fits")
        },
        &checksums,
    );
    frame
}

/// Answers DISCOVER with OFFER and REQUEST with ACK until `stop` is set.
fn dhcp_server(mut end: WireEnd, stop: Arc<AtomicBool>) -> Seen {
    let server_mac = EthernetAddress(end.mac_address());
    let events = end.events();
    let mut seen = Seen::default();
    let mut buffer = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let len = match end.receive(&mut buffer) {
            Ok(len) => len,
            Err(_) => {
                events.wait(Some(Instant::now() + Duration::from_millis(20)));
                continue;
            }
        };
        let Some(request) = parse_dhcp(&buffer[..len]) else {
            continue;
        };
        let reply = match request.message_type {
            DhcpMessageType::Discover => {
                seen.discovers += 1;
                DhcpMessageType::Offer
            }
            DhcpMessageType::Request => {
                seen.requests
                    .push((request.requested_ip, request.server_identifier));
                seen.acks += 1;
                DhcpMessageType::Ack
            }
            _ => continue,
        };
        let frame = answer(server_mac, &request, reply);
        end.transmit(&frame).expect("wire has room");
    }
    seen
}

fn dhcp_instance(end: WireEnd) -> (Runtime, Net) {
    let runtime = Runtime::new(HostedPal::new(end.events()));
    let config = NetConfig {
        dhcp: true,
        ..NetConfig::default()
    };
    let net = Net::new(&runtime, Box::new(end), config);
    (runtime, net)
}

#[test]
fn lease_gives_address_prefix_and_gateway() {
    libos_hosted::testing::bounded(TEST_LIMIT, || {
        let (client_end, server_end) = wire_pair();
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let stop = stop.clone();
            thread::spawn(move || dhcp_server(server_end, stop))
        };
        let (runtime, net) = dhcp_instance(client_end);
        assert_eq!(net.ipv4_address(), None);
        let leased = runtime.block_on(net.wait_for_ipv4(10 * NS_PER_SEC));
        stop.store(true, Ordering::Relaxed);
        let seen = server.join().expect("DHCP server");
        assert_eq!(leased, Ok(OFFERED_IP), "{seen:?}");
        assert_eq!(net.ipv4_address(), Some(OFFERED_IP));
        assert_eq!(net.ipv4_prefix_len(), Some(24));
        assert_eq!(net.ipv4_gateway(), Some(ROUTER_IP));
        assert!(seen.discovers >= 1, "{seen:?}");
        assert_eq!(
            seen.requests,
            vec![(Some(OFFERED_IP), Some(SERVER_IP))],
            "the client requests the offered address from the offering server"
        );
    })
}

#[test]
fn without_a_server_waiting_times_out_and_discovers_repeat() {
    libos_hosted::testing::bounded(TEST_LIMIT, || {
        let (client_end, server_end) = wire_pair();
        let (runtime, net) = dhcp_instance(client_end);
        let started = runtime.now_ns();
        let leased = runtime.block_on(net.wait_for_ipv4(2500 * NS_PER_MS));
        assert_eq!(leased, Err(Error::TimedOut));
        assert!(runtime.now_ns() - started >= 2500 * NS_PER_MS);
        assert_eq!(net.ipv4_address(), None);
        // Nobody answered: the DISCOVER was sent again within the 2.5 s.
        let mut end = server_end;
        let mut buffer = vec![0u8; 2048];
        let mut discovers = 0;
        while let Ok(len) = end.receive(&mut buffer) {
            if parse_dhcp(&buffer[..len])
                .is_some_and(|r| r.message_type == DhcpMessageType::Discover)
            {
                discovers += 1;
            }
        }
        assert!(discovers >= 2, "{discovers} DISCOVER(s)");
    })
}
