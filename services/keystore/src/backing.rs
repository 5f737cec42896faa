//! Where keys are kept beyond the store's memory.

use core::fmt;
use libos_core::fs::Error as FsError;
use proto::{ComponentId, Name};

/// Why the backing could not keep a change. The store then leaves its memory as it was and
/// answers the client `Exhausted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackingError {
    /// The owner has no component name to seal its keys under (not in `clients`).
    UnknownOwner,
    /// The storage refused a write.
    Storage(FsError),
}

impl fmt::Display for BackingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackingError::UnknownOwner => f.write_str("the owner is not a named client"),
            BackingError::Storage(e) => write!(f, "storage: {e}"),
        }
    }
}

/// Keeps a copy of each key outside the store, so that keys can outlive a restart. The store
/// tells it of every key generated and deleted before it changes its memory: an error leaves
/// the store as it was. [`Volatile`] keeps nothing; [`Sealed`](crate::persist::Sealed) seals
/// each key into a directory of the file API.
pub trait Backing {
    /// Key `handle` of `owner`, labelled `label`, with secret `seed`, is being generated.
    fn added(
        &mut self,
        owner: ComponentId,
        handle: u64,
        label: Name,
        seed: &[u8; 32],
    ) -> Result<(), BackingError>;
    /// Key `handle` of `owner`, labelled `label`, is being deleted.
    fn removed(&mut self, owner: ComponentId, handle: u64, label: Name)
        -> Result<(), BackingError>;
}

impl<B: Backing + ?Sized> Backing for alloc::boxed::Box<B> {
    fn added(
        &mut self,
        owner: ComponentId,
        handle: u64,
        label: Name,
        seed: &[u8; 32],
    ) -> Result<(), BackingError> {
        (**self).added(owner, handle, label, seed)
    }
    fn removed(
        &mut self,
        owner: ComponentId,
        handle: u64,
        label: Name,
    ) -> Result<(), BackingError> {
        (**self).removed(owner, handle, label)
    }
}

/// Keeps nothing: keys live only in the store's memory and are lost when it restarts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Volatile;

impl Backing for Volatile {
    fn added(&mut self, _: ComponentId, _: u64, _: Name, _: &[u8; 32]) -> Result<(), BackingError> {
        Ok(())
    }
    fn removed(&mut self, _: ComponentId, _: u64, _: Name) -> Result<(), BackingError> {
        Ok(())
    }
}
