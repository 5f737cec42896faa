//! The serial console's logic: a 16550 UART ([`uart16550`]) behind `proto::console`.
//!
//! Output is written straight to the UART (polling its transmit holding register; the
//! kernel's own debug output shares the port). Input is interrupt driven: the component's
//! shell calls [`Console::interrupt`] when the UART's IRQ arrives, which drains the receive
//! FIFO into a bounded buffer (bytes beyond it are dropped and counted) and, with `echo` on,
//! writes each byte back as a terminal's line discipline would (`\r` echoes as `\r\n`).
//! `read` takes from the buffer and never blocks (`WouldBlock` when it is empty); a reader
//! that would rather sleep than poll asks to be woken (`watch`, [`Watchers`]): the binary
//! signals every watcher's notification when input arrives.
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
use proto::{Bytes, CapSlot, MAX_BYTES};
use uart16550::{InitError, Registers, Uart};

/// Bytes of input kept until a client reads them.
pub const INPUT_CAPACITY: usize = 4096;
/// Polls of the line status per byte before a write gives up (`Busy`).
pub const TX_SPINS: usize = 100_000;

/// Moves a capability the console received (first slot) into a slot it keeps (second),
/// deleting what that slot held; false if the kernel refused. Supplied by the binary.
pub type Keep = fn(CapSlot, u64) -> bool;

/// The readers to wake when input arrives: each client's notification in one of the slots
/// the binary set aside, one slot per client badge at most.
#[derive(Debug, Default)]
pub struct Watchers {
    slots: Vec<u64>,
    owners: Vec<Option<u64>>,
}

impl Watchers {
    /// Watchers kept in `slots` (as many watchers as slots).
    pub fn new(slots: Vec<u64>) -> Self {
        let owners = slots.iter().map(|_| None).collect();
        Self { slots, owners }
    }

    /// The slot for `badge`'s notification: the one it already has (its notification is
    /// replaced) or a free one; `None` when every slot belongs to another client.
    pub fn slot_for(&mut self, badge: u64) -> Option<u64> {
        let i = self
            .owners
            .iter()
            .position(|o| *o == Some(badge))
            .or_else(|| self.owners.iter().position(Option::is_none))?;
        self.owners[i] = Some(badge);
        Some(self.slots[i])
    }

    /// Gives `slot` back (its move failed).
    pub fn release(&mut self, slot: u64) {
        if let Some(i) = self.slots.iter().position(|s| *s == slot) {
            self.owners[i] = None;
        }
    }

    /// The slots that hold a watcher's notification.
    pub fn kept(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots
            .iter()
            .zip(&self.owners)
            .filter(|(_, o)| o.is_some())
            .map(|(s, _)| *s)
    }
}

/// The console: the UART, its input buffer and counters.
#[derive(Debug)]
pub struct Console<R> {
    uart: Uart<R>,
    watchers: Watchers,
    keep: Option<Keep>,
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
            watchers: Watchers::default(),
            keep: None,
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

    /// Lets readers ask to be woken (`watch`): their notifications are moved with `keep`
    /// into `watchers`' slots. Without this, `watch` answers `Full`.
    pub fn with_watchers(mut self, watchers: Watchers, keep: Keep) -> Self {
        self.watchers = watchers;
        self.keep = Some(keep);
        self
    }

    /// The slots of the notifications to signal when input arrives.
    pub fn watchers(&self) -> impl Iterator<Item = u64> + '_ {
        self.watchers.kept()
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

    fn watch(&mut self, badge: u64, wake: CapSlot) -> Result<(), Error> {
        let keep = self.keep.ok_or(Error::Full)?;
        let slot = self.watchers.slot_for(badge).ok_or(Error::Full)?;
        if keep(wake, slot) {
            Ok(())
        } else {
            self.watchers.release(slot);
            Err(Error::Full)
        }
    }
}
