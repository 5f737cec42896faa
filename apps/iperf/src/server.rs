//! The iperf3 server: accepts control and data connections on one port and runs one
//! test at a time, test after test.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::future::poll_fn;
use core::task::{Poll, Waker};

use libos_core::{select, Either, Error, Net, Runtime, TcpListener, TcpStream, NS_PER_SEC};

use crate::protocol::{
    check_client_results, parse_length, server_error_message, server_results, stream_id, Cookie,
    Params, ProtocolError, State, StreamResult, COOKIE_LEN, MAX_PARAMS_LEN, MAX_RESULTS_LEN,
};

/// Server settings; the defaults match the reference server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// TCP port for control and data connections.
    pub port: u16,
    /// Most parallel streams a test may ask for.
    pub max_parallel: usize,
    /// Largest block size (`-l`) a test may ask for.
    pub max_block_len: usize,
    /// Overall watchdog: a test is stopped after `time + omit` plus this many ns.
    pub extra_time_ns: u64,
    /// No-data watchdog: a running test is stopped after this long without data.
    pub no_data_timeout_ns: u64,
    /// Longest wait for any one control message (cookie, parameters, results, streams).
    pub control_timeout_ns: u64,
    /// Stop after this many tests (completed, refused or failed); `None` serves forever.
    pub max_tests: Option<u64>,
    /// Stop once no connection has been open for this long (`None`: never), like the
    /// reference server's `--idle-timeout` with `-1`. Bounds a server with `max_tests`
    /// whose client went away (or was turned away while a test ran) before running them
    /// all; without it such a server waits for the missing tests forever.
    pub idle_timeout_ns: Option<u64>,
    /// Print one line per test on the platform console.
    pub verbose: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            port: crate::protocol::DEFAULT_PORT,
            max_parallel: 128,
            max_block_len: 1024 * 1024,
            extra_time_ns: 40 * NS_PER_SEC,
            no_data_timeout_ns: 120 * NS_PER_SEC,
            control_timeout_ns: 120 * NS_PER_SEC,
            max_tests: None,
            idle_timeout_ns: None,
            verbose: false,
        }
    }
}

/// What the server has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Tests that ran to IPERF_DONE (or the client's close after DISPLAY_RESULTS).
    pub completed: u64,
    /// Tests refused with SERVER_ERROR (unsupported options).
    pub refused: u64,
    /// Control connections closed on a protocol error, timeout or early close.
    pub failed: u64,
    /// Connections answered with ACCESS_DENIED (busy, or a wrong data cookie).
    pub denied: u64,
}

impl ServerStats {
    fn tests(&self) -> u64 {
        self.completed + self.refused + self.failed
    }
}

/// How one test ended.
enum Outcome {
    Completed,
    Refused,
    Failed,
}

/// Why a test was cut short.
#[derive(Debug)]
enum TestError {
    Socket(Error),
    Protocol(ProtocolError),
    Watchdog,
    ClientTerminated,
}

impl core::fmt::Display for TestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TestError::Socket(error) => write!(f, "socket: {error}"),
            TestError::Protocol(error) => write!(f, "protocol: {error:?}"),
            TestError::Watchdog => f.write_str("watchdog expired"),
            TestError::ClientTerminated => f.write_str("client terminated"),
        }
    }
}

impl From<Error> for TestError {
    fn from(error: Error) -> TestError {
        TestError::Socket(error)
    }
}

impl From<ProtocolError> for TestError {
    fn from(error: ProtocolError) -> TestError {
        TestError::Protocol(error)
    }
}

impl From<libos_core::Elapsed> for TestError {
    fn from(_: libos_core::Elapsed) -> TestError {
        TestError::Socket(Error::TimedOut)
    }
}

/// State shared by the accept loop, connection tasks and the running test.
struct Shared {
    runtime: Runtime,
    config: ServerConfig,
    /// Replaced when the stack behind a remote interface restarted (see [`Server::run`]).
    listener: RefCell<Rc<TcpListener>>,
    busy: Cell<bool>,
    /// Cookie of the test currently collecting data streams.
    collecting: Cell<Option<Cookie>>,
    wanted_streams: Cell<usize>,
    streams: RefCell<Vec<TcpStream>>,
    streams_waiter: RefCell<Option<Waker>>,
    stats: Cell<ServerStats>,
    /// Connection tasks that have not ended (a running test's control connection
    /// among them).
    open_connections: Cell<usize>,
    /// When the last connection task ended (or the server started).
    idle_since_ns: Cell<u64>,
    /// The accept loop's waker: woken when a test is counted or a connection task ends.
    done_waiter: RefCell<Option<Waker>>,
}

impl Shared {
    fn log(&self, args: core::fmt::Arguments<'_>) {
        if self.config.verbose {
            let line = alloc::format!("iperf: {args}\n");
            self.runtime.pal().console_write(&line);
        }
    }

    fn update_stats(&self, f: impl FnOnce(&mut ServerStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
        self.wake_accept_loop();
    }

    fn wake_accept_loop(&self) {
        let waker = self.done_waiter.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn finished(&self) -> bool {
        self.config
            .max_tests
            .is_some_and(|max| self.stats.get().tests() >= max)
            && !self.busy.get()
    }
}

/// Runs the iperf3 server on `net` until `config.max_tests` tests have been served
/// (forever when `None`) or it was idle for `config.idle_timeout_ns`; returns what it
/// did.
///
/// Fails only when the port cannot be bound. Nothing a peer sends makes it fail or
/// panic: a bad connection is closed and the server goes on listening.
pub async fn serve(net: &Net, config: ServerConfig) -> Result<ServerStats, Error> {
    Ok(Server::bind(net, config)?.run().await)
}

/// An iperf3 server whose port is bound: connection attempts are accepted from the
/// moment [`Server::bind`] returns, even before [`Server::run`] is first polled.
pub struct Server {
    net: Net,
    shared: Rc<Shared>,
}

impl Server {
    /// Binds `config.port` on `net`; fails when the port cannot be bound.
    pub fn bind(net: &Net, config: ServerConfig) -> Result<Server, Error> {
        let listener = TcpListener::bind(net, config.port, 2)?;
        let shared = Rc::new(Shared {
            runtime: net.runtime().clone(),
            config,
            listener: RefCell::new(Rc::new(listener)),
            busy: Cell::new(false),
            collecting: Cell::new(None),
            wanted_streams: Cell::new(0),
            streams: RefCell::new(Vec::new()),
            streams_waiter: RefCell::new(None),
            stats: Cell::new(ServerStats::default()),
            open_connections: Cell::new(0),
            idle_since_ns: Cell::new(net.runtime().now_ns()),
            done_waiter: RefCell::new(None),
        });
        Ok(Server {
            net: net.clone(),
            shared,
        })
    }

    /// Serves tests until `config.max_tests` have been served (forever when `None`) or
    /// no connection was open for `config.idle_timeout_ns`; returns what it did.
    pub async fn run(self) -> ServerStats {
        let Server { net, shared } = self;
        shared.log(format_args!("listening on port {}", shared.config.port));
        shared.idle_since_ns.set(shared.runtime.now_ns());
        let mut rebinds_in_a_row = 0;
        loop {
            let listener = shared.listener.borrow().clone();
            let accepted = select(listener.accept(), stop_requested(&shared)).await;
            match accepted {
                Either::Left(Err(Error::ConnectionReset)) if rebinds_in_a_row < 3 => {
                    // The stack behind a remote interface restarted and the listener went
                    // with it: listen again on the new attachment.
                    rebinds_in_a_row += 1;
                    match TcpListener::bind(&net, shared.config.port, 2) {
                        Ok(listener) => {
                            *shared.listener.borrow_mut() = Rc::new(listener);
                            shared.log(format_args!(
                                "listening again on port {} (the stack was reset)",
                                shared.config.port
                            ));
                        }
                        Err(_) => break,
                    }
                }
                Either::Left(Err(Error::ConnectionReset)) => break,
                Either::Left(Ok((stream, _peer))) => {
                    rebinds_in_a_row = 0;
                    let open = OpenConnection::new(shared.clone());
                    let shared = shared.clone();
                    net.runtime().spawn(async move {
                        let _open = open;
                        handle_connection(shared, stream).await
                    });
                }
                Either::Left(Err(_)) => continue,
                Either::Right(()) => break,
            }
        }
        // Let closing connections finish before the caller stops the runtime.
        net.drain(2 * NS_PER_SEC).await;
        shared.stats.get()
    }
}

/// Completes when the server should stop: `max_tests` tests were served, or no
/// connection has been open for `idle_timeout_ns`.
async fn stop_requested(shared: &Shared) {
    loop {
        if shared.finished() {
            return;
        }
        let idle_deadline = shared
            .config
            .idle_timeout_ns
            .filter(|_| shared.open_connections.get() == 0)
            .map(|timeout| shared.idle_since_ns.get().saturating_add(timeout));
        if idle_deadline.is_some_and(|deadline| shared.runtime.now_ns() >= deadline) {
            shared.log(format_args!(
                "idle timeout after {} test(s), stopping",
                shared.stats.get().tests()
            ));
            return;
        }
        // Wait for a change (a test counted, a connection ended) or the idle deadline.
        let mut registered = false;
        let changed = poll_fn(|cx| {
            if registered {
                return Poll::Ready(());
            }
            registered = true;
            *shared.done_waiter.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        });
        match idle_deadline {
            Some(deadline) => {
                select(changed, shared.runtime.sleep_until(deadline)).await;
            }
            None => changed.await,
        }
    }
}

/// Marks a connection task as open for the idle timeout until it ends or is cancelled.
struct OpenConnection(Rc<Shared>);

impl OpenConnection {
    fn new(shared: Rc<Shared>) -> OpenConnection {
        shared
            .open_connections
            .set(shared.open_connections.get() + 1);
        OpenConnection(shared)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let shared = &self.0;
        let open = shared.open_connections.get().saturating_sub(1);
        shared.open_connections.set(open);
        if open == 0 {
            shared.idle_since_ns.set(shared.runtime.now_ns());
        }
        shared.wake_accept_loop();
    }
}

/// Reads a connection's cookie, then makes it the control connection of a new test,
/// a data stream of the running test, or refuses it.
async fn handle_connection(shared: Rc<Shared>, mut stream: TcpStream) {
    stream.set_nodelay(true);
    if shared.busy.get() && shared.collecting.get().is_none() {
        deny(&shared, stream);
        return;
    }
    let mut raw = [0u8; COOKIE_LEN];
    let timeout = shared.config.control_timeout_ns;
    let cookie = match shared
        .runtime
        .timeout(timeout, stream.read_exact(&mut raw))
        .await
    {
        Ok(Ok(())) => Cookie::parse(&raw),
        _ => {
            // Early close, reset or silence: nothing to answer.
            if !shared.busy.get() {
                shared.update_stats(|s| s.failed += 1);
            }
            return;
        }
    };
    if !shared.busy.get() {
        let Some(cookie) = cookie else {
            shared.log(format_args!("bad cookie on a control connection"));
            shared.update_stats(|s| s.failed += 1);
            deny(&shared, stream);
            return;
        };
        shared.busy.set(true);
        let outcome = run_test(&shared, stream, cookie).await;
        shared.collecting.set(None);
        shared.streams.borrow_mut().clear();
        shared.busy.set(false);
        shared.update_stats(|s| match outcome {
            Outcome::Completed => s.completed += 1,
            Outcome::Refused => s.refused += 1,
            Outcome::Failed => s.failed += 1,
        });
        return;
    }
    let wanted = shared.wanted_streams.get();
    let matches = cookie.is_some() && shared.collecting.get() == cookie;
    if matches && shared.streams.borrow().len() < wanted {
        shared.streams.borrow_mut().push(stream);
        if let Some(waker) = shared.streams_waiter.borrow_mut().take() {
            waker.wake();
        }
    } else {
        deny(&shared, stream);
    }
}

/// Answers ACCESS_DENIED and closes.
fn deny(shared: &Shared, mut stream: TcpStream) {
    shared.update_stats(|s| s.denied += 1);
    let _ = stream.try_write(&[State::AccessDenied.byte()]);
    // Dropping closes it gracefully in the background, after the byte is sent.
    drop(stream);
}

/// Runs one test on control connection `control`; always closes it.
async fn run_test(shared: &Rc<Shared>, mut control: TcpStream, cookie: Cookie) -> Outcome {
    let outcome = match run_test_steps(shared, &mut control, cookie).await {
        Ok(outcome) => outcome,
        Err(error) => {
            shared.log(format_args!("test failed: {error}"));
            Outcome::Failed
        }
    };
    // Closed in the background so the next client is not kept waiting.
    drop(control);
    outcome
}

/// Reads a length-framed JSON message of at most `limit` bytes.
async fn read_json(
    shared: &Shared,
    control: &mut TcpStream,
    limit: usize,
) -> Result<Vec<u8>, TestError> {
    let timeout = shared.config.control_timeout_ns;
    let mut header = [0u8; 4];
    shared
        .runtime
        .timeout(timeout, control.read_exact(&mut header))
        .await??;
    let len = parse_length(header, limit)?;
    let mut json = vec![0u8; len];
    shared
        .runtime
        .timeout(timeout, control.read_exact(&mut json))
        .await??;
    Ok(json)
}

/// Sends a length-framed JSON message.
async fn write_json(control: &mut TcpStream, json: &[u8]) -> Result<(), TestError> {
    let len = u32::try_from(json.len()).map_err(|_| Error::InvalidInput)?;
    control.write_all(&len.to_be_bytes()).await?;
    control.write_all(json).await?;
    Ok(())
}

/// Reads one state byte from the client.
async fn read_state(
    shared: &Shared,
    control: &mut TcpStream,
    timeout_ns: u64,
) -> Result<u8, TestError> {
    let mut byte = [0u8; 1];
    shared
        .runtime
        .timeout(timeout_ns, control.read_exact(&mut byte))
        .await??;
    Ok(byte[0])
}

async fn run_test_steps(
    shared: &Rc<Shared>,
    control: &mut TcpStream,
    cookie: Cookie,
) -> Result<Outcome, TestError> {
    let config = &shared.config;
    control.write_all(&[State::ParamExchange.byte()]).await?;
    let params = Params::parse(&read_json(shared, control, MAX_PARAMS_LEN).await?)?;
    if let Err(code) = params.check(config.max_parallel, config.max_block_len) {
        shared.log(format_args!("refusing test {params:?}"));
        control.write_all(&server_error_message(code, 0)).await?;
        return Ok(Outcome::Refused);
    }
    shared.log(format_args!(
        "test: {} stream(s), {}, len {}{}",
        params.parallel,
        EndCondition(&params),
        params.len,
        if params.reverse { ", reverse" } else { "" }
    ));

    // Enough listening sockets for the burst of data connections, then ask for them.
    shared.listener.borrow().set_backlog(params.parallel + 1)?;
    shared.wanted_streams.set(params.parallel);
    shared.collecting.set(Some(cookie));
    control.write_all(&[State::CreateStreams.byte()]).await?;
    let all_connected = poll_fn(|cx| {
        if shared.streams.borrow().len() >= params.parallel {
            Poll::Ready(())
        } else {
            *shared.streams_waiter.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    });
    let mut probe = [0u8; 1];
    let waited = shared
        .runtime
        .timeout(
            config.control_timeout_ns,
            select(all_connected, control.read(&mut probe)),
        )
        .await?;
    if let Either::Right(result) = waited {
        // The client must stay silent here; anything (or a close) aborts the test.
        result?;
        return Err(ProtocolError::UnexpectedState(probe[0]).into());
    }
    shared.collecting.set(None);
    let streams = core::mem::take(&mut *shared.streams.borrow_mut());

    control
        .write_all(&[State::TestStart.byte(), State::TestRunning.byte()])
        .await?;
    let start_ns = shared.runtime.now_ns();
    let idle_at_start = shared.runtime.idle_stats();
    let counters: Vec<Rc<StreamCounter>> = streams
        .iter()
        .map(|_| Rc::new(StreamCounter::default()))
        .collect();
    let budget = Rc::new(SendBudget {
        left: Cell::new(params.send_budget()),
    });
    let test_end = Rc::new(TestEndSignal::default());
    let mut tasks: Vec<_> = streams
        .into_iter()
        .zip(counters.iter().cloned())
        .map(|(stream, counter)| {
            if params.reverse {
                shared
                    .runtime
                    .spawn(send_stream(stream, counter, params.len, budget.clone()))
            } else {
                shared.runtime.spawn(receive_stream(
                    stream,
                    counter,
                    params.len,
                    test_end.clone(),
                ))
            }
        })
        .collect();

    let ended = wait_for_test_end(shared, control, &params, start_ns, &counters).await;
    let end_ns = shared.runtime.now_ns();
    let cpu = shared
        .runtime
        .idle_stats()
        .utilisation_since(&idle_at_start)
        * 100.0;
    if ended.is_ok() && !params.reverse {
        // Count what arrived before TEST_END, as a byte-limited test's last bytes may
        // still sit in the receive buffers.
        test_end.signal();
        for task in tasks.iter_mut() {
            let _ = shared.runtime.timeout(NS_PER_SEC, task).await;
        }
    }
    for task in &tasks {
        task.abort();
    }
    ended?;

    control.write_all(&[State::ExchangeResults.byte()]).await?;
    check_client_results(&read_json(shared, control, MAX_RESULTS_LEN).await?)?;
    let elapsed_s = end_ns.saturating_sub(start_ns) as f64 / NS_PER_SEC as f64;
    let results: Vec<StreamResult> = counters
        .iter()
        .enumerate()
        .map(|(index, counter)| StreamResult {
            id: stream_id(index),
            bytes: counter.bytes.get(),
            end_time_s: elapsed_s,
        })
        .collect();
    write_json(control, &server_results(cpu, params.reverse, &results)).await?;
    control.write_all(&[State::DisplayResults.byte()]).await?;
    // IPERF_DONE, or the client's close, ends the test either way.
    let _ = read_state(shared, control, config.control_timeout_ns).await;
    let total: u64 = counters.iter().map(|c| c.bytes.get()).sum();
    shared.log(format_args!(
        "done: {total} bytes in {elapsed_s:.2} s, cpu {cpu:.1} %"
    ));
    Ok(Outcome::Completed)
}

/// Waits for TEST_END while the streams run, enforcing both watchdogs.
async fn wait_for_test_end(
    shared: &Shared,
    control: &mut TcpStream,
    params: &Params,
    start_ns: u64,
    counters: &[Rc<StreamCounter>],
) -> Result<(), TestError> {
    let config = &shared.config;
    let test_ns = params
        .time_s
        .saturating_add(params.omit_s)
        .saturating_mul(NS_PER_SEC);
    let overall_deadline = (params.time_s > 0).then(|| {
        start_ns
            .saturating_add(test_ns)
            .saturating_add(config.extra_time_ns)
    });
    let tick = (config.no_data_timeout_ns / 4).clamp(NS_PER_SEC / 100, NS_PER_SEC);
    let mut last_total = 0u64;
    let mut last_progress_ns = start_ns;
    loop {
        match shared
            .runtime
            .timeout(tick, read_state(shared, control, u64::MAX))
            .await
        {
            Ok(Ok(byte)) => {
                return match State::from_byte(byte) {
                    Some(State::TestEnd) => Ok(()),
                    Some(State::ClientTerminate) => Err(TestError::ClientTerminated),
                    _ => Err(ProtocolError::UnexpectedState(byte).into()),
                };
            }
            Ok(Err(error)) => return Err(error),
            Err(_) => {}
        }
        let now = shared.runtime.now_ns();
        if overall_deadline.is_some_and(|deadline| now >= deadline) {
            return Err(TestError::Watchdog);
        }
        let total: u64 = counters.iter().map(|c| c.bytes.get()).sum();
        if total != last_total {
            last_total = total;
            last_progress_ns = now;
        } else if now.saturating_sub(last_progress_ns) >= config.no_data_timeout_ns {
            return Err(TestError::Watchdog);
        }
    }
}

/// Bytes moved on one data stream.
#[derive(Default)]
struct StreamCounter {
    bytes: Cell<u64>,
}

/// Counts and discards what the client sends until it closes (or the task is aborted).
/// Tells the receiving streams that the client sent TEST_END.
#[derive(Default)]
struct TestEndSignal {
    ended: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl TestEndSignal {
    fn signal(&self) {
        self.ended.set(true);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    async fn wait(&self) {
        poll_fn(|cx| {
            if self.ended.get() {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Counts and discards what the client sends until it closes, the task is aborted, or
/// TEST_END is signalled; then counts what is already buffered and ends.
async fn receive_stream(
    mut stream: TcpStream,
    counter: Rc<StreamCounter>,
    len: usize,
    test_end: Rc<TestEndSignal>,
) {
    loop {
        match select(stream.discard(len), test_end.wait()).await {
            Either::Left(Ok(0)) | Either::Left(Err(_)) => return,
            Either::Left(Ok(n)) => counter.bytes.set(counter.bytes.get() + n as u64),
            Either::Right(()) => break,
        }
    }
    while let Ok(n) = stream.try_discard(usize::MAX) {
        if n == 0 {
            break;
        }
        counter.bytes.set(counter.bytes.get() + n as u64);
    }
}

/// Bytes a reverse test may still send across all its streams (`None`: no limit).
struct SendBudget {
    left: Cell<Option<u64>>,
}

/// How a test ends, for the log: after some seconds, bytes or blocks.
struct EndCondition<'a>(&'a Params);

impl core::fmt::Display for EndCondition<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let params = self.0;
        if params.bytes > 0 {
            write!(f, "{} bytes", params.bytes)
        } else if params.blocks > 0 {
            write!(f, "{} blocks", params.blocks)
        } else {
            write!(f, "{} s", params.time_s)
        }
    }
}

/// Sends `len`-byte blocks until the task is aborted, the client goes away, or the
/// test's byte budget is spent; then keeps the connection open (idle) until TEST_END
/// aborts the task.
async fn send_stream(
    mut stream: TcpStream,
    counter: Rc<StreamCounter>,
    len: usize,
    budget: Rc<SendBudget>,
) {
    // The block is allocated fallibly: a heap that cannot hold it ends this stream (the
    // client sees it close), never the server.
    let mut block: Vec<u8> = Vec::new();
    if block.try_reserve_exact(len).is_err() {
        return;
    }
    block.extend((0..len).map(|i| (i % 251) as u8));
    let mut offset = 0;
    loop {
        // Reserve what this write may send, so parallel streams never overspend.
        let want = match budget.left.get() {
            None => len - offset,
            Some(0) => break,
            Some(left) => {
                let want = (len - offset).min(usize::try_from(left).unwrap_or(len));
                budget.left.set(Some(left - want as u64));
                want
            }
        };
        let written = stream.write(&block[offset..offset + want]).await;
        let n = written.as_ref().map_or(0, |&n| n);
        if let Some(left) = budget.left.get() {
            budget.left.set(Some(left + (want - n) as u64));
        }
        if written.is_err() {
            return;
        }
        counter.bytes.set(counter.bytes.get() + n as u64);
        offset = (offset + n) % len;
    }
    // Closing now would show the client an end of stream before it ends the test.
    core::future::pending::<()>().await;
    drop(stream);
}
