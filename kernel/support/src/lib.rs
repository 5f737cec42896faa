//! Host-side knowledge of Tessera's seL4 kernel: its configuration file, the
//! variants later work selects (interrupt controller, benchmark support), the
//! `autoconf.h` the kernel build reads, and where the kernel source lives.
//!
//! Used by `xtask` (to build the kernel) and by the build script of `sys/sel4`
//! (to generate bindings for exactly the configured kernel), so both always see
//! the same configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variable naming an seL4 source tree to use instead of the pinned one.
pub const SOURCE_ENV: &str = "TESSERA_SEL4_SRC";
/// Environment variable selecting a kernel variant, e.g. `irq=pic,bench=entries`.
pub const VARIANT_ENV: &str = "TESSERA_KERNEL_VARIANT";
/// The crates.io package whose `seL4/` folder is the pinned kernel source.
pub const PINNED_PACKAGE: &str = "sel4-sys";
/// The pinned version of [`PINNED_PACKAGE`]; it ships seL4 5.0.0.
pub const PINNED_VERSION: &str = "0.0.28";

/// An error reading the configuration or finding the kernel source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// One configuration value, as written in `kernel/config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// `true` defines the option as 1, `false` leaves it undefined.
    Bool(bool),
    /// A number, written as is.
    Int(i64),
    /// A string, written quoted.
    Str(String),
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    config: BTreeMap<String, Value>,
    defaults: BTreeMap<String, String>,
    variant: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>,
}

/// The parsed configuration file: base options plus the selectable variants.
#[derive(Debug, Clone)]
pub struct KernelConfig {
    base: BTreeMap<String, Value>,
    defaults: BTreeMap<String, String>,
    variants: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>,
}

/// A choice per variant axis, e.g. `irq=pic`, `bench=entries`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Variant {
    choices: BTreeMap<String, String>,
}

impl Variant {
    /// Parses `axis=choice` pairs separated by commas; the empty string selects the defaults.
    pub fn parse(text: &str) -> Result<Variant, Error> {
        let mut choices = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (axis, choice) = part.split_once('=').ok_or_else(|| {
                Error(format!(
                    "kernel variant `{part}` is not of the form axis=choice (e.g. irq=pic)"
                ))
            })?;
            choices.insert(axis.trim().to_string(), choice.trim().to_string());
        }
        Ok(Variant { choices })
    }

    /// Reads the variant from [`VARIANT_ENV`]; unset means the defaults.
    pub fn from_env() -> Result<Variant, Error> {
        Variant::parse(&std::env::var(VARIANT_ENV).unwrap_or_default())
    }

    /// Sets the choice for one axis.
    pub fn with(mut self, axis: &str, choice: &str) -> Variant {
        self.choices.insert(axis.to_string(), choice.to_string());
        self
    }

    /// The choice made for `axis`, if any.
    pub fn get(&self, axis: &str) -> Option<&str> {
        self.choices.get(axis).map(String::as_str)
    }

    /// The canonical `axis=choice,...` text, suitable for [`VARIANT_ENV`].
    pub fn to_env_string(&self) -> String {
        self.choices
            .iter()
            .map(|(a, c)| format!("{a}={c}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The configuration with one choice made on every axis: the options the kernel is built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Every option name (without `CONFIG_`) and its value.
    pub values: BTreeMap<String, Value>,
    /// The full choice on every axis, defaults filled in.
    pub variant: Variant,
}

impl KernelConfig {
    /// Parses the text of a configuration file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<KernelConfig, Error> {
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            Error(format!("{origin}:{line}: {}", e.message().trim()))
        })?;
        for (axis, choice) in &file.defaults {
            let known = file.variant.get(axis).ok_or_else(|| {
                Error(format!(
                    "{origin}: [defaults] names axis `{axis}` with no [variant.{axis}.*] tables"
                ))
            })?;
            if !known.contains_key(choice) {
                return Err(Error(format!(
                    "{origin}: default {axis} = \"{choice}\" is not one of: {}",
                    known.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        for axis in file.variant.keys() {
            if !file.defaults.contains_key(axis) {
                return Err(Error(format!(
                    "{origin}: axis `{axis}` has no entry in [defaults]"
                )));
            }
        }
        Ok(KernelConfig {
            base: file.config,
            defaults: file.defaults,
            variants: file.variant,
        })
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<KernelConfig, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error(format!("{}: cannot read: {e}", path.display())))?;
        KernelConfig::parse(&text, &path.display().to_string())
    }

    /// The axes and their choices, e.g. `irq` → `[ioapic, pic]`.
    pub fn axes(&self) -> BTreeMap<&str, Vec<&str>> {
        self.variants
            .iter()
            .map(|(a, cs)| (a.as_str(), cs.keys().map(String::as_str).collect()))
            .collect()
    }

    /// Applies a variant (defaults for the axes it leaves open) to the base options.
    pub fn resolve(&self, variant: &Variant) -> Result<Resolved, Error> {
        for axis in variant.choices.keys() {
            if !self.variants.contains_key(axis) {
                return Err(Error(format!(
                    "unknown kernel variant axis `{axis}` (known: {})",
                    self.variants.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let mut values = self.base.clone();
        let mut full = Variant::default();
        for (axis, choices) in &self.variants {
            let choice = variant.get(axis).unwrap_or(&self.defaults[axis]);
            let extra = choices.get(choice).ok_or_else(|| {
                Error(format!(
                    "unknown {axis} choice `{choice}` (known: {})",
                    choices.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            values.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
            full.choices.insert(axis.clone(), choice.to_string());
        }
        Ok(Resolved {
            values,
            variant: full,
        })
    }
}

impl Resolved {
    /// Whether `CONFIG_<name>` is defined (present and not `false`).
    pub fn is_defined(&self, name: &str) -> bool {
        let name = name.strip_prefix("CONFIG_").unwrap_or(name);
        !matches!(self.values.get(name), None | Some(Value::Bool(false)))
    }

    /// The numeric value of `CONFIG_<name>`: booleans count as 0/1, undefined as `None`.
    pub fn int(&self, name: &str) -> Option<i64> {
        let name = name.strip_prefix("CONFIG_").unwrap_or(name);
        match self.values.get(name)? {
            Value::Bool(b) => Some(*b as i64),
            Value::Int(i) => Some(*i),
            Value::Str(_) => None,
        }
    }

    /// The text of `autoconf.h` for these options.
    pub fn autoconf_h(&self) -> String {
        let mut out = String::from(
            "/* Generated by Tessera from kernel/config.toml: do not edit. */\n\
             #ifndef AUTOCONF_INCLUDED\n#define AUTOCONF_INCLUDED\n",
        );
        out.push_str(&format!(
            "/* variant: {} */\n",
            self.variant.to_env_string()
        ));
        for (name, value) in &self.values {
            match value {
                Value::Bool(false) => {}
                Value::Bool(true) => out.push_str(&format!("#define CONFIG_{name} 1\n")),
                Value::Int(i) => out.push_str(&format!("#define CONFIG_{name} {i}\n")),
                Value::Str(s) => out.push_str(&format!("#define CONFIG_{name} {s:?}\n")),
            }
        }
        out.push_str("#endif\n");
        out
    }
}

/// The workspace root, found from a crate's manifest directory (`CARGO_MANIFEST_DIR`).
pub fn workspace_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .ancestors()
        .find(|p| p.join("kernel/config.toml").is_file())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// The registry's unpacked source folders (`$CARGO_HOME/registry/src/*`).
fn registry_src_dirs() -> Vec<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(home) = cargo_home else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(home.join("registry/src")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    dirs
}

/// Checks that `dir` looks like an seL4 source tree (has its Makefile and interface XML).
pub fn check_source(dir: &Path) -> Result<(), Error> {
    for needed in [
        "Makefile",
        "libsel4/include/interfaces/sel4.xml",
        "include/api/syscall.xml",
    ] {
        if !dir.join(needed).is_file() {
            return Err(Error(format!(
                "{} is not an seL4 source tree: {needed} is missing",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Finds the seL4 source tree: [`SOURCE_ENV`] if set, else the pinned registry package's `seL4/`.
///
/// Fails with a message saying how to fetch it (`cargo xtask build` does) when it is absent.
pub fn locate_source() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os(SOURCE_ENV) {
        let dir = PathBuf::from(dir);
        check_source(&dir)?;
        return Ok(dir);
    }
    let folder = format!("{PINNED_PACKAGE}-{PINNED_VERSION}");
    for src in registry_src_dirs() {
        let candidate = src.join(&folder).join("seL4");
        if check_source(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(Error(format!(
        "the seL4 source ({PINNED_PACKAGE} {PINNED_VERSION} from crates.io) has not been fetched yet: \
         run `cargo xtask build` (it runs `cargo fetch --manifest-path kernel/fetch/Cargo.toml`), \
         or point {SOURCE_ENV} at an seL4 tree"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_config() -> KernelConfig {
        let root = workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")));
        KernelConfig::load(&root.join("kernel/config.toml")).unwrap()
    }

    #[test]
    fn defaults_pick_ioapic_without_benchmarks() {
        let r = repo_config().resolve(&Variant::default()).unwrap();
        assert!(r.is_defined("CONFIG_IRQ_IOAPIC"));
        assert!(!r.is_defined("IRQ_PIC"));
        assert!(r.is_defined("NO_BENCHMARKS"));
        assert!(
            !r.is_defined("HUGE_PAGE"),
            "false must leave the option undefined"
        );
        assert_eq!(r.int("MAX_NUM_NODES"), Some(1));
        assert_eq!(r.variant.to_env_string(), "bench=none,irq=ioapic");
    }

    #[test]
    fn variant_overrides_and_autoconf_text() {
        let v = Variant::parse("irq=pic, bench=entries").unwrap();
        let r = repo_config().resolve(&v).unwrap();
        let h = r.autoconf_h();
        assert!(h.contains("#define CONFIG_IRQ_PIC 1\n"));
        assert!(!h.contains("CONFIG_IRQ_IOAPIC"));
        assert!(h.contains("#define CONFIG_BENCHMARK_TRACK_KERNEL_ENTRIES 1\n"));
        assert!(h.contains("#define CONFIG_ROOT_CNODE_SIZE_BITS 16\n"));
        assert!(!h.contains("HUGE_PAGE"));
    }

    #[test]
    fn bad_variants_are_named() {
        let c = repo_config();
        let e = c.resolve(&Variant::parse("irq=msi").unwrap()).unwrap_err();
        assert!(e.0.contains("unknown irq choice `msi`"), "{e}");
        let e = c
            .resolve(&Variant::parse("colour=red").unwrap())
            .unwrap_err();
        assert!(e.0.contains("unknown kernel variant axis `colour`"), "{e}");
        assert!(Variant::parse("irq").is_err());
    }

    #[test]
    fn malformed_file_names_origin_and_line() {
        let e = KernelConfig::parse("[config]\nA = true\nB = \n", "x.toml").unwrap_err();
        assert!(e.0.starts_with("x.toml:3: "), "{e}");
        let e = KernelConfig::parse(
            "[config]\n[defaults]\nirq = \"nope\"\n[variant.irq.pic]\nIRQ_PIC = true\n",
            "y.toml",
        )
        .unwrap_err();
        assert!(e.0.contains("default irq = \"nope\""), "{e}");
    }
}
