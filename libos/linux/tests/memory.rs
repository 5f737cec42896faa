//! The address-space map.

use libos_linux::image::Prot;
use libos_linux::memory::{Access, AddressSpace, BrkChange, Use};
use libos_linux::Errno;

const P: u64 = 4096;
const RW: Prot = Prot(Prot::READ | Prot::WRITE);
const R: Prot = Prot(Prot::READ);

fn space() -> AddressSpace {
    AddressSpace::new(16 * P, 0x1000_0000, 0x2000_0000)
}

#[test]
fn mappings_are_charged_to_the_budget_and_replacing_is_not_charged_twice() {
    let mut m = space();
    m.insert(0x10_0000, 8 * P, RW, Use::Anonymous).unwrap();
    assert_eq!(m.used(), 8 * P);
    m.insert(0x10_0000 + 4 * P, 8 * P, R, Use::File).unwrap();
    assert_eq!(m.used(), 12 * P, "4 pages replaced, 4 added");
    assert_eq!(
        m.insert(0x40_0000, 5 * P, RW, Use::Anonymous),
        Err(Errno::ENOMEM)
    );
    assert_eq!(m.used(), 12 * P, "a refused mapping changes nothing");
    assert_eq!(
        m.insert(0x10_0001, P, RW, Use::Anonymous),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m.insert(0x10_0000, 0, RW, Use::Anonymous),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        m.insert(0x7fff_ffff_f000, 2 * P, RW, Use::Anonymous),
        Err(Errno::ENOMEM),
        "past the user half"
    );
    assert_eq!(
        m.insert(!(P - 1), 2 * P, RW, Use::Anonymous),
        Err(Errno::ENOMEM),
        "wraps"
    );
}

#[test]
fn free_ranges_come_from_the_top_of_the_window_and_skip_mappings() {
    let mut m = space();
    let a = m.find_free(0, 3 * P).unwrap();
    assert_eq!(a, 0x2000_0000 - 3 * P);
    m.insert(a, 3 * P, RW, Use::Anonymous).unwrap();
    let b = m.find_free(0, 2 * P).unwrap();
    assert_eq!(b, a - 2 * P);
    // A free hint is taken as given; a busy one is not.
    assert_eq!(m.find_free(0x3000_0000, P), Ok(0x3000_0000));
    assert_eq!(m.find_free(a, P), Ok(b + P));
    assert_eq!(m.find_free(0, 0x2000_0000), Err(Errno::ENOMEM));
}

#[test]
fn unmapping_and_protecting_split_areas_and_checks_follow() {
    let mut m = space();
    let base = 0x10_0000;
    m.insert(base, 6 * P, RW, Use::Anonymous).unwrap();
    assert_eq!(
        m.unmap(base + 2 * P, 2 * P),
        Ok(vec![(base + 2 * P, base + 4 * P)])
    );
    assert_eq!(m.areas().count(), 2);
    assert_eq!(m.used(), 4 * P);
    assert_eq!(m.check(base + 2 * P, 1, Access::Read), Err(Errno::EFAULT));
    assert_eq!(
        m.check(base + P, P + 1, Access::Read),
        Err(Errno::EFAULT),
        "runs into the hole"
    );
    assert_eq!(m.check(base, 2 * P, Access::Write), Ok(()));
    assert_eq!(
        m.unmap(base + 2 * P, P),
        Ok(vec![]),
        "unmapping nothing is fine"
    );
    assert_eq!(
        m.mapped_ranges(base + P, 4 * P),
        vec![(base + P, base + 2 * P), (base + 4 * P, base + 5 * P)]
    );
    assert_eq!(
        m.protect(base, 4 * P, R),
        Err(Errno::ENOMEM),
        "not all mapped"
    );
    let exec = Prot(Prot::READ | Prot::EXEC);
    assert_eq!(
        m.protect(base + P, P, exec),
        Ok(vec![(base + P, base + 2 * P)])
    );
    assert_eq!(m.check(base + P, 8, Access::Write), Err(Errno::EFAULT));
    assert_eq!(m.check(base + P, 8, Access::Read), Ok(()));
    // Adjacent areas with different protection still make one readable range.
    assert_eq!(m.check(base + P - 8, 16, Access::Read), Ok(()));
    m.protect(base, P, Prot(0)).unwrap();
    assert_eq!(
        m.check(base, 8, Access::Read),
        Err(Errno::EFAULT),
        "PROT_NONE"
    );
    assert_eq!(m.check(u64::MAX - 4, 8, Access::Read), Err(Errno::EFAULT));
}

#[test]
fn the_trampoline_page_is_never_a_valid_pointer() {
    let mut m = space();
    m.insert(0, P, Prot(Prot::READ | Prot::EXEC), Use::Trampoline)
        .unwrap();
    assert_eq!(m.check(0x10, 8, Access::Read), Err(Errno::EFAULT));
    assert!(m.touches_trampoline(0, 1));
    assert!(!m.touches_trampoline(P, P));
}

#[test]
fn brk_grows_and_shrinks_in_pages_and_stays_put_when_it_cannot_move() {
    let mut m = space();
    m.set_brk_start(0x60_0100);
    let start = 0x60_1000;
    assert_eq!(m.brk(), start);
    assert_eq!(m.move_brk(start + 100), BrkChange::Map(start, start + P));
    assert_eq!(m.brk(), start + 100);
    assert_eq!(m.move_brk(start + 200), BrkChange::None, "same page");
    assert_eq!(
        m.move_brk(start + 3 * P),
        BrkChange::Map(start + P, start + 3 * P)
    );
    assert_eq!(
        m.move_brk(start + 10),
        BrkChange::Unmap(start + P, start + 3 * P)
    );
    assert_eq!(m.used(), P);
    assert_eq!(m.move_brk(start - 1), BrkChange::None, "below the start");
    assert_eq!(m.brk(), start + 10);
    assert_eq!(
        m.move_brk(start + 64 * P),
        BrkChange::None,
        "over the budget"
    );
    m.insert(start + 4 * P, P, RW, Use::Anonymous).unwrap();
    assert_eq!(
        m.move_brk(start + 5 * P),
        BrkChange::None,
        "over another mapping"
    );
    assert_eq!(m.brk(), start + 10);
}
