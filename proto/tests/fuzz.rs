//! For each interface: 1,000 random, mutated and valid messages through `dispatch` get an `Ok` or a
//! declared error reply, never a panic, and the server still answers a valid request after.

mod common;

use common::*;
use proto::codec::ErrorCode;
use proto::{console, devices, memory, naming, proc};

macro_rules! fuzz {
    ($test:ident, $iface:ident, $mock:ty, $gen:ident, $check:expr) => {
        #[test]
        fn $test() {
            let mut rng = Rng::new(0x5eed ^ stringify!($test).len() as u64);
            let mut server = <$mock>::default();
            let (mut ok, mut errors, mut accepted) = (0, 0, 0);
            for _ in 0..1000 {
                let message = match rng.below(4) {
                    0 => random_message(&mut rng),
                    1 => $gen(&mut rng).encode().unwrap(),
                    _ => {
                        let base = $gen(&mut rng).encode().unwrap();
                        mutate(&mut rng, &base)
                    }
                };
                let badge = rng.word();
                let reply = $iface::dispatch(&mut server, badge, &message);
                if reply.label == 0 {
                    assert!($iface::Request::decode(&message).is_ok(), "{message:?}");
                    ok += 1;
                } else {
                    assert!($iface::Error::from_code(reply.label).is_some(), "{reply:?}");
                    assert!(reply.is_empty() && reply.cap.is_none());
                    errors += 1;
                }
                match $iface::Request::decode(&message) {
                    Ok(_) => accepted += 1,
                    Err(_) => assert_eq!(reply.label, $iface::Error::Malformed as u64),
                }
            }
            assert!(errors > 100, "too few rejected: {errors}");
            assert!(accepted > 200, "too few accepted: {accepted}");
            assert_eq!(ok + errors, 1000);
            // Still serving.
            let check: fn(&mut $mock) = $check;
            check(&mut server);
        }
    };
}

fuzz!(
    naming_survives_garbage,
    naming,
    NamingMock,
    naming_request,
    |s| {
        let m = naming::Request::Lookup {
            name: name("serial"),
        }
        .encode()
        .unwrap();
        let reply = naming::dispatch(s, 9, &m);
        assert_eq!(reply.label, 0);
        assert_eq!(reply.cap, Some(109));
    }
);

fuzz!(proc_survives_garbage, proc, ProcMock, proc_request, |s| {
    let m = proc::Request::List { index: 1 }.encode().unwrap();
    assert_eq!(proc::dispatch(s, 9, &m).label, 0);
});

fuzz!(
    memory_survives_garbage,
    memory,
    MemoryMock,
    memory_request,
    |s| {
        let m = memory::Request::Usage {}.encode().unwrap();
        assert_eq!(memory::dispatch(s, 9, &m).label, 0);
    }
);

fuzz!(
    devices_survives_garbage,
    devices,
    DevicesMock,
    devices_request,
    |s| {
        let m = devices::Request::List { index: 0 }.encode().unwrap();
        assert_eq!(devices::dispatch(s, 9, &m).label, 0);
    }
);

fuzz!(
    console_survives_garbage,
    console,
    ConsoleMock,
    console_request,
    |s| {
        let m = console::Request::Read { max: 0 }.encode().unwrap();
        let reply = console::dispatch(s, 9, &m);
        assert!(reply.label == 0 || reply.label == console::Error::WouldBlock as u64);
        let m = console::Request::Write {
            data: proto::Bytes::new(b"ok").unwrap(),
        }
        .encode()
        .unwrap();
        let _ = console::dispatch(s, 9, &m);
        let m = console::Request::Read { max: 1 }.encode().unwrap();
        assert_eq!(console::dispatch(s, 9, &m).label, 0);
    }
);
