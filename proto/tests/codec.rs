//! Properties of the shared codec: values and requests survive encoding, and decoding rejects
//! everything that is not exactly one valid encoding.

mod common;

use common::*;
use proto::codec::{Field, Reader};
use proto::{console, devices, memory, naming, proc};
use proto::{Bytes, ComponentId, Message, Name};

fn decode_field<T: Field>(m: &Message) -> Option<T> {
    let mut r = Reader::new(m);
    let v = T::take(&mut r).ok()?;
    r.finish().ok()?;
    Some(v)
}

#[test]
fn names_round_trip() {
    let mut rng = Rng::new(1);
    for _ in 0..2000 {
        let n = rng.name();
        let m = encode_field(&n);
        assert_eq!(m.len(), 1 + n.len().div_ceil(8));
        assert_eq!(decode_field::<Name>(&m), Some(n));
        assert_eq!(decode_field::<Option<Name>>(&m), Some(Some(n)));
    }
    assert_eq!(
        decode_field::<Option<Name>>(&encode_field(&None::<Name>)),
        Some(None)
    );
}

#[test]
fn names_are_validated() {
    for bad in [
        "",
        "Serial",
        "1st",
        "-x",
        "a b",
        "caf\u{e9}",
        "abcdefghijklmnopqrstuvwxyz0123456",
    ] {
        assert!(Name::new(bad).is_err(), "{bad:?}");
    }
    assert!(Name::new("abcdefghijklmnopqrstuvwxyz012345").is_ok());
    let word = |s: &[u8]| {
        let mut b = [0u8; 8];
        b[..s.len()].copy_from_slice(s);
        u64::from_le_bytes(b)
    };
    let reject = |words: &[u64]| decode_field::<Name>(&Message::with_words(0, words).unwrap());
    assert_eq!(reject(&[3, word(b"abc")]).as_deref(), Some("abc"));
    assert_eq!(reject(&[3, word(b"abcd")]), None, "non-zero padding");
    assert_eq!(reject(&[3, word(b"aBc")]), None, "charset");
    assert_eq!(reject(&[2, word(b"\xc3\xa9")]), None, "not ASCII");
    assert_eq!(reject(&[0]), None, "empty");
    assert_eq!(reject(&[33, 0, 0, 0, 0, 0]), None, "too long");
    assert_eq!(reject(&[u64::MAX]), None, "huge length");
    assert_eq!(reject(&[9, word(b"abcdefgh")]), None, "missing word");
    assert_eq!(reject(&[3, word(b"abc"), 0]), None, "spare word");
}

#[test]
fn bytes_round_trip() {
    let mut rng = Rng::new(2);
    for _ in 0..2000 {
        let b = rng.bytes();
        assert_eq!(decode_field::<Bytes>(&encode_field(&b)), Some(b));
    }
    assert!(Bytes::new(&[0; proto::MAX_BYTES + 1]).is_none());
    let too_long = Message::with_words(0, &[proto::MAX_BYTES as u64 + 1]).unwrap();
    assert_eq!(decode_field::<Bytes>(&too_long), None);
}

#[test]
fn integers_are_range_checked() {
    let one = |w: u64| Message::with_words(0, &[w]).unwrap();
    assert_eq!(decode_field::<u8>(&one(255)), Some(255));
    assert_eq!(decode_field::<u8>(&one(256)), None);
    assert_eq!(decode_field::<u16>(&one(65536)), None);
    assert_eq!(decode_field::<u32>(&one(u64::from(u32::MAX) + 1)), None);
    assert_eq!(decode_field::<ComponentId>(&one(7)), Some(ComponentId(7)));
    assert_eq!(decode_field::<bool>(&one(2)), None);
    assert_eq!(decode_field::<proc::State>(&one(99)), None);
    assert_eq!(decode_field::<u64>(&Message::new(0)), None);
}

#[test]
fn component_usage_round_trips_and_is_checked() {
    let mut rng = Rng::new(5);
    for _ in 0..2000 {
        let u = proc::ComponentUsage {
            id: ComponentId(rng.next() as u16),
            name: rng.name(),
            state: proc::State::ALL[rng.below(5) as usize],
            measured: rng.chance(50),
            used: rng.word(),
            budget: rng.word(),
            heap: rng.word(),
            stack: rng.word(),
        };
        let m = encode_field(&u);
        assert!(m.len() <= proto::MAX_WORDS);
        assert_eq!(decode_field::<proc::ComponentUsage>(&m), Some(u));
    }
    let good = proc::ComponentUsage {
        id: ComponentId(6),
        name: Name::new("hello").unwrap(),
        state: proc::State::Running,
        measured: true,
        used: 1 << 20,
        budget: 4 << 20,
        heap: 2 << 20,
        stack: 128 << 10,
    };
    let words = encode_field(&good).words().to_vec();
    // id, name (length + one word), state, measured, used, budget, heap, stack.
    assert_eq!(words.len(), 9);
    let with = |at: usize, w: u64| {
        let mut bad = words.clone();
        bad[at] = w;
        decode_field::<proc::ComponentUsage>(&Message::with_words(0, &bad).unwrap())
    };
    assert_eq!(with(0, 1 << 16), None, "id out of range");
    assert_eq!(with(3, 99), None, "unknown state");
    assert_eq!(with(4, 2), None, "measured is not a bool");
    assert_eq!(with(4, 0).map(|u| u.measured), Some(false));
    let short = Message::with_words(0, &words[..8]).unwrap();
    assert_eq!(
        decode_field::<proc::ComponentUsage>(&short),
        None,
        "missing word"
    );
}

macro_rules! requests_round_trip {
    ($test:ident, $iface:ident, $gen:ident) => {
        #[test]
        fn $test() {
            let mut rng = Rng::new(3);
            for _ in 0..2000 {
                let request = $gen(&mut rng);
                let message = request.encode().unwrap();
                assert_eq!(message.label, request.op() as u64);
                assert!(message.len() <= proto::MAX_WORDS);
                assert_eq!($iface::Request::decode(&message), Ok(request));
            }
        }
    };
}

requests_round_trip!(naming_requests_round_trip, naming, naming_request);
requests_round_trip!(proc_requests_round_trip, proc, proc_request);
requests_round_trip!(memory_requests_round_trip, memory, memory_request);
requests_round_trip!(devices_requests_round_trip, devices, devices_request);
requests_round_trip!(console_requests_round_trip, console, console_request);

/// Decoding is canonical: whatever decodes re-encodes to the same message.
#[test]
fn accepted_messages_are_canonical() {
    let mut rng = Rng::new(4);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let m = if rng.chance(50) {
            random_message(&mut rng)
        } else {
            let base = naming_request(&mut rng).encode().unwrap();
            mutate(&mut rng, &base)
        };
        if let Ok(r) = naming::Request::decode(&m) {
            assert_eq!(r.encode(), Ok(m));
            accepted += 1;
        }
        if let Ok(r) = proc::Request::decode(&m) {
            assert_eq!(r.encode(), Ok(m));
        }
        if let Ok(r) = memory::Request::decode(&m) {
            assert_eq!(r.encode(), Ok(m));
        }
    }
    assert!(accepted > 0);
}
