//! Boot-info parsing on a blob captured from a real boot: seL4 5.0.0 under QEMU
//! (`-machine pc -m 512`, TCG), Tessera's root task built with the `dump-bootinfo`
//! feature, which prints the boot-info frame and its extra page as hex. The
//! expected values below are what that boot's root task summary printed.

use sel4::bootinfo::{BootInfoError, EXTRA_OFFSET};
use sel4::BootInfo;

const BLOB: &[u8] = include_bytes!("data/bootinfo-qemu-pc-512m.bin");

#[test]
fn captured_boot_info_parses() {
    let bi = BootInfo::from_bytes(BLOB).expect("captured blob parses");
    assert_eq!(({ bi.node_id }, { bi.num_nodes }), (0, 1));
    assert_eq!(bi.init_thread_cnode_size_bits, 16);
    let empty = bi.empty();
    assert_eq!((empty.start, empty.end), (0x8fd, 0x10000));
    assert_eq!(
        { bi.arch_info },
        2597,
        "TSC MHz as the kernel calibrated it"
    );
    assert_eq!({ bi.extra_len }, 4096);
    assert_eq!(
        bi.as_bytes().as_ptr_range(),
        BLOB.as_ptr_range(),
        "the view keeps the bytes it was read from (the root task's dump prints them)"
    );

    let untypeds: Vec<_> = bi.untypeds().collect();
    assert_eq!(untypeds.len(), 136);
    let ram: u64 = untypeds
        .iter()
        .filter(|(_, u)| !u.is_device())
        .map(|(_, u)| 1u64 << u.size_bits())
        .sum();
    assert_eq!(ram >> 20, 498, "RAM in MiB");
    assert_eq!(untypeds.iter().filter(|(_, u)| u.is_device()).count(), 106);
    // Capability pointers run densely through the untyped slot region.
    let first = untypeds[0].0;
    assert!(untypeds
        .iter()
        .enumerate()
        .all(|(i, (c, _))| *c == first + i as u64));
    // The largest RAM untyped the summary named.
    assert!(untypeds
        .iter()
        .any(|(_, u)| !u.is_device() && u.paddr() == 0x1000_0000 && u.size_bits() == 27));
    // The HPET block is device memory.
    assert!(untypeds
        .iter()
        .any(|(_, u)| u.is_device() && u.paddr() == 0xfed0_0000));
    // The user image frames region and the IPC buffer are sane.
    assert!(!bi.user_image_frames.is_empty());
    let ipc = bi.ipc_buffer;
    assert!(ipc >= 0x40_0000 && ipc.is_multiple_of(4096));
    // QEMU without a VBE mode: the extra page is one padding chunk filling it.
    let chunks: Vec<_> = bi.extra_bootinfo().collect();
    assert!(!chunks.is_empty());
    let covered: usize = chunks.iter().map(|c| c.data.len() + 16).sum();
    assert_eq!(covered, 4096, "{chunks:?}");
}

#[test]
fn truncated_captured_blob_is_refused() {
    assert!(matches!(
        BootInfo::from_bytes(&BLOB[..100]),
        Err(BootInfoError::TooShort { .. })
    ));
    // The frame alone, without the extra page its extra_len announces.
    assert!(matches!(
        BootInfo::from_bytes(&BLOB[..EXTRA_OFFSET]),
        Err(BootInfoError::TooShort { .. })
    ));
}
