//! The first step of `cargo xtask lint`: every workspace member inherits the workspace's
//! `[workspace.lints]` table, so unsafe code is refused wherever a crate does not allow it
//! on purpose (docs/ARCHITECTURE.md lists the crates and modules that do).

use crate::{workspace_root, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the manifest text `manifest` inherits the workspace lints: `workspace = true`
/// in its `[lints]` table, or `lints.workspace = true` / `lints = { workspace = true }` at
/// its top level. A table such as `[lints.rust]` alone does not count.
pub fn inherits_workspace_lints(manifest: &str) -> bool {
    let mut table = String::new();
    for line in manifest.lines() {
        let line: String = strip_comment(line)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Some(header) = line.strip_prefix('[') {
            table = header.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        let inherits = match table.as_str() {
            "lints" => line == "workspace=true",
            "" => line == "lints.workspace=true" || line == "lints={workspace=true}",
            _ => false,
        };
        if inherits {
            return true;
        }
    }
    false
}

/// `line` without a trailing `#` comment (a `#` inside a quoted string is kept).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') => return &line[..i],
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            _ => {}
        }
    }
    line
}

/// The members of `manifests` (each a path and its text) that do not inherit the
/// workspace lints, in the order given.
pub fn missing_workspace_lints(manifests: &[(PathBuf, String)]) -> Vec<&Path> {
    manifests
        .iter()
        .filter(|(_, text)| !inherits_workspace_lints(text))
        .map(|(path, _)| path.as_path())
        .collect()
}

/// The manifest of every workspace member, as `cargo metadata` lists them.
fn member_manifests() -> Result<Vec<PathBuf>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let packages = meta["packages"]
        .as_array()
        .ok_or("cargo metadata lists no packages")?;
    packages
        .iter()
        .map(|p| {
            p["manifest_path"]
                .as_str()
                .map(PathBuf::from)
                .ok_or_else(|| "cargo metadata: a package without manifest_path".to_string())
        })
        .collect()
}

/// Fails, naming each file, if a workspace member's Cargo.toml lacks
/// `[lints] workspace = true`.
pub fn check() -> Result<()> {
    let mut manifests = Vec::new();
    for path in member_manifests()? {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        manifests.push((path, text));
    }
    let missing = missing_workspace_lints(&manifests);
    if missing.is_empty() {
        return Ok(());
    }
    let root = workspace_root();
    let names: Vec<String> = missing
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap_or(p).display().to_string())
        .collect();
    Err(format!(
        "{} does not inherit the workspace lints: add\n\n[lints]\nworkspace = true\n\n\
         (a crate that must use unsafe code allows it in its source, with a reason; see \
         docs/ARCHITECTURE.md)",
        names.join(", ")
    ))
}

/// The layer of a crate in folder `folder` (relative to the workspace root): imports may
/// only run to the same layer or below (docs/ARCHITECTURE.md, "Layers"). `None` for a
/// folder outside the table.
pub fn layer(folder: &str) -> Option<u8> {
    match folder.split('/').next()? {
        "kernel" => Some(0),
        "sys" => Some(1),
        "proto" => Some(2),
        "drivers" => Some(3),
        "libos" => Some(4),
        "services" | "apps" => Some(5),
        "xtask" | "system-tests" => Some(6),
        _ => None,
    }
}

/// The imports among `edges` (importer's folder, imported folder) that run up a layer, or
/// from a service into an application; each as `importer -> imported`.
pub fn upward(edges: &[(String, String)]) -> Vec<String> {
    edges
        .iter()
        .filter(|(from, to)| {
            let up = matches!((layer(from), layer(to)), (Some(a), Some(b)) if b > a);
            up || (from.starts_with("services/") && to.starts_with("apps/"))
        })
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect()
}

/// Every import between workspace members (normal and build dependencies), as (importer's
/// folder, imported folder), from `cargo metadata`.
pub fn member_imports() -> Result<Vec<(String, String)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let root = workspace_root();
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let folder = |p: &serde_json::Value| -> Option<String> {
        let manifest = PathBuf::from(p["manifest_path"].as_str()?);
        let dir = manifest
            .parent()?
            .strip_prefix(&root)
            .ok()?
            .display()
            .to_string();
        Some(dir)
    };
    let by_name: std::collections::BTreeMap<String, String> = packages
        .iter()
        .filter_map(|p| Some((p["name"].as_str()?.to_string(), folder(p)?)))
        .collect();
    let mut edges = Vec::new();
    for p in &packages {
        let Some(from) = folder(p) else { continue };
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let kind = d["kind"].as_str();
            if kind == Some("dev") {
                continue;
            }
            if let Some(to) = d["name"].as_str().and_then(|n| by_name.get(n)) {
                edges.push((from.clone(), to.clone()));
            }
        }
    }
    Ok(edges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_may_run_down_or_across_but_not_up() {
        let e = |a: &str, b: &str| (a.to_string(), b.to_string());
        let edges = [
            e("libos/sel4", "drivers/e1000e"),
            e("drivers/e1000e", "drivers/netdev"),
            e("drivers/e1000e", "libos/core"),
            e("services/proc", "apps/shell"),
            e("apps/hello", "libos/sel4"),
            e("sys/rt", "proto"),
        ];
        assert_eq!(
            upward(&edges),
            [
                "drivers/e1000e -> libos/core",
                "services/proc -> apps/shell",
                "sys/rt -> proto"
            ]
        );
    }

    #[test]
    fn no_import_in_the_workspace_runs_up_a_layer() {
        let edges = member_imports().expect("cargo metadata");
        assert!(edges.len() > 50, "only {} imports found", edges.len());
        for (from, _) in &edges {
            assert!(
                layer(from).is_some(),
                "{from} is in no layer: add it to lints::layer"
            );
        }
        assert_eq!(upward(&edges), Vec::<String>::new());
    }

    #[test]
    fn a_lints_table_with_workspace_true_inherits() {
        let text = "[package]\nname = \"x\"\n\n[lints]\nworkspace = true\n";
        assert!(inherits_workspace_lints(text));
        assert!(inherits_workspace_lints(
            "[ lints ]\n  workspace=true # inherit\n"
        ));
    }

    #[test]
    fn the_dotted_and_inline_forms_inherit_at_top_level_only() {
        assert!(inherits_workspace_lints(
            "lints.workspace = true\n[package]\nname = \"x\"\n"
        ));
        assert!(inherits_workspace_lints("lints = { workspace = true }\n"));
        assert!(!inherits_workspace_lints(
            "[package]\nlints.workspace = true\n"
        ));
    }

    #[test]
    fn other_tables_comments_and_false_do_not_inherit() {
        assert!(!inherits_workspace_lints("[package]\nname = \"x\"\n"));
        assert!(!inherits_workspace_lints(
            "[lints.rust]\nworkspace = true\n"
        ));
        assert!(!inherits_workspace_lints("[package]\nworkspace = true\n"));
        assert!(!inherits_workspace_lints("# [lints]\n# workspace = true\n"));
        assert!(!inherits_workspace_lints("[lints]\n# workspace = true\n"));
        assert!(!inherits_workspace_lints("[lints]\nworkspace = false\n"));
        assert!(!inherits_workspace_lints(
            "[lints]\n[dependencies]\nworkspace = true\n"
        ));
    }

    #[test]
    fn a_hash_inside_a_string_is_not_a_comment() {
        assert_eq!(strip_comment("a = \"#x\" # c"), "a = \"#x\" ");
        assert_eq!(strip_comment("a = '#' "), "a = '#' ");
    }

    #[test]
    fn missing_names_exactly_the_members_that_do_not_inherit() {
        let manifests = vec![
            (
                PathBuf::from("a/Cargo.toml"),
                "[lints]\nworkspace = true\n".into(),
            ),
            (
                PathBuf::from("b/Cargo.toml"),
                "[package]\nname = \"b\"\n".into(),
            ),
            (
                PathBuf::from("c/Cargo.toml"),
                "[lints.clippy]\nall = \"deny\"\n".into(),
            ),
        ];
        assert_eq!(
            missing_workspace_lints(&manifests),
            [Path::new("b/Cargo.toml"), Path::new("c/Cargo.toml")]
        );
    }

    #[test]
    fn every_workspace_member_inherits_the_workspace_lints() {
        let missing: Vec<PathBuf> = member_manifests()
            .expect("cargo metadata")
            .into_iter()
            .filter(|p| !inherits_workspace_lints(&std::fs::read_to_string(p).unwrap()))
            .collect();
        assert!(
            missing.is_empty(),
            "without [lints] workspace = true: {missing:?}"
        );
    }
}
