//! The builder's block bookkeeping: object sizes, when a block is needed and how large, which
//! arena pays, where objects land, the holding CNode, and an image's shape from its plan.

use std::collections::BTreeMap;

use proc::arena::{keeps_endpoint, object_bits, shape_of, Arena, Arenas, Block, Holding, Source};
use proc::image::MAX_BLOCK_BITS;
use proto::ComponentId;
use sel4::ObjectType;
use sysdesc::{Component, RestartPolicy};

const APP: ComponentId = ComponentId(4);

#[test]
fn object_sizes_follow_the_kernels() {
    assert_eq!(object_bits(ObjectType::X86Page, 0), 12);
    assert_eq!(object_bits(ObjectType::X86LargePage, 0), 21);
    assert_eq!(object_bits(ObjectType::Tcb, 0), 11);
    assert_eq!(object_bits(ObjectType::Endpoint, 0), 4);
    assert_eq!(object_bits(ObjectType::Notification, 0), 5);
    // Sized objects: untyped memory as asked, a CNode's slots are 32 bytes each.
    assert_eq!(object_bits(ObjectType::Untyped, 17), 17);
    assert_eq!(object_bits(ObjectType::CapTable, 12), 17);
    // Paging structures are a page.
    assert_eq!(object_bits(ObjectType::X86PageTable, 0), 12);
}

#[test]
fn objects_sit_at_multiples_of_their_size() {
    let mut block = Block {
        cap: 70,
        size: 1 << 14,
        used: 0,
    };
    assert!(block.fits(14));
    assert!(!block.fits(15));
    block.used = 16; // an endpoint
                     // A page goes to 4096, so three still fit after it but not four.
    assert!(block.fits(12));
    block.used = 3 * 4096 + 16;
    assert!(!block.fits(12), "the next page would start at 16 KiB");
    assert!(block.fits(4));
    block.used = u64::MAX - 2;
    assert!(!block.fits(12), "no overflow near the top");
}

#[test]
fn image_blocks_round_up_and_budget_blocks_round_down() {
    // Image memory: the first block covers the rest, rounded up, at most 2 MiB.
    let mut image = Arena::new(Source::For(APP), 300 << 10);
    assert_eq!(image.block_needed(12), Some(19));
    let mut big = Arena::new(Source::For(APP), 8 << 20);
    assert_eq!(big.block_needed(12), Some(MAX_BLOCK_BITS));
    // The budget: the largest block the rest fits in exactly.
    let mut budget = Arena::new(Source::Within(APP), 160 << 10);
    assert_eq!(budget.block_needed(12), Some(17));
    // proc's own objects size like image memory.
    assert_eq!(Arena::new(Source::Own, 1 << 16).block_needed(11), Some(16));

    // Once a block is there, objects come from it until it is full.
    image.add_block(80, 19);
    assert_eq!(image.block_needed(12), None);
    for _ in 0..64 {
        assert_eq!(image.block_needed(12), None);
        image.placed(12);
    }
    assert_eq!(image.remaining, (300 << 10) - (64 << 12));
    // More than expected still fits while the block has room; what is expected stops at 0.
    for _ in 64..128 {
        assert_eq!(image.block_needed(12), None);
        image.placed(12);
    }
    assert_eq!(image.current.unwrap().used, 1 << 19);
    assert_eq!(image.remaining, 0);
    // Full: the next block is the smallest that holds the object.
    assert_eq!(image.block_needed(12), Some(12));
    assert_eq!(image.block_needed(14), Some(14));
    big.add_block(81, MAX_BLOCK_BITS);
    big.placed(4);
    big.placed(12);
    assert_eq!(big.current.unwrap().used, 8192, "the page went to 4096");

    // A heap and stack of 128 KiB + 32 KiB: exactly two blocks, nothing left over.
    let mut blocks = Vec::new();
    for _ in 0..40 {
        if let Some(bits) = budget.block_needed(12) {
            blocks.push(bits);
            budget.add_block(90, bits);
        }
        budget.placed(12);
    }
    assert_eq!(blocks, vec![17, 15]);
    assert_eq!(budget.remaining, 0);
    assert_eq!(budget.current.unwrap().used, 32 << 10);
}

#[test]
fn the_budget_pays_for_heap_and_stack_only_when_there_is_one() {
    let mut own = Arenas::own(1 << 16);
    assert_eq!(
        own.arena(true).source,
        Source::Own,
        "proc pays its own frames"
    );
    assert_eq!(own.arena(false).source, Source::Own);
    let mut instance = Arenas::instance(APP, 1 << 20, 1 << 17);
    assert_eq!(instance.arena(false).source, Source::For(APP));
    assert_eq!(instance.arena(true).source, Source::Within(APP));
    assert_eq!(instance.arena(false).remaining, 1 << 20);
    assert_eq!(instance.arena(true).remaining, 1 << 17);
    // Spending one does not touch the other.
    instance.arena(true).add_block(5, 17);
    instance.arena(true).placed(12);
    assert_eq!(instance.image.current, None);
    assert_eq!(instance.image.remaining, 1 << 20);
    assert_eq!(instance.budget.unwrap().remaining, (1 << 17) - 4096);
}

#[test]
fn the_holding_cnode_fills_in_order_until_full() {
    let mut h = Holding::new(2);
    let mut got = Vec::new();
    while let Some(slot) = h.next_slot() {
        got.push(slot);
        h.filled();
    }
    assert_eq!(got, vec![0, 1, 2, 3]);
    assert_eq!(h.next_slot(), None);
}

fn component(name: &str, provides: &[&str]) -> Component {
    Component {
        name: name.into(),
        binary: name.into(),
        priority: 100,
        memory: 1 << 20,
        fundamental: sysdesc::FUNDAMENTAL.contains(&name),
        provides: provides.iter().map(|p| p.to_string()).collect(),
        routes: Vec::new(),
        devices: Vec::new(),
        shared: Vec::new(),
        restart: RestartPolicy::Never,
        args: BTreeMap::new(),
    }
}

#[test]
fn proc_keeps_endpoints_for_the_services_it_builds() {
    assert!(keeps_endpoint(&component("serial", &["serial"])));
    assert!(!keeps_endpoint(&component("hello", &[])));
    // The root task made the fundamental services' endpoints.
    assert!(!keeps_endpoint(&component("memory", &["memory"])));
}

/// A minimal ELF64 executable with one loadable segment of `memsz` bytes at 0x400000.
fn elf(memsz: u64) -> Vec<u8> {
    let mut f = vec![0u8; 0x78];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // 64-bit
    f[5] = 1; // little-endian
    f[6] = 1; // version
    f[16..18].copy_from_slice(&2u16.to_le_bytes()); // executable
    f[18..20].copy_from_slice(&0x3eu16.to_le_bytes()); // x86_64
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..32].copy_from_slice(&0x40_0000u64.to_le_bytes()); // entry
    f[32..40].copy_from_slice(&0x40u64.to_le_bytes()); // program headers
    f[52..54].copy_from_slice(&0x40u16.to_le_bytes());
    f[54..56].copy_from_slice(&0x38u16.to_le_bytes());
    f[56..58].copy_from_slice(&1u16.to_le_bytes());
    let ph = 0x40;
    f[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    f[ph + 4..ph + 8].copy_from_slice(&5u32.to_le_bytes()); // R X
    f[ph + 16..ph + 24].copy_from_slice(&0x40_0000u64.to_le_bytes());
    f[ph + 24..ph + 32].copy_from_slice(&0x40_0000u64.to_le_bytes());
    f[ph + 32..ph + 40].copy_from_slice(&0x78u64.to_le_bytes());
    f[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes());
    f[ph + 48..ph + 56].copy_from_slice(&0x1000u64.to_le_bytes());
    f
}

#[test]
fn an_images_shape_counts_its_pages_tables_and_budget() {
    let file = elf(3 * 4096);
    let plan = loader::plan::plan_component(&file, 0, 64 << 10, 16 << 10).expect("plans");
    let shape = shape_of(&plan, 12);
    assert_eq!(shape.pages, plan.pages.len() as u64);
    assert!(shape.pages >= 3 + 2, "the image, start info and IPC buffer");
    assert_eq!(
        shape.tables,
        (plan.pdpts.len() + plan.pds.len() + plan.pts.len()) as u64
    );
    assert_eq!(shape.budget_pages, (64 + 16) / 4);
    assert_eq!(shape.cnode_bits, 12);
    // The holding CNode takes every frame and table capability.
    assert!(1u64 << shape.holding_bits() >= shape.pages + shape.budget_pages + shape.tables);
}
