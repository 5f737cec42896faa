//! The iperf3 server against a test client speaking the real protocol, both on the
//! hosted library OS joined by an in-process wire.

mod common;

use common::*;
use iperf::protocol::{State, ERROR_UNIMPLEMENTED};
use libos_core::{NS_PER_MS, NS_PER_SEC};

#[test]
fn normal_test_one_stream() {
    bounded(|| {
        let (outcome, stats) = with_server(test_config(1), async |net| {
            run_client(&net, &Options::default()).await
        });
        let server_bytes = check_done(outcome.unwrap(), 1);
        assert!(server_bytes > 100_000, "only {server_bytes} bytes");
        assert_eq!(stats.completed, 1);
    })
}

#[test]
fn normal_test_four_streams() {
    bounded(|| {
        let options = Options {
            parallel: 4,
            ..Options::default()
        };
        let (outcome, stats) =
            with_server(test_config(1), async |net| run_client(&net, &options).await);
        check_done(outcome.unwrap(), 4);
        assert_eq!(stats.completed, 1);
    })
}

#[test]
fn reverse_test() {
    bounded(|| {
        let options = Options {
            parallel: 2,
            reverse: true,
            ..Options::default()
        };
        let (outcome, stats) =
            with_server(test_config(1), async |net| run_client(&net, &options).await);
        let outcome = outcome.unwrap();
        if let Outcome::Done { server, .. } = &outcome {
            assert_eq!(server["sender_has_retransmits"].as_i64(), Some(0));
        }
        check_done(outcome, 2);
        assert_eq!(stats.completed, 1);
    })
}

#[test]
fn udp_is_refused_then_a_normal_test_succeeds() {
    bounded(|| {
        let (outcomes, stats) = with_server(test_config(2), async |net| {
            let udp = run_client(
                &net,
                &Options {
                    udp: true,
                    ..Options::default()
                },
            )
            .await;
            let tcp = run_client(
                &net,
                &Options {
                    seed: 2,
                    ..Options::default()
                },
            )
            .await;
            (udp, tcp)
        });
        assert!(
            matches!(outcomes.0, Ok(Outcome::Refused(ERROR_UNIMPLEMENTED, 0))),
            "{:?}",
            outcomes.0
        );
        check_done(outcomes.1.unwrap(), 1);
        assert_eq!((stats.refused, stats.completed), (1, 1));
    })
}

#[test]
fn garbage_and_early_close_then_a_normal_test_succeeds() {
    bounded(|| {
        let (outcome, stats) = with_server(test_config(6), async |net| {
            let runtime = net.runtime().clone();
            // Random bytes instead of a cookie: denied and closed.
            let mut stream = connect(&net).await;
            let noise: Vec<u8> = (0..200u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            stream.write_all(&noise).await.unwrap();
            let _ = read_byte(&runtime, &mut stream).await;
            stream.close(NS_PER_SEC).await;
            // A cookie, then an oversize JSON length.
            let mut stream = connect(&net).await;
            stream.write_all(&cookie(7)).await.unwrap();
            assert_eq!(
                read_byte(&runtime, &mut stream).await,
                Ok(State::ParamExchange.byte())
            );
            stream.write_all(&[0, 0, 0x20, 0x01]).await.unwrap();
            assert!(
                read_byte(&runtime, &mut stream).await.is_err(),
                "server should close"
            );
            // A cookie, then malformed JSON.
            let mut stream = connect(&net).await;
            stream.write_all(&cookie(8)).await.unwrap();
            assert_eq!(
                read_byte(&runtime, &mut stream).await,
                Ok(State::ParamExchange.byte())
            );
            stream.write_all(&[0, 0, 0, 5]).await.unwrap();
            stream.write_all(b"{\"tc").await.unwrap();
            stream.write_all(b"}").await.unwrap();
            assert!(
                read_byte(&runtime, &mut stream).await.is_err(),
                "server should close"
            );
            // Early close in the middle of the cookie.
            let mut stream = connect(&net).await;
            stream.write_all(&cookie(9)[..10]).await.unwrap();
            stream.close(NS_PER_SEC).await;
            // Half-open: a cookie and then silence; the control timeout ends it.
            let mut stream = connect(&net).await;
            stream.write_all(&cookie(10)).await.unwrap();
            assert_eq!(
                read_byte(&runtime, &mut stream).await,
                Ok(State::ParamExchange.byte())
            );
            let mut rest = [0u8; 4];
            let closed = runtime
                .timeout(4 * NS_PER_SEC, stream.read(&mut rest))
                .await;
            assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
            run_client(
                &net,
                &Options {
                    seed: 11,
                    ..Options::default()
                },
            )
            .await
        });
        check_done(outcome.unwrap(), 1);
        assert_eq!(stats.completed, 1);
        assert_eq!(stats.failed, 5);
    })
}

#[test]
fn twenty_back_to_back_tests() {
    bounded(|| {
        let (outcomes, stats) = with_server(test_config(20), async |net| {
            let mut outcomes = Vec::new();
            for seed in 0..20 {
                let options = Options {
                    seed: 100 + seed,
                    run_ms: 20,
                    parallel: 1 + (seed as usize % 3),
                    ..Options::default()
                };
                outcomes.push((options.parallel, run_client(&net, &options).await));
            }
            outcomes
        });
        for (parallel, outcome) in outcomes {
            check_done(outcome.unwrap(), parallel);
        }
        assert_eq!(stats.completed, 20);
    })
}

#[test]
fn wrong_data_cookie_and_second_control_connection_are_denied() {
    bounded(|| {
        let options = Options {
            bad_data_cookie: true,
            parallel: 2,
            ..Options::default()
        };
        let (outcome, stats) =
            with_server(test_config(1), async |net| run_client(&net, &options).await);
        check_done(outcome.unwrap(), 2);
        assert_eq!((stats.completed, stats.denied), (1, 2));
    })
}

#[test]
fn no_data_watchdog_ends_a_stalled_test() {
    bounded(|| {
        let (closed, stats) = with_server(test_config(2), async |net| {
            let runtime = net.runtime().clone();
            let mut control = connect(&net).await;
            control.write_all(&cookie(50)).await.unwrap();
            assert_eq!(
                read_byte(&runtime, &mut control).await,
                Ok(State::ParamExchange.byte())
            );
            let params = br#"{"tcp":true,"time":1,"parallel":1,"len":1000}"#;
            control
                .write_all(&(params.len() as u32).to_be_bytes())
                .await
                .unwrap();
            control.write_all(params).await.unwrap();
            assert_eq!(
                read_byte(&runtime, &mut control).await,
                Ok(State::CreateStreams.byte())
            );
            let mut data = connect(&net).await;
            data.write_all(&cookie(50)).await.unwrap();
            assert_eq!(
                read_byte(&runtime, &mut control).await,
                Ok(State::TestStart.byte())
            );
            assert_eq!(
                read_byte(&runtime, &mut control).await,
                Ok(State::TestRunning.byte())
            );
            // Send nothing: the server gives up after the no-data timeout (1 s here).
            let started = runtime.now_ns();
            let mut rest = [0u8; 4];
            let closed = runtime
                .timeout(4 * NS_PER_SEC, control.read(&mut rest))
                .await;
            let waited = runtime.now_ns() - started;
            drop(data);
            let next = run_client(
                &net,
                &Options {
                    seed: 51,
                    ..Options::default()
                },
            )
            .await;
            (closed, waited, next)
        });
        assert!(matches!(closed.0, Ok(Ok(0)) | Ok(Err(_))), "{:?}", closed.0);
        assert!(
            closed.1 >= 900 * NS_PER_MS,
            "closed after {} ms",
            closed.1 / NS_PER_MS
        );
        check_done(closed.2.unwrap(), 1);
        assert_eq!((stats.failed, stats.completed), (1, 1));
    })
}

#[test]
fn byte_and_block_limited_tests_complete() {
    bounded(|| {
        let runs = [
            Options {
                parallel: 2,
                bytes: 300_000,
                seed: 60,
                ..Options::default()
            },
            Options {
                parallel: 2,
                reverse: true,
                bytes: 300_001,
                seed: 61,
                ..Options::default()
            },
            Options {
                reverse: true,
                blocks: 5,
                len: 10_000,
                seed: 62,
                ..Options::default()
            },
            Options {
                blocks: 7,
                len: 10_000,
                seed: 63,
                ..Options::default()
            },
        ];
        let expected = runs.clone();
        let (outcomes, stats) = with_server(test_config(runs.len() as u64), async |net| {
            let mut outcomes = Vec::new();
            for options in &runs {
                outcomes.push(run_client(&net, options).await);
            }
            outcomes
        });
        for (options, outcome) in expected.iter().zip(outcomes) {
            let limit = options.limit().unwrap();
            let outcome = outcome.unwrap_or_else(|e| panic!("{options:?}: {e}"));
            let Outcome::Done { client_bytes, .. } = &outcome else {
                panic!("{options:?}: {outcome:?}")
            };
            // The client moved exactly its limit: a sender stops there, and a reverse
            // server sends no more than the client asked for. A receiving server
            // counts everything that reached it before TEST_END, read or not yet
            // (this client sends TEST_END once the server's stack acknowledged all).
            assert_eq!(*client_bytes, limit, "{options:?}");
            let server_bytes = check_done(outcome, options.parallel);
            assert_eq!(server_bytes, limit, "{options:?}");
        }
        assert_eq!(stats.completed, expected.len() as u64);
    })
}
