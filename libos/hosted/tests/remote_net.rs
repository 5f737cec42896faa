//! Remote sockets: applications on remote `Net`s, served by a `SocketServer` on a local
//! stack over in-process links, talk to a peer stack on the other end of an in-process
//! wire (on its own thread).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::AtomicU32;
use std::sync::mpsc;
use std::thread;

use libos_core::net::wire::{op, Event, Geometry, Message, Request, Span, Status};
use libos_core::{
    channel, ClientLimits, Error, Ipv4Config, Link, Net, NetConfig, RemoteConfig, Runtime, ShmLink,
    Side, SocketServer, TcpListener, TcpStream, NS_PER_MS, NS_PER_SEC,
};
use libos_hosted::testing::TEST_LIMIT;
use libos_hosted::wire::{wire_pair, WireEnd};
use libos_hosted::HostedPal;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The peer accepts connections on this port.
const SINK_PORT: u16 = 9;
const GEOMETRY: Geometry = Geometry {
    buffer_size: 4096,
    buffers: 32,
};

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

/// A remote `Net` attached to `server` with `limits`.
fn remote(
    runtime: &Runtime,
    server: &SocketServer,
    limits: ClientLimits,
) -> (Net, libos_core::ClientId) {
    let (client_end, server_end) = channel(GEOMETRY, 256);
    let id = server.attach(Box::new(server_end), limits);
    let net = Net::remote(runtime, Box::new(client_end), RemoteConfig::default());
    (net, id)
}

/// A remote `Net` attached to `server` over a `ShmLink` pair in one region of `bytes`
/// bytes (leaked: a link's region lives for the rest of the program, as a mapping does).
fn remote_shm(
    runtime: &Runtime,
    server: &SocketServer,
    bytes: usize,
) -> (Net, libos_core::ClientId) {
    let region: &'static [AtomicU32] = shmring::zeroed_words(bytes / 4).collect::<Vec<_>>().leak();
    libos_core::net::shmlink::write_header(region, 0x5eed);
    let server_end =
        ShmLink::new(region, Side::Server, Box::new(|| {})).expect("a region that fits");
    let client_end =
        ShmLink::new(region, Side::Client, Box::new(|| {})).expect("a region that fits");
    let id = server.attach(Box::new(server_end), ClientLimits::default());
    let net = Net::remote(runtime, Box::new(client_end), RemoteConfig::default());
    (net, id)
}

/// Runs `peer` on a local stack on its own thread, and `body` on the server side (a
/// local stack with a socket server) on this thread; `body` sends () on `ready` once
/// its listeners are bound.
fn with_peer<P: Send + 'static, T>(
    peer: impl FnOnce(Net) -> P + Send + 'static,
    body: impl FnOnce(Runtime, Net, SocketServer, mpsc::Sender<()>) -> T,
) -> (T, P) {
    let (peer_end, server_end) = wire_pair();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        ready_rx.recv().unwrap();
        let (runtime, net) = instance(peer_end, PEER_IP);
        // Port 9 accepts connections (and keeps them until the end).
        let sink = TcpListener::bind(&net, SINK_PORT, 4).unwrap();
        let output = peer(net);
        // Keep the peer's stack answering (e.g. refusing connections) until the body
        // is done.
        runtime.block_on(async {
            let mut kept = Vec::new();
            while stop_rx.try_recv().is_err() {
                if let Ok((stream, _)) = sink.try_accept() {
                    kept.push(stream);
                }
                runtime.sleep(NS_PER_MS).await;
            }
        });
        output
    });
    let (runtime, net) = instance(server_end, SERVER_IP);
    let server = SocketServer::new(&net).unwrap();
    let output = body(runtime, net, server, ready_tx);
    let _ = stop_tx.send(());
    (output, peer.join().expect("peer thread"))
}

/// The peer: sends `payload` to `port` and reads it back.
fn echo_peer(net: Net, port: u16, payload: Vec<u8>) -> Vec<u8> {
    let runtime = net.runtime().clone();
    runtime.block_on(async {
        let remote = SocketAddrV4::new(SERVER_IP, port);
        let mut stream = TcpStream::connect_timeout(&net, remote, 5 * NS_PER_SEC)
            .await
            .expect("connect");
        let mut received = Vec::new();
        let mut sent = 0;
        let mut buffer = vec![0u8; 8192];
        while received.len() < payload.len() {
            if sent < payload.len() {
                if let Ok(n) = stream.try_write(&payload[sent..]) {
                    sent += n;
                }
            }
            match runtime.timeout(NS_PER_MS, stream.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
                Err(_) => {}
            }
        }
        stream.close(NS_PER_SEC).await;
        received
    })
}

/// Echoes one connection accepted on `listener`.
async fn echo_one(listener: &TcpListener) -> usize {
    let (mut stream, peer) = listener.accept().await.expect("accept");
    assert_eq!(*peer.ip(), PEER_IP);
    let mut buffer = vec![0u8; 16 * 1024];
    let mut echoed = 0;
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                stream.write_all(&buffer[..n]).await.expect("echo write");
                echoed += n;
            }
        }
    }
    echoed
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(seed) % 251) as u8)
        .collect()
}

#[test]
fn echo_round_trip_through_the_socket_server() {
    bounded(|| {
        let payload = pattern(300_000, 7);
        let expected = payload.clone();
        let ((echoed, counters), received) = with_peer(
            move |net| echo_peer(net, 7, payload),
            |runtime, _net, server, ready| {
                let (app, id) = remote(&runtime, &server, ClientLimits::default());
                let listener = TcpListener::bind(&app, 7, 2).unwrap();
                ready.send(()).unwrap();
                let echoed = runtime.block_on(echo_one(&listener));
                runtime.block_on(app.drain(NS_PER_SEC));
                (echoed, server.counters(id))
            },
        );
        assert_eq!(received, expected);
        assert_eq!(echoed, expected.len());
        assert_eq!(counters.bytes_to_stack, expected.len() as u64);
        assert_eq!(counters.bytes_from_stack, expected.len() as u64);
        assert_eq!(
            (counters.malformed, counters.bad_socket, counters.bad_buffer),
            (0, 0, 0)
        );
        assert!(counters.events > 0 && counters.requests > 0);
    })
}

#[test]
fn echo_round_trip_over_a_shared_memory_link() {
    bounded(|| {
        let payload = pattern(300_000, 11);
        let expected = payload.clone();
        let ((echoed, counters), received) = with_peer(
            move |net| echo_peer(net, 7, payload),
            |runtime, _net, server, ready| {
                let (app, id) = remote_shm(&runtime, &server, 512 << 10);
                let listener = TcpListener::bind(&app, 7, 2).unwrap();
                ready.send(()).unwrap();
                let echoed = runtime.block_on(echo_one(&listener));
                runtime.block_on(app.drain(NS_PER_SEC));
                (echoed, server.counters(id))
            },
        );
        assert_eq!(received, expected);
        assert_eq!(echoed, expected.len());
        assert_eq!(counters.bytes_to_stack, expected.len() as u64);
        assert_eq!(counters.bytes_from_stack, expected.len() as u64);
        assert_eq!(
            (
                counters.malformed,
                counters.bad_socket,
                counters.bad_buffer,
                counters.cut_off
            ),
            (0, 0, 0, 0)
        );
    })
}

/// Runs the runtime until `done` or 2 s.
fn run_until(runtime: &Runtime, mut done: impl FnMut() -> bool) {
    runtime.block_on(async {
        let deadline = runtime.now_ns() + 2 * NS_PER_SEC;
        while !done() && runtime.now_ns() < deadline {
            runtime.sleep(NS_PER_MS).await;
        }
    });
}

/// Pops every event waiting on a raw client end.
fn events(link: &mut impl Link) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(Some(message)) = link.pop() {
        out.push(Event::parse(&message).expect("the server sends valid events"));
    }
    out
}

fn push(link: &mut impl Link, message: Message) {
    link.push(message).unwrap();
    link.publish();
}

#[test]
fn isolation_limits_malformed_messages_and_resets() {
    bounded(|| {
        let payload = pattern(200_000, 13);
        let expected = payload.clone();
        let (outcome, received) = with_peer(
            move |net| echo_peer(net, 7, payload),
            |runtime, _net, server, ready| {
                // Client A: a well-behaved echo server on port 7, at most 3 sockets.
                let limits = ClientLimits {
                    max_sockets: 3,
                    ..ClientLimits::default()
                };
                let (app, a) = remote(&runtime, &server, limits.clone());
                let listener = std::rc::Rc::new(TcpListener::bind(&app, 7, 2).unwrap());
                // Client B: raw messages, ports 9000-9001 only, 2 sockets.
                let (mut raw, server_end) = channel(GEOMETRY, 64);
                let b = server.attach(
                    Box::new(server_end),
                    ClientLimits {
                        max_sockets: 2,
                        ports: 9000..=9001,
                        ..ClientLimits::default()
                    },
                );
                ready.send(()).unwrap();
                let echo = runtime.spawn({
                    let listener = listener.clone();
                    async move { echo_one(&listener).await }
                });
                // Wait until A's connection is accepted and echoing.
                run_until(&runtime, || server.socket_count(a) == 2);
                assert_eq!(server.socket_count(a), 2, "listener + accepted stream");

                // B names A's accepted connection (server ids start at 0x8000_0001) and
                // A's listener (id 1): errors, never access.
                for socket in [0x8000_0001u32, 1] {
                    push(&mut raw, Request::Close { socket }.encode());
                    push(&mut raw, Request::Shutdown { socket }.encode());
                }
                // A write on a buffer of B's own area, for A's connection: the buffer
                // comes back, with an error.
                raw.write_out(0, b"intrusion").unwrap();
                let span = Span { offset: 0, len: 9 };
                push(
                    &mut raw,
                    Request::Write {
                        socket: 0x8000_0001,
                        span,
                    }
                    .encode(),
                );
                // Malformed: unknown op, bad arguments, spans outside the area or not a
                // buffer's start, a release of a buffer B does not hold.
                push(
                    &mut raw,
                    Message {
                        op: 0x77,
                        ..Message::default()
                    },
                );
                push(
                    &mut raw,
                    Message {
                        op: op::NO_DELAY,
                        socket: 5,
                        args: [9, 0],
                        ..Message::default()
                    },
                );
                for span in [
                    Span {
                        offset: GEOMETRY.buffer_size * GEOMETRY.buffers,
                        len: 1,
                    },
                    Span { offset: 5, len: 1 },
                    Span {
                        offset: 0,
                        len: GEOMETRY.buffer_size + 1,
                    },
                ] {
                    push(&mut raw, Request::Write { socket: 1, span }.encode());
                }
                push(
                    &mut raw,
                    Request::Release {
                        span: Span { offset: 0, len: 0 },
                    }
                    .encode(),
                );
                // Limits: a port outside B's range, then more sockets than allowed.
                push(
                    &mut raw,
                    Request::Listen {
                        socket: 10,
                        port: 7,
                        backlog: 1,
                    }
                    .encode(),
                );
                push(
                    &mut raw,
                    Request::Listen {
                        socket: 11,
                        port: 9000,
                        backlog: 2,
                    }
                    .encode(),
                );
                push(
                    &mut raw,
                    Request::Listen {
                        socket: 12,
                        port: 9001,
                        backlog: 1,
                    }
                    .encode(),
                );
                let peer = SocketAddrV4::new(PEER_IP, 9);
                push(
                    &mut raw,
                    Request::Connect {
                        socket: 13,
                        remote: peer,
                    }
                    .encode(),
                );
                run_until(&runtime, || server.counters(b).refused >= 3);
                let got = events(&mut raw);
                let failed = |op_wanted: u16, status: Status| {
                    got.iter()
                        .filter(|e| matches!(e, Event::Failed { op, status: s, .. } if *op == op_wanted && *s == status))
                        .count()
                };
                assert_eq!(failed(op::CLOSE, Status::BadSocket), 2, "{got:?}");
                assert_eq!(failed(op::SHUTDOWN, Status::BadSocket), 2, "{got:?}");
                assert_eq!(failed(op::WRITE, Status::BadSocket), 1, "{got:?}");
                assert!(got.contains(&Event::Released {
                    socket: 0x8000_0001,
                    span
                }));
                assert_eq!(failed(0x77, Status::BadMessage), 1, "{got:?}");
                assert_eq!(failed(op::NO_DELAY, Status::BadMessage), 1, "{got:?}");
                assert_eq!(
                    failed(op::LISTEN, Status::AddressInUse),
                    1,
                    "port 7 is A's range only"
                );
                assert_eq!(failed(op::LISTEN, Status::Limit), 1, "{got:?}");
                assert_eq!(failed(op::CONNECT, Status::Limit), 1, "{got:?}");
                let counters_b = server.counters(b);
                assert_eq!(counters_b.bad_socket, 5);
                assert_eq!(counters_b.malformed, 2);
                assert_eq!(counters_b.bad_buffer, 4);
                assert_eq!(counters_b.refused, 3);
                assert_eq!(server.socket_count(b), 1, "only the listener on 9000");

                // A's connection is unaffected: the echo completes.
                let echoed = runtime.block_on(echo);
                let counters_a = server.counters(a);

                // A at its limit (3): its first listener holds 2 and a second listener 1, so
                // its connect is refused by the server, while client C still connects.
                run_until(&runtime, || server.socket_count(a) == 1);
                let second = TcpListener::bind(&app, 8, 1).unwrap();
                let sink = SocketAddrV4::new(PEER_IP, SINK_PORT);
                let refused = runtime.block_on(TcpStream::connect_timeout(&app, sink, NS_PER_SEC));
                assert_eq!(refused.err(), Some(Error::OutOfMemory));
                let (other, c) = remote(&runtime, &server, ClientLimits::default());
                let reached =
                    runtime.block_on(TcpStream::connect_timeout(&other, sink, 2 * NS_PER_SEC));
                let reached = reached.expect("client C connects");
                assert_eq!(reached.peer_addr(), Some(sink));
                assert_eq!(server.counters(c).refused, 0);
                assert_eq!(server.counters(a).refused, 1);
                drop(second);

                // B corrupts its ring: cut off, its listener aborted; A keeps serving.
                raw.corrupt_outgoing();
                run_until(&runtime, || !server.is_attached(b));
                (
                    echoed,
                    counters_a,
                    server.counters(b),
                    server.socket_count(b),
                    server.is_attached(a),
                )
            },
        );
        let (echoed, counters_a, counters_b, sockets_b, a_attached) = outcome;
        assert_eq!(received, expected);
        assert_eq!(echoed, Some(expected.len()));
        assert_eq!(
            (
                counters_a.malformed,
                counters_a.bad_socket,
                counters_a.bad_buffer
            ),
            (0, 0, 0)
        );
        assert_eq!(counters_b.cut_off, 1);
        assert_eq!(sockets_b, 0);
        assert!(a_attached);
    })
}

/// Waits (keeping `runtime` turning) for a message on `rx`.
async fn recv_turning<T>(runtime: &Runtime, rx: &mpsc::Receiver<T>) -> T {
    loop {
        if let Ok(value) = rx.try_recv() {
            return value;
        }
        runtime.sleep(NS_PER_MS).await;
    }
}

/// Writes `len` bytes on `stream` and checks they come back.
async fn echo_check(stream: &mut TcpStream, len: usize, seed: u32) {
    let data = pattern(len, seed);
    stream.write_all(&data).await.expect("write");
    let mut back = vec![0u8; len];
    stream.read_exact(&mut back).await.expect("read back");
    assert_eq!(back, data);
}

/// Serves echo connections on `listener` until the task is dropped; returns the error
/// that ended the last one, if any.
async fn echo_all(listener: TcpListener) -> Option<Error> {
    let mut last = None;
    while let Ok((mut stream, _)) = listener.accept().await {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => break,
                Err(e) => {
                    last = Some(e);
                    break;
                }
                Ok(n) => {
                    if let Err(e) = stream.write_all(&buffer[..n]).await {
                        last = Some(e);
                        break;
                    }
                }
            }
        }
    }
    last.or(Some(Error::ConnectionReset))
}

#[test]
fn a_link_reset_aborts_one_clients_sockets_and_the_other_keeps_going() {
    bounded(|| {
        let (to_server, from_peer) = mpsc::channel::<()>();
        let (to_peer, from_server) = mpsc::channel::<()>();
        let (server_side, peer_side) = with_peer(
            move |net| {
                let runtime = net.runtime().clone();
                runtime.block_on(async {
                    let at = |port| SocketAddrV4::new(SERVER_IP, port);
                    let mut a = TcpStream::connect_timeout(&net, at(7), 5 * NS_PER_SEC)
                        .await
                        .unwrap();
                    let mut b = TcpStream::connect_timeout(&net, at(8), 5 * NS_PER_SEC)
                        .await
                        .unwrap();
                    echo_check(&mut a, 1000, 3).await;
                    echo_check(&mut b, 1000, 5).await;
                    to_server.send(()).unwrap();
                    recv_turning(&runtime, &from_server).await;
                    // A's connection was reset by the server; B's still echoes.
                    let mut byte = [0u8; 1];
                    let a_read = runtime.timeout(2 * NS_PER_SEC, a.read(&mut byte)).await;
                    echo_check(&mut b, 100_000, 11).await;
                    to_server.send(()).unwrap();
                    recv_turning(&runtime, &from_server).await;
                    // A attached again: a new listener serves.
                    let mut again = TcpStream::connect_timeout(&net, at(7), 5 * NS_PER_SEC)
                        .await
                        .unwrap();
                    echo_check(&mut again, 1000, 17).await;
                    drop(again);
                    drop(b);
                    a_read
                })
            },
            move |runtime, _net, server, ready| {
                let (app_a, a) = remote(&runtime, &server, ClientLimits::default());
                let (app_b, b) = remote(&runtime, &server, ClientLimits::default());
                let echo_a = runtime.spawn(echo_all(TcpListener::bind(&app_a, 7, 2).unwrap()));
                let _echo_b = runtime.spawn(echo_all(TcpListener::bind(&app_b, 8, 2).unwrap()));
                ready.send(()).unwrap();
                runtime.block_on(recv_turning(&runtime, &from_peer));
                // A's component restarts: the server and the client each learn the
                // link is gone.
                server.reset(a);
                app_a.link_reset();
                let a_error = runtime.block_on(echo_a);
                let sockets_after_reset = server.socket_count(a);
                let bind_while_detached = TcpListener::bind(&app_a, 7, 2).err();
                to_peer.send(()).unwrap();
                runtime.block_on(recv_turning(&runtime, &from_peer));
                // A fresh link for A starts clean.
                let (client_end, server_end) = channel(GEOMETRY, 256);
                server.reattach(a, Box::new(server_end));
                app_a.attach(Box::new(client_end)).unwrap();
                let _echo_a = runtime.spawn(echo_all(TcpListener::bind(&app_a, 7, 2).unwrap()));
                runtime.block_on(runtime.sleep(10 * NS_PER_MS));
                to_peer.send(()).unwrap();
                runtime.block_on(runtime.sleep(300 * NS_PER_MS));
                (
                    a_error,
                    sockets_after_reset,
                    bind_while_detached,
                    server.counters(b),
                    app_a.remote_counters().unwrap().link_resets,
                )
            },
        );
        let (a_error, sockets_after_reset, bind_while_detached, counters_b, link_resets) =
            server_side;
        assert_eq!(a_error, Some(Some(Error::ConnectionReset)));
        assert_eq!(sockets_after_reset, 0);
        assert_eq!(bind_while_detached, Some(Error::ConnectionReset));
        assert!(
            matches!(peer_side, Ok(Err(Error::ConnectionReset)) | Ok(Ok(0))),
            "the peer sees A's connection end: {peer_side:?}"
        );
        assert!(counters_b.bytes_from_stack >= 101_000);
        assert_eq!(link_resets, 1, "one link lost");
    })
}

#[test]
fn a_client_counts_and_drops_events_it_did_not_ask_for() {
    bounded(|| {
        let runtime = Runtime::new(HostedPal::without_events());
        let (client_end, mut raw_server) = channel(GEOMETRY, 64);
        let net = Net::remote(&runtime, Box::new(client_end), RemoteConfig::default());
        let listener = TcpListener::bind(&net, 7, 1).unwrap();
        let outside = GEOMETRY.buffer_size * GEOMETRY.buffers;
        let bad = [
            Message {
                op: 0x1ff,
                ..Message::default()
            },
            Event::Data {
                socket: 1,
                span: Span {
                    offset: outside,
                    len: 1,
                },
            }
            .encode(),
            Event::Released {
                socket: 1,
                span: Span { offset: 0, len: 1 },
            }
            .encode(),
            // An accepted id without the server's bit could clash with the client's.
            Event::Accepted {
                socket: 1,
                listener: 1,
                peer: SocketAddrV4::new(PEER_IP, 1),
                local_port: 7,
            }
            .encode(),
        ];
        for message in bad {
            push(&mut raw_server, message);
        }
        run_until(&runtime, || {
            net.remote_counters().unwrap().bad_events >= bad.len() as u64
        });
        assert_eq!(net.remote_counters().unwrap().bad_events, bad.len() as u64);
        assert_eq!(listener.try_accept().err(), Some(Error::WouldBlock));
        // The listener's request reached the server end intact.
        let request = Request::parse(&raw_server.pop().unwrap().unwrap()).unwrap();
        assert_eq!(
            request,
            Request::Listen {
                socket: 1,
                port: 7,
                backlog: 1
            }
        );
    })
}
