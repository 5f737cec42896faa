//! Tessera system descriptions: the one place that says what runs, with what memory and
//! priority, who may look up whom, and which device and shared region goes where.
//!
//! A description is written as TOML (`systems/*.toml`), parsed and validated on the host by
//! the `sysdesc-toml` crate (a separate crate, so that no component build ever pulls `std`
//! in through feature unification), packed into the boot image with
//! [`System::encode`], and unpacked by the root task with [`System::decode`], which checks a
//! magic and version header and validates the result again. The model, the validation and the
//! compact form are `no_std` + `alloc`.
//!
//! # Invariants of a validated [`System`]
//! - Names (system, components, services, devices, regions) are 1..=[`MAX_NAME_LEN`] bytes of
//!   `a-z`, `0-9`, `-` and `_`, starting with a letter; each kind of name is unique.
//! - The four fundamental components ([`FUNDAMENTAL`]) are present exactly once each, named after
//!   the service they provide, marked `fundamental = true`, and never restarted.
//! - Every route names a service that exactly one *other* component provides (`naming` is always
//!   reachable and may be listed or not). A component never routes to its own service.
//! - Every device is declared once, selects hardware no other device selects, and is driven by
//!   exactly one component, which routes to `devices`.
//! - Every shared region is joined by at least two components.
//! - Priorities are 0..=[`MAX_PRIORITY`] (255 is the root task's). Memory budgets and region
//!   sizes are non-zero multiples of [`PAGE_SIZE`], and together fit in the machine's memory
//!   less [`RESERVED_MEMORY`].
//!
//! # Schema
//! ```toml
//! [system]
//! name = "default"                # a name
//! description = "free text"       # optional
//! memory = "512MiB"               # the machine's memory
//!
//! [[component]]
//! name = "serial"                 # unique; also the default `binary`
//! binary = "serial"               # optional: the component binary to load
//! priority = 200                  # 0..=254
//! memory = "256KiB"               # budget: bytes, or "KiB"/"MiB"/"GiB" units
//! fundamental = false             # true only for naming, proc, memory, devices
//! provides = ["serial"]           # services it registers with naming
//! routes = ["devices"]            # services it may look up
//! devices = ["com1"]              # [[device]] names it drives
//! shared = []                     # [[shared]] names it joins
//! restart = { policy = "always", max = 5, backoff_ms = 50 }   # or "never" (the default)
//! args = { baud = "115200" }      # optional string key-values handed to the component
//!
//! [[device]]
//! name = "com1"
//! ioport = "0x3f8-0x3ff"          # exactly one of: ioport (a port or inclusive range),
//! # pci = "8086:10d3"             #   pci (vendor:device, hex),
//! # class = "02:00"               #   class (class:subclass[:prog-if], hex)
//! # index = 0                     # pci/class only: which match, counting from 0
//! irq = { ioapic = 4 }            # optional: "msi", "ioapic", "pic", "legacy",
//!                                 #   or { ioapic = N } / { pic = N } for a fixed line
//!
//! [[shared]]
//! name = "net-rx"
//! size = "2MiB"
//! ```
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod codec;
mod model;
mod size;
pub mod validate;

pub use codec::{DecodeError, FORMAT_VERSION, MAGIC};
pub use model::{
    Component, ComponentId, Device, DeviceSelector, Irq, RestartPolicy, SharedRegion, System,
    FUNDAMENTAL, MAX_NAME_LEN, MAX_PRIORITY, MAX_STACK, MIN_BUDGET, MIN_STACK, PAGE_SIZE,
    RESERVED_MEMORY, ROOT_PRIORITY,
};
pub use size::{parse_size, Size, SizeError};
pub use validate::{ComponentField, DeviceField, Problem, SharedField, Site, SystemField};
