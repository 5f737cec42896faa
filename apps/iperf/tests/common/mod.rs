//! A tiny iperf3 client speaking the real protocol, and helpers that run the server
//! and the client as two library OS instances joined by an in-process wire.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use iperf::protocol::{State, COOKIE_LEN, DEFAULT_PORT};
use iperf::{ServerConfig, ServerStats};
use libos_core::{Ipv4Config, Net, NetConfig, Runtime, TcpStream, NS_PER_MS, NS_PER_SEC};
use libos_hosted::wire::{wire_pair, WireEnd};
use libos_hosted::HostedPal;
use serde_json::{json, Value};

pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const SERVER: SocketAddrV4 = SocketAddrV4::new(SERVER_IP, DEFAULT_PORT);
/// Bound on any single client wait.
pub const STEP_TIMEOUT: u64 = 5 * NS_PER_SEC;
/// The server stops after this long without an open connection, so a client that
/// ends early (or is turned away) cannot leave it waiting for tests forever.
pub const SERVER_IDLE_TIMEOUT: u64 = 10 * NS_PER_SEC;

/// Runs a test body on its own thread; it fails instead of hanging after
/// [`libos_hosted::testing::TEST_LIMIT`].
pub fn bounded<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    libos_hosted::testing::bounded(libos_hosted::testing::TEST_LIMIT, body)
}

pub fn instance(end: WireEnd, ip: Ipv4Addr) -> (Runtime, Net) {
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

/// Server settings with watchdogs shrunk for tests.
pub fn test_config(max_tests: u64) -> ServerConfig {
    ServerConfig {
        max_tests: Some(max_tests),
        verbose: std::env::var_os("IPERF_TEST_VERBOSE").is_some(),
        extra_time_ns: 3 * NS_PER_SEC,
        no_data_timeout_ns: NS_PER_SEC,
        control_timeout_ns: 2 * NS_PER_SEC,
        idle_timeout_ns: Some(SERVER_IDLE_TIMEOUT),
        ..ServerConfig::default()
    }
}

/// Runs the server on its own thread until `config.max_tests` tests were served (or it
/// was idle for `config.idle_timeout_ns`), and the client side (`client`) on this
/// thread; returns the client's output and the server's stats.
pub fn with_server<T>(
    config: ServerConfig,
    client: impl AsyncFnOnce(Net) -> T,
) -> (T, ServerStats) {
    let (client_end, server_end) = wire_pair();
    let (ready_tx, ready_rx) = mpsc::channel();
    let server: JoinHandle<ServerStats> = thread::spawn(move || {
        let (runtime, net) = instance(server_end, SERVER_IP);
        // Bound before the client may connect: a SYN that arrives earlier is refused.
        let server = iperf::Server::bind(&net, config).expect("bind");
        ready_tx.send(()).unwrap();
        runtime.block_on(server.run())
    });
    ready_rx.recv().unwrap();
    let (runtime, net) = instance(client_end, CLIENT_IP);
    let output = runtime.block_on(client(net.clone()));
    // Let the client's last segments (FIN, ACKs) reach the server.
    runtime.block_on(runtime.sleep(20 * NS_PER_MS));
    let stats = server.join().expect("server thread");
    (output, stats)
}

/// A cookie from `seed`: 36 characters of `a-z2-7` and a NUL.
pub fn cookie(seed: u64) -> [u8; COOKIE_LEN] {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut cookie = [0u8; COOKIE_LEN];
    for byte in cookie.iter_mut().take(COOKIE_LEN - 1) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = ALPHABET[(state % 32) as usize];
    }
    cookie
}

/// What the test client asks for.
#[derive(Clone, Debug)]
pub struct Options {
    pub parallel: usize,
    pub reverse: bool,
    pub udp: bool,
    pub len: usize,
    /// How long data flows before the client sends TEST_END.
    pub run_ms: u64,
    pub seed: u64,
    /// Open one data connection with a wrong cookie first (expects ACCESS_DENIED).
    pub bad_data_cookie: bool,
    /// `-n`: end the test after this many bytes (sent, or received with `reverse`)
    /// instead of after `run_ms`; 0 for none.
    pub bytes: u64,
    /// `-k`: end the test after this many `len`-byte blocks; 0 for none.
    pub blocks: u64,
    /// The server's port.
    pub port: u16,
}

impl Options {
    /// The bytes after which the client ends the test, if it is limited by bytes or
    /// blocks.
    pub fn limit(&self) -> Option<u64> {
        if self.bytes > 0 {
            Some(self.bytes)
        } else if self.blocks > 0 {
            Some(self.blocks * self.len as u64)
        } else {
            None
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            parallel: 1,
            reverse: false,
            udp: false,
            len: 16 * 1024,
            run_ms: 200,
            seed: 1,
            bad_data_cookie: false,
            bytes: 0,
            blocks: 0,
            port: DEFAULT_PORT,
        }
    }
}

/// How a client run ended.
#[derive(Debug)]
pub enum Outcome {
    /// The whole exchange ran: bytes the client moved, and the server's results.
    Done { client_bytes: u64, server: Value },
    /// SERVER_ERROR with (code, errno).
    Refused(i32, i32),
    /// ACCESS_DENIED instead of PARAM_EXCHANGE.
    Denied,
}

pub async fn read_byte(runtime: &Runtime, stream: &mut TcpStream) -> Result<u8, String> {
    let mut byte = [0u8];
    match runtime
        .timeout(STEP_TIMEOUT, stream.read_exact(&mut byte))
        .await
    {
        Ok(Ok(())) => Ok(byte[0]),
        Ok(Err(e)) => Err(format!("read: {e}")),
        Err(_) => Err("read timed out".into()),
    }
}

async fn expect_state(
    runtime: &Runtime,
    stream: &mut TcpStream,
    state: State,
) -> Result<(), String> {
    let byte = read_byte(runtime, stream).await?;
    if byte == state.byte() {
        Ok(())
    } else {
        Err(format!("expected {state:?}, got {byte}"))
    }
}

async fn write_json(stream: &mut TcpStream, value: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).unwrap();
    stream
        .write_all(&(bytes.len() as u32).to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(&bytes).await.map_err(|e| e.to_string())
}

async fn read_json(net: &Net, stream: &mut TcpStream) -> Result<Value, String> {
    let mut header = [0u8; 4];
    net.runtime()
        .timeout(STEP_TIMEOUT, stream.read_exact(&mut header))
        .await
        .map_err(|_| "timeout")?
        .map_err(|e| e.to_string())?;
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    net.runtime()
        .timeout(STEP_TIMEOUT, stream.read_exact(&mut body))
        .await
        .map_err(|_| "timeout")?
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// Connects to the server (bounded).
pub async fn connect(net: &Net) -> TcpStream {
    connect_to(net, DEFAULT_PORT).await
}

/// Connects to the server's `port` (bounded).
pub async fn connect_to(net: &Net, port: u16) -> TcpStream {
    TcpStream::connect_timeout(net, SocketAddrV4::new(SERVER_IP, port), STEP_TIMEOUT)
        .await
        .expect("connect")
}

/// Runs one test against the server like the stock client does.
pub async fn run_client(net: &Net, options: &Options) -> Result<Outcome, String> {
    let runtime = net.runtime().clone();
    let cookie = cookie(options.seed);
    let mut control = connect_to(net, options.port).await;
    control.set_nodelay(true);
    control
        .write_all(&cookie)
        .await
        .map_err(|e| e.to_string())?;
    let first = read_byte(&runtime, &mut control).await?;
    if first == State::AccessDenied.byte() {
        return Ok(Outcome::Denied);
    }
    if first != State::ParamExchange.byte() {
        return Err(format!("expected PARAM_EXCHANGE, got {first}"));
    }
    // Like the stock client: a byte or block limit replaces the time limit.
    let time = if options.limit().is_some() { 0 } else { 1 };
    let mut params = json!({"omit":0,"time":time,"num":options.bytes,"blockcount":options.blocks,
        "parallel":options.parallel,"len":options.len,"pacing_timer":1000,"client_version":"3.12"});
    params[if options.udp { "udp" } else { "tcp" }] = json!(true);
    if options.reverse {
        params["reverse"] = json!(true);
    }
    write_json(&mut control, &params).await?;
    let answer = read_byte(&runtime, &mut control).await?;
    if answer == State::ServerError.byte() {
        let mut codes = [0u8; 8];
        control
            .read_exact(&mut codes)
            .await
            .map_err(|e| e.to_string())?;
        let code = i32::from_be_bytes(codes[..4].try_into().unwrap());
        let errno = i32::from_be_bytes(codes[4..].try_into().unwrap());
        return Ok(Outcome::Refused(code, errno));
    }
    if answer != State::CreateStreams.byte() {
        return Err(format!("expected CREATE_STREAMS, got {answer}"));
    }
    if options.bad_data_cookie {
        let mut intruder = connect_to(net, options.port).await;
        intruder
            .write_all(&self::cookie(options.seed + 1000))
            .await
            .map_err(|e| e.to_string())?;
        let byte = read_byte(&runtime, &mut intruder).await?;
        if byte != State::AccessDenied.byte() {
            return Err(format!("wrong cookie answered {byte}"));
        }
        // A second control connection while the test runs is denied too.
        let mut second = connect_to(net, options.port).await;
        second
            .write_all(&self::cookie(options.seed + 2000))
            .await
            .map_err(|e| e.to_string())?;
        let byte = read_byte(&runtime, &mut second).await?;
        if byte != State::AccessDenied.byte() {
            return Err(format!("second control connection answered {byte}"));
        }
    }
    let mut streams = Vec::new();
    for _ in 0..options.parallel {
        let mut stream = connect_to(net, options.port).await;
        stream.write_all(&cookie).await.map_err(|e| e.to_string())?;
        streams.push(stream);
    }
    expect_state(&runtime, &mut control, State::TestStart).await?;
    expect_state(&runtime, &mut control, State::TestRunning).await?;
    let counters: Vec<std::rc::Rc<std::cell::Cell<u64>>> =
        streams.iter().map(|_| Default::default()).collect();
    // Bytes moved on all streams, against the byte or block limit; senders reserve
    // before they write, so parallel streams never send more than the limit.
    let total: std::rc::Rc<std::cell::Cell<u64>> = Default::default();
    let reserved: std::rc::Rc<std::cell::Cell<u64>> = Default::default();
    let limit = options.limit();
    // Per stream: data has reached the server (it acknowledged some, or sent some).
    let delivered: Vec<std::rc::Rc<std::cell::Cell<bool>>> =
        streams.iter().map(|_| Default::default()).collect();
    let tasks: Vec<_> = streams
        .into_iter()
        .zip(counters.iter().cloned())
        .zip(delivered.iter().cloned())
        .map(|((mut stream, counter), delivered)| {
            let (reverse, len) = (options.reverse, options.len);
            let (total, reserved) = (total.clone(), reserved.clone());
            runtime.spawn(async move {
                let mut block = vec![0x5au8; len];
                loop {
                    // A sender stops at the limit; a receiver takes what comes.
                    let room = limit.map_or(len as u64, |l| l.saturating_sub(reserved.get()));
                    if !reverse && room == 0 {
                        // Unlike the stock client, wait until the server's stack has
                        // everything, so its count does not depend on timing.
                        if stream.flush().await.is_ok() {
                            delivered.set(true);
                        }
                        break;
                    }
                    let result = if reverse {
                        stream.read(&mut block).await
                    } else {
                        let want = (len as u64).min(room);
                        reserved.set(reserved.get() + want);
                        let result = stream.write(&block[..want as usize]).await;
                        let unsent = want - *result.as_ref().unwrap_or(&0) as u64;
                        reserved.set(reserved.get() - unsent);
                        result
                    };
                    match result {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            counter.set(counter.get() + n as u64);
                            total.set(total.get() + n as u64);
                        }
                    }
                    // Written bytes beyond those still unacknowledged reached the server.
                    if reverse || counter.get() > stream.send_queue() as u64 {
                        delivered.set(true);
                    }
                }
                stream
            })
        })
        .collect();
    match limit {
        Some(limit) => {
            // The stock client ends the test once the limit is reached.
            let deadline = runtime.now_ns() + 2 * STEP_TIMEOUT;
            let sent = || options.reverse || delivered.iter().all(|d| d.get());
            while total.get() < limit || !sent() {
                if runtime.now_ns() >= deadline {
                    return Err(format!("only {} of {limit} bytes moved", total.get()));
                }
                runtime.sleep(NS_PER_MS).await;
            }
        }
        None => {
            runtime.sleep(options.run_ms * NS_PER_MS).await;
            // On a loaded machine the run time can pass before a single byte got
            // through; end the test only once every stream moved data, so the server
            // has some to report.
            let deadline = runtime.now_ns() + STEP_TIMEOUT;
            while !delivered.iter().all(|d| d.get()) && runtime.now_ns() < deadline {
                runtime.sleep(NS_PER_MS).await;
            }
        }
    }
    for task in &tasks {
        task.abort();
    }
    control
        .write_all(&[State::TestEnd.byte()])
        .await
        .map_err(|e| e.to_string())?;
    expect_state(&runtime, &mut control, State::ExchangeResults).await?;
    let client_bytes: u64 = counters.iter().map(|c| c.get()).sum();
    let results = json!({"cpu_util_total":1.0,"cpu_util_user":1.0,"cpu_util_system":0.0,
        "sender_has_retransmits":0,"streams":[{"id":1,"bytes":client_bytes,"retransmits":0,"jitter":0,
        "errors":0,"packets":0,"start_time":0,"end_time":options.run_ms as f64 / 1000.0}]});
    write_json(&mut control, &results).await?;
    let server = read_json(net, &mut control).await?;
    expect_state(&runtime, &mut control, State::DisplayResults).await?;
    control
        .write_all(&[State::IperfDone.byte()])
        .await
        .map_err(|e| e.to_string())?;
    // The server closes the control connection after IPERF_DONE.
    let mut rest = [0u8; 16];
    match runtime.timeout(STEP_TIMEOUT, control.read(&mut rest)).await {
        Ok(Ok(0)) => {}
        other => return Err(format!("server did not close: {other:?}")),
    }
    control.close(NS_PER_SEC).await;
    Ok(Outcome::Done {
        client_bytes,
        server,
    })
}

/// Checks a completed run's server results and returns the server's byte count.
pub fn check_done(outcome: Outcome, parallel: usize) -> u64 {
    let Outcome::Done {
        client_bytes,
        server,
    } = outcome
    else {
        panic!("test did not complete: {outcome:?}")
    };
    for key in [
        "cpu_util_total",
        "cpu_util_user",
        "cpu_util_system",
        "sender_has_retransmits",
    ] {
        assert!(server[key].is_number(), "{key} missing in {server}");
    }
    let streams = server["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), parallel);
    let ids: Vec<u64> = streams.iter().map(|s| s["id"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (0..parallel as u64)
        .map(|i| if i == 0 { 1 } else { i + 2 })
        .collect();
    assert_eq!(ids, expected);
    let server_bytes: u64 = streams.iter().map(|s| s["bytes"].as_u64().unwrap()).sum();
    assert!(
        client_bytes > 0 && server_bytes > 0,
        "client {client_bytes} server {server_bytes}"
    );
    server_bytes
}
