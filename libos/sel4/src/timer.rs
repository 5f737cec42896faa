//! The library OS's time on seL4, set up from `devices`: the TSC clock (its frequency
//! given, or calibrated against the PIT) and the deadline timer (the HPET's one-shots, or
//! the PIT's tick) with its interrupt handler for the interrupt thread.

use proto::Name;
use sel4::cap_type::IrqHandler;
use sel4::{CPtr, Cap};
use vspace::{Pool, VSpace};

use crate::device::Devices;
use crate::{clock, irq, rdtsc, PitPorts, Timer, TscClock};

/// What [`deadlines`] found.
pub struct Deadlines {
    /// The TSC clock, its epoch now.
    pub clock: TscClock,
    /// The deadline timer and its interrupt handler; `None`: poll and yield.
    pub timer: Option<(Timer, Cap<IrqHandler>)>,
}

impl Deadlines {
    /// The timer for `Sel4Pal::new`, its interrupt added to `sources`.
    pub fn into_timer(self, sources: &mut alloc::vec::Vec<irq::Source>) -> Option<Timer> {
        self.timer.map(|(timer, handler)| {
            sources.push(irq::Source {
                handler,
                hook: None,
                context: 0,
            });
            timer
        })
    }
}

/// Sets up the clock and the deadline timer: the HPET device `hpet` if `hpet` is given
/// and it is usable; the PIT device `pit`'s ports (if the description gives them) to
/// calibrate the TSC unless `tsc_mhz` gives its frequency, and its IRQ 0 for the tick when
/// `want_pit(have_hpet)` says so. Panics with neither `tsc_mhz` nor a PIT.
pub fn deadlines<F: FnMut(u8) -> Option<CPtr>>(
    devices: &mut Devices,
    pool: &mut Pool<F>,
    vspace: &mut VSpace,
    (hpet, pit): (Option<Name>, Name),
    want_pit: impl FnOnce(bool) -> bool,
    tsc_mhz: Option<u64>,
) -> Deadlines {
    let hpet = hpet.and_then(|hpet| devices.hpet(pool, vspace, hpet));
    let pit_ports = devices.pit_ports(pool, pit);
    let pit_irq = pit_ports
        .filter(|_| want_pit(hpet.is_some()))
        .and_then(|_| match devices.try_irq(pool.slot().ok()?, pit) {
            Ok(irq) => Some(irq),
            Err(e) => {
                let component = devices.component();
                rt::println!("{component}: no PIT interrupt ({e:?}): no PIT deadlines");
                None
            }
        });
    let hz = match (tsc_mhz, pit_ports) {
        (Some(mhz), _) => mhz * 1_000_000,
        (None, Some(ports)) => {
            clock::calibrate(&mut PitPorts(ports), rdtsc, 50_000_000).expect("the PIT counts")
        }
        (None, None) => panic!(
            "{}: no tsc_mhz argument and no pit device to calibrate",
            devices.component()
        ),
    };
    let timer = match (hpet, pit_ports.zip(pit_irq)) {
        (Some((hpet, handler)), _) => Some((Timer::Hpet(hpet), handler)),
        (None, Some((ports, handler))) => Some((Timer::Pit(PitPorts(ports)), handler)),
        _ => None,
    };
    Deadlines {
        clock: TscClock::new(hz, rdtsc()),
        timer,
    }
}
