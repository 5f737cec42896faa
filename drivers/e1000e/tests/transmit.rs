//! The transmit path against the simulated 82574L.

mod sim;

use e1000e::desc::{TX_CMD_EOP, TX_CMD_IFCS, TX_CMD_RS};
use e1000e::regs::*;
use e1000e::{TxError, MAX_FRAME_LEN};
use sim::{frame, rings, start};

#[test]
fn transmit_writes_a_descriptor_and_bumps_tdt() {
    let (mut driver, sim) = start(rings(8, 8));
    let data = frame(1, 60);
    driver.transmit(&data).unwrap();
    assert_eq!(sim.reg(TDT), 1);
    let memory = sim.memory();
    let memory = memory.borrow();
    let at = sim.tx_descriptor(0);
    let word2 = memory.read_u32(at + 8);
    assert_eq!(word2 & 0xFFFF, 60);
    assert_eq!((word2 >> 24) as u8, TX_CMD_EOP | TX_CMD_IFCS | TX_CMD_RS);
    assert_eq!(
        memory.read_u32(at + 12) & 1,
        0,
        "DD clear until the device is done"
    );
    assert_eq!(memory.read(memory.read_u64(at), 60).unwrap(), data);
}

#[test]
fn the_device_sends_what_was_queued_and_dd_reclaims() {
    let (mut driver, sim) = start(rings(8, 8));
    assert_eq!(driver.tx_free(), 7);
    for tag in 0..3 {
        driver.transmit(&frame(tag, 100 + tag as usize)).unwrap();
    }
    assert_eq!(driver.tx_free(), 4, "nothing written back yet");
    let sent = sim.process_tx();
    assert_eq!(sent.len(), 3);
    for (tag, s) in sent.iter().enumerate() {
        assert_eq!(s.data, frame(tag as u32, 100 + tag));
        assert_eq!(s.command, TX_CMD_EOP | TX_CMD_IFCS | TX_CMD_RS);
    }
    assert_eq!(driver.reclaim(), 3);
    assert_eq!(driver.tx_free(), 7);
    let interrupt = driver.handle_interrupt();
    assert!(interrupt.tx_done && !interrupt.rx);
    assert_eq!(driver.counters().tx_frames, 3);
    assert_eq!(driver.counters().tx_bytes, 303);
}

#[test]
fn a_full_ring_says_so_until_the_device_catches_up() {
    let (mut driver, sim) = start(rings(8, 8));
    for tag in 0..7 {
        driver.transmit(&frame(tag, 64)).unwrap();
    }
    assert_eq!(driver.transmit(&frame(7, 64)), Err(TxError::Full));
    assert_eq!(driver.transmit(&frame(7, 64)), Err(TxError::Full));
    assert_eq!(driver.counters().tx_ring_full, 2);
    assert_eq!(sim.reg(TDT), 7, "the refused frames were not handed over");
    assert_eq!(sim.process_tx().len(), 7);
    driver.transmit(&frame(7, 64)).unwrap();
    assert_eq!(sim.reg(TDT), 0, "wrapped");
    assert_eq!(sim.process_tx()[0].data, frame(7, 64));
}

#[test]
fn frames_arrive_in_order_around_the_ring_many_times() {
    let (mut driver, sim) = start(rings(8, 16));
    let mut sent = Vec::new();
    let mut tag = 0;
    for round in 0..20 {
        for _ in 0..(round % 15) + 1 {
            let len = 14 + (tag as usize * 37) % (MAX_FRAME_LEN - 14);
            driver.transmit(&frame(tag, len)).unwrap();
            tag += 1;
        }
        sent.extend(sim.process_tx());
    }
    assert_eq!(sent.len(), tag as usize);
    for (t, s) in sent.iter().enumerate() {
        let len = 14 + (t * 37) % (MAX_FRAME_LEN - 14);
        assert_eq!(s.data, frame(t as u32, len), "frame {t}");
    }
}

#[test]
fn queue_and_flush_batch_the_tail_write() {
    let (mut driver, sim) = start(rings(8, 16));
    let before = sim.count_writes(TDT);
    for tag in 0..5 {
        driver.queue(&frame(tag, 80)).unwrap();
    }
    assert_eq!(sim.count_writes(TDT), before);
    assert!(sim.process_tx().is_empty(), "not handed over yet");
    driver.flush();
    driver.flush();
    assert_eq!(sim.count_writes(TDT), before + 1);
    assert_eq!(sim.reg(TDT), 5);
    assert_eq!(sim.process_tx().len(), 5);
}

#[test]
fn bad_lengths_are_refused() {
    let (mut driver, sim) = start(rings(8, 8));
    assert_eq!(driver.transmit(&[]), Err(TxError::BadLength));
    let long = vec![0; MAX_FRAME_LEN + 1];
    assert_eq!(driver.transmit(&long), Err(TxError::BadLength));
    assert_eq!(driver.counters().tx_bad_length, 2);
    assert_eq!(sim.reg(TDT), 0);
    driver.transmit(&long[..MAX_FRAME_LEN]).unwrap();
    assert_eq!(sim.process_tx()[0].data.len(), MAX_FRAME_LEN);
}

#[test]
fn garbage_done_bits_and_ring_registers_are_harmless() {
    let (mut driver, sim) = start(rings(8, 8));
    // DD set on every descriptor, none in flight: nothing to reclaim.
    {
        let memory = sim.memory();
        let mut memory = memory.borrow_mut();
        for i in 0..8 {
            memory.write_u32(sim.tx_descriptor(i) + 12, 0xFFFF_FFFF);
        }
    }
    assert_eq!(driver.reclaim(), 0);
    assert_eq!(driver.tx_free(), 7);
    sim.set_reg(TDH, 0xFFFF_FFFF);
    sim.set_reg(RDH, 0x1234_5678);
    driver.transmit(&frame(1, 64)).unwrap();
    // The descriptor was rewritten with DD clear; the device's garbage head is not read.
    let memory = sim.memory();
    assert_eq!(memory.borrow().read_u32(sim.tx_descriptor(0) + 12) & 1, 0);
    assert_eq!(sim.reg(TDT), 1);
}
