//! The receive path and interrupt decoding against the simulated 82574L, including a
//! device that writes garbage.

mod sim;

use e1000e::desc::{RX_ERROR_IPE, RX_ERROR_TCPE, RX_STATUS_IPCS, RX_STATUS_IXSM, RX_STATUS_TCPCS};
use e1000e::regs::*;
use e1000e::{Config, Interrupt, RxError, Verified, BUFFER_SIZE};
use sim::{frame, rings, start};

const DD_EOP: u8 = 0b11;

#[test]
fn frames_are_delivered_in_order_then_empty() {
    let (mut driver, sim) = start(rings(8, 8));
    let mut buffer = [0u8; 2048];
    assert_eq!(driver.receive(&mut buffer), Err(RxError::Empty));
    for tag in 0..3 {
        assert!(sim.deliver(&frame(tag, 60 + tag as usize)));
    }
    for tag in 0..3 {
        let len = driver.receive(&mut buffer).unwrap();
        assert_eq!(&buffer[..len], &frame(tag, 60 + tag as usize)[..]);
    }
    assert_eq!(driver.receive(&mut buffer), Err(RxError::Empty));
    assert_eq!(
        sim.reg(RDT),
        2,
        "every recycled descriptor reported once drained"
    );
    assert_eq!(driver.counters().rx_frames, 3);
    assert_eq!(driver.counters().rx_bytes, 183);
}

#[test]
fn the_ring_holds_n_minus_one_and_recycling_makes_room() {
    let (mut driver, sim) = start(rings(8, 8));
    for tag in 0..7 {
        assert!(sim.deliver(&frame(tag, 64)));
    }
    assert!(!sim.deliver(&frame(7, 64)), "head caught up with tail");
    let mut buffer = [0u8; 2048];
    driver.receive(&mut buffer).unwrap();
    driver.receive(&mut buffer).unwrap();
    assert!(sim.deliver(&frame(7, 64)));
    assert!(sim.deliver(&frame(8, 64)));
    for tag in 2..9 {
        let len = driver.receive(&mut buffer).unwrap();
        assert_eq!(&buffer[..len], &frame(tag, 64)[..], "frame {tag}");
    }
    assert_eq!(driver.receive(&mut buffer), Err(RxError::Empty));
}

#[test]
fn wrap_around_many_times() {
    let (mut driver, sim) = start(rings(16, 8));
    let mut expected = 0u32;
    let mut next = 0u32;
    let mut buffer = [0u8; 2048];
    for round in 0..50 {
        for _ in 0..(round % 13) + 1 {
            if sim.deliver(&frame(next, 60 + (next as usize % 1400))) {
                next += 1;
            }
        }
        loop {
            match driver.receive(&mut buffer) {
                Ok(len) => {
                    let want = frame(expected, 60 + (expected as usize % 1400));
                    assert_eq!(&buffer[..len], &want[..], "frame {expected}");
                    expected += 1;
                }
                Err(RxError::Empty) => break,
                Err(other) => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(expected, next);
    assert!(next > 16 * 10);
}

#[test]
fn tail_writes_are_batched() {
    let (mut driver, sim) = start(rings(64, 8));
    let before = sim.count_writes(RDT);
    for tag in 0..40 {
        assert!(sim.deliver(&frame(tag, 64)));
    }
    let mut buffer = [0u8; 2048];
    for _ in 0..40 {
        driver.receive(&mut buffer).unwrap();
    }
    assert_eq!(
        sim.count_writes(RDT) - before,
        2,
        "one write per 16 descriptors"
    );
    assert_eq!(driver.receive(&mut buffer), Err(RxError::Empty));
    assert_eq!(sim.count_writes(RDT) - before, 3);
    assert_eq!(sim.reg(RDT), 39);
}

#[test]
fn descriptors_with_errors_are_dropped_and_counted() {
    let (mut driver, sim) = start(rings(8, 8));
    assert!(sim.deliver_raw(&frame(0, 64), 64, DD_EOP, 0x01)); // CRC error
    assert!(sim.deliver_raw(&frame(1, 64), 64, DD_EOP, 0x80)); // RX data error
    assert!(sim.deliver(&frame(2, 64)));
    let mut buffer = [0u8; 2048];
    let len = driver.receive(&mut buffer).unwrap();
    assert_eq!(&buffer[..len], &frame(2, 64)[..]);
    assert_eq!(driver.counters().rx_errors, 2);
    assert_eq!(driver.counters().rx_frames, 1);
}

#[test]
fn receive_checksum_offload_reports_what_the_device_verified() {
    let (mut driver, sim) = start(rings(16, 8));
    assert_eq!(sim.reg(RXCSUM), RXCSUM_IPOFLD | RXCSUM_TUOFLD);
    let both = DD_EOP | RX_STATUS_IPCS | RX_STATUS_TCPCS;
    assert!(sim.deliver_raw(&frame(0, 64), 64, both, 0));
    assert!(sim.deliver_raw(&frame(1, 64), 64, DD_EOP | RX_STATUS_IPCS, 0));
    assert!(sim.deliver_raw(&frame(2, 64), 64, both | RX_STATUS_IXSM, 0));
    assert!(sim.deliver_raw(&frame(3, 64), 64, both, RX_ERROR_TCPE)); // verified by nobody
    assert!(sim.deliver_raw(&frame(4, 64), 64, both, RX_ERROR_IPE));
    assert!(sim.deliver_raw(&frame(5, 64), 64, DD_EOP, 0));
    assert!(sim.deliver_raw(&frame(6, 64), 64, both, RX_ERROR_TCPE | 0x01)); // CRC: dropped
    let mut seen = Vec::new();
    while let Ok((tag, verified)) =
        driver.receive_with_checksums(|frame_bytes, verified| (frame_bytes.to_vec(), verified))
    {
        seen.push((tag, verified));
    }
    let v = |ipv4, l4| Verified { ipv4, l4 };
    let expected = [
        (frame(0, 64), v(true, true)),
        (frame(1, 64), v(true, false)),
        (frame(2, 64), v(false, false)),
        (frame(3, 64), v(false, false)),
        (frame(4, 64), v(false, false)),
        (frame(5, 64), v(false, false)),
    ];
    assert_eq!(seen, expected);
    let c = driver.counters();
    assert_eq!(
        (
            c.rx_errors,
            c.rx_checksum_errors,
            c.rx_checksum_verified,
            c.rx_frames
        ),
        (1, 2, 1, 6)
    );
}

#[test]
fn without_checksum_offload_nothing_counts_as_verified() {
    let config = Config {
        rx_checksum_offload: false,
        ..rings(8, 8)
    };
    let (mut driver, sim) = start(config);
    assert_eq!(sim.reg(RXCSUM), 0);
    let both = DD_EOP | RX_STATUS_IPCS | RX_STATUS_TCPCS;
    assert!(sim.deliver_raw(&frame(0, 64), 64, both, 0));
    assert_eq!(
        driver.receive_with_checksums(|_, verified| verified),
        Ok(Verified::default())
    );
    assert_eq!(driver.counters().rx_checksum_verified, 0);
}

#[test]
fn moderation_adapts_to_the_frames_of_each_busy_stretch() {
    let (mut driver, sim) = start(rings(256, 8));
    assert_eq!((sim.reg(ITR), driver.interrupt_throttle()), (500, 500));
    let mut busy_stretch = |frames: u32| {
        driver.set_interrupts(false);
        for tag in 0..frames {
            assert!(sim.deliver(&frame(tag, 64)));
            driver.receive_with(|_| ()).unwrap();
        }
        driver.set_interrupts(true);
        (sim.reg(ITR), sim.count_writes(ITR))
    };
    // Light traffic keeps the short gap (and writes nothing); a bulk stretch lengthens it,
    // once; light traffic again brings it back.
    assert_eq!(busy_stretch(3), (500, 1));
    assert_eq!(busy_stretch(100), (2000, 2));
    assert_eq!(busy_stretch(200), (2000, 2));
    assert_eq!(busy_stretch(1), (500, 3));
    assert_eq!(driver.counters().moderation_changes, 2);
}

#[test]
fn fixed_moderation_never_changes() {
    let config = Config {
        adaptive_moderation: false,
        ..rings(256, 8)
    };
    let (mut driver, sim) = start(config);
    driver.set_interrupts(false);
    for tag in 0..100 {
        assert!(sim.deliver(&frame(tag, 64)));
        driver.receive_with(|_| ()).unwrap();
    }
    driver.set_interrupts(true);
    assert_eq!((sim.reg(ITR), sim.count_writes(ITR)), (500, 1));
}

#[test]
fn bad_lengths_and_split_frames_are_dropped() {
    let (mut driver, sim) = start(rings(16, 8));
    assert!(sim.deliver_raw(&frame(0, 64), 4000, DD_EOP, 0)); // longer than the buffer
    assert!(sim.deliver_raw(&frame(1, 64), 0, DD_EOP, 0)); // empty
    assert!(sim.deliver_raw(&frame(2, 64), 2048, 0b01, 0)); // first part, no EOP
    assert!(sim.deliver_raw(&frame(3, 64), 2048, 0b01, 0)); // middle part
    assert!(sim.deliver_raw(&frame(4, 64), 64, DD_EOP, 0)); // last part
    assert!(sim.deliver(&frame(5, 64)));
    let mut buffer = [0u8; 2048];
    let len = driver.receive(&mut buffer).unwrap();
    assert_eq!(&buffer[..len], &frame(5, 64)[..]);
    assert_eq!(driver.counters().rx_malformed, 3);
    assert_eq!(driver.receive(&mut buffer), Err(RxError::Empty));
}

#[test]
fn a_full_size_buffer_is_accepted() {
    let (mut driver, sim) = start(rings(8, 8));
    assert!(sim.deliver(&frame(9, BUFFER_SIZE)));
    let mut seen = 0;
    driver.receive_with(|f| seen = f.len()).unwrap();
    assert_eq!(seen, BUFFER_SIZE);
}

#[test]
fn a_small_caller_buffer_truncates_and_drops() {
    let (mut driver, sim) = start(rings(8, 8));
    assert!(sim.deliver(&frame(0, 1000)));
    assert!(sim.deliver(&frame(1, 100)));
    let mut small = [0u8; 500];
    assert_eq!(
        driver.receive(&mut small),
        Err(RxError::Truncated { length: 1000 })
    );
    let len = driver.receive(&mut small).unwrap();
    assert_eq!(&small[..len], &frame(1, 100)[..]);
    let counters = driver.counters();
    assert_eq!((counters.rx_truncated, counters.rx_frames), (1, 1));
    assert_eq!(counters.rx_bytes, 100);
}

#[test]
fn receive_with_lends_the_frame_in_place() {
    let (mut driver, sim) = start(rings(8, 8));
    assert!(sim.deliver(&frame(4, 200)));
    let sum = driver
        .receive_with(|f| {
            assert_eq!(f, &frame(4, 200)[..]);
            f.iter().map(|&b| u32::from(b)).sum::<u32>()
        })
        .unwrap();
    assert_eq!(sum, frame(4, 200).iter().map(|&b| u32::from(b)).sum());
    assert_eq!(driver.receive_with(|_| ()), Err(RxError::Empty));
}

#[test]
fn interrupt_causes_are_decoded_and_cleared() {
    let (mut driver, sim) = start(rings(8, 8));
    assert!(!driver.handle_interrupt().pending());
    assert!(sim.deliver(&frame(0, 64)));
    let interrupt = driver.handle_interrupt();
    assert!(interrupt.pending() && interrupt.rx && !interrupt.tx_done);
    assert_ne!(interrupt.raw & INT_ASSERTED, 0, "RXT0 is enabled");
    assert!(
        !driver.handle_interrupt().pending(),
        "reading ICR cleared it"
    );
    sim.raise(INT_LSC);
    let interrupt = driver.handle_interrupt();
    assert!(interrupt.link_changed && !interrupt.rx);
    sim.raise(INT_RXO);
    assert!(driver.handle_interrupt().rx_overrun);
}

#[test]
fn decoding_covers_msix_causes() {
    let decoded = Interrupt::decode(INT_RXQ0 | INT_TXQ0 | INT_OTHER);
    assert!(decoded.rx && decoded.tx_done && decoded.pending());
    let none = Interrupt::decode(INT_ASSERTED);
    assert!(!none.pending() && !none.rx && !none.tx_done && !none.link_changed);
    assert_eq!(Interrupt::decode(0), Interrupt::default());
    let all = Interrupt::decode(INT_TXDW | INT_LSC | INT_RXDMT0 | INT_RXT0);
    assert!(all.rx && all.tx_done && all.link_changed && all.rx_overrun);
}

#[test]
fn interrupt_mask_can_be_changed_for_polling() {
    let (mut driver, sim) = start(rings(8, 8));
    driver.disable_interrupts(INT_ALL);
    assert_eq!(sim.reg(IMS), 0);
    driver.enable_interrupts(INT_RXT0);
    assert_eq!(sim.reg(IMS), INT_RXT0);
}

/// A small deterministic generator for garbage.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn garbage_device_state_never_panics_or_hangs() {
    let (mut driver, sim) = start(rings(16, 8));
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    let memory = sim.memory();
    for round in 0..2000 {
        // Scribble over receive and transmit descriptors and ring registers.
        for _ in 0..(random.next() % 6) {
            let index = (random.next() % 16) as usize;
            let word = random.next() % 4;
            let value = random.next() as u32;
            memory
                .borrow_mut()
                .write_u32(sim.rx_descriptor(index) + 4 * word, value);
            let index = (random.next() % 8) as usize;
            memory
                .borrow_mut()
                .write_u32(sim.tx_descriptor(index) + 12, random.next() as u32);
        }
        sim.set_reg(RDH, random.next() as u32);
        sim.set_reg(TDH, random.next() as u32);
        sim.raise(random.next() as u32);
        let _ = driver.handle_interrupt();
        let mut buffer = vec![0u8; (random.next() % 2100) as usize];
        for _ in 0..20 {
            match driver.receive(&mut buffer) {
                Ok(len) => assert!(len <= buffer.len()),
                Err(RxError::Truncated { length }) => assert!(length <= BUFFER_SIZE),
                Err(RxError::Empty) => break,
            }
        }
        let _ = driver.transmit(&frame(round, 1 + (random.next() % 1600) as usize));
        assert!(driver.tx_free() < 8);
    }
    // The garbage was seen and counted, not delivered as frames.
    let counters = driver.counters();
    assert!(counters.rx_errors + counters.rx_malformed > 0);
}
