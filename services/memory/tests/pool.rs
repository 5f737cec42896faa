//! Allocation, freeing, coalescing, budgets, shared regions and release on exit.

mod common;

use common::{id, pool, system, Cap};
use memory::{Error, Memory, Step, Untyped, MIN_BLOCK_BITS};

const MIB: u64 = 1 << 20;
const KIB: u64 = 1 << 10;

#[test]
fn untypeds_are_checked() {
    let s = system();
    let mut m = Memory::new(&s);
    let u = |paddr, size_bits| Untyped {
        cap: 1,
        paddr,
        size_bits,
    };
    assert_eq!(m.add_untyped(u(0x1000, 11)), Err(Error::BadSize));
    assert_eq!(m.add_untyped(u(0x1000, 48)), Err(Error::BadSize));
    assert_eq!(m.add_untyped(u(0x1000, 13)), Err(Error::Misaligned));
    assert!(m.add_untyped(u(0x4000, 14)).is_ok());
    assert_eq!(m.add_untyped(u(0x4000, 12)), Err(Error::Overlap));
    assert_eq!(m.add_untyped(u(0x7000, 12)), Err(Error::Overlap));
    assert_eq!(m.add_untyped(u(0x0000, 15)), Err(Error::Overlap));
    assert!(m.add_untyped(u(0x3000, 12)).is_ok());
    assert!(m.add_untyped(u(0x8000, 12)).is_ok());
    assert_eq!(m.totals().total, 0x4000 + 0x2000);
    m.check().unwrap();
}

#[test]
fn split_then_coalesce_back_to_one_block() {
    let s = system();
    let (mut m, mut caps) = pool(&s);
    let a = id(&s, "a");
    let baseline = m.totals();
    assert_eq!(m.block_count(), 2);

    // The smallest untyped that fits is split: 1 MiB -> 8 halvings down to 4 KiB.
    let first = m.alloc(a, 12).unwrap();
    assert_eq!(first.steps.len(), 8);
    assert!(first.steps.iter().all(|s| matches!(s, Step::Split { .. })));
    assert_eq!(first.block.paddr, 0x10_0000);
    assert_eq!(first.block.untyped, 101);
    caps.perform(&first.steps);
    caps.hand(first.block.id);

    // Its buddy is already there: no new split.
    let second = m.alloc(a, 12).unwrap();
    assert!(second.steps.is_empty());
    assert_eq!(second.block.paddr, 0x10_1000);
    caps.hand(second.block.id);
    m.check().unwrap();

    // Freeing one only revokes it; freeing its buddy merges all the way up.
    let steps = m.free(a, first.block.id).unwrap();
    assert_eq!(
        steps,
        [Step::Revoke {
            block: first.block.id
        }]
    );
    caps.perform(&steps);
    let steps = m.free(a, second.block.id).unwrap();
    assert_eq!(steps.len(), 8);
    assert!(steps.iter().all(|s| matches!(s, Step::Merge { .. })));
    caps.perform(&steps);

    assert_eq!(m.totals(), baseline);
    assert_eq!(m.block_count(), 2);
    assert_eq!(caps.live.len(), 2);
    assert!(caps.live.values().all(|c| *c == Cap::Fresh));
    m.check().unwrap();
}

#[test]
fn free_checks_the_holder() {
    let s = system();
    let (mut m, _) = pool(&s);
    let (a, b) = (id(&s, "a"), id(&s, "b"));
    let x = m.alloc(a, 12).unwrap().block;
    assert_eq!(m.free(b, x.id), Err(Error::NotOwner));
    assert!(m.free(a, x.id).is_ok());
    assert_eq!(m.free(a, x.id), Err(Error::NotOwner), "double free");
    let ring = m.attach(a, "ring").unwrap();
    assert_eq!(m.free(a, ring.blocks[0].id), Err(Error::NotOwner));
    m.check().unwrap();
}

#[test]
fn bad_sizes_and_unknown_clients() {
    let s = system();
    let (mut m, _) = pool(&s);
    let a = id(&s, "a");
    assert_eq!(m.alloc(a, MIN_BLOCK_BITS - 1), Err(Error::BadSize));
    assert_eq!(m.alloc(a, 60), Err(Error::BadSize));
    let ghost = sysdesc::ComponentId(99);
    assert_eq!(m.alloc(ghost, 12), Err(Error::UnknownClient));
    assert_eq!(m.usage(ghost), Err(Error::UnknownClient));
    assert_eq!(m.release_all(ghost), Err(Error::UnknownClient));
    assert_eq!(m.attach(ghost, "ring"), Err(Error::UnknownClient));
    assert!(m.blocks(ghost).is_empty());
}

#[test]
fn budgets_are_enforced_without_side_effects() {
    let s = system();
    let (mut m, _) = pool(&s);
    let b = id(&s, "b"); // 64 KiB
    let before = m.totals();
    assert_eq!(m.alloc(b, 17), Err(Error::OverBudget));
    assert_eq!(m.totals(), before);
    m.alloc(b, 15).unwrap();
    m.alloc(b, 14).unwrap();
    m.alloc(b, 13).unwrap();
    m.alloc(b, 12).unwrap();
    m.alloc(b, 12).unwrap();
    assert_eq!(m.alloc(b, 12), Err(Error::OverBudget));
    let u = m.usage(b).unwrap();
    assert_eq!((u.used, u.budget), (64 * KIB, 64 * KIB));
    // Another client is unaffected.
    assert!(m.alloc(id(&s, "c"), 12).is_ok());
    m.check().unwrap();
}

#[test]
fn out_of_memory_leaves_the_pool_unchanged() {
    let s = system();
    let mut m = Memory::new(&s);
    let a = id(&s, "a");
    assert_eq!(m.alloc(a, 12), Err(Error::OutOfMemory), "empty pool");
    m.add_untyped(Untyped {
        cap: 7,
        paddr: 0,
        size_bits: 14,
    })
    .unwrap();
    assert_eq!(m.alloc(a, 15), Err(Error::OutOfMemory));
    for _ in 0..4 {
        m.alloc(a, 12).unwrap();
    }
    let before = (m.totals(), m.block_count());
    assert_eq!(m.alloc(a, 12), Err(Error::OutOfMemory));
    assert_eq!((m.totals(), m.block_count()), before);
    assert_eq!(m.largest_free(), None);
    m.check().unwrap();
}

#[test]
fn fragmentation_blocks_large_requests_until_buddies_return() {
    let s = system();
    let mut m = Memory::new(&s);
    let a = id(&s, "a");
    m.add_untyped(Untyped {
        cap: 7,
        paddr: 0,
        size_bits: 16,
    })
    .unwrap();
    let pages: Vec<_> = (0..16).map(|_| m.alloc(a, 12).unwrap().block).collect();
    // Free every other page: half the memory is free, but no two free pages are buddies.
    for p in pages.iter().step_by(2) {
        m.free(a, p.id).unwrap();
    }
    assert_eq!(m.totals().free, 32 * KIB);
    assert_eq!(m.largest_free(), Some(12));
    assert_eq!(m.alloc(a, 13), Err(Error::OutOfMemory));
    m.check().unwrap();
    // Returning one page lets its buddy merge: an 8 KiB block appears.
    m.free(a, pages[1].id).unwrap();
    assert_eq!(m.largest_free(), Some(13));
    let x = m.alloc(a, 13).unwrap().block;
    assert_eq!(x.paddr, 0);
    // Small requests reuse the holes at the lowest address first.
    assert_eq!(m.alloc(a, 12).unwrap().block.paddr, pages[2].paddr);
    m.release_all(a).unwrap();
    assert_eq!(m.largest_free(), Some(16));
    assert_eq!(m.block_count(), 1);
    m.check().unwrap();
}

#[test]
fn shared_regions_only_for_members_and_allocated_once() {
    let s = system();
    let (mut m, mut caps) = pool(&s);
    let (a, b, c) = (id(&s, "a"), id(&s, "b"), id(&s, "c"));
    assert_eq!(m.attach(c, "ring"), Err(Error::Denied));
    assert_eq!(m.attach(a, "nope"), Err(Error::UnknownRegion));
    assert_eq!(m.region_allocated("ring"), Some(false));
    assert_eq!(m.region_allocated("nope"), None);

    let first = m.attach(a, "ring").unwrap();
    caps.perform(&first.steps);
    // 12 KiB = 8 KiB + 4 KiB, largest first.
    let sizes: Vec<u8> = first.blocks.iter().map(|b| b.size_bits).collect();
    assert_eq!(sizes, [13, 12]);
    assert_eq!(m.totals().shared, 12 * KIB);
    // Charged to nobody.
    assert_eq!(m.usage(a).unwrap().used, 0);

    let second = m.attach(b, "ring").unwrap();
    assert!(second.steps.is_empty());
    assert_eq!(second.blocks, first.blocks);
    assert_eq!(
        m.attach(b, "ring").unwrap().blocks,
        first.blocks,
        "idempotent"
    );
    m.check().unwrap();

    // Freed only when the last attached member goes.
    let steps = m.release_all(a).unwrap();
    assert!(steps.is_empty());
    assert_eq!(m.region_allocated("ring"), Some(true));
    let steps = m.release_all(b).unwrap();
    caps.perform(&steps);
    assert_eq!(m.region_allocated("ring"), Some(false));
    assert_eq!(m.totals().shared, 0);
    assert_eq!(m.totals().free, 3 * MIB);
    m.check().unwrap();
}

#[test]
fn a_region_that_does_not_fit_is_not_half_allocated() {
    let s = system();
    let mut m = Memory::new(&s);
    let a = id(&s, "a");
    // 512 KiB of memory; the 1 MiB region cannot fit, the 12 KiB one can.
    m.add_untyped(Untyped {
        cap: 7,
        paddr: 0x8_0000,
        size_bits: 19,
    })
    .unwrap();
    let before = (m.totals(), m.block_count());
    assert_eq!(m.attach(a, "big"), Err(Error::OutOfMemory));
    assert_eq!((m.totals(), m.block_count()), before);
    assert_eq!(m.region_allocated("big"), Some(false));
    assert!(m.attach(a, "ring").is_ok());
    m.check().unwrap();
}

#[test]
fn spawn_and_exit_a_hundred_times_returns_to_baseline() {
    let s = system();
    let (mut m, mut caps) = pool(&s);
    let (a, b, c) = (id(&s, "a"), id(&s, "b"), id(&s, "c"));
    let baseline = m.totals();
    for round in 0..100u32 {
        for (client, sizes) in [(a, &[16u8, 12, 13, 12][..]), (b, &[12, 14]), (c, &[17])] {
            for &bits in sizes {
                let x = m.alloc(client, bits).unwrap();
                caps.perform(&x.steps);
                caps.hand(x.block.id);
            }
        }
        for (client, region) in [(a, "ring"), (b, "ring"), (a, "big"), (c, "big")] {
            caps.perform(&m.attach(client, region).unwrap().steps);
        }
        m.check().unwrap();
        // Exit in a different order each round.
        let mut order = [a, b, c];
        order.rotate_left(round as usize % 3);
        for client in order {
            caps.perform(&m.release_all(client).unwrap());
            assert_eq!(m.usage(client).unwrap().used, 0);
        }
        assert_eq!(m.totals(), baseline, "round {round}");
        assert_eq!(m.block_count(), 2);
    }
    assert_eq!(caps.live.len(), 2);
    assert!(caps.live.values().all(|c| *c == Cap::Fresh));
    m.check().unwrap();
}
