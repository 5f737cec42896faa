//! BSD-like TCP sockets: [`TcpListener`] with a backlog, and [`TcpStream`].
//!
//! Every blocking operation has a non-blocking `try_` form that fails with
//! [`Error::WouldBlock`]; the blocking forms are `async` and wait on the stack's
//! progress. Deadlines: wrap any call in [`crate::Runtime::timeout`], or use the
//! `_timeout` forms.
//!
//! The same API runs on both backends of a [`Net`]: the local smoltcp stack
//! ([`super::local`]) and a remote `net` server ([`super::remote`]). Where they differ,
//! the method says so.

use core::future::poll_fn;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::task::{Poll, Waker};

use super::local::{LocalListener, LocalStream};
use super::remote::{RemoteListener, RemoteStream};
use super::{Backend, Net};
use crate::error::Error;

enum ListenerBackend {
    Local(LocalListener),
    Remote(RemoteListener),
}

/// A TCP listener that keeps `backlog` sockets listening on one port, so a burst of
/// connection attempts is accepted (smoltcp accepts one connection per socket).
pub struct TcpListener {
    backend: ListenerBackend,
}

impl TcpListener {
    /// Starts listening on `port` (all local addresses) with `backlog` listening sockets.
    ///
    /// Fails with `InvalidInput` for a backlog of 0, `Unaddressable` for port 0,
    /// `AddressInUse` when another listener holds the port. On a remote [`Net`] the
    /// server's refusals (`AddressInUse`, a port the client may not bind, `OutOfMemory`
    /// at its socket limit) arrive later, as the error of the next accept.
    pub fn bind(net: &Net, port: u16, backlog: usize) -> Result<TcpListener, Error> {
        let backend = match &net.backend {
            Backend::Local(inner) => {
                ListenerBackend::Local(LocalListener::bind(inner, port, backlog)?)
            }
            Backend::Remote(client) => {
                ListenerBackend::Remote(RemoteListener::bind(client, port, backlog)?)
            }
        };
        Ok(TcpListener { backend })
    }

    /// Returns the port this listener is bound to.
    pub fn port(&self) -> u16 {
        match &self.backend {
            ListenerBackend::Local(l) => l.port(),
            ListenerBackend::Remote(l) => l.port(),
        }
    }

    /// Returns the number of sockets kept listening (remote: the number asked for).
    pub fn backlog(&self) -> usize {
        match &self.backend {
            ListenerBackend::Local(l) => l.backlog(),
            ListenerBackend::Remote(l) => l.backlog(),
        }
    }

    /// Grows the backlog to at least `backlog` listening sockets (it never shrinks).
    ///
    /// Fails with `InvalidInput` for 0, `OutOfMemory` when the socket limit leaves no room
    /// for them all (those that fit listen, and the rest follow as sockets free up).
    pub fn set_backlog(&self, backlog: usize) -> Result<(), Error> {
        match &self.backend {
            ListenerBackend::Local(l) => l.set_backlog(backlog),
            ListenerBackend::Remote(l) => l.set_backlog(backlog),
        }
    }

    /// Takes an established connection if one is waiting.
    ///
    /// Fails with `WouldBlock` when none is. The socket that carried it is replaced by a
    /// fresh listening one, so the backlog stays full while the socket limit allows; below
    /// it, later calls refill the backlog as sockets free up.
    pub fn try_accept(&self) -> Result<(TcpStream, SocketAddrV4), Error> {
        match &self.backend {
            ListenerBackend::Local(l) => l.try_accept().map(|(s, a)| (s.into(), a)),
            ListenerBackend::Remote(l) => l.try_accept().map(|(s, a)| (s.into(), a)),
        }
    }

    fn register(&self, waker: &Waker) {
        match &self.backend {
            ListenerBackend::Local(l) => l.net.wait(waker),
            ListenerBackend::Remote(l) => l.client.wait(waker),
        }
    }

    /// Waits for an established connection and returns it with the peer's address.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddrV4), Error> {
        poll_fn(|cx| match self.try_accept() {
            Err(Error::WouldBlock) => {
                self.register(cx.waker());
                Poll::Pending
            }
            other => Poll::Ready(other),
        })
        .await
    }
}

enum StreamBackend {
    Local(LocalStream),
    Remote(RemoteStream),
}

/// One TCP connection. Dropping it closes it gracefully in the background.
pub struct TcpStream {
    backend: StreamBackend,
}

impl From<LocalStream> for TcpStream {
    fn from(stream: LocalStream) -> TcpStream {
        TcpStream {
            backend: StreamBackend::Local(stream),
        }
    }
}

impl From<RemoteStream> for TcpStream {
    fn from(stream: RemoteStream) -> TcpStream {
        TcpStream {
            backend: StreamBackend::Remote(stream),
        }
    }
}

/// Runs `$body` with `$s` bound to the stream's backend, whichever it is.
macro_rules! on_backend {
    ($stream:expr, $s:ident => $body:expr) => {
        match $stream {
            StreamBackend::Local($s) => $body,
            StreamBackend::Remote($s) => $body,
        }
    };
}

impl TcpStream {
    /// Connects to `remote` and waits until the connection is established.
    ///
    /// Fails with `Unaddressable` when no route or local address fits, or
    /// `ConnectionRefused` when the peer resets the attempt. Retries SYNs until
    /// established; bound it with [`TcpStream::connect_timeout`].
    pub async fn connect(net: &Net, remote: SocketAddrV4) -> Result<TcpStream, Error> {
        match &net.backend {
            Backend::Local(inner) => Ok(LocalStream::connect(inner, remote).await?.into()),
            Backend::Remote(client) => Ok(RemoteStream::connect(client, remote).await?.into()),
        }
    }

    /// Like [`TcpStream::connect`], failing with `TimedOut` after `timeout_ns`.
    pub async fn connect_timeout(
        net: &Net,
        remote: SocketAddrV4,
        timeout_ns: u64,
    ) -> Result<TcpStream, Error> {
        net.runtime()
            .timeout(timeout_ns, Self::connect(net, remote))
            .await?
    }

    fn register(&self, waker: &Waker) {
        match &self.backend {
            StreamBackend::Local(s) => s.net.wait(waker),
            StreamBackend::Remote(s) => s.client.wait(waker),
        }
    }

    /// Returns the local address and port, or `None` once closed.
    pub fn local_addr(&self) -> Option<SocketAddrV4> {
        on_backend!(&self.backend, s => s.local_addr())
    }

    /// Returns the peer's address and port, or `None` once closed.
    pub fn peer_addr(&self) -> Option<SocketAddrV4> {
        on_backend!(&self.backend, s => s.peer_addr())
    }

    /// Returns the peer's IPv4 address, or `None` once closed.
    pub fn peer_ip(&self) -> Option<Ipv4Addr> {
        self.peer_addr().map(|a| *a.ip())
    }

    /// Disables (true) or enables (false) Nagle's algorithm for small writes.
    pub fn set_nodelay(&self, nodelay: bool) {
        on_backend!(&self.backend, s => s.set_nodelay(nodelay))
    }

    /// Returns the number of received bytes waiting to be read (remote: those already
    /// in this component).
    pub fn recv_queue(&self) -> usize {
        on_backend!(&self.backend, s => s.recv_queue())
    }

    /// Returns the number of written bytes not yet acknowledged by the peer (remote: not
    /// yet taken by the server's stack).
    pub fn send_queue(&self) -> usize {
        on_backend!(&self.backend, s => s.send_queue())
    }

    /// Reads received bytes into `buffer` without waiting.
    ///
    /// Returns `Ok(0)` at end of stream (the peer closed its side); fails with
    /// `WouldBlock` when nothing is there yet, `ConnectionReset` when the connection was
    /// reset or never established (remote: or the server went away).
    pub fn try_read(&mut self, buffer: &mut [u8]) -> Result<usize, Error> {
        if buffer.is_empty() {
            return Ok(0);
        }
        on_backend!(&mut self.backend, s => s.try_read(buffer))
    }

    /// Waits for and reads received bytes into `buffer`; `Ok(0)` means end of stream.
    pub async fn read(&mut self, buffer: &mut [u8]) -> Result<usize, Error> {
        poll_fn(|cx| match self.try_read(buffer) {
            Err(Error::WouldBlock) => {
                self.register(cx.waker());
                Poll::Pending
            }
            other => Poll::Ready(other),
        })
        .await
    }

    /// Reads exactly `buffer.len()` bytes; fails with `UnexpectedEof` if the stream ends
    /// first.
    pub async fn read_exact(&mut self, buffer: &mut [u8]) -> Result<(), Error> {
        let mut filled = 0;
        while filled < buffer.len() {
            match self.read(&mut buffer[filled..]).await? {
                0 => return Err(Error::UnexpectedEof),
                n => filled += n,
            }
        }
        Ok(())
    }

    /// Discards up to `limit` received bytes without copying them; returns how many,
    /// `Ok(0)` at end of stream. Fails like [`TcpStream::try_read`].
    pub fn try_discard(&mut self, limit: usize) -> Result<usize, Error> {
        on_backend!(&mut self.backend, s => s.try_discard(limit))
    }

    /// Waits for and discards up to `limit` received bytes; `Ok(0)` means end of stream.
    pub async fn discard(&mut self, limit: usize) -> Result<usize, Error> {
        poll_fn(|cx| match self.try_discard(limit) {
            Err(Error::WouldBlock) => {
                self.register(cx.waker());
                Poll::Pending
            }
            other => Poll::Ready(other),
        })
        .await
    }

    /// Queues bytes from `data` for sending without waiting; returns how many.
    ///
    /// Fails with `WouldBlock` when the send buffer is full (remote: the socket's write
    /// credit or the link's transmit buffers are used up), `NotConnected` after
    /// [`TcpStream::shutdown`] or before the connection is established,
    /// `ConnectionReset` when it was reset or closed.
    pub fn try_write(&mut self, data: &[u8]) -> Result<usize, Error> {
        if data.is_empty() {
            return Ok(0);
        }
        on_backend!(&mut self.backend, s => s.try_write(data))
    }

    /// Waits for room and queues bytes from `data`; returns how many.
    pub async fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        poll_fn(|cx| match self.try_write(data) {
            Err(Error::WouldBlock) => {
                self.register(cx.waker());
                Poll::Pending
            }
            other => Poll::Ready(other),
        })
        .await
    }

    /// Queues all of `data`, waiting for room as needed.
    pub async fn write_all(&mut self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            let n = self.write(data).await?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Waits until the peer has acknowledged everything written (remote: until the
    /// server's stack has taken it).
    ///
    /// Fails with `ConnectionReset` if the connection goes away first.
    pub async fn flush(&mut self) -> Result<(), Error> {
        on_backend!(&mut self.backend, s => s.flush().await)
    }

    /// Closes the sending side: the peer reads end of stream after the queued bytes.
    /// Reading stays possible.
    pub fn shutdown(&mut self) {
        on_backend!(&mut self.backend, s => s.shutdown())
    }

    /// Closes the connection and waits (up to `timeout_ns`) until the peer has
    /// acknowledged everything and closed too; after the timeout it aborts.
    pub async fn close(self, timeout_ns: u64) {
        on_backend!(self.backend, s => s.close(timeout_ns).await)
    }

    /// Resets the connection at once (the peer sees a reset), discarding queued data.
    pub fn abort(self) {
        on_backend!(self.backend, s => s.abort())
    }

    /// Returns true while the peer may still send (no end of stream or reset seen).
    pub fn may_read(&self) -> bool {
        on_backend!(&self.backend, s => s.may_read())
    }

    /// Returns true while the connection is not closed or reset.
    pub fn is_open(&self) -> bool {
        on_backend!(&self.backend, s => s.is_open())
    }
}
