//! From the spanned TOML document to the model. Values that cannot be represented in the model
//! are reported here and replaced by harmless stand-ins, so that validation still runs and
//! every problem in a file is reported at once.

use std::format;
use std::string::String;
use std::vec::Vec;

use toml::Spanned;

use super::raw::{RawComponent, RawDevice, RawFile, RawIrq, RawRestart, RawSize};
use sysdesc::parse_size;
use sysdesc::validate::{
    priority_message, ComponentField, DeviceField, SharedField, Site, SystemField,
};
use sysdesc::{
    Component, Device, DeviceSelector, Irq, RestartPolicy, SharedRegion, System, MIN_BUDGET,
    PAGE_SIZE,
};

/// Restarts allowed when `restart = "always"` gives no `max`.
const DEFAULT_RESTART_MAX: u32 = 3;
/// Back-off when `restart` gives no `backoff_ms`.
const DEFAULT_BACKOFF_MS: u32 = 100;

/// A problem found while converting: byte offset and message.
pub(crate) type Found = Vec<(usize, String)>;

/// Where each value of the model was written.
#[derive(Default)]
pub(crate) struct Spans {
    system: [usize; 3],
    components: Vec<ComponentSpans>,
    devices: Vec<[usize; 3]>,
    shared: Vec<[usize; 2]>,
}

struct ComponentSpans {
    name: usize,
    binary: usize,
    priority: usize,
    memory: usize,
    fundamental: usize,
    restart: usize,
    provides: Vec<usize>,
    routes: Vec<usize>,
    devices: Vec<usize>,
    shared: Vec<usize>,
}

impl Spans {
    /// The byte offset of the value a site names (0 if the site is out of range).
    pub(crate) fn locate(&self, site: Site) -> usize {
        let list = |l: &[usize], j: usize, or: usize| l.get(j).copied().unwrap_or(or);
        match site {
            Site::System(f) => self.system[f as usize],
            Site::Component { index, field } => {
                let Some(c) = self.components.get(index) else {
                    return 0;
                };
                match field {
                    ComponentField::Name => c.name,
                    ComponentField::Binary => c.binary,
                    ComponentField::Priority => c.priority,
                    ComponentField::Memory => c.memory,
                    ComponentField::Fundamental => c.fundamental,
                    ComponentField::Restart => c.restart,
                    ComponentField::Provides(j) => list(&c.provides, j, c.name),
                    ComponentField::Routes(j) => list(&c.routes, j, c.name),
                    ComponentField::Devices(j) => list(&c.devices, j, c.name),
                    ComponentField::Shared(j) => list(&c.shared, j, c.name),
                }
            }
            Site::Device { index, field } => {
                self.devices.get(index).map_or(0, |d| d[field as usize])
            }
            Site::Shared { index, field } => {
                self.shared.get(index).map_or(0, |r| r[field as usize])
            }
        }
    }
}

fn start<T>(s: &Spanned<T>) -> usize {
    s.span().start
}

fn starts(list: &[Spanned<String>]) -> Vec<usize> {
    list.iter().map(start).collect()
}

fn strings(list: &[Spanned<String>]) -> Vec<String> {
    list.iter().map(|s| s.get_ref().clone()).collect()
}

/// Converts the document; returns the model (with stand-ins where values were bad), where
/// each value was written, and the problems found.
pub(crate) fn convert(raw: &RawFile) -> (System, Spans, Found) {
    let mut found = Found::new();
    let mut spans = Spans::default();
    let sys = raw.system.get_ref();
    spans.system = [start(&raw.system), start(&sys.name), start(&sys.memory)];
    const _: () = assert!(SystemField::Memory as usize == 2);
    let memory =
        size(&sys.memory, "machine memory", &mut found).unwrap_or(u64::MAX - PAGE_SIZE + 1);
    let components = raw
        .component
        .iter()
        .map(|c| {
            let (component, s) = component(c, &mut found);
            spans.components.push(s);
            component
        })
        .collect();
    let devices = raw
        .device
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (selector_at, irq_at) = (
                [&d.pci, &d.class, &d.ioport, &d.mmio]
                    .into_iter()
                    .flatten()
                    .map(start)
                    .next()
                    .unwrap_or(start(&d.name)),
                d.irq.as_ref().map_or(start(&d.name), start),
            );
            spans.devices.push([start(&d.name), selector_at, irq_at]);
            device(i, d, &mut found)
        })
        .collect();
    const _: () = assert!(DeviceField::Irq as usize == 2 && SharedField::Size as usize == 1);
    let shared = raw
        .shared
        .iter()
        .map(|r| {
            spans.shared.push([start(&r.name), start(&r.size)]);
            let what = format!("size of shared region \"{}\"", r.name.get_ref());
            SharedRegion {
                name: r.name.get_ref().clone(),
                size: size(&r.size, &what, &mut found).unwrap_or(PAGE_SIZE),
            }
        })
        .collect();
    let system = System {
        name: sys.name.get_ref().clone(),
        description: sys.description.clone(),
        memory,
        components,
        devices,
        shared,
    };
    (system, spans, found)
}

fn size(value: &Spanned<RawSize>, what: &str, found: &mut Found) -> Option<u64> {
    let result = match value.get_ref() {
        RawSize::Text(text) => parse_size(text).map_err(|e| format!("{what} \"{text}\": {e}")),
        RawSize::Bytes(n) => u64::try_from(*n).map_err(|_| format!("{what} must not be negative")),
    };
    result.map_err(|m| found.push((start(value), m))).ok()
}

fn component(c: &RawComponent, found: &mut Found) -> (Component, ComponentSpans) {
    let name = c.name.get_ref().clone();
    let name_at = start(&c.name);
    let spans = ComponentSpans {
        name: name_at,
        binary: c.binary.as_ref().map_or(name_at, start),
        priority: start(&c.priority),
        memory: start(&c.memory),
        fundamental: c.fundamental.as_ref().map_or(name_at, start),
        restart: c.restart.as_ref().map_or(name_at, start),
        provides: starts(&c.provides),
        routes: starts(&c.routes),
        devices: starts(&c.devices),
        shared: starts(&c.shared),
    };
    let priority = match u8::try_from(*c.priority.get_ref()) {
        Ok(p) => p,
        Err(_) => {
            found.push((
                start(&c.priority),
                priority_message(*c.priority.get_ref(), &name),
            ));
            0
        }
    };
    let what = format!("memory budget of component \"{name}\"");
    let component = Component {
        binary: c
            .binary
            .as_ref()
            .map_or_else(|| name.clone(), |b| b.get_ref().clone()),
        priority,
        memory: size(&c.memory, &what, found).unwrap_or(MIN_BUDGET),
        fundamental: c.fundamental.as_ref().is_some_and(|f| *f.get_ref()),
        provides: strings(&c.provides),
        routes: strings(&c.routes),
        devices: strings(&c.devices),
        shared: strings(&c.shared),
        restart: c
            .restart
            .as_ref()
            .map_or(RestartPolicy::Never, |r| restart(r, &name, found)),
        args: c.args.clone(),
        name,
    };
    (component, spans)
}

fn restart(r: &Spanned<RawRestart>, component: &str, found: &mut Found) -> RestartPolicy {
    let raw = r.get_ref();
    let policy_at = if raw.bare {
        start(r)
    } else {
        start(&raw.policy)
    };
    let number = |v: &Option<Spanned<i64>>, key: &str, default: u32, found: &mut Found| match v {
        None => default,
        Some(v) => u32::try_from(*v.get_ref()).unwrap_or_else(|_| {
            found.push((
                start(v),
                format!(
                    "restart {key} = {} of component \"{component}\" is out of range 0..={}",
                    v.get_ref(),
                    u32::MAX
                ),
            ));
            default
        }),
    };
    match raw.policy.get_ref().as_str() {
        "never" => {
            if let Some(extra) = raw.max.as_ref().or(raw.backoff_ms.as_ref()) {
                found.push((
                    start(extra),
                    format!(
                        "restart policy \"never\" of component \"{component}\" takes no max or backoff_ms"
                    ),
                ));
            }
            RestartPolicy::Never
        }
        "always" => RestartPolicy::Always {
            max: number(&raw.max, "max", DEFAULT_RESTART_MAX, found),
            backoff_ms: number(&raw.backoff_ms, "backoff_ms", DEFAULT_BACKOFF_MS, found),
        },
        other => {
            found.push((
                policy_at,
                format!(
                    "unknown restart policy \"{other}\" for component \"{component}\" (use \"never\" or \"always\")"
                ),
            ));
            RestartPolicy::Never
        }
    }
}

fn device(i: usize, d: &RawDevice, found: &mut Found) -> Device {
    let name = d.name.get_ref();
    let index = match &d.index {
        None => 0,
        Some(ix) => u16::try_from(*ix.get_ref()).unwrap_or_else(|_| {
            found.push((
                start(ix),
                format!(
                    "index {} of device \"{name}\" is out of range 0..={}",
                    ix.get_ref(),
                    u16::MAX
                ),
            ));
            0
        }),
    };
    // A stand-in that selects nothing real and clashes with no other stand-in.
    let stand_in = DeviceSelector::Pci {
        vendor: 0xffff,
        device: 0xffff,
        index: u16::try_from(i).unwrap_or(u16::MAX),
    };
    let given: Vec<(&str, &Spanned<String>)> = [
        ("pci", &d.pci),
        ("class", &d.class),
        ("ioport", &d.ioport),
        ("mmio", &d.mmio),
    ]
    .into_iter()
    .filter_map(|(key, v)| v.as_ref().map(|v| (key, v)))
    .collect();
    let selector = match given.as_slice() {
        [] => {
            found.push((
                start(&d.name),
                format!("device \"{name}\" needs one of pci, class, ioport or mmio"),
            ));
            stand_in
        }
        [(first, _), (second, v), ..] => {
            found.push((
                start(v),
                format!("device \"{name}\" has both {first} and {second}; give only one"),
            ));
            stand_in
        }
        [(key, v)] => {
            let text = v.get_ref();
            let parsed = match *key {
                "pci" => parse_pci(text, index),
                "class" => parse_class(text, index),
                "mmio" => parse_mmio(text),
                _ => parse_ioport(text),
            };
            parsed.unwrap_or_else(|m| {
                found.push((start(v), format!("device \"{name}\": {m}")));
                stand_in
            })
        }
    };
    if let (Some(ix), DeviceSelector::IoPort { .. } | DeviceSelector::Mmio { .. }) =
        (&d.index, selector)
    {
        found.push((
            start(ix),
            format!("device \"{name}\": index applies only to pci and class devices"),
        ));
    }
    let irq = d.irq.as_ref().and_then(|irq| {
        let result = match irq.get_ref() {
            RawIrq::Kind(kind) => match kind.as_str() {
                "msi" => Ok(Irq::Msi),
                "msix" => Ok(Irq::MsiX),
                "ioapic" => Ok(Irq::IoApic { line: None }),
                "pic" => Ok(Irq::Pic { line: None }),
                "legacy" => Ok(Irq::Legacy),
                other => Err(format!(
                    "unknown irq kind \"{other}\" for device \"{name}\" (use msi, msix, ioapic, pic, legacy, or {{ ioapic = N }})"
                )),
            },
            RawIrq::Line { kind, line } => match u8::try_from(*line) {
                Ok(l) if kind == "pic" => Ok(Irq::Pic { line: Some(l) }),
                Ok(l) => Ok(Irq::IoApic { line: Some(l) }),
                Err(_) => Err(format!(
                    "irq line {line} of device \"{name}\" is out of range 0..=255"
                )),
            },
        };
        result.map_err(|m| found.push((start(irq), m))).ok()
    });
    Device {
        name: name.clone(),
        selector,
        irq,
    }
}

fn hex<T: TryFrom<u32>>(text: &str, digits: usize) -> Option<T> {
    if text.is_empty() || text.len() > digits || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()?.try_into().ok()
}

fn parse_pci(text: &str, index: u16) -> Result<DeviceSelector, String> {
    let parsed = text
        .split_once(':')
        .and_then(|(v, d)| Some((hex::<u16>(v, 4)?, hex::<u16>(d, 4)?)));
    match parsed {
        Some((vendor, device)) => Ok(DeviceSelector::Pci {
            vendor,
            device,
            index,
        }),
        None => Err(format!(
            "pci = \"{text}\" is not vendor:device in hex, such as \"8086:10d3\""
        )),
    }
}

fn parse_class(text: &str, index: u16) -> Result<DeviceSelector, String> {
    let parts: Vec<Option<u8>> = text.split(':').map(|p| hex::<u8>(p, 2)).collect();
    match parts.as_slice() {
        [Some(class), Some(subclass)] => Ok(DeviceSelector::Class {
            class: *class,
            subclass: *subclass,
            prog_if: None,
            index,
        }),
        [Some(class), Some(subclass), Some(prog_if)] => Ok(DeviceSelector::Class {
            class: *class,
            subclass: *subclass,
            prog_if: Some(*prog_if),
            index,
        }),
        _ => Err(format!(
            "class = \"{text}\" is not class:subclass[:prog-if] in hex, such as \"02:00\""
        )),
    }
}

fn parse_mmio(text: &str) -> Result<DeviceSelector, String> {
    let address = |a: &str| {
        let h = a.trim().strip_prefix("0x")?;
        if h.is_empty() || h.len() > 16 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(h, 16).ok()
    };
    match text.split_once('-').and_then(|(a, b)| address(a).zip(address(b))) {
        Some((base, last)) => Ok(DeviceSelector::Mmio { base, last }),
        None => Err(format!(
            "mmio = \"{text}\" is not an inclusive physical address range in hex, such as \"0xfed00000-0xfed003ff\""
        )),
    }
}

fn parse_ioport(text: &str) -> Result<DeviceSelector, String> {
    let port = |p: &str| p.trim().strip_prefix("0x").and_then(|h| hex::<u16>(h, 4));
    let parsed = match text.split_once('-') {
        Some((a, b)) => port(a).zip(port(b)),
        None => port(text).map(|p| (p, p)),
    };
    match parsed {
        Some((first, last)) => Ok(DeviceSelector::IoPort { first, last }),
        None => Err(format!(
            "ioport = \"{text}\" is not a port or inclusive range in hex, such as \"0x3f8-0x3ff\""
        )),
    }
}
