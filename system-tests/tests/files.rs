//! The file service end to end (systems/files.toml) on a FAT image made on the host: `fs`
//! over `blk`, the shell's file commands, and the two `records` applications.
//!
//! The host makes a FAT32 image with `mkfs.fat` and copies a file with a long name into a
//! subdirectory with `mmd`/`mcopy`. First boot: both applications append their journals and
//! verify them, and prove they cannot reach each other's; the shell reads the host's file,
//! lists, writes a file, makes a directory, reports usage and halts; then on the host
//! `mtype` shows the shell's file and the journals, and `fsck.fat -n` finds the volume clean.
//! Second boot on the same image: the journals from the first boot verify and grow to 40
//! records; `kill fs` gives the shell's next file command one clear error and the one after
//! works; `kill blk` under `fs` is not even seen by the shell
//! (fs attaches to the next `blk` and repeats the transfer); after the halt the volume is
//! still clean, holds every write, and the journals verify on the host (`records::verify`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use system_tests::{boot_with_disk, component_faults};
use xtask::qemu::{disk, Outcome, Session};

const WAIT: Duration = Duration::from_secs(120);
const HOST_DIR: &str = "Host-Documents";
const HOST_FILE: &str = "a-long-file-name-made-on-the-host.txt";
const HOST_TEXT: &str = "made on the host, read through fs and blk\n";

/// Types `line` into the shell and returns its echo and answer (a line end that another
/// component's output left before the echo is dropped).
fn shell_command(session: &mut Session, line: &str, wait: Duration) -> String {
    system_tests::shell_command(session, line, wait)
        .trim_start_matches('\n')
        .to_string()
}

/// The path of host tool `name` (dosfstools installs to /usr/sbin, which PATH may lack).
fn tool(name: &str) -> PathBuf {
    ["/usr/bin", "/usr/sbin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} missing: apt-get install dosfstools mtools"))
}

/// Runs `tool args` and returns its standard output; panics with its errors if it fails.
fn host(name: &str, args: &[&str]) -> String {
    let out = Command::new(tool(name))
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A 64 MiB FAT32 image holding `HOST_DIR/HOST_FILE`.
fn make_image(image: &Path) {
    disk::scratch_image(image, 64 << 20).expect("a scratch image");
    let img = image.to_str().unwrap();
    host("mkfs.fat", &["-F", "32", "-n", "TESSERA", img]);
    host("mmd", &["-i", img, &format!("::/{HOST_DIR}")]);
    let source = xtask::target_dir().join(HOST_FILE);
    std::fs::write(&source, HOST_TEXT).unwrap();
    host(
        "mcopy",
        &[
            "-i",
            img,
            source.to_str().unwrap(),
            &format!("::/{HOST_DIR}/{HOST_FILE}"),
        ],
    );
}

fn start(image: &Path, log: &str) -> Session {
    boot_with_disk("files", image, log, Duration::from_secs(400), WAIT)
}

/// Waits until both applications are done and checks their verdicts: each verified its
/// journal with the 20 records it appended after those it found (from earlier boots, or
/// from a run that a restart of `fs` cut off), at least `earlier` of them. Returns the
/// records each verified.
fn records_pass(session: &Session, earlier: u64) -> [u64; 2] {
    ["a", "b"].map(|me| {
        let done = session
            .wait_for(&format!("records: {me}: done"), WAIT)
            .unwrap_or_else(|e| panic!("{e}\n{}", session.output()));
        // The whole line.
        session
            .wait_for_from("\n", done, WAIT)
            .unwrap_or_else(|e| panic!("{e}\n{}", session.output()));
        let out = session.output();
        assert!(
            out.contains(&format!("records: {me}: done, 2 of 2 checks passed")),
            "{out}"
        );
        assert!(
            out.contains(&format!("CHECK records-{me}-confined: PASS")),
            "{out}"
        );
        // `CHECK records-a-journal: PASS (N records verified, E from earlier boots, 20 ...`
        let prefix = format!("CHECK records-{me}-journal: PASS (");
        let line = out
            .lines()
            .rev()
            // The prompt may stand before it on its line.
            .find_map(|l| {
                let at = l.find(&prefix)?;
                Some(l[at + prefix.len()..].trim_end_matches('\r'))
            })
            .unwrap_or_else(|| panic!("{prefix}:\n{out}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let (verified, found): (u64, u64) = (words[0].parse().unwrap(), words[3].parse().unwrap());
        assert!(
            line.ends_with("from earlier boots, 20 appended and synced now)")
                && verified == found + 20
                && found >= earlier,
            "{line}"
        );
        verified
    })
}

/// The journal of `records-{me}` in the image verifies on the host with `verified` records.
fn journal_on_host(img: &str, me: &str, verified: u64) {
    let journal = host(
        "mtype",
        &["-i", img, &format!("::/records-{me}/journal.log")],
    );
    let found = records::verify(journal.as_bytes());
    assert_eq!(found.problem, None, "{journal}");
    assert_eq!(found.records, verified, "{journal}");
    assert!(
        journal.contains(&format!(" {me} wrote record {verified}\n")),
        "{journal}"
    );
}

fn halt(mut session: Session) -> String {
    session.send("halt\r").unwrap();
    let outcome = session.wait_exit();
    let out = session.output();
    assert_eq!(outcome, Outcome::Exited(0), "{out}");
    assert!(!out.contains("FAIL") && !out.contains("panic"), "{out}");
    out
}

/// `fsck.fat -n` finds nothing wrong.
fn fsck_clean(img: &str) {
    let out = Command::new(tool("fsck.fat"))
        .args(["-n", img])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fsck.fat -n: {text}");
    assert!(!text.contains("differ") && !text.contains("lost"), "{text}");
}

#[test]
fn the_shell_and_two_applications_share_a_fat_volume_made_on_the_host() {
    let image = xtask::target_dir().join("files-test.img");
    make_image(&image);
    let img = image.to_str().unwrap();

    // First boot.
    let mut s = start(&image, "files-1");
    let out = s.output();
    assert!(
        out.contains("fs: attached to blk over fs-blk: 131072 sectors"),
        "{out}"
    );
    assert!(out.contains("fs: ready (3 clients, max_open 16)"), "{out}");
    assert_eq!(records_pass(&s, 0), [20, 20]);
    let path = format!("{HOST_DIR}/{HOST_FILE}");
    assert_eq!(
        shell_command(&mut s, &format!("cat {path}"), WAIT),
        format!("cat {path}\n{HOST_TEXT}")
    );
    let ls = shell_command(&mut s, "ls", WAIT);
    for entry in [
        format!("{HOST_DIR}/"),
        "records-a/".into(),
        "records-b/".into(),
    ] {
        assert!(ls.lines().any(|l| l.ends_with(&entry)), "{entry} in:\n{ls}");
    }
    let ls = shell_command(&mut s, &format!("ls {HOST_DIR}"), WAIT);
    assert!(
        ls.contains(&format!("{}    {HOST_FILE}", HOST_TEXT.len())),
        "{ls}"
    );
    assert_eq!(
        shell_command(&mut s, "write notes-from-tessera.txt written by the Tessera shell", WAIT),
        "write notes-from-tessera.txt written by the Tessera shell\nwrote 29 bytes to notes-from-tessera.txt\n"
    );
    assert_eq!(
        shell_command(&mut s, "mkdir made-by-tessera", WAIT),
        "mkdir made-by-tessera\ncreated made-by-tessera\n"
    );
    let df = shell_command(&mut s, "df", WAIT);
    assert!(df.contains("SIZE-KIB") && df.contains("%"), "{df}");
    assert_eq!(
        shell_command(&mut s, "cat ../escape", WAIT),
        "cat ../escape\nerror: cat ../escape: invalid name\n"
    );
    let out = halt(s);
    assert_eq!(component_faults(&out), Vec::<&str>::new(), "{out}");

    // On the host.
    assert_eq!(
        host("mtype", &["-i", img, "::/notes-from-tessera.txt"]),
        "written by the Tessera shell\n"
    );
    for me in ["a", "b"] {
        journal_on_host(img, me, 20);
    }
    let dir = host("mdir", &["-i", img, "-b", "::/"]);
    assert!(dir.contains("made-by-tessera"), "{dir}");
    fsck_clean(img);

    // Second boot on the same volume: the journals continue. Then fs and blk are killed
    // under the shell (not under the applications' calls: a client blocked in a call to
    // fs when fs dies stays blocked, docs/FILES.md).
    let mut s = start(&image, "files-2");
    let verified = records_pass(&s, 20);
    assert_eq!(verified, [40, 40]);
    assert_eq!(
        shell_command(&mut s, "cat notes-from-tessera.txt", WAIT),
        "cat notes-from-tessera.txt\nwritten by the Tessera shell\n",
    );
    let before = s.output().len();
    let kill = shell_command(&mut s, "kill fs", WAIT);
    assert!(!kill.contains("error"), "{kill}");
    s.wait_for_from("fs: ready (3 clients, max_open 16)", before, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    let first = shell_command(&mut s, "cat notes-from-tessera.txt", WAIT);
    assert!(
        first.ends_with(
            "cat notes-from-tessera.txt\nerror: cat notes-from-tessera.txt: the file service restarted\n"
        ),
        "one clear error after fs restarted:\n{first}"
    );
    assert_eq!(
        shell_command(&mut s, "cat notes-from-tessera.txt", WAIT),
        "cat notes-from-tessera.txt\nwritten by the Tessera shell\n",
    );
    let before = s.output().len();
    let kill = shell_command(&mut s, "kill blk", WAIT);
    assert!(!kill.contains("error"), "{kill}");
    let started = s
        .wait_for_from("blk: disk0 virtio-blk at", before, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    s.wait_for_from("\n", started, WAIT).unwrap();
    let wrote = shell_command(
        &mut s,
        "write after-kill.txt fs attached to the next blk",
        WAIT,
    );
    // blk's first-interrupt line may land inside the echo.
    assert!(
        wrote.ends_with("\nwrote 28 bytes to after-kill.txt\n"),
        "{wrote}"
    );
    assert_eq!(
        shell_command(&mut s, &format!("cat {path}"), WAIT),
        format!("cat {path}\n{HOST_TEXT}")
    );
    let out = halt(s);
    for (component, generation) in [("fs", 2), ("blk", 2)] {
        assert!(
            out.contains(&format!("proc: started {component} (id"))
                && out.contains(&format!("generation {generation})")),
            "{component} restarted:\n{out}"
        );
    }
    assert_eq!(
        host("mtype", &["-i", img, "::/after-kill.txt"]),
        "fs attached to the next blk\n"
    );
    for (me, verified) in ["a", "b"].into_iter().zip(verified) {
        journal_on_host(img, me, verified);
    }
    fsck_clean(img);
}
