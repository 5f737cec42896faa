use super::*;
use crate::entropy::Rng;
use alloc::vec;
use ed25519_dalek::{Verifier, VerifyingKey};
use proto::keystore::{dispatch, KeystoreClient, MAX_MESSAGE};
use proto::{Loopback, Message};
use rand_chacha::rand_core::SeedableRng;

/// Records what the store tells its backing.
#[derive(Default)]
struct Log {
    added: Vec<(ComponentId, u64)>,
    removed: Vec<(ComponentId, u64)>,
}

impl Backing for &mut Log {
    fn added(
        &mut self,
        owner: ComponentId,
        handle: u64,
        _: Name,
        _: &[u8; 32],
    ) -> Result<(), crate::BackingError> {
        self.added.push((owner, handle));
        Ok(())
    }
    fn removed(
        &mut self,
        owner: ComponentId,
        handle: u64,
        _: Name,
    ) -> Result<(), crate::BackingError> {
        self.removed.push((owner, handle));
        Ok(())
    }
}

const ALICE: u64 = 3;
const BOB: u64 = 4;

fn store(limits: Limits) -> Store<Rng, crate::Volatile> {
    Store::new(limits, 1, Rng::seed_from_u64(7), crate::Volatile)
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn payload(b: &[u8]) -> Payload {
    Payload::new(b).unwrap()
}

#[test]
fn a_signature_verifies_under_the_key_public_key_returns() {
    let mut s = store(Limits::default());
    let h = s.generate(ALICE, name("signing")).unwrap();
    let pk = s.public_key(ALICE, h).unwrap();
    let sig = s.sign(ALICE, h, payload(b"hello")).unwrap();
    let vk = VerifyingKey::from_bytes(&pk.0).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
    assert!(vk.verify(b"hello", &sig).is_ok());
    assert!(vk.verify(b"hellp", &sig).is_err());
}

#[test]
fn another_clients_key_is_indistinguishable_from_none() {
    let mut s = store(Limits::default());
    let a = s.generate(ALICE, name("signing")).unwrap();
    let never = a ^ 1;
    for h in [a, never] {
        assert_eq!(s.public_key(BOB, h), Err(Error::NotFound));
        assert_eq!(s.sign(BOB, h, payload(b"x")), Err(Error::NotFound));
        assert_eq!(s.delete(BOB, h), Err(Error::NotFound));
    }
    assert_eq!(s.list(BOB, 0), Err(Error::NoEntry));
    assert_eq!(
        Server::find(&mut s, BOB, name("signing")),
        Err(Error::NotFound)
    );
    // Bob's own key of the same label is his, and Alice's is untouched.
    let b = s.generate(BOB, name("signing")).unwrap();
    assert_ne!(a, b);
    assert_eq!(Server::find(&mut s, BOB, name("signing")), Ok(b));
    assert_eq!(Server::find(&mut s, ALICE, name("signing")), Ok(a));
    assert_ne!(s.public_key(ALICE, a), s.public_key(BOB, b));
    assert_eq!(s.list(ALICE, 0).map(|k| k.handle), Ok(a));
    assert_eq!(s.list(ALICE, 1), Err(Error::NoEntry));
    // Badge 0 names nobody.
    assert_eq!(s.public_key(0, a), Err(Error::NotFound));
    assert_eq!(s.generate(0, name("x")), Err(Error::NotFound));
}

#[test]
fn a_deleted_key_is_gone_and_its_backing_told() {
    let mut log = Log::default();
    let mut s = Store::new(Limits::default(), 1, Rng::seed_from_u64(1), &mut log);
    let h = s.generate(ALICE, name("k")).unwrap();
    assert_eq!(s.delete(ALICE, h), Ok(()));
    assert_eq!(s.sign(ALICE, h, payload(b"x")), Err(Error::NotFound));
    assert_eq!(s.delete(ALICE, h), Err(Error::NotFound));
    assert!(s.is_empty());
    // The label is free again.
    let again = s.generate(ALICE, name("k")).unwrap();
    drop(s);
    let alice = proto::client(ALICE).unwrap();
    assert_eq!(log.added, vec![(alice, h), (alice, again)]);
    assert_eq!(log.removed, vec![(alice, h)]);
}

#[test]
fn limits_give_clear_errors_and_spare_other_clients() {
    let mut s = store(Limits {
        max_keys: 2,
        max_message: 16,
        max_total: 3,
    });
    let h = s.generate(ALICE, name("a")).unwrap();
    assert_eq!(s.generate(ALICE, name("a")), Err(Error::Exists));
    s.generate(ALICE, name("b")).unwrap();
    assert_eq!(s.generate(ALICE, name("c")), Err(Error::Full));
    // Alice being full does not stop Bob, until the store as a whole is.
    s.generate(BOB, name("a")).unwrap();
    assert_eq!(s.generate(BOB, name("b")), Err(Error::Exhausted));
    assert_eq!(s.len(), 3);
    assert!(s.sign(ALICE, h, payload(&[0; 16])).is_ok());
    assert_eq!(s.sign(ALICE, h, payload(&[0; 17])), Err(Error::TooLarge));
    // Another client's handle is NotFound before its size is looked at.
    assert_eq!(s.sign(BOB, h, payload(&[0; 17])), Err(Error::NotFound));
}

#[test]
fn handles_of_an_earlier_instance_are_told_apart() {
    let mut old = Store::new(Limits::default(), 1, Rng::seed_from_u64(2), crate::Volatile);
    let h = old.generate(ALICE, name("k")).unwrap();
    let mut new = Store::new(Limits::default(), 2, Rng::seed_from_u64(2), crate::Volatile);
    assert_eq!(new.public_key(ALICE, h), Err(Error::ServerRestarted));
    assert_eq!(new.sign(BOB, h, payload(b"")), Err(Error::ServerRestarted));
    let fresh = new.generate(ALICE, name("k")).unwrap();
    assert_ne!(fresh, h);
}

#[test]
fn handles_do_not_count_keys() {
    // Handles are random below the instance bits, so one client cannot tell from its own
    // handles how many keys others made.
    let mut s = store(Limits::default());
    let handles: Vec<u64> = (0..6)
        .map(|i| {
            let n = alloc::format!("k{i}");
            s.generate(ALICE + i % 2, name(&n)).unwrap()
        })
        .collect();
    let lows: Vec<u64> = handles.iter().map(|h| h & RANDOM_MASK).collect();
    assert!(lows.iter().all(|&l| l > 1 << 20), "{lows:x?}");
    let mut sorted = lows.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), lows.len());
}

#[test]
fn planted_keys_sign_as_their_secret_says_and_no_reply_holds_it() {
    let seed = [
        0x5au8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
        24, 25, 26, 27, 28, 29, 30, 31,
    ];
    let mut s = store(Limits::default());
    let owner = proto::client(ALICE).unwrap();
    let h = s.insert(owner, name("planted"), &seed).unwrap();
    let expected = SigningKey::from_bytes(&seed);
    assert_eq!(
        s.public_key(ALICE, h).unwrap().0,
        expected.verifying_key().to_bytes()
    );
    // Every reply to every operation, scanned for any 8 bytes of the secret.
    let windows: Vec<&[u8]> = seed.windows(8).collect();
    let requests = [
        Message::with_words(2, &[h]).unwrap(),
        Message::with_words(3, &[h, 3, u64::from_le_bytes(*b"abc\0\0\0\0\0")]).unwrap(),
        Message::with_words(4, &[0]).unwrap(),
        Message::with_words(6, &[7, u64::from_le_bytes(*b"planted\0")]).unwrap(),
    ];
    for request in &requests {
        let reply = dispatch(&mut s, ALICE, request);
        assert_eq!(reply.label, 0, "{request:?}");
        let bytes: Vec<u8> = reply.words().iter().flat_map(|w| w.to_le_bytes()).collect();
        for window in bytes.windows(8) {
            assert!(!windows.contains(&window), "{request:?} leaked");
        }
    }
}

#[test]
fn malformed_requests_get_malformed_and_the_store_keeps_serving() {
    let mut s = store(Limits::default());
    let h = s.generate(ALICE, name("k")).unwrap();
    let bad = [
        Message::new(0),
        Message::new(99),
        Message::with_words(3, &[h]).unwrap(),
        Message::with_words(3, &[h, MAX_MESSAGE as u64 + 1]).unwrap(),
        Message::with_words(3, &[h, 1, 0x100]).unwrap(),
        Message::with_words(1, &[3, u64::from_le_bytes(*b"ABC\0\0\0\0\0")]).unwrap(),
        Message::with_words(2, &[h, 0]).unwrap(),
        Message::with_words(4, &[1 << 32]).unwrap(),
        Message::with_words(2, &[h]).unwrap().with_cap(63),
    ];
    for m in &bad {
        assert_eq!(
            dispatch(&mut s, ALICE, m).label,
            Error::Malformed as u64,
            "{m:?}"
        );
    }
    let mut c = KeystoreClient::new(Loopback(|m: &Message| dispatch(&mut s, ALICE, m)));
    assert!(c.sign(h, payload(b"still here")).is_ok());
}

#[test]
fn secrets_are_erased_when_dropped() {
    // The key type erases its secret on drop (ed25519-dalek's `zeroize` feature): a build
    // without it fails here.
    fn erased_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    erased_on_drop::<SigningKey>();
    erased_on_drop::<Zeroizing<[u8; 32]>>();
}
