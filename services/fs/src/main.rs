//! The file service component: serves `proto::fs` on its endpoint over the volume on its
//! block device.
//!
//! A thin shell over the `fs` library: reads its arguments, opens the disk, mounts the
//! volume, maps each client's region, registers with naming and serves. The block device
//! comes through one seam, [`disk::open`]; the `blk` component and its protocol are being
//! built separately, so until they are wired in there the component reports that it has no
//! disk and ends (`fs: cannot open its disk: ...`).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::AtomicU32;
use fs::{Config, FileService};
use proto::naming::NamingClient;
use proto::sel4_transport::{serve, EndpointTransport, ReceiveSlot};
use proto::{CapSlot, Name};
use rt::println;
use rt::startinfo::{slots, StartInfo};

rt::entry!(main);

/// Where capabilities sent with requests land (none are expected; they are dropped).
const RECEIVE: u64 = slots::FIRST_FREE - 1;
/// Where the looked-up `memory` endpoint arrives (slots above it feed the mapping pool).
const MEMORY: u64 = slots::FIRST_FREE;
/// Untyped blocks the region mappings may take from the budget.
const MAPPING_BLOCKS: usize = 4;

/// The block device the volume lives on.
mod disk {
    use libos_fat::{BlockDevice, DeviceError, Sector};

    /// The `blk` component's client. Not built yet: [`open`] says so, and none exists.
    pub struct Blk {
        _not_yet: (),
    }

    impl BlockDevice for Blk {
        fn sector_count(&self) -> u64 {
            0
        }
        fn read(&mut self, _: u64, _: &mut Sector) -> Result<(), DeviceError> {
            Err(DeviceError::Io)
        }
        fn write(&mut self, _: u64, _: &Sector) -> Result<(), DeviceError> {
            Err(DeviceError::Io)
        }
        fn flush(&mut self) -> Result<(), DeviceError> {
            Err(DeviceError::Io)
        }
    }

    /// Connects to the block service; the one place that names it.
    pub fn open() -> Result<Blk, &'static str> {
        Err("no block driver: the blk component is not wired in yet")
    }
}

fn main(info: &'static StartInfo) {
    let config = match Config::from_args(|key| info.arg(key)) {
        Ok(c) => c,
        Err(e) => rt::fail("fs", "start", e),
    };
    let device = disk::open().unwrap_or_else(|e| rt::fail("fs", "open its disk", e));
    let volume = fs::mount(device, &config).unwrap_or_else(|e| rt::fail("fs", "start", e));
    let mut transport = EndpointTransport::new(slots::NAMING);
    transport.receive_into(ReceiveSlot::own(MEMORY));
    let mut naming = NamingClient::new(transport);
    let regions = map_regions(&config, &mut naming);
    let mut service = FileService::new(
        volume,
        &config,
        |name| regions.iter().find(|(n, _)| n == name).map(|(_, a)| *a),
        info.generation as u16,
    );
    let name = Name::new("fs").expect("a valid name");
    if let Err(e) = naming.register(name, CapSlot(slots::SERVICE)) {
        rt::fail("fs", "register", e);
    }
    println!(
        "fs: ready ({} clients, max_open {})",
        service.regions().count(),
        config.max_open
    );
    serve(
        slots::SERVICE,
        ReceiveSlot::own(RECEIVE),
        move |badge, request| proto::fs::dispatch(&mut service, badge, request),
        || {},
    )
}

/// Maps every region `config` names (through `memory`) as atomic words.
fn map_regions(
    config: &Config,
    naming: &mut NamingClient<EndpointTransport>,
) -> Vec<(Name, &'static [AtomicU32])> {
    if config.roots.is_empty() {
        return Vec::new();
    }
    let memory = Name::new("memory").expect("a valid name");
    let endpoint = match naming.lookup(memory) {
        Ok(binding) => binding.endpoint.0,
        Err(e) => rt::fail("fs", "look up memory", e),
    };
    let mut free = rt::slots_alloc::Slots::new();
    while free.alloc().is_some_and(|s| s <= endpoint) {}
    let mut pool = libos_sel4::budget::pool(free, endpoint, MAPPING_BLOCKS, "fs");
    let mut vspace = vspace::VSpace::own();
    config
        .roots
        .iter()
        .map(|root| {
            let mapped =
                libos_sel4::shared::map(&mut pool, &mut vspace, endpoint, root.region, "fs");
            (root.region, mapped.words())
        })
        .collect()
}
