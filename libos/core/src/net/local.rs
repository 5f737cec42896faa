//! The local backend of the socket API: listeners and streams on this component's own
//! smoltcp stack ([`NetInner`]). [`super::tcp`] wraps them; the socket server uses them
//! directly.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::poll_fn;
use core::net::SocketAddrV4;
use core::task::Poll;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};
use smoltcp::wire::{IpAddress, IpEndpoint};

use super::NetInner;
use crate::error::Error;

fn to_v4(endpoint: IpEndpoint) -> SocketAddrV4 {
    let IpAddress::Ipv4(address) = endpoint.addr;
    SocketAddrV4::new(address, endpoint.port)
}

/// The error a write gets in a state that cannot send.
fn write_state_error(state: State) -> Error {
    match state {
        State::Closed | State::TimeWait | State::Closing | State::LastAck => Error::ConnectionReset,
        _ => Error::NotConnected,
    }
}

/// Waits until `attempt` stops returning `WouldBlock`, re-trying after stack progress.
pub(crate) async fn wait_for<T>(
    net: &NetInner,
    mut attempt: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    poll_fn(|cx| match attempt() {
        Err(Error::WouldBlock) => {
            net.wait(cx.waker());
            Poll::Pending
        }
        other => Poll::Ready(other),
    })
    .await
}

/// A TCP listener that keeps `backlog` sockets listening on one port, so a burst of
/// connection attempts is accepted (smoltcp accepts one connection per socket).
pub(crate) struct LocalListener {
    pub(crate) net: Rc<NetInner>,
    port: u16,
    backlog: RefCell<Vec<SocketHandle>>,
    /// The backlog asked for: refilled up to this as sockets become free.
    target: core::cell::Cell<usize>,
}

impl LocalListener {
    /// Starts listening on `port` (all local addresses) with `backlog` listening sockets.
    ///
    /// Fails with `InvalidInput` for a backlog of 0, `Unaddressable` for port 0,
    /// `AddressInUse` when another listener holds the port.
    pub(crate) fn bind(
        net: &Rc<NetInner>,
        port: u16,
        backlog: usize,
    ) -> Result<LocalListener, Error> {
        if backlog == 0 {
            return Err(Error::InvalidInput);
        }
        if port == 0 {
            return Err(Error::Unaddressable);
        }
        {
            let mut state = net.state.borrow_mut();
            if state.bound_ports.contains(&port) {
                return Err(Error::AddressInUse);
            }
            state.bound_ports.push(port);
        }
        let listener = LocalListener {
            net: net.clone(),
            port,
            backlog: RefCell::new(Vec::new()),
            target: core::cell::Cell::new(0),
        };
        listener.set_backlog(backlog)?;
        Ok(listener)
    }

    /// Returns the port this listener is bound to.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Returns the number of sockets kept listening.
    pub(crate) fn backlog(&self) -> usize {
        self.backlog.borrow().len()
    }

    /// Grows the backlog to at least `backlog` listening sockets (it never shrinks).
    ///
    /// Fails with `InvalidInput` for 0, `OutOfMemory` when the socket limit leaves no room
    /// for them all (those that fit listen, and the rest follow as sockets free up).
    pub(crate) fn set_backlog(&self, backlog: usize) -> Result<(), Error> {
        if backlog == 0 {
            return Err(Error::InvalidInput);
        }
        self.target.set(self.target.get().max(backlog));
        self.refill(backlog)
    }

    /// Adds listening sockets until there are `backlog`.
    fn refill(&self, backlog: usize) -> Result<(), Error> {
        let mut handles = self.backlog.borrow_mut();
        let mut state = self.net.state.borrow_mut();
        while handles.len() < backlog {
            let handle = state.new_tcp_socket()?;
            if state
                .sockets
                .get_mut::<tcp::Socket>(handle)
                .listen(self.port)
                .is_err()
            {
                state.sockets.remove(handle);
                return Err(Error::Unaddressable);
            }
            handles.push(handle);
        }
        Ok(())
    }

    /// Takes an established connection if one is waiting.
    ///
    /// Fails with `WouldBlock` when none is. The socket that carried it is replaced by a
    /// fresh listening one, so the backlog stays full while the socket limit allows; below
    /// it, later calls refill the backlog as sockets free up.
    pub(crate) fn try_accept(&self) -> Result<(LocalStream, SocketAddrV4), Error> {
        // At the socket limit this adds what it can; connection attempts that find no
        // listening socket are reset by the stack.
        let _ = self.refill(self.target.get());
        let mut handles = self.backlog.borrow_mut();
        let mut state = self.net.state.borrow_mut();
        for index in 0..handles.len() {
            let handle = handles[index];
            let socket = state.sockets.get_mut::<tcp::Socket>(handle);
            match socket.state() {
                State::Listen | State::SynReceived => continue,
                State::Closed | State::TimeWait => {
                    // Reset before anyone accepted it: recycle silently.
                    let _ = socket.listen(self.port);
                    continue;
                }
                _ => {}
            }
            let Some(remote) = socket.remote_endpoint() else {
                continue;
            };
            match state.new_tcp_socket() {
                Ok(fresh)
                    if state
                        .sockets
                        .get_mut::<tcp::Socket>(fresh)
                        .listen(self.port)
                        .is_ok() =>
                {
                    handles[index] = fresh;
                }
                Ok(fresh) => {
                    state.sockets.remove(fresh);
                    handles.remove(index);
                }
                Err(_) => {
                    handles.remove(index);
                }
            }
            let stream = LocalStream {
                net: self.net.clone(),
                handle,
            };
            return Ok((stream, to_v4(remote)));
        }
        Err(Error::WouldBlock)
    }
}

impl Drop for LocalListener {
    fn drop(&mut self) {
        let now = self.net.runtime.now_ns();
        let mut state = self.net.state.borrow_mut();
        for handle in self.backlog.borrow_mut().drain(..) {
            state.orphan(handle, now, true);
        }
        let port = self.port;
        state.bound_ports.retain(|&p| p != port);
    }
}

/// One TCP connection. Dropping it closes it gracefully in the background.
pub(crate) struct LocalStream {
    pub(crate) net: Rc<NetInner>,
    handle: SocketHandle,
}

impl LocalStream {
    /// Starts connecting to `remote` without waiting; [`LocalStream::connect_state`]
    /// tells when the connection is established.
    ///
    /// Fails with `Unaddressable` when no route or local address fits, `OutOfMemory` at
    /// the socket limit.
    pub(crate) fn start_connect(
        net: &Rc<NetInner>,
        remote: SocketAddrV4,
    ) -> Result<LocalStream, Error> {
        let mut guard = net.state.borrow_mut();
        let state = &mut *guard;
        let handle = state.new_tcp_socket()?;
        let local_port = state.ephemeral_port();
        let socket = state.sockets.get_mut::<tcp::Socket>(handle);
        let endpoint = IpEndpoint::new(IpAddress::Ipv4(*remote.ip()), remote.port());
        if socket
            .connect(state.iface.context(), endpoint, local_port)
            .is_err()
        {
            state.sockets.remove(handle);
            return Err(Error::Unaddressable);
        }
        Ok(LocalStream {
            net: net.clone(),
            handle,
        })
    }

    /// Returns `Ok` once a connection started by [`LocalStream::start_connect`] is
    /// established; fails with `WouldBlock` while the handshake runs,
    /// `ConnectionRefused` when the peer reset the attempt.
    pub(crate) fn connect_state(&self) -> Result<(), Error> {
        self.with_socket(|socket| match socket.state() {
            State::SynSent | State::SynReceived => Err(Error::WouldBlock),
            State::Closed => Err(Error::ConnectionRefused),
            _ => Ok(()),
        })
    }

    /// Connects to `remote` and waits until the connection is established.
    ///
    /// Fails like [`LocalStream::start_connect`], or with `ConnectionRefused` when the
    /// peer resets the attempt. Retries SYNs until established.
    pub(crate) async fn connect(
        net: &Rc<NetInner>,
        remote: SocketAddrV4,
    ) -> Result<LocalStream, Error> {
        let stream = LocalStream::start_connect(net, remote)?;
        wait_for(net, || stream.connect_state()).await?;
        Ok(stream)
    }

    /// Hands the received bytes (up to the first wrap of the receive buffer) to `take`,
    /// which returns how many it consumed; returns that count, `Ok(0)` at end of stream.
    ///
    /// Fails with `WouldBlock` when nothing is there, `ConnectionReset` when the
    /// connection was reset or never established.
    pub(crate) fn recv_with(&mut self, take: impl FnOnce(&[u8]) -> usize) -> Result<usize, Error> {
        self.with_socket(|socket| {
            match socket.recv(|data| {
                let n = if data.is_empty() {
                    0
                } else {
                    take(data).min(data.len())
                };
                (n, n)
            }) {
                Ok(0) => Err(Error::WouldBlock),
                Ok(n) => Ok(n),
                Err(tcp::RecvError::Finished) => Ok(0),
                Err(tcp::RecvError::InvalidState) => Err(Error::ConnectionReset),
            }
        })
    }

    /// Hands the free room of the send buffer (up to its first wrap) to `fill`, which
    /// writes into it and returns how many bytes it wrote; returns that count.
    ///
    /// Fails with `WouldBlock` when the send buffer is full, and like
    /// [`LocalStream::try_write`] otherwise.
    pub(crate) fn send_with(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, Error> {
        self.with_socket(|socket| {
            match socket.send(|room| {
                let n = if room.is_empty() {
                    0
                } else {
                    fill(room).min(room.len())
                };
                (n, n)
            }) {
                Ok(0) => Err(Error::WouldBlock),
                Ok(n) => Ok(n),
                Err(tcp::SendError::InvalidState) => Err(write_state_error(socket.state())),
            }
        })
    }

    fn with_socket<R>(&self, f: impl FnOnce(&mut tcp::Socket<'static>) -> R) -> R {
        let mut state = self.net.state.borrow_mut();
        f(state.sockets.get_mut::<tcp::Socket>(self.handle))
    }

    /// Returns the local address and port, or `None` once closed.
    pub(crate) fn local_addr(&self) -> Option<SocketAddrV4> {
        self.with_socket(|s| s.local_endpoint().map(to_v4))
    }

    /// Returns the peer's address and port, or `None` once closed.
    pub(crate) fn peer_addr(&self) -> Option<SocketAddrV4> {
        self.with_socket(|s| s.remote_endpoint().map(to_v4))
    }

    /// Disables (true) or enables (false) Nagle's algorithm for small writes.
    pub(crate) fn set_nodelay(&self, nodelay: bool) {
        self.with_socket(|s| s.set_nagle_enabled(!nodelay));
    }

    /// Returns the number of received bytes waiting to be read.
    pub(crate) fn recv_queue(&self) -> usize {
        self.with_socket(|s| s.recv_queue())
    }

    /// Returns the number of written bytes not yet acknowledged by the peer.
    pub(crate) fn send_queue(&self) -> usize {
        self.with_socket(|s| s.send_queue())
    }

    /// Reads received bytes into `buffer` without waiting.
    ///
    /// Returns `Ok(0)` at end of stream (the peer closed its side); fails with
    /// `WouldBlock` when nothing is there yet, `ConnectionReset` when the connection was
    /// reset or never established.
    pub(crate) fn try_read(&mut self, buffer: &mut [u8]) -> Result<usize, Error> {
        if buffer.is_empty() {
            return Ok(0);
        }
        self.with_socket(|socket| match socket.recv_slice(buffer) {
            Ok(0) => Err(Error::WouldBlock),
            Ok(n) => Ok(n),
            Err(tcp::RecvError::Finished) => Ok(0),
            Err(tcp::RecvError::InvalidState) => Err(Error::ConnectionReset),
        })
    }

    /// Discards up to `limit` received bytes without copying them; returns how many,
    /// `Ok(0)` at end of stream. Fails like [`LocalStream::try_read`].
    pub(crate) fn try_discard(&mut self, limit: usize) -> Result<usize, Error> {
        self.with_socket(|socket| {
            match socket.recv(|data| {
                let n = data.len().min(limit);
                (n, n)
            }) {
                Ok(0) => Err(Error::WouldBlock),
                Ok(n) => Ok(n),
                Err(tcp::RecvError::Finished) => Ok(0),
                Err(tcp::RecvError::InvalidState) => Err(Error::ConnectionReset),
            }
        })
    }

    /// Queues bytes from `data` for sending without waiting; returns how many.
    ///
    /// Fails with `WouldBlock` when the send buffer is full, `NotConnected` after
    /// [`LocalStream::shutdown`] or before the connection is established,
    /// `ConnectionReset` when it was reset or closed.
    pub(crate) fn try_write(&mut self, data: &[u8]) -> Result<usize, Error> {
        if data.is_empty() {
            return Ok(0);
        }
        self.with_socket(|socket| match socket.send_slice(data) {
            Ok(0) => Err(Error::WouldBlock),
            Ok(n) => Ok(n),
            Err(tcp::SendError::InvalidState) => Err(write_state_error(socket.state())),
        })
    }

    /// Waits until the peer has acknowledged everything written.
    ///
    /// Fails with `ConnectionReset` if the connection goes away first.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        let net = self.net.clone();
        wait_for(&net, || {
            self.with_socket(|socket| {
                if socket.send_queue() == 0 {
                    Ok(())
                } else if socket.state() == State::Closed {
                    Err(Error::ConnectionReset)
                } else {
                    Err(Error::WouldBlock)
                }
            })
        })
        .await
    }

    /// Closes the sending side: the peer reads end of stream after the queued bytes.
    /// Reading stays possible.
    pub(crate) fn shutdown(&mut self) {
        self.with_socket(|socket| socket.close());
    }

    /// Closes the connection and waits (up to `timeout_ns`) until the peer has
    /// acknowledged everything and closed too; after the timeout it aborts.
    pub(crate) async fn close(mut self, timeout_ns: u64) {
        self.shutdown();
        let net = self.net.clone();
        let runtime = net.runtime.clone();
        let done = runtime
            .timeout(
                timeout_ns,
                wait_for(&net, || {
                    self.with_socket(|socket| {
                        // Drain what the peer still sends so its close can complete.
                        let _ = socket.recv(|data| (data.len(), ()));
                        match socket.state() {
                            State::Closed | State::TimeWait => Ok(()),
                            _ => Err(Error::WouldBlock),
                        }
                    })
                }),
            )
            .await;
        if done.is_err() {
            self.with_socket(|socket| socket.abort());
        }
    }

    /// Resets the connection at once (the peer sees a reset), discarding queued data.
    pub(crate) fn abort(self) {
        self.with_socket(|socket| socket.abort());
    }

    /// Returns true while the peer may still send (no end of stream or reset seen).
    pub(crate) fn may_read(&self) -> bool {
        self.with_socket(|s| s.may_recv())
    }

    /// Returns true while the connection is not closed or reset.
    pub(crate) fn is_open(&self) -> bool {
        self.with_socket(|s| s.is_open())
    }
}

impl Drop for LocalStream {
    fn drop(&mut self) {
        let now = self.net.runtime.now_ns();
        // The stack may be borrowed if dropped during a reactor callback; that never
        // happens because streams are only dropped by tasks.
        if let Ok(mut state) = self.net.state.try_borrow_mut() {
            state.orphan(self.handle, now, false);
        }
    }
}
