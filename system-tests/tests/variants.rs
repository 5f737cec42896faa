//! Every kernel variant later work selects (PIC interrupts, kernel-entry
//! tracking, utilisation tracking) builds, boots, and passes the root task's
//! checks, with the system's own exit status.

use system_tests::{boot_image, lines_with, variant_images};
use xtask::qemu::Outcome;

#[test]
fn every_kernel_variant_boots_and_passes_the_root_checks() {
    let variants = variant_images();
    assert!(
        variants.len() >= 3,
        "expected the pic, entries and utilisation variants: {variants:?}"
    );
    for (variant, kernel, root) in variants {
        let name = format!("variant-{}", variant.replace(['=', ','], "-"));
        let mut session = boot_image(&name, kernel, root);
        let outcome = session.wait_exit();
        let out = session.output();
        assert_eq!(outcome, Outcome::Exited(0), "{variant}: {out}");
        assert!(out.contains("root: all checks passed"), "{variant}: {out}");
        assert_eq!(
            lines_with(&out, "ipc round trip: median ").len(),
            1,
            "{variant}"
        );
    }
}
