//! Sealing: keys and the list of keys as authenticated ciphertext, for storage the key store
//! does not trust (the file service, the disk under it).
//!
//! Everything is sealed with ChaCha20-Poly1305 (RFC 8439) under one [`SealingKey`] that only
//! the key store holds, derived from its build-time seed ([`SealingKey::derive`]). Two kinds
//! of sealed object exist:
//!
//! - A **blob** holds one key's secret. Its associated data binds the owner's component name
//!   (not its runtime id, so it survives restarts and reboots), the key's label and the blob's
//!   version, so a blob that was altered, moved to another client or renamed fails to open
//!   ([`SealError::Forged`]). Layout ([`BLOB_LEN`] bytes): `"TKSB"`, format 1, version (u64,
//!   little-endian), nonce (12), sealed secret (32), tag (16).
//! - The **manifest** lists every key (owner, label, version) with a counter that goes up
//!   with every change. A blob whose version is not the one the manifest lists is refused, so
//!   an older blob mixed in among current ones is detected ([`SealError::Stale`]). Layout:
//!   `"TKSM"`, format 1, counter (u64), nonce (12), sealed list, tag (16).
//!
//! What this cannot detect: the storage replaying a whole older state (an older manifest with
//! the blobs of its time) is consistent, and without storage the key store can trust to only
//! go forward (a monotonic counter outside the file service) nothing tells it apart from the
//! current state. The effect of such a replay is bounded: it can bring back keys that were
//! deleted and lose keys made since, never forge or reveal one.
//!
//! Nonces are 96 random bits from the caller's generator; with the handful of objects one
//! store seals in its life, a repeated nonce is out of reach (the birthday bound is 2^48).

use alloc::vec::Vec;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use core::fmt;
use proto::Name;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

/// The first bytes of a sealed key.
pub const BLOB_MAGIC: [u8; 4] = *b"TKSB";
/// The first bytes of a sealed manifest.
pub const MANIFEST_MAGIC: [u8; 4] = *b"TKSM";
/// The format both are written in.
pub const FORMAT: u8 = 1;
const HEADER: usize = 4 + 1 + 8;
const NONCE: usize = 12;
const TAG: usize = 16;
/// The size of a sealed key.
pub const BLOB_LEN: usize = HEADER + NONCE + 32 + TAG;
/// The most keys a manifest lists.
pub const MAX_ENTRIES: usize = 4096;

/// Why a sealed object was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// Shorter or longer than such an object can be.
    Truncated,
    /// Not a sealed object of this kind and format (its first bytes are wrong).
    NotSealed,
    /// Authentication failed: the bytes were altered, or the object was sealed for another
    /// owner, label or version (swapped between clients, renamed), or under another key.
    Forged,
    /// It opened, but its version is not the one the manifest lists: an older copy.
    Stale {
        /// The blob's version.
        found: u64,
        /// The version the manifest lists.
        listed: u64,
    },
    /// It opened, but the manifest does not list it (a deleted key brought back).
    Unlisted,
    /// The manifest's list does not parse (only possible under the sealing key: a bug).
    Malformed,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Truncated => f.write_str("truncated: not the size of a sealed object"),
            SealError::NotSealed => f.write_str("not a sealed object (bad magic or format)"),
            SealError::Forged => f.write_str(
                "authentication failed: altered, or sealed for another owner, name or version",
            ),
            SealError::Stale { found, listed } => write!(
                f,
                "stale: version {found}, the manifest lists version {listed} (an older copy)"
            ),
            SealError::Unlisted => f.write_str("not in the manifest (a deleted key, replayed)"),
            SealError::Malformed => f.write_str("the manifest's contents do not parse"),
        }
    }
}

/// The key everything is sealed under. Erased when dropped.
pub struct SealingKey(Zeroizing<[u8; 32]>);

impl SealingKey {
    /// The sealing key of a key store whose description seed is `seed`: the first 32 bytes of
    /// SHA-512 over a label of its own and the seed, so it is unrelated to the generator the
    /// same seed feeds (entropy.rs) and the same for every boot of the same image.
    pub fn derive(seed: &[u8; 32]) -> SealingKey {
        let mut hash = Sha512::new();
        hash.update(b"tessera keystore sealing key v1");
        hash.update(seed);
        let mut digest: [u8; 64] = hash.finalize().into();
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&digest[..32]);
        digest.zeroize();
        SealingKey(key)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&*self.0))
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

fn header(magic: [u8; 4], counter: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(&magic);
    h[4] = FORMAT;
    h[5..].copy_from_slice(&counter.to_le_bytes());
    h
}

/// The associated data of a blob: a label of its own, its header (so the version is bound),
/// then the owner and the key's label, each with its length.
fn blob_data(header: &[u8; HEADER], owner: Name, label: Name) -> Vec<u8> {
    let mut ad = Vec::with_capacity(64 + HEADER);
    ad.extend_from_slice(b"tessera keystore blob v1");
    ad.extend_from_slice(header);
    for name in [owner, label] {
        ad.push(name.len() as u8);
        ad.extend_from_slice(name.as_bytes());
    }
    ad
}

/// Seals secret `seed` of `owner`'s key `label`, at `version`.
pub fn seal_blob(
    key: &SealingKey,
    rng: &mut (impl RngCore + CryptoRng),
    owner: Name,
    label: Name,
    version: u64,
    seed: &[u8; 32],
) -> [u8; BLOB_LEN] {
    let head = header(BLOB_MAGIC, version);
    let mut nonce = [0u8; NONCE];
    rng.fill_bytes(&mut nonce);
    let mut body = Zeroizing::new(*seed);
    let tag = key
        .cipher()
        .encrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            &blob_data(&head, owner, label),
            &mut *body,
        )
        .expect("32 bytes are within ChaCha20-Poly1305's limit");
    let mut out = [0u8; BLOB_LEN];
    out[..HEADER].copy_from_slice(&head);
    out[HEADER..HEADER + NONCE].copy_from_slice(&nonce);
    out[HEADER + NONCE..HEADER + NONCE + 32].copy_from_slice(&*body);
    out[HEADER + NONCE + 32..].copy_from_slice(&tag);
    out
}

/// Opens a blob that should hold `owner`'s key `label`: its version and the secret.
pub fn open_blob(
    key: &SealingKey,
    bytes: &[u8],
    owner: Name,
    label: Name,
) -> Result<(u64, Zeroizing<[u8; 32]>), SealError> {
    if bytes.len() != BLOB_LEN {
        // A blob cut short (or too short to tell) is truncated; other sizes are not a blob.
        let magic = bytes.len() >= 4 && bytes[..4] == BLOB_MAGIC;
        return Err(if magic || bytes.len() < HEADER {
            SealError::Truncated
        } else {
            SealError::NotSealed
        });
    }
    let mut head = [0u8; HEADER];
    head.copy_from_slice(&bytes[..HEADER]);
    if head[..4] != BLOB_MAGIC || head[4] != FORMAT {
        return Err(SealError::NotSealed);
    }
    let version = u64::from_le_bytes(head[5..].try_into().expect("8 bytes"));
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&bytes[HEADER + NONCE..HEADER + NONCE + 32]);
    key.cipher()
        .decrypt_in_place_detached(
            Nonce::from_slice(&bytes[HEADER..HEADER + NONCE]),
            &blob_data(&head, owner, label),
            &mut *secret,
            Tag::from_slice(&bytes[HEADER + NONCE + 32..]),
        )
        .map_err(|_| SealError::Forged)?;
    Ok((version, secret))
}

/// One key as the manifest lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The owner's component name.
    pub owner: Name,
    /// The key's label.
    pub label: Name,
    /// The version of its blob.
    pub version: u64,
}

/// The list of every sealed key and the counter of changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Goes up by one with every change; the version of the newest blob.
    pub counter: u64,
    /// Every key that has a blob.
    pub entries: Vec<Listed>,
}

impl Manifest {
    /// The listing of `owner`'s key `label`.
    pub fn find(&self, owner: Name, label: Name) -> Option<&Listed> {
        self.entries
            .iter()
            .find(|e| e.owner == owner && e.label == label)
    }

    /// Checks a blob that opened as version `version` of `owner`'s `label` against the list.
    pub fn check(&self, owner: Name, label: Name, version: u64) -> Result<(), SealError> {
        match self.find(owner, label) {
            None => Err(SealError::Unlisted),
            Some(l) if l.version != version => Err(SealError::Stale {
                found: version,
                listed: l.version,
            }),
            Some(_) => Ok(()),
        }
    }

    /// Seals the manifest (its counter in the clear, bound as associated data).
    pub fn seal(&self, key: &SealingKey, rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
        let head = header(MANIFEST_MAGIC, self.counter);
        let mut body = Vec::with_capacity(4 + self.entries.len() * 48);
        body.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            for name in [e.owner, e.label] {
                body.push(name.len() as u8);
                body.extend_from_slice(name.as_bytes());
            }
            body.extend_from_slice(&e.version.to_le_bytes());
        }
        let mut nonce = [0u8; NONCE];
        rng.fill_bytes(&mut nonce);
        let tag = key
            .cipher()
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &manifest_data(&head), &mut body)
            .expect("a manifest is within ChaCha20-Poly1305's limit");
        let mut out = Vec::with_capacity(HEADER + NONCE + body.len() + TAG);
        out.extend_from_slice(&head);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        out.extend_from_slice(&tag);
        out
    }

    /// Opens a sealed manifest.
    pub fn open(key: &SealingKey, bytes: &[u8]) -> Result<Manifest, SealError> {
        if bytes.len() < HEADER + NONCE + 4 + TAG {
            return Err(SealError::Truncated);
        }
        let mut head = [0u8; HEADER];
        head.copy_from_slice(&bytes[..HEADER]);
        if head[..4] != MANIFEST_MAGIC || head[4] != FORMAT {
            return Err(SealError::NotSealed);
        }
        let counter = u64::from_le_bytes(head[5..].try_into().expect("8 bytes"));
        let (sealed, tag) = bytes[HEADER + NONCE..].split_at(bytes.len() - HEADER - NONCE - TAG);
        let mut body = sealed.to_vec();
        key.cipher()
            .decrypt_in_place_detached(
                Nonce::from_slice(&bytes[HEADER..HEADER + NONCE]),
                &manifest_data(&head),
                &mut body,
                Tag::from_slice(tag),
            )
            .map_err(|_| SealError::Forged)?;
        parse_entries(&body).map(|entries| Manifest { counter, entries })
    }
}

fn manifest_data(header: &[u8; HEADER]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(32 + HEADER);
    ad.extend_from_slice(b"tessera keystore manifest v1");
    ad.extend_from_slice(header);
    ad
}

fn parse_entries(body: &[u8]) -> Result<Vec<Listed>, SealError> {
    let bad = SealError::Malformed;
    let (count, mut rest) = body.split_at_checked(4).ok_or(bad)?;
    let count = u32::from_le_bytes(count.try_into().map_err(|_| bad)?) as usize;
    if count > MAX_ENTRIES {
        return Err(bad);
    }
    let name = |rest: &mut &[u8]| -> Result<Name, SealError> {
        let (&len, tail) = rest.split_first().ok_or(bad)?;
        let (text, tail) = tail.split_at_checked(usize::from(len)).ok_or(bad)?;
        *rest = tail;
        core::str::from_utf8(text)
            .ok()
            .and_then(|t| Name::new(t).ok())
            .ok_or(bad)
    };
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let owner = name(&mut rest)?;
        let label = name(&mut rest)?;
        let (version, tail) = rest.split_at_checked(8).ok_or(bad)?;
        rest = tail;
        let version = u64::from_le_bytes(version.try_into().map_err(|_| bad)?);
        entries.push(Listed {
            owner,
            label,
            version,
        });
    }
    if rest.is_empty() {
        Ok(entries)
    } else {
        Err(bad)
    }
}

#[cfg(test)]
mod tests;
