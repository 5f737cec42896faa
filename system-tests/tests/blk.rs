//! The block driver end to end (systems/tests/blk.toml): `blk` drives a virtio-blk disk
//! backed by a scratch image; `blkcheck` writes a pattern with many requests in flight,
//! flushes, reads it back, sends requests `blk` must refuse (out of range, misaligned,
//! unknown, too large, past its data area) and checks `blk` still serves, is refused
//! attachments (a region that does not exist, a wrong nonce), is served after giving an
//! endpoint instead of a notification as its wake-up, moves 96 KiB through
//! `blkring`'s blocking disk, kills `blk` and reads the data back through the restarted
//! instance, then halts. The host then finds the pattern in the image file, where the
//! client's window puts it, and nothing anywhere else. In systems/tests/blk-ioapic.toml the
//! client's window is sectors 4096..12288, so its out-of-range requests would land inside the
//! disk if `blk` did not confine it.

use std::time::Duration;
use system_tests::system_image;
use xtask::qemu::{disk, Boot, Outcome, Session};

/// The scratch image's size: 8 MiB, 16384 sectors.
const IMAGE_BYTES: u64 = 8 << 20;

#[test]
fn blkcheck_passes_over_msix_and_the_data_is_in_the_image() {
    check("blk", "MsiX (msix vector Some(0))", (0, IMAGE_BYTES / 512));
}

#[test]
fn blkcheck_passes_over_the_ioapic_and_the_data_is_in_the_image() {
    check("blk-ioapic", "IoApic (msix vector None)", (4096, 8192));
}

/// Boots `system` over a fresh scratch image, checks every step passed with the disk's
/// interrupt as `irq` says and interrupts arrived, then checks the image: the client's
/// `window` (first sector, sectors) holds what it wrote, every other sector is zero.
fn check(system: &str, irq: &str, window: (u64, u64)) {
    let (kernel, root) = system_image(system);
    let image = xtask::target_dir().join(format!("{system}-test.img"));
    disk::scratch_image(&image, IMAGE_BYTES).expect("a scratch image");
    let log = xtask::target_dir().join(format!("logs/{system}.log"));
    let mut boot = Boot::new(kernel, root, log);
    boot.timeout = Duration::from_secs(240);
    boot.extra = disk::qemu_args(&image, "disk0");
    let mut session = Session::start(&boot, false).expect("QEMU starts");
    let outcome = session.wait_exit();
    let out = session.output();
    assert!(
        out.contains("blk: disk0 virtio-blk at") && out.contains("16384 sectors (8 MiB)"),
        "blk reports the disk's capacity:\n{out}"
    );
    assert!(
        out.contains(&format!("irq {irq}")),
        "interrupts as {irq}:\n{out}"
    );
    assert!(out.contains("blk: first interrupt from disk0"), "{out}");
    for check in [
        "blk-geometry",
        "blk-write",
        "blk-flush",
        "blk-read",
        "blk-refused",
        "blk-still-serving",
        "blk-disk",
        "blk-attach-refused",
        "blk-hostile-wake",
        "blk-restart",
    ] {
        assert!(
            out.contains(&format!("CHECK {check}: PASS")),
            "{check} did not pass:\n{out}"
        );
    }
    assert!(!out.contains("FAIL") && !out.contains("panic"), "{out}");
    assert!(
        out.contains("proc: restarted blk") || out.contains("blk (id"),
        "{out}"
    );
    assert_eq!(
        outcome,
        Outcome::Exited(0),
        "blkcheck halts with status 0:\n{out}"
    );

    assert!(
        out.contains(&format!(
            "blkcheck: attached over blkcheck-blk: {} sectors",
            window.1
        )),
        "the client sees its window:\n{out}"
    );

    // The pattern is in the image after the halt, sector for sector (in window sectors,
    // which the pattern is a function of; on disk from the window's start).
    let bytes = std::fs::read(&image).expect("the image");
    let (start, sectors) = window;
    let first = blkcheck::first_sector(sectors);
    for sector in first..sectors {
        let at = ((start + sector) * 512) as usize;
        for j in 0..512 {
            assert_eq!(
                bytes[at + j],
                blkcheck::pattern(sector, j),
                "sector {sector} byte {j} in the image"
            );
        }
    }
    // Below it, what blkring's blocking disk wrote; nothing else was written (a refused
    // request touched no sector, inside the disk or out of the window).
    let below = first - (blkcheck::DISK_BYTES / 512) as u64;
    for sector in below..first {
        let at = ((start + sector) * 512) as usize;
        assert_eq!(
            bytes[at + 100],
            blkcheck::pattern(sector, 100),
            "sector {sector}"
        );
    }
    let written = ((start + below) * 512) as usize..((start + sectors) * 512) as usize;
    let stray = bytes
        .iter()
        .enumerate()
        .position(|(i, &b)| b != 0 && !written.contains(&i));
    assert_eq!(stray, None, "a byte written outside the client's data");
    let _ = std::fs::remove_file(&image);
}
