//! Initialisation against the simulated 82574L: register values, order, failures.

mod sim;

use e1000e::regs::*;
use e1000e::{Config, E1000e, InitError, DEFAULT_INTERRUPTS};
use sim::{rings, start, FakeDelay, Sim, MAC, MEM_BASE};

#[test]
fn programs_every_register_after_reset() {
    let (driver, sim) = start(rings(64, 32));
    assert_eq!(driver.mac_address(), MAC);
    let ctrl = sim.reg(CTRL);
    assert_eq!(ctrl & (CTRL_SLU | CTRL_ASDE), CTRL_SLU | CTRL_ASDE);
    assert_eq!(
        ctrl & CTRL_CLEAR_AT_INIT,
        0,
        "garbage from before the reset cleared"
    );
    assert_eq!(sim.0.borrow().resets, 1);

    assert_eq!(sim.reg(RAL0), u32::from_le_bytes([0x52, 0x54, 0x00, 0x12]));
    assert_eq!(sim.reg(RAH0), 0x5634 | RAH_AV);
    for entry in 0..MTA_ENTRIES {
        assert_eq!(sim.reg(MTA + 4 * entry), 0, "MTA[{entry}]");
    }

    // Rings live above 4 GiB in the fake DMA space: both halves of the base matter.
    let rx_base = u64::from(sim.reg(RDBAL)) | (u64::from(sim.reg(RDBAH)) << 32);
    assert!(rx_base >= MEM_BASE && rx_base % 128 == 0);
    assert_eq!(sim.reg(RDBAH), 1);
    assert_eq!(sim.reg(RDLEN), 64 * 16);
    assert_eq!(sim.reg(RDH), 0);
    assert_eq!(sim.reg(RDT), 63);
    assert_eq!(sim.reg(RDTR), 0);
    assert_eq!(sim.reg(RADV), 0);
    assert_eq!(sim.reg(RFCTL) & RFCTL_EXSTEN, 0, "legacy descriptors");
    let rctl = sim.reg(RCTL);
    assert_eq!(
        rctl,
        RCTL_EN | RCTL_BAM | RCTL_SECRC,
        "2 KiB buffers, nothing else"
    );

    let tx_base = u64::from(sim.reg(TDBAL)) | (u64::from(sim.reg(TDBAH)) << 32);
    assert!(tx_base >= MEM_BASE && tx_base % 128 == 0 && tx_base != rx_base);
    assert_eq!(sim.reg(TDLEN), 32 * 16);
    assert_eq!(sim.reg(TDH), 0);
    assert_eq!(sim.reg(TDT), 0);
    assert_eq!(sim.reg(TIPG), 0x0060_2008);
    assert_eq!(
        sim.reg(TCTL),
        TCTL_EN | TCTL_PSP | (0x0F << 4) | (0x3F << 12)
    );

    assert_eq!(sim.reg(ITR), 500);
    assert_eq!(sim.reg(IMS), DEFAULT_INTERRUPTS);
    assert_eq!(sim.reg(ICR), 0, "stale causes were read away");
}

#[test]
fn sequence_order() {
    let (_driver, sim) = start(Config::default());
    let writes = sim.writes();
    let reset = writes
        .iter()
        .position(|&(o, v)| o == CTRL && v & CTRL_RST != 0)
        .expect("reset");
    // Masked before and again after the reset, ICR read after it.
    assert_eq!(writes[0], (IMC, 0xFFFF_FFFF));
    assert!(writes[reset + 1..]
        .iter()
        .take(2)
        .any(|&w| w == (IMC, 0xFFFF_FFFF)));
    let reads = sim.0.borrow().reads.clone();
    assert!(reads.contains(&ICR));
    // Link up before the rings.
    let slu = writes
        .iter()
        .position(|&(o, v)| o == CTRL && v & CTRL_SLU != 0)
        .unwrap();
    assert!(reset < slu && slu < sim.first_write(RDBAL));
    // RCTL last of the receive set-up, RFCTL before it.
    let rctl = sim.last_write(RCTL);
    for offset in [RDBAL, RDBAH, RDLEN, RDH, RDT, RFCTL, TCTL, TDT] {
        assert!(sim.last_write(offset) < rctl, "{offset:#x} after RCTL");
    }
    assert_eq!(sim.count_writes(RCTL), 1);
    // What the device saw when the receiver was enabled.
    let snapshot = sim.0.borrow().rctl_snapshot.clone().unwrap();
    assert_eq!(snapshot[&RFCTL], 0);
    assert_eq!(snapshot[&RDLEN], 256 * 16);
    assert_eq!(snapshot[&RDLEN] % 128, 0);
    // Interrupts enabled last.
    assert_eq!(sim.last_write(IMS), writes.len() - 1);
    assert!(sim.last_write(ITR) > sim.last_write(TCTL));
}

#[test]
fn descriptors_point_at_distinct_buffers() {
    let (_driver, sim) = start(rings(16, 8));
    let memory = sim.memory();
    let memory = memory.borrow();
    let mut buffers: Vec<u64> = (0..16)
        .map(|i| {
            let at = sim.rx_descriptor(i);
            assert_eq!(memory.read_u32(at + 12) & 1, 0, "DD clear");
            memory.read_u64(at)
        })
        .chain((0..8).map(|i| memory.read_u64(sim.tx_descriptor(i))))
        .collect();
    for &b in &buffers {
        assert!(memory.read(b, 2048).is_some(), "buffer inside DMA memory");
    }
    buffers.sort();
    assert!(buffers.windows(2).all(|w| w[1] - w[0] >= 2048));
}

#[test]
fn interrupt_mask_and_throttle_come_from_config() {
    let config = Config {
        interrupt_throttle: 0,
        interrupt_mask: 0,
        ..Config::default()
    };
    let (_driver, sim) = start(config);
    assert_eq!(sim.reg(ITR), 0);
    assert_eq!(sim.reg(IMS), 0);
}

#[test]
fn msix_routes_every_cause_to_vector_zero() {
    let config = Config {
        msix: true,
        interrupt_throttle: 700,
        ..Config::default()
    };
    let (mut driver, sim) = start(config);
    assert!(driver.msix());
    // Receive (bits 0-3), transmit (8-11) and other causes (16-19) all valid, vector 0;
    // a transmit interrupt on every write-back (bit 31).
    assert_eq!(sim.reg(IVAR), 0x8008_0808);
    assert_eq!(sim.reg(EIAC), 0, "causes are not auto-cleared");
    assert_ne!(sim.reg(CTRL_EXT) & CTRL_EXT_PBA_SUPPORT, 0);
    assert_eq!((sim.reg(ITR), sim.reg(EITR0)), (700, 700));
    assert_eq!(sim.reg(IMS), INT_RXQ0 | INT_TXQ0 | INT_OTHER | INT_LSC);
    assert!(
        sim.first_write(IVAR) < sim.last_write(IMS),
        "routed before enabled"
    );

    // Reading ICR does not clear it under MSI-X: the driver writes the causes back.
    sim.raise(INT_RXQ0 | INT_OTHER);
    let interrupt = driver.handle_interrupt();
    assert!(interrupt.rx && interrupt.pending());
    assert_eq!(sim.reg(ICR), 0);
    assert!(!driver.handle_interrupt().pending());

    // The poll loop turns the same causes off and on again.
    driver.set_interrupts(false);
    assert_eq!(sim.reg(IMS), 0);
    driver.set_interrupts(true);
    assert_eq!(sim.reg(IMS), MSIX_INTERRUPTS);
}

#[test]
fn without_msix_no_vector_is_allocated() {
    let (mut driver, sim) = start(rings(8, 8));
    assert!(!driver.msix());
    assert_eq!(sim.reg(IVAR), 0);
    assert_eq!(sim.count_writes(IVAR), 0);
    driver.set_interrupts(false);
    assert_eq!(sim.reg(IMS), 0);
    driver.set_interrupts(true);
    assert_eq!(sim.reg(IMS), DEFAULT_INTERRUPTS);
}

#[test]
fn bad_config_touches_nothing() {
    for (rx, tx) in [(0, 8), (12, 8), (8, 4), (8192, 8), (8, 4104)] {
        let (sim, mut dma) = Sim::new();
        let result = E1000e::new(
            sim.clone(),
            &mut dma,
            &mut FakeDelay::default(),
            rings(rx, tx),
        );
        assert_eq!(result.err(), Some(InitError::BadConfig), "{rx}/{tx}");
        assert!(sim.writes().is_empty());
        assert!(dma.allocations.is_empty());
    }
}

#[test]
fn out_of_memory_touches_nothing() {
    for budget in [0, 1, 5] {
        let (sim, mut dma) = Sim::new();
        dma.remaining = budget;
        let result = E1000e::new(
            sim.clone(),
            &mut dma,
            &mut FakeDelay::default(),
            rings(8, 8),
        );
        assert_eq!(result.err(), Some(InitError::OutOfMemory));
        assert!(sim.writes().is_empty());
    }
}

#[test]
fn misaligned_dma_is_refused() {
    let (sim, mut dma) = Sim::new();
    dma.misalign = true;
    let result = E1000e::new(
        sim.clone(),
        &mut dma,
        &mut FakeDelay::default(),
        rings(8, 8),
    );
    assert_eq!(result.err(), Some(InitError::BadDmaRegion));
    assert!(sim.writes().is_empty());
}

#[test]
fn stuck_reset_times_out() {
    let (sim, mut dma) = Sim::new();
    sim.0.borrow_mut().stuck_reset = true;
    let mut delay = FakeDelay::default();
    let result = E1000e::new(sim.clone(), &mut dma, &mut delay, rings(8, 8));
    assert_eq!(result.err(), Some(InitError::ResetTimeout));
    assert!(delay.calls > 1 && delay.micros < 1_000_000, "bounded wait");
}

#[test]
fn link_status_follows_the_device() {
    let (mut driver, sim) = start(rings(8, 8));
    assert!(driver.link_up());
    sim.0.borrow_mut().cable = false;
    assert!(!driver.link_up());
}

#[test]
fn shutdown_stops_the_device() {
    let (driver, sim) = start(rings(8, 8));
    let _mmio = driver.shutdown(&mut FakeDelay::default());
    assert_eq!(sim.reg(IMS), 0);
    assert_eq!(sim.reg(RCTL) & RCTL_EN, 0);
    assert_eq!(sim.reg(TCTL) & TCTL_EN, 0);
    assert_eq!(sim.0.borrow().resets, 2);
}

#[test]
fn statistics_accumulate_clear_on_read_registers() {
    let (mut driver, sim) = start(rings(8, 8));
    sim.set_reg(GPRC, 3);
    sim.set_reg(GORCL, 0xFFFF_FFFF);
    sim.set_reg(GORCH, 1);
    sim.set_reg(MPC, 2);
    let first = driver.update_statistics();
    assert_eq!(first.rx_packets, 3);
    assert_eq!(first.rx_octets, 0x1_FFFF_FFFF);
    assert_eq!(first.missed, 2);
    sim.set_reg(GPRC, 4);
    let second = driver.update_statistics();
    assert_eq!(second.rx_packets, 7);
    assert_eq!(second.missed, 2);
}
