//! The file service component: serves `proto::fs` on its endpoint over the volume on its
//! block device.
//!
//! A thin shell over the `fs` library: reads its arguments, looks up `memory`, maps the
//! region it shares with `blk` (`blk_region`, default `fs-blk`) and each client's region,
//! attaches to `blk` (the library's [`fs::BlkDevice`] over `blkring`'s blocking disk; it
//! attaches again by itself when `blk` restarts), mounts the volume, registers with naming
//! and serves.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::AtomicU32;
use fs::{BlkDevice, Config, FileService};
use proto::naming::NamingClient;
use proto::sel4_transport::{serve, EndpointTransport, ReceiveSlot, Reply};
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

/// `cargo xtask bench files`' raw half: `mib` MiB written, flushed and read back at the
/// end of the disk (past the volume) in 4 KiB and 64 KiB requests; one `BENCH` line each.
fn bench_raw(device: &mut BlkDevice<disk::Blk>, mib: &str) {
    let Some(total) = mib.parse::<usize>().ok().filter(|m| (1..=1024).contains(m)) else {
        rt::fail("fs", "start", "bench_raw: not 1..=1024 (MiB)")
    };
    let total = total << 20;
    let sectors = libos_fat::BlockDevice::sector_count(device);
    let Some(first) = sectors.checked_sub((total / 512) as u64) else {
        rt::fail("fs", "bench", "bench_raw: larger than the disk")
    };
    for request in [4096, 65536] {
        // Readings: write start, write end, read start, read end.
        let mut marks = libos_sel4::cpu::Marks::start();
        let mut now = || marks.now();
        match fs::blkdev::raw_sequential(device.disk(), first, total, request, &mut now) {
            Ok((write, read)) => {
                let k = request / 1024;
                println!(
                    "BENCH blk-write-{k}k bytes={total} cycles={write}{}",
                    marks.field(0, 1)
                );
                println!(
                    "BENCH blk-read-{k}k bytes={total} cycles={read}{}",
                    marks.field(2, 3)
                );
            }
            Err(e) => println!("BENCH-ERROR blk-{}k: {e:?}", request / 1024),
        }
    }
}

/// The block device the volume lives on: `blk`, reached over IPC and the shared region.
mod disk {
    use blkring::disk::{Disk, Wait};
    use blkring::ClientRings;
    use core::sync::atomic::AtomicU32;
    use proto::blk::BlkClient;
    use proto::naming::NamingClient;
    use proto::sel4_transport::EndpointTransport;
    use proto::{CapSlot, Name};
    use rt::startinfo::{slots, SERVICE_RESTARTED_BADGE};
    use sel4::cap_type::{CNode, Notification};
    use sel4::Cap;

    /// How often an attach is tried before `blk` is taken to be gone (with 50 yields
    /// between tries: blk's restart backoff is 100 ms).
    const TRIES: u32 = 2000;

    /// `blk`'s doorbell; responses and `proc`'s restart news arrive on our notification
    /// (unbadged for `blk`, [`SERVICE_RESTARTED_BADGE`] from `proc`). `gone`: the news
    /// came while no transfer waited.
    pub struct Doorbell {
        doorbell: Cap<Notification>,
        gone: bool,
    }

    impl Wait for Doorbell {
        fn signal(&mut self) {
            // News of a restart that came while idle: the doorbell is gone with the old
            // instance (signalling it would invoke an empty slot); the wait says so. What
            // else the poll takes is a wake-up for responses already read.
            let badge = sel4::syscall::poll(Cap::from_raw(slots::NOTIFICATION));
            self.gone |= badge & SERVICE_RESTARTED_BADGE != 0;
            if !self.gone {
                sel4::syscall::nb_signal(self.doorbell);
            }
        }

        fn wait(&mut self) -> bool {
            if self.gone {
                return false;
            }
            let badge = sel4::syscall::wait(Cap::from_raw(slots::NOTIFICATION));
            self.gone = badge & SERVICE_RESTARTED_BADGE != 0;
            !self.gone
        }
    }

    /// How the component attaches (again) to `blk`.
    pub struct Blk {
        /// The shared region's words.
        pub words: &'static [AtomicU32],
        /// Its name.
        pub region: Name,
        /// Where `blk`'s endpoint lands.
        pub endpoint: u64,
        /// Where `blk`'s doorbell lands.
        pub doorbell: u64,
    }

    impl Blk {
        fn try_attach(&mut self) -> Result<Disk<Doorbell>, &'static str> {
            let own = Cap::<CNode>::from_raw(slots::CNODE);
            // Deleting an empty slot succeeds; a failed delete makes the lookup fail.
            let _ = own.cnode_delete(self.endpoint, 64);
            let _ = own.cnode_delete(self.doorbell, 64);
            let mut naming =
                NamingClient::new(EndpointTransport::receiving(slots::NAMING, self.endpoint));
            let name = Name::new("blk").expect("a valid name");
            let found = naming.lookup(name).map_err(|_| "blk: lookup failed")?;
            let nonce = rt::rdtsc().rotate_left(23) | 1;
            let (rings, layout) =
                ClientRings::new(self.words, nonce).ok_or("the region is too small")?;
            let mut client = BlkClient::new(EndpointTransport::receiving(
                found.endpoint.0,
                self.doorbell,
            ));
            let doorbell = client
                .attach(self.region, nonce, CapSlot(slots::NOTIFICATION))
                .map_err(|_| "blk refused the attachment")?;
            let geometry = client.geometry().map_err(|_| "blk: geometry failed")?;
            Ok(Disk::new(
                rings,
                layout.data_bytes,
                geometry.sectors,
                geometry.max_sectors,
                Doorbell {
                    doorbell: Cap::from_raw(doorbell.0),
                    gone: false,
                },
            ))
        }
    }

    impl fs::Attach for Blk {
        type Wait = Doorbell;

        fn attach(&mut self) -> Result<Disk<Doorbell>, &'static str> {
            let mut last = "";
            for _ in 0..TRIES {
                match self.try_attach() {
                    Ok(disk) => {
                        // News of a restart that this attachment already follows.
                        let _ = sel4::syscall::poll(Cap::from_raw(slots::NOTIFICATION));
                        return Ok(disk);
                    }
                    Err(why) => last = why,
                }
                rt::yield_times(50);
            }
            Err(last)
        }
    }
}

fn main(info: &'static StartInfo) {
    let config = match Config::from_args(|key| info.arg(key)) {
        Ok(c) => c,
        Err(e) => rt::fail("fs", "start", e),
    };
    let mut transport = EndpointTransport::new(slots::NAMING);
    transport.receive_into(ReceiveSlot::own(MEMORY));
    let mut naming = NamingClient::new(transport);
    let memory = Name::new("memory").expect("a valid name");
    let memory = match naming.lookup(memory) {
        Ok(binding) => binding.endpoint.0,
        Err(e) => rt::fail("fs", "look up memory", e),
    };
    let mut free = rt::slots_alloc::Slots::new();
    while free.alloc().is_some_and(|s| s <= memory) {}
    let mut pool = libos_sel4::budget::pool(free, memory, MAPPING_BLOCKS, "fs");
    let mut vspace = vspace::VSpace::own();
    let mut slot = || {
        pool.slot()
            .unwrap_or_else(|e| rt::fail("fs", "find a slot", format_args!("{e:?}")))
    };
    let (endpoint, doorbell) = (slot(), slot());
    let words =
        libos_sel4::shared::map(&mut pool, &mut vspace, memory, config.blk_region, "fs").words();
    let blk = disk::Blk {
        words,
        region: config.blk_region,
        endpoint,
        doorbell,
    };
    let mut device = BlkDevice::new(blk).unwrap_or_else(|e| rt::fail("fs", "attach to blk", e));
    if let Some(mib) = info.arg("bench_raw") {
        bench_raw(&mut device, mib);
    }
    println!(
        "fs: attached to blk over {}: {} sectors",
        config.blk_region,
        libos_fat::BlockDevice::sector_count(&device)
    );
    let volume = fs::mount(device, &config).unwrap_or_else(|e| rt::fail("fs", "start", e));
    let regions: Vec<(Name, &'static [AtomicU32])> = config
        .roots
        .iter()
        .map(|root| {
            let mapped = libos_sel4::shared::map(&mut pool, &mut vspace, memory, root.region, "fs");
            (root.region, mapped.words())
        })
        .collect();
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
        Reply::Saved,
        move |badge, request| proto::fs::dispatch(&mut service, badge, request),
        || {},
    )
}
