//! The socket server a `net` component runs: serves the sockets of its local smoltcp
//! stack to N clients, each over its own [`Link`] ([`super::wire`] protocol), as a
//! [`Reactor`] of the executor.
//!
//! Invariants:
//! - socket ids are per client: a client names only its own sockets; another client's
//!   id or a stale one gets [`Status::BadSocket`], never access;
//! - every request is parsed ([`Request::parse`]) and every span checked against the
//!   server's own [`Geometry`] and buffer ownership before use; what fails is counted
//!   and answered with an error event or dropped, and the other clients are served on;
//! - a client whose ring is corrupt is cut off: its sockets are aborted and its link
//!   dropped until [`SocketServer::reattach`];
//! - per-client limits ([`ClientLimits`]) bound the sockets, listeners, ports and
//!   receive buffers one client can hold; clients are served round-robin with a budget
//!   per turn ([`ClientLimits::budget`]).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::ops::RangeInclusive;

use super::link::{Link, LinkError};
use super::local::{LocalListener, LocalStream};
use super::wire::{op, Event, Geometry, Message, Request, Span, Status, SERVER_ID_BIT};
use super::{Net, NetInner};
use crate::error::Error;
use crate::executor::Reactor;

/// What one client may hold on the server's stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// Most sockets at once: each stream counts 1, each listener its backlog.
    pub max_sockets: usize,
    /// Most listeners at once.
    pub max_listeners: usize,
    /// Ports the client may listen on.
    pub ports: RangeInclusive<u16>,
    /// Receive buffers one connection may have at the client before the server stops
    /// reading it (the rest wait in the stack; the TCP window closes).
    pub rx_buffers_per_socket: usize,
    /// Work units (requests, received buffers, accepted connections) per turn.
    pub budget: usize,
}

impl Default for ClientLimits {
    fn default() -> ClientLimits {
        ClientLimits {
            max_sockets: 16,
            max_listeners: 2,
            ports: 1..=u16::MAX,
            rx_buffers_per_socket: 8,
            budget: 64,
        }
    }
}

/// What the server did for one client (or all), for benchmarks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// Requests taken from the client's ring.
    pub requests: u64,
    /// Events pushed to the client's ring.
    pub events: u64,
    /// Bytes copied from the client's transmit area into the stack.
    pub bytes_to_stack: u64,
    /// Bytes copied from the stack into the client's receive area.
    pub bytes_from_stack: u64,
    /// Signals the link asked for (at most one per batch).
    pub signals: u64,
    /// Requests that did not parse (unknown operation, bad argument).
    pub malformed: u64,
    /// Requests naming no socket of this client (or an id already in use).
    pub bad_socket: u64,
    /// Spans outside the area, not a buffer's start, or naming a buffer the client does
    /// not own: dropped.
    pub bad_buffer: u64,
    /// Requests refused by the client's limits (sockets, listeners, ports).
    pub refused: u64,
    /// Times the client's ring was corrupt and the client was cut off.
    pub cut_off: u64,
}

impl ServerCounters {
    fn add(&mut self, other: &ServerCounters) {
        self.requests += other.requests;
        self.events += other.events;
        self.bytes_to_stack += other.bytes_to_stack;
        self.bytes_from_stack += other.bytes_from_stack;
        self.signals += other.signals;
        self.malformed += other.malformed;
        self.bad_socket += other.bad_socket;
        self.bad_buffer += other.bad_buffer;
        self.refused += other.refused;
        self.cut_off += other.cut_off;
    }
}

/// A client of the server, as [`SocketServer::attach`] returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientId(usize);

/// A transmit buffer the server holds for a connection.
struct Pending {
    index: usize,
    span: Span,
    done: u32,
}

struct StreamEntry {
    stream: LocalStream,
    connected: bool,
    pending: VecDeque<Pending>,
    rx_out: usize,
    eof_sent: bool,
    shutdown: bool,
}

enum Entry {
    Listener {
        listener: LocalListener,
        backlog: usize,
    },
    Stream(StreamEntry),
    /// Reset: the id stays taken until the client closes it.
    Dead,
}

struct Session {
    link: Option<Box<dyn Link>>,
    geometry: Geometry,
    limits: ClientLimits,
    sockets: BTreeMap<u32, Entry>,
    tx_held: Vec<bool>,
    rx_free: Vec<u32>,
    rx_out: Vec<Option<u32>>,
    outbox: VecDeque<Message>,
    counters: ServerCounters,
    next_accept: u32,
    cursor: u32,
    scratch: Vec<u32>,
}

impl Session {
    fn new(link: Box<dyn Link>, limits: ClientLimits) -> Session {
        let geometry = link.geometry();
        let mut session = Session {
            link: None,
            geometry,
            limits,
            sockets: BTreeMap::new(),
            tx_held: Vec::new(),
            rx_free: Vec::new(),
            rx_out: Vec::new(),
            outbox: VecDeque::new(),
            counters: ServerCounters::default(),
            next_accept: 0,
            cursor: 0,
            scratch: Vec::new(),
        };
        session.install(link);
        session
    }

    fn install(&mut self, link: Box<dyn Link>) {
        let geometry = link.geometry();
        let buffers = geometry.buffers as usize;
        self.geometry = geometry;
        self.tx_held = vec![false; buffers];
        self.rx_free = (0..geometry.buffers).rev().collect();
        self.rx_out = vec![None; buffers];
        self.outbox.clear();
        self.link = Some(link);
    }

    /// Aborts every socket and drops the link.
    fn drop_all(&mut self) {
        for (_, entry) in core::mem::take(&mut self.sockets) {
            match entry {
                Entry::Stream(s) => s.stream.abort(),
                Entry::Listener { listener, .. } => drop(listener),
                Entry::Dead => {}
            }
        }
        self.outbox.clear();
        self.link = None;
    }

    fn usage(&self) -> usize {
        self.sockets
            .values()
            .map(|e| match e {
                Entry::Listener { backlog, .. } => *backlog,
                _ => 1,
            })
            .sum()
    }

    fn emit(&mut self, event: Event) {
        self.outbox.push_back(event.encode());
    }

    fn fail(&mut self, socket: u32, op: u16, status: Status) {
        if status == Status::BadSocket {
            self.counters.bad_socket += 1;
        }
        self.emit(Event::Failed { socket, op, status });
    }

    /// Pushes queued events; returns true if any were pushed.
    fn flush(&mut self) -> bool {
        let Some(link) = self.link.as_mut() else {
            return false;
        };
        let count = super::link::push_queued(link.as_mut(), &mut self.outbox);
        self.counters.events += count;
        count > 0
    }

    fn is_new_id(&mut self, socket: u32, op: u16) -> bool {
        if socket & SERVER_ID_BIT != 0 || self.sockets.contains_key(&socket) {
            self.fail(socket, op, Status::BadSocket);
            return false;
        }
        true
    }

    fn handle(&mut self, net: &Rc<NetInner>, message: &Message) {
        self.counters.requests += 1;
        let request = match Request::parse(message) {
            Ok(request) => request,
            Err(_) => {
                self.counters.malformed += 1;
                self.fail(message.socket, message.op, Status::BadMessage);
                return;
            }
        };
        match request {
            Request::Listen {
                socket,
                port,
                backlog,
            } => {
                if !self.is_new_id(socket, op::LISTEN) {
                    return;
                }
                let listeners = self
                    .sockets
                    .values()
                    .filter(|e| matches!(e, Entry::Listener { .. }))
                    .count();
                let room = self.limits.max_sockets.saturating_sub(self.usage());
                let backlog = (backlog as usize).min(room);
                let status = if !self.limits.ports.contains(&port) {
                    Some(Status::AddressInUse)
                } else if listeners >= self.limits.max_listeners || backlog == 0 {
                    Some(Status::Limit)
                } else {
                    None
                };
                if let Some(status) = status {
                    self.counters.refused += 1;
                    self.fail(socket, op::LISTEN, status);
                    return;
                }
                match LocalListener::bind(net, port, backlog) {
                    Ok(listener) => {
                        self.sockets
                            .insert(socket, Entry::Listener { listener, backlog });
                    }
                    Err(e) => self.fail(socket, op::LISTEN, Status::from_error(e)),
                }
            }
            Request::SetBacklog { socket, backlog } => {
                let room = self.limits.max_sockets.saturating_sub(self.usage());
                match self.sockets.get_mut(&socket) {
                    Some(Entry::Listener {
                        listener,
                        backlog: have,
                    }) => {
                        let want = (backlog as usize).min(*have + room).max(*have);
                        if want > *have && listener.set_backlog(want).is_ok() {
                            *have = want;
                        }
                    }
                    _ => self.fail(socket, op::SET_BACKLOG, Status::BadSocket),
                }
            }
            Request::Connect { socket, remote } => {
                if !self.is_new_id(socket, op::CONNECT) {
                    return;
                }
                if self.usage() >= self.limits.max_sockets {
                    self.counters.refused += 1;
                    self.fail(socket, op::CONNECT, Status::Limit);
                    return;
                }
                match LocalStream::start_connect(net, remote) {
                    Ok(stream) => {
                        self.sockets.insert(
                            socket,
                            Entry::Stream(StreamEntry {
                                stream,
                                connected: false,
                                pending: VecDeque::new(),
                                rx_out: 0,
                                eof_sent: false,
                                shutdown: false,
                            }),
                        );
                    }
                    Err(e) => self.fail(socket, op::CONNECT, Status::from_error(e)),
                }
            }
            Request::Write { socket, span } => {
                let index = match self.geometry.buffer_index(span) {
                    Some(index) if span.len > 0 && !self.tx_held[index] => index,
                    _ => {
                        self.counters.bad_buffer += 1;
                        return;
                    }
                };
                match self.sockets.get_mut(&socket) {
                    Some(Entry::Stream(s)) if !s.shutdown => {
                        self.tx_held[index] = true;
                        s.pending.push_back(Pending {
                            index,
                            span,
                            done: 0,
                        });
                    }
                    other => {
                        let status = match other {
                            Some(Entry::Dead) => Status::ConnectionReset,
                            Some(Entry::Stream(_)) => Status::NotConnected,
                            _ => Status::BadSocket,
                        };
                        self.emit(Event::Released { socket, span });
                        self.fail(socket, op::WRITE, status);
                    }
                }
            }
            Request::Release { span } => {
                let owner = self
                    .geometry
                    .buffer_index(span)
                    .and_then(|index| self.rx_out[index].take().map(|o| (index, o)));
                let Some((index, owner)) = owner else {
                    self.counters.bad_buffer += 1;
                    return;
                };
                self.rx_free.push(index as u32);
                if let Some(Entry::Stream(s)) = self.sockets.get_mut(&owner) {
                    s.rx_out = s.rx_out.saturating_sub(1);
                }
            }
            Request::Shutdown { socket } => match self.sockets.get_mut(&socket) {
                Some(Entry::Stream(s)) => s.shutdown = true,
                Some(Entry::Dead) => {}
                _ => self.fail(socket, op::SHUTDOWN, Status::BadSocket),
            },
            Request::Close { socket } | Request::Abort { socket } => {
                let abort = matches!(request, Request::Abort { .. });
                let code = if abort { op::ABORT } else { op::CLOSE };
                match self.sockets.remove(&socket) {
                    Some(entry) => {
                        if let Entry::Stream(s) = entry {
                            self.release_pending(socket, s.pending.iter());
                            if abort {
                                s.stream.abort();
                            }
                        }
                        self.emit(Event::Closed { socket });
                    }
                    None => self.fail(socket, code, Status::BadSocket),
                }
            }
            Request::NoDelay { socket, on } => match self.sockets.get(&socket) {
                Some(Entry::Stream(s)) => s.stream.set_nodelay(on),
                Some(Entry::Dead) => {}
                _ => self.fail(socket, op::NO_DELAY, Status::BadSocket),
            },
        }
    }

    fn release_pending<'a>(&mut self, socket: u32, pending: impl Iterator<Item = &'a Pending>) {
        for p in pending {
            self.tx_held[p.index] = false;
            self.outbox.push_back(
                Event::Released {
                    socket,
                    span: p.span,
                }
                .encode(),
            );
        }
    }

    /// Moves data and connections for socket `id`; returns work units spent.
    fn pump(&mut self, id: u32, budget: usize) -> usize {
        let mut spent = 0;
        let usage = self.usage();
        let max_sockets = self.limits.max_sockets;
        let rx_cap = self.limits.rx_buffers_per_socket;
        let Some(link) = self.link.as_mut() else {
            return 0;
        };
        let size = self.geometry.buffer_size as usize;
        let Some(entry) = self.sockets.get_mut(&id) else {
            return 0;
        };
        let mut dead = false;
        match entry {
            Entry::Dead => {}
            Entry::Listener { listener, .. } => {
                let mut room = max_sockets.saturating_sub(usage);
                let mut accepted = Vec::new();
                while room > 0 && spent < budget {
                    let Ok((stream, peer)) = listener.try_accept() else {
                        break;
                    };
                    let local_port = listener.port();
                    accepted.push((stream, peer, local_port));
                    room -= 1;
                    spent += 1;
                }
                for (stream, peer, local_port) in accepted {
                    let socket = loop {
                        self.next_accept = (self.next_accept + 1) & !SERVER_ID_BIT;
                        let socket = SERVER_ID_BIT | self.next_accept;
                        if !self.sockets.contains_key(&socket) {
                            break socket;
                        }
                    };
                    self.sockets.insert(
                        socket,
                        Entry::Stream(StreamEntry {
                            stream,
                            connected: true,
                            pending: VecDeque::new(),
                            rx_out: 0,
                            eof_sent: false,
                            shutdown: false,
                        }),
                    );
                    self.emit(Event::Accepted {
                        socket,
                        listener: id,
                        peer,
                        local_port,
                    });
                }
            }
            Entry::Stream(s) => {
                if !s.connected {
                    match s.stream.connect_state() {
                        Ok(()) => {
                            s.connected = true;
                            let local_port = s.stream.local_addr().map_or(0, |a| a.port());
                            self.outbox.push_back(
                                Event::Connected {
                                    socket: id,
                                    local_port,
                                }
                                .encode(),
                            );
                        }
                        Err(Error::WouldBlock) => return 0,
                        Err(e) => {
                            let Some(Entry::Stream(s)) = self.sockets.remove(&id) else {
                                return 0;
                            };
                            self.release_pending(id, s.pending.iter());
                            self.fail(id, op::CONNECT, Status::from_error(e));
                            return 1;
                        }
                    }
                }
                // Transmit: the client's buffers into the stack, one copy.
                while let Some(p) = s.pending.front_mut() {
                    let offset = p.span.offset + p.done;
                    let left = (p.span.len - p.done) as usize;
                    let result = s.stream.send_with(|room| {
                        let n = room.len().min(left);
                        match link.read_in(offset, &mut room[..n]) {
                            Ok(()) => n,
                            Err(_) => 0,
                        }
                    });
                    match result {
                        Ok(n) => {
                            p.done += n as u32;
                            self.counters.bytes_to_stack += n as u64;
                            if p.done == p.span.len {
                                self.tx_held[p.index] = false;
                                let span = p.span;
                                s.pending.pop_front();
                                self.outbox
                                    .push_back(Event::Released { socket: id, span }.encode());
                            }
                        }
                        Err(Error::WouldBlock) => break,
                        Err(_) => {
                            dead = true;
                            break;
                        }
                    }
                }
                if s.shutdown && s.pending.is_empty() && !dead {
                    s.stream.shutdown();
                }
                // Receive: the stack into the client's buffers, one copy.
                while !dead && !s.eof_sent && s.rx_out < rx_cap && spent < budget {
                    let Some(index) = self.rx_free.pop() else {
                        break;
                    };
                    let offset = index * size as u32;
                    let result = s.stream.recv_with(|data| {
                        let n = data.len().min(size);
                        match link.write_out(offset, &data[..n]) {
                            Ok(()) => n,
                            Err(LinkError::OutOfBounds | LinkError::Full | LinkError::Corrupt) => 0,
                        }
                    });
                    match result {
                        Ok(0) => {
                            self.rx_free.push(index);
                            s.eof_sent = true;
                            self.outbox.push_back(Event::Eof { socket: id }.encode());
                        }
                        Ok(n) => {
                            self.rx_out[index as usize] = Some(id);
                            s.rx_out += 1;
                            spent += 1;
                            self.counters.bytes_from_stack += n as u64;
                            let span = Span {
                                offset,
                                len: n as u32,
                            };
                            self.outbox
                                .push_back(Event::Data { socket: id, span }.encode());
                        }
                        Err(Error::WouldBlock) => {
                            self.rx_free.push(index);
                            break;
                        }
                        Err(_) => {
                            self.rx_free.push(index);
                            dead = true;
                        }
                    }
                }
            }
        }
        if dead {
            if let Some(Entry::Stream(s)) = self.sockets.insert(id, Entry::Dead) {
                self.release_pending(id, s.pending.iter());
            }
            self.emit(Event::Reset { socket: id });
            spent += 1;
        }
        spent
    }

    /// One turn for this client: requests, then its sockets, within its budget; returns
    /// true if anything happened.
    fn serve(&mut self, net: &Rc<NetInner>) -> bool {
        if self.link.is_none() {
            return false;
        }
        let mut progress = self.flush();
        let budget = self.limits.budget.max(1);
        let mut spent = 0;
        // Backpressure: no new work while the client's event ring is full.
        while self.outbox.is_empty() && spent < budget {
            let Some(link) = self.link.as_mut() else {
                break;
            };
            match link.pop() {
                Ok(Some(message)) => {
                    spent += 1;
                    progress = true;
                    self.handle(net, &message);
                }
                Ok(None) => break,
                Err(_) => {
                    self.counters.cut_off += 1;
                    self.drop_all();
                    return true;
                }
            }
        }
        // Sockets, starting after the one served last, so none is always first.
        let mut ids = core::mem::take(&mut self.scratch);
        ids.clear();
        ids.extend(self.sockets.range(self.cursor..).map(|(&id, _)| id));
        ids.extend(self.sockets.range(..self.cursor).map(|(&id, _)| id));
        for &id in &ids {
            if spent >= budget || self.outbox.len() > self.geometry.buffers as usize {
                self.cursor = id;
                break;
            }
            let before = self.outbox.len();
            spent += self.pump(id, budget - spent);
            progress |= self.outbox.len() != before;
        }
        self.scratch = ids;
        progress |= self.flush();
        if let Some(link) = self.link.as_mut() {
            if progress && link.publish() {
                self.counters.signals += 1;
                link.signal();
            }
            if !progress && link.prepare_wait() {
                progress = true;
            }
        }
        progress
    }
}

struct ServerInner {
    net: Rc<NetInner>,
    sessions: RefCell<Vec<Session>>,
    next: Cell<usize>,
}

impl Reactor for ServerInner {
    fn poll(&self, _now_ns: u64) -> bool {
        let mut sessions = self.sessions.borrow_mut();
        let count = sessions.len();
        if count == 0 {
            return false;
        }
        let start = self.next.get() % count;
        self.next.set(start + 1);
        let mut progress = false;
        for k in 0..count {
            progress |= sessions[(start + k) % count].serve(&self.net);
        }
        progress
    }

    fn poll_at(&self, _now_ns: u64) -> Option<u64> {
        None
    }
}

/// The socket server over a local [`Net`]; cheap to clone.
#[derive(Clone)]
pub struct SocketServer {
    inner: Rc<ServerInner>,
}

impl SocketServer {
    /// Creates a server for the sockets of `net` and registers it with `net`'s runtime.
    ///
    /// Fails with `InvalidInput` when `net` is itself remote.
    pub fn new(net: &Net) -> Result<SocketServer, Error> {
        let local = net.local().ok_or(Error::InvalidInput)?;
        let inner = Rc::new(ServerInner {
            net: local.clone(),
            sessions: RefCell::new(Vec::new()),
            next: Cell::new(0),
        });
        let weak: alloc::rc::Weak<dyn Reactor> =
            Rc::downgrade(&inner) as alloc::rc::Weak<dyn Reactor>;
        net.runtime().add_reactor(weak);
        Ok(SocketServer { inner })
    }

    /// Serves a new client over `link` within `limits`; returns its id.
    pub fn attach(&self, link: Box<dyn Link>, limits: ClientLimits) -> ClientId {
        let mut sessions = self.inner.sessions.borrow_mut();
        sessions.push(Session::new(link, limits));
        ClientId(sessions.len() - 1)
    }

    /// The client's link is gone (its component restarted): aborts its sockets and
    /// drops the link. Its counters stay.
    pub fn reset(&self, client: ClientId) {
        if let Some(session) = self.inner.sessions.borrow_mut().get_mut(client.0) {
            session.drop_all();
        }
    }

    /// Serves `client` again over a fresh `link`, with no sockets (after a reset or a
    /// cut-off; an existing link is reset first).
    pub fn reattach(&self, client: ClientId, link: Box<dyn Link>) {
        if let Some(session) = self.inner.sessions.borrow_mut().get_mut(client.0) {
            session.drop_all();
            session.install(link);
        }
    }

    /// Returns true while `client` has a link (not reset, not cut off).
    pub fn is_attached(&self, client: ClientId) -> bool {
        self.inner
            .sessions
            .borrow()
            .get(client.0)
            .is_some_and(|s| s.link.is_some())
    }

    /// Returns the sockets `client` holds (streams, listeners, reset ids not yet closed).
    pub fn socket_count(&self, client: ClientId) -> usize {
        self.inner
            .sessions
            .borrow()
            .get(client.0)
            .map_or(0, |s| s.sockets.len())
    }

    /// Returns what the server did for `client`.
    pub fn counters(&self, client: ClientId) -> ServerCounters {
        self.inner
            .sessions
            .borrow()
            .get(client.0)
            .map_or_else(ServerCounters::default, |s| s.counters)
    }

    /// Returns what the server did for all clients together.
    pub fn total_counters(&self) -> ServerCounters {
        let mut total = ServerCounters::default();
        for session in self.inner.sessions.borrow().iter() {
            total.add(&session.counters);
        }
        total
    }
}
