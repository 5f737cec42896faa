//! Soak case `files`: `fs` and `blk` killed `kills` times each, alternately, while the two
//! `records` writers of systems/tests/files-faults.toml append and sync their journals on
//! a fresh FAT volume (`target/soak/files.img`); then the writers must finish, and on the
//! host each journal must verify record by record and `fsck.fat -n` must find nothing
//! worse than lost clusters.
//!
//! Rows: `fs` and `blk` (tried = kills proc accepted, survived = kills after which the
//! component was ready again within [`COME_BACK`], crashed = kills it did not come back
//! from, hung = the shell stopped answering), and `volume` (tried = 1; survived when both
//! writers finished with every check passed, their journals verify on the host and the
//! volume has nothing worse than lost clusters; crashed otherwise; hung when a writer did
//! not finish). Notes count the calls `proc` answered for a dying `fs` and the writers'
//! restarts.

use super::{shell, Case, CaseResult};
use crate::qemu::disk::{self, Fsck};
use crate::qemu::{Boot, Session};
use crate::Result;
use kernel_support::Variant;
use std::path::Path;
use std::time::{Duration, Instant};

/// The system the case boots.
pub const SYSTEM: &str = "systems/tests/files-faults.toml";
/// How long a killed component may take to be ready again.
pub const COME_BACK: Duration = Duration::from_secs(30);
/// How long one shell command may take.
pub const COMMAND: Duration = Duration::from_secs(30);
/// How long the writers may take to finish after the last kill.
pub const FINISH: Duration = Duration::from_secs(900);

/// What each killed component prints when its next instance is ready.
const READY: [(&str, &str); 2] = [
    ("fs", "fs: ready (3 clients, max_open 16)"),
    ("blk", "blk: disk0 virtio-blk at"),
];
/// The writers' names.
const WRITERS: [&str; 2] = ["a", "b"];
/// What proc prints when it answers a call the dying `fs` was serving.
const ANSWERED: &str = "proc: fs ended while serving a call";

/// Boots `SYSTEM` on `image` and waits for the prompt and both writers' attachment.
fn boot(image: &Path, timeout: Duration) -> Result<Session> {
    let path = crate::workspace_root().join(SYSTEM);
    let built = crate::build::image(&Variant::default(), Some(&path))?;
    let mut boot = Boot::new(
        built.kernel.elf32.clone(),
        built.root.clone(),
        crate::target_dir().join("logs/soak-files.log"),
    );
    boot.timeout = timeout;
    boot.extra = disk::qemu_args(image, "disk0");
    let session = Session::start(&boot, false)?;
    session.wait_for(shell::PROMPT, Duration::from_secs(120))?;
    for me in WRITERS {
        session.wait_printed_from(
            &format!("records: {me}: attached to fs"),
            0,
            Duration::from_secs(120),
        )?;
    }
    Ok(session)
}

/// A fresh 64 MiB FAT32 volume at `image`.
fn fresh_volume(image: &Path) -> Result<()> {
    if image.exists() {
        std::fs::remove_file(image).map_err(|e| format!("{}: {e}", image.display()))?;
    }
    disk::ensure_fat_image(image, 64)
}

/// Runs the case.
pub fn run(kills: u64) -> Result<Vec<CaseResult>> {
    let image = super::dir().join("files.img");
    fresh_volume(&image)?;
    let timeout = FINISH + COME_BACK * 4 * (kills as u32) + Duration::from_secs(300);
    let mut session = boot(&image, timeout)?;
    let clock = Instant::now();
    let mut rows: Vec<CaseResult> = READY
        .iter()
        .map(|(name, _)| CaseResult::new(Case::Files, name))
        .collect();
    let mut volume = CaseResult::new(Case::Files, "volume");
    let mut shell_dead = false;
    'kills: for i in 0..kills {
        for ((name, ready), r) in READY.iter().zip(rows.iter_mut()) {
            let before = session.output().len();
            match shell::command(&mut session, &format!("kill {name}"), COMMAND) {
                Ok(reply) if reply.contains("error") => {
                    r.notes.push(format!("kill {i}: refused: {}", reply.trim()));
                    break 'kills;
                }
                Ok(_) => r.tried += 1,
                Err(e) => {
                    r.tried += 1;
                    r.hung += 1;
                    r.notes.push(format!("kill {i}: no prompt: {e}"));
                    shell_dead = true;
                    break 'kills;
                }
            }
            match session.wait_printed_from(ready, before, COME_BACK) {
                Ok(()) => r.survived += 1,
                Err(e) => {
                    r.crashed += 1;
                    r.notes.push(format!("kill {i}: not ready again: {e}"));
                    break 'kills;
                }
            }
        }
        if (i + 1) % 10 == 0 || i + 1 == kills {
            crate::step(&format!(
                "[{}] kill fs and blk: {}/{kills}",
                super::elapsed(clock),
                i + 1
            ));
        }
    }
    let mut finished = !shell_dead;
    for me in WRITERS {
        if finished {
            let done = format!("records: {me}: done");
            if let Err(e) = session.wait_printed_from(&done, 0, FINISH) {
                volume
                    .notes
                    .push(format!("records-{me} did not finish: {e}"));
                finished = false;
            }
        }
    }
    let out = session.output();
    let answered = out.matches(ANSWERED).count();
    let restarts: Vec<String> = WRITERS
        .iter()
        .map(|me| {
            let n = out
                .matches(&format!("records: {me}: fs restarted: attaching again"))
                .count();
            format!("records-{me} {n}")
        })
        .collect();
    rows[0].notes.push(format!(
        "proc answered {answered} call(s) the dying fs was serving; runs started again: {}",
        restarts.join(", ")
    ));
    let faults = crate::qemu::component_faults(&out);
    if !faults.is_empty() {
        volume.notes.push(format!(
            "{} fault report(s), first: {}",
            faults.len(),
            faults[0]
        ));
    }
    let _ = session.send("halt\r");
    let _ = session.wait_exit();
    volume.tried = 1;
    if !finished {
        volume.hung = 1;
    } else {
        let mut ok = faults.is_empty();
        for me in WRITERS {
            if !out.contains(&format!("records: {me}: done, 2 of 2 checks passed")) {
                volume.notes.push(format!("records-{me} failed a check"));
                ok = false;
            }
            match disk::mtype(&image, &format!("::/records-{me}/journal.log")) {
                Ok(bytes) => {
                    let found = records::verify(&bytes);
                    volume.notes.push(format!(
                        "journal {me}: {} records verify on the host{}",
                        found.records,
                        found
                            .problem
                            .as_ref()
                            .map_or(String::new(), |p| format!(", then: {p:?}"))
                    ));
                    ok &= found.problem.is_none();
                }
                Err(e) => {
                    volume.notes.push(e);
                    ok = false;
                }
            }
        }
        match disk::fsck(&image)? {
            Fsck::Clean => volume.notes.push("fsck.fat -n: clean".into()),
            Fsck::LostClusters(n) => volume
                .notes
                .push(format!("fsck.fat -n: {n} lost cluster(s), nothing else")),
            Fsck::Damaged(lines) => {
                volume
                    .notes
                    .push(format!("fsck.fat -n: {}", lines.join(" / ")));
                ok = false;
            }
        }
        if ok {
            volume.survived = 1;
        } else {
            volume.crashed = 1;
        }
    }
    let took = clock.elapsed().as_secs_f64();
    for r in rows.iter_mut() {
        r.duration_s = took;
    }
    volume.duration_s = took;
    rows.push(volume);
    Ok(rows)
}
