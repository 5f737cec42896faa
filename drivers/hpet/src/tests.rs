use super::*;
use std::collections::BTreeMap;
use std::vec::Vec;

/// A register model: 32-bit words by offset; the main counter advances by `step` ticks on
/// every read of its low half.
struct Model {
    words: BTreeMap<usize, u32>,
    counter: u64,
    step: u64,
    writes: Vec<(usize, u32)>,
}

impl Model {
    /// An HPET with `timers` timers, `period_fs`, and FSB capability on the timers in `fsb`.
    fn new(period_fs: u32, timers: u8, fsb: &[u8]) -> Model {
        let mut words = BTreeMap::new();
        words.insert(CAPABILITIES, 0x8086_A201 | u32::from(timers - 1) << 8);
        words.insert(CAPABILITIES + 4, period_fs);
        words.insert(CONFIG, LEGACY_ROUTE);
        for n in 0..timers {
            let mut caps = TN_SIZE_64 | (1 << 4);
            if fsb.contains(&n) {
                caps |= TN_FSB_CAPABLE;
            }
            // Firmware left interrupts on, level, periodic, routed to pin 2.
            words.insert(
                timer_config(n),
                caps | TN_INT_ENABLE | TN_LEVEL | TN_PERIODIC | 2 << 9,
            );
            words.insert(timer_config(n) + 4, 0x00F0_0004);
        }
        Model {
            words,
            counter: 0,
            step: 1,
            writes: Vec::new(),
        }
    }
    fn get(&self, offset: usize) -> u32 {
        self.words.get(&offset).copied().unwrap_or(0)
    }
}

impl Registers for &mut Model {
    fn read32(&mut self, offset: usize) -> u32 {
        match offset {
            COUNTER => {
                self.counter += self.step;
                self.counter as u32
            }
            o if o == COUNTER + 4 => (self.counter >> 32) as u32,
            o => self.get(o),
        }
    }
    fn write32(&mut self, offset: usize, value: u32) {
        self.writes.push((offset, value));
        self.words.insert(offset, value);
    }
}

fn comparator(m: &Model, t: u8) -> u64 {
    u64::from(m.get(timer_comparator(t) + 4)) << 32 | u64::from(m.get(timer_comparator(t)))
}

#[test]
fn rejects_a_block_without_a_sane_period() {
    for period in [0, MAX_PERIOD_FS + 1] {
        let mut m = Model::new(period, 3, &[0]);
        assert_eq!(Hpet::new(&mut m).err(), Some(HpetError::BadPeriod(period)));
    }
}

#[test]
fn needs_a_timer_with_message_delivery() {
    let mut m = Model::new(10_000_000, 3, &[]);
    assert_eq!(Hpet::new(&mut m).err(), Some(HpetError::NoFsbTimer));
}

#[test]
fn starts_the_counter_quiets_every_timer_and_picks_the_first_fsb_timer() {
    let mut m = Model::new(10_000_000, 3, &[1, 2]);
    let hpet = Hpet::new(&mut m).expect("usable");
    assert_eq!(
        (hpet.timer(), hpet.timers(), hpet.hz()),
        (1, 3, 100_000_000)
    );
    assert_eq!(m.get(CONFIG), ENABLE, "counter on, legacy routing off");
    for n in 0..3 {
        assert_eq!(m.get(timer_config(n)) & (TN_INT_ENABLE | TN_FSB_ENABLE), 0);
    }
}

#[test]
fn routes_the_timer_to_a_one_shot_edge_message() {
    let mut m = Model::new(10_000_000, 3, &[0]);
    let mut hpet = Hpet::new(&mut m).expect("usable");
    hpet.route_message(0xFEE0_0000, 0x31);
    assert_eq!(m.get(timer_fsb_route(0)), 0x31);
    assert_eq!(m.get(timer_fsb_route(0) + 4), 0xFEE0_0000);
    let config = m.get(timer_config(0));
    assert_eq!(
        config & (TN_FSB_ENABLE | TN_INT_ENABLE),
        TN_FSB_ENABLE | TN_INT_ENABLE
    );
    assert_eq!(
        config & (TN_LEVEL | TN_PERIODIC | TN_32BIT | TN_ROUTE_MASK),
        0
    );
    assert_eq!(
        m.get(timer_config(0) + 4),
        0x00F0_0004,
        "capabilities untouched"
    );
}

#[test]
fn converts_nanoseconds_to_ticks_rounding_up() {
    let mut m = Model::new(69_841_279, 3, &[0]); // the 14.318 MHz of many chipsets
    let hpet = Hpet::new(&mut m).expect("usable");
    assert_eq!(hpet.hz(), 14_318_179);
    assert_eq!(hpet.ticks(0), 0);
    assert_eq!(hpet.ticks(1), 1);
    assert_eq!(hpet.ticks(1_000_000), 14_319);
}

#[test]
fn arms_the_comparator_ahead_of_the_counter() {
    let mut m = Model::new(10_000_000, 3, &[0]);
    m.counter = 5_000;
    let mut hpet = Hpet::new(&mut m).expect("usable");
    assert!(hpet.arm_in(1_000_000), "1 ms ahead is in the future");
    // 100 MHz: 1 ms is 100,000 ticks past the counter read before writing.
    assert_eq!(comparator(&m, 0), 5_001 + 100_000);
}

#[test]
fn reports_a_deadline_the_counter_passed_while_arming() {
    let mut m = Model::new(10_000_000, 3, &[0]);
    m.step = 1_000; // a slow access path: the counter moves 1,000 ticks per read
    let mut hpet = Hpet::new(&mut m).expect("usable");
    assert!(
        !hpet.arm_in(10),
        "10 ns (1 tick) is gone by the time it is written"
    );
    assert!(hpet.arm_in(1_000_000));
}

#[test]
fn reads_the_counter_consistently_across_a_carry() {
    let mut m = Model::new(10_000_000, 3, &[0]);
    m.counter = 0xFFFF_FFFF;
    m.step = 1;
    let mut hpet = Hpet::new(&mut m).expect("usable");
    // The first read of the low half carries into the high half: the driver re-reads.
    let c = hpet.counter();
    assert!(c >= 0x1_0000_0000, "{c:#x}");
}
