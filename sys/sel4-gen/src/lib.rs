//! Generates Tessera's seL4 Rust bindings (the `sel4` crate's generated half)
//! from the kernel's own interface files, for exactly the configured kernel.
//!
//! Inputs: the seL4 5.0.0 source tree and a [`kernel_support::Resolved`]
//! configuration. Outputs: syscall numbers (`syscall.xml`), invocation labels and
//! one typed method per invocation (the interface XML, packed as
//! `syscall_stub_gen.py` packs), bitfield newtypes (`*.bf`), the error enum,
//! object types, fault message layouts, constants, the IPC buffer, `UserContext`
//! and boot-info layouts (C headers), each with compile-time size checks.
//! Only x86_64 is supported.

pub mod bitfield;
pub mod cond;
pub mod header;
pub mod interface;
pub mod methods;
pub mod names;

mod emit;

use interface::{InterfaceFile, Method, Syscall};
use kernel_support::Resolved;
use std::path::Path;

/// Interface XML files, in label order: generic, then sel4_arch, then arch.
pub const INTERFACE_FILES: [&str; 3] = [
    "libsel4/include/interfaces/sel4.xml",
    "libsel4/sel4_arch_include/x86_64/interfaces/sel4arch.xml",
    "libsel4/arch_include/x86/interfaces/sel4arch.xml",
];

/// Headers read for constants, errors, object types and layouts, in C include order.
pub const HEADERS: [&str; 13] = [
    "libsel4/include/sel4/errors.h",
    "libsel4/include/sel4/objecttype.h",
    "libsel4/sel4_arch_include/x86_64/sel4/sel4_arch/objecttype.h",
    "libsel4/arch_include/x86/sel4/arch/objecttype.h",
    "libsel4/include/sel4/constants.h",
    "libsel4/sel4_arch_include/x86_64/sel4/sel4_arch/constants.h",
    "libsel4/arch_include/x86/sel4/arch/constants.h",
    "libsel4/include/sel4/types.h",
    "libsel4/include/sel4/shared_types.h",
    "libsel4/sel4_arch_include/x86_64/sel4/sel4_arch/types.h",
    "libsel4/arch_include/x86/sel4/arch/types.h",
    "libsel4/include/sel4/bootinfo_types.h",
    "libsel4/arch_include/x86/sel4/arch/bootinfo_types.h",
];

/// Bitfield specs read, in order.
pub const BITFIELD_FILES: [&str; 4] = [
    "libsel4/include/sel4/shared_types_64.bf",
    "libsel4/include/sel4/types_64.bf",
    "libsel4/sel4_arch_include/x86_64/sel4/sel4_arch/types.bf",
    "libsel4/arch_include/x86/sel4/arch/shared_types.bf",
];

/// Every input file, for `cargo:rerun-if-changed`.
pub fn input_files() -> Vec<&'static str> {
    let mut v = vec!["include/api/syscall.xml"];
    v.extend(INTERFACE_FILES);
    v.extend(HEADERS);
    v.extend(BITFIELD_FILES);
    v
}

/// The result of a generation run: the Rust text plus the data it came from.
pub struct Bindings {
    /// Rust source to `include!` in the `sel4` crate.
    pub code: String,
    /// Every syscall in `syscall.xml` with its number and whether it is configured.
    pub syscalls: Vec<Syscall>,
    /// Configured invocation labels and their numbers, in numbering order.
    pub labels: Vec<(String, u32)>,
    /// Every invocation label in the XML files (with its condition), in file order.
    pub all_labels: Vec<(String, String)>,
    /// Configured methods.
    pub methods: Vec<Method>,
    /// `seL4_Error` entries (name, value) as errors.h declares them, `seL4_NumErrors` excluded.
    pub errors: Vec<(String, i64)>,
    /// The value of `seL4_NumErrors`.
    pub num_errors: i64,
    /// Sizes (bytes) of the laid-out C structs, by C name.
    pub struct_sizes: Vec<(String, usize)>,
    /// Integer configuration options that were turned on (`sel4_config` cfgs).
    pub config_flags: Vec<String>,
}

fn read(src: &Path, rel: &str) -> Result<String, String> {
    std::fs::read_to_string(src.join(rel)).map_err(|e| format!("{}: {e}", src.join(rel).display()))
}

/// Generates the bindings for the kernel at `src` configured as `config`.
pub fn generate(src: &Path, config: &Resolved) -> Result<Bindings, String> {
    if config.int("WORD_SIZE") != Some(64) || !config.is_defined("ARCH_X86_64") {
        return Err("sel4-gen supports only x86_64 (WORD_SIZE = 64, ARCH_X86_64)".into());
    }
    let syscalls = interface::syscalls(
        &read(src, "include/api/syscall.xml")?,
        "syscall.xml",
        config,
    )?;

    let mut structs = Vec::new();
    let mut texts = Vec::new();
    for f in INTERFACE_FILES {
        let t = read(src, f)?;
        structs.extend(interface::structs_of(&t, f)?);
        texts.push((f, t));
    }
    let files: Vec<InterfaceFile> = texts
        .iter()
        .map(|(f, t)| interface::parse_interfaces(t, f, &structs))
        .collect::<Result<_, _>>()?;
    let labels = interface::number_labels(
        [&files[0].labels, &files[1].labels, &files[2].labels],
        config,
    )?;
    let all_labels: Vec<(String, String)> = files.iter().flat_map(|f| f.labels.clone()).collect();
    let mut methods = Vec::new();
    for f in &files {
        for m in &f.methods {
            if cond::holds(&m.condition, config)? {
                methods.push(m.clone());
            }
        }
    }

    let mut scope = header::Scope::new(config);
    for h in HEADERS {
        scope.read(&read(src, h)?, h)?;
    }
    let mut spec = bitfield::Spec::default();
    for b in BITFIELD_FILES {
        spec.read(&read(src, b)?, b, &mut scope)?;
    }

    let err_enum = scope
        .enum_named("seL4_Error")
        .ok_or("errors.h: no seL4_Error enum")?;
    let num_errors = err_enum
        .entries
        .iter()
        .find(|(n, _)| n == "seL4_NumErrors")
        .map(|e| e.1)
        .ok_or("errors.h: no seL4_NumErrors")?;
    let errors: Vec<(String, i64)> = err_enum
        .entries
        .iter()
        .filter(|(n, _)| n != "seL4_NumErrors")
        .cloned()
        .collect();

    let mut e = emit::Emitter::new(config, &scope, &spec);
    e.syscalls(&syscalls);
    e.labels(&labels);
    e.errors(&errors, num_errors)?;
    e.object_types()?;
    e.constants()?;
    e.faults()?;
    e.bitfields()?;
    e.layouts(&structs)?;
    e.init_caps()?;
    e.methods(&methods, &labels)?;
    let struct_sizes = e.struct_sizes.clone();
    let config_flags = config
        .values
        .keys()
        .filter(|k| config.is_defined(k))
        .cloned()
        .collect();
    Ok(Bindings {
        code: e.finish(),
        syscalls,
        labels,
        all_labels,
        methods,
        errors,
        num_errors,
        struct_sizes,
        config_flags,
    })
}
