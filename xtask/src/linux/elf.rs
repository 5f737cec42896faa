//! What the initramfs assembly reads from ELF files: a program's interpreter and the
//! shared libraries it needs, and a kernel module's `.modinfo` (its dependencies).

use crate::Result;
use elf::endian::AnyEndian;
use elf::ElfBytes;

fn parse(bytes: &[u8]) -> Result<ElfBytes<'_, AnyEndian>> {
    ElfBytes::<AnyEndian>::minimal_parse(bytes).map_err(|e| format!("not an ELF file: {e}"))
}

/// The program interpreter (`PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`), if any.
pub fn interpreter(bytes: &[u8]) -> Result<Option<String>> {
    let file = parse(bytes)?;
    let Some(segments) = file.segments() else {
        return Ok(None);
    };
    let Some(interp) = segments.iter().find(|p| p.p_type == elf::abi::PT_INTERP) else {
        return Ok(None);
    };
    let data = file
        .segment_data(&interp)
        .map_err(|e| format!("bad PT_INTERP: {e}"))?;
    let path = data.split(|&b| b == 0).next().unwrap_or_default();
    Ok(Some(String::from_utf8_lossy(path).into_owned()))
}

/// The shared libraries the file names in its `DT_NEEDED` entries, in order.
pub fn needed(bytes: &[u8]) -> Result<Vec<String>> {
    let file = parse(bytes)?;
    let bad = |e: elf::ParseError| format!("bad dynamic section: {e}");
    let Some(dynamic) = file.dynamic().map_err(bad)? else {
        return Ok(Vec::new());
    };
    let strtab_header = file
        .section_header_by_name(".dynstr")
        .map_err(bad)?
        .ok_or("a dynamic section without .dynstr")?;
    let strings = file.section_data_as_strtab(&strtab_header).map_err(bad)?;
    dynamic
        .iter()
        .filter(|d| d.d_tag == elf::abi::DT_NEEDED)
        .map(|d| {
            strings
                .get(d.d_val() as usize)
                .map(str::to_string)
                .map_err(bad)
        })
        .collect()
}

/// The `key=value` pairs of a kernel module's `.modinfo` section, in order.
pub fn modinfo(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let file = parse(bytes)?;
    let header = file
        .section_header_by_name(".modinfo")
        .map_err(|e| e.to_string())?
        .ok_or("no .modinfo section (not a kernel module?)")?;
    let (data, _) = file.section_data(&header).map_err(|e| e.to_string())?;
    Ok(modinfo_pairs(data))
}

/// Splits `.modinfo` contents (NUL-separated `key=value` strings) into pairs.
pub fn modinfo_pairs(data: &[u8]) -> Vec<(String, String)> {
    data.split(|&b| b == 0)
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let (key, value) = text.split_once('=')?;
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

/// The modules a module's `depends=` entry names (empty when it names none).
pub fn depends(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "depends")
        .flat_map(|(_, v)| v.split(','))
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_needs_libc_through_an_interpreter() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let needed = needed(&bytes).unwrap();
        assert!(
            needed.iter().any(|n| n.starts_with("libc.so")),
            "{needed:?}"
        );
        let interp = interpreter(&bytes).unwrap().expect("a dynamic executable");
        assert!(
            interp.starts_with('/') && interp.contains("ld-"),
            "{interp}"
        );
    }

    #[test]
    fn non_elf_input_is_an_error() {
        assert!(needed(b"#!/bin/sh\n").is_err());
        assert!(modinfo(b"\x7fELF").is_err());
    }

    #[test]
    fn modinfo_dependencies_are_split_on_commas() {
        let data = b"license=GPL\0depends=virtio_ring,virtio,net_failover\0name=virtio_net\0";
        let pairs = modinfo_pairs(data);
        assert_eq!(pairs[2], ("name".to_string(), "virtio_net".to_string()));
        assert_eq!(depends(&pairs), ["virtio_ring", "virtio", "net_failover"]);
        assert!(depends(&modinfo_pairs(b"depends=\0name=e1000e\0")).is_empty());
    }
}
