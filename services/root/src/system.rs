//! Booting a system description: the root task builds the four fundamental services,
//! each in its own address space and capability space, with only the capabilities its
//! role needs (`Roles`), and then serves as their fault handler and as `proc`'s control
//! endpoint. `proc` builds every other component (docs/SERVICES.md).

use crate::objects::Allocator;
use alloc::string::String;
use alloc::vec::Vec;
use bootimage::{Kind, UntypedInfo, Writer};
use loader::build::{load, Grant, How, Scratch, Spec};
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
pub fn boot(bi: &BootInfoRef, image_bytes: &[u8], mut objects: Allocator) -> ! {
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
            heap: c.heap_bytes(),
            stack: c.stack_bytes(),
            tsc_mhz: bi.arch_info,
        };
        roles.report_grants(&system, id, &spec);
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

    /// What the root task grants a fundamental service from `slots::GRANTS` on, as kinds,
    /// each run of one kind counted: `io-port x1, irq-control x1, untyped(device) x3`.
    fn grant_kinds(&self, grants: &[Grant]) -> String {
        let kind = |g: &Grant| -> String {
            let badge = match g.how {
                How::Badged(b) => alloc::format!(" badge {b:#x}"),
                _ => String::new(),
            };
            let what = if g.source == init_caps::IO_PORT.raw() {
                "io-port"
            } else if g.source == init_caps::IRQ_CONTROL.raw() {
                "irq-control"
            } else if g.source == init_caps::ASID_POOL.raw() {
                "asid-pool"
            } else if g.source == self.control.raw() {
                "endpoint(control)"
            } else if g.source == self.naming.raw() {
                "endpoint(naming)"
            } else if self.ram.iter().any(|r| r.source == g.source) {
                "untyped(ram)"
            } else if self.devices.iter().any(|d| d.source == g.source) {
                "untyped(device)"
            } else {
                "other"
            };
            alloc::format!("{what}{badge}")
        };
        let mut runs: Vec<(String, usize)> = Vec::new();
        for g in grants {
            let k = kind(g);
            match runs.last_mut() {
                Some((last, n)) if *last == k => *n += 1,
                _ => runs.push((k, 1)),
            }
        }
        if runs.is_empty() {
            return "none".into();
        }
        let parts: Vec<String> = runs
            .iter()
            .map(|(k, n)| alloc::format!("{k} x{n}"))
            .collect();
        parts.join(", ")
    }

    /// Prints `CHECK root-grants-NAME: PASS|FAIL (...)`: the slot kinds and counts the root
    /// task grants fundamental service `id`, checked against docs/SERVICES.md (its grants
    /// from slot 8, the fault endpoint badged id + 1, naming's endpoint badged id + 1 for all
    /// but naming, its service endpoint, and a maximum controlled priority for proc only).
    fn report_grants(&self, system: &System, id: ComponentId, spec: &Spec) {
        let c = &system.components[id.index()];
        let kinds = self.grant_kinds(spec.grants);
        let badge = badge_of(id);
        let control = alloc::format!(
            "asid-pool x1, endpoint(control) badge {:#x} x1, endpoint(naming) x1",
            proto::control::CONTROL_BADGE
        );
        let expected = match c.name.as_str() {
            "naming" => "none".into(),
            "memory" => alloc::format!("untyped(ram) x{}", self.ram.len()),
            "devices" if self.devices.is_empty() => "io-port x1, irq-control x1".into(),
            "devices" => alloc::format!(
                "io-port x1, irq-control x1, untyped(device) x{}",
                self.devices.len()
            ),
            "proc" => control,
            _ => String::from("?"),
        };
        let fault_ok = matches!(spec.fault.how, How::Badged(b) if b == badge);
        let naming_ok = match (c.name.as_str(), spec.naming) {
            ("naming", None) => true,
            (_, Some(g)) => g.source == self.naming.raw() && g.how == How::Badged(badge),
            _ => false,
        };
        let mcp_ok = (spec.mcp == 0) == (c.name != "proc");
        let ok = kinds == expected && fault_ok && naming_ok && spec.service.is_some() && mcp_ok;
        println!(
            "CHECK root-grants-{}: {} (slot 8..: {kinds}; fault badge {badge}, naming {}, service endpoint {}, mcp {})",
            c.name,
            if ok { "PASS" } else { "FAIL" },
            match spec.naming {
                Some(_) => alloc::format!("badge {badge}"),
                None => "-".into(),
            },
            if spec.service.is_some() { "yes" } else { "no" },
            spec.mcp
        );
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
