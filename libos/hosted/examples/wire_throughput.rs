//! TCP throughput of two library OS instances on the in-process wire: the stack's own
//! CPU cost, with no device or hypervisor in the way.
//!
//! `cargo run --release -p libos-hosted --example wire_throughput -- [SECONDS] [RX_BUFFER]`
//! (defaults: 3 seconds, the library OS's default receive buffer). One thread sends,
//! the other discards; prints one line with the rate and the frames moved.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use libos_core::{Ipv4Config, Net, NetConfig, Runtime, TcpListener, TcpStream, NS_PER_SEC};
use libos_hosted::wire::{wire_pair, WireEnd};
use libos_hosted::HostedPal;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const PORT: u16 = 5001;

fn instance(end: WireEnd, ip: Ipv4Addr, rx_buffer: usize) -> (Runtime, Net) {
    let runtime = Runtime::new(HostedPal::new(end.events()));
    let config = NetConfig {
        ipv4: Some(Ipv4Config {
            address: ip,
            prefix_len: 24,
            gateway: None,
        }),
        tcp_rx_buffer: rx_buffer,
        ..NetConfig::default()
    };
    let net = Net::new(&runtime, Box::new(end), config);
    (runtime, net)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(3, |s| s.parse().expect("SECONDS"));
    let rx_buffer: usize = args.next().map_or(NetConfig::default().tcp_rx_buffer, |s| {
        s.parse().expect("RX_BUFFER")
    });
    let (a, b) = wire_pair();
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = thread::spawn(move || {
        let (runtime, net) = instance(b, SERVER_IP, rx_buffer);
        runtime.block_on(async {
            let listener = TcpListener::bind(&net, PORT, 1).expect("bind");
            ready_tx.send(()).expect("main thread waits");
            let (mut stream, _) = listener.accept().await.expect("accept");
            let started = Instant::now();
            let mut total = 0u64;
            while let Ok(n) = stream.discard(1 << 20).await {
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            let elapsed = started.elapsed().as_secs_f64();
            stream.close(NS_PER_SEC).await;
            (total, elapsed)
        })
    });
    ready_rx.recv().expect("receiver starts");
    let (runtime, net) = instance(a, CLIENT_IP, rx_buffer);
    runtime.block_on(async {
        let remote = SocketAddrV4::new(SERVER_IP, PORT);
        let mut stream = TcpStream::connect_timeout(&net, remote, 5 * NS_PER_SEC)
            .await
            .expect("connect");
        let block = vec![0x5au8; 128 * 1024];
        let until = runtime.now_ns() + seconds * NS_PER_SEC;
        while runtime.now_ns() < until {
            if stream.write_all(&block).await.is_err() {
                break;
            }
        }
        stream.close(5 * NS_PER_SEC).await;
    });
    // From accept to end of stream, as the receiver saw it.
    let (received, elapsed) = receiver.join().expect("receiver");
    let counters = net.counters();
    println!(
        "wire: {:.0} Mbit/s ({received} bytes in {elapsed:.2} s), rx buffer {rx_buffer}, client frames tx {} rx {}",
        received as f64 * 8.0 / elapsed / 1e6,
        counters.tx_frames,
        counters.rx_frames
    );
}
