//! Checks the generator's output against the kernel's XML and headers.

use kernel_support::{KernelConfig, Resolved, Variant};
use sel4_gen::interface::{input_words, positions, Method};
use sel4_gen::methods::{marshal, method_name};
use std::path::{Path, PathBuf};

fn source() -> PathBuf {
    kernel_support::locate_source().unwrap_or_else(|e| panic!("{e}"))
}

fn config(variant: &str) -> Resolved {
    let root = kernel_support::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")));
    KernelConfig::load(&root.join("kernel/config.toml"))
        .unwrap()
        .resolve(&Variant::parse(variant).unwrap())
        .unwrap()
}

fn bindings(variant: &str) -> sel4_gen::Bindings {
    sel4_gen::generate(&source(), &config(variant)).unwrap_or_else(|e| panic!("{e}"))
}

fn label(b: &sel4_gen::Bindings, id: &str) -> Option<u32> {
    b.labels.iter().find(|(n, _)| n == id).map(|l| l.1)
}

fn method<'a>(b: &'a sel4_gen::Bindings, id: &str) -> &'a Method {
    b.methods
        .iter()
        .find(|m| m.id == id)
        .unwrap_or_else(|| panic!("no method {id}"))
}

#[test]
fn labels_are_dense_in_xml_order_and_conditions_apply() {
    let b = bindings("");
    assert_eq!(label(&b, "UntypedRetype"), Some(1));
    // Dense from 1, and in XML order among the configured ones.
    for (i, (_, n)) in b.labels.iter().enumerate() {
        assert_eq!(*n as usize, i + 1);
    }
    let configured: Vec<&String> = b.labels.iter().map(|l| &l.0).collect();
    let xml_order: Vec<&String> = b
        .all_labels
        .iter()
        .map(|l| &l.0)
        .filter(|id| configured.contains(id))
        .collect();
    assert_eq!(configured, xml_order);
    // MAX_NUM_NODES = 1, no HARDWARE_DEBUG_API, no VTX.
    assert_eq!(label(&b, "TCBSetAffinity"), None);
    assert_eq!(label(&b, "TCBSetBreakpoint"), None);
    assert_eq!(label(&b, "X86PageMapEPT"), None);
    assert!(!b.code.contains("fn tcb_set_affinity"));
    // Generic labels first, then x86_64 (PDPT), then x86.
    assert_eq!(
        label(&b, "DomainSetSet").unwrap() + 1,
        label(&b, "X86PDPTMap").unwrap()
    );
    assert_eq!(
        label(&b, "X86PDPTUnmap").unwrap() + 1,
        label(&b, "X86PageDirectoryMap").unwrap()
    );
    // sel4.xml has 32 methods; 5 are off here (affinity, 4 debug-API ones).
    assert_eq!(label(&b, "DomainSetSet"), Some(32 - 5));
}

#[test]
fn syscall_numbers_follow_syscall_xml() {
    let b = bindings("");
    let n = |name: &str| b.syscalls.iter().find(|s| s.name == name).unwrap().number;
    let api = [
        "Call",
        "ReplyRecv",
        "Send",
        "NBSend",
        "Recv",
        "Reply",
        "Yield",
        "NBRecv",
    ];
    for (i, s) in api.iter().enumerate() {
        assert_eq!(n(s), -(i as i64) - 1, "{s}");
    }
    assert_eq!(n("DebugPutChar"), -9);
    assert_eq!(n("DebugHalt"), -10);
    assert_eq!(n("DebugCapIdentify"), -11);
    assert_eq!(n("DebugSnapshot"), -12);
    assert_eq!(n("DebugNameThread"), -13);
    // Numbering runs on through disabled syscalls.
    assert_eq!(n("BenchmarkFlushCaches"), -15);
    assert!(b.code.contains("pub const DEBUG_PUT_CHAR: i64 = -9;"));
    assert!(!b.code.contains("BENCHMARK_NULL_SYSCALL"));
    let bench = bindings("bench=entries");
    assert!(bench
        .code
        .contains("pub const BENCHMARK_NULL_SYSCALL: i64 = -19;"));
}

#[test]
fn sub_word_parameters_are_packed_like_the_stub_generator() {
    let b = bindings("");
    // CNodeMint: dest_index | dest_depth:8 | (src_root is a cap) src_index | src_depth:8 | rights | badge
    let mint = method(&b, "CNodeMint");
    assert_eq!(input_words(mint), 6);
    assert_eq!(mint.cap_inputs().len(), 1);
    assert_eq!(
        marshal(mint),
        vec![
            vec!["dest_index".to_string()],
            vec!["((dest_depth as Word) & 0xff)".to_string()],
            vec!["src_index".to_string()],
            vec!["((src_depth as Word) & 0xff)".to_string()],
            vec!["rights.0".to_string()],
            vec!["badge.0".to_string()],
        ]
    );
    // TCBCopyRegisters: four bools at bits 0..3, arch_flags (u8) aligned to bit 8.
    let copy = method(&b, "TCBCopyRegisters");
    let data = copy.data_inputs();
    let bits: Vec<u32> = positions(&data).iter().map(|p| p.first_bit).collect();
    assert_eq!(bits, vec![0, 1, 2, 3, 8]);
    assert_eq!(input_words(copy), 1);
    assert_eq!(marshal(copy)[0][4], "(((arch_flags as Word) & 0xff) << 8)");
    // X86PageMap: vroot is an extra cap; vaddr, rights, attr in words 0..2.
    let map = method(&b, "X86PageMap");
    assert_eq!(map.cap_inputs().len(), 1);
    assert_eq!(input_words(map), 3);
    assert_eq!(marshal(map)[1], vec!["rights.0".to_string()]);
    // TCBWriteRegisters: flags word, count, then 19 register words (past MR3: IPC buffer).
    let wr = method(&b, "TCBWriteRegisters");
    assert_eq!(input_words(wr), 21);
    assert!(b.code.contains("crate::ipc::set_mr(20, regs.tls_base);"));
    // IRQControl_Get: `int irq` is masked to 32 bits.
    assert_eq!(
        marshal(method(&b, "IRQIssueIRQHandler"))[0][0],
        "((irq as Word) & 0xffffffff)"
    );
}

#[test]
fn outputs_and_names() {
    let b = bindings("");
    assert!(b
        .code
        .contains("pub fn x86_page_get_address(&self) -> Result<Word, Error>"));
    assert!(b
        .code
        .contains("pub fn x86_io_port_in8(&self, port: u16) -> Result<u8, Error>"));
    assert!(b.code.contains("Ok((mrs[0] & 0xff) as u8)"));
    assert!(b.code.contains("pub struct X86PageDirectoryGetStatusBits"));
    let names: Vec<String> = b.methods.iter().map(method_name).collect();
    for n in [
        "untyped_retype",
        "cnode_copy",
        "cnode_mint",
        "cnode_move",
        "cnode_delete",
        "cnode_revoke",
        "tcb_configure",
        "tcb_set_priority",
        "tcb_write_registers",
        "tcb_resume",
        "tcb_suspend",
        "tcb_set_ipc_buffer",
        "tcb_bind_notification",
        "irq_control_get",
        "irq_control_get_ioapic",
        "irq_control_get_msi",
        "irq_handler_ack",
        "irq_handler_set_notification",
        "x86_page_map",
        "x86_page_table_map",
        "x86_page_directory_map",
        "x86_pdpt_map",
        "x86_asid_pool_assign",
        "x86_io_port_in8",
        "x86_io_port_out32",
    ] {
        assert!(names.iter().any(|m| m == n), "missing {n}");
    }
}

#[test]
fn headers_give_errors_objects_constants_and_layouts() {
    let b = bindings("");
    // errors.h: seL4_NoError..seL4_NotEnoughMemory, then seL4_NumErrors.
    assert_eq!(b.errors.len() as i64, b.num_errors);
    assert_eq!(b.num_errors, 11);
    assert!(b.code.contains("NotEnoughMemory = 10,"));
    assert!(b.code.contains("X86Pdpt = 5,"));
    assert!(b.code.contains("X64Pml4 = 6,"));
    assert!(b.code.contains("X86Page = 7,"));
    assert!(b.code.contains("pub const MSG_MAX_LENGTH: Word = 120;"));
    assert!(b.code.contains("pub const MSG_MAX_EXTRA_CAPS: Word = 3;"));
    assert!(b.code.contains("pub const BADGE_BITS: Word = 28;"));
    assert!(b.code.contains("pub const PAGE_BITS: Word = 12;"));
    assert!(b.code.contains("pub const LARGE_PAGE_BITS: Word = 21;"));
    assert!(b.code.contains("pub const MAX_PRIO: Word = 255;"));
    let size = |n: &str| b.struct_sizes.iter().find(|s| s.0 == n).unwrap().1;
    assert_eq!(size("seL4_IPCBuffer"), 1024);
    assert_eq!(size("seL4_UntypedDesc"), 12);
    assert_eq!(size("seL4_BootInfo"), 169 + 12 * 230);
    assert_eq!(size("seL4_UserContext"), 19 * 8);
    // Fault layouts and tags.
    assert!(b.code.contains("pub const FSR: usize = 3;"));
    assert!(b.code.contains("pub const SYSCALL: usize = 18;"));
    assert!(b.code.contains("VmFault = 5,"));
    assert!(b
        .code
        .contains("pub const IPC_BUFFER: Cap<cap_type::X86Page> = Cap::from_raw(10);"));
}

#[test]
fn bitfields_follow_the_spec_layout() {
    let b = bindings("");
    // seL4_MessageInfo: label 20 bits at 12, capsUnwrapped 3 at 9, extraCaps 2 at 7, length 7 at 0.
    assert!(b.code.contains("((label & 0xfffff) << 12) | ((caps_unwrapped & 0x7) << 9) | ((extra_caps & 0x3) << 7) | (length & 0x7f)"));
    // seL4_CapData Guard: tag 1 at bit 31, GuardBits 18 at 8, GuardSize 6 at 2.
    assert!(b
        .code
        .contains("pub const fn new_guard(guard_bits: Word, guard_size: Word) -> Self"));
    assert!(b
        .code
        .contains("((guard_bits & 0x3ffff) << 8) | ((guard_size & 0x3f) << 2) | (1 << 31)"));
}
