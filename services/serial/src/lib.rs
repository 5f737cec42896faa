//! The serial console's logic: a 16550 UART ([`uart16550`]) behind `proto::console`.
//!
//! Output is written straight to the UART (polling its transmit holding register; the
//! kernel's own debug output shares the port). Input is interrupt driven: the component's
//! shell calls [`Console::interrupt`] when the UART's IRQ arrives, which drains the receive
//! FIFO into a bounded buffer (bytes beyond it are dropped and counted) and, with `echo` on,
//! writes each byte back as a terminal's line discipline would (`\r` echoes as `\r\n`).
//! `read` takes from the buffer and never blocks (`WouldBlock` when it is empty).
//! [`Console::start`] initialises the UART without losing type-ahead: what was received
//! before the driver ran is the first input read.
//!
//! [`setup`] holds what serial asks of naming and devices at start, and what it does when
//! they answer with an error.
//!
//! No seL4 types here: the binary (`main.rs`) supplies the registers over the I/O port
//! capability and wires the IRQ.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod setup;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use proto::console::{Error, Server};
use proto::{Bytes, MAX_BYTES};
use uart16550::{InitError, Registers, Uart};

/// Bytes of input kept until a client reads them.
pub const INPUT_CAPACITY: usize = 4096;
/// Polls of the line status per byte before a write gives up (`Busy`).
pub const TX_SPINS: usize = 100_000;

/// The console: the UART, its input buffer and counters.
#[derive(Debug)]
pub struct Console<R> {
    uart: Uart<R>,
    input: VecDeque<u8>,
    echo: bool,
    /// Bytes received in total.
    pub received: u64,
    /// Bytes dropped because the input buffer was full.
    pub dropped: u64,
    /// Receiver line errors seen.
    pub line_errors: u64,
}

impl<R: Registers> Console<R> {
    /// A console over an initialised UART; `echo` writes input back as it arrives.
    pub fn new(uart: Uart<R>, echo: bool) -> Self {
        Self {
            uart,
            input: VecDeque::new(),
            echo,
            received: 0,
            dropped: 0,
            line_errors: 0,
        }
    }

    /// Initialises `uart` at `baud` and puts a console over it. What was typed before (the
    /// bytes already in the UART's receiver) is the first input a client reads, echoed as
    /// if it had just arrived.
    ///
    /// Errors: the UART's ([`Uart::init`]).
    pub fn start(mut uart: Uart<R>, baud: u32, echo: bool) -> Result<Self, InitError> {
        let mut early = Vec::new();
        let mut dropped = 0;
        uart.init(baud, |b| {
            if early.len() < INPUT_CAPACITY {
                early.push(b);
            } else {
                dropped += 1;
            }
        })?;
        let mut console = Self::new(uart, echo);
        console.echo_back(&early);
        console.received = early.len() as u64;
        console.dropped = dropped;
        console.input = early.into();
        Ok(console)
    }

    /// The UART.
    pub fn uart(&mut self) -> &mut Uart<R> {
        &mut self.uart
    }

    /// Bytes waiting to be read.
    pub fn pending(&self) -> usize {
        self.input.len()
    }

    /// Handles the UART's interrupt: buffers (and echoes) what arrived. Returns whether the
    /// UART had an interrupt pending. The caller acknowledges the IRQ afterwards.
    pub fn interrupt(&mut self) -> bool {
        let input = &mut self.input;
        let mut arrived = [0u8; 64];
        let mut n = 0;
        let report = self.uart.handle_interrupt(|b| {
            if input.len() >= INPUT_CAPACITY {
                return false;
            }
            input.push_back(b);
            if n < arrived.len() {
                arrived[n] = b;
                n += 1;
            }
            true
        });
        self.received += report.received as u64;
        self.dropped += report.dropped as u64;
        self.line_errors += report.line_errors as u64;
        self.echo_back(&arrived[..n]);
        report.pending
    }

    /// With `echo` on, writes `input` back as a terminal's line discipline would.
    fn echo_back(&mut self, input: &[u8]) {
        if !self.echo {
            return;
        }
        for &b in input {
            if b == b'\r' {
                self.uart.write_all(b"\r\n", TX_SPINS);
            } else {
                self.uart.send_blocking(b, TX_SPINS);
            }
        }
    }
}

impl<R: Registers> Server for Console<R> {
    fn write(&mut self, _: u64, data: Bytes) -> Result<(), Error> {
        // All or nothing: wait for room before the first byte, then each byte goes.
        if !data.is_empty() && !(0..TX_SPINS).any(|_| self.uart.can_send()) {
            return Err(Error::Busy);
        }
        self.uart.write_all(&data, TX_SPINS);
        Ok(())
    }

    fn read(&mut self, _: u64, max: u32) -> Result<Bytes, Error> {
        let max = (max as usize).min(MAX_BYTES);
        if max == 0 {
            return Ok(Bytes::EMPTY);
        }
        if self.input.is_empty() {
            return Err(Error::WouldBlock);
        }
        let mut out = [0u8; MAX_BYTES];
        let n = max.min(self.input.len());
        for (slot, b) in out.iter_mut().zip(self.input.drain(..n)) {
            *slot = b;
        }
        Ok(Bytes::prefix(&out[..n]).0)
    }
}
