//! A hostile client (bad extents, lengths, handles, paths, forged attachments, random
//! messages) gets errors, and another client keeps working throughout.

mod common;

use common::{get, put, service, transport};
use proto::fs::{flags, Error, Extent, FsClient, HEADER_BYTES};
use proto::{Message, Name, Transport};

const EVIL: u64 = 9;
const GOOD: u64 = 5;

fn attach(client: &mut FsClient<impl Transport>, area: &common::Area, region: Name, nonce: u64) {
    assert!(proto::fs::write_nonce(area, nonce));
    assert_eq!(
        client.attach(region, nonce),
        Ok((area.len() * 4 - HEADER_BYTES) as u32)
    );
}

/// The good client's round: write a file, read it back; panics if anything fails.
fn good_round(client: &mut FsClient<impl Transport>, area: &common::Area, round: u32) {
    let name = format!("file{}", round % 4);
    let path = put(area, 0, name.as_bytes());
    let h = client
        .open(
            path,
            flags::READ | flags::WRITE | flags::CREATE | flags::TRUNCATE,
        )
        .unwrap();
    let data = format!("round {round}");
    let from = put(area, 100, data.as_bytes());
    assert_eq!(client.write(h, 0, from), Ok(data.len() as u64));
    let into = Extent {
        offset: 1000,
        length: 64,
    };
    assert_eq!(client.read(h, 0, into), Ok(data.len() as u32));
    assert_eq!(get(area, 1000, data.len()), data.as_bytes());
    client.close(h).unwrap();
}

#[test]
fn bad_extents_handles_and_paths_get_errors_while_another_client_works() {
    let Some((svc, areas)) = service("good-fs:/good,evil-fs:/evil", "4") else {
        return;
    };
    let (good_region, good_area) = areas[0].clone();
    let (evil_region, evil_area) = areas[1].clone();
    let mut good = FsClient::new(transport(&svc, GOOD));
    let mut evil = FsClient::new(transport(&svc, EVIL));

    // Not attached yet; then forged attachments.
    let p = put(&evil_area, 0, b"x");
    assert_eq!(evil.stat(p), Err(Error::NotAttached));
    attach(&mut good, &good_area, good_region, 77);
    assert!(proto::fs::write_nonce(&evil_area, 99));
    assert_eq!(
        evil.attach(good_region, 99),
        Err(Error::NotFound),
        "someone else's region"
    );
    assert_eq!(
        evil.attach(good_region, 77),
        Err(Error::NotFound),
        "the region is bound to the badge that attached first, even for a leaked nonce"
    );
    assert_eq!(
        evil.attach(Name::new("nowhere").unwrap(), 99),
        Err(Error::NotFound)
    );
    assert_eq!(evil.attach(evil_region, 0), Err(Error::NotFound));
    good_round(&mut good, &good_area, 0);
    attach(&mut evil, &evil_area, evil_region, 99);

    let data = (evil_area.len() * 4 - HEADER_BYTES) as u32;
    let bad_extents = [
        Extent {
            offset: data,
            length: 1,
        },
        Extent {
            offset: data - 1,
            length: 2,
        },
        Extent {
            offset: u32::MAX,
            length: 2,
        },
        Extent {
            offset: 1,
            length: u32::MAX,
        },
        Extent {
            offset: 0,
            length: data + 1,
        },
    ];
    let h = evil
        .open(
            put(&evil_area, 0, b"mine"),
            flags::READ | flags::WRITE | flags::CREATE,
        )
        .unwrap();
    for (round, e) in bad_extents.into_iter().enumerate() {
        assert_eq!(evil.read(h, 0, e), Err(Error::BadExtent), "{e:?}");
        assert_eq!(evil.write(h, 0, e), Err(Error::BadExtent), "{e:?}");
        // A path extent past 4,096 bytes is refused for its length before its place.
        let path_error = if e.length as usize > 4096 {
            Error::NameTooLong
        } else {
            Error::BadExtent
        };
        assert_eq!(evil.open(e, flags::READ), Err(path_error), "{e:?}");
        assert_eq!(evil.stat(e), Err(path_error), "{e:?}");
        let path = put(&evil_area, 0, b"");
        assert_eq!(evil.readdir(path, 0, e), Err(Error::BadExtent), "{e:?}");
        good_round(&mut good, &good_area, round as u32 + 1);
    }
    // A zero-length extent at the very end is inside: reads nothing.
    assert_eq!(
        evil.read(
            h,
            0,
            Extent {
                offset: data,
                length: 0
            }
        ),
        Ok(0)
    );

    // Handles: forged, closed, another client's, an earlier instance's.
    let good_handle = good
        .open(
            put(&good_area, 0, b"held"),
            flags::READ | flags::WRITE | flags::CREATE,
        )
        .unwrap();
    let some = Extent {
        offset: 0,
        length: 8,
    };
    assert_eq!(evil.read(good_handle, 0, some), Err(Error::NotFound));
    assert_eq!(evil.write(good_handle, 0, some), Err(Error::NotFound));
    assert_eq!(evil.close(good_handle), Err(Error::NotFound));
    assert_eq!(evil.fstat(good_handle), Err(Error::NotFound));
    assert_eq!(evil.truncate(good_handle, 0), Err(Error::NotFound));
    assert_eq!(evil.fsync(good_handle), Err(Error::NotFound));
    for forged in [
        1 << 48,
        (1 << 48) | 1,
        h + 1,
        h ^ (1 << 20),
        (1 << 48) | 0xffff,
    ] {
        assert_eq!(
            evil.read(forged, 0, some),
            Err(Error::NotFound),
            "{forged:#x}"
        );
    }
    for earlier in [0, 1, h ^ (7 << 48)] {
        assert_eq!(
            evil.read(earlier, 0, some),
            Err(Error::ServerRestarted),
            "{earlier:#x}"
        );
    }
    evil.close(h).unwrap();
    assert_eq!(evil.read(h, 0, some), Err(Error::NotFound), "closed");
    let r = evil.open(put(&evil_area, 0, b"mine"), flags::READ).unwrap();
    assert_eq!(evil.write(r, 0, some), Err(Error::AccessMode));
    assert_eq!(evil.truncate(r, 0), Err(Error::AccessMode));
    assert_eq!(
        evil.open(put(&evil_area, 0, b"mine"), 0),
        Err(Error::Invalid)
    );
    assert_eq!(
        evil.open(put(&evil_area, 0, b"mine"), 1 << 9),
        Err(Error::Invalid)
    );
    assert_eq!(
        evil.open(put(&evil_area, 0, b"mine"), flags::READ | flags::TRUNCATE),
        Err(Error::Invalid)
    );
    // The good client's handle still works.
    assert_eq!(
        good.write(good_handle, 0, put(&good_area, 0, b"still")),
        Ok(5)
    );

    // Paths: climbing, empty components, odd and long names.
    let long_name = "n".repeat(256);
    let long_path = "a/".repeat(2100);
    let bad_paths: [(&[u8], Error); 12] = [
        (b"..", Error::BadName),
        (b"../good/held", Error::BadName),
        (b"a/../../good", Error::BadName),
        (b"./mine", Error::BadName),
        (b"a//b", Error::BadName),
        (b"//", Error::BadName),
        (b"a\\..\\b", Error::BadName),
        (b"mine\0", Error::BadName),
        (b"what?", Error::BadName),
        (&[0xff, 0xfe], Error::BadName),
        (long_name.as_bytes(), Error::NameTooLong),
        (long_path.as_bytes(), Error::NameTooLong),
    ];
    for (path, error) in bad_paths {
        let e = put(&evil_area, 200, path);
        let shown = String::from_utf8_lossy(path);
        assert_eq!(
            evil.open(e, flags::READ | flags::WRITE | flags::CREATE),
            Err(error),
            "{shown}"
        );
        assert_eq!(evil.stat(e), Err(error), "{shown}");
        assert_eq!(evil.mkdir(e), Err(error), "{shown}");
        assert_eq!(evil.unlink(e), Err(error), "{shown}");
        let from = put(&evil_area, 0, b"mine");
        assert_eq!(evil.rename(from, e), Err(error), "{shown}");
        assert_eq!(evil.rename(e, from), Err(error), "{shown}");
    }
    // Its root cannot be removed or renamed, and "/" is its root.
    let root = put(&evil_area, 0, b"/");
    assert_eq!(evil.rmdir(root), Err(Error::Busy));
    assert_eq!(evil.unlink(root), Err(Error::IsDirectory));
    let to = put(&evil_area, 10, b"x");
    assert_eq!(evil.rename(root, to), Err(Error::Busy));
    assert_eq!(evil.stat(put(&evil_area, 0, b"good")), Err(Error::NotFound));
    // A name extent too small for the entry.
    let dir = put(&evil_area, 0, b"");
    assert_eq!(
        evil.readdir(
            dir,
            0,
            Extent {
                offset: 100,
                length: 2
            }
        ),
        Err(Error::TooSmall)
    );
    assert_eq!(
        evil.readdir(
            dir,
            999,
            Extent {
                offset: 100,
                length: 300
            }
        ),
        Err(Error::NoEntry)
    );

    good_round(&mut good, &good_area, 99);
    let counters = svc.borrow().counters();
    assert!(
        counters.bad_extents >= 20 && counters.bad_handles >= 10 && counters.bad_paths >= 40,
        "{counters:?}"
    );
    // Nothing the hostile client did reached the good client's directory.
    let listing: Vec<_> = svc
        .borrow_mut()
        .volume()
        .read_dir(&libos_fat::Path::parse("good").unwrap())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    let mut listing = listing;
    listing.sort();
    assert_eq!(listing, ["file0", "file1", "file2", "file3", "held"]);
}

#[test]
fn random_messages_never_stop_the_service() {
    let Some((svc, areas)) = service("good-fs:/good,evil-fs:/evil", "4") else {
        return;
    };
    let (good_region, good_area) = areas[0].clone();
    let (evil_region, evil_area) = areas[1].clone();
    let mut good = FsClient::new(transport(&svc, GOOD));
    attach(&mut good, &good_area, good_region, 77);
    let mut evil = transport(&svc, EVIL);
    let mut evil_client = FsClient::new(transport(&svc, EVIL));
    attach(&mut evil_client, &evil_area, evil_region, 99);
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut errors = 0;
    for round in 0..20_000u32 {
        // Random bytes in the hostile client's region too.
        let at = rng.usize(HEADER_BYTES..evil_area.len() * 4 - 8);
        put(
            &evil_area,
            (at - HEADER_BYTES) as u32,
            &rng.u64(..).to_le_bytes(),
        );
        let label = rng.u64(0..20);
        let words: Vec<u64> = (0..rng.usize(0..8))
            .map(|_| match rng.u8(0..4) {
                0 => rng.u64(..),
                1 => rng.u64(0..4096),
                2 => rng.u64(0..64),
                _ => u64::from(rng.u32(..)) | (1 << 48),
            })
            .collect();
        let reply = evil.call(&Message::with_words(label, &words).unwrap());
        if reply.label != 0 {
            errors += 1;
        }
        if round % 1000 == 0 {
            good_round(&mut good, &good_area, round);
        }
    }
    assert!(
        errors > 15_000,
        "most random requests are refused ({errors})"
    );
    good_round(&mut good, &good_area, 1);
    svc.borrow_mut().sync().unwrap();
    assert!(common::fsck_clean(
        svc.borrow_mut().volume().device().as_bytes()
    ));
}
