//! The unchanged iperf3 server on remote `Net`s: clients of a socket server that runs
//! on a local stack, joined by an in-process wire to a peer stack running the test
//! client.

mod common;

use std::sync::mpsc;
use std::thread;

use common::*;
use iperf::ServerStats;
use libos_core::net::wire::Geometry;
use libos_core::{channel, ClientLimits, Net, RemoteConfig, Runtime, ServerCounters, SocketServer};
use libos_hosted::wire::wire_pair;

const GEOMETRY: Geometry = Geometry {
    buffer_size: 16 * 1024,
    buffers: 32,
};

/// A remote `Net` attached to `server`; returns it with the server's id for it.
fn remote(runtime: &Runtime, server: &SocketServer) -> (Net, libos_core::ClientId) {
    let (client_end, server_end) = channel(GEOMETRY, 256);
    let id = server.attach(Box::new(server_end), ClientLimits::default());
    let net = Net::remote(runtime, Box::new(client_end), RemoteConfig::default());
    (net, id)
}

/// Runs one iperf3 server per entry of `configs` (each on its own remote `Net`) on the
/// server side, and `client` on the peer's local stack; returns the client's output,
/// each server's stats and the socket server's counters for each.
fn with_remote_servers<T: Send + 'static>(
    configs: Vec<iperf::ServerConfig>,
    client: impl AsyncFnOnce(Net) -> T + Send + 'static,
) -> (T, Vec<(ServerStats, ServerCounters)>) {
    let (peer_end, server_end) = wire_pair();
    let (ready_tx, ready_rx) = mpsc::channel();
    let peer = thread::spawn(move || {
        ready_rx.recv().unwrap();
        let (runtime, net) = instance(peer_end, CLIENT_IP);
        let output = runtime.block_on(client(net));
        runtime.block_on(runtime.sleep(20 * libos_core::NS_PER_MS));
        output
    });
    let (runtime, net) = instance(server_end, SERVER_IP);
    let sockets = SocketServer::new(&net).unwrap();
    let mut tasks = Vec::new();
    let mut ids = Vec::new();
    for config in configs {
        let (app, id) = remote(&runtime, &sockets);
        // The same code as on a local stack: bind, then serve.
        let server = iperf::Server::bind(&app, config).expect("bind");
        tasks.push(runtime.spawn(server.run()));
        ids.push(id);
    }
    // Let the Listen requests reach the server before the peer connects.
    runtime.block_on(runtime.sleep(10 * libos_core::NS_PER_MS));
    ready_tx.send(()).unwrap();
    let mut results = Vec::new();
    for (task, id) in tasks.into_iter().zip(ids) {
        let stats = runtime.block_on(task).expect("server task");
        results.push((stats, sockets.counters(id)));
    }
    (peer.join().expect("peer thread"), results)
}

#[test]
fn iperf_runs_unchanged_on_a_remote_net() {
    bounded(|| {
        let (outcomes, servers) = with_remote_servers(vec![test_config(2)], async |net| {
            let normal = run_client(
                &net,
                &Options {
                    parallel: 2,
                    ..Options::default()
                },
            )
            .await;
            let reverse = run_client(
                &net,
                &Options {
                    reverse: true,
                    seed: 2,
                    ..Options::default()
                },
            )
            .await;
            (normal, reverse)
        });
        let received = check_done(outcomes.0.unwrap(), 2);
        // What the test client received in the reverse test: every byte of it went through
        // the server's stack. (The server's own count of bytes written may be larger: the
        // test ends by aborting the data stream, which drops writes still in the link.)
        let reverse = outcomes.1.unwrap();
        let sent = match &reverse {
            common::Outcome::Done { client_bytes, .. } => *client_bytes,
            other => panic!("reverse test did not complete: {other:?}"),
        };
        check_done(reverse, 1);
        let (stats, counters) = &servers[0];
        assert_eq!(stats.completed, 2);
        assert!(counters.bytes_from_stack >= received, "{counters:?}");
        assert!(counters.bytes_to_stack >= sent, "{counters:?}");
        assert_eq!(
            (counters.malformed, counters.bad_socket, counters.bad_buffer),
            (0, 0, 0)
        );
        println!("one client: {counters:?}");
    })
}

#[test]
fn two_clients_at_once_get_similar_shares() {
    bounded(|| {
        let configs = vec![
            iperf::ServerConfig {
                port: 5201,
                ..test_config(1)
            },
            iperf::ServerConfig {
                port: 5202,
                ..test_config(1)
            },
        ];
        let (outcomes, servers) = with_remote_servers(configs, async |net| {
            let runtime = net.runtime().clone();
            let tasks: Vec<_> = [5201u16, 5202]
                .into_iter()
                .map(|port| {
                    let net = net.clone();
                    runtime.spawn(async move {
                        let options = Options {
                            port,
                            run_ms: 600,
                            seed: u64::from(port),
                            ..Options::default()
                        };
                        run_client(&net, &options).await
                    })
                })
                .collect();
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.expect("client task"));
            }
            outcomes
        });
        let mut bytes = Vec::new();
        for outcome in outcomes {
            bytes.push(check_done(outcome.unwrap(), 1));
        }
        let total: u64 = bytes.iter().sum();
        for (i, (stats, counters)) in servers.iter().enumerate() {
            assert_eq!(stats.completed, 1);
            let share = counters.bytes_from_stack as f64 / total as f64;
            println!(
                "client {i}: {} bytes, share {:.1} %, {counters:?}",
                counters.bytes_from_stack,
                share * 100.0
            );
            assert!((0.3..=0.7).contains(&share), "client {i} share {share}");
        }
    })
}

#[test]
fn the_server_listens_again_after_the_remote_stack_was_reset() {
    bounded(|| {
        let (peer_end, server_end) = wire_pair();
        let (ready_tx, ready_rx) = mpsc::channel();
        let peer = thread::spawn(move || {
            ready_rx.recv().unwrap();
            let (runtime, net) = instance(peer_end, CLIENT_IP);
            let output = runtime.block_on(run_client(&net, &Options::default()));
            runtime.block_on(runtime.sleep(20 * libos_core::NS_PER_MS));
            output
        });
        let (runtime, net) = instance(server_end, SERVER_IP);
        let sockets = SocketServer::new(&net).unwrap();
        let (app, first) = remote(&runtime, &sockets);
        let server = iperf::Server::bind(&app, test_config(1)).expect("bind");
        let task = runtime.spawn(server.run());
        runtime.block_on(runtime.sleep(10 * libos_core::NS_PER_MS));
        // The stack behind `app` restarts: its sockets are gone, and the application
        // attaches again over a fresh link.
        sockets.reset(first);
        app.link_reset();
        let (client_end, server_end) = channel(GEOMETRY, 256);
        sockets.attach(Box::new(server_end), ClientLimits::default());
        app.attach(Box::new(client_end)).unwrap();
        runtime.block_on(runtime.sleep(10 * libos_core::NS_PER_MS));
        ready_tx.send(()).unwrap();
        let stats = runtime.block_on(task).expect("server task");
        assert_eq!(stats.completed, 1, "the test after the reset was served");
        check_done(peer.join().expect("peer thread").unwrap(), 1);
    })
}
