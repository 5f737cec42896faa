//! The validated model of a system and the queries services ask of it.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The fundamental components, each named after the one service it provides.
pub const FUNDAMENTAL: [&str; 4] = ["naming", "proc", "memory", "devices"];

/// The highest priority a component may have; the root task alone runs above it.
pub const MAX_PRIORITY: u8 = 254;

/// The root task's priority, reserved.
pub const ROOT_PRIORITY: u8 = 255;

/// The page size: memory budgets and region sizes are multiples of it.
pub const PAGE_SIZE: u64 = 4096;

/// Memory kept back from the machine for the kernel, the root task, the boot image and the
/// kernel objects root creates; component budgets and shared regions share the rest.
pub const RESERVED_MEMORY: u64 = 32 * 1024 * 1024;

/// The longest name (component, service, device, region, system), in bytes.
pub const MAX_NAME_LEN: usize = 32;

/// A whole system: its components, devices and shared regions.
///
/// Built by `sysdesc_toml::parse` or [`System::decode`], both of which validate it. The fields
/// are public so the build tool can adjust a description (say, the NIC model); call
/// [`System::validate`] after any change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct System {
    /// The system's name.
    pub name: String,
    /// Free text describing the system.
    pub description: String,
    /// The machine's memory, in bytes.
    pub memory: u64,
    /// The components, in description order; [`ComponentId`] indexes this list.
    pub components: Vec<Component>,
    /// The devices components may drive.
    pub devices: Vec<Device>,
    /// The memory regions shared between components.
    pub shared: Vec<SharedRegion>,
}

/// A component's index in [`System::components`]: the identity root and naming use for it
/// (for example as the badge of its naming capability).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ComponentId(pub u16);

impl ComponentId {
    /// The index into [`System::components`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// One component: a binary loaded with the authority its description grants and no more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// The component's unique name.
    pub name: String,
    /// The component binary to load.
    pub binary: String,
    /// Scheduling priority, 0..=[`MAX_PRIORITY`].
    pub priority: u8,
    /// Memory budget, in bytes.
    pub memory: u64,
    /// Whether this is one of the [`FUNDAMENTAL`] components root starts first.
    pub fundamental: bool,
    /// Services it registers with naming (for a fundamental component, empty: it provides the
    /// service named after it).
    pub provides: Vec<String>,
    /// Services it may look up.
    pub routes: Vec<String>,
    /// Names of the devices it drives.
    pub devices: Vec<String>,
    /// Names of the shared regions it joins.
    pub shared: Vec<String>,
    /// What `proc` does when it faults.
    pub restart: RestartPolicy,
    /// Configuration handed to the component at start.
    pub args: BTreeMap<String, String>,
}

impl Component {
    /// Whether this component provides `service` (a fundamental component provides the service
    /// named after it).
    pub fn provides(&self, service: &str) -> bool {
        (self.fundamental && self.name == service) || self.provides.iter().any(|s| s == service)
    }

    /// Bytes of the initial thread's stack, taken from the budget: an eighth of it, at least
    /// [`MIN_STACK`] and at most [`MAX_STACK`], in whole pages.
    pub fn stack_bytes(&self) -> u64 {
        (self.memory / 8).clamp(MIN_STACK, MAX_STACK) & !(PAGE_SIZE - 1)
    }

    /// Bytes of heap, taken from the budget: half of it, in whole pages. The rest of the
    /// budget (after the stack) is for what the component allocates while it runs (DMA
    /// buffers, shared regions).
    pub fn heap_bytes(&self) -> u64 {
        (self.memory / 2) & !(PAGE_SIZE - 1)
    }
}

/// The smallest budget a component may have (its heap and stack come out of it).
pub const MIN_BUDGET: u64 = 64 * 1024;
/// The smallest initial stack a component gets.
pub const MIN_STACK: u64 = 16 * 1024;
/// The largest initial stack a component gets.
pub const MAX_STACK: u64 = 256 * 1024;

/// What `proc` does when a component faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// Leave it stopped.
    Never,
    /// Restart it, at most `max` times in a row, waiting `backoff_ms` before the first restart
    /// (the supervisor may grow the wait on later ones).
    Always {
        /// Restarts allowed before the component is left stopped; at least 1.
        max: u32,
        /// Milliseconds to wait before restarting.
        backoff_ms: u32,
    },
}

/// A device one component may drive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device's unique name.
    pub name: String,
    /// Which hardware it is.
    pub selector: DeviceSelector,
    /// How its interrupt is delivered; `None` for a polled device.
    pub irq: Option<Irq>,
}

/// How the `devices` service finds a device's hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceSelector {
    /// The `index`th PCI function (counting from 0, in bus order) with this vendor and device id.
    Pci {
        /// PCI vendor id.
        vendor: u16,
        /// PCI device id.
        device: u16,
        /// Which of several matches.
        index: u16,
    },
    /// The `index`th PCI function of this class (and subclass, and programming interface if
    /// given).
    Class {
        /// PCI base class.
        class: u8,
        /// PCI subclass.
        subclass: u8,
        /// PCI programming interface, or any.
        prog_if: Option<u8>,
        /// Which of several matches.
        index: u16,
    },
    /// A legacy device at a fixed range of x86 I/O ports.
    IoPort {
        /// First port.
        first: u16,
        /// Last port, inclusive.
        last: u16,
    },
    /// A platform device at a fixed range of physical memory (registers mapped uncached),
    /// such as the HPET.
    Mmio {
        /// First byte; a multiple of [`PAGE_SIZE`].
        base: u64,
        /// Last byte, inclusive.
        last: u64,
    },
}

/// How a device's interrupt reaches its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Irq {
    /// Message-signalled: for a PCI function `devices` programs its MSI capability; for an
    /// MMIO device the driver writes the message `devices` hands out into the device (the
    /// HPET's FSB route).
    Msi,
    /// Through the IOAPIC; `line` is fixed, or for PCI read from configuration space.
    IoApic {
        /// The IOAPIC input, if fixed.
        line: Option<u8>,
    },
    /// Through the 8259 PIC; `line` is fixed, or for PCI read from configuration space.
    Pic {
        /// The PIC line (0..=15), if fixed.
        line: Option<u8>,
    },
    /// PCI MSI-X: `devices` programs entry 0 of the function's MSI-X table (which it keeps
    /// out of the driver's reach) and enables MSI-X; MSI and INTx are disabled.
    MsiX,
    /// PCI INTx, routed through whichever interrupt controller the platform uses.
    Legacy,
}

/// Memory mapped into every component that joins it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedRegion {
    /// The region's unique name.
    pub name: String,
    /// Its size, in bytes.
    pub size: u64,
}

impl System {
    /// The component called `name`, if any.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The id of the component called `name`, if any.
    pub fn component_id(&self, name: &str) -> Option<ComponentId> {
        self.components
            .iter()
            .position(|c| c.name == name)
            .map(id_from_index)
    }

    /// The component with this id, if the id is in range.
    pub fn get(&self, id: ComponentId) -> Option<&Component> {
        self.components.get(id.index())
    }

    /// Every component with its id, in description order.
    pub fn iter(&self) -> impl Iterator<Item = (ComponentId, &Component)> + '_ {
        self.components
            .iter()
            .enumerate()
            .map(|(i, c)| (id_from_index(i), c))
    }

    /// The device called `name`, if any.
    pub fn device(&self, name: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.name == name)
    }

    /// The shared region called `name`, if any.
    pub fn region(&self, name: &str) -> Option<&SharedRegion> {
        self.shared.iter().find(|r| r.name == name)
    }

    /// Whether `client` may look up `service`: it routes to it, or the service is `naming`.
    /// False for an unknown client.
    pub fn may_lookup(&self, client: ComponentId, service: &str) -> bool {
        match self.get(client) {
            Some(c) => service == "naming" || c.routes.iter().any(|r| r == service),
            None => false,
        }
    }

    /// The component that provides `service`, if any.
    pub fn provider(&self, service: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.provides(service))
    }

    /// The id of the component that provides `service`, if any.
    pub fn provider_id(&self, service: &str) -> Option<ComponentId> {
        self.components
            .iter()
            .position(|c| c.provides(service))
            .map(id_from_index)
    }

    /// The components that join the shared region `region`, in description order (none for an
    /// unknown region).
    pub fn members<'a>(&'a self, region: &'a str) -> impl Iterator<Item = ComponentId> + 'a {
        self.iter()
            .filter(move |(_, c)| c.shared.iter().any(|r| r == region))
            .map(|(id, _)| id)
    }

    /// The component that drives `device`, if any.
    pub fn driver_of(&self, device: &str) -> Option<ComponentId> {
        self.iter()
            .find(|(_, c)| c.devices.iter().any(|d| d == device))
            .map(|(id, _)| id)
    }

    /// The sum of the component budgets and shared region sizes, in bytes (saturating).
    pub fn committed_memory(&self) -> u64 {
        let budgets = self.components.iter().map(|c| c.memory);
        let regions = self.shared.iter().map(|r| r.size);
        budgets.chain(regions).fold(0, u64::saturating_add)
    }
}

/// Index → id; validation guarantees the list fits in a `u16`, so this saturates only on an
/// unvalidated system.
fn id_from_index(index: usize) -> ComponentId {
    ComponentId(u16::try_from(index).unwrap_or(u16::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_budget(memory: u64) -> Component {
        Component {
            name: "c".into(),
            binary: "c".into(),
            priority: 1,
            memory,
            fundamental: false,
            provides: Vec::new(),
            routes: Vec::new(),
            devices: Vec::new(),
            shared: Vec::new(),
            restart: RestartPolicy::Never,
            args: Default::default(),
        }
    }

    #[test]
    fn heap_and_stack_come_out_of_the_budget() {
        let small = with_budget(MIN_BUDGET);
        assert_eq!(
            (small.heap_bytes(), small.stack_bytes()),
            (32 << 10, MIN_STACK)
        );
        let serial = with_budget(256 << 10);
        assert_eq!(
            (serial.heap_bytes(), serial.stack_bytes()),
            (128 << 10, 32 << 10)
        );
        let big = with_budget(128 << 20);
        assert_eq!((big.heap_bytes(), big.stack_bytes()), (64 << 20, MAX_STACK));
        // Odd budgets still give whole pages, and never more than the budget.
        let odd = with_budget((300 << 10) + 4096);
        assert_eq!(odd.heap_bytes() % PAGE_SIZE, 0);
        assert_eq!(odd.stack_bytes() % PAGE_SIZE, 0);
        assert!(odd.heap_bytes() + odd.stack_bytes() <= odd.memory);
    }
}
