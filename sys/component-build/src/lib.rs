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
