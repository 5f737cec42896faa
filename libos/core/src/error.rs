//! The error type of the socket API.

use core::fmt;

/// Why a socket operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The operation would block; retry when the socket is ready (non-blocking calls only).
    WouldBlock,
    /// The operation did not finish before its deadline.
    TimedOut,
    /// The peer refused the connection (reset during the handshake).
    ConnectionRefused,
    /// The connection was reset or is fully closed.
    ConnectionReset,
    /// The socket cannot do this in its state (e.g. write after `shutdown`).
    NotConnected,
    /// Another listener is already bound to this port.
    AddressInUse,
    /// The address cannot be used: no route, no local address, port 0.
    Unaddressable,
    /// The peer closed the connection before the requested bytes arrived.
    UnexpectedEof,
    /// An argument is out of range (e.g. a backlog of 0).
    InvalidInput,
    /// No memory for another socket: the configured limit ([`crate::NetConfig`]'s
    /// `max_tcp_sockets`) is reached, or the heap cannot hold its buffers.
    OutOfMemory,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::WouldBlock => "operation would block",
            Error::TimedOut => "timed out",
            Error::ConnectionRefused => "connection refused",
            Error::ConnectionReset => "connection reset",
            Error::NotConnected => "not connected",
            Error::AddressInUse => "address in use",
            Error::Unaddressable => "address not reachable",
            Error::UnexpectedEof => "unexpected end of stream",
            Error::InvalidInput => "invalid argument",
            Error::OutOfMemory => "out of memory for sockets",
        };
        f.write_str(text)
    }
}

impl core::error::Error for Error {}

impl From<crate::executor::Elapsed> for Error {
    fn from(_: crate::executor::Elapsed) -> Error {
        Error::TimedOut
    }
}
