//! What proc asks the loader to build for a component agrees with what `caps` lists
//! (`grants::granted`): the fault and naming endpoints badged for it, its service endpoint
//! only if it provides one, nothing from slot 8 on.

use std::collections::BTreeMap;

use loader::build::How;
use proc::grants::{arguments, fault_badge, granted, spec};
use proto::proc::CapKind;
use proto::ComponentId;
use rt::startinfo::slots;
use sysdesc::{Component, RestartPolicy, System};

fn system() -> System {
    let component = |name: &str, priority: u8| Component {
        name: name.into(),
        binary: name.into(),
        priority,
        memory: 1 << 20,
        fundamental: sysdesc::FUNDAMENTAL.contains(&name),
        provides: if name == "svc" {
            vec!["svc".into()]
        } else {
            Vec::new()
        },
        routes: if matches!(name, "proc" | "devices") {
            vec!["memory".into()]
        } else {
            Vec::new()
        },
        devices: Vec::new(),
        shared: Vec::new(),
        restart: RestartPolicy::Never,
        args: if name == "app" {
            BTreeMap::from([("mode".to_string(), "demo".to_string())])
        } else {
            BTreeMap::new()
        },
    };
    let s = System {
        name: "test".into(),
        description: String::new(),
        memory: 512 << 20,
        components: [
            ("naming", 200),
            ("proc", 190),
            ("memory", 180),
            ("devices", 170),
            ("app", 60),
            ("svc", 120),
        ]
        .iter()
        .map(|&(n, p)| component(n, p))
        .collect(),
        devices: Vec::new(),
        shared: Vec::new(),
    };
    s.validate().expect("valid");
    s
}

const NAMING_IN_PROC: u64 = 10;
const SVC_ENDPOINT_IN_PROC: u64 = 77;

#[test]
fn the_spec_grants_exactly_what_caps_lists() {
    let s = system();
    for (index, service) in [(4usize, None), (5, Some(SVC_ENDPOINT_IN_PROC))] {
        let id = ComponentId(index as u16);
        let c = &s.components[index];
        let args = arguments(c);
        let elf = [0u8; 4];
        let spec = spec(c, id, 3, &elf, NAMING_IN_PROC, service, &args);
        let listed = granted(&s, id).unwrap();
        let at = |slot| listed.iter().find(|i| i.slot == slot);

        assert_eq!(
            spec.fault.source,
            slots::SERVICE,
            "faults come to proc's endpoint"
        );
        assert_eq!(spec.fault.how, How::Badged(fault_badge(id)));
        assert_eq!(spec.fault.how, How::Badged(at(slots::FAULT).unwrap().badge));

        let naming = spec.naming.expect("every component gets naming");
        assert_eq!(naming.source, NAMING_IN_PROC);
        assert_eq!(naming.how, How::Badged(proto::badge(id)));
        assert_eq!(naming.how, How::Badged(at(slots::NAMING).unwrap().badge));

        // The service endpoint: given and listed exactly when the component provides one.
        assert_eq!(spec.service.is_some(), at(slots::SERVICE).is_some());
        if let Some(g) = spec.service {
            assert_eq!((g.source, g.how), (SVC_ENDPOINT_IN_PROC, How::Copy));
            assert_eq!(at(slots::SERVICE).unwrap().kind, CapKind::Endpoint);
        }
        // Nothing from slot 8 on, and no data blob.
        assert!(spec.grants.is_empty());
        assert!(listed.iter().all(|i| i.slot < slots::GRANTS));
        assert!(spec.data.is_empty());

        assert_eq!(spec.id, index as u64);
        assert_eq!(spec.generation, 2, "instance 3 was started twice before");
        assert_eq!(spec.name, c.name);
        assert_eq!((spec.priority, spec.mcp), (c.priority, c.priority));
        assert_eq!((spec.heap, spec.stack), (c.heap_bytes(), c.stack_bytes()));
        assert!(spec.heap > 0 && spec.stack > 0);
    }
}

#[test]
fn arguments_and_the_first_generation() {
    let s = system();
    let app = &s.components[4];
    assert_eq!(arguments(app), vec![("mode", "demo")]);
    assert!(arguments(&s.components[5]).is_empty());
    let args = arguments(app);
    let first = spec(app, ComponentId(4), 1, &[], NAMING_IN_PROC, None, &args);
    assert_eq!(first.generation, 0);
    assert_eq!(first.args, &[("mode", "demo")]);
    // A generation of 0 (never passed by proc) does not wrap.
    let zero = spec(app, ComponentId(4), 0, &[], NAMING_IN_PROC, None, &args);
    assert_eq!(zero.generation, 0);
}
