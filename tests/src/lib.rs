//! The harness for whole-system tests: boots the image that `cargo xtask test`
//! built (paths in `TESSERA_TEST_KERNEL` / `TESSERA_TEST_ROOT`) under QEMU with a
//! timeout, keeps the serial log under `target/logs/`, and lets a test wait for
//! lines and read `PASS`/`FAIL` check lines.

use std::path::PathBuf;
use std::time::Duration;
use xtask::qemu::{Boot, Outcome, Session};
use xtask::test::{KERNEL_ENV, ROOT_ENV, SYSTEMS_ENV, VARIANTS_ENV};

/// The kernel and root image to boot, from the environment `cargo xtask test` sets.
pub fn image() -> (PathBuf, PathBuf) {
    let get = |name: &str| {
        std::env::var_os(name).map(PathBuf::from).unwrap_or_else(|| {
            panic!("{name} is not set: run the system tests with `cargo xtask test`, which builds the image first")
        })
    };
    (get(KERNEL_ENV), get(ROOT_ENV))
}

/// The images of the system descriptions the tests boot: (system name, kernel, root).
pub fn system_images() -> Vec<(String, PathBuf, PathBuf)> {
    triples(SYSTEMS_ENV)
}

/// Boots the system image built from the description named `system`.
pub fn boot_system(system: &str, log: &str) -> Session {
    let (_, kernel, root) = system_images()
        .into_iter()
        .find(|(name, _, _)| name == system)
        .unwrap_or_else(|| {
            panic!("no image of system `{system}` was built (see xtask::test::TEST_SYSTEMS)")
        });
    boot_image(log, kernel, root)
}

/// The other kernel variants' images: (variant, kernel, root).
pub fn variant_images() -> Vec<(String, PathBuf, PathBuf)> {
    triples(VARIANTS_ENV)
}

fn triples(var: &str) -> Vec<(String, PathBuf, PathBuf)> {
    let text = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the system tests with `cargo xtask test`")
    });
    text.split(';')
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let parts: Vec<&str> = entry.split('|').collect();
            assert_eq!(parts.len(), 3, "malformed {var} entry {entry:?}");
            (
                parts[0].to_string(),
                PathBuf::from(parts[1]),
                PathBuf::from(parts[2]),
            )
        })
        .collect()
}

/// Boots the default image; `name` names the serial log (`target/logs/<name>.log`).
pub fn boot(name: &str) -> Session {
    let (kernel, root) = image();
    boot_image(name, kernel, root)
}

/// Boots `kernel` with `root`; `name` names the serial log (`target/logs/<name>.log`).
pub fn boot_image(name: &str, kernel: PathBuf, root: PathBuf) -> Session {
    let log = xtask::target_dir().join("logs").join(format!("{name}.log"));
    let mut boot = Boot::new(kernel, root, log);
    boot.timeout = Duration::from_secs(180);
    Session::start(&boot, false).unwrap_or_else(|e| panic!("cannot boot: {e}"))
}

/// Boots, waits for the system to halt by itself, and returns its output and status.
pub fn boot_to_halt(name: &str) -> (String, Outcome) {
    let mut session = boot(name);
    let outcome = session.wait_exit();
    (session.output(), outcome)
}

/// The lines of `output` that start with `prefix`, with the prefix removed.
pub fn lines_with<'a>(output: &'a str, prefix: &str) -> Vec<&'a str> {
    output
        .lines()
        .filter_map(|l| l.trim_matches('\r').strip_prefix(prefix))
        .collect()
}
