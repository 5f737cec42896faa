//! Links the root task as an seL4 component image (see sys/component-build) and
//! embeds the boot image `xtask` packed (`TESSERA_IMAGE`), or an empty one.
use std::path::PathBuf;

fn main() {
    component_build::link();
    println!("cargo:rerun-if-env-changed=TESSERA_IMAGE");
    let image = match std::env::var_os("TESSERA_IMAGE") {
        Some(path) => PathBuf::from(path),
        None => {
            let empty = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("empty.img");
            std::fs::write(&empty, b"").unwrap();
            empty
        }
    };
    println!("cargo:rerun-if-changed={}", image.display());
    println!("cargo:rustc-env=TESSERA_IMAGE_PATH={}", image.display());
}
