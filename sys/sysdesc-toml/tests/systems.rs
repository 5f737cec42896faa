//! Every description in `systems/` parses, validates, and survives the compact form.

use std::path::PathBuf;

use sysdesc::System;
use sysdesc_toml as host;

fn systems_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../systems")
}

fn load(name: &str) -> System {
    let path = systems_dir().join(name);
    host::load(&path).unwrap_or_else(|d| panic!("{}", host::render(&d)))
}

#[test]
fn every_system_validates_and_round_trips() {
    let mut count = 0;
    for entry in std::fs::read_dir(systems_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let system = host::load(&path).unwrap_or_else(|d| panic!("{}", host::render(&d)));
            let bytes = system.encode();
            assert_eq!(System::decode(&bytes), Ok(system), "{}", path.display());
            count += 1;
        }
    }
    assert!(
        count >= 5,
        "expected the five example systems, found {count}"
    );
}

#[test]
fn default_system_queries() {
    let s = load("default.toml");
    let shell = s.component_id("shell").unwrap();
    let hello = s.component_id("hello").unwrap();
    let serial = s.component_id("serial").unwrap();
    assert!(s.may_lookup(shell, "serial"));
    assert!(s.may_lookup(hello, "serial"));
    assert!(s.may_lookup(hello, "naming"), "naming is always reachable");
    assert!(!s.may_lookup(hello, "proc"));
    assert!(!s.may_lookup(sysdesc::ComponentId(999), "serial"));
    assert_eq!(
        s.provider("serial").map(|c| c.name.as_str()),
        Some("serial")
    );
    assert_eq!(s.provider("proc").map(|c| c.name.as_str()), Some("proc"));
    assert_eq!(s.provider_id("naming"), s.component_id("naming"));
    assert!(s.provider("nothing").is_none());
    assert_eq!(s.driver_of("com1"), Some(serial));
    assert_eq!(s.driver_of("nic0"), None);
    assert_eq!(
        s.get(hello).unwrap().restart,
        sysdesc::RestartPolicy::Always {
            max: 3,
            backoff_ms: 200
        }
    );
    assert_eq!(
        s.device("com1").unwrap().selector,
        sysdesc::DeviceSelector::IoPort {
            first: 0x3f8,
            last: 0x3ff
        }
    );
    assert_eq!(
        s.device("com1").unwrap().irq,
        Some(sysdesc::Irq::IoApic { line: Some(4) })
    );
    assert_eq!(
        s.component("hello").unwrap().args["greeting"],
        "hello from Tessera"
    );
    assert_eq!(s.iter().filter(|(_, c)| c.fundamental).count(), 4);
}

#[test]
fn keystore_clients_cannot_see_each_other() {
    let s = load("keystore.toml");
    let signer = s.component_id("signer").unwrap();
    let verifier = s.component_id("verifier").unwrap();
    assert!(s.may_lookup(signer, "keystore") && s.may_lookup(verifier, "keystore"));
    assert!(!s.may_lookup(signer, "verifier"));
    assert!(!s.may_lookup(verifier, "signer"));
    // The key store reaches the fundamental services and the file service it seals its keys
    // into; the file service is routed to the key store alone, and the block driver to the
    // file service alone.
    let keystore = s.component("keystore").unwrap();
    assert!(keystore
        .routes
        .iter()
        .all(|r| sysdesc::FUNDAMENTAL.contains(&r.as_str()) || r == "fs"));
    let reaching = |service: &str| -> Vec<&str> {
        s.iter()
            .filter(|(id, _)| s.may_lookup(*id, service))
            .map(|(_, c)| c.name.as_str())
            .collect()
    };
    assert_eq!(reaching("fs"), ["keystore"]);
    assert_eq!(reaching("blk"), ["fs"]);
    assert_eq!(
        s.members("keystore-fs").collect::<Vec<_>>(),
        [
            s.component_id("fs").unwrap(),
            s.component_id("keystore").unwrap()
        ]
    );
}

#[test]
fn shared_network_regions_pair_each_app_with_net() {
    let s = load("net-shared.toml");
    let net = s.component_id("net").unwrap();
    let a = s.component_id("iperf-a").unwrap();
    let b = s.component_id("iperf-b").unwrap();
    assert_eq!(s.members("iperf-a-net").collect::<Vec<_>>(), [net, a]);
    assert_eq!(s.members("iperf-b-net").collect::<Vec<_>>(), [net, b]);
    assert_eq!(s.members("nothing").count(), 0);
    assert_eq!(s.driver_of("nic0"), Some(net));
    // Each application reaches only the stack, never the other application.
    assert!(s.may_lookup(a, "net") && s.may_lookup(b, "net"));
    assert!(!s.may_lookup(a, "iperf-b") && !s.may_lookup(b, "iperf-a"));
}

#[test]
fn unikernel_is_one_component_driving_the_nic() {
    let s = load("net-unikernel.toml");
    let apps: Vec<_> = s.components.iter().filter(|c| !c.fundamental).collect();
    assert_eq!(apps.len(), 1);
    assert_eq!(s.driver_of("nic0"), s.component_id("iperf"));
    let nic = s.device("nic0").unwrap();
    assert_eq!(
        nic.selector,
        sysdesc::DeviceSelector::Pci {
            vendor: 0x8086,
            device: 0x10d3,
            index: 0
        }
    );
    assert_eq!(nic.irq, Some(sysdesc::Irq::Msi));
}

#[test]
fn files_apps_share_fs_and_blk() {
    let s = load("files.toml");
    let fs = s.component_id("fs").unwrap();
    assert_eq!(s.provider_id("fs"), Some(fs));
    for app in ["records-a", "records-b", "shell"] {
        let id = s.component_id(app).unwrap();
        assert!(s.may_lookup(id, "fs"));
        assert!(
            !s.may_lookup(id, "blk"),
            "{app} reaches the disk only through fs"
        );
    }
    assert_eq!(s.driver_of("disk0"), s.component_id("blk"));
}

#[test]
fn unikernel_describes_the_hpet_as_a_memory_mapped_device() {
    let s = load("net-unikernel.toml");
    let hpet = s.device("hpet").unwrap();
    assert_eq!(
        hpet.selector,
        sysdesc::DeviceSelector::Mmio {
            base: 0xfed0_0000,
            last: 0xfed0_03ff
        }
    );
    assert_eq!(hpet.irq, Some(sysdesc::Irq::Msi));
    assert_eq!(s.driver_of("hpet"), s.component_id("iperf"));
}
