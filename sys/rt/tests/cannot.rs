//! The one line a component prints when it gives up.

use rt::Cannot;

#[test]
fn the_line_names_the_component_the_action_and_the_reason() {
    let line = Cannot {
        component: "serial",
        action: format_args!("claim {}", "com1"),
        reason: "NotFound",
    };
    assert_eq!(line.to_string(), "serial: cannot claim com1: NotFound");
}
