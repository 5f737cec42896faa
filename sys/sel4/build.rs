//! Generates the kernel bindings for the configured kernel into `OUT_DIR`.

use kernel_support::{KernelConfig, Variant, SOURCE_ENV, VARIANT_ENV};
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed={VARIANT_ENV}");
    println!("cargo:rerun-if-env-changed={SOURCE_ENV}");
    println!("cargo::rustc-check-cfg=cfg(sel4_config, values(any()))");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = kernel_support::workspace_root(&manifest);
    let config_path = root.join("kernel/config.toml");
    println!("cargo:rerun-if-changed={}", config_path.display());
    let fail = |e: &dyn std::fmt::Display| -> ! {
        eprintln!("error: sel4 bindings: {e}");
        std::process::exit(1);
    };
    let config = KernelConfig::load(&config_path)
        .and_then(|c| c.resolve(&Variant::from_env()?))
        .unwrap_or_else(|e| fail(&e));
    let src = kernel_support::locate_source().unwrap_or_else(|e| fail(&e));
    for f in sel4_gen::input_files() {
        println!("cargo:rerun-if-changed={}", src.join(f).display());
    }
    let bindings = sel4_gen::generate(&src, &config).unwrap_or_else(|e| fail(&e));
    for flag in &bindings.config_flags {
        println!("cargo:rustc-cfg=sel4_config=\"{flag}\"");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    write(&out.join("generated.rs"), &bindings.code);
}

fn write(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
