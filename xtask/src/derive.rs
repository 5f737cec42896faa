//! Derived system descriptions: a shipped iperf unikernel description with another name,
//! another interrupt delivery for its NIC and extra component arguments, for
//! `cargo xtask run --nic-irq` and the benchmarks (`bench net`, `bench kernel`). The text
//! is edited line by line so comments and layout survive; the result is checked by loading
//! it like any description.

use crate::Result;

/// The iperf unikernel description `base` (TOML text) renamed `name` (so its image does
/// not overwrite another's), with `args` set in the `iperf-sel4` component's args (added
/// first, or replaced), device `nic0`'s interrupt as `nic_irq` (`msi`, `ioapic` or `pic`)
/// and, for `pic`, every other fixed IOAPIC line turned into the PIC line of the same ISA
/// interrupt (the PIT's IOAPIC pin 2 is PIC line 0). Fails, saying what is missing, when
/// the text lacks what is rewritten.
pub fn derive_system(
    base: &str,
    name: &str,
    nic_irq: &str,
    args: &[(&str, &str)],
) -> Result<String> {
    #[derive(PartialEq)]
    enum Block {
        System,
        Component,
        Device,
        Other,
    }
    let mut block = Block::Other;
    let mut block_name = String::new();
    let mut binary = String::new();
    let (mut renamed, mut args_set, mut nic_set) = (false, false, false);
    let mut out = String::new();
    for line in base.lines() {
        let trimmed = line.trim();
        let mut replaced: Option<String> = None;
        if trimmed.starts_with('[') {
            block = match trimmed.split('#').next().unwrap_or("").trim() {
                "[system]" => Block::System,
                "[[component]]" => Block::Component,
                "[[device]]" => Block::Device,
                _ => Block::Other,
            };
            block_name.clear();
            binary.clear();
        } else if let Some(value) = string_value(trimmed, "name") {
            block_name = value.to_string();
            if block == Block::System {
                replaced = Some(format!("name = \"{name}\""));
                renamed = true;
            }
            if block == Block::Component && binary.is_empty() {
                binary = value.to_string();
            }
        } else if let Some(value) = string_value(trimmed, "binary") {
            binary = value.to_string();
        } else if block == Block::Component
            && binary == "iperf-sel4"
            && key_of(trimmed) == Some("args")
        {
            let mut line = trimmed.to_string();
            for (key, value) in args.iter().rev() {
                line = with_arg(&line, key, value)?;
            }
            replaced = Some(line);
            args_set = true;
        } else if block == Block::Device && key_of(trimmed) == Some("irq") {
            if block_name == "nic0" {
                replaced = Some(format!("irq = \"{nic_irq}\""));
                nic_set = true;
            } else if nic_irq == "pic" {
                replaced = pic_line(trimmed);
            }
        }
        out.push_str(replaced.as_deref().unwrap_or(line));
        out.push('\n');
    }
    match (renamed, args_set, nic_set) {
        (true, true, true) => Ok(out),
        (false, _, _) => Err("the system description has no [system] name".into()),
        (_, false, _) => {
            Err("the system description has no iperf-sel4 component with an args line".into())
        }
        (_, _, false) => Err("the system description has no nic0 device with an irq".into()),
    }
}

/// The key of a `key = value` line.
fn key_of(line: &str) -> Option<&str> {
    line.split_once('=').map(|(k, _)| k.trim())
}

/// The string value of a `key = "value"` line (a trailing comment allowed).
fn string_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (k, rest) = line.split_once('=')?;
    if k.trim() != key {
        return None;
    }
    let rest = rest.trim().strip_prefix('"')?;
    rest.split_once('"').map(|(v, _)| v)
}

/// An `args = { ... }` line with `key = "value"` set (added first, or replaced).
fn with_arg(line: &str, key: &str, value: &str) -> Result<String> {
    let open = line
        .find('{')
        .ok_or("the args line is not an inline table")?;
    let close = line
        .rfind('}')
        .ok_or("the args line is not an inline table")?;
    let mut pairs: Vec<String> = line[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty() && key_of(p) != Some(key))
        .map(str::to_string)
        .collect();
    pairs.insert(0, format!("{key} = \"{value}\""));
    Ok(format!("args = {{ {} }}", pairs.join(", ")))
}

/// An `irq = { ioapic = N }` line as the PIC line of the same ISA interrupt.
fn pic_line(line: &str) -> Option<String> {
    let inner = line.split_once('{')?.1.split_once('}')?.0;
    let (k, v) = inner.split_once('=')?;
    if k.trim() != "ioapic" {
        return None;
    }
    let pin: u8 = v.trim().parse().ok()?;
    // ISA IRQ 0 (the PIT) arrives on IOAPIC pin 2 (the interrupt source override).
    let line = if pin == 2 { 0 } else { pin };
    (line < 16).then(|| format!("irq = {{ pic = {line} }}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{build, workspace_root};

    const TEXT: &str = "[system] # the unikernel\nname = \"net-unikernel\"\n\n\
        [[component]]\nname = \"iperf\"\nbinary = \"iperf-sel4\"\nargs = { port = \"5201\", address = \"10.0.2.15/24\" }\n\n\
        [[device]]\nname = \"nic0\"\npci = \"8086:10d3\"\nirq = \"msi\"   # comment\n\n\
        [[device]]\nname = \"pit\"\nioport = \"0x40-0x43\"\nirq = { ioapic = 2 }\n";

    #[test]
    fn renames_sets_args_and_the_nics_interrupt() {
        let d = derive_system(TEXT, "x", "ioapic", &[("stat_ms", "500")]).unwrap();
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
        let again = derive_system(&d, "x", "msi", &[("stat_ms", "250"), ("itr", "0")]).unwrap();
        assert_eq!(again.matches("stat_ms").count(), 1);
        assert!(
            again.contains("args = { stat_ms = \"250\", itr = \"0\", port"),
            "{again}"
        );
        // No arguments: the line is left as it was.
        let none = derive_system(TEXT, "x", "msi", &[]).unwrap();
        assert!(none.contains("args = { port = \"5201\", address = \"10.0.2.15/24\" }"));
    }

    #[test]
    fn the_pic_gets_pic_lines() {
        let d = derive_system(TEXT, "p", "pic", &[]).unwrap();
        assert!(d.contains("irq = \"pic\"\n"), "{d}");
        assert!(d.ends_with("irq = { pic = 0 }\n"), "{d}");
        assert_eq!(
            pic_line("irq = { ioapic = 9 }").as_deref(),
            Some("irq = { pic = 9 }")
        );
        assert_eq!(pic_line("irq = { ioapic = 20 }"), None);
        assert_eq!(pic_line("irq = \"msi\""), None);
    }

    #[test]
    fn says_what_is_missing() {
        let err = |t: &str| derive_system(t, "x", "msi", &[]).unwrap_err();
        assert!(err(&TEXT.replace("[system]", "[other]")).contains("[system] name"));
        assert!(err(&TEXT.replace("iperf-sel4", "iperf-other")).contains("iperf-sel4"));
        assert!(err(&TEXT.replace("\"nic0\"", "\"nic1\"")).contains("nic0"));
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
                let d = derive_system(&text, &name, irq, &[("stat_ms", "250")]).unwrap();
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
}
