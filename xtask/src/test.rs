//! `cargo xtask test`: host unit tests, then the whole-system tests that boot QEMU.

use crate::{build, step, workspace_root, Result};
use kernel_support::Variant;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Environment variable through which system tests find the kernel to boot.
pub const KERNEL_ENV: &str = "TESSERA_TEST_KERNEL";
/// Environment variable through which system tests find the root task image.
pub const ROOT_ENV: &str = "TESSERA_TEST_ROOT";
/// Environment variable listing the other kernel variants' images:
/// `variant|kernel|root` entries separated by `;`.
pub const VARIANTS_ENV: &str = "TESSERA_TEST_VARIANTS";
/// Environment variable listing the system images the tests boot: `name|kernel|root`
/// entries separated by `;`.
pub const SYSTEMS_ENV: &str = "TESSERA_TEST_SYSTEMS";
/// System descriptions every test run builds (default kernel variant).
pub const TEST_SYSTEMS: &[&str] = &[
    "systems/default.toml",
    "systems/tests/procsup.toml",
    "systems/tests/ipcfuzz.toml",
    "systems/tests/peer-errors.toml",
    "systems/keystore.toml",
    "systems/tests/keystore-steal.toml",
    "systems/bench/keystore.toml",
    "systems/net-unikernel.toml",
    "systems/net-unikernel-virtio.toml",
    "systems/net-shared.toml",
    "systems/net-shared-isolated.toml",
    "systems/tests/net-hostile.toml",
    "systems/tests/net-msix.toml",
    "systems/tests/net-msix-virtio.toml",
    "systems/bench/micro.toml",
    "systems/tests/blk.toml",
    "systems/tests/blk-ioapic.toml",
    "systems/files.toml",
    "systems/tests/files-faults.toml",
    "systems/tests/linux-busybox.toml",
    "systems/bench/files.toml",
];
/// System descriptions that are valid but name binaries that do not exist yet, so no test
/// run builds them (systems/README.md marks them "planned").
pub const PLANNED_SYSTEMS: &[&str] = &[];
/// Kernel variants besides the default that every test run builds and boots.
pub const TEST_VARIANTS: &[&str] = &["irq=pic", "bench=entries", "bench=utilisation"];

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

/// Runs `cargo test` with `args`, passing its output through and adding up its result lines.
fn cargo_test(args: &[&str], envs: &[(&str, String)], tally: &mut Tally) -> Result<bool> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .arg("test")
        .args(args)
        .stdout(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let words: Vec<&str> = part.split_whitespace().collect();
                let n = |w: &[&str]| w.iter().find_map(|x| x.parse::<u64>().ok()).unwrap_or(0);
                if part.contains(" passed") {
                    tally.passed += n(&words);
                } else if part.contains(" failed") {
                    tally.failed += n(&words);
                } else if part.contains(" ignored") {
                    tally.ignored += n(&words);
                }
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok(status.success())
}

/// Runs the host unit tests and (unless `host_only`) the QEMU system tests; prints a
/// final `N passed, N failed` line.
pub fn run(host_only: bool) -> Result<()> {
    let mut tally = Tally::default();
    let mut ok = true;

    // The sel4 bindings are generated from the kernel source: make sure it is here.
    crate::kernel::source()?;
    // The iperf server's tests drive the stock iperf3 client when it is installed.
    crate::host::ensure(crate::host::Purpose::Iperf)?;
    // The FAT library's tests make and check images with dosfstools and mtools.
    crate::host::ensure(crate::host::Purpose::Fat)?;
    // The Linux layer's tests load Debian's iperf3 and busybox-static.
    crate::host::ensure(crate::host::Purpose::Linux)?;
    step("host unit tests");
    // Component binaries have `test = false`: this runs their libraries' tests.
    let args = ["--workspace", "--no-fail-fast", "--exclude", "system-tests"];
    ok &= cargo_test(&args, &[], &mut tally)?;

    if !host_only {
        let image = build::image(&Variant::default(), None)?;
        let mut variants = Vec::new();
        for v in TEST_VARIANTS {
            let other = build::image(&Variant::parse(v).map_err(|e| e.to_string())?, None)?;
            variants.push(format!(
                "{v}|{}|{}",
                other.kernel.elf32.display(),
                other.root.display()
            ));
        }
        let mut systems = Vec::new();
        for file in TEST_SYSTEMS {
            let path = workspace_root().join(file);
            let name = crate::build::load_system(&path)?.name;
            let built = build::image(&Variant::default(), Some(&path))?;
            systems.push(format!(
                "{name}|{}|{}",
                built.kernel.elf32.display(),
                built.root.display()
            ));
        }
        step("system tests (QEMU, TCG)");
        let envs = [
            (KERNEL_ENV, image.kernel.elf32.display().to_string()),
            (ROOT_ENV, image.root.display().to_string()),
            (VARIANTS_ENV, variants.join(";")),
            (SYSTEMS_ENV, systems.join(";")),
        ];
        ok &= cargo_test(&["-p", "system-tests", "--no-fail-fast"], &envs, &mut tally)?;
    }

    println!();
    println!(
        "{} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.ignored
    );
    if ok && tally.failed == 0 {
        Ok(())
    } else {
        Err("some tests failed".into())
    }
}

/// That every workspace member inherits the workspace lints ([`crate::lints`]), then
/// `cargo fmt --check`, and clippy with warnings as errors on every crate and target
/// (the component binaries in an invocation of their own).
pub fn lint() -> Result<()> {
    step("every workspace member inherits the workspace lints");
    crate::lints::check()?;
    crate::kernel::source()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    step("cargo fmt --all --check");
    let fmt = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(["fmt", "--all", "--check"])
        .status()
        .map_err(|e| format!("cannot run cargo fmt: {e}"))?;
    // Everything but the component binaries (their `component` feature is off), then
    // the component binaries alone: see build::component_packages.
    let components = build::component_packages();
    let clippy = |what: &str, selection: &[String]| -> Result<bool> {
        step(&format!("cargo clippy ({what}) -- -D warnings"));
        Command::new(&cargo)
            .current_dir(workspace_root())
            .arg("clippy")
            .args(selection)
            .args(["--quiet", "--", "-D", "warnings"])
            .status()
            .map(|s| s.success())
            .map_err(|e| format!("cannot run cargo clippy: {e}"))
    };
    let all = ["--workspace".to_string(), "--all-targets".to_string()];
    let mut bins = Vec::new();
    for c in &components {
        bins.extend(["-p".to_string(), c.clone()]);
    }
    bins.extend([
        "--bins".to_string(),
        "--features".to_string(),
        build::component_features(&components),
    ]);
    let clippy_ok = clippy("every crate and target", &all)? & clippy("component binaries", &bins)?;
    match (fmt.success(), clippy_ok) {
        (true, true) => Ok(()),
        (false, _) => Err("formatting differs: run `cargo fmt --all`".into()),
        (_, false) => Err("clippy found problems (see above)".into()),
    }
}

/// Every description under `systems/` (relative to the workspace root, sorted).
pub fn all_systems() -> Result<Vec<String>> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                walk(&path, root, out)?;
            } else if path.extension().is_some_and(|x| x == "toml") {
                let relative = path.strip_prefix(root).map_err(|e| e.to_string())?;
                out.push(relative.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }
    let root = workspace_root();
    let mut out = Vec::new();
    walk(&root.join("systems"), &root, &mut out)?;
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_description_is_built_by_the_tests_or_marked_planned() {
        let all = all_systems().unwrap();
        assert!(all.len() >= TEST_SYSTEMS.len() + PLANNED_SYSTEMS.len());
        for file in &all {
            let built = TEST_SYSTEMS.contains(&file.as_str());
            let planned = PLANNED_SYSTEMS.contains(&file.as_str());
            assert!(
                built ^ planned,
                "{file}: add it to TEST_SYSTEMS (built and booted by every test run) or, if \
                 the binaries it names do not exist yet, to PLANNED_SYSTEMS (xtask/src/test.rs)"
            );
        }
        for file in TEST_SYSTEMS.iter().chain(PLANNED_SYSTEMS) {
            assert!(
                all.iter().any(|f| f == file),
                "{file} is listed but does not exist"
            );
        }
    }

    #[test]
    fn the_systems_readme_says_which_descriptions_run_and_which_are_planned() {
        let readme = std::fs::read_to_string(workspace_root().join("systems/README.md")).unwrap();
        for file in all_systems().unwrap() {
            let Some(name) = file.strip_prefix("systems/").filter(|n| !n.contains('/')) else {
                continue; // tests/ and bench/ are described in prose
            };
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{name}` |")))
                .unwrap_or_else(|| panic!("systems/README.md has no table row for {name}"));
            let state = row.trim_end_matches('|').rsplit('|').next().unwrap().trim();
            let expected = if PLANNED_SYSTEMS.contains(&file.as_str()) {
                "planned"
            } else {
                "runs"
            };
            assert_eq!(state, expected, "systems/README.md's row for {name}");
        }
    }
}
