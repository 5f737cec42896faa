//! Every operation of every interface through a client stub, the loopback transport,
//! `dispatch` and a mock server, and back.

mod common;

use common::*;
use proto::{console, devices, memory, naming, proc};
use proto::{Bytes, CapSlot, ComponentId, Loopback, Message};

const BADGE: u64 = 5;

#[test]
fn naming_ops() {
    let mut mock = NamingMock::default();
    let mut c = naming::NamingClient::new(Loopback(|m: &Message| {
        naming::dispatch(&mut mock, BADGE, m)
    }));
    assert_eq!(c.register(name("serial"), CapSlot(42)), Ok(()));
    assert_eq!(
        c.register(name("forbidden"), CapSlot(42)),
        Err(naming::Error::Denied)
    );
    let b = c.lookup(name("serial")).unwrap();
    assert_eq!(
        b,
        naming::Binding {
            endpoint: CapSlot(100 + BADGE),
            generation: 6
        }
    );
    assert_eq!(c.lookup(name("missing")), Err(naming::Error::NotFound));
    assert_eq!(c.unregister(name("serial")), Ok(()));
    assert_eq!(c.withdraw(ComponentId(9)), Ok(9));
    assert_eq!(mock.calls, 6);
}

#[test]
fn proc_ops() {
    let mut mock = ProcMock::default();
    let mut c = proc::ProcClient::new(Loopback(|m: &Message| proc::dispatch(&mut mock, BADGE, m)));
    assert_eq!(c.spawn(name("hello")), Ok(ComponentId(5)));
    assert_eq!(c.exit(3), Ok(()));
    assert_eq!(c.wait(ComponentId(4)), Ok(40));
    assert_eq!(c.wait(ComponentId(0)), Err(proc::Error::StillRunning));
    assert_eq!(c.kill(ComponentId(4)), Ok(()));
    assert_eq!(c.kill(ComponentId(400)), Err(proc::Error::NotFound));
    let all: Vec<_> = (0..).map_while(|i| c.list(i).ok()).collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].name, "proc");
    assert_eq!(all[2].restarts, 2);
    assert_eq!(c.list(3), Err(proc::Error::NoEntry));
    let cap = c.caps(ComponentId(7), 0).unwrap();
    assert_eq!(
        cap,
        proc::CapInfo {
            slot: 16,
            kind: proc::CapKind::Endpoint,
            rights: 7,
            badge: 8,
            grant: Some(name("serial"))
        }
    );
    assert_eq!(c.caps(ComponentId(7), 1).unwrap().grant, None);
    let rows: Vec<_> = (0..).map_while(|i| c.usage(i).ok()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[2],
        proc::ComponentUsage {
            id: ComponentId(2),
            name: name("shell"),
            state: proc::State::Exited,
            measured: true,
            used: 2 << 20,
            budget: 4 << 20,
            heap: 2 << 20,
            stack: 256 << 10,
        }
    );
    assert!(!rows[1].measured);
    assert_eq!(c.usage(3), Err(proc::Error::NoEntry));
}

#[test]
fn memory_ops() {
    let mut mock = MemoryMock::default();
    let me = proto::client(BADGE).unwrap();
    let mut c = memory::MemoryClient::new(Loopback(|m: &Message| {
        memory::dispatch(&mut mock, BADGE, m)
    }));
    let a = c.alloc(16).unwrap();
    assert_eq!(
        a,
        memory::Allocation {
            handle: 16,
            untyped: CapSlot(50)
        }
    );
    assert_eq!(c.alloc(20), Err(memory::Error::OverBudget));
    assert_eq!(c.alloc(5), Err(memory::Error::InvalidSize));
    assert_eq!(c.usage().unwrap().used, 1 << 16);
    assert_eq!(c.free(a.handle), Ok(()));
    assert_eq!(c.free(99), Err(memory::Error::NotFound));
    assert_eq!(
        c.usage_of(me).unwrap(),
        memory::Usage {
            used: 0,
            budget: 1 << 20,
            free_total: 1 << 28
        }
    );
    assert_eq!(c.usage_of(ComponentId(0)), Err(memory::Error::Denied));
    assert_eq!(c.share(name("net-rx"), 3).unwrap().frame, CapSlot(63));
    assert_eq!(c.share(name("net-rx"), 512), Err(memory::Error::OutOfRange));
    assert_eq!(c.share(name("other"), 0), Err(memory::Error::NotFound));
}

#[test]
fn devices_ops() {
    let mut mock = DevicesMock::default();
    let mut c = devices::DevicesClient::new(Loopback(|m: &Message| {
        devices::dispatch(&mut mock, BADGE, m)
    }));
    assert_eq!(c.list(0), Ok(NIC));
    assert_eq!(c.list(1), Err(devices::Error::NoEntry));
    assert_eq!(c.bar(name("nic"), 0, 0), Err(devices::Error::NotClaimed));
    assert_eq!(c.claim(name("disk")), Err(devices::Error::NotFound));
    let info = c.claim(name("nic")).unwrap();
    assert_eq!(
        (info.pci, info.irq, info.is_pci),
        (NIC, devices::IrqMode::Msi, true)
    );
    assert_eq!(c.bar(name("nic"), 0, 2).unwrap().paddr, 0xfebc_2000);
    assert_eq!(c.bar(name("nic"), 1, 0), Err(devices::Error::OutOfRange));
    assert_eq!(c.irq(name("nic")), Ok(CapSlot(80)));
    assert_eq!(c.dma(12).unwrap().frame, CapSlot(90));
    assert_eq!(c.dma(40), Err(devices::Error::InvalidSize));
}

#[test]
fn console_ops() {
    let mut mock = ConsoleMock::default();
    let mut c = console::ConsoleClient::new(Loopback(|m: &Message| {
        console::dispatch(&mut mock, BADGE, m)
    }));
    assert_eq!(c.read(10), Err(console::Error::WouldBlock));
    let (chunk, taken) = Bytes::prefix(&[b'x'; 200]);
    assert_eq!(taken, proto::MAX_BYTES);
    assert_eq!(c.write(chunk), Ok(()));
    assert_eq!(c.write(Bytes::new(b"hello").unwrap()), Ok(()));
    assert_eq!(c.read(500).unwrap().len(), proto::MAX_BYTES);
    assert_eq!(&*c.read(3).unwrap(), b"hel");
    assert_eq!(&*c.read(100).unwrap(), b"lo");
    assert_eq!(c.watch(CapSlot(7)), Ok(()));
    assert_eq!(c.watch(CapSlot(8)), Ok(()), "asking again replaces");
    assert_eq!(mock.watchers, [(BADGE, CapSlot(8))]);
    let mut other = console::ConsoleClient::new(Loopback(|m: &Message| {
        console::dispatch(&mut mock, BADGE + 1, m)
    }));
    assert_eq!(other.watch(CapSlot(9)), Ok(()));
    let mut third = console::ConsoleClient::new(Loopback(|m: &Message| {
        console::dispatch(&mut mock, BADGE + 2, m)
    }));
    assert_eq!(third.watch(CapSlot(10)), Err(console::Error::Full));
    // Without the capability the request is malformed.
    let bare = console::Request::Watch { wake: CapSlot(0) }
        .encode()
        .unwrap();
    let mut bare = bare;
    bare.cap = None;
    let reply = console::dispatch(&mut mock, BADGE, &bare);
    assert_eq!(reply.label, console::Error::Malformed as u64);
}

/// Every declared error survives the trip as itself, and unknown codes read as `InvalidReply`.
#[test]
fn errors_round_trip() {
    use proto::codec::{decode_reply, error_reply, ErrorCode};
    fn check<E: ErrorCode + PartialEq + core::fmt::Debug>(all: &[E], invalid: E) {
        for &e in all {
            assert_ne!(e.code(), 0);
            assert_eq!(decode_reply::<(), E>(&error_reply(e)), Err(e));
        }
        assert_eq!(E::from_code(0), None);
        assert_eq!(decode_reply::<(), E>(&Message::new(9999)), Err(invalid));
        assert_eq!(
            decode_reply::<(), E>(&Message::with_words(0, &[1]).unwrap()),
            Err(invalid)
        );
    }
    check(naming::Error::ALL, naming::Error::InvalidReply);
    check(proc::Error::ALL, proc::Error::InvalidReply);
    check(memory::Error::ALL, memory::Error::InvalidReply);
    check(devices::Error::ALL, devices::Error::InvalidReply);
    check(console::Error::ALL, console::Error::InvalidReply);
    check(proto::fs::Error::ALL, proto::fs::Error::InvalidReply);
    check(proto::blk::Error::ALL, proto::blk::Error::InvalidReply);
}

/// A reply with a capability where none is expected, or none where one is, is invalid.
#[test]
fn reply_caps_are_checked() {
    use proto::codec::decode_reply;
    let with_cap = Message::new(0).with_cap(3);
    assert_eq!(
        decode_reply::<(), naming::Error>(&with_cap),
        Err(naming::Error::InvalidReply)
    );
    let without = Message::with_words(0, &[1]).unwrap();
    assert_eq!(
        decode_reply::<naming::Binding, naming::Error>(&without),
        Err(naming::Error::InvalidReply)
    );
    let good = Message::with_words(0, &[1]).unwrap().with_cap(3);
    assert_eq!(
        decode_reply::<naming::Binding, naming::Error>(&good),
        Ok(naming::Binding {
            endpoint: CapSlot(3),
            generation: 1
        })
    );
}

#[test]
fn labels_and_ops_agree() {
    for &op in naming::Op::ALL {
        assert_eq!(naming::Op::from_label(op as u64), Some(op));
    }
    for &op in console::Op::ALL {
        assert_eq!(console::Op::from_label(op as u64), Some(op));
    }
    for &op in proto::fs::Op::ALL {
        assert_eq!(proto::fs::Op::from_label(op as u64), Some(op));
    }
    for &op in proto::blk::Op::ALL {
        assert_eq!(proto::blk::Op::from_label(op as u64), Some(op));
    }
    assert_eq!(proc::Op::from_label(0), None);
    assert_eq!(memory::Op::from_label(u64::MAX), None);
}

#[test]
fn badges_never_zero() {
    assert_eq!(proto::badge(ComponentId(0)), 1);
    assert_eq!(proto::client(1), Some(ComponentId(0)));
    assert_eq!(proto::client(0), None);
    assert_eq!(proto::client(1 << 20), None);
    for id in [0, 1, 77, u16::MAX] {
        assert_eq!(
            proto::client(proto::badge(ComponentId(id))),
            Some(ComponentId(id))
        );
    }
}

#[test]
fn net_attach() {
    let mut mock = NetMock::default();
    let mut c = proto::net::NetClient::new(Loopback(|m: &Message| {
        proto::net::dispatch(&mut mock, BADGE, m)
    }));
    assert_eq!(c.attach(name("iperf-net"), 9, CapSlot(70)), Ok(CapSlot(75)));
    assert_eq!(
        c.attach(name("iperf-net"), 8, CapSlot(70)),
        Err(proto::net::Error::NotFound)
    );
    let mut full = NetMock { full: true };
    let mut c = proto::net::NetClient::new(Loopback(|m: &Message| {
        proto::net::dispatch(&mut full, BADGE, m)
    }));
    assert_eq!(
        c.attach(name("iperf-net"), 9, CapSlot(70)),
        Err(proto::net::Error::Full)
    );
}

/// Every `proto::fs` request encodes and decodes as itself, and its records survive a reply.
#[test]
fn fs_requests_and_records_round_trip() {
    use proto::codec::{decode_reply, encode_reply};
    use proto::fs::{Entry, Error, Extent, Request, Stat, Usage};
    let e = Extent {
        offset: 64,
        length: 4096,
    };
    let requests = [
        Request::Attach {
            region: proto::Name::new("editor-fs").unwrap(),
            nonce: u64::MAX,
        },
        Request::Open { path: e, flags: 63 },
        Request::Read {
            handle: 1 << 48,
            offset: u64::MAX,
            into: e,
        },
        Request::Readdir {
            path: e,
            index: 7,
            name: e,
        },
        Request::Rename { from: e, to: e },
        Request::Truncate { handle: 3, size: 9 },
        Request::Usage {},
    ];
    for r in requests {
        assert_eq!(Request::decode(&r.encode().unwrap()), Ok(r));
    }
    let entry = Entry {
        name_length: 255,
        stat: Stat {
            size: u64::MAX,
            is_directory: true,
            read_only: false,
        },
    };
    assert_eq!(
        decode_reply::<Entry, Error>(&encode_reply::<Entry, Error>(&Ok(entry))),
        Ok(entry)
    );
    let usage = Usage {
        block_bytes: 4096,
        total_blocks: 1 << 40,
        free_blocks: 3,
    };
    assert_eq!(
        decode_reply::<Usage, Error>(&encode_reply::<Usage, Error>(&Ok(usage))),
        Ok(usage)
    );
    // An extent offset past 32 bits is refused.
    let mut words = Request::Open { path: e, flags: 1 }
        .encode()
        .unwrap()
        .words()
        .to_vec();
    words[0] = u64::from(u32::MAX) + 1;
    let bad = Message::with_words(proto::fs::Op::Open as u64, &words).unwrap();
    assert_eq!(Request::decode(&bad), Err(Error::Malformed));
}

/// `proto::blk`: attach carries a capability each way, geometry a record with a flag; a
/// call before attach and an attach without its capability are refused.
#[test]
fn blk_attach_and_geometry() {
    use proto::blk::{BlkClient, Error, Geometry};
    #[derive(Default)]
    struct Mock {
        attached: Option<u64>,
    }
    impl proto::blk::Server for Mock {
        fn attach(
            &mut self,
            badge: u64,
            region: proto::Name,
            nonce: u64,
            wake: CapSlot,
        ) -> Result<CapSlot, Error> {
            if nonce != region.len() as u64 {
                return Err(Error::NotFound);
            }
            self.attached = Some(badge);
            Ok(CapSlot(wake.0 + 1))
        }
        fn geometry(&mut self, badge: u64) -> Result<Geometry, Error> {
            match self.attached {
                Some(b) if b == badge => Ok(Geometry {
                    sectors: 1 << 40,
                    max_sectors: 128,
                    read_only: true,
                }),
                _ => Err(Error::NotAttached),
            }
        }
    }
    let mut mock = Mock::default();
    let mut c = BlkClient::new(Loopback(|m: &Message| {
        proto::blk::dispatch(&mut mock, BADGE, m)
    }));
    assert_eq!(c.geometry(), Err(Error::NotAttached));
    assert_eq!(
        c.attach(name("fs-blk"), 5, CapSlot(70)),
        Err(Error::NotFound)
    );
    assert_eq!(c.attach(name("fs-blk"), 6, CapSlot(70)), Ok(CapSlot(71)));
    assert_eq!(
        c.geometry(),
        Ok(Geometry {
            sectors: 1 << 40,
            max_sectors: 128,
            read_only: true
        })
    );
    let mut mock = Mock::default();
    let request = proto::blk::Request::Attach {
        region: name("fs-blk"),
        nonce: 6,
        wake: CapSlot(70),
    }
    .encode()
    .unwrap();
    let mut without_cap = Message::with_words(request.label, request.words()).unwrap();
    without_cap.cap = None;
    let reply = proto::blk::dispatch(&mut mock, BADGE, &without_cap);
    assert_eq!(reply.label, Error::Malformed as u64);
    assert_eq!(mock.attached, None);
}
