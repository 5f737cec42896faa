//! Tessera's host tool as a library: host package checks, the seL4 kernel
//! build, the component and image build, and the QEMU runner. The `xtask`
//! binary is its command line; whole-system tests (`system-tests/`) use the same
//! runner so every boot has a timeout and keeps its serial log.

pub mod bench;
pub mod build;
pub mod derive;
pub mod host;
pub mod kernel;
pub mod lints;
pub mod linux;
pub mod loc;
pub mod qemu;
pub mod soak;
pub mod test;

use std::path::{Path, PathBuf};

/// A failure of a host step, with a message meant for the person at the terminal.
pub type Result<T> = std::result::Result<T, String>;

/// The workspace root (the folder holding `kernel/config.toml`).
pub fn workspace_root() -> PathBuf {
    kernel_support::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// Where build products go: `<workspace>/target`, or `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Prints a progress line for a long step.
pub fn step(what: &str) {
    eprintln!("\x1b[1m==>\x1b[0m {what}");
}
