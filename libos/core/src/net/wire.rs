//! The socket protocol between a remote [`crate::Net`] (the client) and the socket
//! server of a `net` component: fixed-size plain-old-data [`Message`]s on two rings per
//! client, and data in fixed-size buffers of two data areas named by offset.
//!
//! Every message read from a ring goes through [`Request::parse`] or [`Event::parse`]
//! before any logic sees it; a message that does not parse is [`Malformed`].
//!
//! Ownership of data buffers (one copy on each side, as in sDDF with a copier):
//! - the client's transmit area: the client fills a free buffer and sends
//!   [`Request::Write`]; the server owns the buffer until it answers
//!   [`Event::Released`] with the same span;
//! - the client's receive area: the server fills a free buffer and sends
//!   [`Event::Data`]; the client owns it until it answers [`Request::Release`].

use core::net::{Ipv4Addr, SocketAddrV4};

use crate::error::Error;

/// Bytes of one [`Message`] on a ring.
pub const MESSAGE_BYTES: usize = 32;

/// One ring entry: an operation, a socket id, a status, a span of a data area and two
/// argument words. Plain old data: any bit pattern is a valid `Message`, and only
/// [`Request::parse`] / [`Event::parse`] give it meaning.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The operation ([`op`]).
    pub op: u16,
    /// A [`Status`] (events) or 0.
    pub status: u16,
    /// The socket id, per client (ids name only the sender's own sockets).
    pub socket: u32,
    /// Offset of a buffer in a data area.
    pub offset: u32,
    /// Bytes used in that buffer.
    pub len: u32,
    /// Operation-specific arguments.
    pub args: [u64; 2],
}

const _: () = assert!(core::mem::size_of::<Message>() == MESSAGE_BYTES);

/// Operation numbers of [`Message::op`]: requests below 0x100, events from 0x100.
pub mod op {
    /// [`super::Request::Listen`].
    pub const LISTEN: u16 = 1;
    /// [`super::Request::SetBacklog`].
    pub const SET_BACKLOG: u16 = 2;
    /// [`super::Request::Connect`].
    pub const CONNECT: u16 = 3;
    /// [`super::Request::Write`].
    pub const WRITE: u16 = 4;
    /// [`super::Request::Release`].
    pub const RELEASE: u16 = 5;
    /// [`super::Request::Shutdown`].
    pub const SHUTDOWN: u16 = 6;
    /// [`super::Request::Close`].
    pub const CLOSE: u16 = 7;
    /// [`super::Request::Abort`].
    pub const ABORT: u16 = 8;
    /// [`super::Request::NoDelay`].
    pub const NO_DELAY: u16 = 9;
    /// [`super::Event::Accepted`].
    pub const ACCEPTED: u16 = 0x101;
    /// [`super::Event::Connected`].
    pub const CONNECTED: u16 = 0x102;
    /// [`super::Event::Data`].
    pub const DATA: u16 = 0x103;
    /// [`super::Event::Eof`].
    pub const EOF: u16 = 0x104;
    /// [`super::Event::Reset`].
    pub const RESET: u16 = 0x105;
    /// [`super::Event::Released`].
    pub const RELEASED: u16 = 0x106;
    /// [`super::Event::Closed`].
    pub const CLOSED: u16 = 0x107;
    /// [`super::Event::Failed`].
    pub const FAILED: u16 = 0x108;
}

/// A buffer of a data area: its offset and the bytes used in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Offset of the buffer from the start of the area.
    pub offset: u32,
    /// Bytes used, from the start of the buffer.
    pub len: u32,
}

/// Why a message did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// The operation number is not one this direction carries.
    UnknownOp,
    /// An argument is out of range (a port above 65535, a flag not 0 or 1).
    BadArgument,
}

/// Why the server refused an operation, carried in [`Event::Failed`].
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Unknown status number (from a newer or hostile peer).
    Unknown = 0,
    /// The peer refused the connection.
    ConnectionRefused = 1,
    /// The connection was reset.
    ConnectionReset = 2,
    /// The socket cannot do this in its state.
    NotConnected = 3,
    /// Another listener holds the port, or the port is not this client's to bind.
    AddressInUse = 4,
    /// No route or local address fits; port 0.
    Unaddressable = 5,
    /// An argument is out of range (a backlog of 0).
    InvalidInput = 6,
    /// The client's socket limit (or the stack's) is reached.
    Limit = 7,
    /// The socket id names none of the client's sockets (or is in use, for a new one).
    BadSocket = 8,
    /// The message did not parse (unknown operation, bad argument).
    BadMessage = 9,
}

impl Status {
    /// The status with number `raw` ([`Status::Unknown`] for numbers not listed).
    pub fn from_raw(raw: u16) -> Status {
        match raw {
            1 => Status::ConnectionRefused,
            2 => Status::ConnectionReset,
            3 => Status::NotConnected,
            4 => Status::AddressInUse,
            5 => Status::Unaddressable,
            6 => Status::InvalidInput,
            7 => Status::Limit,
            8 => Status::BadSocket,
            9 => Status::BadMessage,
            _ => Status::Unknown,
        }
    }

    /// The status that carries `error` to the client.
    pub fn from_error(error: Error) -> Status {
        match error {
            Error::ConnectionRefused => Status::ConnectionRefused,
            Error::ConnectionReset | Error::UnexpectedEof | Error::TimedOut => {
                Status::ConnectionReset
            }
            Error::NotConnected | Error::WouldBlock => Status::NotConnected,
            Error::AddressInUse => Status::AddressInUse,
            Error::Unaddressable => Status::Unaddressable,
            Error::InvalidInput => Status::InvalidInput,
            Error::OutOfMemory => Status::Limit,
        }
    }

    /// The socket API error the client reports for this status.
    pub fn to_error(self) -> Error {
        match self {
            Status::ConnectionRefused => Error::ConnectionRefused,
            Status::ConnectionReset | Status::BadSocket | Status::Unknown => Error::ConnectionReset,
            Status::NotConnected => Error::NotConnected,
            Status::AddressInUse => Error::AddressInUse,
            Status::Unaddressable => Error::Unaddressable,
            Status::InvalidInput | Status::BadMessage => Error::InvalidInput,
            Status::Limit => Error::OutOfMemory,
        }
    }
}

/// A client's request to the server, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Make `socket` a listener on `port` with `backlog` listening sockets.
    Listen {
        /// The new socket's id (chosen by the client).
        socket: u32,
        /// The port.
        port: u16,
        /// Listening sockets kept ready.
        backlog: u32,
    },
    /// Grow a listener's backlog.
    SetBacklog {
        /// The listener.
        socket: u32,
        /// Listening sockets kept ready.
        backlog: u32,
    },
    /// Make `socket` a connection to `remote`.
    Connect {
        /// The new socket's id (chosen by the client).
        socket: u32,
        /// The peer.
        remote: SocketAddrV4,
    },
    /// Send the bytes of a transmit-area buffer; the server owns it until `Released`.
    Write {
        /// The connection.
        socket: u32,
        /// The buffer and the bytes used in it.
        span: Span,
    },
    /// Give a receive-area buffer (from [`Event::Data`]) back to the server.
    Release {
        /// The buffer (its length is ignored).
        span: Span,
    },
    /// Close the sending side after the bytes already written.
    Shutdown {
        /// The connection.
        socket: u32,
    },
    /// Forget the socket: a connection closes gracefully in the background, a listener
    /// stops. The server answers [`Event::Closed`].
    Close {
        /// The socket.
        socket: u32,
    },
    /// Reset the connection (or stop the listener) and forget the socket.
    Abort {
        /// The socket.
        socket: u32,
    },
    /// Disable (true) or enable Nagle's algorithm.
    NoDelay {
        /// The connection.
        socket: u32,
        /// True to send small writes at once.
        on: bool,
    },
}

fn address_word(address: SocketAddrV4) -> u64 {
    (u64::from(address.ip().to_bits()) << 16) | u64::from(address.port())
}

fn address_of(word: u64) -> Result<SocketAddrV4, Malformed> {
    if word >> 48 != 0 {
        return Err(Malformed::BadArgument);
    }
    let ip = Ipv4Addr::from_bits((word >> 16) as u32);
    Ok(SocketAddrV4::new(ip, word as u16))
}

fn u32_of(word: u64) -> Result<u32, Malformed> {
    u32::try_from(word).map_err(|_| Malformed::BadArgument)
}

fn u16_of(word: u64) -> Result<u16, Malformed> {
    u16::try_from(word).map_err(|_| Malformed::BadArgument)
}

fn message(op: u16, socket: u32, args: [u64; 2]) -> Message {
    Message {
        op,
        socket,
        args,
        ..Message::default()
    }
}

fn span_message(op: u16, socket: u32, span: Span) -> Message {
    Message {
        op,
        socket,
        offset: span.offset,
        len: span.len,
        ..Message::default()
    }
}

impl Request {
    /// Validates a message from a client's request ring.
    ///
    /// Fails with `UnknownOp` for an operation that is not a request, `BadArgument` for
    /// an argument out of range. Spans are checked against the data area by the server.
    pub fn parse(message: &Message) -> Result<Request, Malformed> {
        let socket = message.socket;
        let span = Span {
            offset: message.offset,
            len: message.len,
        };
        let [a, b] = message.args;
        Ok(match message.op {
            op::LISTEN => Request::Listen {
                socket,
                port: u16_of(a)?,
                backlog: u32_of(b)?,
            },
            op::SET_BACKLOG => Request::SetBacklog {
                socket,
                backlog: u32_of(a)?,
            },
            op::CONNECT => Request::Connect {
                socket,
                remote: address_of(a)?,
            },
            op::WRITE => Request::Write { socket, span },
            op::RELEASE => Request::Release { span },
            op::SHUTDOWN => Request::Shutdown { socket },
            op::CLOSE => Request::Close { socket },
            op::ABORT => Request::Abort { socket },
            op::NO_DELAY => Request::NoDelay {
                socket,
                on: match a {
                    0 => false,
                    1 => true,
                    _ => return Err(Malformed::BadArgument),
                },
            },
            _ => return Err(Malformed::UnknownOp),
        })
    }

    /// The message that carries this request.
    pub fn encode(&self) -> Message {
        match *self {
            Request::Listen {
                socket,
                port,
                backlog,
            } => message(op::LISTEN, socket, [port.into(), backlog.into()]),
            Request::SetBacklog { socket, backlog } => {
                message(op::SET_BACKLOG, socket, [backlog.into(), 0])
            }
            Request::Connect { socket, remote } => {
                message(op::CONNECT, socket, [address_word(remote), 0])
            }
            Request::Write { socket, span } => span_message(op::WRITE, socket, span),
            Request::Release { span } => span_message(op::RELEASE, 0, span),
            Request::Shutdown { socket } => message(op::SHUTDOWN, socket, [0; 2]),
            Request::Close { socket } => message(op::CLOSE, socket, [0; 2]),
            Request::Abort { socket } => message(op::ABORT, socket, [0; 2]),
            Request::NoDelay { socket, on } => message(op::NO_DELAY, socket, [on.into(), 0]),
        }
    }
}

/// The server's event for a client, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A listener took a connection; `socket` is its new id (chosen by the server, with
    /// [`SERVER_ID_BIT`] set).
    Accepted {
        /// The new connection's id.
        socket: u32,
        /// The listener that took it.
        listener: u32,
        /// The peer's address.
        peer: SocketAddrV4,
        /// The local port.
        local_port: u16,
    },
    /// A connection asked for with [`Request::Connect`] is established.
    Connected {
        /// The connection.
        socket: u32,
        /// The local (ephemeral) port.
        local_port: u16,
    },
    /// Received bytes in a receive-area buffer, now owned by the client.
    Data {
        /// The connection.
        socket: u32,
        /// The buffer and the bytes in it.
        span: Span,
    },
    /// The peer closed its sending side: no more data follows.
    Eof {
        /// The connection.
        socket: u32,
    },
    /// The connection was reset (or closed by both sides and gone).
    Reset {
        /// The connection.
        socket: u32,
    },
    /// A transmit-area buffer from [`Request::Write`] is the client's again.
    Released {
        /// The connection it was written on.
        socket: u32,
        /// The buffer (its length as written).
        span: Span,
    },
    /// The server forgot the socket after [`Request::Close`] or [`Request::Abort`].
    Closed {
        /// The socket.
        socket: u32,
    },
    /// A request failed.
    Failed {
        /// The socket the request named.
        socket: u32,
        /// The request's operation number.
        op: u16,
        /// Why.
        status: Status,
    },
}

/// Bit set in the ids the server chooses (accepted connections); ids the client chooses
/// never have it, so the two never collide.
pub const SERVER_ID_BIT: u32 = 1 << 31;

impl Event {
    /// Validates a message from the server's event ring.
    ///
    /// Fails with `UnknownOp` for an operation that is not an event, `BadArgument` for an
    /// argument out of range.
    pub fn parse(message: &Message) -> Result<Event, Malformed> {
        let socket = message.socket;
        let span = Span {
            offset: message.offset,
            len: message.len,
        };
        let [a, b] = message.args;
        Ok(match message.op {
            op::ACCEPTED => Event::Accepted {
                socket,
                listener: u32_of(a)?,
                peer: address_of(b & ((1 << 48) - 1))?,
                local_port: u16_of(b >> 48)?,
            },
            op::CONNECTED => Event::Connected {
                socket,
                local_port: u16_of(a)?,
            },
            op::DATA => Event::Data { socket, span },
            op::EOF => Event::Eof { socket },
            op::RESET => Event::Reset { socket },
            op::RELEASED => Event::Released { socket, span },
            op::CLOSED => Event::Closed { socket },
            op::FAILED => Event::Failed {
                socket,
                op: u16_of(a)?,
                status: Status::from_raw(message.status),
            },
            _ => return Err(Malformed::UnknownOp),
        })
    }

    /// The message that carries this event.
    pub fn encode(&self) -> Message {
        match *self {
            Event::Accepted {
                socket,
                listener,
                peer,
                local_port,
            } => message(
                op::ACCEPTED,
                socket,
                [
                    listener.into(),
                    address_word(peer) | (u64::from(local_port) << 48),
                ],
            ),
            Event::Connected { socket, local_port } => {
                message(op::CONNECTED, socket, [local_port.into(), 0])
            }
            Event::Data { socket, span } => span_message(op::DATA, socket, span),
            Event::Eof { socket } => message(op::EOF, socket, [0; 2]),
            Event::Reset { socket } => message(op::RESET, socket, [0; 2]),
            Event::Released { socket, span } => span_message(op::RELEASED, socket, span),
            Event::Closed { socket } => message(op::CLOSED, socket, [0; 2]),
            Event::Failed { socket, op, status } => Message {
                status: status as u16,
                ..message(op::FAILED, socket, [op.into(), 0])
            },
        }
    }
}

/// The shape of the two data areas of a link: `buffers` buffers of `buffer_size` bytes
/// each. Each side keeps its own copy; it is never read from shared memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per buffer.
    pub buffer_size: u32,
    /// Buffers per area (each direction has its own area of this size).
    pub buffers: u32,
}

impl Geometry {
    /// Bytes of one data area.
    pub fn area_bytes(&self) -> usize {
        self.buffer_size as usize * self.buffers as usize
    }

    /// The index of the buffer `span` names, if it names one: its offset is a buffer's
    /// start inside the area and its length fits the buffer (0 allowed).
    pub fn buffer_index(&self, span: Span) -> Option<usize> {
        if self.buffer_size == 0
            || !span.offset.is_multiple_of(self.buffer_size)
            || span.len > self.buffer_size
        {
            return None;
        }
        let index = span.offset / self.buffer_size;
        (index < self.buffers).then_some(index as usize)
    }

    /// The offset of buffer `index`.
    pub fn offset_of(&self, index: usize) -> u32 {
        index as u32 * self.buffer_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let span = Span {
            offset: 4096,
            len: 17,
        };
        let requests = [
            Request::Listen {
                socket: 3,
                port: 5201,
                backlog: 4,
            },
            Request::SetBacklog {
                socket: 3,
                backlog: 9,
            },
            Request::Connect {
                socket: 4,
                remote: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80),
            },
            Request::Write { socket: 4, span },
            Request::Release { span },
            Request::Shutdown { socket: 4 },
            Request::Close { socket: 4 },
            Request::Abort { socket: 4 },
            Request::NoDelay {
                socket: 4,
                on: true,
            },
        ];
        for request in requests {
            assert_eq!(Request::parse(&request.encode()), Ok(request));
            assert_eq!(
                Event::parse(&request.encode()),
                Err(Malformed::UnknownOp),
                "{request:?} is not an event"
            );
        }
    }

    #[test]
    fn events_round_trip() {
        let span = Span { offset: 0, len: 1 };
        let events = [
            Event::Accepted {
                socket: SERVER_ID_BIT | 1,
                listener: 3,
                peer: SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 200), 40000),
                local_port: 5201,
            },
            Event::Connected {
                socket: 4,
                local_port: 49152,
            },
            Event::Data { socket: 4, span },
            Event::Eof { socket: 4 },
            Event::Reset { socket: 4 },
            Event::Released { socket: 4, span },
            Event::Closed { socket: 4 },
            Event::Failed {
                socket: 4,
                op: op::LISTEN,
                status: Status::AddressInUse,
            },
        ];
        for event in events {
            assert_eq!(Event::parse(&event.encode()), Ok(event));
            assert_eq!(Request::parse(&event.encode()), Err(Malformed::UnknownOp));
        }
    }

    #[test]
    fn out_of_range_arguments_are_malformed() {
        let mut listen = Request::Listen {
            socket: 1,
            port: 1,
            backlog: 1,
        }
        .encode();
        listen.args[0] = 70_000;
        assert_eq!(Request::parse(&listen), Err(Malformed::BadArgument));
        let mut nodelay = Request::NoDelay {
            socket: 1,
            on: false,
        }
        .encode();
        nodelay.args[0] = 2;
        assert_eq!(Request::parse(&nodelay), Err(Malformed::BadArgument));
        let connect = Message {
            op: op::CONNECT,
            args: [u64::MAX, 0],
            ..Message::default()
        };
        assert_eq!(Request::parse(&connect), Err(Malformed::BadArgument));
        let unknown = Message {
            op: 0xffff,
            ..Message::default()
        };
        assert_eq!(Request::parse(&unknown), Err(Malformed::UnknownOp));
        assert_eq!(Status::from_raw(0xffff), Status::Unknown);
    }

    #[test]
    fn spans_must_name_a_whole_buffer_inside_the_area() {
        let geometry = Geometry {
            buffer_size: 2048,
            buffers: 4,
        };
        let span = |offset, len| Span { offset, len };
        assert_eq!(geometry.buffer_index(span(0, 2048)), Some(0));
        assert_eq!(geometry.buffer_index(span(6144, 1)), Some(3));
        assert_eq!(geometry.buffer_index(span(8192, 1)), None, "past the area");
        assert_eq!(
            geometry.buffer_index(span(100, 1)),
            None,
            "not a buffer start"
        );
        assert_eq!(
            geometry.buffer_index(span(0, 2049)),
            None,
            "longer than a buffer"
        );
        assert_eq!(geometry.buffer_index(span(u32::MAX, 0)), None);
        let empty = Geometry {
            buffer_size: 0,
            buffers: 4,
        };
        assert_eq!(empty.buffer_index(span(0, 0)), None);
    }

    #[test]
    fn every_error_survives_the_status_round_trip_as_itself_or_a_documented_neighbour() {
        for error in [
            Error::ConnectionRefused,
            Error::ConnectionReset,
            Error::NotConnected,
            Error::AddressInUse,
            Error::Unaddressable,
            Error::InvalidInput,
            Error::OutOfMemory,
        ] {
            assert_eq!(Status::from_error(error).to_error(), error);
        }
        assert_eq!(Status::BadSocket.to_error(), Error::ConnectionReset);
    }
}
