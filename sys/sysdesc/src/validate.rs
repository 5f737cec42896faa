//! The rules a system must satisfy, checked on the model so that the host front end and the
//! root task's decoder apply the same ones. Each problem names the value it is about (a
//! [`Site`]); the host front end turns that into a file position.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::model::{
    Component, DeviceSelector, Irq, RestartPolicy, System, FUNDAMENTAL, MAX_NAME_LEN, MAX_PRIORITY,
    MIN_BUDGET, PAGE_SIZE, RESERVED_MEMORY, ROOT_PRIORITY,
};
use crate::size::Size;

/// One rule a system breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The value the problem is about.
    pub site: Site,
    /// What is wrong, as one sentence without a trailing period.
    pub message: String,
}

/// Where in a description a [`Problem`] lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// A value of the `[system]` table.
    System(SystemField),
    /// A value of the `index`th `[[component]]`.
    Component {
        /// Position in [`System::components`].
        index: usize,
        /// Which value.
        field: ComponentField,
    },
    /// A value of the `index`th `[[device]]`.
    Device {
        /// Position in [`System::devices`].
        index: usize,
        /// Which value.
        field: DeviceField,
    },
    /// A value of the `index`th `[[shared]]` region.
    Shared {
        /// Position in [`System::shared`].
        index: usize,
        /// Which value.
        field: SharedField,
    },
}

/// A value of the `[system]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemField {
    /// The table as a whole.
    Table,
    /// `name`.
    Name,
    /// `memory`.
    Memory,
}

/// A value of a `[[component]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComponentField {
    /// `name`.
    Name,
    /// `binary`.
    Binary,
    /// `priority`.
    Priority,
    /// `memory`.
    Memory,
    /// `fundamental`.
    Fundamental,
    /// The nth entry of `provides`.
    Provides(usize),
    /// The nth entry of `routes`.
    Routes(usize),
    /// The nth entry of `devices`.
    Devices(usize),
    /// The nth entry of `shared`.
    Shared(usize),
    /// `restart`.
    Restart,
}

/// A value of a `[[device]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceField {
    /// `name`.
    Name,
    /// The selector: `pci`, `class`, `ioport` or `mmio`.
    Selector,
    /// `irq`.
    Irq,
}

/// A value of a `[[shared]]` region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedField {
    /// `name`.
    Name,
    /// `size`.
    Size,
}

impl System {
    /// Checks every rule in the crate documentation. Returns all problems found, in
    /// description order within each kind of check.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut check = Checker {
            system: self,
            problems: Vec::new(),
        };
        check.system();
        check.components();
        check.devices();
        check.regions();
        check.budget();
        if check.problems.is_empty() {
            Ok(())
        } else {
            Err(check.problems)
        }
    }
}

/// Why `name` is not a valid name, if it is not.
/// Why `name` is not a valid name (see the crate's invariants), if it is not.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some(String::from("a name must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "name \"{name}\" is longer than {MAX_NAME_LEN} bytes"
        ));
    }
    let first_is_letter = name.starts_with(|c: char| c.is_ascii_lowercase());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !first_is_letter || !rest_ok {
        return Some(format!(
            "name \"{name}\" must start with a-z and hold only a-z, 0-9, '-' and '_'"
        ));
    }
    None
}

fn size_problem(what: &str, bytes: u64) -> Option<String> {
    if bytes == 0 {
        Some(format!("{what} must not be zero"))
    } else if !bytes.is_multiple_of(PAGE_SIZE) {
        Some(format!(
            "{what} of {bytes} bytes is not a multiple of the {} page",
            Size(PAGE_SIZE)
        ))
    } else {
        None
    }
}

struct Checker<'a> {
    system: &'a System,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, site: Site, message: String) {
        self.problems.push(Problem { site, message });
    }

    fn component(&mut self, index: usize, field: ComponentField, message: String) {
        self.report(Site::Component { index, field }, message);
    }

    fn system(&mut self) {
        let s = self.system;
        if let Some(m) = name_problem(&s.name) {
            self.report(Site::System(SystemField::Name), m);
        }
        if let Some(m) = size_problem("machine memory", s.memory) {
            self.report(Site::System(SystemField::Memory), m);
        } else if s.memory <= RESERVED_MEMORY {
            self.report(
                Site::System(SystemField::Memory),
                format!(
                    "machine memory of {} leaves nothing after the {} reserved for the kernel and root task",
                    Size(s.memory),
                    Size(RESERVED_MEMORY)
                ),
            );
        }
        if s.components.len() > usize::from(u16::MAX) {
            self.report(
                Site::System(SystemField::Table),
                format!("too many components (at most {})", u16::MAX),
            );
        }
        for name in FUNDAMENTAL {
            if !s.components.iter().any(|c| c.fundamental && c.name == name) {
                self.report(
                    Site::System(SystemField::Table),
                    format!(
                        "missing fundamental component \"{name}\" (add a [[component]] with name = \"{name}\" and fundamental = true)"
                    ),
                );
            }
        }
    }

    fn components(&mut self) {
        let s = self.system;
        for (i, c) in s.components.iter().enumerate() {
            self.identity(i, c);
            self.provides(i, c);
            self.routes(i, c);
            self.assignments(i, c);
            if let RestartPolicy::Always { max: 0, .. } = c.restart {
                self.component(
                    i,
                    ComponentField::Restart,
                    format!(
                        "restart policy \"always\" with max = 0 for component \"{}\" never restarts (use \"never\", or max >= 1)",
                        c.name
                    ),
                );
            }
        }
    }

    fn identity(&mut self, i: usize, c: &Component) {
        use ComponentField as F;
        let s = self.system;
        if let Some(m) = name_problem(&c.name) {
            self.component(i, F::Name, m);
        }
        if s.components[..i].iter().any(|o| o.name == c.name) {
            self.component(i, F::Name, format!("duplicate component \"{}\"", c.name));
        }
        // A binary defaulted from the name is covered by the name check.
        if let Some(m) = name_problem(&c.binary).filter(|_| c.binary != c.name) {
            self.component(i, F::Binary, format!("binary: {m}"));
        }
        if c.priority > MAX_PRIORITY {
            self.component(
                i,
                F::Priority,
                priority_message(i64::from(c.priority), &c.name),
            );
        }
        if let Some(m) = size_problem(
            &format!("memory budget of component \"{}\"", c.name),
            c.memory,
        ) {
            self.component(i, F::Memory, m);
        } else if c.memory < MIN_BUDGET {
            self.component(
                i,
                F::Memory,
                format!(
                    "memory budget of component \"{}\" is {}, below the {} minimum (its heap and stack come out of it)",
                    c.name,
                    Size(c.memory),
                    Size(MIN_BUDGET)
                ),
            );
        }
        let named_fundamental = FUNDAMENTAL.contains(&c.name.as_str());
        if c.fundamental && !named_fundamental {
            self.component(
                i,
                F::Fundamental,
                format!(
                    "component \"{}\" cannot be fundamental: only naming, proc, memory and devices are",
                    c.name
                ),
            );
        }
        if !c.fundamental && named_fundamental {
            self.component(
                i,
                F::Name,
                format!(
                    "component \"{}\" has a fundamental service's name but is not marked fundamental = true",
                    c.name
                ),
            );
        }
        if c.fundamental && c.restart != RestartPolicy::Never {
            self.component(
                i,
                F::Restart,
                format!(
                    "fundamental component \"{}\" cannot be restarted: its fault stops the system",
                    c.name
                ),
            );
        }
    }

    fn provides(&mut self, i: usize, c: &Component) {
        let s = self.system;
        for (j, service) in c.provides.iter().enumerate() {
            let field = ComponentField::Provides(j);
            if let Some(m) = name_problem(service) {
                self.component(i, field, m);
            } else if c.fundamental {
                self.component(
                    i,
                    field,
                    format!(
                        "fundamental component \"{}\" provides only the service named after it; remove \"{service}\"",
                        c.name
                    ),
                );
            } else if FUNDAMENTAL.contains(&service.as_str()) {
                self.component(
                    i,
                    field,
                    format!(
                        "component \"{}\" cannot provide \"{service}\": it is a fundamental service",
                        c.name
                    ),
                );
            } else if c.provides[..j].contains(service) {
                self.component(
                    i,
                    field,
                    format!("component \"{}\" lists service \"{service}\" twice", c.name),
                );
            } else if let Some(other) = s.components[..i].iter().find(|o| o.provides(service)) {
                self.component(
                    i,
                    field,
                    format!(
                        "service \"{service}\" is already provided by component \"{}\"",
                        other.name
                    ),
                );
            }
        }
    }

    fn routes(&mut self, i: usize, c: &Component) {
        let s = self.system;
        for (j, service) in c.routes.iter().enumerate() {
            let field = ComponentField::Routes(j);
            if c.routes[..j].contains(service) {
                self.component(
                    i,
                    field,
                    format!("component \"{}\" routes to \"{service}\" twice", c.name),
                );
            } else if c.provides(service) {
                self.component(
                    i,
                    field,
                    format!(
                        "component \"{}\" routes to its own service \"{service}\"",
                        c.name
                    ),
                );
            } else if s.provider(service).is_none() {
                self.component(
                    i,
                    field,
                    format!(
                        "route to unknown service \"{service}\" from component \"{}\"",
                        c.name
                    ),
                );
            }
        }
    }

    fn assignments(&mut self, i: usize, c: &Component) {
        let s = self.system;
        for (j, device) in c.devices.iter().enumerate() {
            let field = ComponentField::Devices(j);
            if c.devices[..j].contains(device) {
                self.component(
                    i,
                    field,
                    format!("component \"{}\" lists device \"{device}\" twice", c.name),
                );
            } else if s.device(device).is_none() {
                self.component(
                    i,
                    field,
                    format!(
                        "unknown device \"{device}\" in component \"{}\" (no [[device]] has that name)",
                        c.name
                    ),
                );
            } else if let Some(other) = s.components[..i]
                .iter()
                .find(|o| o.devices.contains(device))
            {
                self.component(
                    i,
                    field,
                    format!(
                        "device \"{device}\" is assigned to component \"{}\" and already to component \"{}\"",
                        c.name, other.name
                    ),
                );
            }
        }
        if !c.devices.is_empty() && !c.routes.iter().any(|r| r == "devices") {
            self.component(
                i,
                ComponentField::Devices(0),
                format!(
                    "component \"{}\" drives devices but does not route to \"devices\"",
                    c.name
                ),
            );
        }
        for (j, region) in c.shared.iter().enumerate() {
            let field = ComponentField::Shared(j);
            if c.shared[..j].contains(region) {
                self.component(
                    i,
                    field,
                    format!("component \"{}\" joins region \"{region}\" twice", c.name),
                );
            } else if s.region(region).is_none() {
                self.component(
                    i,
                    field,
                    format!(
                        "unknown shared region \"{region}\" in component \"{}\" (no [[shared]] has that name)",
                        c.name
                    ),
                );
            }
        }
    }

    fn devices(&mut self) {
        let s = self.system;
        for (i, d) in s.devices.iter().enumerate() {
            let site = |field| Site::Device { index: i, field };
            if let Some(m) = name_problem(&d.name) {
                self.report(site(DeviceField::Name), m);
            }
            if s.devices[..i].iter().any(|o| o.name == d.name) {
                self.report(
                    site(DeviceField::Name),
                    format!("duplicate device \"{}\"", d.name),
                );
            }
            if let Some(other) = s.devices[..i]
                .iter()
                .find(|o| same_hardware(&o.selector, &d.selector))
            {
                self.report(
                    site(DeviceField::Selector),
                    format!(
                        "device \"{}\" selects the same hardware as device \"{}\"",
                        d.name, other.name
                    ),
                );
            }
            if let DeviceSelector::IoPort { first, last } = d.selector {
                if last < first {
                    self.report(
                        site(DeviceField::Selector),
                        format!(
                            "device \"{}\": I/O port range {first:#x}-{last:#x} ends before it starts",
                            d.name
                        ),
                    );
                }
                if let Some(m) = legacy_irq_problem(d.irq) {
                    self.report(
                        site(DeviceField::Irq),
                        format!("device \"{}\": {m}", d.name),
                    );
                }
            }
            if let DeviceSelector::Mmio { base, last } = d.selector {
                if !base.is_multiple_of(PAGE_SIZE) || last < base {
                    self.report(
                        site(DeviceField::Selector),
                        format!(
                            "device \"{}\": memory range {base:#x}-{last:#x} must start on a 4 KiB page and end after it starts",
                            d.name
                        ),
                    );
                }
                if let Some(m) = mmio_irq_problem(d.irq) {
                    self.report(
                        site(DeviceField::Irq),
                        format!("device \"{}\": {m}", d.name),
                    );
                }
            }
            if let Some(Irq::Pic { line: Some(line) }) = d.irq {
                if line > 15 {
                    self.report(
                        site(DeviceField::Irq),
                        format!(
                            "device \"{}\": PIC line {line} is out of range 0..=15",
                            d.name
                        ),
                    );
                }
            }
            if s.driver_of(&d.name).is_none() {
                self.report(
                    site(DeviceField::Name),
                    format!("device \"{}\" is not driven by any component", d.name),
                );
            }
        }
    }

    fn regions(&mut self) {
        let s = self.system;
        for (i, r) in s.shared.iter().enumerate() {
            let site = |field| Site::Shared { index: i, field };
            if let Some(m) = name_problem(&r.name) {
                self.report(site(SharedField::Name), m);
            }
            if s.shared[..i].iter().any(|o| o.name == r.name) {
                self.report(
                    site(SharedField::Name),
                    format!("duplicate shared region \"{}\"", r.name),
                );
            }
            if let Some(m) = size_problem(&format!("size of shared region \"{}\"", r.name), r.size)
            {
                self.report(site(SharedField::Size), m);
            }
            let members: Vec<&str> = s
                .members(&r.name)
                .filter_map(|id| s.get(id))
                .map(|c| c.name.as_str())
                .collect();
            if members.len() < 2 {
                let who = if members.is_empty() {
                    String::from("no component")
                } else {
                    format!("only component \"{}\"", members[0])
                };
                self.report(
                    site(SharedField::Name),
                    format!(
                        "shared region \"{}\" is joined by {who}; a region needs at least two",
                        r.name
                    ),
                );
            }
        }
    }

    fn budget(&mut self) {
        let s = self.system;
        let available = s.memory.saturating_sub(RESERVED_MEMORY);
        let committed = s.committed_memory();
        if s.memory > RESERVED_MEMORY && committed > available {
            // Point at the budget that first crosses the line, or the machine memory if only
            // the shared regions do.
            let mut sum: u64 = s.shared.iter().map(|r| r.size).fold(0, u64::saturating_add);
            let mut site = Site::System(SystemField::Memory);
            for (index, c) in s.components.iter().enumerate() {
                sum = sum.saturating_add(c.memory);
                if sum > available {
                    site = Site::Component {
                        index,
                        field: ComponentField::Memory,
                    };
                    break;
                }
            }
            self.report(
                site,
                format!(
                    "budget over the machine: components and shared regions need {} but the machine's {} leaves {} after the {} reserve",
                    Size(committed),
                    Size(s.memory),
                    Size(available),
                    Size(RESERVED_MEMORY)
                ),
            );
        }
    }
}

/// The message for a priority outside 0..=254, shared with the host front end.
/// The message for an out-of-range `priority` of `component`.
pub fn priority_message(priority: i64, component: &str) -> String {
    if priority == i64::from(ROOT_PRIORITY) {
        format!(
            "priority 255 of component \"{component}\" is reserved for the root task (use 0..={MAX_PRIORITY})"
        )
    } else {
        format!(
            "priority {priority} of component \"{component}\" is out of range 0..={MAX_PRIORITY}"
        )
    }
}

fn legacy_irq_problem(irq: Option<Irq>) -> Option<&'static str> {
    match irq {
        None | Some(Irq::IoApic { line: Some(_) }) | Some(Irq::Pic { line: Some(_) }) => None,
        Some(Irq::Msi) => Some("an I/O port device cannot use MSI"),
        Some(Irq::MsiX) => Some("an I/O port device cannot use MSI-X"),
        Some(_) => {
            Some("an I/O port device needs a fixed interrupt line, such as irq = { ioapic = 4 }")
        }
    }
}

fn mmio_irq_problem(irq: Option<Irq>) -> Option<&'static str> {
    match irq {
        None
        | Some(Irq::Msi)
        | Some(Irq::IoApic { line: Some(_) })
        | Some(Irq::Pic { line: Some(_) }) => None,
        Some(_) => Some(
            "a memory-mapped device needs msi or a fixed interrupt line, such as irq = { ioapic = 2 }",
        ),
    }
}

fn same_hardware(a: &DeviceSelector, b: &DeviceSelector) -> bool {
    match (a, b) {
        (
            DeviceSelector::Mmio { base, last },
            DeviceSelector::Mmio {
                base: base2,
                last: last2,
            },
        ) => base <= last2 && base2 <= last,
        (DeviceSelector::Mmio { .. }, _) | (_, DeviceSelector::Mmio { .. }) => false,
        (
            DeviceSelector::IoPort { first, last },
            DeviceSelector::IoPort {
                first: first2,
                last: last2,
            },
        ) => first <= last2 && first2 <= last,
        (DeviceSelector::IoPort { .. }, _) | (_, DeviceSelector::IoPort { .. }) => false,
        _ => a == b,
    }
}
