//! Checks the crate's layout and numbers against the seL4 5.0.0 source it decodes
//! (located as the bindings generator does), and the log size against our kernel
//! supplement: a kernel change that moves a field or renumbers a tag fails here.

use kernel_log::{Path as EntryPath, CAP_TAGS_X86_64, IRQ_VECTOR_BASE_PC99, LOG_BYTES};
use std::path::{Path, PathBuf};

fn source() -> PathBuf {
    kernel_support::locate_source().unwrap_or_else(|e| panic!("{e}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}")) + start.len();
    let to = text[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?}"))
        + from;
    &text[from..to]
}

/// `(name, width)` of every `seL4_Word name: width;` bitfield in `text`, in order.
fn bitfields(text: &str) -> Vec<(String, u32)> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("seL4_Word "))
        .filter_map(|l| {
            let (name, width) = l.trim_end_matches(';').split_once(':')?;
            Some((name.trim().to_string(), width.trim().parse().ok()?))
        })
        .collect()
}

#[test]
fn entry_paths_are_numbered_as_the_kernels_entry_type_t() {
    let h = read(&source().join("include/benchmark/benchmark_track_types.h"));
    let body = between(&h, "typedef enum {", "} entry_type_t;");
    let names: Vec<&str> = body
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let ours = [
        ("Entry_Interrupt", EntryPath::Interrupt),
        ("Entry_UnknownSyscall", EntryPath::UnknownSyscall),
        ("Entry_UserLevelFault", EntryPath::UserLevelFault),
        ("Entry_DebugFault", EntryPath::DebugFault),
        ("Entry_VMFault", EntryPath::VmFault),
        ("Entry_Syscall", EntryPath::Syscall),
        ("Entry_UnimplementedDevice", EntryPath::UnimplementedDevice),
        ("Entry_VCPUFault", EntryPath::VcpuFault),
    ];
    assert_eq!(names.len(), ours.len(), "{names:?}");
    for (i, (name, path)) in ours.iter().enumerate() {
        assert_eq!(names[i], *name);
        assert_eq!(*path as usize, i);
        assert_eq!(EntryPath::from_bits(i as u8), *path);
    }
}

#[test]
fn the_record_has_the_fields_and_widths_the_decoder_assumes() {
    let h = read(&source().join("include/benchmark/benchmark_track_types.h"));
    let entry = between(
        &h,
        "typedef struct PACKED kernel_entry {",
        "} kernel_entry_t;",
    );
    let fields = bitfields(entry);
    let expect = [
        ("path", 3),
        ("word", 29),
        ("syscall_no", 4),
        ("cap_type", 5),
        ("is_fastpath", 1),
        ("invocation_tag", 19),
    ];
    let got: Vec<(&str, u32)> = fields.iter().map(|(n, w)| (n.as_str(), *w)).collect();
    assert_eq!(got, expect);
    let record = between(
        &h,
        "typedef struct benchmark_syscall_log_entry {",
        "} benchmark_track_kernel_entry_t;",
    );
    let members: Vec<String> = record
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        members,
        [
            "uint64_t start_time;",
            "uint32_t duration;",
            "kernel_entry_t entry;"
        ]
    );
}

#[test]
fn cap_tags_and_the_irq_offset_match_the_kernel() {
    let src = source();
    let bf = read(&src.join("include/arch/x86/arch/64/mode/object/structures.bf"));
    let tag = |name: &str| -> u8 {
        bf.lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("tag") && w.next() == Some(name))
                    .then(|| w.next().and_then(|n| n.parse().ok()))
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no tag {name}"))
    };
    assert_eq!(tag("endpoint_cap"), CAP_TAGS_X86_64.endpoint);
    assert_eq!(tag("notification_cap"), CAP_TAGS_X86_64.notification);
    assert_eq!(tag("irq_handler_cap"), CAP_TAGS_X86_64.irq_handler);
    assert_eq!(tag("io_port_cap"), CAP_TAGS_X86_64.io_port);
    let machine = read(&src.join("include/plat/pc99/plat/machine.h"));
    let offset = between(&machine, "#define IRQ_INT_OFFSET", "\n").trim();
    assert_eq!(
        u32::from_str_radix(offset.trim_start_matches("0x"), 16),
        Ok(IRQ_VECTOR_BASE_PC99)
    );
}

#[test]
fn the_log_size_is_our_kernel_supplements() {
    let root = kernel_support::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")));
    let h = read(&root.join("kernel/extra/tessera_kernel.h"));
    let size = between(&h, "#define seL4_LogBufferSize", "\n").trim();
    let shift: u32 = between(size, "<<", ")").trim().parse().expect("(1ul << N)");
    assert_eq!(1usize << shift, LOG_BYTES);
}
