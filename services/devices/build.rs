//! Links the device access service as an seL4 component image (see sys/component-build), and
//! tells it which interrupt controller the kernel drives (`cfg(irq_pic)` for the PIC variant).
fn main() {
    component_build::link();
    println!("cargo::rustc-check-cfg=cfg(irq_pic)");
    println!("cargo:rerun-if-env-changed=TESSERA_KERNEL_VARIANT");
    let variant = std::env::var("TESSERA_KERNEL_VARIANT").unwrap_or_default();
    if variant.split(',').any(|axis| axis.trim() == "irq=pic") {
        println!("cargo:rustc-cfg=irq_pic");
    }
}
