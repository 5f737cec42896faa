//! The network stack behind the socket API, with two backends: *local*, smoltcp over a
//! [`NetDevice`] driven as a [`Reactor`] by the executor; and *remote*, a client of the
//! socket [`server`] of a `net` component over a [`link::Link`] ([`wire`] protocol).
//!
//! Invariants: all smoltcp state of one interface lives in one local [`Net`]; every
//! socket handle in its set belongs to exactly one owner (a listener's backlog, a
//! [`tcp::TcpStream`], the socket server, or the orphan list that closes dropped
//! streams).

pub mod device;
pub mod frames;
pub mod link;
mod local;
pub mod remote;
pub mod server;
pub mod shmlink;
pub mod tcp;
pub mod wire;

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::poll_fn;
use core::net::Ipv4Addr;
use core::task::{Poll, Waker};

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::tcp as smol_tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Cidr};

use crate::error::Error;
use crate::executor::{Reactor, Runtime};
use device::{DeviceAdapter, NetCounters, NetDevice};

/// A static IPv4 configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Config {
    /// The interface's address.
    pub address: Ipv4Addr,
    /// The subnet prefix length (0..=32).
    pub prefix_len: u8,
    /// The default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
}

/// How to set up one network interface.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// A static IPv4 address; `None` leaves the interface unaddressed (or to DHCP).
    pub ipv4: Option<Ipv4Config>,
    /// Ask for an address (and default gateway) by DHCP; a lease replaces the static
    /// `ipv4`, if any. [`Net::wait_for_ipv4`] waits for it.
    #[cfg(feature = "dhcp")]
    pub dhcp: bool,
    /// Receive buffer per TCP socket in bytes, at most [`MAX_TCP_RX_BUFFER`] (larger
    /// values are clamped to it). Above 64 KiB - 1 the receive window is scaled.
    pub tcp_rx_buffer: usize,
    /// Transmit buffer per TCP socket in bytes.
    pub tcp_tx_buffer: usize,
    /// Most TCP sockets (listening, connected and closing) at once: one more fails with
    /// [`Error::OutOfMemory`](crate::Error::OutOfMemory), and a connection attempt that
    /// finds no listening socket is reset. [`NetConfig::tcp_sockets_within`] derives it
    /// from a memory budget.
    pub max_tcp_sockets: usize,
    /// Seed for initial sequence numbers and ports; 0 derives one from the clock and MAC.
    pub random_seed: u64,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            ipv4: None,
            #[cfg(feature = "dhcp")]
            dhcp: false,
            tcp_rx_buffer: DEFAULT_TCP_RX_BUFFER,
            tcp_tx_buffer: DEFAULT_TCP_TX_BUFFER,
            max_tcp_sockets: DEFAULT_MAX_TCP_SOCKETS,
            random_seed: 0,
        }
    }
}

impl NetConfig {
    /// How many TCP sockets with this configuration's buffers fit in `bytes` of heap
    /// (at least 1): the socket limit for a component that gives its sockets that share.
    pub fn tcp_sockets_within(&self, bytes: usize) -> usize {
        let per_socket = self
            .tcp_rx_buffer
            .clamp(1, MAX_TCP_RX_BUFFER)
            .saturating_add(self.tcp_tx_buffer)
            .saturating_add(SOCKET_OVERHEAD);
        (bytes / per_socket).max(1)
    }
}

/// Bytes a TCP socket takes besides its buffers (smoltcp's state, the set's slot), rounded up.
const SOCKET_OVERHEAD: usize = 4096;

/// Most TCP sockets when [`NetConfig`] does not say.
pub const DEFAULT_MAX_TCP_SOCKETS: usize = 64;

/// Largest TCP receive buffer: 1 GiB - 1, the most a scaled window can advertise (RFC
/// 7323 caps the window scale shift at 14; smoltcp derives the shift from the buffer's
/// size and refuses buffers above 1 GiB).
///
/// Buffers above 64 KiB - 1 make the stack scale its receive window. smoltcp 0.12 could
/// not do that safely (its issue 1048: it accepted data beyond a right window edge that
/// rounding had moved back, then panicked subtracting sequence numbers); from 0.13 on it
/// trims segments to the advertised window, so scaling is safe.
pub const MAX_TCP_RX_BUFFER: usize = (1 << 30) - 1;

/// Receive buffer per TCP socket when [`NetConfig`] does not say (scaled window).
pub const DEFAULT_TCP_RX_BUFFER: usize = 256 * 1024;
/// Transmit buffer per TCP socket when [`NetConfig`] does not say.
pub const DEFAULT_TCP_TX_BUFFER: usize = 256 * 1024;

/// Seconds between DHCP DISCOVERs while no server answers.
#[cfg(feature = "dhcp")]
const DHCP_DISCOVER_RETRY_S: u64 = 2;

/// How long a dropped stream may take to finish its close before it is aborted.
const ORPHAN_LINGER_NS: u64 = 10 * crate::NS_PER_SEC;
/// First ephemeral port handed to outgoing connections.
const EPHEMERAL_FIRST: u16 = 49152;

/// `len` zero bytes, or `OutOfMemory` if the heap cannot hold them.
fn zeroed(len: usize) -> Result<Vec<u8>, crate::Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| crate::Error::OutOfMemory)?;
    v.resize(len, 0);
    Ok(v)
}

/// A dropped stream that is still closing.
struct Orphan {
    handle: SocketHandle,
    deadline_ns: u64,
    aborted: bool,
}

pub(crate) struct NetState {
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    device: DeviceAdapter,
    config: NetConfig,
    next_port: u16,
    pub(crate) bound_ports: Vec<u16>,
    orphans: Vec<Orphan>,
    #[cfg(feature = "dhcp")]
    dhcp: Option<SocketHandle>,
}

impl NetState {
    /// A new TCP socket, or `OutOfMemory` at the socket limit or when the heap cannot
    /// hold its buffers (the allocation is tried, never assumed).
    pub(crate) fn new_tcp_socket(&mut self) -> Result<SocketHandle, crate::Error> {
        let open = self
            .sockets
            .iter()
            .filter(|(_, s)| matches!(s, smoltcp::socket::Socket::Tcp(_)))
            .count();
        if open >= self.config.max_tcp_sockets {
            return Err(crate::Error::OutOfMemory);
        }
        let rx_len = self.config.tcp_rx_buffer.clamp(1, MAX_TCP_RX_BUFFER);
        let rx = zeroed(rx_len)?;
        let tx = zeroed(self.config.tcp_tx_buffer)?;
        let socket = smol_tcp::Socket::new(
            smol_tcp::SocketBuffer::new(rx),
            smol_tcp::SocketBuffer::new(tx),
        );
        Ok(self.sockets.add(socket))
    }

    pub(crate) fn ephemeral_port(&mut self) -> u16 {
        let port = self.next_port;
        self.next_port = if port == u16::MAX {
            EPHEMERAL_FIRST
        } else {
            port + 1
        };
        port
    }

    /// Closes a socket in the background (gracefully, or with a reset when `abort`) and
    /// frees it once closed; a reset is still sent on the next poll.
    pub(crate) fn orphan(&mut self, handle: SocketHandle, now_ns: u64, abort: bool) {
        let socket = self.sockets.get_mut::<smol_tcp::Socket>(handle);
        // Acknowledge at once from now on: the socket is freed as soon as it reaches
        // TIME-WAIT, and a delayed ACK of the peer's FIN would be freed with it, leaving
        // the peer to retransmit the FIN and get a reset.
        socket.set_ack_delay(None);
        let aborted = abort || socket.state() == smol_tcp::State::Closed;
        if abort {
            socket.abort();
        } else {
            socket.close();
        }
        self.orphans.push(Orphan {
            handle,
            deadline_ns: now_ns + ORPHAN_LINGER_NS,
            aborted,
        });
    }

    fn reap_orphans(&mut self, now_ns: u64) {
        let sockets = &mut self.sockets;
        self.orphans.retain_mut(|orphan| {
            let socket = sockets.get_mut::<smol_tcp::Socket>(orphan.handle);
            // Nobody reads a dropped stream: discard what arrives so its receive window
            // stays open and the peer's remaining data and FIN can come in; otherwise a
            // full buffer stalls the close (FIN-WAIT-2) until the linger deadline.
            let _ = socket.recv(|data| (data.len(), ()));
            let done = orphan.aborted
                || matches!(
                    socket.state(),
                    smol_tcp::State::Closed | smol_tcp::State::TimeWait
                );
            if done {
                sockets.remove(orphan.handle);
                return false;
            }
            if now_ns >= orphan.deadline_ns {
                socket.abort();
                orphan.aborted = true;
            }
            true
        });
    }

    #[cfg(feature = "dhcp")]
    fn poll_dhcp(&mut self) -> bool {
        use smoltcp::socket::dhcpv4;
        let Some(handle) = self.dhcp else {
            return false;
        };
        match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
            None => false,
            Some(dhcpv4::Event::Configured(config)) => {
                let (address, router) = (config.address, config.router);
                self.iface.update_ip_addrs(|addrs| {
                    addrs.clear();
                    let _ = addrs.push(IpCidr::Ipv4(address));
                });
                self.iface.routes_mut().remove_default_ipv4_route();
                if let Some(router) = router {
                    let _ = self.iface.routes_mut().add_default_ipv4_route(router);
                }
                true
            }
            Some(dhcpv4::Event::Deconfigured) => {
                self.iface.update_ip_addrs(|addrs| addrs.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
                true
            }
        }
    }
}

pub(crate) struct NetInner {
    pub(crate) runtime: Runtime,
    pub(crate) state: RefCell<NetState>,
    waiters: RefCell<Vec<Waker>>,
}

impl NetInner {
    /// Remembers `waker` to be woken the next time the stack makes progress.
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
}

fn to_instant(now_ns: u64) -> Instant {
    Instant::from_micros((now_ns / 1000) as i64)
}

impl Reactor for NetInner {
    fn poll(&self, now_ns: u64) -> bool {
        let progress = {
            let mut guard = self.state.borrow_mut();
            let state = &mut *guard;
            let before = state.device.counters();
            let result =
                state
                    .iface
                    .poll(to_instant(now_ns), &mut state.device, &mut state.sockets);
            state.device.flush();
            let after = state.device.counters();
            let moved = (after.rx_frames, after.tx_frames) != (before.rx_frames, before.tx_frames);
            let arrived = state.device.polled(moved);
            #[allow(unused_mut)]
            let mut progress =
                result == PollResult::SocketStateChanged || after != before || arrived;
            #[cfg(feature = "dhcp")]
            {
                progress |= state.poll_dhcp();
            }
            state.reap_orphans(now_ns);
            progress
        };
        if progress {
            self.wake_all();
        }
        progress
    }

    fn poll_at(&self, now_ns: u64) -> Option<u64> {
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        let at = state
            .iface
            .poll_at(to_instant(now_ns), &state.sockets)
            .map(|instant| (instant.total_micros().max(0) as u64).saturating_mul(1000));
        let orphan_at = state
            .orphans
            .iter()
            .map(|o| if o.aborted { now_ns } else { o.deadline_ns })
            .min();
        match (at, orphan_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// One network interface with its TCP/IP stack, local or reached through a `net`
/// server; cheap to clone (all clones share it).
#[derive(Clone)]
pub struct Net {
    pub(crate) backend: Backend,
}

/// Where a [`Net`]'s sockets live.
#[derive(Clone)]
pub(crate) enum Backend {
    /// This component's own smoltcp stack.
    Local(Rc<NetInner>),
    /// A `net` server's stack, over a link.
    Remote(Rc<remote::Client>),
}

impl Net {
    /// Brings up an interface on `device` with `config` and registers it with `runtime`,
    /// which then polls it on every turn.
    pub fn new(runtime: &Runtime, device: Box<dyn NetDevice>, config: NetConfig) -> Net {
        let mut adapter = DeviceAdapter::new(device);
        let mac = adapter.mac_address();
        let now_ns = runtime.now_ns();
        let mut seed = config.random_seed;
        if seed == 0 {
            seed = now_ns
                ^ u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0x5a, 0xa5]);
            seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        }
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        iface_config.random_seed = seed;
        let mut iface = Interface::new(iface_config, &mut adapter, to_instant(now_ns));
        if let Some(ipv4) = config.ipv4 {
            iface.update_ip_addrs(|addrs| {
                let _ = addrs.push(IpCidr::Ipv4(Ipv4Cidr::new(
                    ipv4.address,
                    ipv4.prefix_len.min(32),
                )));
            });
            if let Some(gateway) = ipv4.gateway {
                let _ = iface.routes_mut().add_default_ipv4_route(gateway);
            }
        }
        #[allow(unused_mut)]
        let mut sockets = SocketSet::new(Vec::new());
        #[cfg(feature = "dhcp")]
        let dhcp = config.dhcp.then(|| {
            use smoltcp::socket::dhcpv4;
            let mut socket = dhcpv4::Socket::new();
            let mut retry = dhcpv4::RetryConfig::default();
            // A DISCOVER lost while the link comes up is sent again soon, not after
            // smoltcp's default 10 s.
            retry.discover_timeout = smoltcp::time::Duration::from_secs(DHCP_DISCOVER_RETRY_S);
            socket.set_retry_config(retry);
            sockets.add(socket)
        });
        let next_port = EPHEMERAL_FIRST + (seed % 8192) as u16;
        let state = NetState {
            iface,
            sockets,
            device: adapter,
            config,
            next_port,
            bound_ports: Vec::new(),
            orphans: Vec::new(),
            #[cfg(feature = "dhcp")]
            dhcp,
        };
        let inner = Rc::new(NetInner {
            runtime: runtime.clone(),
            state: RefCell::new(state),
            waiters: RefCell::new(Vec::new()),
        });
        let weak: alloc::rc::Weak<dyn Reactor> =
            Rc::downgrade(&inner) as alloc::rc::Weak<dyn Reactor>;
        runtime.add_reactor(weak);
        Net {
            backend: Backend::Local(inner),
        }
    }

    /// Creates a remote interface: the sockets of a `net` server reached over `link`,
    /// registered with `runtime`, which then polls the link on every turn.
    pub fn remote(
        runtime: &Runtime,
        link: Box<dyn link::Link>,
        config: remote::RemoteConfig,
    ) -> Net {
        Net {
            backend: Backend::Remote(remote::Client::new(runtime, link, config)),
        }
    }

    /// Tells a remote [`Net`] its link is gone (the server restarted): every socket
    /// operation fails with `ConnectionReset` from now on. Nothing on a local [`Net`].
    pub fn link_reset(&self) {
        if let Backend::Remote(client) = &self.backend {
            client.link_reset();
        }
    }

    /// Gives a remote [`Net`] a fresh link to the server; sockets of the old link stay
    /// reset, new ones use the new link. Fails with `InvalidInput` on a local [`Net`].
    pub fn attach(&self, link: Box<dyn link::Link>) -> Result<(), Error> {
        match &self.backend {
            Backend::Remote(client) => {
                client.attach(link);
                Ok(())
            }
            Backend::Local(_) => Err(Error::InvalidInput),
        }
    }

    /// Returns a remote [`Net`]'s link counters (`None` on a local one).
    pub fn remote_counters(&self) -> Option<remote::ClientCounters> {
        match &self.backend {
            Backend::Remote(client) => Some(client.counters()),
            Backend::Local(_) => None,
        }
    }

    /// The local stack, or `None` for a remote [`Net`].
    pub(crate) fn local(&self) -> Option<&Rc<NetInner>> {
        match &self.backend {
            Backend::Local(inner) => Some(inner),
            Backend::Remote(_) => None,
        }
    }

    /// Returns true for a remote [`Net`] (a client of a `net` server).
    pub fn is_remote(&self) -> bool {
        matches!(self.backend, Backend::Remote(_))
    }

    /// Returns the runtime this interface is registered with.
    pub fn runtime(&self) -> &Runtime {
        match &self.backend {
            Backend::Local(inner) => &inner.runtime,
            Backend::Remote(client) => &client.runtime,
        }
    }

    /// Returns the interface's frame counters (all zero on a remote [`Net`]: the frames
    /// are the server's).
    pub fn counters(&self) -> NetCounters {
        self.local().map_or_else(NetCounters::default, |inner| {
            inner.state.borrow().device.counters()
        })
    }

    /// Returns the interface's IPv4 address, if it has one (static or from DHCP; `None`
    /// on a remote [`Net`]).
    pub fn ipv4_address(&self) -> Option<Ipv4Addr> {
        self.local()?.state.borrow().iface.ipv4_addr()
    }

    /// Waits until the interface has an IPv4 address (static, or leased by DHCP) and
    /// returns it; fails with `TimedOut` after `timeout_ns`.
    pub async fn wait_for_ipv4(&self, timeout_ns: u64) -> Result<Ipv4Addr, Error> {
        let address = poll_fn(|cx| match self.ipv4_address() {
            Some(address) => Poll::Ready(address),
            None => {
                self.wait(cx.waker());
                Poll::Pending
            }
        });
        self.runtime()
            .timeout(timeout_ns, address)
            .await
            .map_err(|_| Error::TimedOut)
    }

    /// Remembers `waker` to be woken the next time the stack (or the link) makes progress.
    pub(crate) fn wait(&self, waker: &Waker) {
        match &self.backend {
            Backend::Local(inner) => inner.wait(waker),
            Backend::Remote(client) => client.wait(waker),
        }
    }

    /// Returns the interface's IPv4 prefix length, if it has an address.
    pub fn ipv4_prefix_len(&self) -> Option<u8> {
        let state = self.local()?.state.borrow();
        state.iface.ip_addrs().first().map(|cidr| {
            let IpCidr::Ipv4(v4) = cidr;
            v4.prefix_len()
        })
    }

    /// Returns the default IPv4 gateway, if one is set (static, or from DHCP).
    pub fn ipv4_gateway(&self) -> Option<Ipv4Addr> {
        let route = self
            .local()?
            .state
            .borrow()
            .iface
            .routes()
            .get_default_ipv4_route()?;
        let IpAddress::Ipv4(gateway) = route.via_router;
        Some(gateway)
    }

    /// Returns the number of dropped connections still closing in the background
    /// (remote: closes the server has not yet confirmed).
    pub fn closing_count(&self) -> usize {
        match &self.backend {
            Backend::Local(inner) => inner.state.borrow().orphans.len(),
            Backend::Remote(client) => client.closing_count(),
        }
    }

    /// Waits until every dropped connection has finished closing, or `timeout_ns`
    /// passed; call before stopping the runtime so final FINs and resets go out.
    pub async fn drain(&self, timeout_ns: u64) {
        let runtime = self.runtime().clone();
        let deadline = runtime.now_ns().saturating_add(timeout_ns);
        while self.closing_count() > 0 && runtime.now_ns() < deadline {
            runtime.sleep(crate::NS_PER_MS).await;
        }
    }

    /// Returns the number of sockets in the stack (listening, open, and closing; remote:
    /// this client's sockets the server has not forgotten).
    pub fn socket_count(&self) -> usize {
        match &self.backend {
            Backend::Local(inner) => inner.state.borrow().sockets.iter().count(),
            Backend::Remote(client) => client.socket_count(),
        }
    }
}
