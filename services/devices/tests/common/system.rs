//! System descriptions for the tests, built as structs.

use std::collections::BTreeMap;
use sysdesc::{Component, Device, DeviceSelector, Irq, RestartPolicy, System};

/// Components and `[[device]]`s added to the fundamental ones: what a description would list
/// after them. Built as structs (no TOML front end, so this package's dev-dependencies pull
/// no `std` feature into its `no_std` component binary); the selector and interrupt strings
/// keep the description's syntax.
#[derive(Clone, Default)]
pub struct Parts {
    components: Vec<Component>,
    devices: Vec<Device>,
}

impl std::ops::Add<&Parts> for Parts {
    type Output = Parts;
    fn add(mut self, other: &Parts) -> Parts {
        self.components.extend(other.components.iter().cloned());
        self.devices.extend(other.devices.iter().cloned());
        self
    }
}

fn component(name: &str, priority: u8, fundamental: bool, devices: &[&str]) -> Component {
    Component {
        name: name.into(),
        binary: name.into(),
        priority,
        memory: 1 << 20,
        fundamental,
        provides: Vec::new(),
        routes: if fundamental {
            Vec::new()
        } else {
            vec!["devices".into()]
        },
        devices: devices.iter().map(|d| d.to_string()).collect(),
        shared: Vec::new(),
        restart: RestartPolicy::Never,
        args: BTreeMap::new(),
    }
}

/// A valid system: the fundamental components, then `extra` (drivers and `[[device]]`s).
pub fn system(extra: &Parts) -> System {
    let mut components = vec![
        component("naming", 250, true, &[]),
        component("proc", 252, true, &[]),
        component("memory", 251, true, &[]),
        component("devices", 251, true, &[]),
    ];
    components.extend(extra.components.iter().cloned());
    let s = System {
        name: "test".into(),
        description: String::new(),
        memory: 512 << 20,
        components,
        devices: extra.devices.clone(),
        shared: Vec::new(),
    };
    s.validate().unwrap_or_else(|p| panic!("{p:?}"));
    s
}

pub fn driver(name: &str, devices: &[&str]) -> Parts {
    Parts {
        components: vec![component(name, 200, false, devices)],
        devices: Vec::new(),
    }
}

fn hex<T: TryFrom<u32>>(text: &str) -> T {
    let v = u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).unwrap();
    T::try_from(v).unwrap_or_else(|_| panic!("{text} out of range"))
}

/// A `[[device]]`; `selector` and `irq` are written as in a description (`pci = "8086:10d3"`,
/// `class = "02:00"` with an optional `index = N` line, `ioport = "0x3f8-0x3ff"`; `"msi"`,
/// `"legacy"`, `{ ioapic = 4 }`, ...).
pub fn device(name: &str, selector: &str, irq: Option<&str>) -> Parts {
    let mut index = 0;
    let mut kind = None;
    for line in selector.lines() {
        let (k, v) = line.split_once('=').unwrap();
        let v = v.trim().trim_matches('"');
        match k.trim() {
            "index" => index = v.parse().unwrap(),
            k => kind = Some((k.to_string(), v.to_string())),
        }
    }
    let (k, v) = kind.unwrap();
    let selector = match k.as_str() {
        "pci" => {
            let (vendor, device) = v.split_once(':').unwrap();
            DeviceSelector::Pci {
                vendor: hex(vendor),
                device: hex(device),
                index,
            }
        }
        "class" => {
            let p: Vec<u8> = v.split(':').map(hex).collect();
            DeviceSelector::Class {
                class: p[0],
                subclass: p[1],
                prog_if: p.get(2).copied(),
                index,
            }
        }
        "ioport" => {
            let (first, last) = v.split_once('-').unwrap_or((&v, &v));
            DeviceSelector::IoPort {
                first: hex(first),
                last: hex(last),
            }
        }
        "mmio" => {
            let (base, last) = v.split_once('-').unwrap();
            let parse = |h: &str| u64::from_str_radix(h.trim_start_matches("0x"), 16).unwrap();
            DeviceSelector::Mmio {
                base: parse(base),
                last: parse(last),
            }
        }
        other => panic!("unknown selector {other}"),
    };
    let irq = irq.map(|text| match text.trim() {
        "\"msi\"" => Irq::Msi,
        "\"msix\"" => Irq::MsiX,
        "\"legacy\"" => Irq::Legacy,
        "\"ioapic\"" => Irq::IoApic { line: None },
        "\"pic\"" => Irq::Pic { line: None },
        fixed => {
            let inner = fixed.trim_matches(|c: char| c == '{' || c == '}' || c == ' ');
            let (k, v) = inner.split_once('=').unwrap();
            let line = Some(v.trim().parse().unwrap());
            match k.trim() {
                "ioapic" => Irq::IoApic { line },
                "pic" => Irq::Pic { line },
                other => panic!("unknown interrupt {other}"),
            }
        }
    });
    Parts {
        components: Vec::new(),
        devices: vec![Device {
            name: name.into(),
            selector,
            irq,
        }],
    }
}
