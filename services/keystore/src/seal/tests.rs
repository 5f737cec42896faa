use super::*;
use crate::entropy::Rng;
use alloc::format;
use alloc::vec;
use rand_chacha::rand_core::SeedableRng;

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn key() -> SealingKey {
    SealingKey::derive(&[7; 32])
}

fn rng() -> Rng {
    Rng::seed_from_u64(1)
}

const SECRET: [u8; 32] = [0x5a; 32];

fn blob(owner: &str, label: &str, version: u64) -> [u8; BLOB_LEN] {
    seal_blob(
        &key(),
        &mut rng(),
        name(owner),
        name(label),
        version,
        &SECRET,
    )
}

#[test]
fn a_sealed_key_opens_to_its_secret_and_version() {
    let b = blob("signer", "signing", 3);
    let (version, secret) = open_blob(&key(), &b, name("signer"), name("signing")).unwrap();
    assert_eq!((version, *secret), (3, SECRET));
    // The secret is not in the blob in the clear.
    assert!(!b.windows(8).any(|w| w == &SECRET[..8]));
}

#[test]
fn two_sealings_of_one_key_differ() {
    let mut r = rng();
    let a = seal_blob(&key(), &mut r, name("a"), name("k"), 1, &SECRET);
    let b = seal_blob(&key(), &mut r, name("a"), name("k"), 1, &SECRET);
    assert_ne!(a, b, "a fresh nonce each time");
}

#[test]
fn every_altered_byte_is_refused() {
    let b = blob("signer", "signing", 3);
    for i in 0..BLOB_LEN {
        let mut bad = b;
        bad[i] ^= 0x01;
        let got = open_blob(&key(), &bad, name("signer"), name("signing"));
        let expected = if i < 5 {
            SealError::NotSealed
        } else {
            SealError::Forged
        };
        assert_eq!(got.err(), Some(expected), "byte {i}");
    }
}

#[test]
fn a_blob_swapped_to_another_owner_or_renamed_is_refused() {
    let b = blob("signer", "signing", 3);
    let other_owner = open_blob(&key(), &b, name("verifier"), name("signing"));
    assert_eq!(other_owner.err(), Some(SealError::Forged));
    let renamed = open_blob(&key(), &b, name("signer"), name("other"));
    assert_eq!(renamed.err(), Some(SealError::Forged));
    // Moving a byte between owner and label does not help (lengths are bound too).
    let c = blob("ab", "c", 1);
    assert_eq!(
        open_blob(&key(), &c, name("a"), name("bc")).err(),
        Some(SealError::Forged)
    );
}

#[test]
fn a_blob_relabelled_with_another_version_or_under_another_key_is_refused() {
    let mut b = blob("signer", "signing", 3);
    b[5] = 4; // the version in the header
    assert_eq!(
        open_blob(&key(), &b, name("signer"), name("signing")).err(),
        Some(SealError::Forged)
    );
    let b = blob("signer", "signing", 3);
    let other = SealingKey::derive(&[8; 32]);
    assert_eq!(
        open_blob(&other, &b, name("signer"), name("signing")).err(),
        Some(SealError::Forged)
    );
}

#[test]
fn truncated_blobs_and_garbage_are_refused() {
    let b = blob("signer", "signing", 3);
    for len in [0, 1, 4, 12, BLOB_LEN - 1] {
        assert_eq!(
            open_blob(&key(), &b[..len], name("signer"), name("signing")).err(),
            Some(SealError::Truncated),
            "{len} bytes"
        );
    }
    let mut longer = b.to_vec();
    longer.push(0);
    assert_eq!(
        open_blob(&key(), &longer, name("signer"), name("signing")).err(),
        Some(SealError::Truncated)
    );
    let mut r = rng();
    for len in [BLOB_LEN, 100, 4096] {
        let mut garbage = vec![0u8; len];
        r.fill_bytes(&mut garbage);
        let got = open_blob(&key(), &garbage, name("signer"), name("signing"));
        assert_eq!(got.err(), Some(SealError::NotSealed), "{len} bytes");
    }
    // Garbage with the right header still fails authentication.
    let mut forged = [0u8; BLOB_LEN];
    r.fill_bytes(&mut forged);
    forged[..13].copy_from_slice(&b[..13]);
    assert_eq!(
        open_blob(&key(), &forged, name("signer"), name("signing")).err(),
        Some(SealError::Forged)
    );
}

fn manifest() -> Manifest {
    Manifest {
        counter: 5,
        entries: vec![
            Listed {
                owner: name("signer"),
                label: name("signing"),
                version: 5,
            },
            Listed {
                owner: name("verifier"),
                label: name("verifying"),
                version: 2,
            },
        ],
    }
}

#[test]
fn a_manifest_round_trips_and_checks_versions() {
    let m = manifest();
    let sealed = m.seal(&key(), &mut rng());
    let opened = Manifest::open(&key(), &sealed).unwrap();
    assert_eq!(opened, m);
    assert_eq!(opened.check(name("signer"), name("signing"), 5), Ok(()));
    assert_eq!(
        opened.check(name("signer"), name("signing"), 4),
        Err(SealError::Stale {
            found: 4,
            listed: 5
        })
    );
    assert_eq!(
        opened.check(name("signer"), name("gone"), 5),
        Err(SealError::Unlisted)
    );
    // Another owner's entry does not vouch for a blob of the same label.
    assert_eq!(
        opened.check(name("verifier"), name("signing"), 5),
        Err(SealError::Unlisted)
    );
    // An empty manifest too.
    let empty = Manifest::default().seal(&key(), &mut rng());
    assert_eq!(Manifest::open(&key(), &empty).unwrap(), Manifest::default());
}

#[test]
fn an_altered_truncated_or_foreign_manifest_is_refused() {
    let sealed = manifest().seal(&key(), &mut rng());
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x80;
        let expected = if i < 5 {
            SealError::NotSealed
        } else {
            SealError::Forged
        };
        assert_eq!(
            Manifest::open(&key(), &bad).err(),
            Some(expected),
            "byte {i}"
        );
    }
    for len in [0, 10, 32] {
        assert_eq!(
            Manifest::open(&key(), &sealed[..len]).err(),
            Some(SealError::Truncated)
        );
    }
    assert_eq!(
        Manifest::open(&key(), &sealed[..sealed.len() - 1]).err(),
        Some(SealError::Forged)
    );
    let other = SealingKey::derive(&[8; 32]);
    assert_eq!(
        Manifest::open(&other, &sealed).err(),
        Some(SealError::Forged)
    );
    // A blob is not a manifest, nor a manifest a blob.
    let b = blob("signer", "signing", 3);
    assert_eq!(Manifest::open(&key(), &b).err(), Some(SealError::NotSealed));
}

#[test]
fn the_sealing_key_depends_on_the_seed_only() {
    let a = blob("a", "k", 1);
    let again = SealingKey::derive(&[7; 32]);
    assert!(open_blob(&again, &a, name("a"), name("k")).is_ok());
    assert_eq!(format!("{:?}", again), "SealingKey(..)");
}
