//! The key store interface: Ed25519 keys that never leave the server, scoped to the client
//! that made them.
//!
//! Least authority: every key belongs to the client (badge) that generated it. A handle of
//! another client's key, a handle that never existed and one that was deleted all get the same
//! `NotFound`, and `list` shows a client only its own keys, so a client cannot use, list or
//! learn of anyone else's. There is no operation that returns a secret. Handles carry the
//! server's instance: one from before a restart gets `ServerRestarted`.

use crate::codec::{DecodeError, Field, Reader, Writer};
use crate::types::{packed_words, put_packed, take_packed};
use crate::Name;
use core::fmt;
use core::ops::Deref;

/// The most bytes one `sign` request carries: what fits a message beside the handle and the
/// length word (14 words). A server may set a lower limit per client (`TooLarge`).
pub const MAX_MESSAGE: usize = (crate::MAX_WORDS - 2) * 8;

/// The bytes to sign: 0..=[`MAX_MESSAGE`] of them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    len: u8,
    data: [u8; MAX_MESSAGE],
}

impl Payload {
    /// A copy of `data`, or `None` if it is longer than [`MAX_MESSAGE`].
    pub fn new(data: &[u8]) -> Option<Payload> {
        let mut p = Payload {
            len: 0,
            data: [0; MAX_MESSAGE],
        };
        p.data.get_mut(..data.len())?.copy_from_slice(data);
        p.len = data.len() as u8;
        Some(p)
    }
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.len)
    }
}

impl Field for Payload {
    const MAX_WORDS: usize = packed_words(MAX_MESSAGE);
    fn put(&self, w: &mut Writer) {
        put_packed(w, self);
    }
    fn take(r: &mut Reader<'_>) -> Result<Payload, DecodeError> {
        let mut p = Payload {
            len: 0,
            data: [0; MAX_MESSAGE],
        };
        p.len = take_packed(r, &mut p.data)? as u8;
        Ok(p)
    }
}

/// Writes `bytes` (a multiple of 8 long) as little-endian words.
fn put_fixed(w: &mut Writer, bytes: &[u8]) {
    for chunk in bytes.chunks_exact(8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        w.word(u64::from_le_bytes(b));
    }
}

/// Reads `out.len()` / 8 little-endian words into `out`.
fn take_fixed(r: &mut Reader<'_>, out: &mut [u8]) -> Result<(), DecodeError> {
    for chunk in out.chunks_exact_mut(8) {
        chunk.copy_from_slice(&r.word()?.to_le_bytes());
    }
    Ok(())
}

/// An Ed25519 public key: the 32-byte compressed point (RFC 8032).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(pub [u8; 32]);

impl Field for PublicKey {
    const MAX_WORDS: usize = 4;
    fn put(&self, w: &mut Writer) {
        put_fixed(w, &self.0);
    }
    fn take(r: &mut Reader<'_>) -> Result<PublicKey, DecodeError> {
        let mut b = [0; 32];
        take_fixed(r, &mut b)?;
        Ok(PublicKey(b))
    }
}

/// An Ed25519 signature: 64 bytes (R, then S; RFC 8032).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Field for Signature {
    const MAX_WORDS: usize = 8;
    fn put(&self, w: &mut Writer) {
        put_fixed(w, &self.0);
    }
    fn take(r: &mut Reader<'_>) -> Result<Signature, DecodeError> {
        let mut b = [0; 64];
        take_fixed(r, &mut b)?;
        Ok(Signature(b))
    }
}

crate::record! {
    /// One of the caller's keys, as `list` shows it.
    pub struct KeyInfo {
        /// The key's handle.
        pub handle: u64,
        /// The label it was generated with.
        pub label: Name,
    }
}

crate::interface! {
    client KeystoreClient;
    errors {
        /// No key with that handle or label belongs to the caller: it never existed, was
        /// deleted, or is another client's (all alike).
        NotFound = 16,
        /// The caller already holds as many keys as the description allows it.
        Full = 17,
        /// The message is longer than the caller's limit.
        TooLarge = 18,
        /// The caller already has a key with that label.
        Exists = 19,
        /// `list`: the index is past the caller's last key.
        NoEntry = 20,
        /// The store as a whole has no room (its memory), whatever the caller's own limit, or
        /// its sealed storage refused the change (nothing was changed).
        Exhausted = 21,
    }
    ops {
        /// Generates a new key labelled `label`, owned by the caller.
        ///
        /// `Ok(handle)`; `Err(Full)` at the caller's key limit; `Err(Exists)` if the caller
        /// has a key with that label; `Err(Exhausted)` if the store is out of room.
        Generate = 1 => fn generate(label: Name) -> u64;
        /// The public half of the caller's key `handle`.
        ///
        /// `Ok(key)`; `Err(NotFound)`; `Err(ServerRestarted)` for a handle of an earlier
        /// instance.
        PublicKey = 2 => fn public_key(handle: u64) -> PublicKey;
        /// Signs `message` (pure Ed25519, RFC 8032) with the caller's key `handle`. Longer
        /// data is signed by signing its digest.
        ///
        /// `Ok(signature)`; `Err(NotFound)`; `Err(TooLarge)` past the caller's message
        /// limit; `Err(ServerRestarted)`.
        Sign = 3 => fn sign(handle: u64, message: Payload) -> Signature;
        /// The caller's `index`th key (in the order they were generated).
        ///
        /// `Ok(info)`; `Err(NoEntry)` past the last.
        List = 4 => fn list(index: u32) -> KeyInfo;
        /// Deletes the caller's key `handle`; its secret is erased.
        ///
        /// `Ok(())`; `Err(NotFound)`; `Err(ServerRestarted)`.
        Delete = 5 => fn delete(handle: u64) -> ();
        /// The handle of the caller's key labelled `label`.
        ///
        /// `Ok(handle)`; `Err(NotFound)`.
        Find = 6 => fn find(label: Name) -> u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Loopback, Message};

    struct Echo;

    impl Server for Echo {
        fn generate(&mut self, _: u64, label: Name) -> Result<u64, Error> {
            Ok(label.len() as u64)
        }
        fn public_key(&mut self, _: u64, handle: u64) -> Result<PublicKey, Error> {
            Ok(PublicKey([handle as u8; 32]))
        }
        fn sign(&mut self, _: u64, handle: u64, message: Payload) -> Result<Signature, Error> {
            let mut s = [handle as u8; 64];
            s[..message.len()].copy_from_slice(&message[..message.len().min(64)]);
            Ok(Signature(s))
        }
        fn list(&mut self, _: u64, _: u32) -> Result<KeyInfo, Error> {
            Err(Error::NoEntry)
        }
        fn delete(&mut self, _: u64, _: u64) -> Result<(), Error> {
            Err(Error::NotFound)
        }
        fn find(&mut self, _: u64, _: Name) -> Result<u64, Error> {
            Err(Error::NotFound)
        }
    }

    #[test]
    fn values_round_trip_through_a_client() {
        let mut server = Echo;
        let mut c = KeystoreClient::new(Loopback(|m: &Message| dispatch(&mut server, 5, m)));
        assert_eq!(c.generate(Name::new("abc").unwrap()), Ok(3));
        assert_eq!(c.public_key(7), Ok(PublicKey([7; 32])));
        let sig = c.sign(9, Payload::new(b"hello").unwrap()).unwrap();
        assert_eq!(&sig.0[..5], b"hello");
        assert_eq!(sig.0[5..], [9; 59]);
        assert_eq!(c.list(0), Err(Error::NoEntry));
    }

    #[test]
    fn a_full_payload_fits_one_message_and_one_more_byte_does_not() {
        assert!(Payload::new(&[1; MAX_MESSAGE]).is_some());
        assert!(Payload::new(&[1; MAX_MESSAGE + 1]).is_none());
        let m = Request::Sign {
            handle: 1,
            message: Payload::new(&[0xab; MAX_MESSAGE]).unwrap(),
        }
        .encode()
        .unwrap();
        assert_eq!(m.len(), crate::MAX_WORDS);
        // A length word claiming more bytes than fit is refused.
        let mut words = m.words().to_vec();
        words[1] = MAX_MESSAGE as u64 + 1;
        let bad = Message::with_words(Op::Sign as u64, &words).unwrap();
        assert_eq!(Request::decode(&bad), Err(Error::Malformed));
    }

    #[test]
    fn signatures_and_keys_need_every_word() {
        let ok = crate::codec::encode_reply::<Signature, Error>(&Ok(Signature([3; 64])));
        assert_eq!(ok.len(), 8);
        let short = Message::with_words(0, &ok.words()[..7]).unwrap();
        assert_eq!(
            crate::codec::decode_reply::<Signature, Error>(&short),
            Err(Error::InvalidReply)
        );
        let pk = crate::codec::encode_reply::<PublicKey, Error>(&Ok(PublicKey([4; 32])));
        assert_eq!(
            crate::codec::decode_reply::<PublicKey, Error>(&pk),
            Ok(PublicKey([4; 32]))
        );
    }
}
