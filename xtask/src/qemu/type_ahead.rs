//! Type-ahead for piped input: input that is not typed on a terminal is held on the host
//! until the guest's console driver says it is ready, then passed to QEMU.
//!
//! Why: the guest cannot keep input that reaches the UART before its console driver runs.
//! seL4 reads (and discards) the receive buffer when it sets the port up at boot, and the
//! FIFOs reset when the driver switches them on; meanwhile QEMU takes one byte into the
//! UART and holds more in its character-device buffers, so a pipe's first bytes end up in
//! exactly those places. A person typing during boot is slower than that; a pipe is not.

/// How the serial driver's readiness line starts (services/serial/src/main.rs prints
/// `serial: com1 at ports ..: ready` once its interrupt is wired and it serves).
pub const READY_PREFIX: &str = "serial: ";
/// How the serial driver's readiness line ends.
pub const READY_SUFFIX: &str = ": ready";

/// The longest partial line kept while looking for the readiness line.
const MAX_LINE: usize = 512;

/// Watches the guest's serial output for the console driver's readiness line.
#[derive(Debug, Default)]
pub struct ConsoleReady {
    line: Vec<u8>,
    ready: bool,
}

impl ConsoleReady {
    /// A watcher that has seen nothing yet.
    pub fn new() -> ConsoleReady {
        ConsoleReady::default()
    }

    /// Whether the readiness line has been seen.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Takes the next piece of output (lines may be split anywhere); returns whether the
    /// console is ready now.
    pub fn output(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.ready {
                break;
            }
            match b {
                b'\n' => {
                    self.ready = is_ready_line(&self.line);
                    self.line.clear();
                }
                b'\r' => {}
                _ if self.line.len() < MAX_LINE => self.line.push(b),
                _ => {}
            }
        }
        self.ready
    }
}

/// Whether `line` (without its end) is the serial driver's readiness line.
fn is_ready_line(line: &[u8]) -> bool {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end();
    line.starts_with(READY_PREFIX) && line.ends_with(READY_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const READY: &[u8] =
        b"serial: com1 at ports 0x3f8-0x3ff, 115200 baud, IRQ IoApic, echo off: ready\r\n";

    #[test]
    fn the_serial_readiness_line_makes_the_console_ready() {
        let mut w = ConsoleReady::new();
        assert!(!w.output(b"naming: ready\r\nmemory: ready\r\ndevices: ready\r\n"));
        assert!(!w.output(b"proc: started serial (id 4, generation 1)\r\n"));
        assert!(!w.is_ready());
        assert!(w.output(READY));
        assert!(w.is_ready());
        assert!(w.output(b"anything after"), "ready stays ready");
    }

    #[test]
    fn a_line_split_across_reads_is_recognised_only_when_complete() {
        let mut w = ConsoleReady::new();
        for chunk in READY[..READY.len() - 1].chunks(7) {
            assert!(!w.output(chunk));
        }
        assert!(w.output(b"\n"));
    }

    #[test]
    fn a_line_that_only_mentions_ready_does_not_count() {
        let mut w = ConsoleReady::new();
        assert!(!w.output(b"hello: serial: ready\n"));
        assert!(!w.output(b"serial: waiting for devices\n"));
        let long = vec![b'x'; 4 * MAX_LINE];
        assert!(!w.output(&long));
        assert!(
            !w.output(b": ready\n"),
            "an overlong line is not the ready line"
        );
    }
}
