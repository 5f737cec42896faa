//! Build-script support for Tessera component binaries: the link arguments that
//! make a `no_std` binary for the host target into an seL4 component image
//! (static, not position independent, no C start files, based at 0x400000).

/// The linker arguments every component binary needs.
pub const LINK_ARGS: &[&str] = &[
    "-nostartfiles",
    "-nostdlib",
    "-static",
    "-Wl,-no-pie",
    "-Wl,--image-base=0x400000",
    "-Wl,--build-id=none",
];

/// Emits the component link arguments for the calling package's binaries; call it
/// from the package's `build.rs`.
pub fn link() {
    for arg in LINK_ARGS {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}

/// As [`link`], but based at `base` instead of 0x400000 (below the loader's
/// `IMAGE_LIMIT`, 0x3000_0000): for a component that hosts a Linux program linked at
/// 0x400000 itself.
pub fn link_at(base: u64) {
    for arg in LINK_ARGS {
        let arg = if arg.starts_with("-Wl,--image-base=") {
            format!("-Wl,--image-base={base:#x}")
        } else {
            (*arg).to_string()
        };
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
