//! A driver for the 16550 UART (the PC's COM ports), over a small register-access trait.
//!
//! The driver knows the UART's eight registers and nothing of how they are reached: a
//! [`Registers`] implementation does the port (or memory-mapped) accesses. On Tessera the
//! serial component implements it with the seL4 I/O port capability `devices` hands it; host
//! tests implement it with a simulated UART.
//!
//! What it does: [`Uart::init`] (baud divisor, 8 data bits, no parity, 1 stop bit, FIFOs on,
//! the receive interrupt enabled, `OUT2` set so the interrupt reaches the interrupt
//! controller; input received before it is handed over, never discarded), [`Uart::try_send`]/[`Uart::send_blocking`] (transmit),
//! [`Uart::try_receive`] (receive) and [`Uart::handle_interrupt`] (reads the interrupt cause
//! until none is pending, draining received bytes into a sink).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

/// Register offsets from the UART's base.
pub mod reg {
    /// Receive buffer (read) / transmit holding (write); with `LCR_DLAB`, divisor low byte.
    pub const DATA: u8 = 0;
    /// Interrupt enable; with `LCR_DLAB`, divisor high byte.
    pub const IER: u8 = 1;
    /// Interrupt identification (read) / FIFO control (write).
    pub const IIR_FCR: u8 = 2;
    /// Line control.
    pub const LCR: u8 = 3;
    /// Modem control.
    pub const MCR: u8 = 4;
    /// Line status.
    pub const LSR: u8 = 5;
    /// Modem status.
    pub const MSR: u8 = 6;
    /// Scratch.
    pub const SCRATCH: u8 = 7;

    /// IER: received data available.
    pub const IER_RX: u8 = 1 << 0;
    /// IER: transmit holding register empty.
    pub const IER_TX: u8 = 1 << 1;
    /// IER: receiver line status.
    pub const IER_LINE: u8 = 1 << 2;

    /// IIR: no interrupt pending (active low "pending" bit).
    pub const IIR_NONE: u8 = 1 << 0;
    /// IIR: the cause field (bits 1..=3).
    pub const IIR_CAUSE: u8 = 0b1110;
    /// Cause: modem status changed (cleared by reading MSR).
    pub const CAUSE_MODEM: u8 = 0b0000;
    /// Cause: transmit holding register empty (cleared by reading IIR or writing DATA).
    pub const CAUSE_TX_EMPTY: u8 = 0b0010;
    /// Cause: received data available (cleared by reading DATA below the trigger level).
    pub const CAUSE_RX: u8 = 0b0100;
    /// Cause: receiver line status (cleared by reading LSR).
    pub const CAUSE_LINE: u8 = 0b0110;
    /// Cause: character timeout (data in the FIFO, none arrived lately; cleared by reading DATA).
    pub const CAUSE_TIMEOUT: u8 = 0b1100;

    /// FCR: enable the FIFOs.
    pub const FCR_ENABLE: u8 = 1 << 0;
    /// FCR: clear the receive FIFO.
    pub const FCR_CLEAR_RX: u8 = 1 << 1;
    /// FCR: clear the transmit FIFO.
    pub const FCR_CLEAR_TX: u8 = 1 << 2;
    /// FCR: receive interrupt at 1 byte (trigger bits 6..=7 = 00).
    pub const FCR_TRIGGER_1: u8 = 0b00 << 6;

    /// LCR: 8 data bits.
    pub const LCR_8BITS: u8 = 0b11;
    /// LCR: divisor latch access.
    pub const LCR_DLAB: u8 = 1 << 7;

    /// MCR: data terminal ready.
    pub const MCR_DTR: u8 = 1 << 0;
    /// MCR: request to send.
    pub const MCR_RTS: u8 = 1 << 1;
    /// MCR: OUT2, which on the PC gates the UART's interrupt line to the controller.
    pub const MCR_OUT2: u8 = 1 << 3;
    /// MCR: loopback.
    pub const MCR_LOOP: u8 = 1 << 4;

    /// LSR: data ready.
    pub const LSR_DATA_READY: u8 = 1 << 0;
    /// LSR: overrun error.
    pub const LSR_OVERRUN: u8 = 1 << 1;
    /// LSR: transmit holding register empty.
    pub const LSR_THR_EMPTY: u8 = 1 << 5;
}

/// The UART's input clock divided by 16: the baud rate with divisor 1.
pub const BASE_BAUD: u32 = 115_200;

/// Access to the UART's eight byte-wide registers (offsets 0..=7, see [`reg`]).
pub trait Registers {
    /// Reads the register at `offset`.
    fn read(&mut self, offset: u8) -> u8;
    /// Writes `value` to the register at `offset`.
    fn write(&mut self, offset: u8, value: u8);
}

impl<R: Registers + ?Sized> Registers for &mut R {
    fn read(&mut self, offset: u8) -> u8 {
        (**self).read(offset)
    }
    fn write(&mut self, offset: u8, value: u8) {
        (**self).write(offset, value)
    }
}

/// Why [`Uart::init`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The baud rate is 0, above [`BASE_BAUD`], or needs a divisor above 0xFFFF.
    BadBaud,
    /// Nothing answers: the scratch register does not keep what was written.
    NoUart,
}

/// The divisor for `baud`, rounded to the nearest; `None` if it is 0 or out of range.
pub fn divisor(baud: u32) -> Option<u16> {
    if baud == 0 || baud > BASE_BAUD {
        return None;
    }
    let d = (BASE_BAUD + baud / 2) / baud;
    u16::try_from(d).ok().filter(|&d| d != 0)
}

/// What one [`Uart::handle_interrupt`] call found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterruptReport {
    /// Bytes received and passed to the sink.
    pub received: usize,
    /// Bytes received but refused by the sink (dropped).
    pub dropped: usize,
    /// Receiver line status errors seen (overrun, parity, framing, break).
    pub line_errors: usize,
    /// Whether a "transmit holding register empty" interrupt was among the causes.
    pub tx_empty: bool,
    /// Whether any interrupt was pending at all (false: spurious or shared line).
    pub pending: bool,
}

/// A bound on the interrupt loop, so a UART that never clears its cause cannot hang us.
const MAX_CAUSES: usize = 64;
/// A bound on the bytes drained per cause (a 16550's FIFO holds 16).
const MAX_DRAIN: usize = 256;

/// A 16550 UART.
#[derive(Debug)]
pub struct Uart<R> {
    regs: R,
}

impl<R: Registers> Uart<R> {
    /// A driver over `regs`; call [`Uart::init`] before use.
    pub fn new(regs: R) -> Self {
        Self { regs }
    }

    /// The register access.
    pub fn registers(&mut self) -> &mut R {
        &mut self.regs
    }

    /// Gives the register access back.
    pub fn into_inner(self) -> R {
        self.regs
    }

    /// Initialises the UART: checks it answers (scratch register), masks its interrupts,
    /// sets the divisor for `baud`, 8N1, enables the FIFOs (receive trigger at 1 byte),
    /// raises DTR, RTS and OUT2, then enables the receive data and line status interrupts.
    ///
    /// Input that arrived before (type-ahead: what a user typed while the system booted) is
    /// not thrown away: every byte already in the receiver is passed to `keep`, in order,
    /// and the FIFOs are never explicitly cleared. The receiver is emptied into `keep` just
    /// before the FIFOs are switched on, because enabling them resets them (on a 16550 and in
    /// QEMU's model); a UART whose FIFOs are already on (a restarted driver) loses nothing.
    /// Returns how many bytes went to `keep`.
    ///
    /// Errors: `BadBaud` (nothing is written), `NoUart`.
    pub fn init(&mut self, baud: u32, mut keep: impl FnMut(u8)) -> Result<usize, InitError> {
        let div = divisor(baud).ok_or(InitError::BadBaud)?;
        for probe in [0x5A, 0xA5] {
            self.regs.write(reg::SCRATCH, probe);
            if self.regs.read(reg::SCRATCH) != probe {
                return Err(InitError::NoUart);
            }
        }
        self.regs.write(reg::IER, 0);
        // Before the divisor latch hides the receive buffer.
        let mut kept = self.take_received(&mut keep);
        self.regs.write(reg::LCR, reg::LCR_DLAB);
        self.regs.write(reg::DATA, div as u8);
        self.regs.write(reg::IER, (div >> 8) as u8);
        self.regs.write(reg::LCR, reg::LCR_8BITS);
        // Right before the FIFOs go on: what came in meanwhile.
        kept += self.take_received(&mut keep);
        self.regs
            .write(reg::IIR_FCR, reg::FCR_ENABLE | reg::FCR_TRIGGER_1);
        self.regs
            .write(reg::MCR, reg::MCR_DTR | reg::MCR_RTS | reg::MCR_OUT2);
        kept += self.take_received(&mut keep);
        let _ = self.regs.read(reg::LSR);
        let _ = self.regs.read(reg::IIR_FCR);
        let _ = self.regs.read(reg::MSR);
        self.regs.write(reg::IER, reg::IER_RX | reg::IER_LINE);
        Ok(kept)
    }

    /// Passes every byte waiting in the receiver to `keep` (at most [`MAX_DRAIN`]); returns
    /// how many.
    fn take_received(&mut self, keep: &mut impl FnMut(u8)) -> usize {
        let mut n = 0;
        while n < MAX_DRAIN {
            let Some(b) = self.try_receive() else { break };
            keep(b);
            n += 1;
        }
        n
    }

    /// Whether the transmitter can take a byte.
    pub fn can_send(&mut self) -> bool {
        self.regs.read(reg::LSR) & reg::LSR_THR_EMPTY != 0
    }

    /// Sends `byte` if the transmitter can take it; returns whether it did.
    pub fn try_send(&mut self, byte: u8) -> bool {
        if self.can_send() {
            self.regs.write(reg::DATA, byte);
            true
        } else {
            false
        }
    }

    /// Sends `byte`, waiting (polling the line status at most `spins` times) for room.
    /// Returns whether it was sent.
    pub fn send_blocking(&mut self, byte: u8, spins: usize) -> bool {
        (0..spins.max(1)).any(|_| self.try_send(byte))
    }

    /// Sends every byte of `data` with [`Uart::send_blocking`]; returns how many were sent
    /// (fewer only if the transmitter stayed full for `spins` polls).
    pub fn write_all(&mut self, data: &[u8], spins: usize) -> usize {
        data.iter()
            .take_while(|&&b| self.send_blocking(b, spins))
            .count()
    }

    /// A received byte, if one is waiting.
    pub fn try_receive(&mut self) -> Option<u8> {
        (self.regs.read(reg::LSR) & reg::LSR_DATA_READY != 0).then(|| self.regs.read(reg::DATA))
    }

    /// Handles the UART's interrupt: reads the cause until none is pending, passing every
    /// received byte to `sink` (which returns false when it has no room: the byte is dropped
    /// and counted) and clearing line status and modem status causes by reading those
    /// registers. The caller acknowledges the interrupt at the controller afterwards.
    pub fn handle_interrupt(&mut self, mut sink: impl FnMut(u8) -> bool) -> InterruptReport {
        let mut report = InterruptReport::default();
        for _ in 0..MAX_CAUSES {
            let iir = self.regs.read(reg::IIR_FCR);
            if iir & reg::IIR_NONE != 0 {
                break;
            }
            report.pending = true;
            match iir & reg::IIR_CAUSE {
                reg::CAUSE_RX | reg::CAUSE_TIMEOUT => {
                    for _ in 0..MAX_DRAIN {
                        let Some(b) = self.try_receive() else { break };
                        if sink(b) {
                            report.received += 1;
                        } else {
                            report.dropped += 1;
                        }
                    }
                }
                reg::CAUSE_LINE => {
                    let _ = self.regs.read(reg::LSR);
                    report.line_errors += 1;
                }
                reg::CAUSE_TX_EMPTY => report.tx_empty = true,
                _ => {
                    let _ = self.regs.read(reg::MSR);
                }
            }
        }
        report
    }
}
