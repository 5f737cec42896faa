//! `cargo xtask loc`: the paper's Table 1 for Tessera: how many lines are
//! specific to seL4 (the library OS's platform adaptation layer, the bindings'
//! hand-written glue, the component start-up and loader, the service shells)
//! against the portable code above them. Blank lines and comment lines are not
//! counted; generated bindings are counted apart.

use crate::workspace_root;
use std::path::{Path, PathBuf};

/// Which side of the seL4 boundary a file is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Names seL4 objects or invocations.
    Sel4,
    /// Runs on any platform (tested on the host).
    Portable,
}

/// A group of files counted together.
#[derive(Debug, Clone)]
pub struct Group {
    /// What the group is.
    pub name: &'static str,
    /// Which side it is on.
    pub side: Side,
    /// Source lines (not blank, not comment).
    pub lines: usize,
    /// Files counted.
    pub files: usize,
}

/// The lines of Rust source that are neither blank nor comments (`//`, `/* */`).
pub fn code_lines(text: &str) -> usize {
    let mut in_block = false;
    let mut count = 0;
    for line in text.lines() {
        let mut rest = line.trim();
        let mut code = false;
        while !rest.is_empty() {
            if in_block {
                match rest.find("*/") {
                    Some(i) => {
                        in_block = false;
                        rest = rest[i + 2..].trim_start();
                    }
                    None => rest = "",
                }
            } else if rest.starts_with("//") {
                rest = "";
            } else if let Some(after) = rest.strip_prefix("/*") {
                in_block = true;
                rest = after;
            } else {
                code = true;
                rest = "";
            }
        }
        count += code as usize;
    }
    count
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Whether `p` (`.../src/NAME.rs`) is a module the package's `src/main.rs` declares:
/// part of the binary (the seL4 shell), not of the library.
fn binary_module(p: &Path) -> bool {
    let (Some(stem), Some(dir)) = (p.file_stem(), p.parent()) else {
        return false;
    };
    let Ok(main) = std::fs::read_to_string(dir.join("main.rs")) else {
        return false;
    };
    let decl = format!("mod {};", stem.to_string_lossy());
    main.lines()
        .any(|l| l.trim_start().trim_start_matches("pub ").starts_with(&decl))
}

/// The groups: each is (name, side, folders, rule for which files of them count).
/// A group's definition: its name, side, folders, and which of their files count.
type GroupSpec = (&'static str, Side, Vec<&'static str>, fn(&Path) -> bool);

fn groups() -> Vec<GroupSpec> {
    fn any(_: &Path) -> bool {
        true
    }
    fn is_shell(p: &Path) -> bool {
        p.ends_with("src/main.rs") || binary_module(p)
    }
    fn is_component_shell(p: &Path) -> bool {
        is_shell(p) && !p.to_string_lossy().contains("services/root/")
    }
    fn not_shell(p: &Path) -> bool {
        !is_shell(p) && !p.to_string_lossy().contains("/tests/")
    }
    fn sel4_glue(p: &Path) -> bool {
        p.ends_with("sel4_transport.rs")
            || p.ends_with("build.rs") && p.to_string_lossy().contains("sys/loader")
            || p.ends_with("sys/vspace/src/map.rs")
    }
    fn portable_lib(p: &Path) -> bool {
        !sel4_glue(p) && !p.to_string_lossy().contains("/tests/")
    }
    vec![
        (
            "library OS platform layer (libos/sel4)",
            Side::Sel4,
            vec!["libos/sel4/src"],
            any,
        ),
        (
            "bindings glue (sys/sel4, hand-written)",
            Side::Sel4,
            vec!["sys/sel4/src"],
            any,
        ),
        (
            "component start-up (sys/rt)",
            Side::Sel4,
            vec!["sys/rt/src"],
            any,
        ),
        (
            "loader, IPC transport, own mappings",
            Side::Sel4,
            vec!["sys/loader/src", "proto/src", "sys/vspace/src"],
            sel4_glue,
        ),
        (
            "service, driver and app shells (binaries)",
            Side::Sel4,
            vec!["services", "apps"],
            is_component_shell,
        ),
        (
            "root task (excluded by the paper: orthogonal loader)",
            Side::Sel4,
            vec!["services/root/src"],
            is_shell,
        ),
        (
            "library OS (libos/core)",
            Side::Portable,
            vec!["libos/core/src"],
            any,
        ),
        (
            "network application (apps/iperf)",
            Side::Portable,
            vec!["apps/iperf/src"],
            not_shell,
        ),
        ("drivers", Side::Portable, vec!["drivers"], not_shell),
        (
            "service logic (libraries)",
            Side::Portable,
            vec!["services"],
            not_shell,
        ),
        (
            "interfaces, descriptions, image, planning, kernel log",
            Side::Portable,
            vec![
                "proto/src",
                "sys/sysdesc/src",
                "sys/bootimage/src",
                "sys/loader/src",
                "sys/vspace/src",
                "sys/kernel-log/src",
            ],
            portable_lib,
        ),
    ]
}

/// Counts every group.
pub fn count() -> Vec<Group> {
    let root = workspace_root();
    groups()
        .into_iter()
        .map(|(name, side, dirs, keep)| {
            let mut files = Vec::new();
            for d in dirs {
                rust_files(&root.join(d), &mut files);
            }
            files.retain(|f| keep(f) && !f.to_string_lossy().contains("/tests/"));
            let lines = files
                .iter()
                .map(|f| {
                    std::fs::read_to_string(f)
                        .map(|t| code_lines(&t))
                        .unwrap_or(0)
                })
                .sum();
            Group {
                name,
                side,
                lines,
                files: files.len(),
            }
        })
        .collect()
}

/// Prints the table.
pub fn run() -> crate::Result<()> {
    let groups = count();
    println!(
        "{:<52} {:>6} {:>7}",
        "Tessera code (Rust, no blank or comment lines)", "files", "lines"
    );
    for side in [Side::Sel4, Side::Portable] {
        let title = match side {
            Side::Sel4 => "seL4-specific",
            Side::Portable => "portable",
        };
        let mut total = 0;
        for g in groups.iter().filter(|g| g.side == side) {
            println!("  {:<50} {:>6} {:>7}", g.name, g.files, g.lines);
            total += g.lines;
        }
        println!("{:<52} {:>6} {:>7}", format!("{title} total"), "", total);
    }
    println!("(paper, Table 1: Rumprun on seL4 added 677 lines and removed 1402)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_do_not_count() {
        let text = "// a\n\nfn x() {} // trailing\n/* block\n still */ let y = 1;\n/// doc\n  /* one */\nz();\n";
        assert_eq!(code_lines(text), 3);
        assert_eq!(code_lines("/* a */ /* b */\n"), 0);
        assert_eq!(code_lines("let s = \"text\";\n"), 1);
    }

    #[test]
    fn every_group_finds_sources() {
        for g in count() {
            // libos/sel4 and sys/vspace may not exist yet; everything else must.
            if !g.name.contains("libos/sel4") {
                assert!(g.lines > 0, "{} counted nothing", g.name);
            }
        }
    }
}
