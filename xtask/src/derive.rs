//! Derived system descriptions: a shipped description with another name, other component
//! arguments and another interrupt delivery for its NIC, for `cargo xtask run --nic-irq`,
//! the benchmarks (`bench net`, `bench kernel`) and the soak cases.
//!
//! A description is edited as a parsed TOML document that keeps comments and layout
//! ([`toml_edit`]), never as lines of text. The base and the result are both checked by
//! `sysdesc` like any description, and what is edited is found by what it is: the NIC is the
//! device whose PCI id is a NIC (or whose PCI class is a network controller), its driver the
//! component given that device. Every error names the file and what is wrong.

use crate::qemu::net::nic_model;
use crate::Result;
use sysdesc::{Component, Device, DeviceSelector, System};
use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

/// The PCI base class of network controllers.
const NETWORK_CLASS: u8 = 0x02;

/// `base` (the text of the description in `file`, which errors name) renamed `name` (so its
/// image does not overwrite another's), with `args` set in the args of the component that
/// drives the NIC (added first, in order, or replaced), the NIC's interrupt as `nic_irq`
/// (`msi`, `ioapic` or `pic`) and, for `pic`, every other fixed IOAPIC line turned into the
/// PIC line of the same ISA interrupt (the PIT's IOAPIC pin 2 is PIC line 0).
///
/// Fails when `base` is not a valid description, has no NIC, more than one, or none driven by
/// a component, or when the result is not a valid description.
pub fn derive_system(
    base: &str,
    file: &str,
    name: &str,
    nic_irq: &str,
    args: &[(&str, &str)],
) -> Result<String> {
    let mut description = Description::parse(base, file)?;
    let (nic, driver) = nic(description.system()).map_err(|e| format!("{file}: {e}"))?;
    let (nic, driver) = (nic.name.clone(), driver.name.clone());
    description.rename(name)?;
    description.set_args(&driver, args)?;
    description.set_irq(&nic, Value::from(nic_irq))?;
    if nic_irq == "pic" {
        description.ioapic_lines_to_pic(&nic);
    }
    description.finish()
}

/// The NIC of `system` and the component that drives it: the one device whose PCI id is a
/// NIC QEMU emulates ([`nic_model`]) or whose PCI class is a network controller, and the
/// component given that device. Fails, saying which, when there is no such device, more than
/// one, or no component drives it.
pub fn nic(system: &System) -> Result<(&Device, &Component)> {
    let nics: Vec<&Device> = system
        .devices
        .iter()
        .filter(|d| is_nic(&d.selector))
        .collect();
    let nic = match nics.as_slice() {
        [nic] => *nic,
        [] => {
            return Err(
                "the description has no NIC (a [[device]] whose pci id is a NIC or whose \
                 class is 02, a network controller)"
                    .into(),
            )
        }
        several => {
            let names: Vec<&str> = several.iter().map(|d| d.name.as_str()).collect();
            return Err(format!(
                "the description has more than one NIC ({}); a derived one changes one",
                names.join(", ")
            ));
        }
    };
    let driver = system
        .driver_of(&nic.name)
        .and_then(|id| system.get(id))
        .ok_or_else(|| format!("no component drives the NIC `{}`", nic.name))?;
    Ok((nic, driver))
}

/// Whether `selector` picks a NIC: a PCI id QEMU emulates as one, or the network class.
fn is_nic(selector: &DeviceSelector) -> bool {
    match *selector {
        DeviceSelector::Pci { vendor, device, .. } => nic_model(vendor, device).is_some(),
        DeviceSelector::Class { class, .. } => class == NETWORK_CLASS,
        DeviceSelector::IoPort { .. } | DeviceSelector::Mmio { .. } => false,
    }
}

/// A description being edited: its TOML document (comments and layout kept) and the checked
/// model of the text it was parsed from.
pub struct Description {
    file: String,
    document: DocumentMut,
    base: System,
}

impl Description {
    /// Parses `text` (named `file` in errors) and checks it as a description. Fails with the
    /// TOML error, a missing `[system] name`, or every problem `sysdesc` finds
    /// (`file:line:column: problem`, one a line).
    pub fn parse(text: &str, file: &str) -> Result<Description> {
        let document: DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| format!("{file}: {}", e.message().trim()))?;
        if document
            .get("system")
            .and_then(|s| s.get("name"))
            .and_then(Item::as_str)
            .is_none()
        {
            return Err(format!("{file}: the description has no [system] name"));
        }
        let base = sysdesc_toml::parse(text, file).map_err(|d| sysdesc_toml::render(&d))?;
        Ok(Description {
            file: file.to_string(),
            document,
            base,
        })
    }

    /// The checked model of the text as parsed (edits do not change it).
    pub fn system(&self) -> &System {
        &self.base
    }

    /// Renames the system (`[system] name`).
    pub fn rename(&mut self, name: &str) -> Result<()> {
        let item = self
            .document
            .get_mut("system")
            .and_then(|s| s.get_mut("name"))
            .ok_or_else(|| format!("{}: the description has no [system] name", self.file))?;
        replace_value(item, Value::from(name));
        Ok(())
    }

    /// Sets `args` in the args of the component called `component`: each key added before
    /// the ones already there, in the order given, or replacing the one of the same name.
    /// Leaves the component alone when `args` is empty. Fails when there is no such
    /// component or its args are not an inline table.
    pub fn set_args(&mut self, component: &str, args: &[(&str, &str)]) -> Result<()> {
        if args.is_empty() {
            return Ok(());
        }
        let file = &self.file;
        let table = entry_mut(&mut self.document, "component", component)
            .ok_or_else(|| format!("{file}: no [[component]] called `{component}`"))?;
        let old = match table.get("args") {
            None => None,
            Some(item) => Some(item.as_inline_table().cloned().ok_or_else(|| {
                format!("{file}: the args of component `{component}` are not an inline table")
            })?),
        };
        let mut new = InlineTable::new();
        for (key, value) in args {
            new.insert(*key, Value::from(*value));
        }
        for (key, value) in old.iter().flat_map(InlineTable::iter) {
            if !args.iter().any(|(k, _)| *k == key) {
                new.insert(key, value.clone());
            }
        }
        new.fmt();
        match table.get_mut("args") {
            Some(item) => replace_value(item, Value::InlineTable(new)),
            None => {
                table.insert("args", Item::Value(Value::InlineTable(new)));
            }
        }
        Ok(())
    }

    /// Removes the component called `component` (the network benchmark drops the shell, so
    /// a shared composition holds what the unikernel does). Fails when there is no such component; a
    /// component that others still route to makes [`Description::finish`] fail.
    pub fn remove_component(&mut self, component: &str) -> Result<()> {
        let file = &self.file;
        let components = self
            .document
            .get_mut("component")
            .and_then(Item::as_array_of_tables_mut)
            .ok_or_else(|| format!("{file}: no [[component]] tables"))?;
        let index = components
            .iter()
            .position(|t| t.get("name").and_then(Item::as_str) == Some(component))
            .ok_or_else(|| format!("{file}: no [[component]] called `{component}`"))?;
        components.remove(index);
        Ok(())
    }

    /// Sets the interrupt (`irq`) of the device called `device`. Fails when there is no such
    /// device.
    pub fn set_irq(&mut self, device: &str, irq: Value) -> Result<()> {
        let file = &self.file;
        let table = entry_mut(&mut self.document, "device", device)
            .ok_or_else(|| format!("{file}: no [[device]] called `{device}`"))?;
        match table.get_mut("irq") {
            Some(item) => replace_value(item, irq),
            None => {
                table.insert("irq", Item::Value(irq));
            }
        }
        Ok(())
    }

    /// Turns every fixed IOAPIC line of a device other than `except` into the PIC line of
    /// the same ISA interrupt ([`pic_of`]); lines with no PIC twin stay as they are.
    pub fn ioapic_lines_to_pic(&mut self, except: &str) {
        let Some(devices) = self
            .document
            .get_mut("device")
            .and_then(Item::as_array_of_tables_mut)
        else {
            return;
        };
        for table in devices.iter_mut() {
            if table.get("name").and_then(Item::as_str) == Some(except) {
                continue;
            }
            let Some(item) = table.get_mut("irq") else {
                continue;
            };
            if let Some(pic) = item.as_value().and_then(pic_of) {
                replace_value(item, pic);
            }
        }
    }

    /// The edited text, checked as a description (errors name the file as `FILE (derived)`).
    pub fn finish(self) -> Result<String> {
        let text = self.document.to_string();
        let name = format!("{} (derived)", self.file);
        sysdesc_toml::parse(&text, &name).map_err(|d| sysdesc_toml::render(&d))?;
        Ok(text)
    }
}

/// The entry of the array of tables `array` (`[[array]]`) whose `name` is `name`.
fn entry_mut<'a>(document: &'a mut DocumentMut, array: &str, name: &str) -> Option<&'a mut Table> {
    document
        .get_mut(array)?
        .as_array_of_tables_mut()?
        .iter_mut()
        .find(|t| t.get("name").and_then(Item::as_str) == Some(name))
}

/// Puts `new` in `item`, keeping the spacing before the value it replaces. A comment after
/// the old value is dropped: it described that value (comments on lines of their own stay).
fn replace_value(item: &mut Item, mut new: Value) {
    if let Some(prefix) = item.as_value().and_then(|old| old.decor().prefix()) {
        new.decor_mut().set_prefix(prefix.clone());
    }
    *item = Item::Value(new);
}

/// An `{ ioapic = N }` interrupt as the PIC line of the same ISA interrupt (`{ pic = N }`,
/// the IOAPIC's pin 2 being the PIT's PIC line 0); `None` for any other interrupt or a pin
/// with no PIC line.
fn pic_of(irq: &Value) -> Option<Value> {
    let table = irq.as_inline_table()?;
    if table.len() != 1 {
        return None;
    }
    let pin = table.get("ioapic")?.as_integer()?;
    // ISA IRQ 0 (the PIT) arrives on IOAPIC pin 2 (the interrupt source override).
    let line = if pin == 2 { 0 } else { pin };
    if !(0..16).contains(&line) {
        return None;
    }
    let mut pic = InlineTable::new();
    pic.insert("pic", Value::from(line));
    pic.fmt();
    Some(Value::InlineTable(pic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{build, workspace_root};

    /// The four fundamental services every description starts with.
    const FUNDAMENTALS: &str = "[[component]]\nname = \"naming\"\nfundamental = true\npriority = 250\nmemory = \"1MiB\"\n\n\
        [[component]]\nname = \"proc\"\nfundamental = true\npriority = 252\nmemory = \"2MiB\"\nroutes = [\"memory\"]\n\n\
        [[component]]\nname = \"memory\"\nfundamental = true\npriority = 251\nmemory = \"1MiB\"\n\n\
        [[component]]\nname = \"devices\"\nfundamental = true\npriority = 251\nmemory = \"1MiB\"\nroutes = [\"memory\"]\n\n";

    fn text() -> String {
        [
            "[system] # the unikernel\nname = \"net-unikernel\"\nmemory = \"512MiB\"\n\n",
            FUNDAMENTALS,
            "\
             [[component]]\nname = \"iperf\"\nbinary = \"iperf-sel4\"\npriority = 150\nmemory = \"128MiB\"\n\
             routes = [\"devices\", \"memory\"]\ndevices = [\"nic0\", \"pit\"]\n\
             args = { port = \"5201\", address = \"10.0.2.15/24\" }\n\n\
             [[device]]\nname = \"nic0\"\npci = \"8086:10d3\"\nirq = \"msi\"   # comment\n\n\
             [[device]]\nname = \"pit\"\nioport = \"0x40-0x43\"\nirq = { ioapic = 2 }\n",
        ]
        .concat()
    }

    fn derive(text: &str, name: &str, irq: &str, args: &[(&str, &str)]) -> Result<String> {
        derive_system(text, "test.toml", name, irq, args)
    }

    #[test]
    fn renames_sets_args_and_the_nics_interrupt() {
        let d = derive(&text(), "x", "ioapic", &[("stat_ms", "500")]).unwrap();
        assert!(
            d.starts_with("[system] # the unikernel\nname = \"x\"\n"),
            "{d}"
        );
        assert!(
            d.contains("args = { stat_ms = \"500\", port = \"5201\""),
            "{d}"
        );
        assert!(d.contains("pci = \"8086:10d3\"\nirq = \"ioapic\"\n"), "{d}");
        assert!(d.ends_with("irq = { ioapic = 2 }\n"), "{d}");
        // Set twice: replaced, not repeated; several arguments keep their order.
        let again = derive(&d, "x", "msi", &[("stat_ms", "250"), ("itr", "0")]).unwrap();
        assert_eq!(again.matches("stat_ms").count(), 1);
        assert!(
            again.contains("args = { stat_ms = \"250\", itr = \"0\", port"),
            "{again}"
        );
        // No arguments: the line is left as it was.
        let none = derive(&text(), "x", "msi", &[]).unwrap();
        assert!(none.contains("args = { port = \"5201\", address = \"10.0.2.15/24\" }"));
        // Nothing else changes: the same name and interrupt give the base text back, but
        // for the comment after the replaced interrupt.
        let msi = derive(&text(), "net-unikernel", "msi", &[]).unwrap();
        assert_eq!(
            msi,
            text().replace("irq = \"msi\"   # comment", "irq = \"msi\"")
        );
    }

    #[test]
    fn the_pic_gets_pic_lines() {
        let d = derive(&text(), "p", "pic", &[]).unwrap();
        assert!(d.contains("irq = \"pic\"\n"), "{d}");
        assert!(d.ends_with("irq = { pic = 0 }\n"), "{d}");
        let pic = |irq: &str| pic_of(&irq.parse().unwrap()).map(|v| v.to_string());
        assert_eq!(pic("{ ioapic = 9 }").as_deref(), Some("{ pic = 9 }"));
        assert_eq!(pic("{ ioapic = 20 }"), None);
        assert_eq!(pic("\"msi\""), None);
    }

    #[test]
    fn the_nic_and_its_driver_are_found_by_kind_not_name() {
        let other = [
            "[system]\nname = \"elsewhere\"\nmemory = \"512MiB\"\n\n",
            FUNDAMENTALS,
            "\
             [[component]]\nname = \"logger\"\nbinary = \"hello\"\npriority = 100\nmemory = \"1MiB\"\n\
             routes = [\"devices\"]\ndevices = [\"timer\"]\n\n\
             [[component]]\nname = \"server\"\nbinary = \"other-app\"\npriority = 150\nmemory = \"16MiB\"\n\
             routes = [\"devices\", \"memory\"]\ndevices = [\"eth-a\"]\n\n\
             [[device]]\nname = \"timer\"\nioport = \"0x40-0x43\"\nirq = { ioapic = 2 }\n\n\
             [[device]]\nname = \"eth-a\"\npci = \"1af4:1041\"\nirq = \"msi\"\n",
        ]
        .concat();
        let d = derive(&other, "renamed", "ioapic", &[("stat_ms", "500")]).unwrap();
        let system = sysdesc_toml::parse(&d, "derived").unwrap();
        assert_eq!(system.name, "renamed");
        let server = system.component("server").unwrap();
        assert_eq!(server.args.get("stat_ms").map(String::as_str), Some("500"));
        assert!(system.component("logger").unwrap().args.is_empty());
        let eth = system.device("eth-a").unwrap();
        assert_eq!(eth.irq, Some(sysdesc::Irq::IoApic { line: None }));
        let timer = system.device("timer").unwrap();
        assert_eq!(timer.irq, Some(sysdesc::Irq::IoApic { line: Some(2) }));
        // A NIC picked by its class is a NIC too.
        let by_class = other.replace("pci = \"1af4:1041\"", "class = \"02:00\"");
        let d = derive(&by_class, "c", "pic", &[]).unwrap();
        let system = sysdesc_toml::parse(&d, "derived").unwrap();
        assert_eq!(
            system.device("eth-a").unwrap().irq,
            Some(sysdesc::Irq::Pic { line: None })
        );
        assert_eq!(
            system.device("timer").unwrap().irq,
            Some(sysdesc::Irq::Pic { line: Some(0) })
        );
    }

    #[test]
    fn comments_and_layout_survive() {
        let commented = [
            "# A description with comments everywhere.\n\n[system]   # after the header\n\
             # before the name\nname = \"net-unikernel\"   # after the name\nmemory = \"512MiB\"\n\n",
            FUNDAMENTALS,
            "# before the driver\n[[component]]\nname = \"iperf\"\nbinary = \"iperf-sel4\"\n\
             priority = 150\nmemory = \"128MiB\"\nroutes = [\"devices\", \"memory\"]\n\
             devices = [\"nic0\", \"pit\"]\n# before the args\n\
             args = { port = \"5201\" }   # after the args\n\n\
             # before the NIC\n[[device]]\nname = \"nic0\"\npci = \"8086:10d3\"\n\
             irq = \"msi\"   # after the irq\n\n[[device]]\nname = \"pit\"\nioport = \"0x40-0x43\"\n\
             irq = { ioapic = 2 }   # after the PIT's irq\n# at the end\n",
        ]
        .concat();
        let d = derive(&commented, "x", "pic", &[("stat_ms", "5")]).unwrap();
        // Comments on lines of their own, after headers and after values left alone stay.
        let replaced = [
            "# after the name",
            "# after the args",
            "# after the irq",
            "# after the PIT's irq",
        ];
        for line in commented.lines() {
            if let Some(at) = line.find('#') {
                let comment = &line[at..];
                assert_eq!(
                    d.contains(comment),
                    !replaced.contains(&comment),
                    "{comment:?}:\n{d}"
                );
            }
        }
        // A replaced value keeps its place and the spacing before it; the comment after it
        // described the old value and goes.
        assert!(
            d.contains("\n# before the name\nname = \"x\"\nmemory"),
            "{d}"
        );
        assert!(
            d.contains("\n# before the args\nargs = { stat_ms = \"5\", port = \"5201\" }\n\n"),
            "{d}"
        );
        assert!(d.contains("\nirq = \"pic\"\n\n[[device]]"), "{d}");
        assert!(d.ends_with("\nirq = { pic = 0 }\n# at the end\n"), "{d}");
    }

    #[test]
    fn says_what_is_missing() {
        let err = |t: &str| derive(t, "x", "msi", &[]).unwrap_err();
        assert!(err(&text().replace("[system]", "[other]")).contains("[system] name"));
        // No NIC: the error names the file and says what a NIC is.
        let no_nic = err(&text().replace("8086:10d3", "8086:1237"));
        assert!(no_nic.starts_with("test.toml: "), "{no_nic}");
        assert!(no_nic.contains("no NIC"), "{no_nic}");
        // A NIC no component drives (the description's own check says so, with its place).
        let undriven = err(&text().replace("[\"nic0\", \"pit\"]", "[\"pit\"]"));
        assert!(undriven.starts_with("test.toml:"), "{undriven}");
        assert!(undriven.contains("\"nic0\" is not driven"), "{undriven}");
        // Two NICs.
        let two = text() + "\n[[device]]\nname = \"nic1\"\npci = \"1af4:1000\"\nirq = \"msi\"\n";
        let two = err(&two.replace("[\"nic0\", \"pit\"]", "[\"nic0\", \"nic1\", \"pit\"]"));
        assert!(two.contains("more than one NIC (nic0, nic1)"), "{two}");
        // The base is checked like any description, with the file and position.
        let bad = err(&text().replace("memory = \"128MiB\"", "memory = \"lots\""));
        assert!(bad.starts_with("test.toml:"), "{bad}");
        // A result that is not a valid description is refused, naming the derived file.
        let wrong = derive(&text(), "x", "sometimes", &[]).unwrap_err();
        assert!(wrong.starts_with("test.toml (derived):"), "{wrong}");
        // The args must be an inline table to be edited.
        let table_args = text().replace(
            "args = { port = \"5201\", address = \"10.0.2.15/24\" }\n",
            "[component.args]\nport = \"5201\"\n",
        );
        let table_args = derive(&table_args, "x", "msi", &[("stat_ms", "1")]);
        assert!(table_args.is_err(), "{table_args:?}");
    }

    #[test]
    fn shipped_descriptions_derive_to_valid_ones() {
        for base in [
            "systems/net-unikernel.toml",
            "systems/net-unikernel-virtio.toml",
        ] {
            let text = std::fs::read_to_string(workspace_root().join(base)).unwrap();
            for irq in ["msi", "ioapic", "pic"] {
                let name = format!("derived-{irq}");
                let d = derive_system(&text, base, &name, irq, &[("stat_ms", "250")]).unwrap();
                let path =
                    std::env::temp_dir().join(format!("derive-{}-{name}.toml", std::process::id()));
                std::fs::write(&path, d).unwrap();
                let system = build::load_system(&path).unwrap();
                std::fs::remove_file(&path).unwrap();
                assert_eq!(system.name, name);
                let iperf = system
                    .components
                    .iter()
                    .find(|c| c.binary == "iperf-sel4")
                    .unwrap();
                assert_eq!(iperf.args.get("stat_ms").map(String::as_str), Some("250"));
                assert_eq!(iperf.args.get("port").map(String::as_str), Some("5201"));
                if irq == "pic" {
                    let pit = system.device("pit").unwrap();
                    assert_eq!(pit.irq, Some(sysdesc::Irq::Pic { line: Some(0) }));
                }
            }
        }
    }

    #[test]
    fn a_component_is_removed_and_one_still_routed_to_is_refused() {
        let base = std::fs::read_to_string(crate::workspace_root().join("systems/net-shared.toml"))
            .unwrap();
        let mut d = Description::parse(&base, "net-shared.toml").unwrap();
        d.remove_component("shell").unwrap();
        let text = d.finish().unwrap();
        let system = sysdesc_toml::parse(&text, "x").unwrap();
        assert!(system.component("shell").is_none());
        assert!(system.component("net").is_some() && system.component("iperf-a").is_some());
        let mut d = Description::parse(&base, "net-shared.toml").unwrap();
        let missing = d.remove_component("nobody").unwrap_err();
        assert!(
            missing.contains("no [[component]] called `nobody`"),
            "{missing}"
        );
        // iperf-a and iperf-b route to net: without it the description is not valid.
        d.remove_component("net").unwrap();
        let err = d.finish().unwrap_err();
        assert!(err.starts_with("net-shared.toml (derived):"), "{err}");
    }
}
