//! Test systems, a small random generator, and a model of the binary's capabilities that
//! checks every step is performable.
#![allow(dead_code)]

use std::collections::BTreeMap;

use memory::{BlockId, Memory, Step, Untyped};
use sysdesc::{Component, ComponentId, RestartPolicy, SharedRegion, System};

/// Budgets: `a` 1 MiB, `b` 64 KiB, `c` 256 KiB; region `ring` (12 KiB) joins `a` and `b`,
/// region `big` (1 MiB) joins `a` and `c`; the four fundamental services have 1 MiB each.
///
/// Built as a value rather than parsed from TOML: the TOML front end needs `std` (through
/// serde), and as a dev-dependency it would be unified into the component binary's build.
pub fn system() -> System {
    const KIB: u64 = 1024;
    let component = |name: &str, memory: u64, fundamental: bool, shared: &[&str]| Component {
        name: name.into(),
        binary: name.into(),
        priority: 100,
        memory,
        fundamental,
        provides: Vec::new(),
        routes: if matches!(name, "proc" | "devices") {
            vec!["memory".into()]
        } else {
            Vec::new()
        },
        devices: Vec::new(),
        shared: shared.iter().map(|s| s.to_string()).collect(),
        restart: RestartPolicy::Never,
        args: BTreeMap::new(),
    };
    let system = System {
        name: "test".into(),
        description: String::new(),
        memory: 512 * KIB * KIB,
        components: vec![
            component("naming", 1024 * KIB, true, &[]),
            component("proc", 1024 * KIB, true, &[]),
            component("memory", 1024 * KIB, true, &[]),
            component("devices", 1024 * KIB, true, &[]),
            component("a", 1024 * KIB, false, &["ring", "big"]),
            component("b", 64 * KIB, false, &["ring"]),
            component("c", 256 * KIB, false, &["big"]),
        ],
        devices: Vec::new(),
        shared: vec![
            SharedRegion {
                name: "ring".into(),
                size: 12 * KIB,
            },
            SharedRegion {
                name: "big".into(),
                size: 1024 * KIB,
            },
        ],
    };
    system.validate().expect("test system is valid");
    system
}

pub fn id(system: &System, name: &str) -> ComponentId {
    system.component_id(name).expect("component exists")
}

/// A pool over two untypeds: 2 MiB at 2 MiB and 1 MiB at 1 MiB (handles 100 and 101).
pub fn pool(system: &System) -> (Memory, Caps) {
    let mut m = Memory::new(system);
    let mut caps = Caps::default();
    for (cap, paddr, size_bits) in [(100, 0x20_0000, 21), (101, 0x10_0000, 20)] {
        let root = m
            .add_untyped(Untyped {
                cap,
                paddr,
                size_bits,
            })
            .expect("untyped accepted");
        caps.live.insert(root, Cap::Fresh);
    }
    (m, caps)
}

/// xorshift64*: deterministic, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// An untyped with no children.
    Fresh,
    /// Retyped into two halves.
    Split,
    /// Handed to a client, which may have made objects from it.
    Handed,
}

/// The binary's view: which block ids have a capability, and whether it was retyped.
#[derive(Default)]
pub struct Caps {
    pub live: BTreeMap<BlockId, Cap>,
    pub children: BTreeMap<BlockId, [BlockId; 2]>,
}

impl Caps {
    /// Hands `block` to its client (after its steps are performed).
    pub fn hand(&mut self, block: BlockId) {
        assert_eq!(
            self.live.get(&block),
            Some(&Cap::Fresh),
            "handing {block:?}"
        );
        self.live.insert(block, Cap::Handed);
    }

    /// Performs `steps` as the binary would; panics on a step seL4 would refuse.
    pub fn perform(&mut self, steps: &[Step]) {
        for step in steps {
            match *step {
                Step::Split {
                    parent, children, ..
                } => {
                    assert_eq!(self.live.get(&parent), Some(&Cap::Fresh), "{step:?}");
                    for c in children {
                        assert!(!self.live.contains_key(&c), "slot in use: {step:?}");
                        self.live.insert(c, Cap::Fresh);
                    }
                    self.live.insert(parent, Cap::Split);
                    self.children.insert(parent, children);
                }
                Step::Revoke { block } => {
                    assert!(self.live.contains_key(&block), "{step:?}");
                    self.revoke(block);
                }
                Step::Merge { parent, children } => {
                    assert_eq!(self.children.get(&parent), Some(&children), "{step:?}");
                    self.revoke(parent);
                }
            }
        }
    }

    fn revoke(&mut self, block: BlockId) {
        if let Some(children) = self.children.remove(&block) {
            for c in children {
                self.revoke(c);
                self.live.remove(&c);
            }
        }
        self.live.insert(block, Cap::Fresh);
    }
}
