//! Fetching and building the seL4 kernel for one configuration variant.

use crate::{host, step, target_dir, workspace_root, Result};
use kernel_support::{KernelConfig, Resolved, Variant};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Our C supplements in `kernel/extra/`, concatenated into the kernel's compilation
/// unit by `kernel/extra/tessera.mk` (each is empty unless its configuration is on).
const EXTRA_SOURCES: &[&str] = &["cache.c", "benchmark_log.c", "stack.c"];

/// A built kernel: the ELF QEMU's multiboot loader takes, and its configuration.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The kernel as a 32-bit ELF (what QEMU's `-kernel` multiboot loader wants).
    pub elf32: PathBuf,
    /// The kernel as built (64-bit ELF, with symbols).
    pub elf: PathBuf,
    /// The configuration it was built with.
    pub config: Resolved,
}

/// Reads `kernel/config.toml` and applies `variant`.
pub fn resolve(variant: &Variant) -> Result<Resolved> {
    let path = workspace_root().join("kernel/config.toml");
    let config = KernelConfig::load(&path).map_err(|e| e.to_string())?;
    config.resolve(variant).map_err(|e| e.to_string())
}

/// A folder-safe name for a variant, e.g. `bench-none.irq-ioapic`.
pub fn variant_dir_name(config: &Resolved) -> String {
    config
        .variant
        .to_env_string()
        .replace('=', "-")
        .replace(',', ".")
}

/// The seL4 source tree: `TESSERA_SEL4_SRC`, or the pinned registry package (fetched if needed).
pub fn source() -> Result<PathBuf> {
    if let Ok(dir) = kernel_support::locate_source() {
        return Ok(dir);
    }
    if std::env::var_os(kernel_support::SOURCE_ENV).is_some() {
        return kernel_support::locate_source().map_err(|e| e.to_string());
    }
    step("fetching seL4 5.0.0 (crates.io package sel4-sys 0.0.28, source only)");
    let manifest = workspace_root().join("kernel/fetch/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["fetch", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .status()
        .map_err(|e| format!("cannot run cargo fetch: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`cargo fetch --manifest-path {}` failed",
            manifest.display()
        ));
    }
    let out = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let manifest_path = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == kernel_support::PINNED_PACKAGE)
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or("cargo metadata does not list sel4-sys")?;
    let dir = Path::new(manifest_path).parent().unwrap().join("seL4");
    kernel_support::check_source(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// The compiler flags for the kernel: the tree's own set, adjusted for gcc 12.
fn cflags(src: &Path) -> String {
    let arch = src.join("include/arch/x86/arch/64");
    let plat = src.join("include/plat/pc99/plat/64");
    [
        "-m64 -fno-asynchronous-unwind-tables --std=c99 -nostdlib -nostdinc -ffreestanding",
        "-Wall -Wstrict-prototypes -Wmissing-prototypes -Wnested-externs",
        "-Wmissing-declarations -Wundef -Wpointer-arith -Wno-nonnull",
        &format!("-I{} -I{}", arch.display(), plat.display()),
        "-fno-pic -O2 -mno-mmx -mno-sse -mno-sse2 -mno-3dnow -mcmodel=kernel",
        // gcc 12: the 2017 tree trips newer warnings and default hardening.
        "-Wno-error -Wno-address-of-packed-member -fno-pie -fno-stack-protector",
        "-fcf-protection=none -DDEBUG",
    ]
    .join(" ")
}

/// A fingerprint of every file in the source tree (path, size, modification time).
fn fingerprint_tree(dir: &Path, hasher: &mut Sha256) {
    let mut entries: Vec<_> = match fs::read_dir(dir) {
        Ok(rd) => rd.flatten().collect(),
        Err(_) => return,
    };
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            fingerprint_tree(&path, hasher);
        } else {
            hasher.update(path.to_string_lossy().as_bytes());
            hasher.update(meta.len().to_le_bytes());
            if let Ok(t) = meta.modified() {
                hasher.update(format!("{t:?}").as_bytes());
            }
        }
    }
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn run_logged(cmd: &mut Command, log: &Path, what: &str) -> Result<()> {
    let file = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let status = cmd
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file)
        .status()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(25).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "{what} failed ({status}); last lines of {}:\n{}",
        log.display(),
        tail.join("\n")
    ))
}

/// Builds the kernel for `variant` under `target/kernel/<variant>/`, unless the
/// configuration and the source are unchanged since the last build.
pub fn build(variant: &Variant) -> Result<Kernel> {
    let config = resolve(variant)?;
    host::ensure(host::Purpose::Kernel)?;
    let src = source()?;
    let dir = target_dir().join("kernel").join(variant_dir_name(&config));
    let elf = dir.join("kernel.elf");
    let elf32 = dir.join("kernel32.elf");
    let autoconf = config.autoconf_h();
    let flags = cflags(&src);
    let extra_dir = workspace_root().join("kernel/extra");
    let extra_sources: Vec<PathBuf> = EXTRA_SOURCES.iter().map(|f| extra_dir.join(f)).collect();
    let extra_mk = extra_dir.join("tessera.mk");
    let extra_h = extra_dir.join("tessera_kernel.h");

    let mut hasher = Sha256::new();
    hasher.update(autoconf.as_bytes());
    hasher.update(flags.as_bytes());
    hasher.update(src.to_string_lossy().as_bytes());
    for f in extra_sources.iter().chain([&extra_mk, &extra_h]) {
        hasher.update(fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    fingerprint_tree(&src, &mut hasher);
    let stamp: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stamp_path = dir.join("stamp");
    if elf32.is_file() && fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(Kernel { elf32, elf, config });
    }

    step(&format!(
        "building seL4 5.0.0 ({}) in {}",
        config.variant.to_env_string(),
        dir.display()
    ));
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let gen = dir.join("include/generated");
    fs::create_dir_all(&gen).map_err(|e| format!("{}: {e}", gen.display()))?;
    write_if_changed(&gen.join("autoconf.h"), &autoconf)?;

    // The kernel's generator scripts start with `#!/usr/bin/env python`: give them
    // an interpreter that has tempita and ply.
    let python = host::kernel_python().ok_or("no python3 with tempita and ply")?;
    let shim = dir.join("pybin");
    fs::create_dir_all(&shim).map_err(|e| e.to_string())?;
    let python_path = Command::new("sh")
        .args(["-c", &format!("command -v {python}")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or(python.clone());
    let _ = fs::remove_file(shim.join("python"));
    std::os::unix::fs::symlink(&python_path, shim.join("python")).map_err(|e| e.to_string())?;
    let path_env = format!(
        "{}:{}",
        shim.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let makefile = src.join("Makefile");
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    run_logged(
        Command::new("make")
            .current_dir(&dir)
            .arg(format!("-j{jobs}"))
            .arg("-f")
            .arg(&makefile)
            .arg("-f")
            .arg(&extra_mk)
            .arg(format!("SOURCE_ROOT={}", src.display()))
            .arg(format!("srctree={}", dir.display()))
            .args([
                "ARCH=x86",
                "SEL4_ARCH=x86_64",
                "PLAT=pc99",
                "HAVE_AUTOCONF=1",
            ])
            .args([
                "PYTHON=python",
                "TOOLPREFIX=",
                "DEBUG=1",
                "CIRCULAR_INCLUDES=true",
            ])
            .arg(format!("CONFIG_KERNEL_CFLAGS={flags}"))
            .arg(format!(
                "CONFIG_KERNEL_EXTRA_CPPFLAGS=-I{} -DDEBUG -include {}",
                gen.display(),
                extra_h.display()
            ))
            .arg(format!(
                "TESSERA_EXTRA_SOURCES={}",
                join_paths(&extra_sources)
            ))
            .arg("kernel.elf")
            .env("PATH", &path_env),
        &dir.join("build.log"),
        "the seL4 kernel build",
    )?;
    check_stack_alignment(&elf)?;
    run_logged(
        Command::new("objcopy")
            .args(["-O", "elf32-i386"])
            .arg(&elf)
            .arg(&elf32),
        &dir.join("objcopy.log"),
        "objcopy to elf32-i386",
    )?;
    fs::write(&stamp_path, stamp).map_err(|e| e.to_string())?;
    Ok(Kernel { elf32, elf, config })
}

/// Checks that the kernel's stack (`kernel_stack_alloc`) starts on a 4 KiB boundary.
/// seL4 5.0.0's x86_64 `restore_user_context` finds the stack top of a nested interrupt
/// as `(rsp & ~0xfff) + 0x1000`; with a less aligned stack that lands on other kernel data
/// (it overwrote interrupt gates; `kernel/extra/stack.c` aligns it, docs/NETWORK.md).
pub fn check_stack_alignment(elf_path: &Path) -> Result<()> {
    use elf::endian::AnyEndian;
    let bytes = fs::read(elf_path).map_err(|e| format!("{}: {e}", elf_path.display()))?;
    let file = elf::ElfBytes::<AnyEndian>::minimal_parse(&bytes)
        .map_err(|e| format!("{}: {e}", elf_path.display()))?;
    let (symbols, names) = file
        .symbol_table()
        .map_err(|e| format!("{}: {e}", elf_path.display()))?
        .ok_or_else(|| format!("{}: no symbol table", elf_path.display()))?;
    let stack = symbols
        .iter()
        .find(|sym| names.get(sym.st_name as usize).ok() == Some("kernel_stack_alloc"))
        .ok_or_else(|| format!("{}: no kernel_stack_alloc symbol", elf_path.display()))?;
    if !stack.st_value.is_multiple_of(0x1000) {
        return Err(format!(
            "{}: kernel_stack_alloc at {:#x} is not 4 KiB aligned; seL4 5.0.0's nested interrupt path would run on other kernel data (see kernel/extra/stack.c)",
            elf_path.display(),
            stack.st_value
        ));
    }
    Ok(())
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}
