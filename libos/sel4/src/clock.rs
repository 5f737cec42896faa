//! Time from the TSC, and the PIT (8254) as calibration source and one-shot timer.
//! The arithmetic is host-tested; port access goes through [`Ports`].

/// The PIT's input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;
/// The longest one-shot the PIT's 16-bit counter can time, in PIT ticks.
pub const PIT_MAX_TICKS: u64 = 0xFFFF;

/// A TSC-to-nanoseconds conversion: `ns = ticks * mult >> 32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TscClock {
    hz: u64,
    mult: u128,
    epoch: u64,
}

impl TscClock {
    /// A clock ticking at `hz` (non-zero) whose zero is the TSC value `epoch`.
    pub fn new(hz: u64, epoch: u64) -> TscClock {
        let hz = hz.max(1);
        TscClock {
            hz,
            mult: (1_000_000_000u128 << 32) / u128::from(hz),
            epoch,
        }
    }

    /// The TSC frequency in Hz.
    pub fn hz(&self) -> u64 {
        self.hz
    }

    /// Nanoseconds since the epoch at TSC value `tsc` (0 before the epoch).
    pub fn ns(&self, tsc: u64) -> u64 {
        let ns = (u128::from(tsc.saturating_sub(self.epoch)) * self.mult) >> 32;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// PIT ticks (at least 1, at most [`PIT_MAX_TICKS`]) for a one-shot of `ns` nanoseconds.
pub fn pit_ticks(ns: u64) -> u16 {
    let ticks = (u128::from(ns) * u128::from(PIT_HZ)).div_ceil(1_000_000_000);
    ticks.clamp(1, u128::from(PIT_MAX_TICKS)) as u16
}

/// 8-bit port access to the PIT (ports 0x40..=0x43).
pub trait Ports {
    /// Reads port `port`.
    fn inb(&mut self, port: u16) -> u8;
    /// Writes `value` to port `port`.
    fn outb(&mut self, port: u16, value: u8);
}

const CHANNEL0: u16 = 0x40;
const COMMAND: u16 = 0x43;
/// Channel 0, low then high byte, mode 2 (rate generator), binary.
const MODE2_CH0: u8 = 0x34;
/// Channel 0, low then high byte, mode 0 (interrupt on terminal count), binary.
const MODE0_CH0: u8 = 0x30;
/// Latch channel 0's count.
const LATCH_CH0: u8 = 0x00;

fn read_count(ports: &mut impl Ports) -> u16 {
    ports.outb(COMMAND, LATCH_CH0);
    let low = ports.inb(CHANNEL0);
    let high = ports.inb(CHANNEL0);
    u16::from_le_bytes([low, high])
}

/// Measures the TSC frequency against PIT channel 0 over `window_ns` (e.g. 50 ms):
/// programs channel 0 as a free-running rate generator, follows its count (sampled
/// far more often than its 55 ms wrap) and counts TSC ticks with `tsc`.
/// Returns the frequency in Hz, or `None` if the PIT did not count.
pub fn calibrate(
    ports: &mut impl Ports,
    mut tsc: impl FnMut() -> u64,
    window_ns: u64,
) -> Option<u64> {
    ports.outb(COMMAND, MODE2_CH0);
    ports.outb(CHANNEL0, 0);
    ports.outb(CHANNEL0, 0);
    let want = (u128::from(window_ns) * u128::from(PIT_HZ) / 1_000_000_000) as u64;
    let mut last = read_count(ports);
    let start = tsc();
    let mut elapsed: u64 = 0;
    let mut samples: u64 = 0;
    while elapsed < want.max(1) {
        let now = read_count(ports);
        elapsed += u64::from(last.wrapping_sub(now));
        last = now;
        samples += 1;
        if samples > 50_000_000 {
            return None;
        }
    }
    let cycles = tsc().wrapping_sub(start);
    Some((u128::from(cycles) * u128::from(PIT_HZ) / u128::from(elapsed)) as u64)
}

/// Starts a one-shot of `ticks` PIT ticks on channel 0 (mode 0: the output rises, and
/// IRQ 0 fires, at terminal count). Three port writes.
pub fn one_shot(ports: &mut impl Ports, ticks: u16) {
    let [low, high] = ticks.to_le_bytes();
    ports.outb(COMMAND, MODE0_CH0);
    ports.outb(CHANNEL0, low);
    ports.outb(CHANNEL0, high);
}

/// Starts channel 0 as a periodic tick of `ticks` PIT ticks (mode 2: IRQ 0 every period).
pub fn periodic(ports: &mut impl Ports, ticks: u16) {
    let [low, high] = ticks.to_le_bytes();
    ports.outb(COMMAND, MODE2_CH0);
    ports.outb(CHANNEL0, low);
    ports.outb(CHANNEL0, high);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn tsc_converts_to_nanoseconds() {
        let c = TscClock::new(2_445_000_000, 1_000);
        assert_eq!(c.ns(500), 0);
        assert_eq!(c.ns(1_000), 0);
        let one_second = c.ns(1_000 + 2_445_000_000);
        assert!(
            (999_999_990..=1_000_000_000).contains(&one_second),
            "{one_second}"
        );
        assert_eq!(TscClock::new(1_000_000_000, 0).ns(123_456_789), 123_456_789);
    }

    #[test]
    fn pit_ticks_round_up_and_clamp() {
        assert_eq!(pit_ticks(0), 1);
        assert_eq!(pit_ticks(1_000_000), 1_194);
        assert_eq!(pit_ticks(10_000_000_000), 0xFFFF);
    }

    /// A PIT channel 0 counting down by one per `inb` pair, and a TSC that advances
    /// 2000 ticks per PIT tick.
    struct FakePit {
        count: u16,
        latched: Option<u16>,
        high_next: bool,
        tsc: Rc<Cell<u64>>,
        commands: Vec<u8>,
    }

    impl Ports for FakePit {
        fn inb(&mut self, _port: u16) -> u8 {
            let v = self.latched.unwrap_or(self.count);
            if self.high_next {
                self.latched = None;
                self.high_next = false;
                self.count = self.count.wrapping_sub(7);
                self.tsc.set(self.tsc.get() + 7 * 2000);
                (v >> 8) as u8
            } else {
                self.high_next = true;
                v as u8
            }
        }
        fn outb(&mut self, port: u16, value: u8) {
            if port == COMMAND {
                self.commands.push(value);
                if value == LATCH_CH0 {
                    self.latched = Some(self.count);
                }
            }
        }
    }

    #[test]
    fn calibration_follows_the_count_across_wraps() {
        let tsc = Rc::new(Cell::new(0));
        let mut pit = FakePit {
            count: 5,
            latched: None,
            high_next: false,
            tsc: tsc.clone(),
            commands: vec![],
        };
        let t = tsc.clone();
        let hz = calibrate(&mut pit, move || t.get(), 100_000_000).unwrap();
        // 2000 TSC ticks per PIT tick.
        let expect = 2000 * PIT_HZ;
        assert!(hz.abs_diff(expect) < expect / 1000, "{hz}");
        assert_eq!(pit.commands[0], MODE2_CH0);
    }
}
