//! The keys and the `proto::keystore` server over them.

use crate::backing::Backing;
use crate::config::Limits;
use alloc::vec::Vec;
use ed25519_dalek::{Signer, SigningKey};
use proto::keystore::{Error, KeyInfo, Payload, PublicKey, Server, Signature};
use proto::{ComponentId, Name};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// Bits of a handle drawn at random; the bits above are the store's instance.
const RANDOM_BITS: u32 = 48;
const RANDOM_MASK: u64 = (1 << RANDOM_BITS) - 1;

/// One key. `SigningKey` erases its secret when dropped (ed25519-dalek's `zeroize` feature).
struct Entry {
    owner: ComponentId,
    handle: u64,
    label: Name,
    key: SigningKey,
}

/// The key store: every key with its owner, the limits, the generator and the backing.
pub struct Store<R, B> {
    entries: Vec<Entry>,
    limits: Limits,
    instance: u16,
    rng: R,
    backing: B,
}

impl<R: RngCore + CryptoRng, B: Backing> Store<R, B> {
    /// An empty store. `instance` (the component's generation) goes into every handle, so a
    /// handle from an earlier instance is told apart (`ServerRestarted`).
    pub fn new(limits: Limits, instance: u16, rng: R, backing: B) -> Self {
        Store {
            entries: Vec::new(),
            limits,
            instance,
            rng,
            backing,
        }
    }

    /// How many keys the store holds, for every client together.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a key with secret `seed` for `owner`; the limits apply as to `generate`.
    pub fn insert(
        &mut self,
        owner: ComponentId,
        label: Name,
        seed: &[u8; 32],
    ) -> Result<u64, Error> {
        self.add(owner, label, seed, true)
    }

    /// Adds a key the backing already holds (loaded at start) without telling the backing;
    /// the limits apply as to `generate`.
    pub fn restore(
        &mut self,
        owner: ComponentId,
        label: Name,
        seed: &[u8; 32],
    ) -> Result<u64, Error> {
        self.add(owner, label, seed, false)
    }

    /// The backing.
    pub fn backing(&mut self) -> &mut B {
        &mut self.backing
    }

    /// The backing, to look at.
    pub fn backing_ref(&self) -> &B {
        &self.backing
    }

    fn add(
        &mut self,
        owner: ComponentId,
        label: Name,
        seed: &[u8; 32],
        tell: bool,
    ) -> Result<u64, Error> {
        let owned = self.entries.iter().filter(|e| e.owner == owner);
        let mut count = 0;
        for e in owned {
            if e.label == label {
                return Err(Error::Exists);
            }
            count += 1;
        }
        if count >= self.limits.max_keys {
            return Err(Error::Full);
        }
        if self.entries.len() >= self.limits.max_total || self.entries.try_reserve(1).is_err() {
            return Err(Error::Exhausted);
        }
        let handle = self.fresh_handle();
        if tell {
            // Kept outside first: a key the backing refused is not kept at all.
            self.backing
                .added(owner, handle, label, seed)
                .map_err(|_| Error::Exhausted)?;
        }
        self.entries.push(Entry {
            owner,
            handle,
            label,
            key: SigningKey::from_bytes(seed),
        });
        Ok(handle)
    }

    /// A handle no key has: this instance in the top bits, random non-zero bits below.
    fn fresh_handle(&mut self) -> u64 {
        loop {
            let low = self.rng.next_u64() & RANDOM_MASK;
            let handle = (u64::from(self.instance) << RANDOM_BITS) | low;
            if low != 0 && self.entries.iter().all(|e| e.handle != handle) {
                return handle;
            }
        }
    }

    /// The caller's key `handle`.
    fn owned(&self, badge: u64, handle: u64) -> Result<&Entry, Error> {
        if handle >> RANDOM_BITS != u64::from(self.instance) {
            return Err(Error::ServerRestarted);
        }
        let owner = proto::client(badge).ok_or(Error::NotFound)?;
        self.entries
            .iter()
            .find(|e| e.owner == owner && e.handle == handle)
            .ok_or(Error::NotFound)
    }
}

impl<R: RngCore + CryptoRng, B: Backing> Server for Store<R, B> {
    fn generate(&mut self, badge: u64, label: Name) -> Result<u64, Error> {
        let owner = proto::client(badge).ok_or(Error::NotFound)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        self.rng.fill_bytes(&mut *seed);
        self.insert(owner, label, &seed)
    }

    fn public_key(&mut self, badge: u64, handle: u64) -> Result<PublicKey, Error> {
        let entry = self.owned(badge, handle)?;
        Ok(PublicKey(entry.key.verifying_key().to_bytes()))
    }

    fn sign(&mut self, badge: u64, handle: u64, message: Payload) -> Result<Signature, Error> {
        let max_message = self.limits.max_message;
        let entry = self.owned(badge, handle)?;
        if message.len() > max_message {
            return Err(Error::TooLarge);
        }
        Ok(Signature(entry.key.sign(&message).to_bytes()))
    }

    fn list(&mut self, badge: u64, index: u32) -> Result<KeyInfo, Error> {
        let owner = proto::client(badge).ok_or(Error::NoEntry)?;
        let entry = self
            .entries
            .iter()
            .filter(|e| e.owner == owner)
            .nth(index as usize)
            .ok_or(Error::NoEntry)?;
        Ok(KeyInfo {
            handle: entry.handle,
            label: entry.label,
        })
    }

    fn delete(&mut self, badge: u64, handle: u64) -> Result<(), Error> {
        let entry = self.owned(badge, handle)?;
        let (owner, label) = (entry.owner, entry.label);
        // Removed outside first: a key the backing still holds stays usable here too.
        self.backing
            .removed(owner, handle, label)
            .map_err(|_| Error::Exhausted)?;
        self.entries
            .retain(|e| !(e.owner == owner && e.handle == handle));
        Ok(())
    }

    fn find(&mut self, badge: u64, label: Name) -> Result<u64, Error> {
        let owner = proto::client(badge).ok_or(Error::NotFound)?;
        self.entries
            .iter()
            .find(|e| e.owner == owner && e.label == label)
            .map(|e| e.handle)
            .ok_or(Error::NotFound)
    }
}

#[cfg(test)]
mod tests;
