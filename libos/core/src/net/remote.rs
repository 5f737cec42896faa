//! The remote backend of the socket API: a client of a `net` component's socket
//! [`super::server`] over a [`Link`], driven as a [`Reactor`] by the executor.
//!
//! Invariants: the client trusts nothing the server sends: every event is parsed
//! ([`Event::parse`]) and every span checked against the client's own [`Geometry`] and
//! ownership records before use; bad events are counted and dropped. A socket's
//! writes are bounded by its credit of transmit buffers, so a writer cannot queue
//! without bound.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::poll_fn;
use core::net::SocketAddrV4;
use core::task::{Poll, Waker};

use super::link::Link;
use super::wire::{op, Event, Geometry, Message, Request, Span, SERVER_ID_BIT};
use crate::error::Error;
use crate::executor::{Reactor, Runtime};

/// How a remote [`crate::Net`] uses its link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteConfig {
    /// Transmit buffers one connection may have in flight to the server (its write
    /// credit); at least 1.
    pub tx_buffers_per_socket: usize,
}

impl Default for RemoteConfig {
    fn default() -> RemoteConfig {
        RemoteConfig {
            tx_buffers_per_socket: 8,
        }
    }
}

/// What a remote [`crate::Net`] did over its links, for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientCounters {
    /// Requests pushed to the server.
    pub requests: u64,
    /// Events taken from the server.
    pub events: u64,
    /// Bytes copied from the application into the transmit area.
    pub bytes_out: u64,
    /// Bytes copied from the receive area into the application.
    pub bytes_in: u64,
    /// Signals the link asked for (at most one per batch).
    pub signals: u64,
    /// Events that did not parse or named a buffer the client does not expect.
    pub bad_events: u64,
    /// Links lost (reset by the platform, or corrupted by the server).
    pub link_resets: u64,
}

/// One received buffer not yet consumed.
struct RxBuffer {
    offset: u32,
    len: u32,
    consumed: u32,
}

#[derive(Default)]
struct Sock {
    listener: bool,
    /// Listener: the backlog asked for.
    backlog: usize,
    accepted: VecDeque<(u32, SocketAddrV4)>,
    /// A stream's handshake finished.
    connected: bool,
    /// The server refused the socket (it keeps no entry): reported once.
    error: Option<Error>,
    rx: VecDeque<RxBuffer>,
    rx_bytes: usize,
    eof: bool,
    reset: bool,
    shut: bool,
    tx_buffers: usize,
    tx_bytes: usize,
    local: Option<SocketAddrV4>,
    peer: Option<SocketAddrV4>,
    /// The application dropped it; waiting for the server's `Closed`.
    closing: bool,
    /// The server has no entry for it (refused, or the link was lost).
    gone: bool,
}

struct State {
    link: Option<Box<dyn Link>>,
    geometry: Geometry,
    config: RemoteConfig,
    outbox: VecDeque<Message>,
    sockets: BTreeMap<u32, Sock>,
    next_id: u32,
    tx_free: Vec<u32>,
    /// The socket each transmit buffer is in flight for.
    tx_owner: Vec<Option<u32>>,
    /// Receive buffers the server has handed us and we have not released.
    rx_held: Vec<bool>,
    closing: usize,
    counters: ClientCounters,
}

impl State {
    fn attach(&mut self, link: Box<dyn Link>) {
        let geometry = link.geometry();
        let buffers = geometry.buffers as usize;
        self.geometry = geometry;
        self.tx_free = (0..geometry.buffers).rev().collect();
        self.tx_owner = vec![None; buffers];
        self.rx_held = vec![false; buffers];
        self.outbox.clear();
        self.link = Some(link);
    }

    fn lose_link(&mut self) {
        if self.link.take().is_some() {
            self.counters.link_resets += 1;
        }
        self.outbox.clear();
        self.closing = 0;
        self.sockets.retain(|_, sock| !sock.closing);
        for sock in self.sockets.values_mut() {
            sock.reset = true;
            sock.gone = true;
            sock.rx.clear();
            sock.rx_bytes = 0;
            sock.accepted.clear();
            sock.tx_buffers = 0;
            sock.tx_bytes = 0;
        }
    }

    fn send(&mut self, request: Request) {
        self.outbox.push_back(request.encode());
    }

    fn new_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = if id + 1 >= SERVER_ID_BIT { 1 } else { id + 1 };
            if !self.sockets.contains_key(&id) {
                return id;
            }
        }
    }

    /// Pushes queued requests and publishes them; returns true if any were pushed.
    fn flush(&mut self) -> bool {
        let Some(link) = self.link.as_mut() else {
            return false;
        };
        let count = super::link::push_queued(link.as_mut(), &mut self.outbox);
        self.counters.requests += count;
        let pushed = count > 0;
        if pushed && link.publish() {
            self.counters.signals += 1;
            link.signal();
        }
        pushed
    }

    fn release_rx(&mut self, offset: u32) {
        if let Some(index) = self.geometry.buffer_index(Span { offset, len: 0 }) {
            self.rx_held[index] = false;
        }
        self.send(Request::Release {
            span: Span { offset, len: 0 },
        });
    }

    fn handle(&mut self, message: &Message) {
        self.counters.events += 1;
        let Ok(event) = Event::parse(message) else {
            self.counters.bad_events += 1;
            return;
        };
        match event {
            Event::Accepted {
                socket,
                listener,
                peer,
                local_port,
            } => {
                if socket & SERVER_ID_BIT == 0 || self.sockets.contains_key(&socket) {
                    self.counters.bad_events += 1;
                    return;
                }
                let sock = Sock {
                    connected: true,
                    peer: Some(peer),
                    local: Some(SocketAddrV4::new(
                        core::net::Ipv4Addr::UNSPECIFIED,
                        local_port,
                    )),
                    ..Sock::default()
                };
                self.sockets.insert(socket, sock);
                match self.sockets.get_mut(&listener) {
                    Some(l) if l.listener && !l.closing => l.accepted.push_back((socket, peer)),
                    _ => self.finish(socket, false),
                }
            }
            Event::Connected { socket, local_port } => {
                if let Some(sock) = self.sockets.get_mut(&socket) {
                    sock.connected = true;
                    sock.local = Some(SocketAddrV4::new(
                        core::net::Ipv4Addr::UNSPECIFIED,
                        local_port,
                    ));
                }
            }
            Event::Data { socket, span } => {
                let index = match self.geometry.buffer_index(span) {
                    Some(index) if span.len > 0 && !self.rx_held[index] => index,
                    _ => {
                        self.counters.bad_events += 1;
                        return;
                    }
                };
                self.rx_held[index] = true;
                match self.sockets.get_mut(&socket) {
                    Some(sock) if !sock.closing && !sock.listener => {
                        sock.rx_bytes += span.len as usize;
                        sock.rx.push_back(RxBuffer {
                            offset: span.offset,
                            len: span.len,
                            consumed: 0,
                        });
                    }
                    _ => self.release_rx(span.offset),
                }
            }
            Event::Eof { socket } => {
                if let Some(sock) = self.sockets.get_mut(&socket) {
                    sock.eof = true;
                }
            }
            Event::Reset { socket } => {
                if let Some(sock) = self.sockets.get_mut(&socket) {
                    sock.reset = true;
                }
            }
            Event::Released { span, .. } => {
                let owner = self
                    .geometry
                    .buffer_index(span)
                    .and_then(|index| self.tx_owner[index].take().map(|o| (index, o)));
                let Some((index, owner)) = owner else {
                    self.counters.bad_events += 1;
                    return;
                };
                self.tx_free.push(index as u32);
                if let Some(sock) = self.sockets.get_mut(&owner) {
                    sock.tx_buffers = sock.tx_buffers.saturating_sub(1);
                    sock.tx_bytes = sock.tx_bytes.saturating_sub(span.len as usize);
                }
            }
            Event::Closed { socket } => {
                if self.sockets.get(&socket).is_some_and(|s| s.closing) {
                    self.sockets.remove(&socket);
                    self.closing = self.closing.saturating_sub(1);
                }
            }
            Event::Failed { socket, op, status } => {
                let Some(sock) = self.sockets.get_mut(&socket) else {
                    return;
                };
                if matches!(op, op::LISTEN | op::CONNECT) {
                    // The server keeps no entry for a socket it refused.
                    sock.gone = true;
                    sock.error = Some(status.to_error());
                    if sock.closing {
                        self.sockets.remove(&socket);
                        self.closing = self.closing.saturating_sub(1);
                    }
                } else if op != op::SET_BACKLOG {
                    sock.reset = true;
                }
            }
        }
    }

    /// The application is done with `id`: ask the server to close (or abort) it.
    fn finish(&mut self, id: u32, abort: bool) {
        let Some(sock) = self.sockets.get_mut(&id) else {
            return;
        };
        if sock.gone || self.link.is_none() {
            self.sockets.remove(&id);
            return;
        }
        sock.closing = true;
        let rx: Vec<u32> = sock.rx.drain(..).map(|b| b.offset).collect();
        let accepted: Vec<u32> = sock.accepted.drain(..).map(|(s, _)| s).collect();
        sock.rx_bytes = 0;
        self.closing += 1;
        for offset in rx {
            self.release_rx(offset);
        }
        self.send(if abort {
            Request::Abort { socket: id }
        } else {
            Request::Close { socket: id }
        });
        for socket in accepted {
            self.finish(socket, false);
        }
    }
}

/// The client end of a link: socket state and the link itself.
pub(crate) struct Client {
    pub(crate) runtime: Runtime,
    state: RefCell<State>,
    waiters: RefCell<Vec<Waker>>,
}

impl Client {
    /// Creates a client over `link` and registers it with `runtime`.
    pub(crate) fn new(runtime: &Runtime, link: Box<dyn Link>, config: RemoteConfig) -> Rc<Client> {
        let mut state = State {
            link: None,
            geometry: link.geometry(),
            config: RemoteConfig {
                tx_buffers_per_socket: config.tx_buffers_per_socket.max(1),
            },
            outbox: VecDeque::new(),
            sockets: BTreeMap::new(),
            next_id: 1,
            tx_free: Vec::new(),
            tx_owner: Vec::new(),
            rx_held: Vec::new(),
            closing: 0,
            counters: ClientCounters::default(),
        };
        state.attach(link);
        let client = Rc::new(Client {
            runtime: runtime.clone(),
            state: RefCell::new(state),
            waiters: RefCell::new(Vec::new()),
        });
        let weak: alloc::rc::Weak<dyn Reactor> =
            Rc::downgrade(&client) as alloc::rc::Weak<dyn Reactor>;
        runtime.add_reactor(weak);
        client
    }

    /// Remembers `waker` to be woken the next time an event arrives.
    pub(crate) fn wait(&self, waker: &Waker) {
        let mut waiters = self.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }

    fn wake_all(&self) {
        let waiters = core::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }

    /// Forgets the link: every socket fails with `ConnectionReset` from now on.
    pub(crate) fn link_reset(&self) {
        self.state.borrow_mut().lose_link();
        self.wake_all();
    }

    /// Attaches a fresh link (after [`Client::link_reset`]); old sockets stay reset.
    pub(crate) fn attach(&self, link: Box<dyn Link>) {
        let mut state = self.state.borrow_mut();
        state.lose_link();
        state.attach(link);
    }

    pub(crate) fn counters(&self) -> ClientCounters {
        self.state.borrow().counters
    }

    pub(crate) fn closing_count(&self) -> usize {
        self.state.borrow().closing
    }

    pub(crate) fn socket_count(&self) -> usize {
        self.state.borrow().sockets.len()
    }

    fn with_sock<R>(&self, id: u32, f: impl FnOnce(&mut Sock) -> R) -> Option<R> {
        self.state.borrow_mut().sockets.get_mut(&id).map(f)
    }
}

impl Reactor for Client {
    fn poll(&self, _now_ns: u64) -> bool {
        let progress = {
            let mut state = self.state.borrow_mut();
            let mut events = false;
            while let Some(link) = state.link.as_mut() {
                match link.pop() {
                    Ok(Some(message)) => {
                        events = true;
                        state.handle(&message);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        state.lose_link();
                        events = true;
                        break;
                    }
                }
            }
            let pushed = state.flush();
            if !events && !pushed {
                if let Some(link) = state.link.as_mut() {
                    events = link.prepare_wait();
                }
            }
            events || pushed
        };
        if progress {
            self.wake_all();
        }
        progress
    }

    fn poll_at(&self, _now_ns: u64) -> Option<u64> {
        None
    }
}

/// A listener on the server's stack.
pub(crate) struct RemoteListener {
    pub(crate) client: Rc<Client>,
    id: u32,
    port: u16,
}

impl RemoteListener {
    pub(crate) fn bind(
        client: &Rc<Client>,
        port: u16,
        backlog: usize,
    ) -> Result<RemoteListener, Error> {
        if backlog == 0 {
            return Err(Error::InvalidInput);
        }
        if port == 0 {
            return Err(Error::Unaddressable);
        }
        let mut state = client.state.borrow_mut();
        if state.link.is_none() {
            return Err(Error::ConnectionReset);
        }
        let id = state.new_id();
        state.sockets.insert(
            id,
            Sock {
                listener: true,
                backlog,
                ..Sock::default()
            },
        );
        state.send(Request::Listen {
            socket: id,
            port,
            backlog: u32::try_from(backlog).unwrap_or(u32::MAX),
        });
        Ok(RemoteListener {
            client: client.clone(),
            id,
            port,
        })
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn backlog(&self) -> usize {
        self.client.with_sock(self.id, |s| s.backlog).unwrap_or(0)
    }

    pub(crate) fn set_backlog(&self, backlog: usize) -> Result<(), Error> {
        if backlog == 0 {
            return Err(Error::InvalidInput);
        }
        let mut state = self.client.state.borrow_mut();
        let sock = state
            .sockets
            .get_mut(&self.id)
            .ok_or(Error::ConnectionReset)?;
        if sock.gone {
            return Err(sock.error.unwrap_or(Error::ConnectionReset));
        }
        if backlog > sock.backlog {
            sock.backlog = backlog;
            state.send(Request::SetBacklog {
                socket: self.id,
                backlog: u32::try_from(backlog).unwrap_or(u32::MAX),
            });
        }
        Ok(())
    }

    /// Takes an accepted connection. A refusal by the server (or a lost link) is
    /// reported once, as this call's error; later calls find nothing (`WouldBlock`).
    pub(crate) fn try_accept(&self) -> Result<(RemoteStream, SocketAddrV4), Error> {
        let mut state = self.client.state.borrow_mut();
        let sock = state.sockets.get_mut(&self.id).ok_or(Error::WouldBlock)?;
        if let Some((id, peer)) = sock.accepted.pop_front() {
            let stream = RemoteStream {
                client: self.client.clone(),
                id,
                abort_on_drop: false,
            };
            return Ok((stream, peer));
        }
        if let Some(error) = sock.error.take() {
            return Err(error);
        }
        if sock.reset && sock.gone {
            sock.reset = false;
            return Err(Error::ConnectionReset);
        }
        Err(Error::WouldBlock)
    }
}

impl Drop for RemoteListener {
    fn drop(&mut self) {
        if let Ok(mut state) = self.client.state.try_borrow_mut() {
            state.finish(self.id, true);
        }
    }
}

/// A connection on the server's stack.
pub(crate) struct RemoteStream {
    pub(crate) client: Rc<Client>,
    id: u32,
    abort_on_drop: bool,
}

impl RemoteStream {
    pub(crate) async fn connect(
        client: &Rc<Client>,
        remote: SocketAddrV4,
    ) -> Result<RemoteStream, Error> {
        let stream = {
            let mut state = client.state.borrow_mut();
            if state.link.is_none() {
                return Err(Error::ConnectionReset);
            }
            let id = state.new_id();
            state.sockets.insert(
                id,
                Sock {
                    peer: Some(remote),
                    ..Sock::default()
                },
            );
            state.send(Request::Connect { socket: id, remote });
            RemoteStream {
                client: client.clone(),
                id,
                abort_on_drop: false,
            }
        };
        poll_fn(|cx| {
            let result = stream
                .client
                .with_sock(stream.id, |sock| {
                    if let Some(error) = sock.error {
                        Err(error)
                    } else if sock.reset {
                        Err(Error::ConnectionRefused)
                    } else if sock.connected {
                        Ok(())
                    } else {
                        Err(Error::WouldBlock)
                    }
                })
                .unwrap_or(Err(Error::ConnectionReset));
            match result {
                Err(Error::WouldBlock) => {
                    stream.client.wait(cx.waker());
                    Poll::Pending
                }
                other => Poll::Ready(other),
            }
        })
        .await?;
        Ok(stream)
    }

    fn sock<R>(&self, f: impl FnOnce(&Sock) -> R) -> Option<R> {
        self.client.state.borrow().sockets.get(&self.id).map(f)
    }

    pub(crate) fn local_addr(&self) -> Option<SocketAddrV4> {
        self.sock(|s| if s.reset { None } else { s.local })
            .flatten()
    }

    pub(crate) fn peer_addr(&self) -> Option<SocketAddrV4> {
        self.sock(|s| if s.reset { None } else { s.peer }).flatten()
    }

    pub(crate) fn set_nodelay(&self, nodelay: bool) {
        let mut state = self.client.state.borrow_mut();
        if state.sockets.get(&self.id).is_some_and(|s| !s.gone) {
            state.send(Request::NoDelay {
                socket: self.id,
                on: nodelay,
            });
        }
    }

    pub(crate) fn recv_queue(&self) -> usize {
        self.sock(|s| s.rx_bytes).unwrap_or(0)
    }

    pub(crate) fn send_queue(&self) -> usize {
        self.sock(|s| s.tx_bytes).unwrap_or(0)
    }

    /// Copies (or with `into` `None`, discards) up to `limit` received bytes.
    fn take(&mut self, mut into: Option<&mut [u8]>, limit: usize) -> Result<usize, Error> {
        let mut guard = self.client.state.borrow_mut();
        let state = &mut *guard;
        let Some(sock) = state.sockets.get_mut(&self.id) else {
            return Err(Error::ConnectionReset);
        };
        let mut done = 0;
        let mut released = Vec::new();
        while done < limit {
            let Some(buffer) = sock.rx.front_mut() else {
                break;
            };
            let n = ((buffer.len - buffer.consumed) as usize).min(limit - done);
            if let (Some(into), Some(link)) = (into.as_deref_mut(), state.link.as_ref()) {
                if link
                    .read_in(buffer.offset + buffer.consumed, &mut into[done..done + n])
                    .is_err()
                {
                    break;
                }
            }
            buffer.consumed += n as u32;
            done += n;
            if buffer.consumed == buffer.len {
                released.push(buffer.offset);
                sock.rx.pop_front();
            }
        }
        sock.rx_bytes -= done;
        let (eof, reset) = (sock.eof, sock.reset);
        if into.is_some() {
            state.counters.bytes_in += done as u64;
        }
        for offset in released {
            state.release_rx(offset);
        }
        match done {
            0 if reset => Err(Error::ConnectionReset),
            0 if eof => Ok(0),
            0 => Err(Error::WouldBlock),
            n => Ok(n),
        }
    }

    pub(crate) fn try_read(&mut self, buffer: &mut [u8]) -> Result<usize, Error> {
        let limit = buffer.len();
        self.take(Some(buffer), limit)
    }

    pub(crate) fn try_discard(&mut self, limit: usize) -> Result<usize, Error> {
        self.take(None, limit)
    }

    pub(crate) fn try_write(&mut self, data: &[u8]) -> Result<usize, Error> {
        let mut guard = self.client.state.borrow_mut();
        let state = &mut *guard;
        let Some(sock) = state.sockets.get_mut(&self.id) else {
            return Err(Error::ConnectionReset);
        };
        if sock.reset || sock.gone {
            return Err(Error::ConnectionReset);
        }
        if sock.shut || !sock.connected {
            return Err(Error::NotConnected);
        }
        let Some(link) = state.link.as_mut() else {
            return Err(Error::ConnectionReset);
        };
        let size = state.geometry.buffer_size as usize;
        let mut written = 0;
        while written < data.len() && sock.tx_buffers < state.config.tx_buffers_per_socket {
            let Some(index) = state.tx_free.pop() else {
                break;
            };
            let n = (data.len() - written).min(size);
            let offset = state.geometry.offset_of(index as usize);
            if link.write_out(offset, &data[written..written + n]).is_err() {
                state.tx_free.push(index);
                break;
            }
            state.tx_owner[index as usize] = Some(self.id);
            sock.tx_buffers += 1;
            sock.tx_bytes += n;
            written += n;
            state.outbox.push_back(
                Request::Write {
                    socket: self.id,
                    span: Span {
                        offset,
                        len: n as u32,
                    },
                }
                .encode(),
            );
        }
        state.counters.bytes_out += written as u64;
        match written {
            0 => Err(Error::WouldBlock),
            n => Ok(n),
        }
    }

    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        let client = self.client.clone();
        poll_fn(|cx| {
            let result = self
                .sock(|s| {
                    if s.tx_buffers == 0 {
                        Ok(())
                    } else if s.reset {
                        Err(Error::ConnectionReset)
                    } else {
                        Err(Error::WouldBlock)
                    }
                })
                .unwrap_or(Err(Error::ConnectionReset));
            match result {
                Err(Error::WouldBlock) => {
                    client.wait(cx.waker());
                    Poll::Pending
                }
                other => Poll::Ready(other),
            }
        })
        .await
    }

    pub(crate) fn shutdown(&mut self) {
        let mut state = self.client.state.borrow_mut();
        if let Some(sock) = state.sockets.get_mut(&self.id) {
            if !sock.shut && !sock.gone {
                sock.shut = true;
                state.send(Request::Shutdown { socket: self.id });
            }
        }
    }

    pub(crate) async fn close(mut self, timeout_ns: u64) {
        self.shutdown();
        let client = self.client.clone();
        let runtime = client.runtime.clone();
        let done = runtime
            .timeout(
                timeout_ns,
                poll_fn(|cx| {
                    // Drain what the peer still sends so its close can complete.
                    match self.try_discard(usize::MAX) {
                        Ok(0) | Err(Error::ConnectionReset) => Poll::Ready(()),
                        _ => {
                            client.wait(cx.waker());
                            Poll::Pending
                        }
                    }
                }),
            )
            .await;
        self.abort_on_drop = done.is_err();
    }

    pub(crate) fn abort(mut self) {
        self.abort_on_drop = true;
    }

    pub(crate) fn may_read(&self) -> bool {
        self.sock(|s| !s.eof && !s.reset).unwrap_or(false)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.sock(|s| !s.reset).unwrap_or(false)
    }
}

impl Drop for RemoteStream {
    fn drop(&mut self) {
        if let Ok(mut state) = self.client.state.try_borrow_mut() {
            state.finish(self.id, self.abort_on_drop);
        }
    }
}
