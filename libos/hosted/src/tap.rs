//! A Linux TAP device (`/dev/net/tun`, `IFF_TAP | IFF_NO_PI`) as a [`libos_core::NetDevice`],
//! so the library OS's stack talks to the host's real TCP stack.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use libos_core::{DeviceError, NetDevice};

use crate::EventSource;

/// `_IOW('T', 202, int)`: attach to or create a TUN/TAP interface.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// TAP mode: Ethernet frames.
const IFF_TAP: libc::c_short = 0x0002;
/// No packet-information header before each frame.
const IFF_NO_PI: libc::c_short = 0x1000;
/// Interface names are at most 15 bytes plus NUL.
const IFNAMSIZ: usize = 16;
/// The TAP device's MTU (Ethernet payload bytes), Linux's default for TAP.
pub const TAP_MTU: usize = 1500;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags (40 bytes in all).
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// A TAP device opened by this process; the interface goes away when it is dropped
/// (unless the host made it persistent).
pub struct TapDevice {
    fd: Arc<OwnedFd>,
    mac: [u8; 6],
    name: String,
    /// The frame last read (its length in `rx_len`), lent to the stack from here.
    rx: Vec<u8>,
    rx_len: Option<usize>,
    /// Where the stack builds a frame before `write` copies it to the kernel.
    tx: Vec<u8>,
}

/// Bytes of the receive buffer: more than the largest frame (1514), so a longer one shows
/// up as too long instead of being cut to a plausible length by `read`.
const TAP_BUFFER: usize = 2048;

impl TapDevice {
    /// Opens (creating it if needed) the TAP interface `name` with the stack's MAC `mac`.
    ///
    /// Fails when `/dev/net/tun` cannot be opened (not root, no module) or the name is
    /// invalid or taken by a non-TAP interface.
    pub fn open(name: &str, mac: [u8; 6]) -> io::Result<TapDevice> {
        if name.is_empty() || name.len() >= IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad interface name",
            ));
        }
        let path = CString::new("/dev/net/tun").map_err(io::Error::other)?;
        // SAFETY: `path` is a valid NUL-terminated string; open has no other preconditions.
        let raw = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly opened descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut request = IfReq {
            name: [0; IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        request.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `IfReq` matches in
        // layout and size; the pointer is valid for the duration of the call.
        let result =
            unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut request as *mut IfReq) };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        let len = request
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(IFNAMSIZ);
        let name = String::from_utf8_lossy(&request.name[..len]).into_owned();
        Ok(TapDevice {
            fd: Arc::new(fd),
            mac,
            name,
            rx: vec![0; TAP_BUFFER],
            rx_len: None,
            tx: vec![0; TAP_BUFFER],
        })
    }

    /// Returns the interface's name as the kernel reports it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the event source that wakes when a frame is readable.
    pub fn events(&self) -> Arc<dyn EventSource> {
        Arc::new(TapEvents {
            fd: self.fd.clone(),
        })
    }
}

/// Waits with `ppoll` for the descriptor to become ready for `events`, up to `deadline`.
fn wait_fd(fd: RawFd, events: libc::c_short, deadline: Option<Instant>) {
    let mut pollfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let timeout = deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        libc::timespec {
            tv_sec: left.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        }
    });
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `pollfd` is one valid pollfd; `timeout_ptr` is null or points to a
    // timespec that lives until the call returns; a null signal mask is allowed.
    unsafe {
        libc::ppoll(&mut pollfd, 1, timeout_ptr, std::ptr::null());
    }
}

/// Waits for frames on a TAP device.
struct TapEvents {
    fd: Arc<OwnedFd>,
}

impl EventSource for TapEvents {
    fn wait(&self, deadline: Option<Instant>) {
        wait_fd(self.fd.as_raw_fd(), libc::POLLIN, deadline);
    }
}

impl NetDevice for TapDevice {
    fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    fn mtu(&self) -> usize {
        TAP_MTU
    }

    fn rx_ready(&mut self) -> bool {
        self.read_frame().is_ok()
    }

    /// Lends the frame `read` copied into the device's buffer (the only copy).
    fn receive_with(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<(), DeviceError> {
        let len = self.read_frame()?;
        self.rx_len = None;
        f(&self.rx[..len]);
        Ok(())
    }

    /// Builds the frame in the device's buffer, then `write`s it (the only copy).
    fn transmit_with(
        &mut self,
        len: usize,
        f: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError> {
        if len == 0 || len > self.tx.len() {
            return Err(DeviceError::Failed);
        }
        f(&mut self.tx[..len]);
        self.write_frame(len)
    }
}

impl TapDevice {
    /// Returns the length of the frame in `rx`, reading one if none is held.
    fn read_frame(&mut self) -> Result<usize, DeviceError> {
        if let Some(len) = self.rx_len {
            return Ok(len);
        }
        // SAFETY: `self.rx` is valid for writes of `self.rx.len()` bytes.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                self.rx.as_mut_ptr().cast(),
                self.rx.len(),
            )
        };
        if n >= 0 {
            self.rx_len = Some(n as usize);
            return Ok(n as usize);
        }
        match io::Error::last_os_error().kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Err(DeviceError::WouldBlock),
            _ => Err(DeviceError::Failed),
        }
    }

    /// Writes the first `len` bytes of `tx` as one frame, waiting up to 1 ms once for room.
    fn write_frame(&mut self, len: usize) -> Result<(), DeviceError> {
        let frame = &self.tx[..len];
        for attempt in 0..2 {
            // SAFETY: `frame` is valid for reads of `frame.len()` bytes.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
            if n >= 0 {
                return Ok(());
            }
            match io::Error::last_os_error().kind() {
                io::ErrorKind::WouldBlock if attempt == 0 => {
                    let deadline = Instant::now() + std::time::Duration::from_millis(1);
                    wait_fd(self.fd.as_raw_fd(), libc::POLLOUT, Some(deadline));
                }
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => {
                    return Err(DeviceError::WouldBlock)
                }
                _ => return Err(DeviceError::Failed),
            }
        }
        Err(DeviceError::WouldBlock)
    }
}
