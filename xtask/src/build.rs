//! Building the components (the `no_std` binaries that run on seL4) and the boot image.

use crate::kernel::{self, Kernel};
use crate::{step, target_dir, workspace_root, Result};
use kernel_support::Variant;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everything a boot needs: the kernel and the root task image.
#[derive(Debug, Clone)]
pub struct Image {
    /// The built kernel.
    pub kernel: Kernel,
    /// The root task ELF, given to QEMU as the first multiboot module: a copy per system
    /// (`target/sys/<variant>/images/<system>.root.elf`, or `foundation.root.elf`
    /// without one). It embeds the boot image when a system was given.
    pub root: PathBuf,
}

/// The root task's package (always built, last, with the boot image embedded).
pub const ROOT: &str = "root";

/// Every component package: a package under `services/` or `apps/` whose build script
/// uses `component-build` (a `no_std` binary for seL4). Returned as package names.
///
/// A component's binary has `required-features = ["component"]`, and only xtask turns
/// that feature on, in invocations that build nothing else: in one cargo invocation
/// features unify, and a host crate's (or a test's) `std` feature on a shared
/// dependency such as serde would link `std` into the component. Without the feature
/// `cargo test` and clippy skip the binary and check the package's library and tests.
pub fn component_packages() -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["services", "apps"] {
        let Ok(entries) = std::fs::read_dir(workspace_root().join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let manifest = e.path().join("Cargo.toml");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            if text.contains("component-build") {
                found.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// The `--features` value that turns on the component binaries of `packages`.
pub fn component_features<S: AsRef<str>>(packages: &[S]) -> String {
    packages
        .iter()
        .map(|p| format!("{}/component", p.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Finds the package that builds component binary `binary`: `services/<binary>` or
/// `apps/<binary>`, with a `src/main.rs`.
pub fn component_package(binary: &str) -> Option<PathBuf> {
    ["services", "apps"]
        .iter()
        .map(|dir| workspace_root().join(dir).join(binary))
        .find(|p| p.join("Cargo.toml").is_file() && p.join("src/main.rs").is_file())
}

fn cargo_build(
    target: &Path,
    variant_env: &str,
    packages: &[&str],
    image: Option<&Path>,
) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--release"])
        .arg("--target-dir")
        .arg(target)
        .env(kernel_support::VARIANT_ENV, variant_env);
    match image {
        Some(path) => cmd.env("TESSERA_IMAGE", path),
        None => cmd.env_remove("TESSERA_IMAGE"),
    };
    for p in packages {
        cmd.args(["-p", p]);
    }
    cmd.arg("--features").arg(component_features(packages));
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "building {} failed (see the errors above)",
            packages.join(", ")
        ))
    }
}

/// Reads and checks a system description; the error lists every problem as
/// `file:line:column: message`.
pub fn load_system(path: &Path) -> Result<sysdesc::System> {
    sysdesc_toml::load(path).map_err(|d| {
        format!(
            "{} is not a valid system description:\n{}",
            path.display(),
            sysdesc_toml::render(&d)
        )
    })
}

/// The argument value that asks for a secret made at build time.
pub const BUILD_SEED: &str = "build";

/// Replaces every component argument `seed = "build"` with 64 hex digits of a secret kept in
/// `dir/<system>.<component>.seed`, made from the host's `/dev/urandom` the first time and
/// reused after (so the image, and the keys seeded from it, stay the same between builds,
/// and the secret is never in the repository).
pub fn fill_build_seeds(system: &mut sysdesc::System, dir: &Path) -> Result<()> {
    for c in &mut system.components {
        if c.args.get("seed").map(String::as_str) != Some(BUILD_SEED) {
            continue;
        }
        let path = dir.join(format!("{}.{}.seed", system.name, c.name));
        let bytes = match std::fs::read(&path) {
            Ok(b) if b.len() == 32 => b,
            _ => {
                let mut b = vec![0u8; 32];
                let mut random = std::fs::File::open("/dev/urandom")
                    .map_err(|e| format!("/dev/urandom: {e}"))?;
                std::io::Read::read_exact(&mut random, &mut b)
                    .map_err(|e| format!("/dev/urandom: {e}"))?;
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                std::fs::write(&path, &b).map_err(|e| format!("{}: {e}", path.display()))?;
                b
            }
        };
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        c.args.insert("seed".to_string(), hex);
    }
    Ok(())
}

/// The argument value that asks for the components routed to this one.
pub const ROUTED: &str = "routed";

/// Replaces every component argument `clients = "routed"` with `ID:NAME,...` of every
/// component routed to a service the component provides (the key store binds sealed keys to
/// its clients' names, and learns them from its description this way).
pub fn fill_routed_clients(system: &mut sysdesc::System) {
    let table: Vec<(usize, String)> = system
        .components
        .iter()
        .enumerate()
        .filter(|(_, c)| c.args.get("clients").map(String::as_str) == Some(ROUTED))
        .map(|(i, c)| {
            let clients: Vec<String> = system
                .iter()
                .filter(|(_, other)| other.routes.iter().any(|r| c.provides(r)))
                .map(|(id, other)| format!("{}:{}", id.0, other.name))
                .collect();
            (i, clients.join(","))
        })
        .collect();
    for (i, clients) in table {
        system.components[i]
            .args
            .insert("clients".to_string(), clients);
    }
}

/// Builds the components `system` names and packs them with its description into a
/// boot image file; returns its path.
fn pack(system_path: &Path, target: &Path, variant_env: &str) -> Result<PathBuf> {
    let mut system = load_system(system_path)?;
    fill_build_seeds(&mut system, &target_dir().join("seeds"))?;
    fill_routed_clients(&mut system);
    let mut binaries: Vec<&str> = system
        .components
        .iter()
        .map(|c| c.binary.as_str())
        .collect();
    binaries.sort_unstable();
    binaries.dedup();
    for b in &binaries {
        if component_package(b).is_none() {
            let users: Vec<&str> = system
                .components
                .iter()
                .filter(|c| c.binary == *b)
                .map(|c| c.name.as_str())
                .collect();
            return Err(format!(
                "{}: component {} uses binary `{b}`, but there is no package services/{b} or apps/{b} with a src/main.rs",
                system_path.display(),
                users.join(", ")
            ));
        }
    }
    // The `linux` component embeds Debian's static busybox (busybox-static).
    if binaries.contains(&"linux") {
        crate::host::ensure(crate::host::Purpose::Linux)?;
    }
    step(&format!(
        "building {} components of system `{}`",
        binaries.len(),
        system.name
    ));
    cargo_build(target, variant_env, &binaries, None)?;
    let mut writer = bootimage::Writer::new();
    writer.add(bootimage::Kind::System, "system", system.encode())?;
    for b in &binaries {
        let elf = stripped(&target.join("release").join(b), &target.join("stripped"))?;
        let bytes = std::fs::read(&elf).map_err(|e| format!("{}: {e}", elf.display()))?;
        writer.add(bootimage::Kind::Elf, b, bytes)?;
    }
    let bytes = writer.finish()?;
    let dir = target.join("images");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{}.img", system.name));
    // Write only on change, so the root task is not rebuilt for nothing.
    if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
        std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    step(&format!(
        "boot image {} ({} KiB)",
        path.display(),
        bytes.len() / 1024
    ));
    Ok(path)
}

/// A copy of component binary `elf` in `dir` without its debugging sections, which the
/// loader never reads: boot images shrink about tenfold (the binary under `release/`
/// keeps them, for `addr2line` on a fault address). Made with binutils' `objcopy`, a
/// kernel build need.
fn stripped(elf: &Path, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = dir.join(elf.file_name().expect("a binary's path ends in its name"));
    let status = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(elf)
        .arg(&out)
        .status()
        .map_err(|e| format!("cannot run objcopy: {e}"))?;
    if !status.success() {
        return Err(format!("objcopy --strip-debug {} failed", elf.display()));
    }
    Ok(out)
}

/// Builds the kernel for `variant` and the root task; with `system`, also that
/// system's components, packed into the boot image the root task embeds.
pub fn image(variant: &Variant, system: Option<&Path>) -> Result<Image> {
    // Check the description before the long steps.
    if let Some(path) = system {
        load_system(path)?;
    }
    let kernel = kernel::build(variant)?;
    let dir_name = kernel::variant_dir_name(&kernel.config);
    let variant_env = kernel.config.variant.to_env_string();
    let target = target_dir().join("sys").join(dir_name);
    let image = match system {
        Some(path) => Some(pack(path, &target, &variant_env)?),
        None => None,
    };
    step("building the root task");
    cargo_build(&target, &variant_env, &[ROOT], image.as_deref())?;
    let built = target.join("release").join(ROOT);
    if !built.is_file() {
        return Err(format!("{} was not built", built.display()));
    }
    // Each system gets its own copy of the root task, so booting one system never
    // picks up an image another build has just put in place.
    let root = match &image {
        Some(img) => img.with_extension("root.elf"),
        None => target.join("images").join("foundation.root.elf"),
    };
    std::fs::create_dir_all(root.parent().expect("a file in a folder"))
        .map_err(|e| e.to_string())?;
    std::fs::copy(&built, &root).map_err(|e| format!("{}: {e}", root.display()))?;
    Ok(Image { kernel, root })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routed_clients_are_named_with_their_ids() {
        let mut system = load_system(&workspace_root().join("systems/keystore.toml")).unwrap();
        let keystore = system
            .components
            .iter()
            .position(|c| c.name == "keystore")
            .unwrap();
        system.components[keystore]
            .args
            .insert("clients".to_string(), ROUTED.to_string());
        fill_routed_clients(&mut system);
        let id = |name: &str| system.component_id(name).unwrap().0;
        assert_eq!(
            system.components[keystore].args["clients"],
            format!("{}:signer,{}:verifier", id("signer"), id("verifier"))
        );
    }

    #[test]
    fn build_seeds_are_made_once_kept_and_never_in_the_description() {
        let path = workspace_root().join("systems/keystore.toml");
        let dir = std::env::temp_dir().join(format!("tessera-seeds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let seed_of = |s: &sysdesc::System| {
            s.components
                .iter()
                .find(|c| c.name == "keystore")
                .and_then(|c| c.args.get("seed").cloned())
        };
        let mut first = load_system(&path).unwrap();
        assert_eq!(seed_of(&first).as_deref(), Some(BUILD_SEED));
        fill_build_seeds(&mut first, &dir).unwrap();
        let hex = seed_of(&first).unwrap();
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(dir.join("keystore.keystore.seed").is_file());
        // The next build reuses it; other components' arguments are untouched.
        let mut second = load_system(&path).unwrap();
        fill_build_seeds(&mut second, &dir).unwrap();
        assert_eq!(seed_of(&second), Some(hex.clone()));
        let signer = |s: &sysdesc::System| {
            s.components
                .iter()
                .find(|c| c.name == "signer")
                .map(|c| c.args.clone())
        };
        assert_eq!(signer(&first), signer(&load_system(&path).unwrap()));
        // Another checkout (another folder) gets another secret.
        let other_dir = dir.join("other");
        let mut third = load_system(&path).unwrap();
        fill_build_seeds(&mut third, &other_dir).unwrap();
        assert_ne!(seed_of(&third), Some(hex));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
