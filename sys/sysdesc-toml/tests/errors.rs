//! One test per rule: each asserts the exact `file:line:column: message` reported.
//! Every case is `HEAD` (lines 1-4), the case's body (from line 5), then `FUNDAMENTAL`.

use sysdesc_toml as host;

const HEAD: &str = "[system]\nname = \"t\"\nmemory = \"512MiB\"\n\n";

const FUNDAMENTAL: &str = r#"
[[component]]
name = "naming"
fundamental = true
priority = 250
memory = "1MiB"

[[component]]
name = "proc"
fundamental = true
priority = 252
memory = "1MiB"

[[component]]
name = "memory"
fundamental = true
priority = 251
memory = "1MiB"

[[component]]
name = "devices"
fundamental = true
priority = 251
memory = "1MiB"
"#;

/// Parses `HEAD + body + FUNDAMENTAL` and returns the rendered diagnostics.
fn errors_in(body: &str) -> Vec<String> {
    errors_of(&format!("{HEAD}{body}{FUNDAMENTAL}"))
}

fn errors_of(text: &str) -> Vec<String> {
    match host::parse(text, "systems/t.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(d) => d.iter().map(ToString::to_string).collect(),
    }
}

fn check(body: &str, expected: &[&str]) {
    assert_eq!(errors_in(body), expected);
}

#[test]
fn base_is_valid() {
    host::parse(&format!("{HEAD}{FUNDAMENTAL}"), "t").unwrap();
}

#[test]
fn syntax_error() {
    check(
        "[[component]\n",
        &["systems/t.toml:5:12: invalid table header; expected `.`, `]]`"],
    );
}

#[test]
fn unknown_key() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\ncolour = \"red\"\n",
        &["systems/t.toml:9:1: unknown field `colour`, expected one of `name`, `binary`, `priority`, `memory`, `fundamental`, `provides`, `routes`, `devices`, `shared`, `restart`, `args`"],
    );
}

#[test]
fn unknown_top_level_table() {
    check(
        "[[task]]\nname = \"a\"\n",
        &["systems/t.toml:5:3: unknown field `task`, expected one of `system`, `component`, `device`, `shared`"],
    );
}

#[test]
fn missing_required_key() {
    check(
        "[[component]]\nname = \"a\"\nmemory = \"64KiB\"\n",
        &["systems/t.toml:5:1: missing field `priority`"],
    );
}

#[test]
fn wrong_type() {
    check(
        "[[component]]\nname = \"a\"\npriority = \"high\"\nmemory = \"64KiB\"\n",
        &["systems/t.toml:7:12: invalid type: string \"high\", expected i64"],
    );
}

#[test]
fn arg_values_are_strings() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\nargs = { port = 5201 }\n",
        &["systems/t.toml:9:17: invalid type: integer `5201`, expected a string"],
    );
}

#[test]
fn duplicate_component() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\n\n[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\n",
        &["systems/t.toml:11:8: duplicate component \"a\""],
    );
}

#[test]
fn invalid_name() {
    check(
        "[[component]]\nname = \"Shell\"\npriority = 1\nmemory = \"64KiB\"\n",
        &["systems/t.toml:6:8: name \"Shell\" must start with a-z and hold only a-z, 0-9, '-' and '_'"],
    );
}

#[test]
fn route_to_nothing() {
    check(
        "[[component]]\nname = \"shell\"\npriority = 1\nmemory = \"64KiB\"\nroutes = [\"naming\", \"blk\"]\n",
        &["systems/t.toml:9:21: route to unknown service \"blk\" from component \"shell\""],
    );
}

#[test]
fn route_to_own_service() {
    check(
        "[[component]]\nname = \"fs\"\npriority = 1\nmemory = \"64KiB\"\nprovides = [\"fs\"]\nroutes = [\"fs\"]\n",
        &["systems/t.toml:10:11: component \"fs\" routes to its own service \"fs\""],
    );
}

#[test]
fn service_provided_twice() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\nprovides = [\"fs\"]\n\n[[component]]\nname = \"b\"\npriority = 1\nmemory = \"64KiB\"\nprovides = [\"fs\"]\n",
        &["systems/t.toml:15:13: service \"fs\" is already provided by component \"a\""],
    );
}

#[test]
fn fundamental_service_provided_by_another() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\nprovides = [\"naming\"]\n",
        &["systems/t.toml:9:13: component \"a\" cannot provide \"naming\": it is a fundamental service"],
    );
}

const DRIVER: &str = "[[component]]\nname = \"serial\"\npriority = 1\nmemory = \"64KiB\"\nroutes = [\"devices\"]\ndevices = [\"com1\"]\n\n";
// DRIVER spans lines 5-11; a body after it starts at line 12.

#[test]
fn device_assigned_twice() {
    check(
        &format!("{DRIVER}[[component]]\nname = \"b\"\npriority = 1\nmemory = \"64KiB\"\nroutes = [\"devices\"]\ndevices = [\"com1\"]\n\n[[device]]\nname = \"com1\"\nioport = \"0x3f8-0x3ff\"\n"),
        &["systems/t.toml:17:12: device \"com1\" is assigned to component \"b\" and already to component \"serial\""],
    );
}

#[test]
fn unknown_device() {
    check(DRIVER, &["systems/t.toml:10:12: unknown device \"com1\" in component \"serial\" (no [[device]] has that name)"]);
}

#[test]
fn driver_without_route_to_devices() {
    check(
        "[[component]]\nname = \"serial\"\npriority = 1\nmemory = \"64KiB\"\ndevices = [\"com1\"]\n\n[[device]]\nname = \"com1\"\nioport = \"0x3f8\"\n",
        &["systems/t.toml:9:12: component \"serial\" drives devices but does not route to \"devices\""],
    );
}

#[test]
fn device_not_driven() {
    check(
        "[[device]]\nname = \"nic0\"\npci = \"8086:10d3\"\n",
        &["systems/t.toml:6:8: device \"nic0\" is not driven by any component"],
    );
}

#[test]
fn duplicate_device() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\nioport = \"0x3f8\"\n\n[[device]]\nname = \"com1\"\nioport = \"0x2f8\"\n"),
        &["systems/t.toml:17:8: duplicate device \"com1\""],
    );
}

#[test]
fn device_needs_a_selector() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\n"),
        &["systems/t.toml:13:8: device \"com1\" needs one of pci, class, ioport or mmio"],
    );
}

#[test]
fn device_with_two_selectors() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\npci = \"8086:10d3\"\nclass = \"02:00\"\n"),
        &["systems/t.toml:15:9: device \"com1\" has both pci and class; give only one"],
    );
}

#[test]
fn bad_pci_id() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\npci = \"8086-10d3\"\n"),
        &["systems/t.toml:14:7: device \"com1\": pci = \"8086-10d3\" is not vendor:device in hex, such as \"8086:10d3\""],
    );
}

#[test]
fn index_on_ioport_device() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\nioport = \"0x3f8\"\nindex = 1\n"),
        &["systems/t.toml:15:9: device \"com1\": index applies only to pci and class devices"],
    );
}

#[test]
fn same_hardware_twice() {
    check(
        "[[component]]\nname = \"uart\"\npriority = 1\nmemory = \"64KiB\"\nroutes = [\"devices\"]\ndevices = [\"com1\", \"com1b\"]\n\n[[device]]\nname = \"com1\"\nioport = \"0x3f8-0x3ff\"\n\n[[device]]\nname = \"com1b\"\nioport = \"0x3fc\"\n",
        &["systems/t.toml:18:10: device \"com1b\" selects the same hardware as device \"com1\""],
    );
}

#[test]
fn msi_on_ioport_device() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\nioport = \"0x3f8\"\nirq = \"msi\"\n"),
        &["systems/t.toml:15:7: device \"com1\": an I/O port device cannot use MSI"],
    );
}

#[test]
fn msix_on_ioport_or_mmio_device() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\nioport = \"0x3f8\"\nirq = \"msix\"\n"),
        &["systems/t.toml:15:7: device \"com1\": an I/O port device cannot use MSI-X"],
    );
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\nmmio = \"0xfed00000-0xfed003ff\"\nirq = \"msix\"\n"),
        &["systems/t.toml:15:7: device \"com1\": a memory-mapped device needs msi or a fixed interrupt line, such as irq = { ioapic = 2 }"],
    );
}

#[test]
fn ioport_device_needs_fixed_line() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\nioport = \"0x3f8\"\nirq = \"ioapic\"\n"),
        &["systems/t.toml:15:7: device \"com1\": an I/O port device needs a fixed interrupt line, such as irq = { ioapic = 4 }"],
    );
}

#[test]
fn unknown_irq_kind() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\npci = \"8086:10d3\"\nirq = \"msi-x\"\n"),
        &["systems/t.toml:15:7: unknown irq kind \"msi-x\" for device \"com1\" (use msi, msix, ioapic, pic, legacy, or { ioapic = N })"],
    );
}

#[test]
fn pic_line_out_of_range() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\nioport = \"0x3f8\"\nirq = {{ pic = 16 }}\n"),
        &["systems/t.toml:15:7: device \"com1\": PIC line 16 is out of range 0..=15"],
    );
}

#[test]
fn unknown_region() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\nshared = [\"rx\"]\n",
        &["systems/t.toml:9:11: unknown shared region \"rx\" in component \"a\" (no [[shared]] has that name)"],
    );
}

#[test]
fn region_joined_by_one() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\nshared = [\"rx\"]\n\n[[shared]]\nname = \"rx\"\nsize = \"64KiB\"\n",
        &["systems/t.toml:12:8: shared region \"rx\" is joined by only component \"a\"; a region needs at least two"],
    );
}

#[test]
fn duplicate_region() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\nshared = [\"rx\"]\n\n[[component]]\nname = \"b\"\npriority = 1\nmemory = \"64KiB\"\nshared = [\"rx\"]\n\n[[shared]]\nname = \"rx\"\nsize = \"64KiB\"\n\n[[shared]]\nname = \"rx\"\nsize = \"64KiB\"\n",
        &["systems/t.toml:22:8: duplicate shared region \"rx\""],
    );
}

#[test]
fn priority_reserved_for_root() {
    check(
        "[[component]]\nname = \"a\"\npriority = 255\nmemory = \"64KiB\"\n",
        &["systems/t.toml:7:12: priority 255 of component \"a\" is reserved for the root task (use 0..=254)"],
    );
}

#[test]
fn priority_out_of_range() {
    check(
        "[[component]]\nname = \"a\"\npriority = -3\nmemory = \"64KiB\"\n",
        &["systems/t.toml:7:12: priority -3 of component \"a\" is out of range 0..=254"],
    );
}

#[test]
fn zero_budget() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"0KiB\"\n",
        &["systems/t.toml:8:10: memory budget of component \"a\" must not be zero"],
    );
}

#[test]
fn budget_below_the_minimum() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"32KiB\"\n",
        &["systems/t.toml:8:10: memory budget of component \"a\" is 32 KiB, below the 64 KiB minimum (its heap and stack come out of it)"],
    );
}

#[test]
fn unparsable_size() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KB\"\n",
        &["systems/t.toml:8:10: memory budget of component \"a\" \"64KB\": unknown unit (use B, KiB, MiB or GiB)"],
    );
}

#[test]
fn size_not_a_page_multiple() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = 5000\n",
        &["systems/t.toml:8:10: memory budget of component \"a\" of 5000 bytes is not a multiple of the 4 KiB page"],
    );
}

#[test]
fn budget_over_the_machine() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"300MiB\"\n\n[[component]]\nname = \"b\"\npriority = 1\nmemory = \"200MiB\"\n",
        &["systems/t.toml:13:10: budget over the machine: components and shared regions need 504 MiB but the machine's 512 MiB leaves 480 MiB after the 32 MiB reserve"],
    );
}

#[test]
fn missing_fundamental() {
    let text = format!(
        "{HEAD}{}",
        FUNDAMENTAL.replace("name = \"proc\"", "name = \"procs\"")
    );
    assert_eq!(
        errors_of(&text),
        [
            "systems/t.toml:1:1: missing fundamental component \"proc\" (add a [[component]] with name = \"proc\" and fundamental = true)",
            "systems/t.toml:14:15: component \"procs\" cannot be fundamental: only naming, proc, memory and devices are",
        ]
    );
}

#[test]
fn fundamental_name_without_flag() {
    let text = format!(
        "{HEAD}{}",
        FUNDAMENTAL.replacen("fundamental = true\n", "", 1)
    );
    assert_eq!(
        errors_of(&text),
        [
            "systems/t.toml:1:1: missing fundamental component \"naming\" (add a [[component]] with name = \"naming\" and fundamental = true)",
            "systems/t.toml:7:8: component \"naming\" has a fundamental service's name but is not marked fundamental = true",
        ]
    );
}

#[test]
fn fundamental_restart() {
    let text = format!(
        "{HEAD}{}",
        FUNDAMENTAL.replacen(
            "priority = 250\n",
            "priority = 250\nrestart = \"always\"\n",
            1
        )
    );
    assert_eq!(
        errors_of(&text),
        ["systems/t.toml:10:11: fundamental component \"naming\" cannot be restarted: its fault stops the system"]
    );
}

#[test]
fn restart_always_with_max_zero() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\nrestart = { policy = \"always\", max = 0 }\n",
        &["systems/t.toml:9:11: restart policy \"always\" with max = 0 for component \"a\" never restarts (use \"never\", or max >= 1)"],
    );
}

#[test]
fn unknown_restart_policy() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\nrestart = \"sometimes\"\n",
        &["systems/t.toml:9:11: unknown restart policy \"sometimes\" for component \"a\" (use \"never\" or \"always\")"],
    );
}

#[test]
fn unknown_restart_key() {
    check(
        "[[component]]\nname = \"a\"\npriority = 1\nmemory = \"64KiB\"\nrestart = { policy = \"always\", tries = 2 }\n",
        &["systems/t.toml:9:11: unknown field `tries`, expected one of `policy`, `max`, `backoff_ms`"],
    );
}

#[test]
fn several_problems_reported_in_file_order() {
    check(
        "[[component]]\nname = \"a\"\npriority = 999\nmemory = \"0\"\nroutes = [\"x\"]\n",
        &[
            "systems/t.toml:7:12: priority 999 of component \"a\" is out of range 0..=254",
            "systems/t.toml:8:10: memory budget of component \"a\" must not be zero",
            "systems/t.toml:9:11: route to unknown service \"x\" from component \"a\"",
        ],
    );
}

#[test]
fn load_reports_unreadable_file() {
    let d = host::load("no/such/file.toml").unwrap_err();
    assert_eq!(d.len(), 1);
    assert!(
        d[0].to_string()
            .starts_with("no/such/file.toml: cannot read: "),
        "{}",
        d[0]
    );
}

#[test]
fn bad_mmio_range() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\nmmio = \"0xfed00000\"\n"),
        &["systems/t.toml:14:8: device \"com1\": mmio = \"0xfed00000\" is not an inclusive physical address range in hex, such as \"0xfed00000-0xfed003ff\""],
    );
}

#[test]
fn mmio_range_off_a_page_boundary_or_backwards() {
    for range in ["0xfed00010-0xfed003ff", "0xfed00000-0xfecfffff"] {
        let (base, last) = range.split_once('-').unwrap();
        check(
            &format!("{DRIVER}[[device]]\nname = \"com1\"\nmmio = \"{range}\"\n"),
            &[&format!("systems/t.toml:14:8: device \"com1\": memory range {base}-{last} must start on a 4 KiB page and end after it starts")],
        );
    }
}

#[test]
fn mmio_device_needs_msi_or_a_fixed_line() {
    check(
        &format!("{DRIVER}[[device]]\nname = \"com1\"\nmmio = \"0xfed00000-0xfed003ff\"\nirq = \"legacy\"\n"),
        &["systems/t.toml:15:7: device \"com1\": a memory-mapped device needs msi or a fixed interrupt line, such as irq = { ioapic = 2 }"],
    );
}

#[test]
fn overlapping_mmio_devices() {
    check(
        "[[component]]\nname = \"t\"\npriority = 1\nmemory = \"64KiB\"\nroutes = [\"devices\"]\ndevices = [\"a\", \"b\"]\n\n[[device]]\nname = \"a\"\nmmio = \"0xfed00000-0xfed003ff\"\n\n[[device]]\nname = \"b\"\nmmio = \"0xfed00000-0xfed00fff\"\n",
        &["systems/t.toml:18:8: device \"b\" selects the same hardware as device \"a\""],
    );
}
