//! Links `linux` as an seL4 component based at 0x1000_0000 (the programs it hosts, such
//! as busybox-static, are linked at 0x400000), and finds the program it embeds: Debian's
//! `/bin/busybox` from the `busybox-static` package (`TESSERA_BUSYBOX` names another).
fn main() {
    component_build::link_at(0x1000_0000);
    println!("cargo:rerun-if-env-changed=TESSERA_BUSYBOX");
    if std::env::var_os("CARGO_FEATURE_COMPONENT").is_some() {
        let path = std::env::var("TESSERA_BUSYBOX").unwrap_or_else(|_| "/bin/busybox".into());
        if !std::path::Path::new(&path).is_file() {
            panic!(
                "{path} is missing: the linux component embeds Debian's static busybox \
                 (apt-get install busybox-static, or set TESSERA_BUSYBOX)"
            );
        }
        println!("cargo:rerun-if-changed={path}");
        println!("cargo:rustc-env=TESSERA_BUSYBOX={path}");
    }
}
