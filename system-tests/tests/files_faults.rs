//! Faults under the file service's clients (systems/tests/files-faults.toml): `fs` and
//! `blk` are killed while the two `records` writers are inside their calls.
//!
//! Each writer appends and syncs 1000 records per run. `kill fs` three times: a writer blocked in
//! a call that the dying `fs` was serving is answered `ServerRestarted` by `proc` (at least
//! one kill catches one: `proc: fs ended while serving a call`), every writer gets that
//! clear error, attaches to the next instance and starts its run again, verifying what it
//! had synced. `kill blk` twice: `fs` attaches to the next driver and repeats the transfer,
//! and the writers never see it. Both writers finish with every check passed; on the
//! host, each journal verifies record by record (every record whose `fsync` returned is
//! there, byte for byte), and `fsck.fat -n` finds nothing worse than lost clusters.

use std::path::Path;
use std::time::Duration;
use system_tests::{boot_with_disk, component_faults, shell_command, wait_printed};
use xtask::qemu::disk::{self, Fsck};
use xtask::qemu::{Outcome, Session};

const WAIT: Duration = Duration::from_secs(180);

fn boot(image: &Path) -> Session {
    boot_with_disk(
        "files-faults",
        image,
        "files-faults",
        Duration::from_secs(900),
        WAIT,
    )
}

/// Kills `component` from the shell and waits until its next instance printed `ready`.
fn kill(session: &mut Session, component: &str, ready: &str) {
    let before = session.output().len();
    let answer = shell_command(session, &format!("kill {component}"), WAIT);
    assert!(!answer.contains("error"), "{answer}");
    wait_printed(session, ready, before, WAIT).unwrap_or_else(|e| panic!("{e}"));
}

/// The number of records `records-{me}` verified in its last run (`CHECK
/// records-{me}-journal: PASS (N records verified, ...`).
fn verified(output: &str, me: &str) -> u64 {
    let prefix = format!("CHECK records-{me}-journal: PASS (");
    output
        .lines()
        .rev()
        .find_map(|l| {
            let at = l.find(&prefix)?;
            l[at + prefix.len()..]
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `{prefix}`:\n{output}"))
}

#[test]
fn writers_survive_fs_and_blk_killed_under_their_calls() {
    let image = xtask::target_dir().join("files-faults-test.img");
    disk::scratch_image(&image, 64 << 20).unwrap();
    let img = image.to_str().unwrap();
    let made = std::process::Command::new(disk::fat_tool("mkfs.fat"))
        .args(["-F", "32", "-n", "TESSERA", img])
        .output()
        .expect("mkfs.fat runs (apt-get install dosfstools)");
    assert!(made.status.success(), "{made:?}");

    let mut s = boot(&image);
    for me in ["a", "b"] {
        wait_printed(&s, &format!("records: {me}: attached to fs"), 0, WAIT)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for _ in 0..3 {
        kill(&mut s, "fs", "fs: ready (3 clients, max_open 16)");
    }
    for _ in 0..2 {
        kill(&mut s, "blk", "blk: disk0 virtio-blk at");
    }
    for me in ["a", "b"] {
        wait_printed(
            &s,
            &format!("records: {me}: done"),
            0,
            Duration::from_secs(600),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    s.send("halt\r").unwrap();
    let outcome = s.wait_exit();
    let out = s.output();
    assert_eq!(outcome, Outcome::Exited(0), "{out}");

    assert!(
        out.contains("proc: fs ended while serving a call: its caller gets ServerRestarted"),
        "no kill caught a writer inside a call to fs:\n{out}"
    );
    for me in ["a", "b"] {
        assert!(
            out.contains(&format!("records: {me}: fs restarted: attaching again")),
            "records-{me} never saw the restart:\n{out}"
        );
        assert!(
            out.contains(&format!("records: {me}: done, 2 of 2 checks passed")),
            "{out}"
        );
        let journal = disk::mtype(&image, &format!("::/records-{me}/journal.log")).unwrap();
        let found = records::verify(&journal);
        assert_eq!(found.problem, None, "records-{me}");
        assert_eq!(found.records, verified(&out, me), "records-{me}");
    }
    assert!(component_faults(&out).is_empty(), "{out}");
    match disk::fsck(&image).unwrap() {
        Fsck::Clean | Fsck::LostClusters(_) => {}
        Fsck::Damaged(lines) => panic!("fsck.fat -n: {lines:?}"),
    }
}
