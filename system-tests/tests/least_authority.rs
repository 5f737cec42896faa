//! Boots the default system and checks least authority for every component of
//! systems/default.toml, against the description itself:
//! - each non-fundamental component holds exactly what proc granted it (`caps NAME`): its
//!   own TCB, CNode and VSpace, the fault endpoint (badged `1 << 26 | id + 1`, for proc),
//!   naming's endpoint (badged id + 1), its service endpoint if it provides one, its
//!   notification, and nothing from slot 8 on;
//! - each fundamental service got from the root task exactly its role's grants
//!   (docs/SERVICES.md), as the root task's `CHECK root-grants-NAME` line reports them.

use std::time::Duration;
use system_tests::{boot_system, lines_with};
use xtask::qemu::{Outcome, Session};

const WAIT: Duration = Duration::from_secs(90);
use system_tests::PROMPT;
/// proc's fault badge bit (services/proc/src/grants.rs, docs/SERVICES.md).
const FAULT_BADGE: u64 = 1 << 26;

/// Types `line` and returns what the shell printed up to its next prompt.
fn command(s: &mut Session, line: &str) -> String {
    system_tests::shell_command(s, line, WAIT)
}

/// The rows `caps NAME` prints: SLOT KIND RIGHTS BADGE GRANT, as strings.
fn caps(s: &mut Session, name: &str) -> Vec<[String; 5]> {
    let out = command(s, &format!("caps {name}"));
    let rows: Vec<[String; 5]> = out
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| {
            let w: Vec<String> = l.split_whitespace().map(String::from).collect();
            assert_eq!(w.len(), 5, "caps {name}: {l:?}\n{out}");
            [
                w[0].clone(),
                w[1].clone(),
                w[2].clone(),
                w[3].clone(),
                w[4].clone(),
            ]
        })
        .collect();
    let count = out
        .split(" holds ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("caps {name}: no count\n{out}"));
    assert_eq!(count, rows.len(), "{out}");
    rows
}

#[test]
fn every_component_holds_exactly_what_the_description_grants() {
    let path = xtask::workspace_root().join("systems/default.toml");
    let system = xtask::build::load_system(&path).unwrap();
    let mut s = boot_system("default", "least-authority");
    s.wait_for(PROMPT, WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
    let boot = s.output();

    let row = |slot: u64, kind: &str, badge: u64, grant: &str| -> [String; 5] {
        [
            slot.to_string(),
            kind.to_string(),
            "rwg".to_string(),
            if badge == 0 {
                "-".into()
            } else {
                badge.to_string()
            },
            grant.to_string(),
        ]
    };
    let mut checked = 0;
    for (index, c) in system.components.iter().enumerate() {
        let id = index as u64;
        if c.fundamental {
            // Built by the root task: proc lists nothing, the root task reports the grants.
            let out = command(&mut s, &format!("caps {}", c.name));
            assert!(out.contains("proc lists no capabilities"), "{out}");
            let line = lines_with(&boot, &format!("CHECK root-grants-{}: ", c.name));
            assert_eq!(line.len(), 1, "{}:\n{boot}", c.name);
            let line = line[0].trim_end();
            assert!(line.starts_with("PASS"), "{}: {line}", c.name);
            let grants = line
                .split("slot 8..: ")
                .nth(1)
                .and_then(|r| r.split(';').next())
                .unwrap_or_else(|| panic!("{line}"));
            // docs/SERVICES.md, "What the fundamental services receive".
            match c.name.as_str() {
                "naming" => assert_eq!(grants, "none"),
                "memory" => {
                    let n: usize = grants
                        .strip_prefix("untyped(ram) x")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("memory: {line}"));
                    assert!(n > 0, "{line}");
                }
                "devices" => assert!(
                    grants.starts_with("io-port x1, irq-control x1, untyped(device) x"),
                    "{line}"
                ),
                "proc" => assert_eq!(
                    grants,
                    "asid-pool x1, endpoint(control) badge 0xfff0000 x1, endpoint(naming) x1"
                ),
                other => panic!("unexpected fundamental service {other}"),
            }
            assert!(line.contains(&format!("fault badge {}", id + 1)), "{line}");
            let naming = if c.name == "naming" {
                "naming -".to_string()
            } else {
                format!("naming badge {}", id + 1)
            };
            assert!(line.contains(&naming), "{line}");
            let mcp = if c.name == "proc" {
                system
                    .components
                    .iter()
                    .filter(|o| !o.fundamental)
                    .map(|o| o.priority)
                    .max()
                    .unwrap()
            } else {
                0
            };
            assert!(line.ends_with(&format!("mcp {mcp})")), "{line}");
        } else {
            let mut expected = vec![
                row(1, "tcb", 0, "-"),
                row(2, "cnode", 0, "-"),
                row(3, "vspace", 0, "-"),
                row(4, "endpoint", FAULT_BADGE | (id + 1), "proc"),
                row(5, "endpoint", id + 1, "naming"),
            ];
            if let Some(service) = c.provides.first() {
                expected.push(row(6, "endpoint", 0, service));
            }
            expected.push(row(7, "notification", 0, "-"));
            let got = caps(&mut s, &c.name);
            assert_eq!(got, expected, "caps {} (id {id})", c.name);
        }
        checked += 1;
    }
    assert_eq!(checked, system.components.len());
    assert!(system.components.iter().any(|c| !c.fundamental));

    s.send("halt\r").unwrap();
    assert_eq!(s.wait_exit(), Outcome::Exited(0), "{}", s.output());
}
