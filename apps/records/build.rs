//! Links the records client as an seL4 component image (see sys/component-build).
fn main() {
    component_build::link();
}
