//! Serial's start-up against fake peers: a restarted devices is asked again, a refusal ends
//! start-up with the step and the error, nothing panics.

use proto::devices::{self, ports, DeviceInfo, IrqMode};
use proto::naming;
use proto::retry::{Backoff, Failure};
use proto::Name;
use serial::setup::{claim_device, register, Peers, SetupError};
use std::collections::VecDeque;

fn com1_info() -> DeviceInfo {
    DeviceInfo::ports(0x3f8, 0x3ff, IrqMode::IoApic)
}

/// Answers from scripts (each request takes the next answer; `Ok` once a script is empty)
/// and records the requests.
#[derive(Default)]
struct Fake {
    lookups: VecDeque<naming::Error>,
    claims: VecDeque<devices::Error>,
    ioports: VecDeque<ports::Error>,
    irqs: VecDeque<devices::Error>,
    registers: VecDeque<naming::Error>,
    log: Vec<&'static str>,
}

fn answer<E>(script: &mut VecDeque<E>) -> Result<(), E> {
    script.pop_front().map_or(Ok(()), Err)
}

impl Peers for Fake {
    fn lookup_devices(&mut self) -> Result<(), naming::Error> {
        self.log.push("lookup");
        answer(&mut self.lookups)
    }
    fn claim(&mut self, _: Name) -> Result<DeviceInfo, devices::Error> {
        self.log.push("claim");
        answer(&mut self.claims).map(|()| com1_info())
    }
    fn ioport(&mut self, _: Name) -> Result<(), ports::Error> {
        self.log.push("ioport");
        answer(&mut self.ioports)
    }
    fn irq(&mut self, _: Name) -> Result<(), devices::Error> {
        self.log.push("irq");
        answer(&mut self.irqs)
    }
    fn register(&mut self) -> Result<(), naming::Error> {
        self.log.push("register");
        answer(&mut self.registers)
    }
}

fn com1() -> Name {
    Name::new("com1").unwrap()
}

#[test]
fn a_devices_restart_mid_way_starts_the_claim_over() {
    let mut fake = Fake {
        irqs: [devices::Error::ServerRestarted].into(),
        ..Fake::default()
    };
    let mut pauses = Vec::new();
    let info = claim_device(&mut fake, com1(), &Backoff::STARTUP, |n| pauses.push(n));
    assert_eq!(info, Ok(com1_info()));
    assert_eq!(
        fake.log,
        ["lookup", "claim", "ioport", "irq", "lookup", "claim", "ioport", "irq"]
    );
    assert_eq!(pauses, [1]);
}

#[test]
fn a_refusal_ends_start_up_with_the_step_and_the_error() {
    let mut fake = Fake {
        claims: [devices::Error::NotFound].into(),
        ..Fake::default()
    };
    let err = claim_device(&mut fake, com1(), &Backoff::STARTUP, |_| {
        panic!("a refusal is not retried")
    })
    .unwrap_err();
    assert_eq!(
        err,
        Failure {
            error: SetupError::Claim(devices::Error::NotFound),
            attempts: 1
        }
    );
    assert_eq!(err.to_string(), "claim: NotFound");
    assert_eq!(fake.log, ["lookup", "claim"]);
}

#[test]
fn a_reply_that_does_not_check_out_is_a_refusal_too() {
    // The component's `irq` answers InvalidReply when the handler lands elsewhere.
    let mut fake = Fake {
        irqs: [devices::Error::InvalidReply].into(),
        ..Fake::default()
    };
    let err = claim_device(&mut fake, com1(), &Backoff::STARTUP, |_| ()).unwrap_err();
    assert_eq!(err.to_string(), "irq: InvalidReply");
}

#[test]
fn naming_that_keeps_restarting_is_given_up_on() {
    let policy = Backoff {
        attempts: 3,
        first_pause: 1,
        max_pause: 1,
    };
    let mut fake = Fake {
        registers: [naming::Error::ServerRestarted; 10].into(),
        ..Fake::default()
    };
    let err = register(&mut fake, &policy, |_| ()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "register serial: ServerRestarted (after 3 attempts)"
    );
    assert_eq!(fake.log, ["register"; 3]);
}
