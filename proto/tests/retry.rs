//! The retry policy against fake peers: errors then success, a permanent error, a peer
//! that never recovers; and the generated errors' classification.

use proto::codec::{encode_reply, error_reply};
use proto::devices::{self, DeviceInfo, DevicesClient, IrqMode};
use proto::retry::{retry, retry_if, Backoff, Failure, Transient};
use proto::{Loopback, Message, Name};

const POLICY: Backoff = Backoff {
    attempts: 5,
    first_pause: 2,
    max_pause: 8,
};

#[test]
fn pauses_double_up_to_the_maximum() {
    let pauses: Vec<u32> = (1..=5).map(|a| POLICY.pause_after(a)).collect();
    assert_eq!(pauses, [2, 4, 8, 8, 8]);
    assert_eq!(Backoff::STARTUP.pause_after(1), 1);
    assert_eq!(Backoff::STARTUP.pause_after(9), 256);
    assert_eq!(Backoff::STARTUP.pause_after(u32::MAX), 256, "no overflow");
}

#[test]
fn only_server_restarted_is_transient() {
    for e in devices::Error::ALL {
        assert_eq!(
            e.is_transient(),
            *e == devices::Error::ServerRestarted,
            "{e:?}"
        );
    }
    assert_eq!(devices::Error::NotFound.to_string(), "NotFound");
}

fn com1_info() -> DeviceInfo {
    DeviceInfo::ports(0x3f8, 0x3ff, IrqMode::IoApic)
}

/// A devices peer that answers `claim` with each reply of `script` in turn, then `Ok`.
fn peer(script: Vec<devices::Error>) -> impl FnMut(&Message) -> Message {
    let mut script = script.into_iter();
    move |request: &Message| {
        let request = devices::Request::decode(request).expect("a valid request");
        assert!(
            matches!(request, devices::Request::Claim { .. }),
            "{request:?}"
        );
        match script.next() {
            Some(e) => error_reply(e),
            None => encode_reply(&Ok::<_, devices::Error>(com1_info())),
        }
    }
}

#[test]
fn a_restarted_peer_is_asked_again_after_a_pause() {
    let mut client = DevicesClient::new(Loopback(peer(vec![
        devices::Error::ServerRestarted,
        devices::Error::ServerRestarted,
    ])));
    let com1 = Name::new("com1").unwrap();
    let mut pauses = Vec::new();
    let info = retry(&POLICY, |n| pauses.push(n), || client.claim(com1));
    assert_eq!(info, Ok(com1_info()));
    assert_eq!(pauses, [2, 4], "one pause before each new attempt");
}

#[test]
fn a_permanent_error_ends_at_once_with_its_reason() {
    let mut client = DevicesClient::new(Loopback(peer(vec![devices::Error::NotFound])));
    let mut pauses = 0;
    let err = retry(
        &POLICY,
        |_| pauses += 1,
        || client.claim(Name::new("com1").unwrap()),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Failure {
            error: devices::Error::NotFound,
            attempts: 1
        }
    );
    assert_eq!(pauses, 0);
    assert_eq!(err.to_string(), "NotFound");
}

#[test]
fn a_peer_that_never_recovers_is_given_up_on() {
    let mut client = DevicesClient::new(Loopback(peer(vec![devices::Error::ServerRestarted; 99])));
    let mut pauses = Vec::new();
    let err = retry(
        &POLICY,
        |n| pauses.push(n),
        || client.claim(Name::new("com1").unwrap()),
    )
    .unwrap_err();
    assert_eq!(err.error, devices::Error::ServerRestarted);
    assert_eq!(err.attempts, POLICY.attempts);
    assert_eq!(pauses.len() as u32, POLICY.attempts - 1);
    assert_eq!(err.to_string(), "ServerRestarted (after 5 attempts)");
}

#[test]
fn a_caller_may_count_more_errors_as_transient() {
    let mut answers = [Err("not yet"), Err("not yet"), Ok(7)].into_iter();
    let got = retry_if(
        &POLICY,
        |e: &&str| *e == "not yet",
        |_| (),
        || answers.next().unwrap(),
    );
    assert_eq!(got, Ok(7));
}
