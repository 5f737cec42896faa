//! The sealed directory over the hosted backend (a temporary host directory): keys survive a
//! "restart" (a new store over the same directory), and each way of tampering with the files
//! is refused and reported while the other keys load.

extern crate std;

use super::*;
use crate::entropy::Rng;
use crate::{Limits, Store};
use alloc::string::ToString;
use alloc::vec;
use libos_hosted::files::HostFiles;
use proto::keystore::{Error, Server};
use rand_chacha::rand_core::SeedableRng;
use std::path::PathBuf;

const SIGNER: ComponentId = ComponentId(6);
const VERIFIER: ComponentId = ComponentId(7);
const STRANGER: ComponentId = ComponentId(9);

fn badge(id: ComponentId) -> u64 {
    u64::from(id.0) + 1
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn clients() -> Vec<(ComponentId, Name)> {
    vec![(SIGNER, name("signer")), (VERIFIER, name("verifier"))]
}

/// A fresh host directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("tessera-keystore-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    /// The host path of file `file` of the key directory.
    fn file(&self, file: &str) -> PathBuf {
        self.0.join("keys").join(file)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type Keys = Store<Rng, Sealed<HostFiles, Rng>>;

/// A key store over `dir` as it starts: loads the directory, restores what loaded.
fn start(dir: &Dir, run: u64) -> (Keys, Vec<Refused>) {
    let files = Files::new(HostFiles::open(&dir.0).unwrap());
    let (sealed, loaded) = Sealed::open(
        files,
        "/keys",
        SealingKey::derive(&[3; 32]),
        Rng::seed_from_u64(100 + run),
        clients(),
    )
    .unwrap();
    let mut store = Store::new(
        Limits::default(),
        run as u16,
        Rng::seed_from_u64(run),
        sealed,
    );
    for k in &loaded.keys {
        store.restore(k.owner, k.label, &k.seed).unwrap();
    }
    (store, loaded.refused)
}

fn public(store: &mut Keys, owner: ComponentId, label: &str) -> Option<[u8; 32]> {
    let h = store.find(badge(owner), name(label)).ok()?;
    Some(store.public_key(badge(owner), h).unwrap().0)
}

fn refusals(refused: &[Refused]) -> Vec<(String, Refusal)> {
    refused
        .iter()
        .map(|r| (r.file.clone(), r.why.clone()))
        .collect()
}

/// Two clients with a key each (the signer two), as the first boot leaves them.
fn first_boot(dir: &Dir) -> [[u8; 32]; 3] {
    let (mut s, refused) = start(dir, 1);
    assert!(refused.is_empty());
    for (owner, label) in [
        (SIGNER, "signing"),
        (SIGNER, "backup"),
        (VERIFIER, "verifying"),
    ] {
        s.generate(badge(owner), name(label)).unwrap();
    }
    [
        public(&mut s, SIGNER, "signing").unwrap(),
        public(&mut s, SIGNER, "backup").unwrap(),
        public(&mut s, VERIFIER, "verifying").unwrap(),
    ]
}

#[test]
fn keys_survive_a_restart_and_stay_with_their_owner() {
    let dir = Dir::new("restart");
    let [signing, backup, verifying] = first_boot(&dir);
    let (mut s, refused) = start(&dir, 2);
    assert_eq!(refusals(&refused), vec![]);
    assert_eq!(s.len(), 3);
    assert_eq!(public(&mut s, SIGNER, "signing"), Some(signing));
    assert_eq!(public(&mut s, SIGNER, "backup"), Some(backup));
    assert_eq!(public(&mut s, VERIFIER, "verifying"), Some(verifying));
    // Still each client's own.
    assert_eq!(public(&mut s, VERIFIER, "signing"), None);
    // The files hold no secret in the clear and no public key either.
    for file in ["signer.signing.key", "verifier.verifying.key", MANIFEST] {
        let bytes = std::fs::read(dir.file(file)).unwrap();
        assert!(!bytes.windows(8).any(|w| w == &signing[..8]), "{file}");
    }
    // A deletion survives too.
    let h = s.find(badge(SIGNER), name("backup")).unwrap();
    s.delete(badge(SIGNER), h).unwrap();
    assert!(!dir.file("signer.backup.key").exists());
    drop(s);
    let (mut s, refused) = start(&dir, 3);
    assert!(refused.is_empty());
    assert_eq!(s.len(), 2);
    assert_eq!(public(&mut s, SIGNER, "backup"), None);
    assert_eq!(public(&mut s, SIGNER, "signing"), Some(signing));
}

#[test]
fn an_altered_byte_is_refused_and_the_others_load() {
    let dir = Dir::new("tampered");
    let [signing, _, verifying] = first_boot(&dir);
    let path = dir.file("signer.backup.key");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40] ^= 0x04;
    std::fs::write(&path, &bytes).unwrap();
    let (mut s, refused) = start(&dir, 2);
    assert_eq!(
        refusals(&refused),
        vec![(
            "signer.backup.key".to_string(),
            Refusal::Sealed(SealError::Forged)
        )]
    );
    assert_eq!(public(&mut s, SIGNER, "backup"), None);
    assert_eq!(public(&mut s, SIGNER, "signing"), Some(signing));
    assert_eq!(public(&mut s, VERIFIER, "verifying"), Some(verifying));
    // The report line says what happened.
    assert!(refused[0]
        .why
        .to_string()
        .starts_with("authentication failed"));
}

#[test]
fn a_blob_swapped_to_another_client_or_renamed_is_refused() {
    let dir = Dir::new("swapped");
    let [signing, _, _] = first_boot(&dir);
    // The signer's key put where the verifier's is: the verifier does not get it.
    std::fs::copy(
        dir.file("signer.signing.key"),
        dir.file("verifier.verifying.key"),
    )
    .unwrap();
    // A key renamed to another label of the same owner.
    std::fs::rename(dir.file("signer.backup.key"), dir.file("signer.other.key")).unwrap();
    let (mut s, refused) = start(&dir, 2);
    assert_eq!(
        refusals(&refused),
        vec![
            (
                "signer.other.key".to_string(),
                Refusal::Sealed(SealError::Forged)
            ),
            (
                "verifier.verifying.key".to_string(),
                Refusal::Sealed(SealError::Forged)
            ),
            ("signer.backup.key".to_string(), Refusal::Missing),
        ]
    );
    assert_eq!(s.len(), 1);
    assert_eq!(public(&mut s, SIGNER, "signing"), Some(signing));
    assert_eq!(public(&mut s, VERIFIER, "verifying"), None);
}

#[test]
fn an_older_version_mixed_in_is_refused() {
    let dir = Dir::new("replay");
    first_boot(&dir);
    let old = std::fs::read(dir.file("signer.signing.key")).unwrap();
    let old_backup = std::fs::read(dir.file("signer.backup.key")).unwrap();
    {
        // The signer replaces its key (delete, generate the same label) and drops its backup.
        let (mut s, _) = start(&dir, 2);
        let h = s.find(badge(SIGNER), name("signing")).unwrap();
        s.delete(badge(SIGNER), h).unwrap();
        s.generate(badge(SIGNER), name("signing")).unwrap();
        let h = s.find(badge(SIGNER), name("backup")).unwrap();
        s.delete(badge(SIGNER), h).unwrap();
    }
    let (mut s, _) = start(&dir, 3);
    let current = public(&mut s, SIGNER, "signing").unwrap();
    drop(s);
    // The storage puts back the older blobs, keeping the current manifest.
    std::fs::write(dir.file("signer.signing.key"), &old).unwrap();
    std::fs::write(dir.file("signer.backup.key"), &old_backup).unwrap();
    let (mut s, refused) = start(&dir, 4);
    let got = refusals(&refused);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0],
        (
            "signer.backup.key".to_string(),
            Refusal::Sealed(SealError::Unlisted)
        )
    );
    assert_eq!(got[1].0, "signer.signing.key");
    assert!(
        matches!(got[1].1, Refusal::Sealed(SealError::Stale { found, listed }) if found < listed),
        "{got:?}"
    );
    assert_eq!(public(&mut s, SIGNER, "signing"), None);
    assert_ne!(Some(current), None);
}

#[test]
fn replaying_the_whole_older_state_is_not_detected() {
    // Documented limit: an older manifest with the blobs of its time is consistent.
    let dir = Dir::new("whole");
    let [signing, _, _] = first_boot(&dir);
    let snapshot: Vec<(String, Vec<u8>)> = ["signer.signing.key", MANIFEST]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(dir.file(f)).unwrap()))
        .collect();
    {
        let (mut s, _) = start(&dir, 2);
        let h = s.find(badge(SIGNER), name("signing")).unwrap();
        s.delete(badge(SIGNER), h).unwrap();
    }
    for (f, bytes) in &snapshot {
        std::fs::write(dir.file(f), bytes).unwrap();
    }
    let (mut s, refused) = start(&dir, 3);
    assert!(refused.is_empty());
    assert_eq!(public(&mut s, SIGNER, "signing"), Some(signing));
}

#[test]
fn truncated_garbage_misnamed_and_strangers_files_are_refused() {
    let dir = Dir::new("garbage");
    let [signing, _, _] = first_boot(&dir);
    let path = dir.file("signer.backup.key");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    std::fs::write(dir.file("verifier.verifying.key"), [0x41u8; 73]).unwrap();
    std::fs::write(dir.file("notes.txt"), b"hello").unwrap();
    std::fs::copy(
        dir.file("signer.signing.key"),
        dir.file("nobody.signing.key"),
    )
    .unwrap();
    let (mut s, refused) = start(&dir, 2);
    assert_eq!(
        refusals(&refused),
        vec![
            ("nobody.signing.key".to_string(), Refusal::UnknownOwner),
            ("notes.txt".to_string(), Refusal::BadName),
            (
                "signer.backup.key".to_string(),
                Refusal::Sealed(SealError::Truncated)
            ),
            (
                "verifier.verifying.key".to_string(),
                Refusal::Sealed(SealError::NotSealed)
            ),
        ]
    );
    assert_eq!(public(&mut s, SIGNER, "signing"), Some(signing));
    // The refused keys are gone from the list: generating the label again works.
    s.generate(badge(VERIFIER), name("verifying")).unwrap();
    drop(s);
    let (mut s, _) = start(&dir, 3);
    assert!(public(&mut s, VERIFIER, "verifying").is_some());
}

#[test]
fn without_a_sound_manifest_no_blob_is_trusted() {
    let dir = Dir::new("manifest");
    first_boot(&dir);
    let manifest = std::fs::read(dir.file(MANIFEST)).unwrap();
    let mut bad = manifest.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(dir.file(MANIFEST), &bad).unwrap();
    let (s, refused) = start(&dir, 2);
    assert_eq!(s.len(), 0);
    let got = refusals(&refused);
    assert_eq!(
        got[0],
        (MANIFEST.to_string(), Refusal::Sealed(SealError::Forged))
    );
    assert_eq!(got.len(), 4);
    assert!(got[1..]
        .iter()
        .all(|(_, why)| *why == Refusal::ManifestRefused));
    // New keys made now get versions above every authentic blob seen, so the refused old
    // blobs can never pass for them.
    assert!(s.backing_manifest_counter() >= 3);
    drop(s);
    std::fs::remove_file(dir.file(MANIFEST)).unwrap();
    let (s, refused) = start(&dir, 3);
    assert_eq!(s.len(), 0);
    assert!(refusals(&refused)
        .iter()
        .all(|(_, why)| *why == Refusal::NoManifest));
    assert_eq!(refused.len(), 3);
}

#[test]
fn a_client_without_a_name_gets_no_key_and_the_store_is_unchanged() {
    let dir = Dir::new("stranger");
    let (mut s, _) = start(&dir, 1);
    assert_eq!(
        s.generate(badge(STRANGER), name("k")),
        Err(Error::Exhausted)
    );
    assert_eq!(s.len(), 0);
    assert_eq!(s.find(badge(STRANGER), name("k")), Err(Error::NotFound));
}

#[test]
fn an_interrupted_manifest_write_leaves_the_old_manifest() {
    let dir = Dir::new("interrupted");
    let [signing, _, _] = first_boot(&dir);
    std::fs::write(dir.file(MANIFEST_NEW), b"half a manifest").unwrap();
    let (mut s, refused) = start(&dir, 2);
    assert!(refused.is_empty());
    assert!(!dir.file(MANIFEST_NEW).exists());
    assert_eq!(public(&mut s, SIGNER, "signing"), Some(signing));
}

impl Keys {
    fn backing_manifest_counter(&self) -> u64 {
        self.backing_ref().manifest().counter
    }
}

/// A host directory behind a file service that can "restart": once `restarted` is set, every
/// call fails with `ServerRestarted` until a new attachment (a new `Flaky`) is made.
struct Flaky {
    files: HostFiles,
    restarted: std::rc::Rc<std::cell::Cell<bool>>,
}

impl Flaky {
    fn check(&self) -> Result<(), FsError> {
        if self.restarted.get() {
            Err(FsError::ServerRestarted)
        } else {
            Ok(())
        }
    }
}

impl Backend for Flaky {
    fn open(
        &mut self,
        path: &str,
        flags: libos_core::fs::OpenFlags,
    ) -> Result<libos_core::fs::Handle, FsError> {
        self.check()?;
        self.files.open(path, flags)
    }
    fn close(&mut self, handle: libos_core::fs::Handle) -> Result<(), FsError> {
        self.check()?;
        self.files.close(handle)
    }
    fn read(
        &mut self,
        handle: libos_core::fs::Handle,
        offset: u64,
        buffer: &mut [u8],
    ) -> Result<usize, FsError> {
        self.check()?;
        self.files.read(handle, offset, buffer)
    }
    fn write(
        &mut self,
        handle: libos_core::fs::Handle,
        offset: u64,
        data: &[u8],
    ) -> Result<(usize, u64), FsError> {
        self.check()?;
        self.files.write(handle, offset, data)
    }
    fn stat(&mut self, path: &str) -> Result<libos_core::fs::Metadata, FsError> {
        self.check()?;
        self.files.stat(path)
    }
    fn fstat(
        &mut self,
        handle: libos_core::fs::Handle,
    ) -> Result<libos_core::fs::Metadata, FsError> {
        self.check()?;
        self.files.fstat(handle)
    }
    fn read_dir(&mut self, path: &str) -> Result<Vec<libos_core::fs::DirEntry>, FsError> {
        self.check()?;
        self.files.read_dir(path)
    }
    fn mkdir(&mut self, path: &str) -> Result<(), FsError> {
        self.check()?;
        self.files.mkdir(path)
    }
    fn unlink(&mut self, path: &str) -> Result<(), FsError> {
        self.check()?;
        self.files.unlink(path)
    }
    fn rmdir(&mut self, path: &str) -> Result<(), FsError> {
        self.check()?;
        self.files.rmdir(path)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        self.check()?;
        self.files.rename(from, to)
    }
    fn fsync(&mut self, handle: libos_core::fs::Handle) -> Result<(), FsError> {
        self.check()?;
        self.files.fsync(handle)
    }
    fn truncate(&mut self, handle: libos_core::fs::Handle, size: u64) -> Result<(), FsError> {
        self.check()?;
        self.files.truncate(handle, size)
    }
    fn usage(&mut self) -> Result<libos_core::fs::Usage, FsError> {
        self.check()?;
        self.files.usage()
    }
}

#[test]
fn a_restarted_file_service_is_attached_again_and_the_change_made() {
    use std::cell::Cell;
    use std::rc::Rc;
    let dir = Dir::new("reattach");
    let attachments = Rc::new(Cell::new(0));
    let flag = Rc::new(Cell::new(false));
    let attach = {
        let (root, flag, attachments) = (dir.0.clone(), flag.clone(), attachments.clone());
        move || -> Result<Files<Flaky>, FsError> {
            attachments.set(attachments.get() + 1);
            // A new instance: the old attachment is gone, this one works.
            flag.set(false);
            let restarted = Rc::new(Cell::new(false));
            let files = HostFiles::open(&root)?;
            let flaky = Flaky { files, restarted };
            Ok(Files::new(flaky))
        }
    };
    let first = Files::new(Flaky {
        files: HostFiles::open(&dir.0).unwrap(),
        restarted: flag.clone(),
    });
    let (mut sealed, loaded) = Sealed::open(
        first,
        "/keys",
        SealingKey::derive(&[3; 32]),
        Rng::seed_from_u64(5),
        clients(),
    )
    .unwrap();
    assert!(loaded.keys.is_empty());
    sealed.set_reattach(Box::new(attach));
    let mut s = Store::new(Limits::default(), 1, Rng::seed_from_u64(1), sealed);
    s.generate(badge(SIGNER), name("before")).unwrap();
    assert_eq!(attachments.get(), 0);
    // The file service restarts: the next change attaches again once and is made.
    flag.set(true);
    let h = s.generate(badge(SIGNER), name("after")).unwrap();
    assert_eq!(attachments.get(), 1);
    let pk = s.public_key(badge(SIGNER), h).unwrap().0;
    drop(s);
    let (mut s, refused) = start(&dir, 2);
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(public(&mut s, SIGNER, "after"), Some(pk));
    assert!(public(&mut s, SIGNER, "before").is_some());
}

#[test]
fn without_a_way_to_attach_again_a_restart_fails_the_change_cleanly() {
    let dir = Dir::new("noreattach");
    let flag = std::rc::Rc::new(std::cell::Cell::new(false));
    let files = Files::new(Flaky {
        files: HostFiles::open(&dir.0).unwrap(),
        restarted: flag.clone(),
    });
    let (sealed, _) = Sealed::open(
        files,
        "/keys",
        SealingKey::derive(&[3; 32]),
        Rng::seed_from_u64(5),
        clients(),
    )
    .unwrap();
    let mut s = Store::new(Limits::default(), 1, Rng::seed_from_u64(1), sealed);
    let h = s.generate(badge(SIGNER), name("kept")).unwrap();
    flag.set(true);
    assert_eq!(
        s.generate(badge(SIGNER), name("new")),
        Err(Error::Exhausted)
    );
    assert_eq!(s.len(), 1);
    // A delete the storage cannot record leaves the key usable.
    assert_eq!(s.delete(badge(SIGNER), h), Err(Error::Exhausted));
    assert!(s.public_key(badge(SIGNER), h).is_ok());
}

#[test]
fn a_client_dropped_from_the_description_has_its_keys_refused_as_a_stranger() {
    let dir = Dir::new("dropped");
    let [signing, _, _] = first_boot(&dir);
    let files = Files::new(HostFiles::open(&dir.0).unwrap());
    let (_, loaded) = Sealed::open(
        files,
        "/keys",
        SealingKey::derive(&[3; 32]),
        Rng::seed_from_u64(9),
        vec![(SIGNER, name("signer"))],
    )
    .unwrap();
    assert_eq!(
        refusals(&loaded.refused),
        vec![("verifier.verifying.key".to_string(), Refusal::UnknownOwner)]
    );
    assert_eq!(loaded.keys.len(), 2);
    // Another runtime id under the same name gets the same keys: names, not ids, own them.
    let files = Files::new(HostFiles::open(&dir.0).unwrap());
    let (sealed, loaded) = Sealed::open(
        files,
        "/keys",
        SealingKey::derive(&[3; 32]),
        Rng::seed_from_u64(9),
        vec![
            (ComponentId(42), name("signer")),
            (VERIFIER, name("verifier")),
        ],
    )
    .unwrap();
    assert!(loaded.refused.is_empty());
    let mut s = Store::new(Limits::default(), 3, Rng::seed_from_u64(3), sealed);
    for k in &loaded.keys {
        s.restore(k.owner, k.label, &k.seed).unwrap();
    }
    let h = s.find(42 + 1, name("signing")).unwrap();
    assert_eq!(s.public_key(42 + 1, h).unwrap().0, signing);
    assert_eq!(s.find(badge(SIGNER), name("signing")), Err(Error::NotFound));
}
