//! A damaged or foreign volume is refused with one line, never a panic.

mod common;

use fs::{mount, Config};
use libos_fat::MemoryDevice;

#[test]
fn damaged_volumes_are_refused_with_a_reason() {
    let Some(good) = common::image(8 * 1024) else {
        return;
    };
    let config = Config::from_args(|_| None).unwrap();
    assert!(mount(MemoryDevice::from_bytes(good.clone()), &config).is_ok());

    let mut no_signature = good.clone();
    no_signature[510] = 0;
    let mut zero_sectors = good.clone();
    zero_sectors[11] = 0;
    zero_sectors[12] = 0;
    let mut rng = fastrand::Rng::with_seed(13);
    for (bytes, reason) in [
        (no_signature, "damaged volume"),
        (zero_sectors, "damaged volume"),
        (vec![0u8; 4096], "damaged volume"),
    ] {
        let why = mount(MemoryDevice::from_bytes(bytes), &config)
            .err()
            .unwrap();
        assert!(why.starts_with("cannot mount the volume: "), "{why}");
        assert!(why.contains(reason), "{why}");
        assert!(!why.contains('\n'));
    }
    // Random bytes anywhere in the boot sector: mounted or refused, never a panic.
    for _ in 0..500 {
        let mut bytes = good.clone();
        for _ in 0..rng.usize(1..8) {
            bytes[rng.usize(0..512)] = rng.u8(..);
        }
        if let Err(why) = mount(MemoryDevice::from_bytes(bytes), &config) {
            assert!(!why.contains('\n'));
        }
    }
}
