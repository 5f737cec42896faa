//! The console server over a simulated UART: interrupt-driven input, echo, read and write.

use proto::console::{ConsoleClient, Error};
use proto::{Bytes, Loopback};
use serial::{Console, INPUT_CAPACITY};
use std::collections::VecDeque;
use uart16550::{reg, Registers, Uart};

/// Just enough of a 16550: receive FIFO, transmit log, IIR for received data.
#[derive(Default)]
struct Sim {
    rx: VecDeque<u8>,
    tx: Vec<u8>,
    ier: u8,
    lcr: u8,
    scratch: u8,
}

impl Registers for Sim {
    fn read(&mut self, offset: u8) -> u8 {
        match offset {
            reg::DATA if self.lcr & reg::LCR_DLAB == 0 => self.rx.pop_front().unwrap_or(0),
            reg::IIR_FCR if self.ier & reg::IER_RX != 0 && !self.rx.is_empty() => reg::CAUSE_RX,
            reg::IIR_FCR => reg::IIR_NONE,
            reg::LSR => reg::LSR_THR_EMPTY | u8::from(!self.rx.is_empty()),
            reg::SCRATCH => self.scratch,
            _ => 0,
        }
    }
    fn write(&mut self, offset: u8, value: u8) {
        match offset {
            reg::DATA if self.lcr & reg::LCR_DLAB == 0 => self.tx.push(value),
            reg::IER if self.lcr & reg::LCR_DLAB == 0 => self.ier = value,
            reg::LCR => self.lcr = value,
            reg::SCRATCH => self.scratch = value,
            _ => {}
        }
    }
}

fn console(echo: bool) -> Console<Sim> {
    Console::start(Uart::new(Sim::default()), 115_200, echo).unwrap()
}

#[test]
fn what_was_typed_before_start_is_read_first_in_order() {
    let mut sim = Sim::default();
    sim.rx.extend(b"ps\rhalt\r");
    let mut c = Console::start(Uart::new(sim), 115_200, true).unwrap();
    assert_eq!(c.pending(), 8);
    assert_eq!(c.received, 8);
    // Echoed as if it had just arrived.
    assert_eq!(c.uart().registers().tx, b"ps\r\nhalt\r\n");
    c.uart().registers().rx.extend(b"mem\r");
    assert!(c.interrupt());
    let read = proto::console::Server::read(&mut c, 1, 64).unwrap();
    assert_eq!(&read[..], b"ps\rhalt\rmem\r");
}

#[test]
fn input_is_buffered_echoed_and_read() {
    let mut c = console(true);
    assert_eq!(
        proto::console::Server::read(&mut c, 1, 10),
        Err(Error::WouldBlock)
    );
    c.uart().registers().rx.extend(b"ls\r");
    assert!(c.interrupt());
    assert_eq!(c.uart().registers().tx, b"ls\r\n");
    assert_eq!(c.pending(), 3);
    let mut client = ConsoleClient::new(Loopback(|m: &proto::Message| {
        proto::console::dispatch(&mut c, 5, m)
    }));
    assert_eq!(&*client.read(2).unwrap(), b"ls");
    assert_eq!(&*client.read(0).unwrap(), b"");
    assert_eq!(&*client.read(200).unwrap(), b"\r");
    assert_eq!(client.read(1), Err(Error::WouldBlock));
}

#[test]
fn write_goes_to_the_uart() {
    let mut c = console(false);
    proto::console::Server::write(&mut c, 1, Bytes::new(b"hello\n").unwrap()).unwrap();
    assert_eq!(c.uart().registers().tx, b"hello\n");
    c.uart().registers().rx.extend(b"x");
    c.interrupt();
    assert_eq!(c.uart().registers().tx, b"hello\n", "no echo");
}

#[test]
fn input_beyond_capacity_is_dropped_and_counted() {
    let mut c = console(false);
    for _ in 0..(INPUT_CAPACITY / 200 + 2) {
        c.uart().registers().rx.extend([b'a'; 200]);
        c.interrupt();
    }
    assert_eq!(c.pending(), INPUT_CAPACITY);
    assert!(c.dropped > 0);
    assert_eq!(
        c.received + c.dropped,
        200 * (INPUT_CAPACITY as u64 / 200 + 2)
    );
}

#[test]
fn readers_ask_to_be_woken_one_slot_each_until_the_slots_run_out() {
    use proto::CapSlot;
    use serial::Watchers;
    // The "kernel": a move into slot 3 fails; every other succeeds.
    fn keep(_: CapSlot, into: u64) -> bool {
        into != 3
    }
    let without = console(false);
    let mut without = without;
    assert_eq!(
        proto::console::dispatch(
            &mut without,
            1,
            &proto::console::Request::Watch { wake: CapSlot(9) }
                .encode()
                .unwrap()
                .with_cap(9)
        )
        .label,
        Error::Full as u64,
        "a console without watcher slots says Full"
    );
    let mut c = console(false).with_watchers(Watchers::new(vec![1, 2, 3]), keep);
    let watch = |c: &mut Console<Sim>, badge: u64| {
        let m = proto::console::Request::Watch { wake: CapSlot(9) }
            .encode()
            .unwrap()
            .with_cap(9);
        proto::console::dispatch(c, badge, &m).label
    };
    assert_eq!(watch(&mut c, 10), 0);
    assert_eq!(watch(&mut c, 10), 0, "asking again keeps the same slot");
    assert_eq!(c.watchers().collect::<Vec<_>>(), [1]);
    assert_eq!(watch(&mut c, 11), 0);
    // The third client's slot is 3, whose move fails: refused, and the slot stays free.
    assert_eq!(watch(&mut c, 12), Error::Full as u64);
    assert_eq!(c.watchers().collect::<Vec<_>>(), [1, 2]);
    // Without the capability: malformed, nothing kept.
    let bare = proto::console::Request::Watch { wake: CapSlot(9) }
        .encode()
        .unwrap();
    let mut bare = bare;
    bare.cap = None;
    assert_eq!(
        proto::console::dispatch(&mut c, 13, &bare).label,
        Error::Malformed as u64
    );
    assert_eq!(c.watchers().collect::<Vec<_>>(), [1, 2]);
}
