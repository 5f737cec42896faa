//! Booting a system description: the root task builds the four fundamental services,
//! each in its own address space and capability space, with only the capabilities its
//! role needs (`Roles`), and then serves as their fault handler and as `proc`'s control
//! endpoint. `proc` builds every other component (docs/SERVICES.md).

use crate::objects::Allocator;
use alloc::vec::Vec;
use bootimage::{Kind, UntypedInfo, Writer};
use loader::build::{load, Grant, Scratch, Spec};
use root::fault::FaultReport;
use rt::println;
use sel4::bootinfo::BootInfoRef;
use sel4::cap_type::Endpoint;
use sel4::{init_caps, Cap, ObjectType, Word};
use sysdesc::{ComponentId, System};

/// Where the root task maps frames for a moment to fill them (a 2 MiB region its own
/// image does not use).
const SCRATCH_VADDR: Word = 0x3fe0_0000;

/// The badge a component's capabilities carry: its id + 1 (0 means "no badge").
pub fn badge_of(id: ComponentId) -> Word {
    id.0 as Word + 1
}

/// Builds and starts the fundamental services of the system in `image`; then reports
/// their faults.
pub fn boot(bi: &BootInfoRef, image_bytes: &[u8]) -> ! {
    let image = bootimage::Image::parse(image_bytes)
        .unwrap_or_else(|e| panic!("the boot image is corrupt: {e:?}"));
    let system = System::decode(
        image
            .system()
            .expect("the boot image has a system description"),
    )
    .unwrap_or_else(|e| panic!("the system description does not decode: {e:?}"));
    println!(
        "system `{}`: {} components",
        system.name,
        system.components.len()
    );

    let mut objects = Allocator::new(bi);
    let mut scratch = Scratch::new(&mut objects, init_caps::VSPACE, SCRATCH_VADDR)
        .unwrap_or_else(|e| panic!("scratch mapping: {e:?}"));
    let new_endpoint = |objects: &mut Allocator| -> Cap<Endpoint> {
        objects.retype(ObjectType::Endpoint.word(), 0)
    };

    // Faults of the fundamental services come to the root task, badged with their id.
    let faults = new_endpoint(&mut objects);
    // One endpoint per fundamental service: naming's is known to every component; the
    // others are reached through naming. proc makes the endpoints of the services the
    // other components provide.
    let services: Vec<Option<Cap<Endpoint>>> = system
        .components
        .iter()
        .map(|c| c.fundamental.then(|| new_endpoint(&mut objects)))
        .collect();
    let naming_id = system
        .component_id("naming")
        .expect("validated: naming exists");
    let naming_ep = services[naming_id.index()].expect("naming serves an endpoint");

    let roles = Roles::new(
        bi,
        &objects,
        image.system().expect("checked above"),
        image_bytes,
        faults,
        naming_ep,
    );

    // The fundamental services, in the description's order; proc starts the rest.
    for (id, c) in system.iter().filter(|(_, c)| c.fundamental) {
        let Some(elf) = image.elf(&c.binary) else {
            panic!(
                "the boot image has no binary `{}` for component `{}`",
                c.binary, c.name
            )
        };
        let args: Vec<(&str, &str)> = c
            .args
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (grants, data) = roles.for_component(&c.name);
        let spec = Spec {
            id: id.0 as u64,
            generation: 0,
            name: &c.name,
            priority: c.priority,
            mcp: roles.mcp(&system, c),
            elf,
            fault: Grant::badged(faults.raw(), badge_of(id)),
            naming: (id != naming_id).then(|| Grant::badged(naming_ep.raw(), badge_of(id))),
            service: services[id.index()].map(|ep| Grant::copy(ep.raw())),
            grants: &grants,
            args: &args,
            data,
        };
        match load(
            &mut objects,
            &mut scratch,
            init_caps::ASID_POOL,
            init_caps::CNODE,
            &spec,
        ) {
            Ok(_) => println!(
                "root: started {} (id {}, priority {})",
                c.name, id.0, c.priority
            ),
            Err(e) => println!("root: cannot start {}: {e:?}", c.name),
        }
    }

    serve_faults_and_control(faults, &system)
}

/// The root task's last job: report the faults of the components whose faults come
/// here, and serve `proto::control` to `proc` (badge `CONTROL_BADGE`).
fn serve_faults_and_control(endpoint: Cap<Endpoint>, system: &System) -> ! {
    struct Control;
    impl proto::control::Server for Control {
        fn halt(&mut self, badge: u64, status: u32) -> Result<(), proto::control::Error> {
            if badge != proto::control::CONTROL_BADGE {
                return Err(proto::control::Error::Denied);
            }
            println!("root: halt requested, status {status}");
            rt::exit(status)
        }
    }
    loop {
        let mut mrs = [0; 4];
        let (info, badge) = sel4::syscall::recv_with_mrs(endpoint.raw(), &mut mrs);
        if badge == proto::control::CONTROL_BADGE {
            let request = proto::sel4_transport::received(info, &mrs, None);
            let reply = proto::control::dispatch(&mut Control, badge, &request);
            let (reply_info, reply_mrs) = proto::sel4_transport::prepare(&reply);
            sel4::syscall::reply_with_mrs(reply_info, &reply_mrs);
            continue;
        }
        let words: Vec<Word> = (0..info.length() as usize)
            .map(|i| if i < 4 { mrs[i] } else { sel4::ipc::get_mr(i) })
            .collect();
        let name = badge
            .checked_sub(1)
            .and_then(|i| system.get(ComponentId(i as u16)))
            .map(|c| c.name.as_str())
            .unwrap_or("?");
        // The faulted thread stays blocked: nothing replies to a fault here.
        println!("{}", FaultReport::decode(name, info.label(), &words));
    }
}

/// What the fundamental services receive beyond what every component gets (see
/// docs/SERVICES.md): their grants, and their data blob.
struct Roles<'a> {
    /// `system` only: for naming.
    system_blob: Vec<u8>,
    /// `system` + the RAM untyped table: for memory.
    memory_blob: Vec<u8>,
    /// `system` + the device untyped table: for devices.
    devices_blob: Vec<u8>,
    /// The whole boot image: for proc, which starts the other components.
    image: &'a [u8],
    ram: Vec<Grant>,
    devices: Vec<Grant>,
    /// The root task's fault and control endpoint.
    control: Cap<Endpoint>,
    /// Naming's endpoint (proc mints each component's `NAMING` capability from it).
    naming: Cap<Endpoint>,
}

impl<'a> Roles<'a> {
    fn new(
        bi: &BootInfoRef,
        objects: &Allocator,
        system: &[u8],
        image: &'a [u8],
        control: Cap<Endpoint>,
        naming: Cap<Endpoint>,
    ) -> Roles<'a> {
        let mut ram = (Vec::new(), Vec::new());
        let mut dev = (Vec::new(), Vec::new());
        for (cptr, u) in bi.untypeds() {
            // The root task keeps the one it builds the fundamental services from.
            if cptr == objects.untyped_cptr() {
                continue;
            }
            let info = UntypedInfo {
                paddr: u.paddr(),
                size_bits: u.size_bits(),
                is_device: u.is_device(),
            };
            let list = if u.is_device() { &mut dev } else { &mut ram };
            list.0.push(Grant::copy(cptr));
            list.1.push(info);
        }
        let blob = |table: Option<&[UntypedInfo]>| {
            let mut w = Writer::new();
            w.add(Kind::System, "system", system.to_vec())
                .expect("fresh writer");
            if let Some(t) = table {
                w.add(Kind::Untypeds, "untypeds", bootimage::encode_untypeds(t))
                    .expect("fresh writer");
            }
            w.finish().expect("small image")
        };
        Roles {
            system_blob: blob(None),
            memory_blob: blob(Some(&ram.1)),
            devices_blob: blob(Some(&dev.1)),
            image,
            ram: ram.0,
            devices: dev.0,
            control,
            naming,
        }
    }

    /// The highest priority `c` may give threads (its maximum controlled priority): for
    /// proc, which starts the other components at their described priorities, the highest
    /// of those; 0 for every other component.
    fn mcp(&self, system: &System, c: &sysdesc::Component) -> u8 {
        if c.name != "proc" {
            return 0;
        }
        system
            .components
            .iter()
            .filter(|o| !o.fundamental)
            .map(|o| o.priority)
            .max()
            .unwrap_or(0)
    }

    /// The grants (from `slots::GRANTS` on) and data blob of the component `name`.
    fn for_component(&self, name: &str) -> (Vec<Grant>, &[u8]) {
        match name {
            "naming" => (Vec::new(), &self.system_blob),
            "memory" => (self.ram.clone(), &self.memory_blob),
            "devices" => {
                let mut g = alloc::vec![
                    Grant::copy(init_caps::IO_PORT.raw()),
                    Grant::moved(init_caps::IRQ_CONTROL.raw())
                ];
                g.extend(self.devices.iter().copied());
                (g, &self.devices_blob)
            }
            "proc" => (
                alloc::vec![
                    Grant::copy(init_caps::ASID_POOL.raw()),
                    Grant::badged(self.control.raw(), proto::control::CONTROL_BADGE),
                    Grant::copy(self.naming.raw()),
                ],
                self.image,
            ),
            _ => (Vec::new(), &[]),
        }
    }
}
