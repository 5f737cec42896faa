//! Where keys are kept beyond the store's memory.

use proto::{ComponentId, Name};

/// Keeps a copy of each key outside the store, so that keys can outlive a restart. The store
/// tells it of every key generated and deleted; a sealing implementation encrypts each key for
/// untrusted storage. Nothing implements that yet: [`Volatile`] keeps nothing.
pub trait Backing {
    /// Key `handle` of `owner`, labelled `label`, with secret `seed`, was generated.
    fn added(&mut self, owner: ComponentId, handle: u64, label: Name, seed: &[u8; 32]);
    /// Key `handle` of `owner` was deleted.
    fn removed(&mut self, owner: ComponentId, handle: u64);
}

/// Keeps nothing: keys live only in the store's memory and are lost when it restarts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Volatile;

impl Backing for Volatile {
    fn added(&mut self, _: ComponentId, _: u64, _: Name, _: &[u8; 32]) {}
    fn removed(&mut self, _: ComponentId, _: u64) {}
}
