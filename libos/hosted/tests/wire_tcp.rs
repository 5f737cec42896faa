//! Two library OS instances on one in-process wire, each on its own thread.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc;
use std::thread;

use libos_core::{Error, Ipv4Config, Net, NetConfig, Runtime, TcpListener, TcpStream, NS_PER_SEC};
use libos_hosted::testing::TEST_LIMIT;
use libos_hosted::wire::{wire_pair, WireEnd};
use libos_hosted::HostedPal;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// Runs a test body on its own thread; it fails instead of hanging after [`TEST_LIMIT`].
fn bounded<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    libos_hosted::testing::bounded(TEST_LIMIT, body)
}

fn instance(end: WireEnd, ip: Ipv4Addr) -> (Runtime, Net) {
    let runtime = Runtime::new(HostedPal::new(end.events()));
    let config = NetConfig {
        ipv4: Some(Ipv4Config {
            address: ip,
            prefix_len: 24,
            gateway: None,
        }),
        ..NetConfig::default()
    };
    let net = Net::new(&runtime, Box::new(end), config);
    (runtime, net)
}

#[test]
fn echo_and_backlog_burst() {
    bounded(|| {
        let (a, b) = wire_pair();
        let (ready_tx, ready_rx) = mpsc::channel();
        let server = thread::spawn(move || {
            let (runtime, net) = instance(b, SERVER_IP);
            runtime.block_on(async {
                let listener = TcpListener::bind(&net, 7, 4).unwrap();
                ready_tx.send(()).unwrap();
                let mut served = 0;
                while served < 4 {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    served += 1;
                    net.runtime().spawn(async move {
                        let mut buffer = [0u8; 4096];
                        loop {
                            match stream.read(&mut buffer).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => stream.write_all(&buffer[..n]).await.unwrap(),
                            }
                        }
                        stream.close(NS_PER_SEC).await;
                    });
                }
                net.runtime().run();
                net.counters()
            })
        });
        ready_rx.recv().unwrap();
        let (runtime, net) = instance(a, CLIENT_IP);
        runtime.block_on(async {
            let remote = SocketAddrV4::new(SERVER_IP, 7);
            // A burst of connects succeeds thanks to the backlog.
            let mut streams = Vec::new();
            for _ in 0..4 {
                streams.push(
                    TcpStream::connect_timeout(&net, remote, 5 * NS_PER_SEC)
                        .await
                        .unwrap(),
                );
            }
            let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
            for stream in streams.iter_mut() {
                let mut writer_done = false;
                let mut received = Vec::new();
                let mut sent = 0;
                let mut buffer = [0u8; 8192];
                while received.len() < payload.len() {
                    if !writer_done {
                        match stream.try_write(&payload[sent..]) {
                            Ok(n) => {
                                sent += n;
                                writer_done = sent == payload.len();
                            }
                            Err(Error::WouldBlock) => {}
                            Err(e) => panic!("write: {e}"),
                        }
                    }
                    match stream.try_read(&mut buffer) {
                        Ok(0) => panic!("early eof"),
                        Ok(n) => received.extend_from_slice(&buffer[..n]),
                        Err(Error::WouldBlock) => libos_core::yield_now().await,
                        Err(e) => panic!("read: {e}"),
                    }
                }
                assert_eq!(received, payload);
            }
            for stream in streams {
                stream.close(2 * NS_PER_SEC).await;
            }
        });
        let counters = server.join().unwrap();
        assert!(counters.rx_frames > 100 && counters.tx_frames > 100);
        assert_eq!(counters.rx_malformed, 0);
    })
}

#[test]
fn connect_to_closed_port_is_refused_and_timeouts_fire() {
    bounded(|| {
        let (a, b) = wire_pair();
        let server = thread::spawn(move || {
            let (runtime, net) = instance(b, SERVER_IP);
            runtime.block_on(runtime.sleep(NS_PER_SEC));
            net.counters()
        });
        let (runtime, net) = instance(a, CLIENT_IP);
        runtime.block_on(async {
            let refused =
                TcpStream::connect_timeout(&net, SocketAddrV4::new(SERVER_IP, 9), 2 * NS_PER_SEC)
                    .await;
            assert_eq!(refused.err(), Some(Error::ConnectionRefused));
            let unreachable = TcpStream::connect_timeout(
                &net,
                SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 99), 9),
                NS_PER_SEC / 5,
            )
            .await;
            assert_eq!(unreachable.err(), Some(Error::TimedOut));
        });
        server.join().unwrap();
    })
}

#[test]
fn dropped_stream_with_unread_data_still_closes() {
    bounded(|| {
        let (a, b) = wire_pair();
        let (ready_tx, ready_rx) = mpsc::channel();
        let server = thread::spawn(move || {
            let (runtime, net) = instance(b, SERVER_IP);
            runtime.block_on(async {
                let listener = TcpListener::bind(&net, 7, 1).unwrap();
                ready_tx.send(()).unwrap();
                let (stream, _) = listener.accept().await.unwrap();
                // Dropped unread: closed in the background while the peer still sends.
                drop(stream);
                // Below the orphan linger (10 s), after which it would be aborted.
                net.drain(8 * NS_PER_SEC).await;
                net.closing_count()
            })
        });
        ready_rx.recv().unwrap();
        let (runtime, net) = instance(a, CLIENT_IP);
        let sent = runtime.block_on(async {
            let remote = SocketAddrV4::new(SERVER_IP, 7);
            let mut stream = TcpStream::connect_timeout(&net, remote, 5 * NS_PER_SEC)
                .await
                .unwrap();
            // More than the receive window: only goes through if the orphan keeps reading.
            let payload = vec![0x5au8; 4 * libos_core::DEFAULT_TCP_RX_BUFFER];
            let sent = runtime
                .timeout(3 * NS_PER_SEC, stream.write_all(&payload))
                .await;
            // Generous on a loaded machine: a close that times out aborts, and the reset
            // would only go out on a poll that never comes once this block ends.
            stream.close(5 * NS_PER_SEC).await;
            sent
        });
        assert_eq!(sent, Ok(Ok(())), "the orphan stopped reading");
        assert_eq!(
            server.join().unwrap(),
            0,
            "the orphan never finished closing"
        );
    })
}

/// A receive buffer above 64 KiB scales the window; a reader that falls behind and
/// takes odd-sized chunks keeps the window near zero and its right edge moving by
/// amounts that are no multiple of the scale unit. smoltcp 0.12 panicked here (its issue
/// 1048); every byte must arrive intact.
#[test]
fn scaled_window_survives_a_slow_odd_sized_reader() {
    const TOTAL: usize = 3 * 1024 * 1024;
    fn byte_at(i: usize) -> u8 {
        (i % 253) as u8
    }
    bounded(|| {
        let (a, b) = wire_pair();
        let (ready_tx, ready_rx) = mpsc::channel();
        let server = thread::spawn(move || {
            let (runtime, net) = instance(b, SERVER_IP);
            runtime.block_on(async {
                let listener = TcpListener::bind(&net, 7, 1).unwrap();
                ready_tx.send(()).unwrap();
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut received = 0usize;
                let mut buffer = [0u8; 4099];
                let mut round = 0usize;
                loop {
                    // Chunks of 1..=4099 bytes, a pause now and then: the window fills.
                    round += 1;
                    let want = 1 + (round * 997) % buffer.len();
                    match stream.read(&mut buffer[..want]).await {
                        Ok(0) => break,
                        Ok(n) => {
                            for (k, &byte) in buffer[..n].iter().enumerate() {
                                assert_eq!(byte, byte_at(received + k), "byte {}", received + k);
                            }
                            received += n;
                        }
                        Err(e) => panic!("read: {e}"),
                    }
                    if round.is_multiple_of(4) {
                        net.runtime().sleep(NS_PER_SEC / 1000).await;
                    }
                }
                stream.close(NS_PER_SEC).await;
                received
            })
        });
        ready_rx.recv().unwrap();
        let (runtime, net) = instance(a, CLIENT_IP);
        runtime.block_on(async {
            let remote = SocketAddrV4::new(SERVER_IP, 7);
            let mut stream = TcpStream::connect_timeout(&net, remote, 5 * NS_PER_SEC)
                .await
                .unwrap();
            let payload: Vec<u8> = (0..TOTAL).map(byte_at).collect();
            // Odd-sized writes, so segments end at odd offsets too.
            for chunk in payload.chunks(7919) {
                stream.write_all(chunk).await.unwrap();
            }
            stream.close(10 * NS_PER_SEC).await;
        });
        assert_eq!(server.join().unwrap(), TOTAL);
    })
}

#[test]
fn malformed_frames_are_counted_and_dropped() {
    bounded(|| {
        let (a, b) = wire_pair();
        let injector = b.injector();
        drop(a);
        let (runtime, net) = instance(b, SERVER_IP);
        injector.inject(&[1, 2, 3]).unwrap();
        let mut bad_ipv4 = vec![0u8; 60];
        bad_ipv4[12] = 0x08;
        injector.inject(&bad_ipv4).unwrap();
        injector.inject(&vec![0u8; 4000]).unwrap();
        runtime.block_on(runtime.sleep(NS_PER_SEC / 100));
        assert_eq!(net.counters().rx_malformed, 3);
        assert_eq!(net.counters().rx_frames, 0);
    })
}

#[test]
fn the_socket_limit_refuses_the_excess_and_recovers() {
    bounded(|| {
        let (a, b) = wire_pair();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (accepted_tx, accepted_rx) = mpsc::channel::<usize>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let server = thread::spawn(move || {
            let runtime = Runtime::new(HostedPal::new(b.events()));
            let config = NetConfig {
                ipv4: Some(Ipv4Config {
                    address: SERVER_IP,
                    prefix_len: 24,
                    gateway: None,
                }),
                max_tcp_sockets: 3,
                ..NetConfig::default()
            };
            assert_eq!(config.tcp_sockets_within(10 << 20), 19);
            let net = Net::new(&runtime, Box::new(b), config);
            runtime.block_on(async {
                let listener = TcpListener::bind(&net, 9, 2).unwrap();
                // The limit leaves room for two more listening sockets, not for ten.
                assert_eq!(listener.set_backlog(10), Err(Error::OutOfMemory));
                ready_tx.send(()).unwrap();
                // Hold what arrives; at three sockets in all no listening socket is left.
                let mut held = Vec::new();
                while held.len() < 3 {
                    let (stream, _) = listener.accept().await.unwrap();
                    held.push(stream);
                    accepted_tx.send(held.len()).unwrap();
                }
                // Let them all go when the client says: the backlog refills and serves one
                // more.
                while release_rx.try_recv().is_err() {
                    net.runtime().sleep(10_000_000).await;
                }
                for s in held.drain(..) {
                    s.abort();
                }
                let (stream, _) = listener.accept().await.unwrap();
                accepted_tx.send(4).unwrap();
                drop(stream);
                net.runtime().run();
            })
        });
        ready_rx.recv().unwrap();
        let (runtime, net) = instance(a, CLIENT_IP);
        runtime.block_on(async {
            let remote = SocketAddrV4::new(SERVER_IP, 9);
            let mut streams = Vec::new();
            for _ in 0..3 {
                streams.push(
                    TcpStream::connect_timeout(&net, remote, 5 * NS_PER_SEC)
                        .await
                        .unwrap(),
                );
            }
            // Let the server take all three; the next attempt finds no listening socket.
            let mut n = 0;
            while n < 3 {
                n = accepted_rx.recv().unwrap();
            }
            let refused = TcpStream::connect_timeout(&net, remote, 5 * NS_PER_SEC).await;
            assert_eq!(refused.err(), Some(Error::ConnectionRefused));
            release_tx.send(()).unwrap();
            drop(streams);
            // Once the server let its sockets go, connecting works again.
            let mut again = None;
            for _ in 0..50 {
                match TcpStream::connect_timeout(&net, remote, NS_PER_SEC).await {
                    Ok(s) => {
                        again = Some(s);
                        break;
                    }
                    Err(_) => net.runtime().sleep(100_000_000).await,
                }
            }
            assert!(again.is_some(), "no connection after the limit freed up");
            assert_eq!(accepted_rx.recv().unwrap(), 4);
        });
        drop(server);
    });
}
