//! Sealed keys in a directory of the library OS's file API ([`libos_core::fs`]): the
//! [`Backing`] that makes keys outlive a restart of the key store.
//!
//! The directory (the description's `store` argument) holds one file per key,
//! `OWNER.LABEL.key`, a blob sealed by [`seal`](crate::seal), and `manifest`, the sealed list
//! of keys with their versions. Whatever backend the [`Files`] has stores only ciphertext: on
//! the host it is a directory (tests), on seL4 the `fs` service.
//!
//! Writes are ordered so that a crash loses at most the change in progress: a new key's blob
//! is written (and synced) before the manifest that lists it; the manifest is written to
//! `manifest.new`, synced and renamed over `manifest`; a deleted key leaves the manifest
//! before its blob is removed. A blob the manifest does not list is refused at load.
//!
//! Owners are named by their component name (the `clients` argument maps runtime ids to
//! names), so a key follows its client across restarts of either side and reboots.

use crate::backing::{Backing, BackingError};
use crate::seal::{self, Listed, Manifest, SealError, SealingKey};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use libos_core::fs::{Backend, Error as FsError, Files};
use proto::{ComponentId, Name};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// The manifest's file name in the directory.
pub const MANIFEST: &str = "manifest";
/// Where a new manifest is written before it replaces the old one.
pub const MANIFEST_NEW: &str = "manifest.new";
/// The ending of a key's file name.
pub const KEY_SUFFIX: &str = ".key";

/// Why a file of the directory was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The sealing layer refused it.
    Sealed(SealError),
    /// The file service failed to read it.
    Read(FsError),
    /// Its name is not `OWNER.LABEL.key` with two valid names.
    BadName,
    /// Its owner is not one of the key store's clients.
    UnknownOwner,
    /// The manifest lists this key but its blob is not there.
    Missing,
    /// There is no manifest, so no blob can be checked against it.
    NoManifest,
    /// The manifest itself was refused, so no blob can be checked against it.
    ManifestRefused,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Sealed(e) => e.fmt(f),
            Refusal::Read(e) => write!(f, "cannot read it: {e}"),
            Refusal::BadName => f.write_str("not a key file name (OWNER.LABEL.key)"),
            Refusal::UnknownOwner => f.write_str("its owner is not a client of this key store"),
            Refusal::Missing => f.write_str("listed in the manifest, but its blob is missing"),
            Refusal::NoManifest => f.write_str("there is no manifest to check it against"),
            Refusal::ManifestRefused => {
                f.write_str("the manifest was refused, so nothing can be checked against it")
            }
        }
    }
}

/// One file (or manifest entry) that was not loaded, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Its file name in the directory.
    pub file: String,
    /// Why.
    pub why: Refusal,
}

/// One key that was loaded.
pub struct LoadedKey {
    /// Its owner.
    pub owner: ComponentId,
    /// Its label.
    pub label: Name,
    /// Its secret, erased when dropped.
    pub seed: Zeroizing<[u8; 32]>,
}

/// What [`Sealed::open`] found.
#[derive(Default)]
pub struct Loaded {
    /// The keys that opened and match the manifest.
    pub keys: Vec<LoadedKey>,
    /// Everything refused, one entry per file, in name order.
    pub refused: Vec<Refused>,
}

/// The directory could not be used at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenError(pub FsError);

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the key directory: {}", self.0)
    }
}

/// Keys sealed into a directory of a [`Files`].
pub struct Sealed<B, R> {
    files: Files<B>,
    dir: String,
    key: SealingKey,
    rng: R,
    clients: Vec<(ComponentId, Name)>,
    manifest: Manifest,
    reattach: Option<Reattach<B>>,
}

/// Makes a new [`Files`] when the file service restarted (on seL4: attach to `fs` again).
pub type Reattach<B> = Box<dyn FnMut() -> Result<Files<B>, FsError>>;

/// The name of `owner`'s key `label`'s file.
pub fn key_file(owner: Name, label: Name) -> String {
    format!("{}.{}{KEY_SUFFIX}", owner.as_str(), label.as_str())
}

/// The owner and label a key file's name gives, if it is one.
pub fn parse_key_file(file: &str) -> Option<(Name, Name)> {
    let stem = file.strip_suffix(KEY_SUFFIX)?;
    let (owner, label) = stem.split_once('.')?;
    Some((Name::new(owner).ok()?, Name::new(label).ok()?))
}

impl<B: Backend, R: RngCore + CryptoRng> Sealed<B, R> {
    /// Opens directory `dir` of `files` (creating it if missing) and unseals every key in it
    /// with `key`. `clients` names each client's component; `rng` makes nonces. A file that
    /// does not open, or does not match the manifest, is refused and listed in
    /// [`Loaded::refused`]; loading goes on with the others.
    pub fn open(
        mut files: Files<B>,
        dir: &str,
        key: SealingKey,
        rng: R,
        clients: Vec<(ComponentId, Name)>,
    ) -> Result<(Self, Loaded), OpenError> {
        let dir = String::from(dir.trim_end_matches('/'));
        match files.mkdir(&dir) {
            Ok(()) | Err(FsError::Exists) => {}
            Err(e) => return Err(OpenError(e)),
        }
        let mut entries = files.readdir(&dir).map_err(OpenError)?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut loaded = Loaded::default();
        let (manifest, manifest_refusal) = match files.read_file(&format!("{dir}/{MANIFEST}")) {
            Ok(bytes) => match Manifest::open(&key, &bytes) {
                Ok(m) => (Some(m), None),
                Err(e) => {
                    loaded.refused.push(Refused {
                        file: String::from(MANIFEST),
                        why: Refusal::Sealed(e),
                    });
                    (None, Some(Refusal::ManifestRefused))
                }
            },
            Err(FsError::NotFound) => (None, Some(Refusal::NoManifest)),
            Err(e) => {
                loaded.refused.push(Refused {
                    file: String::from(MANIFEST),
                    why: Refusal::Read(e),
                });
                (None, Some(Refusal::ManifestRefused))
            }
        };
        let mut newest = manifest.as_ref().map_or(0, |m| m.counter);
        let mut present: Vec<(Name, Name)> = Vec::new();
        let mut accepted: Vec<(Name, Name)> = Vec::new();
        for entry in &entries {
            let file = entry.name.as_str();
            if file == MANIFEST {
                continue;
            }
            if file == MANIFEST_NEW {
                // The leftover of a manifest write that did not finish: the old one stands.
                let _ = files.unlink(&format!("{dir}/{MANIFEST_NEW}"));
                continue;
            }
            let refuse = |why| Refused {
                file: String::from(file),
                why,
            };
            let Some((owner_name, label)) = parse_key_file(file) else {
                loaded.refused.push(refuse(Refusal::BadName));
                continue;
            };
            present.push((owner_name, label));
            let Some(owner) = clients
                .iter()
                .find(|(_, n)| *n == owner_name)
                .map(|(id, _)| *id)
            else {
                loaded.refused.push(refuse(Refusal::UnknownOwner));
                continue;
            };
            let bytes = match files.read_file(&format!("{dir}/{file}")) {
                Ok(b) => b,
                Err(e) => {
                    loaded.refused.push(refuse(Refusal::Read(e)));
                    continue;
                }
            };
            let (version, secret) = match seal::open_blob(&key, &bytes, owner_name, label) {
                Ok(v) => v,
                Err(e) => {
                    loaded.refused.push(refuse(Refusal::Sealed(e)));
                    continue;
                }
            };
            // An authentic blob: its version is one this store made, so later versions start
            // above it even when the manifest is gone.
            newest = newest.max(version);
            let checked = match (&manifest, manifest_refusal.clone()) {
                (Some(m), _) => m.check(owner_name, label, version).map_err(Refusal::Sealed),
                (None, why) => Err(why.unwrap_or(Refusal::NoManifest)),
            };
            match checked {
                Ok(()) => {
                    accepted.push((owner_name, label));
                    loaded.keys.push(LoadedKey {
                        owner,
                        label,
                        seed: secret,
                    });
                }
                Err(why) => loaded.refused.push(refuse(why)),
            }
        }
        let mut kept = Manifest {
            counter: newest,
            entries: Vec::new(),
        };
        if let Some(m) = &manifest {
            for l in &m.entries {
                if accepted.contains(&(l.owner, l.label)) {
                    kept.entries.push(*l);
                } else if !present.contains(&(l.owner, l.label)) {
                    // (A listed blob that is present but refused was reported above; it leaves
                    // the list when the manifest is next written.)
                    loaded.refused.push(Refused {
                        file: key_file(l.owner, l.label),
                        why: Refusal::Missing,
                    });
                }
            }
        }
        Ok((
            Sealed {
                files,
                dir,
                key,
                rng,
                clients,
                manifest: kept,
                reattach: None,
            },
            loaded,
        ))
    }

    /// Gives the way to attach again: a change that fails because the file service restarted
    /// ([`FsError::ServerRestarted`]) attaches again and is made again, once.
    pub fn set_reattach(&mut self, reattach: Reattach<B>) {
        self.reattach = Some(reattach);
    }

    /// Runs `change`; if the file service restarted under it, attaches again and runs it once
    /// more.
    fn retrying(
        &mut self,
        mut change: impl FnMut(&mut Self) -> Result<(), BackingError>,
    ) -> Result<(), BackingError> {
        match change(self) {
            Err(BackingError::Storage(FsError::ServerRestarted)) => {
                let Some(reattach) = self.reattach.as_mut() else {
                    return Err(BackingError::Storage(FsError::ServerRestarted));
                };
                self.files = reattach().map_err(BackingError::Storage)?;
                change(self)
            }
            other => other,
        }
    }

    /// The list of keys as it will next be written.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The file API underneath (tests look at the files through it).
    pub fn files(&mut self) -> &mut Files<B> {
        &mut self.files
    }

    fn name_of(&self, owner: ComponentId) -> Result<Name, BackingError> {
        self.clients
            .iter()
            .find(|(id, _)| *id == owner)
            .map(|(_, n)| *n)
            .ok_or(BackingError::UnknownOwner)
    }

    /// Seals and writes `manifest`, replacing the stored one.
    fn write_manifest(&mut self, manifest: &Manifest) -> Result<(), BackingError> {
        let bytes = manifest.seal(&self.key, &mut self.rng);
        let new = format!("{}/{MANIFEST_NEW}", self.dir);
        self.files
            .write_file(&new, &bytes)
            .map_err(BackingError::Storage)?;
        self.files
            .rename(&new, &format!("{}/{MANIFEST}", self.dir))
            .map_err(BackingError::Storage)
    }
}

impl<B: Backend, R: RngCore + CryptoRng> Sealed<B, R> {
    fn try_added(
        &mut self,
        owner: ComponentId,
        label: Name,
        seed: &[u8; 32],
    ) -> Result<(), BackingError> {
        let owner = self.name_of(owner)?;
        let version = self.manifest.counter + 1;
        let blob = Zeroizing::new(seal::seal_blob(
            &self.key,
            &mut self.rng,
            owner,
            label,
            version,
            seed,
        ));
        let path = format!("{}/{}", self.dir, key_file(owner, label));
        self.files
            .write_file(&path, &*blob)
            .map_err(BackingError::Storage)?;
        let mut next = self.manifest.clone();
        next.counter = version;
        next.entries
            .retain(|l| !(l.owner == owner && l.label == label));
        next.entries.push(Listed {
            owner,
            label,
            version,
        });
        if let Err(e) = self.write_manifest(&next) {
            // Not listed, so it would be refused at load anyway; remove it if we can.
            let _ = self.files.unlink(&path);
            return Err(e);
        }
        self.manifest = next;
        Ok(())
    }

    fn try_removed(&mut self, owner: ComponentId, label: Name) -> Result<(), BackingError> {
        let owner = self.name_of(owner)?;
        let mut next = self.manifest.clone();
        next.counter += 1;
        next.entries
            .retain(|l| !(l.owner == owner && l.label == label));
        self.write_manifest(&next)?;
        self.manifest = next;
        // The manifest no longer lists it, so the blob is refused at load even if it stays.
        let _ = self
            .files
            .unlink(&format!("{}/{}", self.dir, key_file(owner, label)));
        Ok(())
    }
}

impl<B: Backend, R: RngCore + CryptoRng> Backing for Sealed<B, R> {
    fn added(
        &mut self,
        owner: ComponentId,
        _handle: u64,
        label: Name,
        seed: &[u8; 32],
    ) -> Result<(), BackingError> {
        self.retrying(|me| me.try_added(owner, label, seed))
    }

    fn removed(
        &mut self,
        owner: ComponentId,
        _handle: u64,
        label: Name,
    ) -> Result<(), BackingError> {
        self.retrying(|me| me.try_removed(owner, label))
    }
}

#[cfg(test)]
mod tests;
