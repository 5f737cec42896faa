//! Composition 2: the key store shared by two mutually distrusting clients.
//!
//! - systems/keystore.toml boots to the shell with each client's `keystore-demo:` lines, and
//!   those signatures verify on the host with a stock Ed25519 library (PyNaCl, Debian's
//!   `python3-nacl`; installed when running as root, else the check is skipped, saying so);
//!   each client is refused every service but the key store and gets `TooLarge` past the
//!   store's `max_message`; `caps` shows each client holding only what proc granted it (no
//!   service endpoint, nothing from slot 8 on); `kill keystore` brings it back with both keys
//!   (loaded from its sealed store in `fs`), and the restarted signer prints the same public
//!   key. On a second boot of the same disk image, the verifier's sealed blob altered from the
//!   host (with mtools) is refused and reported, the signer's key is still there, and the
//!   verifier gets a new one.
//! - systems/tests/keystore-steal.toml: a client using another client's (leaked) handle gets
//!   `NotFound` for everything, and the owner's key is intact afterwards.
//! - systems/bench/keystore.toml prints plausible sign latencies through the key store and
//!   in-process.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use system_tests::{boot_system, lines_with, shell_command, system_image, PROMPT};
use xtask::qemu::{disk, Boot, Outcome, Session};

const WAIT: Duration = Duration::from_secs(90);
/// proc's fault badge bit (services/proc/src/grants.rs, docs/SERVICES.md).
const FAULT_BADGE: u64 = 1 << 26;

/// One `keystore-demo:` line.
#[derive(Clone, Debug)]
struct Demo {
    client: String,
    public_key: String,
    message: String,
    signature: String,
}

fn demos(output: &str) -> Vec<Demo> {
    // A line may follow the shell's prompt, which the shell printed while the clients waited
    // for the key store to load its sealed keys.
    output
        .lines()
        .filter_map(|l| l.split_once("keystore-demo: client=").map(|(_, rest)| rest))
        .map(|rest| {
            let rest = rest.trim_end();
            let (client, rest) = rest.split_once(" pk=").expect("pk=");
            let (public_key, rest) = rest.split_once(" msg=").expect("msg=");
            let (message, signature) = rest.rsplit_once(" sig=").expect("sig=");
            Demo {
                client: client.to_string(),
                public_key: public_key.to_string(),
                message: message.to_string(),
                signature: signature.to_string(),
            }
        })
        .collect()
}

/// Checks every signature with PyNaCl: `Some(per-line verdicts)`, or `None` if PyNaCl is
/// not there and cannot be installed.
fn verify_with_nacl(demos: &[Demo]) -> Option<Vec<bool>> {
    if let Err(e) = xtask::host::ensure(xtask::host::Purpose::Nacl) {
        eprintln!("SKIPPED: the host check of the signatures needs PyNaCl: {e}");
        return None;
    }
    let script = "import sys\n\
        from nacl.signing import VerifyKey\n\
        from nacl.exceptions import BadSignatureError\n\
        for line in sys.stdin:\n\
        \x20   pk, sig, msg = line.rstrip('\\n').split(' ', 2)\n\
        \x20   try:\n\
        \x20       VerifyKey(bytes.fromhex(pk)).verify(msg.encode(), bytes.fromhex(sig))\n\
        \x20       print('good')\n\
        \x20   except BadSignatureError:\n\
        \x20       print('bad')\n";
    let mut child = Command::new(xtask::host::NACL_PYTHON)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3");
    let mut input = String::new();
    for d in demos {
        input.push_str(&format!("{} {} {}\n", d.public_key, d.signature, d.message));
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed");
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l == "good")
            .collect(),
    )
}

/// A fresh 64 MiB FAT32 image at `image` for the key store's `fs`.
fn fresh_disk(image: &Path) {
    let _ = std::fs::remove_file(image);
    disk::ensure_fat_image(image, 64).expect("a FAT image (dosfstools, mtools)");
}

/// Boots systems/keystore.toml with `image` as its disk, logging to `log`.
fn boot_keystore(image: &Path, log: &str) -> Session {
    let (kernel, root) = system_image("keystore");
    let log = xtask::target_dir().join(format!("logs/{log}.log"));
    let mut boot = Boot::new(kernel, root, log);
    boot.timeout = Duration::from_secs(400);
    boot.extra = disk::qemu_args(image, "disk0");
    Session::start(&boot, false).expect("QEMU starts")
}

/// Runs mtools' `tool` on `image` with `args`; panics with its errors if it fails.
fn mtools(tool: &str, image: &Path, args: &[&str]) -> String {
    let out = Command::new(tool)
        .arg("-i")
        .arg(image)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The public key of the last `keystore-demo:` line of `client` in `output`.
fn last_public_key(output: &str, client: &str) -> String {
    demos(output)
        .into_iter()
        .rev()
        .find(|d| d.client == client)
        .unwrap_or_else(|| panic!("no line of {client}:\n{output}"))
        .public_key
}

/// The rows `caps NAME` prints, as whitespace-separated fields.
fn caps(s: &mut Session, name: &str) -> Vec<Vec<String>> {
    let out = shell_command(s, &format!("caps {name}"), WAIT);
    out.lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn check_lines_pass(output: &str, name: &str) {
    let lines = lines_with(output, &format!("CHECK {name}: "));
    assert_eq!(lines.len(), 1, "{name}:\n{output}");
    assert!(lines[0].starts_with("PASS"), "{name}: {}", lines[0]);
}

#[test]
fn the_demo_signs_verifiably_and_keeps_its_clients_apart() {
    let path = xtask::workspace_root().join("systems/keystore.toml");
    let system = xtask::build::load_system(&path).unwrap();
    let image = xtask::target_dir().join("keystore-test.img");
    fresh_disk(&image);
    let mut s = boot_keystore(&image, "keystore");
    for needle in [PROMPT, "signer: done", "verifier: done"] {
        s.wait_for(needle, WAIT)
            .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    }
    let boot = s.output();

    // One line per signature, the signer's two and the verifier's one, each client under
    // its own key.
    let demos = demos(&boot);
    let of = |c: &str| demos.iter().filter(|d| d.client == c).count();
    assert_eq!(
        (of("signer"), of("verifier"), demos.len()),
        (2, 1, 3),
        "{boot}"
    );
    for d in &demos {
        assert_eq!(d.public_key.len(), 64, "{d:?}");
        assert_eq!(d.signature.len(), 128, "{d:?}");
    }
    let signer_pk = &demos
        .iter()
        .find(|d| d.client == "signer")
        .unwrap()
        .public_key;
    let verifier_pk = &demos
        .iter()
        .find(|d| d.client == "verifier")
        .unwrap()
        .public_key;
    assert_ne!(signer_pk, verifier_pk);
    if let Some(verdicts) = verify_with_nacl(&demos) {
        assert_eq!(verdicts, vec![true; demos.len()], "{demos:?}");
        // The check can fail: a signature over another message does not verify.
        let mut forged = demos[0].clone();
        forged.message.push('!');
        assert_eq!(verify_with_nacl(&[forged]), Some(vec![false]));
    }

    // The store's per-client message limit (max_message = 64) answers TooLarge.
    for client in ["signer", "verifier"] {
        let line = lines_with(&boot, &format!("{client}: signing 112 bytes: "));
        assert_eq!(line, ["TooLarge"], "{client}:\n{boot}");
    }
    // Each client reaches the key store and nothing else.
    for name in [
        "keystore-signer-refused-verifier",
        "keystore-signer-refused-serial",
        "keystore-signer-refused-memory",
        "keystore-verifier-refused-signer",
        "keystore-verifier-refused-serial",
        "keystore-verifier-refused-proc",
    ] {
        check_lines_pass(&boot, name);
    }

    // What proc placed in each client's CNode: its own objects, the fault endpoint, naming
    // badged with its id, its notification; no service endpoint, nothing from slot 8 on.
    for client in ["signer", "verifier"] {
        let id = system
            .components
            .iter()
            .position(|c| c.name == client)
            .unwrap() as u64;
        let row = |slot: u64, kind: &str, badge: u64, grant: &str| -> Vec<String> {
            let badge = if badge == 0 {
                "-".to_string()
            } else {
                badge.to_string()
            };
            vec![
                slot.to_string(),
                kind.into(),
                "rwg".into(),
                badge,
                grant.into(),
            ]
        };
        let expected = vec![
            row(1, "tcb", 0, "-"),
            row(2, "cnode", 0, "-"),
            row(3, "vspace", 0, "-"),
            row(4, "endpoint", FAULT_BADGE | (id + 1), "proc"),
            row(5, "endpoint", id + 1, "naming"),
            row(7, "notification", 0, "-"),
        ];
        assert_eq!(caps(&mut s, client), expected, "caps {client}");
    }

    // proc restarts a killed key store, which loads both keys from its sealed store; the
    // signer, restarted too, finds its key and prints the same public key.
    let first = s.output();
    assert!(
        first.contains("keystore: sealed store /keys over fs: 0 keys loaded, 0 refused"),
        "{first}"
    );
    let before = first.matches("keystore: ready").count();
    let out = shell_command(&mut s, "kill keystore", WAIT);
    assert!(!out.contains("error"), "{out}");
    let from = s.output().len();
    s.wait_for_from("keystore: ready", from, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    assert_eq!(s.output().matches("keystore: ready").count(), before + 1);
    assert!(
        s.output()[from..]
            .contains("keystore: sealed store /keys over fs: 2 keys loaded, 0 refused"),
        "{}",
        s.output()
    );
    let ps = shell_command(&mut s, "ps", WAIT);
    let row = ps
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("keystore"))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(row.contains("running"), "{ps}");
    let from = s.output().len();
    shell_command(&mut s, "kill signer", WAIT);
    s.wait_for_from("signer: done", from, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    assert_eq!(&last_public_key(&s.output()[from..], "signer"), signer_pk);
    // The file service restarts (it holds nothing keystore needs but bytes on the disk): the
    // key store's next start loads both keys from its next instance.
    let from = s.output().len();
    shell_command(&mut s, "kill fs", WAIT);
    s.wait_for_from("fs: ready", from, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    let from = s.output().len();
    shell_command(&mut s, "kill keystore", WAIT);
    s.wait_for_from("keystore: ready", from, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    assert!(
        s.output()[from..]
            .contains("keystore: sealed store /keys over fs: 2 keys loaded, 0 refused"),
        "{}",
        s.output()
    );
    assert!(
        system_tests::component_faults(&s.output()).is_empty(),
        "{}",
        s.output()
    );
    s.send("halt\r").unwrap();
    assert_eq!(s.wait_exit(), Outcome::Exited(0), "{}", s.output());

    // On the disk, from the host: fs holds ciphertext only (no public key in the clear
    // either), in keystore's directory. Alter one byte of the verifier's sealed key.
    let listing = mtools("mdir", &image, &["-b", "::/keystore/keys"]);
    for file in ["signer.signing.key", "verifier.verifying.key", "manifest"] {
        assert!(listing.contains(file), "{file}: {listing}");
    }
    let blob_path = xtask::target_dir().join("keystore-test-verifier.key");
    let _ = std::fs::remove_file(&blob_path);
    let inside = "::/keystore/keys/verifier.verifying.key";
    mtools("mcopy", &image, &[inside, blob_path.to_str().unwrap()]);
    let mut blob = std::fs::read(&blob_path).unwrap();
    assert_eq!(blob.len(), 73);
    for pk in [signer_pk, verifier_pk] {
        let prefix: Vec<u8> = (0..8)
            .map(|i| u8::from_str_radix(&pk[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert!(!blob.windows(8).any(|w| w == prefix.as_slice()));
    }
    blob[40] ^= 0x01;
    std::fs::write(&blob_path, &blob).unwrap();
    mtools(
        "mcopy",
        &image,
        &["-o", blob_path.to_str().unwrap(), inside],
    );

    // Second boot on the same disk: the altered blob is refused and reported; the signer's
    // key is the same; the verifier, whose key is gone, gets a new one.
    let s = boot_keystore(&image, "keystore-reboot");
    for needle in [PROMPT, "signer: done", "verifier: done"] {
        s.wait_for(needle, WAIT)
            .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    }
    let second = s.output();
    // (After the shell's prompt, maybe: the shell runs while the key store loads.)
    let refused: Vec<&str> = second
        .lines()
        .filter_map(|l| l.split_once("keystore: refused /keys/").map(|(_, r)| r))
        .collect();
    assert_eq!(refused.len(), 1, "{second}");
    let refused: Vec<&str> = refused
        .iter()
        .filter_map(|r| r.strip_prefix("verifier.verifying.key: "))
        .collect();
    assert_eq!(refused.len(), 1, "{second}");
    assert!(
        refused[0].starts_with("authentication failed"),
        "{}",
        refused[0]
    );
    assert!(
        second.contains("keystore: sealed store /keys over fs: 1 keys loaded, 1 refused"),
        "{second}"
    );
    assert_eq!(&last_public_key(&second, "signer"), signer_pk);
    assert_ne!(&last_public_key(&second, "verifier"), verifier_pk);
    let mut s = s;
    s.send("halt\r").unwrap();
    assert_eq!(s.wait_exit(), Outcome::Exited(0), "{}", s.output());
    let _ = std::fs::remove_file(&image);
}

#[test]
fn a_stolen_handle_gets_not_found() {
    let s = boot_system("keystore-steal", "keystore-steal");
    for needle in [
        "CHECK keystore-steal: ",
        "CHECK keystore-leak: ",
        "owner: done",
    ] {
        s.wait_for(needle, WAIT)
            .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    }
    let out = s.output();
    check_lines_pass(&out, "keystore-steal");
    check_lines_pass(&out, "keystore-leak");
    assert!(system_tests::component_faults(&out).is_empty(), "{out}");
}

/// `(median, p90)` of the `BENCH name` line in `output`.
fn bench_line(output: &str, name: &str) -> (u64, u64) {
    let lines = lines_with(output, &format!("BENCH {name} "));
    assert_eq!(lines.len(), 1, "{name}:\n{output}");
    let field = |key: &str| -> u64 {
        lines[0]
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no {key} in {}", lines[0]))
    };
    assert_eq!(field("n="), 10_000, "{}", lines[0]);
    (field("median="), field("p90="))
}

#[test]
fn sign_latency_is_measured_through_the_store_and_in_process() {
    let s = boot_system("keystore-bench", "keystore-bench");
    s.wait_for("client: done", Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    let out = s.output();
    assert!(!out.contains("BENCH-ERROR"), "{out}");
    let (ipc_median, ipc_p90) = bench_line(&out, "keystore_sign_ipc");
    let (local_median, local_p90) = bench_line(&out, "keystore_sign_inproc");
    assert!(local_median > 0 && local_median <= local_p90, "{out}");
    assert!(ipc_median <= ipc_p90, "{out}");
    // The IPC path does the same signing plus two crossings, so it cannot be cheaper.
    assert!(ipc_median > local_median, "{out}");
}
