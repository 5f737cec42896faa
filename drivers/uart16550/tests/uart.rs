//! The driver against a simulated 16550: register protocol, transmit, receive, interrupts.

use std::collections::VecDeque;
use uart16550::{divisor, reg, InitError, Registers, Uart};

/// A 16550 model: divisor latch, FIFOs, line status and the interrupt identification
/// priority order (line status > received data/timeout > transmit empty > modem).
#[derive(Default)]
struct SimUart {
    ier: u8,
    lcr: u8,
    mcr: u8,
    fcr: u8,
    scratch: u8,
    dll: u8,
    dlm: u8,
    rx: VecDeque<u8>,
    tx: Vec<u8>,
    /// Transmit holding register full (the host has not drained it yet).
    tx_busy: bool,
    /// An overrun waiting to be reported.
    overrun: bool,
    /// A THR-empty interrupt waiting (cleared by reading IIR).
    thre_pending: bool,
    /// A broken scratch register (no UART present).
    absent: bool,
    writes: Vec<(u8, u8)>,
}

impl SimUart {
    fn lsr(&self) -> u8 {
        let mut v = 0;
        if !self.rx.is_empty() {
            v |= reg::LSR_DATA_READY;
        }
        if self.overrun {
            v |= reg::LSR_OVERRUN;
        }
        if !self.tx_busy {
            v |= reg::LSR_THR_EMPTY | 1 << 6;
        }
        v
    }

    fn receive(&mut self, bytes: &[u8]) {
        self.rx.extend(bytes);
    }

    fn iir(&mut self) -> u8 {
        let fifo = if self.fcr & reg::FCR_ENABLE != 0 {
            0xC0
        } else {
            0
        };
        let cause = if self.ier & reg::IER_LINE != 0 && self.overrun {
            Some(reg::CAUSE_LINE)
        } else if self.ier & reg::IER_RX != 0 && !self.rx.is_empty() {
            Some(reg::CAUSE_RX)
        } else if self.ier & reg::IER_TX != 0 && self.thre_pending {
            self.thre_pending = false;
            Some(reg::CAUSE_TX_EMPTY)
        } else {
            None
        };
        fifo | cause.unwrap_or(reg::IIR_NONE)
    }

    fn dlab(&self) -> bool {
        self.lcr & reg::LCR_DLAB != 0
    }
}

impl Registers for SimUart {
    fn read(&mut self, offset: u8) -> u8 {
        match offset {
            reg::DATA if self.dlab() => self.dll,
            reg::DATA => self.rx.pop_front().unwrap_or(0),
            reg::IER if self.dlab() => self.dlm,
            reg::IER => self.ier,
            reg::IIR_FCR => self.iir(),
            reg::LCR => self.lcr,
            reg::MCR => self.mcr,
            reg::LSR => {
                let v = self.lsr();
                self.overrun = false;
                v
            }
            reg::MSR => 0,
            reg::SCRATCH if self.absent => 0xFF,
            reg::SCRATCH => self.scratch,
            _ => panic!("read of offset {offset}"),
        }
    }

    fn write(&mut self, offset: u8, value: u8) {
        self.writes.push((offset, value));
        match offset {
            reg::DATA if self.dlab() => self.dll = value,
            reg::DATA => {
                assert!(!self.tx_busy, "wrote DATA while the transmitter was full");
                self.tx.push(value);
            }
            reg::IER if self.dlab() => self.dlm = value,
            reg::IER => self.ier = value & 0x0F,
            reg::IIR_FCR => {
                // Switching the FIFOs on or off resets them, as on a 16550 and in QEMU.
                let toggled = (self.fcr ^ value) & reg::FCR_ENABLE != 0;
                if toggled || value & reg::FCR_CLEAR_RX != 0 {
                    self.rx.clear();
                }
                self.fcr = value & !(reg::FCR_CLEAR_RX | reg::FCR_CLEAR_TX);
            }
            reg::LCR => self.lcr = value,
            reg::MCR => self.mcr = value,
            reg::SCRATCH => self.scratch = value,
            _ => panic!("write of offset {offset}"),
        }
    }
}

fn ready() -> Uart<SimUart> {
    let mut u = Uart::new(SimUart::default());
    assert_eq!(u.init(115_200, |_| panic!("nothing was typed")), Ok(0));
    u
}

/// Initialises `u` at 115200 baud; returns what it handed over.
fn init_keeping(u: &mut Uart<SimUart>) -> Vec<u8> {
    let mut kept = Vec::new();
    let n = u.init(115_200, |b| kept.push(b)).unwrap();
    assert_eq!(n, kept.len());
    kept
}

#[test]
fn divisors() {
    assert_eq!(divisor(115_200), Some(1));
    assert_eq!(divisor(57_600), Some(2));
    assert_eq!(divisor(9_600), Some(12));
    assert_eq!(divisor(2), Some(57_600));
    assert_eq!(divisor(1), None); // 115200 does not fit 16 bits
    assert_eq!(divisor(0), None);
    assert_eq!(divisor(230_400), None);
}

#[test]
fn init_programs_divisor_8n1_fifo_and_receive_interrupt() {
    let mut u = Uart::new(SimUart::default());
    u.init(9_600, |_| ()).unwrap();
    let s = u.registers();
    assert_eq!((s.dll, s.dlm), (12, 0));
    assert_eq!(s.lcr, reg::LCR_8BITS, "8N1 with the divisor latch closed");
    assert_eq!(s.fcr & reg::FCR_ENABLE, reg::FCR_ENABLE);
    assert_eq!(s.ier, reg::IER_RX | reg::IER_LINE);
    assert_ne!(
        s.mcr & reg::MCR_OUT2,
        0,
        "OUT2 gates the PC's interrupt line"
    );
    // Interrupts are masked while the divisor latch is open.
    let first_ier = s.writes.iter().position(|&w| w == (reg::IER, 0)).unwrap();
    let dlab = s
        .writes
        .iter()
        .position(|&w| w == (reg::LCR, reg::LCR_DLAB))
        .unwrap();
    assert!(first_ier < dlab);
    // Interrupts are enabled last.
    assert_eq!(
        *s.writes.last().unwrap(),
        (reg::IER, reg::IER_RX | reg::IER_LINE)
    );
}

#[test]
fn init_hands_over_what_was_typed_before_it() {
    // Type-ahead: bytes in the receiver before the driver starts (FIFOs still off, as the
    // kernel leaves them), which switching the FIFOs on would reset.
    let mut u = Uart::new(SimUart::default());
    u.registers().receive(b"ps\nhalt\n");
    assert_eq!(init_keeping(&mut u), b"ps\nhalt\n");
    assert_eq!(u.registers().fcr & reg::FCR_ENABLE, reg::FCR_ENABLE);
    // Nothing is cleared on purpose.
    for &(offset, value) in &u.registers().writes {
        if offset == reg::IIR_FCR {
            assert_eq!(value & (reg::FCR_CLEAR_RX | reg::FCR_CLEAR_TX), 0);
        }
    }
    // Input after init arrives as usual.
    u.registers().receive(b"x");
    assert_eq!(u.try_receive(), Some(b'x'));
}

#[test]
fn a_restarted_driver_keeps_what_waits_in_the_fifo() {
    let mut u = ready();
    u.registers().receive(b"typed while the driver was down");
    let mut again = Uart::new(u.into_inner());
    assert_eq!(init_keeping(&mut again), b"typed while the driver was down");
    assert!(again.registers().rx.is_empty());
}

#[test]
fn init_refuses_bad_baud_and_missing_uart() {
    let mut u = Uart::new(SimUart::default());
    assert_eq!(u.init(0, |_| ()), Err(InitError::BadBaud));
    assert!(u.registers().writes.is_empty());
    let mut absent = Uart::new(SimUart {
        absent: true,
        ..SimUart::default()
    });
    assert_eq!(absent.init(115_200, |_| ()), Err(InitError::NoUart));
}

#[test]
fn transmit_waits_for_the_holding_register() {
    let mut u = ready();
    assert!(u.try_send(b'a'));
    u.registers().tx_busy = true;
    assert!(!u.try_send(b'b'));
    assert!(!u.send_blocking(b'b', 10));
    assert_eq!(u.write_all(b"xyz", 3), 0);
    u.registers().tx_busy = false;
    assert_eq!(u.write_all(b"hello", 3), 5);
    assert_eq!(u.registers().tx, b"ahello");
}

#[test]
fn receive_polls_line_status() {
    let mut u = ready();
    assert_eq!(u.try_receive(), None);
    u.registers().receive(b"hi");
    assert_eq!(u.try_receive(), Some(b'h'));
    assert_eq!(u.try_receive(), Some(b'i'));
    assert_eq!(u.try_receive(), None);
}

#[test]
fn interrupt_drains_input_into_the_sink() {
    let mut u = ready();
    u.registers().receive(b"typed");
    let mut got = Vec::new();
    let r = u.handle_interrupt(|b| {
        got.push(b);
        true
    });
    assert_eq!(got, b"typed");
    assert_eq!(r.received, 5);
    assert!(r.pending);
    assert!(u.registers().rx.is_empty());
    // Nothing pending now: a spurious (or shared) interrupt.
    let r = u.handle_interrupt(|_| true);
    assert!(!r.pending);
    assert_eq!(r.received, 0);
}

#[test]
fn interrupt_counts_drops_and_line_errors() {
    let mut u = ready();
    u.registers().receive(b"abcdef");
    u.registers().overrun = true;
    let mut room = 4;
    let r = u.handle_interrupt(|_| {
        if room == 0 {
            return false;
        }
        room -= 1;
        true
    });
    assert_eq!(r.line_errors, 1);
    assert_eq!((r.received, r.dropped), (4, 2));
    assert!(!u.registers().overrun);
}

#[test]
fn interrupt_reports_transmit_empty() {
    let mut u = ready();
    u.registers().ier |= reg::IER_TX;
    u.registers().thre_pending = true;
    let r = u.handle_interrupt(|_| true);
    assert!(r.tx_empty && r.pending);
}

/// A UART whose cause never clears must not hang the handler.
#[test]
fn stuck_interrupt_is_bounded() {
    struct Stuck;
    impl Registers for Stuck {
        fn read(&mut self, offset: u8) -> u8 {
            match offset {
                reg::IIR_FCR => reg::CAUSE_LINE,
                _ => 0,
            }
        }
        fn write(&mut self, _: u8, _: u8) {}
    }
    let r = Uart::new(Stuck).handle_interrupt(|_| true);
    assert!(r.pending);
    assert!(r.line_errors > 0 && r.line_errors <= 64);
}
