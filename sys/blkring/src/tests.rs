use super::*;
use std::vec::Vec;

fn region(bytes: usize) -> &'static [AtomicU32] {
    shmring::zeroed_words(bytes / 4).collect::<Vec<_>>().leak()
}

fn limits(sectors: u64) -> Limits {
    Limits {
        sectors,
        max_sectors: 128,
        data: Region::new(64 * 1024, SECTOR).unwrap(),
    }
}

fn read(sector: u64, count: u32, offset: u32) -> Request {
    Request {
        op: op::READ,
        sector,
        count,
        offset,
        id: 9,
    }
}

#[test]
fn the_layout_follows_the_region_size() {
    let l = Layout::for_region(1 << 20).unwrap();
    assert_eq!(l.data_bytes, (1 << 20) - 4096);
    assert!(l.responses + 4 * ring_words::<Response>(RING_CAPACITY) <= DATA_OFFSET);
    assert_eq!(Layout::for_region(8192).unwrap().data_bytes, 4096);
    assert_eq!(Layout::for_region(8191), None);
    assert_eq!(Layout::for_region(100), None);
}

#[test]
fn entries_round_trip_through_their_words() {
    let r = Request {
        op: 2,
        sector: 0x1_2345_6789,
        count: 8,
        offset: 4096,
        id: 77,
    };
    let mut w = [0u32; 6];
    r.encode(&mut w);
    assert_eq!(Request::decode(&w), r);
    let s = Response {
        status: Status::OutOfRange,
        count: 0,
        id: 5,
    };
    let mut w = [0u32; 3];
    s.encode(&mut w);
    assert_eq!(w[0], 2);
    assert_eq!(Response::decode(&w), s);
    assert_eq!(Status::from_word(77), Status::Unknown);
}

#[test]
fn good_requests_pass_and_bad_ones_get_their_reason() {
    let l = limits(1000);
    assert_eq!(l.check(&read(0, 8, 0)).unwrap().count, 8);
    assert!(
        l.check(&read(992, 8, 60 * 1024)).is_ok(),
        "the last sectors, the area's end"
    );
    assert_eq!(l.check(&read(993, 8, 0)), Err(Status::OutOfRange));
    assert_eq!(l.check(&read(u64::MAX, 1, 0)), Err(Status::OutOfRange));
    assert_eq!(l.check(&read(0, 0, 0)), Err(Status::Malformed));
    assert_eq!(
        l.check(&read(0, 129, 0)),
        Err(Status::Malformed),
        "over max_sectors"
    );
    assert_eq!(l.check(&read(0, u32::MAX, 0)), Err(Status::Malformed));
    assert_eq!(l.check(&read(0, 1, 100)), Err(Status::Misaligned));
    assert_eq!(
        l.check(&read(0, 2, 63 * 1024 + 512)),
        Err(Status::Malformed),
        "past the area"
    );
    assert_eq!(l.check(&read(0, 1, u32::MAX - 511)), Err(Status::Malformed));
    let flush = Request {
        op: op::FLUSH,
        sector: 0,
        count: 0,
        offset: 0,
        id: 1,
    };
    assert!(l.check(&flush).is_ok());
    assert_eq!(
        l.check(&Request { count: 1, ..flush }),
        Err(Status::Malformed)
    );
    assert_eq!(l.check(&Request { op: 0, ..flush }), Err(Status::Malformed));
    assert_eq!(
        l.check(&Request {
            op: 99,
            ..read(0, 1, 0)
        }),
        Err(Status::Malformed)
    );
}

#[test]
fn client_and_server_halves_meet_in_one_region() {
    let memory = region(64 * 1024);
    let (mut client, layout) = ClientRings::new(memory, 0xfeed).unwrap();
    assert_eq!(read_nonce(memory), Some(0xfeed));
    let (mut server, server_layout) = ServerRings::new(memory).unwrap();
    assert_eq!(layout, server_layout);
    assert!(client.write_data(512, &[1, 2, 3, 4, 5, 6, 7, 8]));
    assert!(
        !client.write_data(layout.data_bytes - 4, &[0; 8]),
        "past the area"
    );
    assert!(client.write_data(2, &[9; 4]), "any offset inside the area");
    let mut two = [0u8; 2];
    assert!(client.read_data(4, &mut two));
    assert_eq!(two, [9, 9]);
    client
        .push(Request {
            op: op::WRITE,
            sector: 3,
            count: 1,
            offset: 512,
            id: 42,
        })
        .unwrap();
    assert!(!client.publish(), "the server is not waiting");
    let got = server.pop().unwrap().unwrap();
    assert_eq!((got.sector, got.id), (3, 42));
    assert_eq!(server.pop(), Ok(None));
    assert!(client.prepare_wait());
    server
        .push(Response {
            status: Status::Ok,
            count: 1,
            id: 42,
        })
        .unwrap();
    assert!(server.publish(), "the client waits: signal it");
    assert_eq!(client.pop().unwrap().unwrap().id, 42);
    let mut out = [0u8; 8];
    assert!(client.read_data(512, &mut out));
    assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn a_fresh_client_clears_stale_entries_and_a_broken_ring_is_reported() {
    let memory = region(16 * 1024);
    let (mut client, _) = ClientRings::new(memory, 1).unwrap();
    client.push(read(0, 1, 0)).unwrap();
    client.publish();
    // The client restarts: a new attachment sees an empty ring.
    let (_client, _) = ClientRings::new(memory, 2).unwrap();
    let (mut server, _) = ServerRings::new(memory).unwrap();
    assert_eq!(server.pop(), Ok(None));
    assert_eq!(read_nonce(memory), Some(2));
    // The client writes an impossible tail: the server is told, nothing is read.
    memory[HEADER_BYTES / 4].store(1000, Ordering::Relaxed);
    assert_eq!(server.pop(), Err(Corrupt));
    // A wrong magic is not a header.
    memory[0].store(0, Ordering::Relaxed);
    assert_eq!(read_nonce(memory), None);
}
