//! Building the components (the `no_std` binaries that run on seL4) and the boot image.

use crate::kernel::{self, Kernel};
use crate::{step, target_dir, workspace_root, Result};
use std::path::PathBuf;
use std::process::Command;
use tessera_kernel::Variant;

/// Everything a boot needs: the kernel and the root task image.
#[derive(Debug, Clone)]
pub struct Image {
    /// The built kernel.
    pub kernel: Kernel,
    /// The root task ELF, given to QEMU as the first multiboot module.
    pub root: PathBuf,
}

/// The components built into the image (packages under `services/` and `apps/`).
pub const COMPONENTS: &[&str] = &["root"];

/// Builds the components for `variant` (release profile, a target folder per kernel
/// variant so switching variants does not rebuild everything).
pub fn components(variant_env: &str, dir_name: &str) -> Result<PathBuf> {
    let target = target_dir().join("sys").join(dir_name);
    step(&format!("building components ({})", COMPONENTS.join(", ")));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--release"])
        .arg("--target-dir")
        .arg(&target)
        .env(tessera_kernel::VARIANT_ENV, variant_env);
    for c in COMPONENTS {
        cmd.args(["-p", c]);
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the components failed (see the errors above)".into());
    }
    Ok(target.join("release"))
}

/// Builds the kernel and the components for `variant`.
pub fn image(variant: &Variant) -> Result<Image> {
    let kernel = kernel::build(variant)?;
    let dir_name = kernel::variant_dir_name(&kernel.config);
    let bin = components(&kernel.config.variant.to_env_string(), &dir_name)?;
    let root = bin.join("root");
    if !root.is_file() {
        return Err(format!("{} was not built", root.display()));
    }
    Ok(Image { kernel, root })
}
