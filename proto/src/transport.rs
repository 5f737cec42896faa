//! How a client stub's request reaches a server: seL4 `Call` in a component, a direct call
//! into a dispatcher in host tests.

use crate::message::Message;

/// Sends one request and returns the reply.
pub trait Transport {
    /// Delivers `request` and waits for the reply. A transport that cannot deliver returns an
    /// error reply (non-zero label) rather than panic.
    fn call(&mut self, request: &Message) -> Message;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn call(&mut self, request: &Message) -> Message {
        (**self).call(request)
    }
}

/// An in-memory transport: hands each request to a function (usually a closure around an
/// interface's `dispatch` with a fixed badge) and returns its reply.
///
/// ```
/// use proto::{console, Loopback};
/// struct Silent;
/// impl console::Server for Silent {
///     fn write(&mut self, _: u64, _: proto::Bytes) -> Result<(), console::Error> { Ok(()) }
///     fn read(&mut self, _: u64, _: u32) -> Result<proto::Bytes, console::Error> {
///         Err(console::Error::WouldBlock)
///     }
///     fn watch(&mut self, _: u64, _: proto::CapSlot) -> Result<(), console::Error> {
///         Err(console::Error::Full)
///     }
/// }
/// let mut server = Silent;
/// let mut client = console::ConsoleClient::new(Loopback(|m: &proto::Message| {
///     console::dispatch(&mut server, 7, m)
/// }));
/// assert_eq!(client.read(10), Err(console::Error::WouldBlock));
/// ```
#[derive(Debug)]
pub struct Loopback<F>(pub F);

impl<F: FnMut(&Message) -> Message> Transport for Loopback<F> {
    fn call(&mut self, request: &Message) -> Message {
        (self.0)(request)
    }
}
