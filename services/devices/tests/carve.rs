//! Carving plans, checked against a model of seL4's untyped watermark: each retype rounds the
//! watermark up to the object size and must fit in the untyped; the frames made must be
//! exactly the target's pages.

mod common;

use common::system::{device, driver, system};
use common::{qemu_pc, scan};
use devices::{
    frames, Assignments, CarveError, Carver, DeviceUntyped, InterruptController, Object,
    RetypeStep, FRAME_SIZE, RETYPE_FAN_OUT,
};

/// Runs `steps` the way the kernel would, advancing `watermarks`; returns the frames' addresses.
fn run(untypeds: &[DeviceUntyped], watermarks: &mut [u64], steps: &[RetypeStep]) -> Vec<u64> {
    let mut made = Vec::new();
    for s in steps {
        assert!(s.count >= 1 && s.count <= RETYPE_FAN_OUT, "{s:?}");
        let u = untypeds[s.untyped];
        let size = s.object_size();
        let start = watermarks[s.untyped].next_multiple_of(size);
        assert_eq!(start, s.paddr, "the kernel would place {s:?} at {start:#x}");
        let end = start + u64::from(s.count) * size;
        assert!(end <= u.end(), "{s:?} does not fit in {u:?}");
        if s.object == Object::Frame {
            made.extend((0..u64::from(s.count)).map(|i| start + i * FRAME_SIZE));
        }
        watermarks[s.untyped] = end;
    }
    made
}

fn pages(base: u64, size: u64) -> Vec<u64> {
    (base..base + size).step_by(FRAME_SIZE as usize).collect()
}

/// Plans `(base, size)`, checks it in the model, returns the steps.
fn check(
    carver: &mut Carver,
    untypeds: &[DeviceUntyped],
    model: &mut [u64],
    base: u64,
    size: u64,
) -> Vec<RetypeStep> {
    let steps = carver.plan(base, size).unwrap();
    assert_eq!(run(untypeds, model, &steps), pages(base, size));
    assert_eq!(frames(&steps).collect::<Vec<_>>(), pages(base, size));
    steps
}

fn watermarks(untypeds: &[DeviceUntyped]) -> Vec<u64> {
    untypeds.iter().map(|u| u.paddr).collect()
}

const HOLE: DeviceUntyped = DeviceUntyped {
    paddr: 0xFEB0_0000,
    size_bits: 20,
};

#[test]
fn e1000e_bar0_padding_then_exact_frames() {
    let uts = [HOLE];
    let mut c = Carver::new(&uts);
    let mut model = watermarks(&uts);
    let steps = check(&mut c, &uts, &mut model, 0xFEB8_0000, 128 << 10);
    assert_eq!(
        steps,
        [
            RetypeStep {
                untyped: 0,
                object: Object::Untyped { size_bits: 19 },
                count: 1,
                paddr: 0xFEB0_0000
            },
            RetypeStep {
                untyped: 0,
                object: Object::Frame,
                count: 32,
                paddr: 0xFEB8_0000
            },
        ]
    );
    assert_eq!(c.watermark(0), Some(0xFEBA_0000));
    assert_eq!(c.watermark(1), None);
}

#[test]
fn range_at_the_watermark_needs_no_padding() {
    let uts = [HOLE];
    let mut c = Carver::new(&uts);
    let steps = c.plan(0xFEB0_0000, 4096).unwrap();
    assert_eq!(
        steps,
        [RetypeStep {
            untyped: 0,
            object: Object::Frame,
            count: 1,
            paddr: 0xFEB0_0000
        }]
    );
}

#[test]
fn two_bars_in_one_untyped_in_address_order() {
    let uts = [HOLE];
    let mut c = Carver::new(&uts);
    let mut model = watermarks(&uts);
    check(&mut c, &uts, &mut model, 0xFEB8_0000, 128 << 10);
    let steps = check(&mut c, &uts, &mut model, 0xFEBC_0000, 16 << 10);
    assert_eq!(steps[0].object, Object::Untyped { size_bits: 17 });
    assert_eq!(steps[0].paddr, 0xFEBA_0000);
    assert_eq!(steps.len(), 2);
}

#[test]
fn a_bar_below_the_watermark_is_refused_and_nothing_moves() {
    let uts = [HOLE];
    let mut c = Carver::new(&uts);
    c.plan(0xFEBC_0000, 16 << 10).unwrap();
    assert_eq!(
        c.plan(0xFEB8_0000, 128 << 10),
        Err(CarveError::BelowWatermark {
            untyped: 0,
            watermark: 0xFEBC_4000
        })
    );
    assert_eq!(c.watermark(0), Some(0xFEBC_4000));
}

#[test]
fn plan_all_sorts_by_address_and_answers_in_request_order() {
    let uts = [HOLE];
    let mut c = Carver::new(&uts);
    let plans = c
        .plan_all(&[(0xFEBC_0000, 16 << 10), (0xFEB8_0000, 128 << 10)])
        .unwrap();
    assert_eq!(
        frames(&plans[0]).collect::<Vec<_>>(),
        pages(0xFEBC_0000, 16 << 10)
    );
    assert_eq!(
        frames(&plans[1]).collect::<Vec<_>>(),
        pages(0xFEB8_0000, 128 << 10)
    );
    // Run in address order against the model.
    let mut model = watermarks(&uts);
    run(&uts, &mut model, &plans[1]);
    run(&uts, &mut model, &plans[0]);
}

#[test]
fn plan_all_is_all_or_nothing() {
    let uts = [HOLE];
    let mut c = Carver::new(&uts);
    assert_eq!(
        c.plan_all(&[(0xFEB8_0000, 4096), (0xFEC0_0000, 4096)]),
        Err(CarveError::Uncovered { paddr: 0xFEC0_0000 })
    );
    assert_eq!(c.watermark(0), Some(0xFEB0_0000));
}

#[test]
fn irregular_gap_is_filled_with_descending_padding() {
    let uts = [DeviceUntyped {
        paddr: 0,
        size_bits: 20,
    }];
    let mut c = Carver::new(&uts);
    let mut model = watermarks(&uts);
    let steps = check(&mut c, &uts, &mut model, 0xB_8000, 0x8000);
    let padding: Vec<_> = steps
        .iter()
        .filter_map(|s| match s.object {
            Object::Untyped { size_bits } => Some((size_bits, s.paddr)),
            Object::Frame => None,
        })
        .collect();
    assert_eq!(
        padding,
        [(19, 0), (17, 0x8_0000), (16, 0xA_0000), (15, 0xB_0000)]
    );
}

#[test]
fn unaligned_watermark_gap_uses_small_padding_first() {
    let uts = [HOLE];
    let mut c = Carver::new(&uts);
    let mut model = watermarks(&uts);
    check(&mut c, &uts, &mut model, 0xFEB0_0000, 0x3000);
    // The watermark is now 0xFEB03000: padding 4K, 16K(...) up to the next BAR.
    let steps = check(&mut c, &uts, &mut model, 0xFEB4_0000, 0x1_0000);
    assert_eq!(steps[0].object, Object::Untyped { size_bits: 12 });
    assert_eq!(steps[0].paddr, 0xFEB0_3000);
}

#[test]
fn a_range_spanning_adjacent_untypeds() {
    let uts = [
        DeviceUntyped {
            paddr: 0xFE00_0000,
            size_bits: 16,
        },
        DeviceUntyped {
            paddr: 0xFE01_0000,
            size_bits: 16,
        },
    ];
    let mut c = Carver::new(&uts);
    let mut model = watermarks(&uts);
    let steps = check(&mut c, &uts, &mut model, 0xFE00_8000, 0x1_0000);
    let per_untyped: Vec<_> = steps
        .iter()
        .map(|s| (s.untyped, s.object, s.count))
        .collect();
    assert_eq!(
        per_untyped,
        [
            (0, Object::Untyped { size_bits: 15 }, 1),
            (0, Object::Frame, 8),
            (1, Object::Frame, 8)
        ]
    );
}

#[test]
fn big_bars_split_at_the_fan_out_limit() {
    let uts = [DeviceUntyped {
        paddr: 0xFD00_0000,
        size_bits: 24,
    }];
    let mut c = Carver::new(&uts);
    let mut model = watermarks(&uts);
    let steps = check(&mut c, &uts, &mut model, 0xFD00_0000, 16 << 20);
    assert_eq!(steps.len(), 16);
    assert!(steps.iter().all(|s| s.count == RETYPE_FAN_OUT));
}

#[test]
fn impossible_ranges() {
    let uts = [
        HOLE,
        DeviceUntyped {
            paddr: 0x1000,
            size_bits: 11,
        },
        DeviceUntyped {
            paddr: 0x1800,
            size_bits: 11,
        },
    ];
    let mut c = Carver::new(&uts);
    assert_eq!(c.plan(0xFEB8_0800, 4096), Err(CarveError::Misaligned));
    assert_eq!(c.plan(0xFEB8_0000, 0x800), Err(CarveError::Misaligned));
    assert_eq!(c.plan(0xFEB8_0000, 0), Err(CarveError::Misaligned));
    assert_eq!(
        c.plan(0xFFFF_FFFF_FFFF_F000, 0x2000),
        Err(CarveError::Overflow)
    );
    // The IOAPIC page is the kernel's: no device untyped covers it.
    assert_eq!(
        c.plan(0xFEC0_0000, 4096),
        Err(CarveError::Uncovered { paddr: 0xFEC0_0000 })
    );
    // Runs off the end of the untyped into the hole.
    assert_eq!(
        c.plan(0xFEBF_0000, 0x2_0000),
        Err(CarveError::Uncovered { paddr: 0xFEC0_0000 })
    );
    assert_eq!(
        c.plan(0x1000, 4096),
        Err(CarveError::PageSplit { paddr: 0x1000 })
    );
    assert_eq!(
        c.watermark(0),
        Some(0xFEB0_0000),
        "failed plans move nothing"
    );
}

#[test]
fn every_granted_bar_of_the_qemu_pc_machine_at_start() {
    // Device untypeds much as seL4 reports the top of QEMU's PCI hole (the IOAPIC page at
    // 0xFEC00000 is the kernel's).
    let uts = [
        DeviceUntyped {
            paddr: 0xFC00_0000,
            size_bits: 25,
        },
        DeviceUntyped {
            paddr: 0xFE00_0000,
            size_bits: 23,
        },
        DeviceUntyped {
            paddr: 0xFE80_0000,
            size_bits: 22,
        },
    ];
    let system = system(
        &(driver("net", &["e", "v", "vga"])
            + &device("v", "pci = \"1af4:1000\"", None)
            + &device("e", "pci = \"8086:10d3\"", None)
            + &device("vga", "class = \"03:00\"", None)),
    );
    let (found, _) = scan(qemu_pc());
    let a = Assignments::resolve(&system, &found, InterruptController::IoApic);
    let net = system.component_id("net").unwrap();
    let regions: Vec<(u64, u64)> = ["v", "e", "vga"]
        .iter()
        .flat_map(|d| a.grant_for(net, d).unwrap().memory)
        .map(|r| (r.base, r.size))
        .collect();
    assert_eq!(regions.len(), 7);
    let mut c = Carver::new(&uts);
    let plans = c.plan_all(&regions).unwrap();
    let mut order: Vec<usize> = (0..regions.len()).collect();
    order.sort_by_key(|&i| regions[i].0);
    let mut model = watermarks(&uts);
    for i in order {
        let (base, size) = regions[i];
        assert_eq!(run(&uts, &mut model, &plans[i]), pages(base, size));
    }
}
